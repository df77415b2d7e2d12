//! OpenAI-compatible HTTP endpoints (vLLM, llama.cpp's server, SGLang, TGI,
//! OpenAI, Together, …): streamed generation through `/completions` or
//! `/chat/completions`, and log-likelihoods from `/completions` with
//! `echo` + `logprobs`.
//!
//! Specs:
//! - `openai-compatible:BASE_URL#SERVED_MODEL[?options]`, e.g.
//!   `openai-compatible:http://127.0.0.1:8000/v1#Qwen/Qwen3-0.6B?api=chat`.
//!   A base URL with no path gets `/v1`. No key is sent unless `api_key_env=NAME`.
//! - `openai:MODEL[?options]` (https://api.openai.com/v1, key from `OPENAI_API_KEY`).
//! - `together:MODEL[?options]` (https://api.together.xyz/v1, key from `TOGETHER_API_KEY`).
//!
//! Options: `api=completions|chat` (default `completions`: evaluation prompts
//! are already rendered); `tokenizer=NAME|PATH`, the served model's tokenizer (a
//! catalogue model in the cache, or a GGUF file), which counts output tokens when the
//! server reports no `usage` (else each token-bearing event counts as one, an
//! estimate); and the endpoint options of [`EndpointOptions`].

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use serde_json::{Value, json};

use podium_core::{
    Backend, BackendError, GenerateRequest, GenerateResult, LoglikelihoodRequest,
    LoglikelihoodResult, ModelIdentity, ModelKind, ModelSpec, ResponseCache, RollingRequest,
    RollingResult,
};

use crate::OpenError;
use crate::http::{
    self, ApiKey, AttemptStart, ENDPOINT_OPTION_NAMES, Endpoint, EndpointOptions, Failure,
    KeyHeader, MAX_TOKEN_COUNT, excerpt, failure_from_status, mark_cached, server_message,
};
use crate::sse::SseEvent;
use crate::timing::{Delta, StreamRecorder, TokenCounter};

/// The message of the run-stopping error when an endpoint cannot score prompts.
pub const NO_PROMPT_LOGPROBS: &str = "this endpoint gives no prompt log-probs: multiple-choice tasks need a completions endpoint with echo+logprobs, or use a generation variant of the task";

/// OpenAI's limit on stop strings per request; further ones are cut client-side.
const MAX_SERVER_STOPS: usize = 4;

/// Which endpoint generation goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenAiApi {
    /// `/completions` with the raw prompt.
    Completions,
    /// `/chat/completions` with the prompt as one user message.
    Chat,
}

/// A backend for an OpenAI-compatible endpoint. Cheap to clone.
#[derive(Debug, Clone)]
pub struct OpenAiBackend {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The spec without operational options: what identifies the model in a run.
    spec: String,
    base_url: String,
    model: String,
    api: OpenAiApi,
    endpoint: Endpoint,
    /// Set once a response shows that the server does not echo prompt log-probs.
    no_prompt_logprobs: AtomicBool,
    /// Set once the server rejects `max_tokens: 0`; later requests ask for 1 token.
    max_tokens_zero_rejected: AtomicBool,
    /// The served model's tokenizer (`tokenizer=` option), to count output tokens
    /// when the server sends no `usage`.
    tokenizer: Option<TokenCounter>,
    /// The `tokenizer=` value: it changes the stored token counts, so it is part of
    /// the identity (a run counted one way never resumes one counted another way).
    tokenizer_name: Option<String>,
}

impl OpenAiBackend {
    /// Open an `openai-compatible:`, `openai:` or `together:` spec.
    pub fn open(
        spec: &str,
        cache: Option<Arc<dyn ResponseCache>>,
    ) -> Result<OpenAiBackend, OpenError> {
        let invalid = |message: String| OpenError::Invalid {
            spec: http::redact_spec(spec),
            message,
        };
        let parsed = ModelSpec::parse(spec).map_err(|_| {
            invalid(
                "expected openai-compatible:BASE_URL#MODEL, openai:MODEL or together:MODEL".into(),
            )
        })?;
        let (base_url, model_and_query, default_key_env) = match parsed.kind {
            ModelKind::OpenAiCompatible => {
                let Some((url, rest)) = parsed.rest.rsplit_once('#') else {
                    return Err(invalid(
                        "write openai-compatible:BASE_URL#SERVED_MODEL, e.g. openai-compatible:http://127.0.0.1:8000/v1#my-model".into(),
                    ));
                };
                (url, rest, None)
            }
            ModelKind::OpenAi => (
                "https://api.openai.com/v1",
                parsed.rest.as_str(),
                Some("OPENAI_API_KEY"),
            ),
            ModelKind::Together => (
                "https://api.together.xyz/v1",
                parsed.rest.as_str(),
                Some("TOGETHER_API_KEY"),
            ),
            other => {
                return Err(invalid(format!(
                    "`{other}` is not an OpenAI-compatible kind"
                )));
            }
        };
        // `user:password@` in the URL travels as a header and is kept out of the URL
        // that goes into the model's identity, the store, errors and logs.
        let (base_url, credentials) = http::take_url_credentials(base_url);
        let base_url = normalize_base_url(&base_url).map_err(invalid)?;
        let (model, query) = model_and_query
            .split_once('?')
            .unwrap_or((model_and_query, ""));
        if model.is_empty() {
            return Err(invalid("the served model name is empty".into()));
        }
        let mut api = OpenAiApi::Completions;
        let mut tokenizer = None;
        let mut tokenizer_name = None;
        let mut options = EndpointOptions::default();
        for (key, value) in http::query_pairs(query) {
            if http::is_secret_option(key) {
                return Err(invalid(format!(
                    "`{key}` cannot be given in a spec (specs are stored and shown); put the key in an environment variable and name it with api_key_env=NAME"
                )));
            }
            if key == "api" {
                api = match value {
                    "completions" => OpenAiApi::Completions,
                    "chat" => OpenAiApi::Chat,
                    _ => {
                        return Err(invalid(format!(
                            "`api` is `completions` or `chat`, got `{value}`"
                        )));
                    }
                };
                continue;
            }
            if key == "tokenizer" {
                tokenizer = Some(crate::local::token_counter(value, spec)?);
                tokenizer_name = Some(value.to_string());
                continue;
            }
            if !options.take(key, value).map_err(invalid)? {
                return Err(invalid(format!(
                    "unknown option `{key}` (known: api, tokenizer, {})",
                    ENDPOINT_OPTION_NAMES.join(", ")
                )));
            }
        }
        let key_env = options.api_key_env.as_deref().or(default_key_env);
        let key = match key_env {
            Some(name) => Some(ApiKey::from_env(name).map_err(invalid)?),
            None => None,
        };
        let endpoint = Endpoint::new(
            options,
            key,
            KeyHeader::Bearer,
            credentials.as_ref(),
            &[],
            cache,
        )
        .map_err(invalid)?;
        let head = match parsed.kind {
            ModelKind::OpenAiCompatible => format!("openai-compatible:{base_url}#{model}"),
            kind => format!("{kind}:{model}"),
        };
        let canonical = match api {
            OpenAiApi::Completions => head,
            OpenAiApi::Chat => format!("{head}?api=chat"),
        };
        Ok(OpenAiBackend {
            inner: Arc::new(Inner {
                spec: canonical,
                base_url,
                model: model.to_string(),
                api,
                endpoint,
                no_prompt_logprobs: AtomicBool::new(false),
                max_tokens_zero_rejected: AtomicBool::new(false),
                tokenizer,
                tokenizer_name,
            }),
        })
    }

    fn unsupported_if_known(&self) -> Result<(), BackendError> {
        if self.inner.no_prompt_logprobs.load(Ordering::Relaxed) {
            Err(BackendError::Unsupported(NO_PROMPT_LOGPROBS.into()))
        } else {
            Ok(())
        }
    }
}

/// `http://host:port` gets `/v1`; a trailing `/` goes.
fn normalize_base_url(url: &str) -> Result<String, String> {
    let url = url.trim_end_matches('/');
    // A query or fragment would take `/completions` into it, and may hold what the user
    // meant as options (found by the model_spec fuzz target: `URL?#api_key=…` made the
    // key the served model's name, stored in the identity). Checked first, so no message
    // below echoes such a part; this one shows only what comes before it.
    if let Some(at) =
        url.find(|c: char| c == '?' || c == '#' || c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "the base URL `{}…` has a query, a fragment, a space or a control character; options go after the served model: BASE_URL#MODEL?api=chat",
            &url[..at]
        ));
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!(
            "the base URL `{url}` needs a scheme, e.g. http://127.0.0.1:8000/v1"
        ));
    };
    if scheme != "http" && scheme != "https" {
        return Err(format!(
            "the base URL `{url}` must start with http:// or https://"
        ));
    }
    if rest.is_empty() {
        return Err(format!("the base URL `{url}` has no host"));
    }
    if rest.contains('/') {
        Ok(url.to_string())
    } else {
        Ok(format!("{url}/v1"))
    }
}

#[async_trait]
impl Backend for OpenAiBackend {
    fn identity(&self) -> ModelIdentity {
        ModelIdentity {
            spec: self.inner.spec.clone(),
            fingerprint: match &self.inner.tokenizer_name {
                None => format!("{}#{}", self.inner.base_url, self.inner.model),
                Some(name) => format!(
                    "{}#{};tokenizer={name}",
                    self.inner.base_url, self.inner.model
                ),
            },
            chat_template_hash: None,
        }
    }

    async fn loglikelihood(
        &self,
        requests: &[LoglikelihoodRequest],
    ) -> Result<Vec<Result<Vec<LoglikelihoodResult>, BackendError>>, BackendError> {
        self.unsupported_if_known()?;
        let mut jobs = Vec::new();
        for request in requests {
            for continuation in &request.continuations {
                let inner = Arc::clone(&self.inner);
                let context = request.context.clone();
                let continuation = continuation.clone();
                jobs.push(async move { score_span(&inner, &context, &continuation).await });
            }
        }
        let mut scores = http::run_concurrently(jobs).await.into_iter();
        let mut out = Vec::with_capacity(requests.len());
        for request in requests {
            let per_request: Vec<_> = scores.by_ref().take(request.continuations.len()).collect();
            if let Some(Err(BackendError::Unsupported(message))) = per_request
                .iter()
                .find(|r| matches!(r, Err(BackendError::Unsupported(_))))
            {
                return Err(BackendError::Unsupported(message.clone()));
            }
            out.push(per_request.into_iter().collect());
        }
        Ok(out)
    }

    async fn loglikelihood_rolling(
        &self,
        requests: &[RollingRequest],
    ) -> Result<Vec<Result<RollingResult, BackendError>>, BackendError> {
        self.unsupported_if_known()?;
        let jobs = requests.iter().map(|request| {
            let inner = Arc::clone(&self.inner);
            let text = request.text.clone();
            async move { score_span(&inner, "", &text).await }
        });
        let scores = http::run_concurrently(jobs.collect()).await;
        if let Some(Err(BackendError::Unsupported(message))) = scores
            .iter()
            .find(|r| matches!(r, Err(BackendError::Unsupported(_))))
        {
            return Err(BackendError::Unsupported(message.clone()));
        }
        Ok(scores
            .into_iter()
            .map(|score| {
                score.map(|s| RollingResult {
                    logprob: s.logprob,
                    n_tokens: s.n_tokens,
                })
            })
            .collect())
    }

    async fn generate_until(
        &self,
        requests: &[GenerateRequest],
    ) -> Result<Vec<Result<GenerateResult, BackendError>>, BackendError> {
        let jobs = requests.iter().map(|request| {
            let inner = Arc::clone(&self.inner);
            let request = request.clone();
            async move { generate_one(&inner, &request).await }
        });
        Ok(http::run_concurrently(jobs.collect()).await)
    }
}

/// The body of a streamed generation request.
fn generation_body(model: &str, api: OpenAiApi, request: &GenerateRequest) -> Value {
    let stops: Vec<&str> = request
        .until
        .iter()
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .take(MAX_SERVER_STOPS)
        .collect();
    let temperature = if request.do_sample {
        request.temperature
    } else {
        0.0
    };
    let mut body = json!({ "model": model });
    match api {
        OpenAiApi::Completions => body["prompt"] = json!(request.context),
        OpenAiApi::Chat => {
            // A chat-shaped task's own messages (system prompt, turns); else the
            // prompt as one user message.
            body["messages"] = match &request.messages {
                Some(messages) => json!(messages),
                None => json!([{ "role": "user", "content": request.context }]),
            };
        }
    }
    body["max_tokens"] = json!(request.max_tokens);
    body["temperature"] = json!(temperature);
    body["top_p"] = json!(request.top_p);
    body["seed"] = json!(request.seed);
    if !stops.is_empty() {
        body["stop"] = json!(stops);
    }
    body["stream"] = json!(true);
    body["stream_options"] = json!({ "include_usage": true });
    body
}

async fn generate_one(
    inner: &Inner,
    request: &GenerateRequest,
) -> Result<GenerateResult, BackendError> {
    let url = match inner.api {
        OpenAiApi::Completions => format!("{}/completions", inner.base_url),
        OpenAiApi::Chat => format!("{}/chat/completions", inner.base_url),
    };
    let body = generation_body(&inner.model, inner.api, request).to_string();
    let cache_key = podium_core::cache_key(&url, &inner.model, &body);
    let estimated_tokens = request.context.len() / 4 + request.max_tokens;
    inner
        .endpoint
        .cached(&url, &cache_key, estimated_tokens, mark_cached, |start| {
            stream_generation(inner, &url, &body, &request.until, start)
        })
        .await
}

/// One attempt at a streamed generation.
async fn stream_generation(
    inner: &Inner,
    url: &str,
    body: &str,
    stops: &[String],
    start: AttemptStart,
) -> Result<(GenerateResult, Option<u64>), Failure> {
    let (t0, response) = inner
        .endpoint
        .post(url, "text/event-stream", body.to_string())
        .await?;
    if !response.is_success() {
        return Err(failure_from_status(response).await);
    }
    let mut recorder = StreamRecorder::new(t0, start.queue_s);
    recorder.count_tokens_with(inner.tokenizer.clone());
    if !response.is_event_stream() {
        // Some servers ignore `stream` and answer with one JSON body.
        let bytes = response.bytes().await?;
        let at = Instant::now();
        whole_body(&bytes, at, &mut recorder)?;
        let used = recorder.used_tokens();
        return Ok((recorder.finish(stops, at, start.attempt), used));
    }
    let mut progress = StreamProgress::default();
    let end = http::read_events(response, |event| {
        on_event(event, &mut recorder, &mut progress)?;
        Ok(progress.done)
    })
    .await?;
    if !end.done && !progress.finished {
        return Err(Failure::retryable(format!(
            "the stream ended after {} events without a finish reason or `data: [DONE]`",
            end.n_events
        )));
    }
    let used = recorder.used_tokens();
    Ok((recorder.finish(stops, end.ended, start.attempt), used))
}

#[derive(Debug, Default)]
struct StreamProgress {
    /// `data: [DONE]` arrived.
    done: bool,
    /// A choice carried a `finish_reason`.
    finished: bool,
}

/// Read one event of a completions or chat-completions stream.
fn on_event(
    event: &SseEvent,
    recorder: &mut StreamRecorder,
    progress: &mut StreamProgress,
) -> Result<(), Failure> {
    let data = event.data.trim();
    if data == "[DONE]" {
        progress.done = true;
        return Ok(());
    }
    if event.event.as_deref() == Some("error") {
        return Err(Failure::Permanent(format!(
            "the server sent an error event: {}",
            server_message(data)
        )));
    }
    if data.is_empty() {
        return Ok(());
    }
    let value;
    let chunk = match serde_json::from_str::<Chunk>(data) {
        Ok(chunk) => chunk,
        Err(_) => {
            value = serde_json::from_str::<Value>(data).map_err(|err| {
                Failure::Permanent(format!(
                    "invalid JSON in a stream event ({err}): `{}`",
                    excerpt(data, 200)
                ))
            })?;
            Chunk::from_value(&value)
        }
    };
    if chunk.error.is_some() {
        return Err(Failure::Permanent(format!(
            "the server sent an error in the stream: {}",
            server_message(data)
        )));
    }
    chunk.record(event.at, recorder, progress)
}

/// What Podium reads from a completions or chat-completions chunk, or from a whole
/// (non-streamed) response, borrowed from the JSON text where it has no escapes.
///
/// Parsing into this instead of a `serde_json::Value` skips building a map per object
/// and a string per field: that was most of the client's CPU per streamed event
/// (docs/BENCHMARKS.md, "Client overhead"). A chunk that does not fit these types
/// (say a number where a string belongs) is read again leniently from a `Value` by
/// [`Chunk::from_value`], so an odd server is read as before, only slower.
#[derive(Debug, Default, serde::Deserialize)]
struct Chunk<'a> {
    #[serde(default, borrow)]
    choices: Vec<ChunkChoice<'a>>,
    #[serde(default)]
    usage: Option<ChunkUsage>,
    /// Any non-null `error` member.
    #[serde(default)]
    error: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct ChunkChoice<'a> {
    /// Completions put the text here.
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    /// A streamed chat chunk.
    #[serde(default, borrow)]
    delta: Option<ChunkMessage<'a>>,
    /// A whole chat response.
    #[serde(default, borrow)]
    message: Option<ChunkMessage<'a>>,
    #[serde(default, borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct ChunkMessage<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    reasoning: Option<Cow<'a, str>>,
    #[serde(default)]
    tool_calls: Option<Vec<serde::de::IgnoredAny>>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct ChunkUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

impl<'a> Chunk<'a> {
    /// The same reading from any JSON value: fields of an unexpected type count as absent.
    fn from_value(json: &'a Value) -> Chunk<'a> {
        let text = |value: Option<&'a Value>| value.and_then(Value::as_str).map(Cow::Borrowed);
        let message = |value: Option<&'a Value>| {
            value.filter(|m| m.is_object()).map(|m| ChunkMessage {
                content: text(m.get("content")),
                reasoning_content: text(m.get("reasoning_content")),
                reasoning: text(m.get("reasoning")),
                tool_calls: m
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .map(|calls| vec![serde::de::IgnoredAny; calls.len()]),
            })
        };
        let choices = json
            .get("choices")
            .and_then(Value::as_array)
            .map(|choices| {
                choices
                    .iter()
                    .map(|choice| ChunkChoice {
                        text: text(choice.get("text")),
                        delta: message(choice.get("delta")),
                        message: message(choice.get("message")),
                        finish_reason: text(choice.get("finish_reason")),
                    })
                    .collect()
            })
            .unwrap_or_default();
        // A count too large for a u64 (or written as a huge float) reads as u64::MAX,
        // which the recorder refuses; one that is no whole number reads as absent.
        let count = |value: Option<&Value>| {
            let value = value?;
            value.as_u64().or_else(|| {
                value
                    .as_f64()
                    .filter(|n| *n > MAX_TOKEN_COUNT as f64)
                    .map(|_| u64::MAX)
            })
        };
        let usage = json
            .get("usage")
            .filter(|u| u.is_object())
            .map(|u| ChunkUsage {
                prompt_tokens: count(u.get("prompt_tokens")),
                completion_tokens: count(u.get("completion_tokens")),
            });
        Chunk {
            choices,
            usage,
            error: json
                .get("error")
                .filter(|e| !e.is_null())
                .map(|_| serde::de::IgnoredAny),
        }
    }

    /// Hand the chunk's usage and first choice's text, reasoning and finish to the
    /// recorder. An absurd token count in the usage fails the request.
    fn record(
        &self,
        at: Instant,
        recorder: &mut StreamRecorder,
        progress: &mut StreamProgress,
    ) -> Result<(), Failure> {
        if let Some(usage) = &self.usage {
            if let Some(n) = usage.prompt_tokens {
                recorder.set_input_tokens(n)?;
            }
            if let Some(n) = usage.completion_tokens {
                recorder.set_output_tokens(n)?;
            }
        }
        let Some(choice) = self.choices.first() else {
            return Ok(());
        };
        if choice.finish_reason.is_some() {
            progress.finished = true;
        }
        // A streamed chat chunk has `delta`, a whole chat response `message`.
        let message = choice.delta.as_ref().or(choice.message.as_ref());
        fn text<'s>(value: &'s Option<Cow<'_, str>>) -> &'s str {
            value.as_deref().unwrap_or("")
        }
        let content = match &choice.text {
            Some(content) => content.as_ref(),
            None => message.map_or("", |m| text(&m.content)),
        };
        let reasoning = message.map_or("", |m| {
            let reasoning_content = text(&m.reasoning_content);
            if reasoning_content.is_empty() {
                text(&m.reasoning)
            } else {
                reasoning_content
            }
        });
        let tool_call = message
            .and_then(|m| m.tool_calls.as_ref())
            .is_some_and(|calls| !calls.is_empty());
        recorder.on_delta(
            at,
            Delta {
                content,
                reasoning,
                tool_call,
            },
        );
        Ok(())
    }
}

/// A whole JSON body where a stream was asked for: an error, or a complete answer.
fn whole_body(bytes: &[u8], at: Instant, recorder: &mut StreamRecorder) -> Result<(), Failure> {
    let text = String::from_utf8_lossy(bytes);
    let json: Value = serde_json::from_str(&text).map_err(|err| {
        Failure::Permanent(format!(
            "invalid JSON body ({err}): `{}`",
            excerpt(text.trim(), 200)
        ))
    })?;
    let chunk = Chunk::from_value(&json);
    if chunk.error.is_some() {
        return Err(Failure::Permanent(format!(
            "HTTP 200 with an error body: {}",
            server_message(&text)
        )));
    }
    if chunk.choices.is_empty() {
        return Err(Failure::Permanent(format!(
            "the response has no choices: `{}`",
            excerpt(text.trim(), 200)
        )));
    }
    chunk.record(at, recorder, &mut StreamProgress::default())
}

/// A continuation's score (or a whole text's, with an empty context).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct SpanScore {
    logprob: f64,
    is_greedy: bool,
    n_tokens: usize,
}

impl From<SpanScore> for LoglikelihoodResult {
    fn from(score: SpanScore) -> Self {
        LoglikelihoodResult {
            logprob: score.logprob,
            is_greedy: score.is_greedy,
            n_tokens: score.n_tokens,
        }
    }
}

/// Score `continuation` after `context` with one echo+logprobs request.
async fn score_span(
    inner: &Inner,
    context: &str,
    continuation: &str,
) -> Result<LoglikelihoodResult, BackendError> {
    if inner.no_prompt_logprobs.load(Ordering::Relaxed) {
        return Err(BackendError::Unsupported(NO_PROMPT_LOGPROBS.into()));
    }
    let url = format!("{}/completions", inner.base_url);
    let prompt = format!("{context}{continuation}");
    // The key covers where the continuation starts: the same prompt split
    // differently is a different question.
    let cache_key = podium_core::cache_key(
        &url,
        &inner.model,
        &format!(
            "{}\0continuation_start={}",
            loglikelihood_body(&inner.model, &prompt, 0),
            context.len()
        ),
    );
    let score: SpanScore = inner
        .endpoint
        .cached(
            &url,
            &cache_key,
            prompt.len() / 4 + 1,
            |_| {},
            |_start| score_attempt(inner, &url, context, &prompt),
        )
        .await?;
    Ok(score.into())
}

fn loglikelihood_body(model: &str, prompt: &str, max_tokens: u32) -> String {
    json!({
        "model": model,
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "echo": true,
        "logprobs": 1,
    })
    .to_string()
}

/// One attempt at scoring: a request with `max_tokens: 0`, or 1 where the
/// server refuses 0 (then the extra token, past the prompt, is not scored).
async fn score_attempt(
    inner: &Inner,
    url: &str,
    context: &str,
    prompt: &str,
) -> Result<(SpanScore, Option<u64>), Failure> {
    let zero_rejected = inner.max_tokens_zero_rejected.load(Ordering::Relaxed);
    let body = |max_tokens| loglikelihood_body(&inner.model, prompt, max_tokens);
    let mut answer = post_json(inner, url, body(u32::from(zero_rejected))).await?;
    if let JsonAnswer::Rejected { status, .. } = &answer
        && !zero_rejected
        && (*status == 400 || *status == 422)
    {
        inner
            .max_tokens_zero_rejected
            .store(true, Ordering::Relaxed);
        answer = post_json(inner, url, body(1)).await?;
    }
    let json = match answer {
        JsonAnswer::Json(json) => json,
        JsonAnswer::Rejected { status, message } => {
            let lower = message.to_ascii_lowercase();
            if lower.contains("echo") || lower.contains("logprob") {
                inner.no_prompt_logprobs.store(true, Ordering::Relaxed);
                return Err(Failure::Unsupported(format!(
                    "{NO_PROMPT_LOGPROBS} (the server said: HTTP {status}: {message})"
                )));
            }
            return Err(Failure::Permanent(format!("HTTP {status}: {message}")));
        }
    };
    let tokens = match prompt_token_logprobs(&json, prompt) {
        Ok(tokens) => tokens,
        Err(failure @ Failure::Unsupported(_)) => {
            inner.no_prompt_logprobs.store(true, Ordering::Relaxed);
            return Err(failure);
        }
        Err(failure) => return Err(failure),
    };
    let score = score_tokens(&tokens, context, prompt)?;
    let used = json.pointer("/usage/total_tokens").and_then(Value::as_u64);
    Ok((score, used))
}

enum JsonAnswer {
    Json(Value),
    /// A 4xx other than 408/409/429: the request itself was refused.
    Rejected {
        status: u16,
        message: String,
    },
}

async fn post_json(inner: &Inner, url: &str, body: String) -> Result<JsonAnswer, Failure> {
    let (_, response) = inner.endpoint.post(url, "application/json", body).await?;
    let status = response.status();
    if (400..500).contains(&status) && ![408, 409, 429].contains(&status) {
        let text = response.text().await;
        return Ok(JsonAnswer::Rejected {
            status,
            message: server_message(&text),
        });
    }
    if !response.is_success() {
        return Err(failure_from_status(response).await);
    }
    let bytes = response.bytes().await?;
    let text = String::from_utf8_lossy(&bytes);
    let json: Value = serde_json::from_str(&text).map_err(|err| {
        Failure::Permanent(format!(
            "invalid JSON body ({err}): `{}`",
            excerpt(text.trim(), 200)
        ))
    })?;
    if json.get("error").is_some_and(|e| !e.is_null()) {
        return Err(Failure::Permanent(format!(
            "HTTP 200 with an error body: {}",
            server_message(&text)
        )));
    }
    Ok(JsonAnswer::Json(json))
}

/// One token of an echoed prompt, located in the prompt.
#[derive(Debug, Clone, PartialEq)]
struct PromptToken {
    /// Start and end in `unit`s from the start of the prompt.
    start: usize,
    end: usize,
    /// `None` for the first token, which has no context to be predicted from.
    logprob: Option<f64>,
    /// The token is its position's most likely one.
    is_top: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OffsetUnit {
    Chars,
    Bytes,
}

#[derive(Debug, Clone, PartialEq)]
struct PromptTokens {
    unit: OffsetUnit,
    tokens: Vec<PromptToken>,
}

/// The echoed prompt's tokens with their log-probs, from either layout:
/// the legacy completions one (`tokens`, `token_logprobs`, `top_logprobs`,
/// `text_offset`) or llama.cpp's chat-like one (`content[{token, logprob,
/// top_logprobs}]`). `Unsupported` when the tokens do not cover the prompt
/// (the server ignored `echo`).
fn prompt_token_logprobs(json: &Value, prompt: &str) -> Result<PromptTokens, Failure> {
    let Some(choice) = json.pointer("/choices/0") else {
        return Err(Failure::Permanent(format!(
            "the response has no choices: `{}`",
            excerpt(&json.to_string(), 200)
        )));
    };
    let logprobs = choice.get("logprobs").filter(|l| !l.is_null());
    let Some(logprobs) = logprobs else {
        return Err(Failure::Unsupported(NO_PROMPT_LOGPROBS.into()));
    };
    let tokens = if let Some(content) = logprobs.get("content") {
        content_layout(content, prompt)?
    } else {
        legacy_layout(logprobs, choice.get("text").and_then(Value::as_str), prompt)?
    };
    Ok(tokens)
}

fn malformed(what: &str) -> Failure {
    Failure::Permanent(format!("malformed logprobs in the response: {what}"))
}

fn legacy_layout(
    logprobs: &Value,
    echoed_text: Option<&str>,
    prompt: &str,
) -> Result<PromptTokens, Failure> {
    let strings = |key: &str| -> Result<Vec<&str>, Failure> {
        logprobs
            .get(key)
            .and_then(Value::as_array)
            .ok_or_else(|| malformed(&format!("no `{key}` array")))?
            .iter()
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| malformed(&format!("`{key}` holds a non-string")))
            })
            .collect()
    };
    let tokens = strings("tokens")?;
    let token_logprobs: Vec<Option<f64>> = logprobs
        .get("token_logprobs")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("no `token_logprobs` array"))?
        .iter()
        .map(Value::as_f64)
        .collect();
    if token_logprobs.len() != tokens.len() {
        return Err(malformed("`tokens` and `token_logprobs` differ in length"));
    }
    let top: Vec<Option<&serde_json::Map<String, Value>>> = match logprobs.get("top_logprobs") {
        Some(Value::Array(items)) => items.iter().map(Value::as_object).collect(),
        _ => vec![None; tokens.len()],
    };
    let prompt_chars = prompt.chars().count();
    let starts: Vec<usize> = match logprobs.get("text_offset").and_then(Value::as_array) {
        Some(offsets) => {
            if offsets.len() != tokens.len() {
                return Err(malformed("`text_offset` and `tokens` differ in length"));
            }
            offsets
                .iter()
                .map(|o| o.as_u64().map(|o| o as usize))
                .collect::<Option<_>>()
                .ok_or_else(|| malformed("`text_offset` holds a non-integer"))?
        }
        None => tokens
            .iter()
            .scan(0, |offset, token| {
                let start = *offset;
                *offset += token.chars().count();
                Some(start)
            })
            .collect(),
    };
    let echoed = match echoed_text {
        Some(text) => text.starts_with(prompt),
        None => tokens.concat().starts_with(prompt),
    };
    let mut out = Vec::with_capacity(tokens.len());
    for i in 0..tokens.len() {
        let end = starts
            .get(i + 1)
            .copied()
            .unwrap_or_else(|| starts[i].saturating_add(tokens[i].chars().count()));
        let is_top = match top.get(i).copied().flatten() {
            Some(alternatives) => is_top_choice(
                tokens[i],
                token_logprobs[i],
                alternatives
                    .iter()
                    .filter_map(|(token, lp)| Some((token.as_str(), lp.as_f64()?))),
            ),
            None => false,
        };
        out.push(PromptToken {
            start: starts[i],
            end,
            logprob: token_logprobs[i],
            is_top,
        });
    }
    let covered = echoed
        && out.first().is_some_and(|t| t.start == 0)
        && out.last().is_some_and(|t| t.end >= prompt_chars);
    if !covered && !prompt.is_empty() {
        return Err(Failure::Unsupported(NO_PROMPT_LOGPROBS.into()));
    }
    Ok(PromptTokens {
        unit: OffsetUnit::Chars,
        tokens: out,
    })
}

fn content_layout(content: &Value, prompt: &str) -> Result<PromptTokens, Failure> {
    let items = content
        .as_array()
        .ok_or_else(|| malformed("`content` is not an array"))?;
    let mut echoed: Vec<u8> = Vec::new();
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let token = item
            .get("token")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("a `content` item has no `token`"))?;
        // `bytes` is exact where a token is part of a UTF-8 character.
        let bytes: Vec<u8> = match item.get("bytes").and_then(Value::as_array) {
            Some(bytes) => bytes
                .iter()
                .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect::<Option<_>>()
                .ok_or_else(|| malformed("`bytes` holds a non-byte"))?,
            None => token.as_bytes().to_vec(),
        };
        let logprob = item.get("logprob").and_then(Value::as_f64);
        let alternatives = item
            .get("top_logprobs")
            .and_then(Value::as_array)
            .map(|alts| {
                alts.iter()
                    .filter_map(|alt| {
                        Some((alt.get("token")?.as_str()?, alt.get("logprob")?.as_f64()?))
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        let start = echoed.len();
        echoed.extend_from_slice(&bytes);
        out.push(PromptToken {
            start,
            end: echoed.len(),
            logprob,
            is_top: is_top_choice(token, logprob, alternatives.into_iter()),
        });
    }
    if !prompt.is_empty() && !echoed.starts_with(prompt.as_bytes()) {
        return Err(Failure::Unsupported(NO_PROMPT_LOGPROBS.into()));
    }
    Ok(PromptTokens {
        unit: OffsetUnit::Bytes,
        tokens: out,
    })
}

/// Whether `token` is the most likely at its position: it is the top
/// alternative, or no alternative is more likely than it.
fn is_top_choice<'a>(
    token: &str,
    logprob: Option<f64>,
    alternatives: impl Iterator<Item = (&'a str, f64)>,
) -> bool {
    let best = alternatives.fold(None::<(&str, f64)>, |best, (alt, lp)| match best {
        Some((_, best_lp)) if best_lp >= lp => best,
        _ => Some((alt, lp)),
    });
    match (best, logprob) {
        (Some((best_token, _)), _) if best_token == token => true,
        (Some((_, best_lp)), Some(lp)) => lp >= best_lp - 1e-9 * best_lp.abs().max(1.0),
        _ => false,
    }
}

/// Sum the log-probs of the tokens covering `prompt[context.len()..]`. A token
/// that straddles the boundary counts as the continuation's; tokens past the
/// prompt (generated ones) do not count.
fn score_tokens(tokens: &PromptTokens, context: &str, prompt: &str) -> Result<SpanScore, Failure> {
    let (context_len, prompt_len) = match tokens.unit {
        OffsetUnit::Chars => (context.chars().count(), prompt.chars().count()),
        OffsetUnit::Bytes => (context.len(), prompt.len()),
    };
    let mut score = SpanScore {
        logprob: 0.0,
        is_greedy: true,
        n_tokens: 0,
    };
    for token in &tokens.tokens {
        if token.start >= prompt_len {
            break;
        }
        if token.end <= context_len {
            continue;
        }
        match token.logprob {
            Some(logprob) => {
                score.logprob += logprob;
                score.is_greedy &= token.is_top;
                score.n_tokens += 1;
            }
            // The prompt's first token has no log-prob (nothing predicts it).
            None if token.start == 0 => {}
            None => {
                return Err(malformed(&format!(
                    "the token at offset {} has no log-prob",
                    token.start
                )));
            }
        }
    }
    Ok(score)
}

/// [`on_event`] on one event's `data`, for the fuzz harness.
pub(crate) fn fuzz_event(data: &str) -> Result<(), String> {
    let mut recorder = StreamRecorder::new(Instant::now(), 0.0);
    let event = SseEvent {
        event: None,
        data: data.to_string(),
        at: Instant::now(),
    };
    on_event(&event, &mut recorder, &mut StreamProgress::default())
        .map_err(|f| f.message().to_string())?;
    recorder.finish(&["\n".to_string()], Instant::now(), 1);
    Ok(())
}

/// Echoed log-probs read and scored as [`score_attempt`] does, for the fuzz harness;
/// `context_len` is cut down to a character boundary of `prompt`.
pub(crate) fn fuzz_logprobs(body: &str, prompt: &str, context_len: usize) -> Result<(), String> {
    let mut cut = context_len.min(prompt.len());
    while !prompt.is_char_boundary(cut) {
        cut -= 1;
    }
    let json: Value = serde_json::from_str(body).map_err(|err| err.to_string())?;
    let tokens = prompt_token_logprobs(&json, prompt).map_err(|f| f.message().to_string())?;
    score_tokens(&tokens, &prompt[..cut], prompt).map_err(|f| f.message().to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn legacy(prompt_tokens: &[(&str, Option<f64>, &str)]) -> Value {
        let mut offset = 0;
        let mut offsets = Vec::new();
        for (token, _, _) in prompt_tokens {
            offsets.push(offset);
            offset += token.chars().count();
        }
        json!({"choices": [{
            "text": prompt_tokens.iter().map(|t| t.0).collect::<String>(),
            "logprobs": {
                "tokens": prompt_tokens.iter().map(|t| t.0).collect::<Vec<_>>(),
                "token_logprobs": prompt_tokens.iter().map(|t| t.1).collect::<Vec<_>>(),
                "top_logprobs": prompt_tokens.iter().map(|t| match t.1 {
                    Some(lp) => json!({ t.2: if t.2 == t.0 { lp } else { lp + 0.5 } }),
                    None => Value::Null,
                }).collect::<Vec<_>>(),
                "text_offset": offsets,
            }
        }]})
    }

    fn check_score(json: &Value, context: &str, continuation: &str, expected: (f64, bool, usize)) {
        let prompt = format!("{context}{continuation}");
        let tokens = prompt_token_logprobs(json, &prompt).unwrap();
        let score = score_tokens(&tokens, context, &prompt).unwrap();
        assert!(
            (score.logprob - expected.0).abs() < 1e-12,
            "{score:?} vs {expected:?}"
        );
        assert_eq!((score.is_greedy, score.n_tokens), (expected.1, expected.2));
    }

    /// Feed `events` through `on_event` (typed parse, `Value` fallback) or straight
    /// through the lenient `Value` reading; the finished result, in words.
    fn read_stream(events: &[&str], lenient_only: bool) -> Result<String, String> {
        let t0 = Instant::now();
        let mut recorder = StreamRecorder::new(t0, 0.0);
        let mut progress = StreamProgress::default();
        for (i, data) in events.iter().enumerate() {
            let at = t0 + std::time::Duration::from_millis(i as u64 + 1);
            if lenient_only {
                let value: Value = serde_json::from_str(data).unwrap();
                Chunk::from_value(&value)
                    .record(at, &mut recorder, &mut progress)
                    .map_err(|f| format!("{f:?}"))?;
            } else {
                let event = SseEvent {
                    event: None,
                    data: data.to_string(),
                    at,
                };
                on_event(&event, &mut recorder, &mut progress).map_err(|f| format!("{f:?}"))?;
            }
        }
        let mut result = recorder.finish(&[], t0, 1);
        // Each call has its own t0; the rest must agree.
        if let Some(timing) = &mut result.timing {
            timing.started = None;
        }
        Ok(format!("{result:?} finished={}", progress.finished))
    }

    #[test]
    fn typed_chunks_read_like_the_lenient_value_reading() {
        let streams: [&[&str]; 5] = [
            // Completions, with the final usage chunk (no choices).
            &[
                r#"{"id":"c","object":"text_completion","choices":[{"index":0,"text":"Hel","logprobs":null,"finish_reason":null}]}"#,
                r#"{"choices":[{"index":0,"text":"lo \"x\" \u00e9","finish_reason":"length"}]}"#,
                r#"{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}"#,
            ],
            // Chat deltas with reasoning, then the answer, then a tool call.
            &[
                r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":null,"reasoning_content":"think"}}]}"#,
                r#"{"choices":[{"index":0,"delta":{"reasoning":"more"}}]}"#,
                r#"{"choices":[{"index":0,"delta":{"content":"<think>a</think>Answer"}}]}"#,
                r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]},"finish_reason":"tool_calls"}],"usage":null}"#,
            ],
            // A whole chat message where a delta was expected.
            &[
                r#"{"choices":[{"message":{"role":"assistant","content":"Whole"},"finish_reason":"stop"}],"usage":{"prompt_tokens":2,"completion_tokens":1}}"#,
            ],
            // Types the typed reading rejects: read leniently, not as an error.
            &[
                r#"{"choices":[{"text":"a","finish_reason":7}]}"#,
                r#"{"choices":[{"delta":{"content":["part"]}},{"text":"ignored"}],"usage":{"prompt_tokens":1.5,"completion_tokens":4}}"#,
                r#"{"choices":"none","usage":[]}"#,
            ],
            // Null error members are not errors.
            &[r#"{"error":null,"choices":[{"text":"ok","finish_reason":"stop"}]}"#],
        ];
        for (i, events) in streams.iter().enumerate() {
            // Stream 3 is the one the typed reading must reject (and fall back on).
            for data in events.iter() {
                let typed = serde_json::from_str::<Chunk>(data);
                assert_eq!(typed.is_ok(), i != 3, "{data}: {typed:?}");
            }
            let typed = read_stream(events, false).unwrap();
            assert_eq!(typed, read_stream(events, true).unwrap(), "{events:?}");
        }
        let whole = read_stream(streams[0], false).unwrap();
        assert!(whole.contains(r#"Hello \"x\" é"#), "{whole}");
        assert!(whole.contains("finished=true"));
    }

    #[test]
    fn error_members_and_bad_json_in_a_stream_fail() {
        let err = read_stream(&[r#"{"error":{"message":"overloaded"}}"#], false).unwrap_err();
        assert!(err.contains("overloaded"), "{err}");
        let err = read_stream(&[r#"{"choices":[{"text":"a"}"#], false).unwrap_err();
        assert!(err.contains("invalid JSON in a stream event"), "{err}");
    }

    #[test]
    fn legacy_layout_sums_the_continuation() {
        let json = legacy(&[
            ("Q", None, "Q"),
            (":", Some(-1.0), ":"),
            (" yes", Some(-0.25), " yes"),
            (" sir", Some(-0.5), " no"),
        ]);
        check_score(&json, "Q:", " yes sir", (-0.75, false, 2));
        check_score(&json, "Q: yes", " sir", (-0.5, false, 1));
        check_score(&json, "Q:", " yes", (-0.25, true, 1));
        // A boundary inside a token gives the whole token to the continuation.
        check_score(&json, "Q: y", "es", (-0.25, true, 1));
        // Rolling: every token with a log-prob.
        check_score(&json, "", "Q: yes sir", (-1.75, false, 3));
    }

    #[test]
    fn generated_tokens_past_the_prompt_do_not_count() {
        let json = legacy(&[
            ("A", None, "A"),
            ("B", Some(-1.0), "B"),
            ("C", Some(-2.0), "C"),
        ]);
        check_score(&json, "A", "B", (-1.0, true, 1));
    }

    #[test]
    fn content_layout_with_bytes() {
        let json = json!({"choices": [{"logprobs": {"content": [
            {"token": "é", "logprob": -0.5, "bytes": [195, 169], "top_logprobs": [{"token": "é", "logprob": -0.5}]},
            {"token": "t", "logprob": -1.5, "bytes": [116], "top_logprobs": [{"token": "a", "logprob": -0.1}]},
            {"token": "é", "logprob": -0.25, "top_logprobs": [{"token": "é", "logprob": -0.25}]},
        ]}}]});
        check_score(&json, "é", "té", (-1.75, false, 2));
        check_score(&json, "ét", "é", (-0.25, true, 1));
    }

    #[test]
    fn no_echo_is_unsupported() {
        let prompt = "Q: yes";
        // llama.cpp: only the generated token, no prompt tokens.
        let generated_only = json!({"choices": [{"text": "!", "logprobs": {"content": [
            {"token": "!", "logprob": -0.1, "top_logprobs": []}
        ]}}]});
        // Legacy layout without echo: offsets start at the prompt's end.
        let offsets_after_prompt = json!({"choices": [{"text": "!", "logprobs": {
            "tokens": ["!"], "token_logprobs": [-0.1], "top_logprobs": [null], "text_offset": [6]
        }}]});
        let no_logprobs = json!({"choices": [{"text": "", "logprobs": null}]});
        for json in [generated_only, offsets_after_prompt, no_logprobs] {
            assert!(
                matches!(
                    prompt_token_logprobs(&json, prompt),
                    Err(Failure::Unsupported(_))
                ),
                "{json}"
            );
        }
    }

    #[test]
    fn specs() {
        let backend = OpenAiBackend::open(
            "openai-compatible:http://127.0.0.1:8000#m?api=chat&concurrency=2",
            None,
        )
        .unwrap();
        let identity = backend.identity();
        assert_eq!(
            identity.spec,
            "openai-compatible:http://127.0.0.1:8000/v1#m?api=chat"
        );
        assert_eq!(identity.fingerprint, "http://127.0.0.1:8000/v1#m");
        let err = |spec: &str| OpenAiBackend::open(spec, None).unwrap_err().to_string();
        assert!(err("openai-compatible:http://x/v1").contains("BASE_URL#SERVED_MODEL"));
        assert!(err("openai-compatible:x/v1#m").contains("needs a scheme"));
        let query = err("openai-compatible:http://127.0.0.1:8000?#api_key=sk-0123456789abcdef");
        assert!(query.contains("has a query"), "{query}");
        assert!(!query.contains("0123456789abcdef"), "{query}");
        let in_url = err("openai-compatible:http://h/v1?api_key=sk-0123456789abcdef#m");
        assert!(!in_url.contains("0123456789abcdef"), "{in_url}");
        // No scheme, and a key after an earlier `#`: the message stops before it.
        let no_scheme = err("openai-compatible:h7#?api_key=sk-0123456789abcdef#?x");
        assert!(!no_scheme.contains("0123456789abcdef"), "{no_scheme}");
        assert!(err("openai-compatible:http://x/v1#m?foo=1").contains("unknown option `foo`"));
        let pasted = err("openai-compatible:http://x/v1#m?api_key=sk-secret-123");
        assert!(!pasted.contains("sk-secret-123"), "{pasted}");
        assert!(pasted.contains("api_key_env=NAME"), "{pasted}");
        let missing = err("openai-compatible:http://x/v1#m?api_key_env=PODIUM_TEST_SURELY_UNSET");
        assert!(
            missing.contains("PODIUM_TEST_SURELY_UNSET is not set"),
            "{missing}"
        );
    }

    #[test]
    fn generation_bodies() {
        let request = GenerateRequest {
            messages: None,
            context: "Q: 2+2?\nA:".into(),
            until: ["\n\n", "Q:", "", "</s>", "<|im_end|>", "Question:"]
                .map(String::from)
                .to_vec(),
            max_tokens: 32,
            temperature: 0.7,
            top_p: 0.9,
            do_sample: false,
            seed: 5,
        };
        let body = generation_body("m", OpenAiApi::Completions, &request);
        assert_eq!(
            body.to_string(),
            r#"{"model":"m","prompt":"Q: 2+2?\nA:","max_tokens":32,"temperature":0.0,"top_p":0.9,"seed":5,"stop":["\n\n","Q:","</s>","<|im_end|>"],"stream":true,"stream_options":{"include_usage":true}}"#
        );
        let chat = generation_body("m", OpenAiApi::Chat, &request);
        assert_eq!(chat["messages"][0]["content"], "Q: 2+2?\nA:");
        // A chat-shaped request sends its own messages, system prompt first.
        let messages = vec![
            podium_core::ChatMessage {
                role: "system".into(),
                content: "Be brief.".into(),
            },
            podium_core::ChatMessage {
                role: "user".into(),
                content: "2+2?".into(),
            },
        ];
        let chat_shaped = GenerateRequest {
            messages: Some(messages),
            ..request.clone()
        };
        let chat = generation_body("m", OpenAiApi::Chat, &chat_shaped);
        assert_eq!(
            chat["messages"],
            json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}])
        );
        // The completions API still gets the rendered text.
        let plain = generation_body("m", OpenAiApi::Completions, &chat_shaped);
        assert_eq!(plain["prompt"], "Q: 2+2?\nA:");
        assert!(chat.get("prompt").is_none());
    }
}
