//! A stored sample as the samples page shows it: the prompt, the choices or
//! the output, the target, the extracted answer and the per-sample metrics.
//! Long texts are cut for display with an explicit note of how much is left,
//! and invisible or direction-changing characters are shown by their code so
//! a hostile output cannot hide or reorder text on the page.

use podium_store::{SampleRecord, SampleStatus};
use serde::Serialize;
use serde_json::Value;

/// Characters of one text shown before the rest is cut.
pub(crate) const DISPLAY_CHARS: usize = 3000;

/// A text for display.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct Text {
    pub(crate) shown: String,
    /// Characters not shown.
    pub(crate) more: usize,
}

impl Text {
    pub(crate) fn new(text: &str) -> Text {
        let total = text.chars().count();
        let cut: String = text.chars().take(DISPLAY_CHARS).collect();
        Text {
            shown: reveal_invisible(&cut),
            more: total.saturating_sub(DISPLAY_CHARS),
        }
    }
}

/// Zero-width characters and bidirectional controls, written as `[U+202E]`
/// (`podium_board::visible`, which the terminal board uses too).
pub(crate) fn reveal_invisible(text: &str) -> String {
    podium_board::visible(text)
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Choice {
    pub(crate) text: Text,
    pub(crate) logprob: String,
    pub(crate) is_gold: bool,
    /// Highest log-probability among the choices (not length-normalized).
    pub(crate) is_top: bool,
    pub(crate) is_greedy: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct SampleView {
    pub(crate) doc_id: u64,
    pub(crate) status: &'static str,
    pub(crate) error: Option<Text>,
    pub(crate) prompt: Option<Text>,
    pub(crate) kind: String,
    pub(crate) choices: Vec<Choice>,
    pub(crate) outputs: Vec<Text>,
    pub(crate) target: Option<Text>,
    /// (filter, extracted answer).
    pub(crate) extracted: Vec<(String, Text)>,
    /// (metric key, value).
    pub(crate) metrics: Vec<(String, String)>,
    /// (metric key, why the sample got its value): rule metrics and judges.
    pub(crate) reasons: Vec<(String, Text)>,
    /// What judge models said about the answer.
    pub(crate) judgements: Vec<JudgementView>,
    pub(crate) n_input_tokens: String,
    pub(crate) n_output_tokens: String,
    /// Correct on the board metric: `None` where it has no value.
    pub(crate) correct: Option<bool>,
}

/// One judge model's grading of a sample's answer.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct JudgementView {
    /// The judge metric's name.
    pub(crate) metric: String,
    /// The judge model's spec.
    pub(crate) judge: String,
    /// The verdict's value, or why there is none.
    pub(crate) verdict: String,
    pub(crate) prompt: Text,
    pub(crate) output: Text,
    pub(crate) tokens: String,
}

fn judgement_views(metrics: &Value) -> Vec<JudgementView> {
    let Some(judgements) = metrics.get("judgements").and_then(Value::as_object) else {
        return Vec::new();
    };
    judgements
        .iter()
        .map(|(metric, j)| {
            let field = |key: &str| j.get(key).map(as_text).unwrap_or_default();
            let verdict = match j.get("value").and_then(Value::as_f64) {
                Some(v) => format!("{v}"),
                None => format!("none ({})", field("unparseable").replace('_', " ")),
            };
            let count = |key: &str| {
                j.get(key)
                    .and_then(Value::as_u64)
                    .map_or_else(|| "—".to_string(), |n| n.to_string())
            };
            JudgementView {
                metric: metric.clone(),
                judge: field("judge"),
                verdict,
                prompt: Text::new(&field("prompt")),
                output: Text::new(&field("output")),
                tokens: format!(
                    "in {}, out {}",
                    count("n_input_tokens"),
                    count("n_output_tokens")
                ),
            }
        })
        .collect()
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

fn as_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub(crate) fn sample_view(sample: &SampleRecord, board_metric: Option<&str>) -> SampleView {
    let request = parse(&sample.requests_json);
    let response = parse(&sample.responses_json);
    let metrics = parse(&sample.metrics_json);
    let kind = request
        .pointer("/request/type")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_string();
    let target = request.get("target").unwrap_or(&Value::Null);
    let golds: Vec<u64> = target
        .get("golds")
        .and_then(Value::as_array)
        .map(|g| g.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    let results = response
        .get("results")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();

    let mut choices = Vec::new();
    let mut outputs = Vec::new();
    if kind == "loglikelihood" || kind == "multiple_choice" {
        let texts: Vec<String> = target
            .get("choices")
            .and_then(Value::as_array)
            .or_else(|| {
                request
                    .pointer("/request/continuations")
                    .and_then(Value::as_array)
            })
            .map(|c| c.iter().map(as_text).collect())
            .unwrap_or_default();
        let logprobs: Vec<Option<f64>> = results
            .iter()
            .map(|r| r.get("logprob").and_then(Value::as_f64))
            .collect();
        let top = logprobs
            .iter()
            .enumerate()
            .filter_map(|(i, l)| Some((i, (*l)?)))
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
            .map(|(i, _)| i);
        for (i, text) in texts.iter().enumerate() {
            choices.push(Choice {
                text: Text::new(text),
                logprob: logprobs
                    .get(i)
                    .copied()
                    .flatten()
                    .map_or_else(|| "—".into(), |l| format!("{l:.3}")),
                is_gold: golds.contains(&(i as u64)),
                is_top: top == Some(i),
                is_greedy: results
                    .get(i)
                    .and_then(|r| r.get("is_greedy"))
                    .and_then(Value::as_bool),
            });
        }
    } else {
        for result in &results {
            let text = result.get("text").map(as_text).unwrap_or_default();
            outputs.push(Text::new(&text));
        }
    }
    let target_text = match target.get("type").and_then(Value::as_str) {
        Some("choices") => {
            let texts: Vec<String> = target
                .get("choices")
                .and_then(Value::as_array)
                .map(|c| c.iter().map(as_text).collect())
                .unwrap_or_default();
            let gold: Vec<String> = golds
                .iter()
                .filter_map(|&g| texts.get(g as usize).cloned())
                .collect();
            Some(gold.join(" / "))
        }
        // Generation: the reference answers (`Target::Texts`).
        Some("texts") => target
            .get("golds")
            .and_then(Value::as_array)
            .map(|golds| golds.iter().map(as_text).collect::<Vec<_>>().join(" / ")),
        _ => target
            .get("text")
            .or_else(|| target.get("target"))
            .map(as_text)
            .or_else(|| (!target.is_null()).then(|| as_text(target))),
    };
    let extracted = metrics
        .get("filtered")
        .and_then(Value::as_object)
        .map(|f| {
            f.iter()
                .map(|(filter, value)| {
                    let text = match value {
                        Value::Array(items) => {
                            items.iter().map(as_text).collect::<Vec<_>>().join(" | ")
                        }
                        other => as_text(other),
                    };
                    (filter.clone(), Text::new(&text))
                })
                .collect()
        })
        .unwrap_or_default();
    let metric_values: Vec<(String, String)> = metrics
        .get("metrics")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    // A corpus metric's sample keeps its sentence score in `value`.
                    let number = v
                        .as_f64()
                        .or_else(|| v.get("value").and_then(Value::as_f64));
                    let shown = number
                        .map_or_else(|| as_text(v), |x| format!("{}", (x * 1e4).round() / 1e4));
                    (k.clone(), shown)
                })
                .collect()
        })
        .unwrap_or_default();
    let correct = board_metric.and_then(|key| {
        if sample.status == SampleStatus::Failed {
            return Some(false);
        }
        metrics
            .pointer("/metrics")
            .and_then(|m| m.get(key))
            .and_then(Value::as_f64)
            .map(|v| v == 1.0)
    });
    let count = |n: Option<u64>| n.map_or_else(|| "—".into(), |n| n.to_string());
    SampleView {
        doc_id: sample.doc_id,
        status: sample.status.as_str(),
        error: sample.error.as_deref().map(Text::new),
        prompt: request
            .get("prompt")
            .map(as_text)
            .or_else(|| request.pointer("/request/context").map(as_text))
            .map(|p| Text::new(&p)),
        kind,
        choices,
        outputs,
        target: target_text.map(|t| Text::new(&t)),
        extracted,
        metrics: metric_values,
        reasons: metrics
            .get("reasons")
            .and_then(Value::as_object)
            .map(|r| {
                r.iter()
                    .map(|(k, v)| (k.clone(), Text::new(&as_text(v))))
                    .collect()
            })
            .unwrap_or_default(),
        judgements: judgement_views(&metrics),
        n_input_tokens: count(sample.n_input_tokens),
        n_output_tokens: count(sample.n_output_tokens),
        correct,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_judgements_and_corpus_values_are_shown() {
        let metrics = serde_json::json!({
            "metrics": {"contains,none": 0.0, "judge,none": 1.0, "bleu,none": {"value": 12.5, "stats": [1.0, 2.0]}},
            "filtered": {"none": ["Sorry, no refund."]},
            "reasons": {"contains,none": "fail: missing `refund policy`", "judge,none": "pass: the judge's verdict is [[PASS]]"},
            "judgements": {
                "judge": {"judge": "mock:j", "prompt": "[Criteria] polite", "output": "Fine. Verdict: [[PASS]]", "value": 1.0, "n_input_tokens": 40, "n_output_tokens": 5},
                "tone": {"judge": "mock:j", "prompt": "p", "output": "hmm", "value": null, "unparseable": "no_verdict", "n_input_tokens": null, "n_output_tokens": null}
            }
        });
        let sample = SampleRecord {
            doc_id: 3,
            prompt_hash: "h".into(),
            requests_json: "{}".into(),
            responses_json: "null".into(),
            metrics_json: metrics.to_string(),
            n_input_tokens: None,
            n_output_tokens: None,
            timing_json: "null".into(),
            status: SampleStatus::Ok,
            error: None,
        };
        let view = sample_view(&sample, None);
        assert!(view.metrics.contains(&("bleu,none".into(), "12.5".into())));
        let reasons: Vec<(&str, &str)> = view
            .reasons
            .iter()
            .map(|(k, t)| (k.as_str(), t.shown.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [
                ("contains,none", "fail: missing `refund policy`"),
                ("judge,none", "pass: the judge's verdict is [[PASS]]")
            ]
        );
        assert_eq!(view.judgements.len(), 2);
        assert_eq!(view.judgements[0].verdict, "1");
        assert_eq!(view.judgements[0].output.shown, "Fine. Verdict: [[PASS]]");
        assert_eq!(view.judgements[0].tokens, "in 40, out 5");
        assert_eq!(view.judgements[1].verdict, "none (no verdict)");
        assert_eq!(view.judgements[1].tokens, "in —, out —");
    }

    #[test]
    fn long_texts_say_how_much_is_cut_and_invisible_characters_show() {
        let long = "x".repeat(DISPLAY_CHARS + 5);
        assert_eq!(Text::new(&long).more, 5);
        assert_eq!(Text::new("ab").more, 0);
        assert_eq!(
            reveal_invisible("a\u{202E}b\u{200B}c\n"),
            "a[U+202E]b[U+200B]c\n"
        );
    }
}
