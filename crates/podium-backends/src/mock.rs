//! A deterministic fake model for tests and demos of the pipeline: every score
//! and every generated text is a function of a hash of the model name and the
//! request, so runs are reproducible and different mock names disagree.
//!
//! Spec: `mock:NAME[?delay_ms=N&fail_every=K&verdicts=first|hash|grade|rating]`. `delay_ms`
//! sleeps per request (to interrupt runs in tests); `fail_every=K` fails the
//! requests whose hash is divisible by K (to test failure recording and retry
//! on resume); `verdicts` makes it a judge model for `podium arena judge`
//! tests: every generated text ends with a verdict, `[[A>B]]` always for
//! `first` (a judge that always prefers the first answer), and for `hash` one
//! of the five Arena-Hard labels or none at all (an unparseable answer), by
//! the request's hash; `grade` and `rating` make it a judge for the `judge`
//! task metric: `[[PASS]]`, `[[FAIL]]` or no verdict, or a rating `[[1]]` to
//! `[[10]]` or none, by the request's hash.

use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use podium_core::{
    Backend, BackendError, ChatMessage, GenerateRequest, GenerateResult, LoglikelihoodRequest,
    LoglikelihoodResult, ModelIdentity, RollingRequest, RollingResult, TokenCountSource,
};

use crate::OpenError;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MockOptions {
    pub delay_ms: u64,
    pub fail_every: Option<u64>,
    pub verdicts: Option<MockVerdicts>,
}

/// How a mock judge ends its generated texts (`verdicts=first|hash`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MockVerdicts {
    /// Always `[[A>B]]`.
    First,
    /// `[[A>>B]]`, `[[A>B]]`, `[[A=B]]`, `[[B>A]]`, `[[B>>A]]` or no verdict, by hash.
    Hash,
    /// `[[PASS]]` (1/2), `[[FAIL]]` (3/8) or no verdict (1/8), by hash.
    Grade,
    /// `[[1]]` … `[[10]]` (10/11) or no verdict (1/11), by hash.
    Rating,
}

#[derive(Debug, Clone)]
pub struct MockBackend {
    spec: String,
    name: String,
    options: MockOptions,
}

impl MockBackend {
    pub fn new(name: &str, options: MockOptions) -> MockBackend {
        MockBackend {
            spec: format!("mock:{name}"),
            name: name.to_string(),
            options,
        }
    }

    pub(crate) fn from_spec(spec: &str, rest: &str) -> Result<MockBackend, OpenError> {
        let (name, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut options = MockOptions::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if key == "verdicts" {
                options.verdicts = Some(match value {
                    "first" => MockVerdicts::First,
                    "hash" => MockVerdicts::Hash,
                    "grade" => MockVerdicts::Grade,
                    "rating" => MockVerdicts::Rating,
                    _ => {
                        return Err(OpenError::Invalid {
                            spec: spec.to_string(),
                            message: format!(
                                "`verdicts` is `first`, `hash`, `grade` or `rating`, got `{value}`"
                            ),
                        });
                    }
                });
                continue;
            }
            let number: u64 = value.parse().map_err(|_| OpenError::Invalid {
                spec: spec.to_string(),
                message: format!("`{key}` needs a whole number, got `{value}`"),
            })?;
            match key {
                "delay_ms" => options.delay_ms = number,
                "fail_every" if number > 0 => options.fail_every = Some(number),
                _ => {
                    return Err(OpenError::Invalid {
                        spec: spec.to_string(),
                        message: format!(
                            "unknown mock option `{key}` (known: delay_ms, fail_every, verdicts)"
                        ),
                    });
                }
            }
        }
        let mut backend = MockBackend::new(name, options);
        backend.spec = spec.to_string();
        Ok(backend)
    }

    fn hash(&self, parts: &[&str]) -> u64 {
        let mut hasher = Sha256::new();
        hasher.update(self.name.as_bytes());
        for part in parts {
            hasher.update([0u8]);
            hasher.update(part.as_bytes());
        }
        let digest = hasher.finalize();
        u64::from_le_bytes(digest[..8].try_into().expect("sha256 has 32 bytes"))
    }

    async fn pause(&self) {
        if self.options.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(self.options.delay_ms)).await;
        }
    }

    fn maybe_fail(&self, h: u64) -> Result<(), BackendError> {
        match self.options.fail_every {
            Some(k) if h.is_multiple_of(k) => Err(BackendError::Request(format!(
                "mock failure (fail_every={k})"
            ))),
            _ => Ok(()),
        }
    }

    fn score(&self, context: &str, continuation: &str) -> LoglikelihoodResult {
        let h = self.hash(&[context, continuation]);
        let n_tokens = mock_token_count(continuation);
        LoglikelihoodResult {
            logprob: -((h % 1000) as f64) / 100.0 - 0.5 * n_tokens as f64,
            is_greedy: h.is_multiple_of(5),
            n_tokens,
        }
    }
}

/// The end of a mock judge's answer.
fn mock_verdict(verdicts: MockVerdicts, h: u64) -> String {
    const GRADES: [&str; 8] = [
        "\nVerdict: [[PASS]]",
        "\nVerdict: [[PASS]]",
        "\nVerdict: [[PASS]]",
        "\nVerdict: [[PASS]]",
        "\nVerdict: [[FAIL]]",
        "\nVerdict: [[FAIL]]",
        "\nVerdict: [[FAIL]]",
        "\nI cannot decide.",
    ];
    match verdicts {
        MockVerdicts::Grade => GRADES[((h >> 32) % 8) as usize].to_string(),
        MockVerdicts::Rating => match (h >> 32) % 11 {
            10 => "\nNo rating.".to_string(),
            r => format!("\nRating: [[{}]]", r + 1),
        },
        _ => pairwise_verdict(verdicts, h).to_string(),
    }
}

/// The end of a mock pairwise judge's answer.
fn pairwise_verdict(verdicts: MockVerdicts, h: u64) -> &'static str {
    const ENDINGS: [&str; 6] = [
        "\nMy final verdict is: [[A>>B]]",
        "\nMy final verdict is: [[A>B]]",
        "\nMy final verdict is tie: [[A=B]]",
        "\nMy final verdict is: [[B>A]]",
        "\nMy final verdict is: [[B>>A]]",
        "\nI cannot decide.",
    ];
    match verdicts {
        // The hash's high bits: its low ones also pick the numbers above.
        MockVerdicts::Hash => ENDINGS[((h >> 32) % 6) as usize],
        _ => ENDINGS[1],
    }
}

/// Tokens as the mock counts them: whitespace-separated words, at least one.
fn mock_token_count(text: &str) -> usize {
    text.split_whitespace().count().max(1)
}

#[async_trait]
impl Backend for MockBackend {
    fn identity(&self) -> ModelIdentity {
        ModelIdentity {
            spec: self.spec.clone(),
            fingerprint: format!("mock:{}", self.name),
            chat_template_hash: Some("mock-chat-template".into()),
        }
    }

    async fn loglikelihood(
        &self,
        requests: &[LoglikelihoodRequest],
    ) -> Result<Vec<Result<Vec<LoglikelihoodResult>, BackendError>>, BackendError> {
        let mut out = Vec::with_capacity(requests.len());
        for request in requests {
            self.pause().await;
            let h = self.hash(&[&request.context]);
            out.push(self.maybe_fail(h).map(|()| {
                request
                    .continuations
                    .iter()
                    .map(|c| self.score(&request.context, c))
                    .collect()
            }));
        }
        Ok(out)
    }

    async fn loglikelihood_rolling(
        &self,
        requests: &[RollingRequest],
    ) -> Result<Vec<Result<RollingResult, BackendError>>, BackendError> {
        let mut out = Vec::with_capacity(requests.len());
        for request in requests {
            self.pause().await;
            let h = self.hash(&[&request.text]);
            out.push(self.maybe_fail(h).map(|()| RollingResult {
                logprob: -0.7 * request.text.len() as f64 - (h % 100) as f64 / 10.0,
                n_tokens: mock_token_count(&request.text),
            }));
        }
        Ok(out)
    }

    async fn generate_until(
        &self,
        requests: &[GenerateRequest],
    ) -> Result<Vec<Result<GenerateResult, BackendError>>, BackendError> {
        let mut out = Vec::with_capacity(requests.len());
        for request in requests {
            self.pause().await;
            let seed = request.seed.to_string();
            let h = self.hash(&[&request.context, if request.do_sample { &seed } else { "" }]);
            out.push(self.maybe_fail(h).map(|()| {
                let full = format!(
                    " Let me think step by step. {} plus {} is {}. The answer is {}.\n\nQ: next",
                    h % 7,
                    h % 13,
                    h % 7 + h % 13,
                    h % 20
                );
                let words: Vec<&str> = full.split(' ').collect();
                let mut text = words[..words.len().min(request.max_tokens + 1)].join(" ");
                if let Some(cut) = request
                    .until
                    .iter()
                    .filter(|s| !s.is_empty())
                    .filter_map(|s| text.find(s.as_str()))
                    .min()
                {
                    text.truncate(cut);
                }
                if let Some(verdicts) = self.options.verdicts {
                    text.push_str(&mock_verdict(verdicts, h));
                }
                GenerateResult {
                    n_input_tokens: Some(mock_token_count(&request.context)),
                    n_output_tokens: Some(mock_token_count(&text)),
                    token_count_source: TokenCountSource::Engine,
                    text,
                    reasoning: None,
                    timing: None,
                }
            }));
        }
        Ok(out)
    }

    fn apply_chat_template(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, BackendError> {
        let mut prompt: String = messages
            .iter()
            .map(|m| format!("<|{}|>\n{}\n", m.role, m.content))
            .collect();
        if add_generation_prompt {
            prompt.push_str("<|assistant|>\n");
        }
        Ok(prompt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn deterministic_and_name_dependent() {
        let a = MockBackend::new("a", MockOptions::default());
        let b = MockBackend::new("b", MockOptions::default());
        let request = LoglikelihoodRequest {
            context: "Q: 1+1?\nA:".into(),
            continuations: vec![" 2".into(), " 3".into()],
        };
        let first = a
            .loglikelihood(std::slice::from_ref(&request))
            .await
            .unwrap();
        let again = a
            .loglikelihood(std::slice::from_ref(&request))
            .await
            .unwrap();
        let other = b
            .loglikelihood(std::slice::from_ref(&request))
            .await
            .unwrap();
        assert_eq!(first[0].as_ref().unwrap(), again[0].as_ref().unwrap());
        assert_ne!(first[0].as_ref().unwrap(), other[0].as_ref().unwrap());
    }

    #[tokio::test]
    async fn generation_stops_at_until() {
        let a = MockBackend::new("a", MockOptions::default());
        let request = GenerateRequest {
            messages: None,
            context: "Q: x".into(),
            until: vec!["\n\n".into()],
            max_tokens: 256,
            temperature: 0.0,
            top_p: 1.0,
            do_sample: false,
            seed: 0,
        };
        let out = a.generate_until(&[request]).await.unwrap();
        let text = &out[0].as_ref().unwrap().text;
        assert!(text.contains("The answer is"), "{text}");
        assert!(!text.contains("\n\n"), "{text}");
    }

    #[test]
    fn options_parse_and_reject_unknown() {
        let backend = MockBackend::from_spec(
            "mock:a?delay_ms=5&fail_every=3",
            "a?delay_ms=5&fail_every=3",
        )
        .unwrap();
        assert_eq!(
            backend.options,
            MockOptions {
                delay_ms: 5,
                fail_every: Some(3),
                verdicts: None,
            }
        );
        assert_eq!(backend.identity().fingerprint, "mock:a");
        let err = MockBackend::from_spec("mock:a?x=1", "a?x=1").unwrap_err();
        assert!(err.to_string().contains("unknown mock option `x`"), "{err}");
        let err = MockBackend::from_spec("mock:a?verdicts=x", "a?verdicts=x").unwrap_err();
        assert!(err.to_string().contains("`verdicts` is"), "{err}");
    }

    #[tokio::test]
    async fn a_mock_judge_ends_with_a_verdict() {
        let request = |context: &str| GenerateRequest {
            messages: None,
            context: context.into(),
            until: vec![],
            max_tokens: 4,
            temperature: 0.0,
            top_p: 1.0,
            do_sample: false,
            seed: 0,
        };
        let first = MockBackend::from_spec("mock:j?verdicts=first", "j?verdicts=first").unwrap();
        let out = first.generate_until(&[request("x")]).await.unwrap();
        assert!(out[0].as_ref().unwrap().text.ends_with("[[A>B]]"));
        // By hash: every ending appears over enough requests.
        let hash = MockBackend::from_spec("mock:j?verdicts=hash", "j?verdicts=hash").unwrap();
        let requests: Vec<_> = (0..200).map(|i| request(&i.to_string())).collect();
        let texts: Vec<String> = hash
            .generate_until(&requests)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.unwrap().text)
            .collect();
        for ending in [
            "[[A>>B]]", "[[A>B]]", "[[A=B]]", "[[B>A]]", "[[B>>A]]", "decide.",
        ] {
            assert!(texts.iter().any(|t| t.ends_with(ending)), "{ending}");
        }
    }
}
