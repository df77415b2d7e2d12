//! Which metric of a task the board ranks by: the task's own choice
//! (`metadata.board_metric` in its YAML, e.g. `acc_norm,none`), else the
//! choice for a bundled benchmark below, else the task's first metric.

use podium_tasks::results::{MetricResult, TaskResult};

/// The board metric of the bundled benchmarks, following the Open LLM
/// Leaderboard (v1): length-normalized accuracy where the choices differ in
/// length (HellaSwag, ARC), plain accuracy for MMLU (its choices are short
/// letters' texts), MC2 for TruthfulQA, strict-match exact match for GSM8K.
/// Keyed by task-name prefix, so the `lite_` copies follow their full tasks.
pub const BUNDLED: &[(&str, &str)] = &[
    ("hellaswag", "acc_norm,none"),
    ("arc_easy", "acc_norm,none"),
    ("arc_challenge", "acc_norm,none"),
    ("mmlu_", "acc,none"),
    ("truthfulqa_mc2", "acc,none"),
    ("gsm8k", "exact_match,strict-match"),
];

/// The metric a result is ranked by on the board.
pub fn board_metric(result: &TaskResult) -> Option<&MetricResult> {
    let find = |key: &str| result.metrics.iter().find(|m| m.key == key);
    if let Some(chosen) = result
        .config
        .get("metadata")
        .and_then(|m| m.get("board_metric"))
        .and_then(|k| k.as_str())
        .and_then(find)
    {
        return Some(chosen);
    }
    let name = result.name.strip_prefix("lite_").unwrap_or(&result.name);
    BUNDLED
        .iter()
        .filter(|(prefix, _)| {
            name == *prefix || (prefix.ends_with('_') && name.starts_with(prefix))
        })
        .find_map(|(_, key)| find(key))
        .or_else(|| result.metrics.first())
}
