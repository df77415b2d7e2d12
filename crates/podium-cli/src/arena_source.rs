//! The arena's answers for `podium serve --arena`: each contender is a model
//! backend ([`podium_backends::open`]), asked the prompt as one user turn.
//!
//! The `Backend` trait answers a generation request whole, so an answer
//! reaches the page as one chunk when it is complete; the two sides still
//! arrive independently, each as soon as its model finishes.

use std::sync::Arc;

use futures_util::StreamExt;
use podium_core::{Backend, BackendError, ChatMessage, GenerateRequest};
use podium_web::{AnswerChunk, AnswerSource, AnswerStream};

/// The most tokens one arena answer may have.
pub(crate) const ARENA_MAX_TOKENS: usize = 1024;
/// Sampling temperature of arena answers (people compare typical answers,
/// and a battle repeated gives a fresh pair of answers).
const ARENA_TEMPERATURE: f64 = 0.7;

pub(crate) struct BackendAnswers {
    /// `(spec, backend)`, in the order given.
    contenders: Vec<(String, Arc<dyn Backend>)>,
}

impl BackendAnswers {
    /// Opens every contender; a spec that does not open is the user's error.
    pub(crate) fn open(specs: &[String]) -> anyhow::Result<BackendAnswers> {
        let mut contenders: Vec<(String, Arc<dyn Backend>)> = Vec::new();
        for spec in specs {
            if contenders.iter().any(|(s, _)| s == spec) {
                return Err(
                    crate::UserError(format!("--contender `{spec}` is given twice")).into(),
                );
            }
            contenders.push((spec.clone(), podium_backends::open(spec)?));
        }
        if contenders.len() < 2 {
            return Err(crate::UserError(
                "--arena needs at least two --contender models to pair".into(),
            )
            .into());
        }
        Ok(BackendAnswers { contenders })
    }
}

/// The context a backend is given: its chat template around the prompt
/// when it has one (local models), else the prompt itself (chat APIs wrap
/// it as the user's message).
fn context(backend: &dyn Backend, prompt: &str) -> String {
    let messages = [ChatMessage {
        role: "user".into(),
        content: prompt.to_string(),
    }];
    backend
        .apply_chat_template(&messages, true)
        .unwrap_or_else(|_| prompt.to_string())
}

async fn answer_once(backend: Arc<dyn Backend>, prompt: String) -> Result<AnswerChunk, String> {
    let request = GenerateRequest {
        context: context(backend.as_ref(), &prompt),
        until: Vec::new(),
        max_tokens: ARENA_MAX_TOKENS,
        temperature: ARENA_TEMPERATURE,
        top_p: 1.0,
        do_sample: true,
        seed: rand_seed(),
    };
    let mut results = backend
        .generate_until(std::slice::from_ref(&request))
        .await
        .map_err(|err: BackendError| err.to_string())?;
    let result = results
        .pop()
        .ok_or_else(|| "the backend returned no result".to_string())?
        .map_err(|err| err.to_string())?;
    Ok(AnswerChunk {
        text: result.text.trim_start().to_string(),
        output_tokens: result.n_output_tokens,
    })
}

/// A sampling seed per answer, from the clock and a counter (no need for
/// secrecy: it only varies the text).
fn rand_seed() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl AnswerSource for BackendAnswers {
    fn models(&self) -> Vec<String> {
        self.contenders
            .iter()
            .map(|(spec, _)| spec.clone())
            .collect()
    }

    fn answer(&self, model: &str, prompt: &str) -> AnswerStream {
        let Some((_, backend)) = self.contenders.iter().find(|(spec, _)| spec == model) else {
            let message = format!("`{model}` is not a contender");
            return futures_util::stream::once(async move { Err(message) }).boxed();
        };
        futures_util::stream::once(answer_once(Arc::clone(backend), prompt.to_string())).boxed()
    }
}
