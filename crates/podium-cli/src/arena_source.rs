//! The arena's answers for `podium serve --arena`: each contender is a model
//! backend ([`podium_backends::open`]), asked the prompt as one user turn.
//!
//! A local model (`local:`, `gguf:`) streams its answer as it is generated
//! (`LocalBackend::generate_stream`); any other backend answers through the
//! `Backend` trait, whole, so its answer reaches the page as one chunk when it
//! is complete. The two sides arrive independently either way.

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
    contenders: Vec<(String, Contender)>,
}

enum Contender {
    /// A local model, whose answers stream token by token.
    Local(Arc<podium_local::LocalBackend>),
    Any(Arc<dyn Backend>),
}

impl BackendAnswers {
    /// Opens every contender; a spec that does not open is the user's error.
    pub(crate) fn open(specs: &[String]) -> anyhow::Result<BackendAnswers> {
        let mut contenders: Vec<(String, Contender)> = Vec::new();
        for spec in specs {
            if contenders.iter().any(|(s, _)| s == spec) {
                return Err(
                    crate::UserError(format!("--contender `{spec}` is given twice")).into(),
                );
            }
            let contender = match spec.split_once(':') {
                Some((kind @ ("local" | "gguf"), rest)) => {
                    Contender::Local(Arc::new(podium_backends::open_local(kind, rest, spec)?))
                }
                _ => Contender::Any(podium_backends::open(spec)?),
            };
            contenders.push((spec.clone(), contender));
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

fn request(backend: &dyn Backend, prompt: &str) -> GenerateRequest {
    GenerateRequest {
        messages: None,
        context: context(backend, prompt),
        until: Vec::new(),
        max_tokens: ARENA_MAX_TOKENS,
        temperature: ARENA_TEMPERATURE,
        top_p: 1.0,
        do_sample: true,
        seed: rand_seed(),
    }
}

/// A local model's answer as it is generated: a chunk per piece of text
/// (leading whitespace dropped, as for whole answers), then an empty chunk
/// with the token count. Dropping the stream stops the generation.
fn local_stream(backend: &podium_local::LocalBackend, prompt: &str) -> AnswerStream {
    use podium_local::StreamEvent;
    let events = backend.generate_stream(request(backend, prompt));
    let started = false;
    futures_util::stream::unfold(
        (events, started, false),
        |(mut events, mut started, finished)| async move {
            if finished {
                return None;
            }
            loop {
                let item = match events.recv().await {
                    None => Err(BackendError::Fatal("the local model stopped".to_string())),
                    Some(StreamEvent::Error(err)) => Err(err),
                    Some(StreamEvent::Done(result)) => {
                        let chunk = AnswerChunk {
                            text: String::new(),
                            output_tokens: result.n_output_tokens,
                        };
                        return Some((Ok(chunk), (events, started, true)));
                    }
                    Some(StreamEvent::Text(text)) => {
                        let text = if started {
                            text
                        } else {
                            text.trim_start().to_string()
                        };
                        if text.is_empty() {
                            continue;
                        }
                        started = true;
                        Ok(AnswerChunk {
                            text,
                            output_tokens: None,
                        })
                    }
                };
                let finished = item.is_err();
                return Some((item, (events, started, finished)));
            }
        },
    )
    .boxed()
}

async fn answer_once(
    backend: Arc<dyn Backend>,
    prompt: String,
) -> Result<AnswerChunk, BackendError> {
    let request = request(backend.as_ref(), &prompt);
    let mut results = backend
        .generate_until(std::slice::from_ref(&request))
        .await?;
    let result = results
        .pop()
        .ok_or_else(|| BackendError::Request("the backend returned no result".to_string()))??;
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
        let Some((_, contender)) = self.contenders.iter().find(|(spec, _)| spec == model) else {
            let error = BackendError::Request(format!("`{model}` is not a contender"));
            return futures_util::stream::once(async move { Err(error) }).boxed();
        };
        match contender {
            Contender::Local(local) => local_stream(local, prompt),
            Contender::Any(backend) => {
                futures_util::stream::once(answer_once(Arc::clone(backend), prompt.to_string()))
                    .boxed()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A local contender's answer arrives in pieces as it is generated, the
    /// last chunk carrying the token count; together they are the answer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_local_contender_streams_its_answer() {
        let Some(path) = podium_testkit::models::test_model(podium_testkit::models::SMOLLM2) else {
            return;
        };
        let gguf = format!("gguf:{}", path.display());
        let answers = BackendAnswers::open(&[gguf.clone(), "mock:other".to_owned()]).unwrap();
        let chunks: Vec<AnswerChunk> = answers
            .answer(&gguf, "Name three colours.")
            .map(|chunk| chunk.unwrap())
            .collect()
            .await;
        let texts: Vec<&str> = chunks
            .iter()
            .map(|c| c.text.as_str())
            .filter(|t| !t.is_empty())
            .collect();
        assert!(texts.len() > 1, "one piece only: {texts:?}");
        assert!(!texts[0].starts_with(char::is_whitespace));
        let last = chunks.last().unwrap();
        assert!(last.text.is_empty() && last.output_tokens.is_some_and(|n| n > 0));
        // A mock contender answers whole, in one chunk.
        let mock: Vec<_> = answers.answer("mock:other", "hi").collect().await;
        assert_eq!(mock.len(), 1);
        assert!(mock[0].is_ok());
    }
}
