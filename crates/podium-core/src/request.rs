//! Requests the evaluation engine hands to a backend, and what comes back.

use serde::{Deserialize, Serialize};

/// Score continuations of one shared context.
///
/// A multiple-choice question is one request: the context is the prompt and
/// each choice (with its target delimiter already prepended) is a continuation,
/// so a backend may compute the context once and reuse it for every choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoglikelihoodRequest {
    pub context: String,
    pub continuations: Vec<String>,
}

/// The score of one continuation given its context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoglikelihoodResult {
    /// Sum of the natural-log probabilities of the continuation's tokens.
    pub logprob: f64,
    /// Whether greedy decoding from the context would produce exactly this continuation.
    pub is_greedy: bool,
    /// Number of tokens the continuation was scored over.
    pub n_tokens: usize,
}

/// Score a whole text with no context (perplexity tasks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollingRequest {
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollingResult {
    /// Sum of the natural-log probabilities of every token of the text.
    pub logprob: f64,
    pub n_tokens: usize,
}

/// One chat turn, for backends that take messages or render a chat template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

/// Generate text after a context until a stop string or a token limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateRequest {
    pub context: String,
    /// Stop strings; the result's text is cut before the first one found.
    pub until: Vec<String>,
    pub max_tokens: usize,
    /// 0 means greedy decoding.
    pub temperature: f64,
    pub top_p: f64,
    pub do_sample: bool,
    /// Seed for sampling; the same seed and request give the same text.
    pub seed: u64,
    /// The prompt as chat messages, for tasks that are chat-shaped (a
    /// `messages` column, a system prompt): chat APIs send these instead of
    /// `context` as one user message. Absent (and not serialized) for every
    /// other task, so their request hashes and cache keys stay as they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<ChatMessage>>,
}

/// Where a token count came from (the server's `usage`, or our own tokenizer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenCountSource {
    Server,
    Tokenizer,
    Engine,
    Estimate,
}

/// Timing of one request, in seconds from a monotonic clock (see METRICS.md).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestTiming {
    pub queue_s: f64,
    pub ttft_s: Option<f64>,
    pub ttfat_s: Option<f64>,
    pub e2e_s: f64,
    /// Gaps between consecutive token-bearing events.
    pub inter_chunk_s: Vec<f64>,
    /// The result came from the response cache: these are the timings of the
    /// original request, not of this run.
    #[serde(default)]
    pub cached: bool,
    /// HTTP attempts made (1 when the first one succeeded; 0 when unknown).
    #[serde(default)]
    pub attempts: u32,
    /// When the request was written (the instant `ttft_s` and `e2e_s` count from), so
    /// that a benchmark can join its stamps with a server's. Not stored.
    #[serde(skip)]
    pub started: Option<std::time::Instant>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateResult {
    /// The answer text, cut before the first stop string.
    pub text: String,
    /// Reasoning text kept apart from the answer, if the model produced any.
    pub reasoning: Option<String>,
    pub n_input_tokens: Option<usize>,
    pub n_output_tokens: Option<usize>,
    pub token_count_source: TokenCountSource,
    pub timing: Option<RequestTiming>,
}
