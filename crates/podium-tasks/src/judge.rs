//! Judge models as a task metric (METRICS.md, "Judge metric"): the grading
//! prompt a judge model reads for one answer, and the parser of its verdict.
//!
//! A `metric: judge` entry of a task's `metric_list` names a rubric and a
//! scale. The judge reads the question, the candidate's answer, the rubric and
//! (optionally) the doc's reference answer, explains itself and ends with a
//! verdict in a fixed format: `[[PASS]]` or `[[FAIL]]` on the pass/fail scale,
//! `[[1]]` … `[[10]]` on the 1–10 scale (MT-Bench's single-answer grading,
//! Zheng et al. 2023, "Judging LLM-as-a-Judge"). Calling the judge needs a
//! backend, so it happens in the runner (`podium-eval`); this module is pure.

use serde::{Deserialize, Serialize};

/// The most bytes of a judge's output that are kept (stored and parsed); a
/// longer output keeps its last this-many bytes, where the verdict is.
pub const MAX_JUDGE_OUTPUT_BYTES: usize = 64 * 1024;

/// The longest grading template or rubric, in bytes.
pub const MAX_TEMPLATE_BYTES: usize = 64 * 1024;

/// The default most tokens a judge may write.
pub const DEFAULT_JUDGE_MAX_TOKENS: usize = 512;

/// How a judge grades one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JudgeScale {
    /// `[[PASS]]` (1) or `[[FAIL]]` (0): the metric is a pass rate.
    PassFail,
    /// `[[1]]` to `[[10]]`: the metric is the mean rating.
    Score10,
}

impl JudgeScale {
    pub fn as_str(self) -> &'static str {
        match self {
            JudgeScale::PassFail => "pass_fail",
            JudgeScale::Score10 => "score_1_10",
        }
    }
}

/// The default grading prompt on the pass/fail scale. Placeholders:
/// `{rubric}`, `{question}`, `{answer}` and, only inside the reference block,
/// `{reference}`; the block between `{reference_block}` and
/// `{/reference_block}` is kept only when the doc's reference answer is shown.
pub const DEFAULT_PASS_FAIL_TEMPLATE: &str = "\
[Instruction]
Please act as an impartial judge and decide whether the response of an AI assistant to the user question below meets the criteria. Judge only by the criteria; do not let the length of the response or its style influence you. Be as objective as possible.

[Criteria]
{rubric}
{reference_block}
[The Start of Reference Answer]
{reference}
[The End of Reference Answer]
Compare the assistant's response with the reference answer; the reference is correct.
{/reference_block}
[Question]
{question}

[The Start of Assistant's Answer]
{answer}
[The End of Assistant's Answer]

Begin with a short explanation. Then you must give your verdict by strictly following this format: \"[[PASS]]\" if the response meets the criteria, \"[[FAIL]]\" if it does not, for example: \"Verdict: [[PASS]]\".";

/// The default grading prompt on the 1–10 scale (MT-Bench's single-answer
/// grading, with the rubric as its criteria). Placeholders as for
/// [`DEFAULT_PASS_FAIL_TEMPLATE`].
pub const DEFAULT_SCORE_TEMPLATE: &str = "\
[Instruction]
Please act as an impartial judge and evaluate the quality of the response provided by an AI assistant to the user question displayed below, by the criteria given. Be as objective as possible; do not let the length of the response influence you.

[Criteria]
{rubric}
{reference_block}
[The Start of Reference Answer]
{reference}
[The End of Reference Answer]
Compare the assistant's response with the reference answer; the reference is correct. Identify and correct any mistakes.
{/reference_block}
[Question]
{question}

[The Start of Assistant's Answer]
{answer}
[The End of Assistant's Answer]

Begin your evaluation with a short explanation. After it, you must rate the response on a scale of 1 to 10 by strictly following this format: \"[[rating]]\", for example: \"Rating: [[5]]\".";

/// The rubric used when a `judge` entry gives none.
pub const DEFAULT_RUBRIC: &str = "The response answers the question correctly, completely and helpfully, and follows every instruction in it.";

/// One `metric: judge` entry of a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeMetric {
    /// The result key's metric name: `judge` unless the entry sets `name`.
    pub name: String,
    pub scale: JudgeScale,
    pub rubric: String,
    /// The grading prompt with its placeholders.
    pub template: String,
    /// Whether the doc's target is shown to the judge as the reference answer.
    pub use_reference: bool,
    /// The judge model's spec from the task, used when `--judge` is not given.
    pub model: Option<String>,
    pub max_tokens: usize,
}

/// Why a judge's output gave no verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unparseable {
    /// Empty or only white space.
    Empty,
    /// No verdict of the scale's form anywhere outside code blocks.
    NoVerdict,
    /// A `[[n]]` rating outside 1–10.
    OutOfRange,
}

impl std::fmt::Display for Unparseable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Unparseable::Empty => "the judge's output is empty",
            Unparseable::NoVerdict => "no verdict in the judge's output",
            Unparseable::OutOfRange => "the judge's rating is outside 1-10",
        })
    }
}

impl JudgeMetric {
    /// A judge entry with the default template of `scale`.
    pub fn new(name: &str, scale: JudgeScale, rubric: &str) -> JudgeMetric {
        JudgeMetric {
            name: name.to_string(),
            scale,
            rubric: rubric.to_string(),
            template: default_template(scale).to_string(),
            use_reference: true,
            model: None,
            max_tokens: DEFAULT_JUDGE_MAX_TOKENS,
        }
    }

    /// The grading prompt for one answer, filled in one pass so that an
    /// answer holding a placeholder's text is shown as written.
    pub fn render(&self, question: &str, answer: &str, reference: Option<&str>) -> String {
        let reference = reference.filter(|_| self.use_reference);
        let mut out = String::with_capacity(self.template.len() + question.len() + answer.len());
        let mut rest = self.template.as_str();
        let mut in_reference_block = false;
        while let Some(open) = rest.find('{') {
            let (before, after) = rest.split_at(open);
            if !in_reference_block || reference.is_some() {
                out.push_str(before);
            }
            let Some(close) = after.find('}') else {
                rest = after;
                break;
            };
            let name = &after[1..close];
            let keep = !in_reference_block || reference.is_some();
            match name {
                "rubric" if keep => out.push_str(&self.rubric),
                "question" if keep => out.push_str(question),
                "answer" if keep => out.push_str(answer),
                "reference" if keep => out.push_str(reference.unwrap_or("")),
                "reference_block" => in_reference_block = true,
                "/reference_block" => in_reference_block = false,
                _ if keep => out.push_str(&after[..=close]),
                _ => {}
            }
            rest = &after[close + 1..];
        }
        if !in_reference_block || reference.is_some() {
            out.push_str(rest);
        }
        out
    }

    /// The verdict's value: 1 or 0 on the pass/fail scale, the rating on the
    /// 1–10 scale.
    pub fn parse(&self, output: &str) -> Result<f64, Unparseable> {
        parse_verdict(self.scale, bounded_output(output))
    }
}

pub fn default_template(scale: JudgeScale) -> &'static str {
    match scale {
        JudgeScale::PassFail => DEFAULT_PASS_FAIL_TEMPLATE,
        JudgeScale::Score10 => DEFAULT_SCORE_TEMPLATE,
    }
}

/// What is wrong with a grading template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JudgeTemplateError {
    #[error("the template is longer than {max} bytes", max = MAX_TEMPLATE_BYTES)]
    TooLong,
    #[error("`{{reference_block}}` opened twice without `{{/reference_block}}`")]
    OpenedTwice,
    #[error("`{{/reference_block}}` without `{{reference_block}}`")]
    NotOpened,
    #[error(
        "`{{reference}}` must stand between `{{reference_block}}` and `{{/reference_block}}` (docs without a reference drop the block)"
    )]
    ReferenceOutsideBlock,
    #[error("`{{reference_block}}` is never closed by `{{/reference_block}}`")]
    NeverClosed,
    #[error("the template must hold `{{{name}}}` exactly once (it holds it {count} times)")]
    NotOnce { name: &'static str, count: usize },
}

/// Checks a grading template: `{question}` and `{answer}` exactly once,
/// `{reference}` only inside a reference block, blocks balanced, no unknown
/// placeholder, at most [`MAX_TEMPLATE_BYTES`].
pub fn check_template(template: &str) -> Result<(), JudgeTemplateError> {
    if template.len() > MAX_TEMPLATE_BYTES {
        return Err(JudgeTemplateError::TooLong);
    }
    let mut counts = std::collections::BTreeMap::new();
    let mut in_block = false;
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open..];
        let Some(close) = after.find('}') else { break };
        let name = &after[1..close];
        match name {
            "reference_block" if in_block => {
                return Err(JudgeTemplateError::OpenedTwice);
            }
            "reference_block" => in_block = true,
            "/reference_block" if !in_block => {
                return Err(JudgeTemplateError::NotOpened);
            }
            "/reference_block" => in_block = false,
            "reference" if !in_block => {
                return Err(JudgeTemplateError::ReferenceOutsideBlock);
            }
            "question" | "answer" | "rubric" | "reference" => {
                *counts.entry(name).or_insert(0usize) += 1;
            }
            _ => {}
        }
        rest = &after[close + 1..];
    }
    if in_block {
        return Err(JudgeTemplateError::NeverClosed);
    }
    for name in ["question", "answer"] {
        let count = counts.get(name).copied().unwrap_or(0);
        if count != 1 {
            return Err(JudgeTemplateError::NotOnce { name, count });
        }
    }
    Ok(())
}

/// `output` cut to its last [`MAX_JUDGE_OUTPUT_BYTES`] bytes at a character
/// boundary; shorter outputs whole.
pub fn bounded_output(output: &str) -> &str {
    if output.len() <= MAX_JUDGE_OUTPUT_BYTES {
        return output;
    }
    let mut start = output.len() - MAX_JUDGE_OUTPUT_BYTES;
    while !output.is_char_boundary(start) {
        start += 1;
    }
    &output[start..]
}

/// The last verdict of `output` outside fenced code blocks (a judge states
/// its verdict at the end; a fenced block is a quotation). One pass over the
/// output, no allocation.
pub fn parse_verdict(scale: JudgeScale, output: &str) -> Result<f64, Unparseable> {
    if output.trim().is_empty() {
        return Err(Unparseable::Empty);
    }
    let mut last: Option<Result<f64, Unparseable>> = None;
    for (line, in_code) in podium_core::lines_outside_fences(output) {
        if in_code {
            continue;
        }
        if let Some(verdict) = last_verdict_in(scale, line) {
            last = Some(verdict);
        }
    }
    last.unwrap_or(Err(Unparseable::NoVerdict))
}

/// The last `[[…]]` verdict of one line that fits the scale.
fn last_verdict_in(scale: JudgeScale, line: &str) -> Option<Result<f64, Unparseable>> {
    let bytes = line.as_bytes();
    let mut found = None;
    let mut start = 0;
    while start + 1 < bytes.len() {
        if bytes[start] == b'[' && bytes[start + 1] == b'[' {
            let inner_start = start + 2;
            // A verdict is short: look for `]]` within 8 bytes.
            let window = &bytes[inner_start..bytes.len().min(inner_start + 10)];
            if let Some(end) = window.windows(2).position(|w| w == b"]]") {
                let inner = &line[inner_start..inner_start + end];
                if let Some(verdict) = verdict_of(scale, inner.trim()) {
                    found = Some(verdict);
                }
            }
        }
        start += 1;
    }
    found
}

fn verdict_of(scale: JudgeScale, inner: &str) -> Option<Result<f64, Unparseable>> {
    match scale {
        JudgeScale::PassFail => {
            if inner.eq_ignore_ascii_case("pass") {
                Some(Ok(1.0))
            } else if inner.eq_ignore_ascii_case("fail") {
                Some(Ok(0.0))
            } else {
                None
            }
        }
        JudgeScale::Score10 => {
            // MT-Bench's form: digits with an optional decimal part.
            let valid = !inner.is_empty()
                && inner.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                && inner.bytes().filter(|&b| b == b'.').count() <= 1
                && inner.as_bytes()[0].is_ascii_digit();
            if !valid {
                return None;
            }
            let rating: f64 = inner.parse().ok()?;
            Some(if (1.0..=10.0).contains(&rating) {
                Ok(rating)
            } else {
                Err(Unparseable::OutOfRange)
            })
        }
    }
}

/// What a judge said about one answer, stored with the sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    /// The judge model's spec.
    pub judge: String,
    /// The grading prompt sent.
    pub prompt: String,
    /// The judge's output (its last [`MAX_JUDGE_OUTPUT_BYTES`] bytes).
    pub output: String,
    /// The verdict's value; `None` when the output had none.
    pub value: Option<f64>,
    /// Why the output gave no verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unparseable: Option<Unparseable>,
    pub n_input_tokens: Option<u64>,
    pub n_output_tokens: Option<u64>,
}

/// One judge's work on a task: its verdicts, the unparseable ones, and its
/// tokens (reported apart from the candidate's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeSummary {
    /// The judge metric's name.
    pub metric: String,
    /// The judge model's spec.
    pub judge: String,
    pub n_verdicts: usize,
    pub n_unparseable: usize,
    pub n_input_tokens: u64,
    pub n_output_tokens: u64,
    /// Samples whose judge reported no token count.
    pub n_uncounted: usize,
}

/// The summaries of every (metric, judge) in `samples`' judgements.
pub fn summarize<'a>(
    samples: impl IntoIterator<Item = &'a std::collections::BTreeMap<String, Judgement>>,
) -> Vec<JudgeSummary> {
    let mut by_key: std::collections::BTreeMap<(String, String), JudgeSummary> =
        std::collections::BTreeMap::new();
    for judgements in samples {
        for (metric, judgement) in judgements {
            let summary = by_key
                .entry((metric.clone(), judgement.judge.clone()))
                .or_insert_with(|| JudgeSummary {
                    metric: metric.clone(),
                    judge: judgement.judge.clone(),
                    n_verdicts: 0,
                    n_unparseable: 0,
                    n_input_tokens: 0,
                    n_output_tokens: 0,
                    n_uncounted: 0,
                });
            if judgement.value.is_some() {
                summary.n_verdicts += 1;
            } else {
                summary.n_unparseable += 1;
            }
            match (judgement.n_input_tokens, judgement.n_output_tokens) {
                (Some(n_in), Some(n_out)) => {
                    summary.n_input_tokens += n_in;
                    summary.n_output_tokens += n_out;
                }
                _ => summary.n_uncounted += 1,
            }
        }
    }
    by_key.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(scale: JudgeScale, output: &str, expected: Result<f64, Unparseable>) {
        assert_eq!(parse_verdict(scale, output), expected, "output: {output:?}");
    }

    #[test]
    fn pass_fail_verdicts() {
        use JudgeScale::PassFail as S;
        check(S, "Looks right.\nVerdict: [[PASS]]", Ok(1.0));
        check(S, "Verdict: [[FAIL]]", Ok(0.0));
        check(S, "[[ pass ]]", Ok(1.0));
        // The last verdict wins: a judge may quote the format first.
        check(
            S,
            "Format is [[PASS]] or [[FAIL]]. Verdict: [[FAIL]]",
            Ok(0.0),
        );
        check(S, "Verdict: [[PASS]]\n```\n[[FAIL]]\n```", Ok(1.0));
        check(S, "```\n[[PASS]]\n```", Err(Unparseable::NoVerdict));
        check(S, "I think it passes.", Err(Unparseable::NoVerdict));
        check(S, "Rating: [[7]]", Err(Unparseable::NoVerdict));
        check(S, "  \n ", Err(Unparseable::Empty));
        check(S, "[[[PASS]]]", Ok(1.0));
        check(S, "é[[PASS]]é", Ok(1.0));
    }

    #[test]
    fn rating_verdicts() {
        use JudgeScale::Score10 as S;
        check(S, "Rating: [[5]]", Ok(5.0));
        check(S, "Rating: [[7.5]]", Ok(7.5));
        check(S, "Rating: [[10]]", Ok(10.0));
        check(S, "Rating: [[0]]", Err(Unparseable::OutOfRange));
        check(S, "Rating: [[11]]", Err(Unparseable::OutOfRange));
        check(S, "Rating: [[rating]]", Err(Unparseable::NoVerdict));
        check(S, "Rating: [[1.2.3]]", Err(Unparseable::NoVerdict));
        check(S, "[[3]] then [[8]]", Ok(8.0));
        check(S, "[[PASS]]", Err(Unparseable::NoVerdict));
    }

    #[test]
    fn render_fills_placeholders_once() {
        let judge = JudgeMetric::new("judge", JudgeScale::PassFail, "Be polite.");
        let with = judge.render("Q {answer}", "A {question}", Some("R"));
        assert!(with.contains("[Criteria]\nBe polite."));
        assert!(with.contains("[Question]\nQ {answer}"));
        assert!(with.contains("A {question}\n[The End of Assistant's Answer]"));
        assert!(with.contains("[The Start of Reference Answer]\nR\n"));
        assert!(!with.contains("{reference_block}"));
        let without = judge.render("Q", "A", None);
        assert!(!without.contains("Reference Answer"));
        assert!(!without.contains("{/reference_block}"));
        let mut no_ref = judge.clone();
        no_ref.use_reference = false;
        assert!(!no_ref.render("Q", "A", Some("R")).contains("Reference"));
    }

    #[test]
    fn templates_are_checked() {
        assert_eq!(check_template(DEFAULT_PASS_FAIL_TEMPLATE), Ok(()));
        assert_eq!(check_template(DEFAULT_SCORE_TEMPLATE), Ok(()));
        assert!(
            check_template("{question}")
                .unwrap_err()
                .to_string()
                .contains("`{answer}`")
        );
        assert!(
            check_template("{question}{answer}{reference}")
                .unwrap_err()
                .to_string()
                .contains("between")
        );
        assert!(
            check_template("{question}{answer}{reference_block}")
                .unwrap_err()
                .to_string()
                .contains("never closed")
        );
        assert!(
            check_template("{question}{answer}{question}")
                .unwrap_err()
                .to_string()
                .contains("2 times")
        );
    }

    #[test]
    fn long_outputs_keep_their_tail() {
        let long = format!("{}Verdict: [[PASS]]", "é".repeat(MAX_JUDGE_OUTPUT_BYTES));
        let judge = JudgeMetric::new("judge", JudgeScale::PassFail, "r");
        assert_eq!(judge.parse(&long), Ok(1.0));
        assert!(bounded_output(&long).len() <= MAX_JUDGE_OUTPUT_BYTES);
    }
}
