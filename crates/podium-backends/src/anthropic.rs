//! Anthropic's Messages API, streamed: generation only (the API gives no
//! log-probs). Thinking deltas are kept apart from the answer.
//!
//! Spec: `anthropic:MODEL[?options]`, key from `ANTHROPIC_API_KEY` (or
//! `api_key_env=NAME`). Options: `thinking=N` (extended thinking with a budget
//! of N tokens), `base_url=URL` (default https://api.anthropic.com), and the
//! endpoint options of [`EndpointOptions`](crate::EndpointOptions).

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};

use podium_core::{
    Backend, BackendError, GenerateRequest, GenerateResult, LoglikelihoodRequest,
    LoglikelihoodResult, ModelIdentity, ModelSpec, ResponseCache, RollingRequest, RollingResult,
};

use crate::OpenError;
use crate::http::{
    self, ApiKey, AttemptStart, ENDPOINT_OPTION_NAMES, Endpoint, EndpointOptions, Failure,
    KeyHeader, excerpt, server_message,
};
use crate::sse::SseEvent;
use crate::timing::{Delta, StreamRecorder};

const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
const API_VERSION: &str = "2023-06-01";

/// A backend for Anthropic's Messages API. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AnthropicBackend {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    spec: String,
    base_url: String,
    model: String,
    thinking_budget: Option<u64>,
    endpoint: Endpoint,
}

impl AnthropicBackend {
    pub fn open(
        spec: &str,
        cache: Option<Arc<dyn ResponseCache>>,
    ) -> Result<AnthropicBackend, OpenError> {
        Self::open_shared(
            spec,
            podium_core::Shared {
                cache,
                limits: None,
            },
        )
    }

    /// [`Self::open`] with the limits shared with other processes, if any.
    pub fn open_shared(
        spec: &str,
        shared: podium_core::Shared,
    ) -> Result<AnthropicBackend, OpenError> {
        let invalid = |message: String| OpenError::Invalid {
            spec: http::redact_spec(spec),
            message,
        };
        let parsed = ModelSpec::parse(spec)
            .ok()
            .filter(|p| p.kind == podium_core::ModelKind::Anthropic)
            .ok_or_else(|| invalid("expected anthropic:MODEL".into()))?;
        let (model, query) = parsed
            .rest
            .split_once('?')
            .unwrap_or((parsed.rest.as_str(), ""));
        if model.is_empty() {
            return Err(invalid("the model name is empty".into()));
        }
        let mut base_url = DEFAULT_BASE_URL.to_string();
        let mut thinking_budget = None;
        let mut credentials = None;
        let mut options = EndpointOptions::default();
        for (key, value) in http::query_pairs(query) {
            if http::is_secret_option(key) {
                return Err(invalid(format!(
                    "`{key}` cannot be given in a spec (specs are stored and shown); put the key in an environment variable and name it with api_key_env=NAME"
                )));
            }
            match key {
                "base_url" => {
                    if !(value.starts_with("http://") || value.starts_with("https://")) {
                        return Err(invalid(format!(
                            "`base_url` must start with http:// or https://, got `{value}`"
                        )));
                    }
                    // `user:password@` travels as a header, never in the stored URL.
                    let (bare, found) = http::take_url_credentials(value);
                    base_url = bare.trim_end_matches('/').to_string();
                    credentials = found;
                }
                "thinking" => {
                    let budget: u64 = value.parse().map_err(|_| {
                        invalid(format!(
                            "`thinking` needs a token budget (a whole number), got `{value}`"
                        ))
                    })?;
                    thinking_budget = Some(budget).filter(|&b| b > 0);
                }
                _ => {
                    if !options
                        .take(key, value)
                        .map_err(|e| invalid(e.to_string()))?
                    {
                        return Err(invalid(format!(
                            "unknown option `{key}` (known: thinking, base_url, {})",
                            ENDPOINT_OPTION_NAMES.join(", ")
                        )));
                    }
                }
            }
        }
        let key_env = options
            .api_key_env
            .clone()
            .unwrap_or_else(|| "ANTHROPIC_API_KEY".to_string());
        let key = ApiKey::from_env(&key_env).map_err(|e| invalid(e.to_string()))?;
        let endpoint = Endpoint::new(
            options,
            Some(key),
            KeyHeader::XApiKey,
            credentials.as_ref(),
            &[("anthropic-version", API_VERSION)],
            shared,
            format!("{base_url}#{model}"),
        )
        .map_err(|e| invalid(e.to_string()))?;
        let mut canonical = format!("anthropic:{model}");
        let mut semantic = Vec::new();
        if let Some(budget) = thinking_budget {
            semantic.push(format!("thinking={budget}"));
        }
        if base_url != DEFAULT_BASE_URL {
            semantic.push(format!("base_url={base_url}"));
        }
        if !semantic.is_empty() {
            canonical = format!("{canonical}?{}", semantic.join("&"));
        }
        Ok(AnthropicBackend {
            inner: Arc::new(Inner {
                spec: canonical,
                base_url,
                model: model.to_string(),
                thinking_budget,
                endpoint,
            }),
        })
    }

    fn no_logprobs(&self) -> BackendError {
        BackendError::Unsupported(format!(
            "`{}`: Anthropic's Messages API gives no log-probs: multiple-choice and perplexity tasks need a completions endpoint with echo+logprobs, or use a generation variant of the task",
            self.inner.spec
        ))
    }
}

#[async_trait]
impl Backend for AnthropicBackend {
    fn identity(&self) -> ModelIdentity {
        ModelIdentity {
            spec: self.inner.spec.clone(),
            fingerprint: format!("{}#{}", self.inner.base_url, self.inner.model),
            chat_template_hash: None,
        }
    }

    async fn loglikelihood(
        &self,
        _requests: &[LoglikelihoodRequest],
    ) -> Result<Vec<Result<Vec<LoglikelihoodResult>, BackendError>>, BackendError> {
        Err(self.no_logprobs())
    }

    async fn loglikelihood_rolling(
        &self,
        _requests: &[RollingRequest],
    ) -> Result<Vec<Result<RollingResult, BackendError>>, BackendError> {
        Err(self.no_logprobs())
    }

    async fn generate_until(
        &self,
        requests: &[GenerateRequest],
    ) -> Result<Vec<Result<GenerateResult, BackendError>>, BackendError> {
        Ok(http::each_concurrently(&self.inner, requests, generate_one).await)
    }
}

fn messages_body(model: &str, thinking_budget: Option<u64>, request: &GenerateRequest) -> Value {
    let mut body = json!({
        "model": model,
        "max_tokens": request.max_tokens.max(1),
        "messages": [{ "role": "user", "content": request.context }],
    });
    // A chat-shaped task's messages: Anthropic takes the system prompt as a
    // field of its own, the turns as messages.
    if let Some(messages) = &request.messages {
        let system: Vec<&str> = messages
            .iter()
            .filter(|m| m.role == "system")
            .map(|m| m.content.as_str())
            .collect();
        let turns: Vec<&podium_core::ChatMessage> =
            messages.iter().filter(|m| m.role != "system").collect();
        body["messages"] = json!(turns);
        if !system.is_empty() {
            body["system"] = json!(system.join("\n\n"));
        }
    }
    match thinking_budget {
        // Extended thinking requires the default temperature.
        Some(budget) => body["thinking"] = json!({ "type": "enabled", "budget_tokens": budget }),
        None => {
            body["temperature"] = json!(if request.do_sample {
                request.temperature
            } else {
                0.0
            });
            // Recent models refuse temperature and top_p together; send
            // top_p only when it narrows sampling.
            if request.do_sample && request.top_p < 1.0 {
                body["top_p"] = json!(request.top_p);
            }
        }
    }
    // Whitespace-only stop sequences are refused; all stops are also cut client-side.
    let stops: Vec<&str> = request
        .until
        .iter()
        .map(String::as_str)
        .filter(|s| !s.trim().is_empty())
        .collect();
    if !stops.is_empty() {
        body["stop_sequences"] = json!(stops);
    }
    body["stream"] = json!(true);
    body
}

async fn generate_one(
    inner: Arc<Inner>,
    request: GenerateRequest,
) -> Result<GenerateResult, BackendError> {
    let (inner, request) = (inner.as_ref(), &request);
    let url = if inner.base_url.ends_with("/v1") {
        format!("{}/messages", inner.base_url)
    } else {
        format!("{}/v1/messages", inner.base_url)
    };
    let body = messages_body(&inner.model, inner.thinking_budget, request).to_string();
    inner
        .endpoint
        .generation(&url, &inner.model, &body, request, |start| {
            stream_messages(inner, &url, &body, &request.until, start)
        })
        .await
}

async fn stream_messages(
    inner: &Inner,
    url: &str,
    body: &str,
    stops: &[String],
    start: AttemptStart,
) -> Result<(GenerateResult, Option<u64>), Failure> {
    let (t0, response) = inner.endpoint.post_stream(url, body).await?;
    if !response.is_event_stream() {
        let text = response.text().await;
        return Err(Failure::Permanent(
            match serde_json::from_str::<Value>(&text) {
                Ok(json) if json.get("error").is_some() => {
                    format!("HTTP 200 with an error body: {}", server_message(&text))
                }
                Ok(_) => format!(
                    "expected an event stream, got a JSON body: `{}`",
                    excerpt(text.trim(), 200)
                ),
                Err(err) => format!("invalid JSON body ({err}): `{}`", excerpt(text.trim(), 200)),
            },
        ));
    }
    let mut recorder = StreamRecorder::new(t0, start.queue_s);
    let end = http::read_events(response, |event| on_event(event, &mut recorder)).await?;
    if !end.done {
        return Err(Failure::retryable(format!(
            "the stream ended after {} events without `message_stop`",
            end.n_events
        )));
    }
    let used = recorder.used_tokens();
    Ok((recorder.finish(stops, end.ended, start.attempt), used))
}

/// Read one Messages stream event; `Ok(true)` at `message_stop`.
fn on_event(event: &SseEvent, recorder: &mut StreamRecorder) -> Result<bool, Failure> {
    let data = event.data.trim();
    let json: Value = serde_json::from_str(data).map_err(|err| {
        Failure::Permanent(format!(
            "invalid JSON in a stream event ({err}): `{}`",
            excerpt(data, 200)
        ))
    })?;
    let kind = event
        .event
        .as_deref()
        .or_else(|| json.get("type").and_then(Value::as_str))
        .unwrap_or("");
    match kind {
        "message_start" => {
            if let Some(usage) = json.pointer("/message/usage") {
                let n = [
                    "input_tokens",
                    "cache_creation_input_tokens",
                    "cache_read_input_tokens",
                ]
                .iter()
                .filter_map(|key| usage.get(key).and_then(Value::as_u64))
                .fold(0u64, u64::saturating_add);
                recorder.set_input_tokens(n)?;
            }
        }
        "content_block_start" => {
            // A block may open with text already in it.
            let block = json.get("content_block");
            let text = |key: &str| {
                block
                    .and_then(|b| b.get(key))
                    .and_then(Value::as_str)
                    .unwrap_or("")
            };
            recorder.on_delta(
                event.at,
                Delta {
                    content: text("text"),
                    reasoning: text("thinking"),
                    tool_call: false,
                },
            );
        }
        "content_block_delta" => {
            let delta = json.get("delta");
            let field = |key: &str| {
                delta
                    .and_then(|d| d.get(key))
                    .and_then(Value::as_str)
                    .unwrap_or("")
            };
            let delta_type = field("type");
            recorder.on_delta(
                event.at,
                Delta {
                    content: if delta_type == "text_delta" {
                        field("text")
                    } else {
                        ""
                    },
                    reasoning: if delta_type == "thinking_delta" {
                        field("thinking")
                    } else {
                        ""
                    },
                    tool_call: delta_type == "input_json_delta",
                },
            );
        }
        "message_delta" => {
            if let Some(n) = json.pointer("/usage/output_tokens").and_then(Value::as_u64) {
                recorder.set_output_tokens(n)?;
            }
        }
        "message_stop" => return Ok(true),
        "error" => {
            let message = server_message(data);
            let error_type = json
                .pointer("/error/type")
                .and_then(Value::as_str)
                .unwrap_or("");
            let text = format!("the server sent an error event: {message}");
            // Overload mid-stream is transient (Anthropic asks clients to retry).
            return Err(if error_type == "overloaded_error" {
                Failure::retryable(text)
            } else {
                Failure::Permanent(text)
            });
        }
        // ping, content_block_stop, and event types added later.
        _ => {}
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies() {
        let request = GenerateRequest {
            messages: None,
            context: "Q".into(),
            until: vec!["\n\n".into(), "Q:".into()],
            max_tokens: 16,
            temperature: 0.0,
            top_p: 1.0,
            do_sample: false,
            seed: 1,
        };
        assert_eq!(
            messages_body("claude", None, &request).to_string(),
            r#"{"model":"claude","max_tokens":16,"messages":[{"role":"user","content":"Q"}],"temperature":0.0,"stop_sequences":["Q:"],"stream":true}"#
        );
        let thinking = messages_body("claude", Some(1024), &request);
        assert_eq!(thinking["thinking"]["budget_tokens"], 1024);
        assert!(thinking.get("temperature").is_none());
        // A chat-shaped request: the system prompt in `system`, the turns as messages.
        let chat = GenerateRequest {
            messages: Some(vec![
                podium_core::ChatMessage {
                    role: "system".into(),
                    content: "Be brief.".into(),
                },
                podium_core::ChatMessage {
                    role: "user".into(),
                    content: "Q".into(),
                },
            ]),
            ..request
        };
        let body = messages_body("claude", None, &chat);
        assert_eq!(body["system"], "Be brief.");
        assert_eq!(
            body["messages"],
            serde_json::json!([{"role": "user", "content": "Q"}])
        );
    }
}
