//! Recording one streamed generation: the text of each event, when it
//! arrived, and the server's token counts; then the `GenerateResult` with the
//! timings of docs/METRICS.md (TTFT, TTFAT, E2E, inter-chunk gaps).

use std::ops::Range;
use std::time::Instant;

use podium_core::{GenerateResult, RequestTiming, TokenCountSource};

use crate::http::{Failure, MAX_TOKEN_COUNT};
use crate::reasoning::{cut_at_stop, split_content};

/// A server-reported token count, refused above [`MAX_TOKEN_COUNT`]: such a count
/// comes from a broken or hostile server, and stored it would overflow sums and costs.
pub(crate) fn checked_count(n: u64, what: &str) -> Result<usize, Failure> {
    if n > MAX_TOKEN_COUNT {
        return Err(Failure::Permanent(format!(
            "the server reported {n} {what} tokens for one request, more than the {MAX_TOKEN_COUNT} Podium accepts: its `usage` cannot be right"
        )));
    }
    // At most 10^9, which fits a usize on every platform Podium builds for.
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

#[derive(Debug)]
pub(crate) struct StreamRecorder {
    t0: Instant,
    queue_s: f64,
    /// All `content` / `text` deltas, concatenated (think tags still in).
    content: String,
    /// Each content-bearing event: when it arrived and its bytes in `content`.
    content_events: Vec<(Instant, Range<usize>)>,
    /// Deltas the server marked as reasoning (`reasoning_content`, `thinking_delta`).
    reasoning: String,
    /// Every event that carried content, reasoning or a tool call.
    token_events: Vec<Instant>,
    n_input_tokens: Option<usize>,
    n_output_tokens: Option<usize>,
    /// Counts tokens of generated text when the server reports no usage.
    count_tokens: Option<TokenCounter>,
}

/// Counts the tokens of a text (None if it cannot).
pub(crate) type CountFn = dyn Fn(&str) -> Option<usize> + Send + Sync;

/// Counts the tokens of a text with the served model's tokenizer.
#[derive(Clone)]
pub(crate) struct TokenCounter(pub(crate) std::sync::Arc<CountFn>);

impl std::fmt::Debug for TokenCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenCounter")
    }
}

/// What one event carried.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Delta<'a> {
    pub(crate) content: &'a str,
    pub(crate) reasoning: &'a str,
    /// A tool-call delta: token-bearing, though it adds no text.
    pub(crate) tool_call: bool,
}

impl StreamRecorder {
    /// `t0`: taken right before the request was written.
    pub(crate) fn new(t0: Instant, queue_s: f64) -> StreamRecorder {
        StreamRecorder {
            t0,
            queue_s,
            content: String::new(),
            content_events: Vec::new(),
            reasoning: String::new(),
            token_events: Vec::new(),
            n_input_tokens: None,
            n_output_tokens: None,
            count_tokens: None,
        }
    }

    /// Count output tokens with `counter` when the server sends no `usage`.
    pub(crate) fn count_tokens_with(&mut self, counter: Option<TokenCounter>) {
        self.count_tokens = counter;
    }

    /// One event, stamped `at` when its bytes arrived.
    pub(crate) fn on_delta(&mut self, at: Instant, delta: Delta<'_>) {
        if !delta.content.is_empty() {
            let start = self.content.len();
            self.content.push_str(delta.content);
            self.content_events.push((at, start..self.content.len()));
        }
        self.reasoning.push_str(delta.reasoning);
        if !delta.content.is_empty() || !delta.reasoning.is_empty() || delta.tool_call {
            self.token_events.push(at);
        }
    }

    /// The server's count of input tokens; above [`MAX_TOKEN_COUNT`] the request fails.
    pub(crate) fn set_input_tokens(&mut self, n: u64) -> Result<(), Failure> {
        self.n_input_tokens = Some(checked_count(n, "input")?);
        Ok(())
    }

    /// The server's count of output tokens; above [`MAX_TOKEN_COUNT`] the request fails.
    pub(crate) fn set_output_tokens(&mut self, n: u64) -> Result<(), Failure> {
        self.n_output_tokens = Some(checked_count(n, "output")?);
        Ok(())
    }

    /// Tokens used, for the client-side `tpm` limit.
    pub(crate) fn used_tokens(&self) -> Option<u64> {
        let total = self
            .n_input_tokens
            .unwrap_or(0)
            .saturating_add(self.n_output_tokens?);
        Some(total as u64)
    }

    /// The result: answer without reasoning, cut at the first stop string.
    /// `ended`: when the stream ended (E2E when no event carried a token).
    pub(crate) fn finish(self, stops: &[String], ended: Instant, attempts: u32) -> GenerateResult {
        let split = split_content(&self.content);
        let mut text = split.answer_text(&self.content);
        cut_at_stop(&mut text, stops);
        let mut reasoning = self.reasoning.trim().to_string();
        let think_reasoning = split.reasoning_text(&self.content);
        if !think_reasoning.is_empty() {
            if !reasoning.is_empty() {
                reasoning.push_str("\n\n");
            }
            reasoning.push_str(&think_reasoning);
        }

        let since_t0 = |at: &Instant| at.duration_since(self.t0).as_secs_f64();
        let first_answer = self
            .content_events
            .iter()
            .find(|(_, range)| split.has_answer_in(range))
            .map(|(at, _)| since_t0(at));
        let inter_chunk_s = self
            .token_events
            .windows(2)
            .map(|pair| pair[1].duration_since(pair[0]).as_secs_f64())
            .collect();
        let timing = RequestTiming {
            queue_s: self.queue_s,
            ttft_s: self.token_events.first().map(since_t0),
            ttfat_s: first_answer,
            e2e_s: since_t0(self.token_events.last().unwrap_or(&ended)),
            inter_chunk_s,
            cached: false,
            attempts,
            started: Some(self.t0),
        };
        // Everything the server generated: content (think tags and text past a stop
        // string included) and the reasoning it sent apart.
        let by_tokenizer = self
            .count_tokens
            .as_ref()
            .and_then(|counter| Some((counter.0)(&self.content)? + (counter.0)(&self.reasoning)?));
        let (n_output_tokens, token_count_source) = match (self.n_output_tokens, by_tokenizer) {
            (Some(n), _) => (n, TokenCountSource::Server),
            (None, Some(n)) => (n, TokenCountSource::Tokenizer),
            // Each token-bearing event holds at least one token.
            (None, None) => (self.token_events.len(), TokenCountSource::Estimate),
        };
        GenerateResult {
            text,
            reasoning: Some(reasoning).filter(|r| !r.is_empty()),
            n_input_tokens: self.n_input_tokens,
            n_output_tokens: Some(n_output_tokens),
            token_count_source,
            timing: Some(timing),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn timings_follow_the_definitions() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut recorder = StreamRecorder::new(t0, 0.25);
        recorder.on_delta(ms(5), Delta::default()); // a role-only event carries no token
        recorder.on_delta(
            ms(100),
            Delta {
                reasoning: "let me see",
                ..Delta::default()
            },
        );
        recorder.on_delta(
            ms(150),
            Delta {
                content: "<think>more</think>",
                ..Delta::default()
            },
        );
        recorder.on_delta(
            ms(200),
            Delta {
                content: "\n\nThe answer",
                ..Delta::default()
            },
        );
        recorder.on_delta(
            ms(300),
            Delta {
                content: " is 4.\n\nQ:",
                ..Delta::default()
            },
        );
        recorder.set_output_tokens(9).unwrap();
        recorder.set_input_tokens(20).unwrap();
        assert_eq!(recorder.used_tokens(), Some(29));
        let result = recorder.finish(&["\n\n".into()], ms(400), 1);
        assert_eq!(result.text, "The answer is 4.");
        assert_eq!(result.reasoning.as_deref(), Some("let me see\n\nmore"));
        assert_eq!(result.n_output_tokens, Some(9));
        assert_eq!(result.token_count_source, TokenCountSource::Server);
        let timing = result.timing.unwrap();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(close(timing.ttft_s.unwrap(), 0.1));
        assert!(close(timing.ttfat_s.unwrap(), 0.2));
        assert!(close(timing.e2e_s, 0.3));
        assert_eq!(timing.inter_chunk_s.len(), 3);
        assert!(close(timing.queue_s, 0.25));
    }

    #[test]
    fn without_usage_events_are_counted_as_an_estimate() {
        let t0 = Instant::now();
        let mut recorder = StreamRecorder::new(t0, 0.0);
        for text in ["a", "b", "c"] {
            recorder.on_delta(
                Instant::now(),
                Delta {
                    content: text,
                    ..Delta::default()
                },
            );
        }
        let result = recorder.finish(&[], Instant::now(), 1);
        assert_eq!(result.n_output_tokens, Some(3));
        assert_eq!(result.token_count_source, TokenCountSource::Estimate);
        assert_eq!(result.reasoning, None);
    }

    /// Regression (issue 9): a server's `u64::MAX` token count went to the store as
    /// is (and aborted the evaluation there); now it fails the request.
    #[test]
    fn absurd_token_counts_fail_the_request() {
        let mut recorder = StreamRecorder::new(Instant::now(), 0.0);
        for n in [MAX_TOKEN_COUNT + 1, 9_000_000_000_000_000_000, u64::MAX] {
            let err = recorder.set_output_tokens(n).unwrap_err();
            assert!(err.message().contains("cannot be right"), "{err:?}");
            assert!(recorder.set_input_tokens(n).is_err());
        }
        assert_eq!(recorder.used_tokens(), None);
        recorder.set_input_tokens(MAX_TOKEN_COUNT).unwrap();
        recorder.set_output_tokens(MAX_TOKEN_COUNT).unwrap();
        assert_eq!(recorder.used_tokens(), Some(2 * MAX_TOKEN_COUNT));
    }
}
