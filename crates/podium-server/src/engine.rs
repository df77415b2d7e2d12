//! What `serve-model` needs from a model, and the worker thread that runs it:
//! the model is blocking CPU work, so it runs on one thread of its own fed by one
//! bounded queue; a full queue is answered 429 by the HTTP layer. The engine is
//! called directly on that thread (for a local model, `LocalEngine` runs the
//! model in the calling thread): no second thread or queue sits behind it.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use podium_core::ChatMessage;

#[derive(Debug, Clone, PartialEq)]
pub struct GenerateParams {
    pub max_tokens: usize,
    /// 0 means greedy.
    pub temperature: f64,
    pub top_p: f64,
    pub seed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    Stop,
    Length,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOutcome {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub finish_reason: FinishReason,
}

/// One prompt token with its log-prob given the tokens before it.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenLogprob {
    pub token: String,
    /// `None` for the first token, which has no context.
    pub logprob: Option<f64>,
    /// The most likely token at this position and its log-prob.
    pub top: Option<(String, f64)>,
    /// Byte offset of the token in the prompt text.
    pub offset: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PromptScores {
    pub tokens: Vec<TokenLogprob>,
    /// The greedy next token after the prompt (for `max_tokens: 1` with echo).
    pub next: TokenLogprob,
}

/// A completion prompt: text, or token ids (what lm-evaluation-harness's
/// `local-completions` sends when it tokenizes itself).
#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    Text(String),
    Ids(Vec<u32>),
}

/// What vLLM's `GET /tokenizer_info` reports, which lm-evaluation-harness's `remote`
/// tokenizer reads.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TokenizerInfo {
    pub bos_token: Option<String>,
    pub eos_token: Option<String>,
    pub pad_token: Option<String>,
    pub chat_template: Option<String>,
    pub max_model_len: usize,
}

/// Why an engine call failed. The HTTP layer answers [`EngineError::Invalid`] with 400
/// and [`EngineError::Failed`] with 500 (`ApiError`'s `From`, the one mapping).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    /// The request cannot be served as asked: text the tokenizer refuses, an empty
    /// prompt, messages the chat template rejects.
    #[error("{0}")]
    Invalid(String),
    /// The model failed on a request that passed validation.
    #[error("{0}")]
    Failed(String),
}

impl EngineError {
    pub fn invalid(err: impl std::fmt::Display) -> EngineError {
        EngineError::Invalid(err.to_string())
    }

    pub fn failed(err: impl std::fmt::Display) -> EngineError {
        EngineError::Failed(err.to_string())
    }
}

/// A model `serve-model` can serve. Methods block; `generate` and `prompt_logprobs` run
/// on the worker thread (the one thread that runs the model: they compute in the
/// calling thread), the tokenizer methods on a blocking-pool thread. A panic in
/// `generate` or `prompt_logprobs_batch` fails the requests of that call (500) and the
/// worker goes on.
pub trait Engine: Send + Sync + 'static {
    fn model_id(&self) -> String;

    /// Render chat messages with the model's chat template, generation prompt added.
    fn chat_prompt(&self, messages: &[ChatMessage]) -> Result<String, EngineError>;

    /// Generate from `prompt`, calling `on_text` with each new piece of text;
    /// stop when it returns false (a stop string was reached or the client left).
    /// The prompt is tokenized as `tokenize(prompt, true)`; the HTTP layer has checked
    /// that those tokens and `max_tokens` fit in `tokenizer_info().max_model_len`.
    fn generate(
        &self,
        prompt: &str,
        params: &GenerateParams,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<GenerateOutcome, EngineError>;

    /// Log-probs of every prompt token after the ones before it, and the greedy next
    /// token. A text prompt is tokenized with the model's special tokens (BOS).
    fn prompt_logprobs(&self, prompt: &Prompt) -> Result<PromptScores, EngineError>;

    /// Scores several prompts at once (the worker batches queued scoring requests);
    /// by default one by one. An engine that can pack them into shared forward passes
    /// overrides this.
    fn prompt_logprobs_batch(&self, prompts: &[Prompt]) -> Vec<Result<PromptScores, EngineError>> {
        prompts.iter().map(|p| self.prompt_logprobs(p)).collect()
    }

    /// Token ids of `text`; control-token text becomes the control token.
    fn tokenize(&self, text: &str, add_special: bool) -> Result<Vec<u32>, EngineError>;

    /// Text of `ids` (control tokens left out).
    fn detokenize(&self, ids: &[u32]) -> Result<String, EngineError>;

    fn tokenizer_info(&self) -> TokenizerInfo;

    /// How many token ids the model has: a token-id prompt may use ids below it.
    fn vocab_size(&self) -> usize;
}

pub(crate) enum Piece {
    Text(String),
    Done(Result<GenerateOutcome, EngineError>),
}

pub(crate) enum Job {
    Generate {
        prompt: String,
        params: GenerateParams,
        stop: Vec<String>,
        pieces: mpsc::UnboundedSender<Piece>,
    },
    Score {
        prompt: Prompt,
        reply: ScoreReply,
    },
}

/// The queue in front of the worker thread.
#[derive(Clone)]
pub struct Worker {
    pub(crate) jobs: mpsc::Sender<Job>,
    pub(crate) model_id: String,
    pub(crate) engine: Arc<dyn Engine>,
}

impl Worker {
    /// Start the worker thread (named `podium-model`), the one thread that runs the
    /// model, with a queue of `queue_size` waiting requests: a request that finds it
    /// full is refused at once, never queued elsewhere.
    pub fn start(engine: Arc<dyn Engine>, queue_size: usize) -> Worker {
        let (jobs, mut receiver) = mpsc::channel::<Job>(queue_size.max(1));
        let thread_engine = engine.clone();
        std::thread::Builder::new()
            .name("podium-model".into())
            .spawn(move || {
                // A job taken from the queue while gathering a batch, run next.
                let mut next: Option<Job> = None;
                loop {
                    let job = match next.take() {
                        Some(job) => job,
                        None => match receiver.blocking_recv() {
                            Some(job) => job,
                            None => break,
                        },
                    };
                    match job {
                        // Scoring requests waiting in the queue are run as one batch.
                        Job::Score { prompt, reply } => {
                            let mut batch = vec![(prompt, reply)];
                            while batch.len() < MAX_SCORE_BATCH {
                                match receiver.try_recv() {
                                    Ok(Job::Score { prompt, reply }) => batch.push((prompt, reply)),
                                    Ok(other) => {
                                        next = Some(other);
                                        break;
                                    }
                                    Err(_) => break,
                                }
                            }
                            run_scores(thread_engine.as_ref(), batch);
                        }
                        Job::Generate {
                            prompt,
                            params,
                            stop,
                            pieces,
                        } => {
                            run_generation(thread_engine.as_ref(), &prompt, &params, stop, &pieces)
                        }
                    }
                }
            })
            .expect("spawning the model thread");
        Worker {
            jobs,
            model_id: engine.model_id(),
            engine,
        }
    }
}

/// Most queued scoring requests run as one batch.
const MAX_SCORE_BATCH: usize = 32;

type ScoreReply = oneshot::Sender<Result<PromptScores, EngineError>>;

/// Runs `call`, turning a panic into [`EngineError::Failed`] (the model thread goes on:
/// an engine keeps no state that a request leaves half-changed).
fn guarded<T>(call: impl FnOnce() -> Result<T, EngineError>) -> Result<T, EngineError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)).unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        Err(EngineError::failed(format!(
            "the model thread panicked: {message}"
        )))
    })
}

fn run_scores(engine: &dyn Engine, batch: Vec<(Prompt, ScoreReply)>) {
    let (prompts, replies): (Vec<Prompt>, Vec<ScoreReply>) = batch.into_iter().unzip();
    let mut results = match guarded(|| Ok(engine.prompt_logprobs_batch(&prompts))) {
        Ok(results) => results.into_iter(),
        Err(panicked) => vec![Err(panicked); prompts.len()].into_iter(),
    };
    for reply in replies {
        let result = results
            .next()
            .unwrap_or_else(|| Err(EngineError::failed("the engine returned too few scores")));
        let _ = reply.send(result);
    }
}

fn run_generation(
    engine: &dyn Engine,
    prompt: &str,
    params: &GenerateParams,
    stop: Vec<String>,
    pieces: &mpsc::UnboundedSender<Piece>,
) {
    let mut matcher = StopMatcher::new(stop);
    let mut stopped = false;
    let outcome = guarded(|| {
        engine.generate(prompt, params, &mut |text| {
            let (emit, hit) = matcher.push(text);
            if !emit.is_empty() && pieces.send(Piece::Text(emit)).is_err() {
                return false;
            }
            stopped |= hit;
            !hit
        })
    });
    if !stopped {
        let rest = matcher.flush();
        if !rest.is_empty() {
            let _ = pieces.send(Piece::Text(rest));
        }
    }
    let outcome = outcome.map(|mut o| {
        if stopped {
            o.finish_reason = FinishReason::Stop;
        }
        o
    });
    let _ = pieces.send(Piece::Done(outcome));
}

/// Cuts generated text at the first stop string, holding back any tail that
/// could still become one, so streamed text never shows part of a stop string.
pub(crate) struct StopMatcher {
    stops: Vec<String>,
    pending: String,
}

impl StopMatcher {
    pub(crate) fn new(stops: Vec<String>) -> StopMatcher {
        StopMatcher {
            stops: stops.into_iter().filter(|s| !s.is_empty()).collect(),
            pending: String::new(),
        }
    }

    /// Add text; returns (text safe to emit, whether a stop string was hit).
    pub(crate) fn push(&mut self, text: &str) -> (String, bool) {
        self.pending.push_str(text);
        if let Some(cut) = podium_core::first_stop(&self.pending, &self.stops) {
            let emit = self.pending[..cut].to_string();
            self.pending.clear();
            return (emit, true);
        }
        // Hold back the longest tail that could still grow into a stop string.
        let split = podium_core::shown_len(&self.pending, &self.stops);
        let emit = self.pending[..split].to_string();
        self.pending.drain(..split);
        (emit, false)
    }

    pub(crate) fn flush(&mut self) -> String {
        std::mem::take(&mut self.pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&str]) -> (String, bool) {
        let mut m = StopMatcher::new(stops.iter().map(|s| s.to_string()).collect());
        let mut out = String::new();
        for p in pieces {
            let (emit, hit) = m.push(p);
            out.push_str(&emit);
            if hit {
                return (out, true);
            }
        }
        out.push_str(&m.flush());
        (out, false)
    }

    #[test]
    fn stop_strings_split_across_pieces() {
        assert_eq!(
            run(&["\n\n"], &["a", "b\n", "\nc"]),
            ("ab".to_string(), true)
        );
        assert_eq!(
            run(&["Q:"], &["x Q", "uiet"]),
            ("x Quiet".to_string(), false)
        );
        assert_eq!(run(&[], &["a", "b"]), ("ab".to_string(), false));
        assert_eq!(
            run(&["end", "stop"], &["we st", "op here"]),
            ("we ".to_string(), true)
        );
    }
}
