//! Streamed generation: the request body, the stream's chunks read as typed borrowed
//! structs (with a lenient `Value` reading as fallback), or one whole JSON body.

use super::*;

use std::borrow::Cow;
use std::time::Instant;

use serde_json::{Value, json};

use podium_core::{BackendError, GenerateRequest, GenerateResult};

use crate::http::{self, AttemptStart, Failure, MAX_TOKEN_COUNT, excerpt, server_message};
use crate::sse::SseEvent;
use crate::timing::{Delta, StreamRecorder};

/// The body of a streamed generation request.
pub(super) fn generation_body(model: &str, api: OpenAiApi, request: &GenerateRequest) -> Value {
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

pub(super) async fn generate_one(
    inner: Arc<Inner>,
    request: GenerateRequest,
) -> Result<GenerateResult, BackendError> {
    let (inner, request) = (inner.as_ref(), &request);
    let url = match inner.api {
        OpenAiApi::Completions => format!("{}/completions", inner.base_url),
        OpenAiApi::Chat => format!("{}/chat/completions", inner.base_url),
    };
    let body = generation_body(&inner.model, inner.api, request).to_string();
    inner
        .endpoint
        .generation(&url, &inner.model, &body, request, |start| {
            stream_generation(inner, &url, &body, &request.until, start)
        })
        .await
}

/// One attempt at a streamed generation.
pub(super) async fn stream_generation(
    inner: &Inner,
    url: &str,
    body: &str,
    stops: &[String],
    start: AttemptStart,
) -> Result<(GenerateResult, Option<u64>), Failure> {
    let (t0, response) = inner.endpoint.post_stream(url, body).await?;
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
pub(super) struct StreamProgress {
    /// `data: [DONE]` arrived.
    done: bool,
    /// A choice carried a `finish_reason`.
    finished: bool,
}

/// Read one event of a completions or chat-completions stream.
pub(super) fn on_event(
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
pub(super) struct Chunk<'a> {
    #[serde(default, borrow)]
    choices: Vec<ChunkChoice<'a>>,
    #[serde(default)]
    usage: Option<ChunkUsage>,
    /// Any non-null `error` member.
    #[serde(default)]
    error: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct ChunkChoice<'a> {
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
pub(super) struct ChunkMessage<'a> {
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
pub(super) struct ChunkUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

impl<'a> Chunk<'a> {
    /// The same reading from any JSON value: fields of an unexpected type count as absent.
    pub(super) fn from_value(json: &'a Value) -> Chunk<'a> {
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
    pub(super) fn record(
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
pub(super) fn whole_body(
    bytes: &[u8],
    at: Instant,
    recorder: &mut StreamRecorder,
) -> Result<(), Failure> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
