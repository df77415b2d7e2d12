//! Decoding and validating `serve-model`'s request bodies, before anything reaches
//! the model: every field OpenAI defines is either implemented, accepted because it
//! cannot change the answer (`model`, `user`), accepted only at its neutral value
//! (`n: 1`, `presence_penalty: 0`, …), or refused with a 400 that names it; unknown
//! fields are refused. The work one request may ask for is bounded by [`Limits`] and
//! by the model's context ([`ModelShape`]). Pure functions of the bytes, so the fuzz
//! target `serve_model_request` runs them without a model.

use serde::Deserialize;
use serde_json::Value as Json;

use podium_core::ChatMessage;

use crate::engine::{GenerateParams, Prompt};
use crate::error::ApiError;

/// Bounds on what one request may ask for. The defaults are documented in the
/// README's `serve-model` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body, in bytes (larger bodies get 413).
    pub max_body_bytes: usize,
    /// Most chat messages in one request.
    pub max_messages: usize,
    /// Most stop strings in one request.
    pub max_stop_strings: usize,
    /// Longest stop string, in bytes.
    pub max_stop_bytes: usize,
    /// Largest `logprobs` of a completion request: the server reports the single
    /// most likely alternative per token.
    pub max_logprobs: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_body_bytes: 4 * 1024 * 1024,
            max_messages: 1024,
            max_stop_strings: 16,
            max_stop_bytes: 256,
            max_logprobs: 1,
        }
    }
}

/// What validation needs to know of the model: its context length and how many
/// token ids it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelShape {
    /// Tokens the model runs on: prompt and generated tokens together.
    pub context: usize,
    /// Token ids run from 0 to `vocab_size - 1`.
    pub vocab_size: usize,
}

/// The generation fields that completions and chat completions share, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Sampling {
    /// `None` when the request left it out (then at most [`DEFAULT_MAX_TOKENS`]).
    pub max_tokens: Option<usize>,
    pub temperature: f64,
    pub top_p: f64,
    pub seed: u64,
    pub stops: Vec<String>,
    pub stream: bool,
    pub include_usage: bool,
}

/// `max_tokens` when a request leaves it out, as OpenAI's completions API does
/// (cut to what the context leaves).
pub const DEFAULT_MAX_TOKENS: usize = 16;

/// A validated `POST /v1/completions` request.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletionRequest {
    pub prompt: Prompt,
    pub sampling: Sampling,
    pub logprobs: Option<u32>,
    pub echo: bool,
}

/// A validated `POST /v1/chat/completions` request.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub messages: Vec<ChatMessage>,
    pub sampling: Sampling,
}

impl Sampling {
    /// The engine's parameters for a generation after a prompt of `prompt_tokens`
    /// tokens: the prompt and `max_tokens` together must fit in the context.
    pub fn params(
        &self,
        prompt_tokens: usize,
        model: &ModelShape,
    ) -> Result<GenerateParams, ApiError> {
        check_prompt_tokens(prompt_tokens, model)?;
        let room = model.context - prompt_tokens;
        let max_tokens = match self.max_tokens {
            Some(max_tokens) if max_tokens > room => {
                return Err(ApiError::context_length(
                    "max_tokens",
                    format!(
                        "`max_tokens` is {max_tokens}, but the prompt has {prompt_tokens} tokens \
                         and the model's context is {} tokens: at most {room} can be generated",
                        model.context
                    ),
                ));
            }
            Some(max_tokens) => max_tokens,
            None if room == 0 => {
                return Err(ApiError::context_length(
                    "prompt",
                    format!(
                        "the prompt has {prompt_tokens} tokens, which fill the model's context \
                         of {} tokens and leave none to generate",
                        model.context
                    ),
                ));
            }
            None => DEFAULT_MAX_TOKENS.min(room),
        };
        Ok(GenerateParams {
            max_tokens,
            temperature: self.temperature,
            top_p: self.top_p,
            seed: self.seed,
        })
    }
}

/// A prompt must have a token, and no more than the context holds.
pub fn check_prompt_tokens(prompt_tokens: usize, model: &ModelShape) -> Result<(), ApiError> {
    if prompt_tokens == 0 {
        return Err(ApiError::invalid_field(
            "prompt",
            "the prompt is empty: it has no tokens",
        ));
    }
    if prompt_tokens > model.context {
        return Err(ApiError::context_length(
            "prompt",
            format!(
                "the prompt has {prompt_tokens} tokens, more than the model's context of {} \
                 tokens",
                model.context
            ),
        ));
    }
    Ok(())
}

/// Decodes and validates a completions body.
pub fn decode_completion(
    body: &[u8],
    limits: &Limits,
    model: &ModelShape,
) -> Result<CompletionRequest, ApiError> {
    let raw: RawCompletion = parse(body)?;
    neutral_u64("n", raw.n, "serve-model returns one choice per request")?;
    neutral_u64(
        "best_of",
        raw.best_of,
        "serve-model returns one choice per request",
    )?;
    if raw.suffix.as_deref().is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::unsupported(
            "suffix",
            "`suffix` is not supported by serve-model",
        ));
    }
    let prompt = match raw.prompt {
        PromptField::One(text) => Prompt::Text(text),
        PromptField::Ids(ids) => Prompt::Ids(ids),
        PromptField::Many(mut v) if v.len() == 1 => Prompt::Text(v.remove(0)),
        PromptField::ManyIds(mut v) if v.len() == 1 => Prompt::Ids(v.remove(0)),
        PromptField::Many(v) if v.is_empty() => Prompt::Ids(Vec::new()),
        PromptField::ManyIds(v) if v.is_empty() => Prompt::Ids(Vec::new()),
        PromptField::Many(_) | PromptField::ManyIds(_) => {
            return Err(ApiError::invalid_field(
                "prompt",
                "send one prompt per request",
            ));
        }
    };
    if let Prompt::Ids(ids) = &prompt {
        check_ids(ids, model)?;
    }
    let sampling = Shared {
        max_tokens: raw.max_tokens,
        temperature: raw.temperature,
        top_p: raw.top_p,
        seed: raw.seed,
        stop: raw.stop,
        stream: raw.stream,
        stream_options: raw.stream_options,
        presence_penalty: raw.presence_penalty,
        frequency_penalty: raw.frequency_penalty,
        logit_bias: raw.logit_bias,
    }
    .validate(limits)?;
    let echo = raw.echo.unwrap_or(false);
    if let Some(logprobs) = raw.logprobs
        && logprobs > limits.max_logprobs
    {
        return Err(ApiError::invalid_field(
            "logprobs",
            format!(
                "`logprobs` is {logprobs}, at most {} is supported: serve-model reports the \
                 most likely alternative of each token",
                limits.max_logprobs
            ),
        ));
    }
    if echo {
        if sampling.stream {
            return Err(ApiError::invalid_field("echo", "`echo` cannot be streamed"));
        }
        if sampling.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS) > 1 {
            return Err(ApiError::invalid_field(
                "max_tokens",
                "with `echo`, `max_tokens` must be 0 or 1",
            ));
        }
    } else if raw.logprobs.is_some() {
        return Err(ApiError::unsupported(
            "logprobs",
            "`logprobs` is supported with `echo: true` (prompt log-probs) only",
        ));
    }
    Ok(CompletionRequest {
        prompt,
        sampling,
        logprobs: raw.logprobs,
        echo,
    })
}

/// Decodes and validates a chat completions body.
pub fn decode_chat(body: &[u8], limits: &Limits) -> Result<ChatRequest, ApiError> {
    let raw: RawChat = parse(body)?;
    if raw.messages.is_empty() {
        return Err(ApiError::invalid_field("messages", "`messages` is empty"));
    }
    if raw.messages.len() > limits.max_messages {
        return Err(ApiError::invalid_field(
            "messages",
            format!(
                "{} messages, more than the limit of {}",
                raw.messages.len(),
                limits.max_messages
            ),
        ));
    }
    neutral_u64("n", raw.n, "serve-model returns one choice per request")?;
    if raw.logprobs == Some(true) {
        return Err(ApiError::unsupported(
            "logprobs",
            "`logprobs` is not supported on chat completions (use /v1/completions with \
             `echo` for prompt log-probs)",
        ));
    }
    if raw.top_logprobs.is_some_and(|k| k > 0) {
        return Err(ApiError::unsupported(
            "top_logprobs",
            "`top_logprobs` is not supported on chat completions",
        ));
    }
    if raw.tools.as_ref().is_some_and(|t| !t.is_empty()) {
        return Err(ApiError::unsupported(
            "tools",
            "`tools` are not supported by serve-model",
        ));
    }
    if raw.tool_choice.as_ref().is_some_and(|c| c != "none") {
        return Err(ApiError::unsupported(
            "tool_choice",
            "`tool_choice` other than \"none\" is not supported by serve-model",
        ));
    }
    if raw.response_format.as_ref().is_some_and(|f| {
        f.get("type").and_then(Json::as_str) != Some("text")
            || f.as_object().is_some_and(|o| o.len() != 1)
    }) {
        return Err(ApiError::unsupported(
            "response_format",
            "`response_format` other than {\"type\": \"text\"} is not supported by serve-model",
        ));
    }
    let sampling = Shared {
        max_tokens: raw.max_tokens,
        temperature: raw.temperature,
        top_p: raw.top_p,
        seed: raw.seed,
        stop: raw.stop,
        stream: raw.stream,
        stream_options: raw.stream_options,
        presence_penalty: raw.presence_penalty,
        frequency_penalty: raw.frequency_penalty,
        logit_bias: raw.logit_bias,
    }
    .validate(limits)?;
    let messages = raw
        .messages
        .into_iter()
        .map(|m| ChatMessage {
            role: m.role,
            content: m.content,
        })
        .collect();
    Ok(ChatRequest { messages, sampling })
}

/// Token ids must name tokens of the model, and fit its context.
fn check_ids(ids: &[u32], model: &ModelShape) -> Result<(), ApiError> {
    check_prompt_tokens(ids.len(), model)?;
    if let Some((position, id)) = ids
        .iter()
        .enumerate()
        .find(|&(_, &id)| id as usize >= model.vocab_size)
    {
        return Err(ApiError::invalid_field(
            "prompt",
            format!(
                "token id {id} at position {position} is outside the model's vocabulary \
                 (ids 0 to {})",
                model.vocab_size.saturating_sub(1)
            ),
        ));
    }
    Ok(())
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|err| ApiError::bad_request(format!("invalid JSON body: {err}")))
}

/// A count field this server supports only at 1 (`n`, `best_of`).
fn neutral_u64(param: &'static str, value: Option<u64>, why: &str) -> Result<(), ApiError> {
    match value {
        None | Some(1) => Ok(()),
        Some(other) => Err(ApiError::unsupported(
            param,
            format!("`{param}` must be 1, got {other}: {why}"),
        )),
    }
}

/// The fields both APIs share, as sent.
struct Shared {
    max_tokens: Option<usize>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    seed: Option<u64>,
    stop: Option<StopField>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    presence_penalty: Option<f64>,
    frequency_penalty: Option<f64>,
    logit_bias: Option<serde_json::Map<String, Json>>,
}

impl Shared {
    /// OpenAI's defaults and ranges, and this server's limits.
    fn validate(self, limits: &Limits) -> Result<Sampling, ApiError> {
        let temperature = self.temperature.unwrap_or(1.0);
        if !(0.0..=2.0).contains(&temperature) {
            return Err(ApiError::invalid_field(
                "temperature",
                format!("temperature must be between 0 and 2, got {temperature}"),
            ));
        }
        let top_p = self.top_p.unwrap_or(1.0);
        if !(top_p > 0.0 && top_p <= 1.0) {
            return Err(ApiError::invalid_field(
                "top_p",
                format!("top_p must be in (0, 1], got {top_p}"),
            ));
        }
        for (param, value) in [
            ("presence_penalty", self.presence_penalty),
            ("frequency_penalty", self.frequency_penalty),
        ] {
            if value.is_some_and(|v| v != 0.0) {
                return Err(ApiError::unsupported(
                    param,
                    format!("`{param}` is not supported by serve-model (only 0 is accepted)"),
                ));
            }
        }
        if self.logit_bias.as_ref().is_some_and(|b| !b.is_empty()) {
            return Err(ApiError::unsupported(
                "logit_bias",
                "`logit_bias` is not supported by serve-model",
            ));
        }
        let stops = match self.stop {
            None => Vec::new(),
            Some(StopField::One(s)) => vec![s],
            Some(StopField::Many(v)) => v,
        };
        if stops.len() > limits.max_stop_strings {
            return Err(ApiError::invalid_field(
                "stop",
                format!(
                    "{} stop strings, more than the limit of {}",
                    stops.len(),
                    limits.max_stop_strings
                ),
            ));
        }
        if let Some(long) = stops.iter().find(|s| s.len() > limits.max_stop_bytes) {
            return Err(ApiError::invalid_field(
                "stop",
                format!(
                    "a stop string of {} bytes, longer than the limit of {} bytes",
                    long.len(),
                    limits.max_stop_bytes
                ),
            ));
        }
        let stream = self.stream.unwrap_or(false);
        if self.stream_options.is_some() && !stream {
            return Err(ApiError::invalid_field(
                "stream_options",
                "`stream_options` needs `stream: true`",
            ));
        }
        Ok(Sampling {
            max_tokens: self.max_tokens,
            temperature,
            top_p,
            seed: self.seed.unwrap_or(0),
            stops,
            stream,
            include_usage: self
                .stream_options
                .is_some_and(|o| o.include_usage.unwrap_or(false)),
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum StopField {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamOptions {
    include_usage: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum PromptField {
    One(String),
    Many(Vec<String>),
    /// Token ids, as lm-evaluation-harness sends them when it tokenizes itself.
    Ids(Vec<u32>),
    ManyIds(Vec<Vec<u32>>),
}

/// Every field of OpenAI's completions API; `model` and `user` are accepted and
/// ignored (one model is served; `user` is for abuse tracking). Anything else is
/// refused by serde with the list of accepted fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCompletion {
    prompt: PromptField,
    #[serde(rename = "model")]
    _model: Option<Json>,
    #[serde(rename = "user")]
    _user: Option<Json>,
    max_tokens: Option<usize>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    seed: Option<u64>,
    stop: Option<StopField>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    logprobs: Option<u32>,
    echo: Option<bool>,
    n: Option<u64>,
    best_of: Option<u64>,
    suffix: Option<String>,
    presence_penalty: Option<f64>,
    frequency_penalty: Option<f64>,
    logit_bias: Option<serde_json::Map<String, Json>>,
}

/// Every field of OpenAI's chat completions API this server implements or accepts at
/// its neutral value; `model` and `user` are accepted and ignored.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChat {
    messages: Vec<RawMessage>,
    #[serde(rename = "model")]
    _model: Option<Json>,
    #[serde(rename = "user")]
    _user: Option<Json>,
    #[serde(alias = "max_completion_tokens")]
    max_tokens: Option<usize>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    seed: Option<u64>,
    stop: Option<StopField>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    n: Option<u64>,
    presence_penalty: Option<f64>,
    frequency_penalty: Option<f64>,
    logit_bias: Option<serde_json::Map<String, Json>>,
    logprobs: Option<bool>,
    top_logprobs: Option<u64>,
    tools: Option<Vec<Json>>,
    tool_choice: Option<Json>,
    response_format: Option<Json>,
}

/// A chat message: text content only (no `name`, tool calls or content parts).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMessage {
    role: String,
    content: String,
}
