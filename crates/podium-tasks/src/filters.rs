//! Response filters (`filter_list`), with lm-evaluation-harness's semantics:
//! each pipeline turns a doc's responses (one per repeat) into the answers its
//! metrics score.

use std::collections::HashMap;

use regex::Regex;

pub const FILTER_NAMES: [&str; 7] = [
    "regex",
    "take_first",
    "take_first_k",
    "majority_vote",
    "remove_whitespace",
    "lowercase",
    "uppercase",
];

#[derive(Debug, Clone)]
pub enum FilterStep {
    /// Python `re.findall`, then the `group_select`-th match (negative counts
    /// from the end); a match with several groups yields its first non-empty
    /// group; no match yields `fallback`.
    Regex {
        regex: Regex,
        group_select: i64,
        fallback: String,
    },
    TakeFirst,
    TakeFirstK(usize),
    /// The most common response (first seen wins a tie).
    MajorityVote,
    /// Drop one leading space (lm-evaluation-harness's `WhitespaceFilter`).
    RemoveWhitespace,
    Lowercase,
    Uppercase,
}

#[derive(Debug, Clone)]
pub struct FilterPipeline {
    pub name: String,
    pub steps: Vec<FilterStep>,
}

impl FilterPipeline {
    /// The pipeline used when a task has no `filter_list`.
    pub fn none() -> FilterPipeline {
        FilterPipeline {
            name: "none".into(),
            steps: vec![FilterStep::TakeFirst],
        }
    }

    pub fn apply(&self, responses: &[String]) -> Vec<String> {
        let mut values = responses.to_vec();
        for step in &self.steps {
            values = step.apply(values);
        }
        values
    }
}

impl FilterStep {
    fn apply(&self, values: Vec<String>) -> Vec<String> {
        match self {
            FilterStep::Regex {
                regex,
                group_select,
                fallback,
            } => values
                .iter()
                .map(|value| {
                    regex_select(regex, value, *group_select).unwrap_or_else(|| fallback.clone())
                })
                .collect(),
            FilterStep::TakeFirst => values.into_iter().take(1).collect(),
            FilterStep::TakeFirstK(k) => values.into_iter().take(*k).collect(),
            FilterStep::MajorityVote => {
                let mut counts: HashMap<&str, usize> = HashMap::new();
                for value in &values {
                    *counts.entry(value.as_str()).or_default() += 1;
                }
                let best = values
                    .iter()
                    .max_by(|a, b| {
                        counts[a.as_str()]
                            .cmp(&counts[b.as_str()])
                            // Prefer the earlier value on a tie: max_by keeps the last max.
                            .then(std::cmp::Ordering::Greater)
                    })
                    .cloned();
                best.into_iter().collect()
            }
            FilterStep::RemoveWhitespace => values
                .into_iter()
                .map(|v| v.strip_prefix(' ').map(str::to_string).unwrap_or(v))
                .collect(),
            FilterStep::Lowercase => values.into_iter().map(|v| v.to_lowercase()).collect(),
            FilterStep::Uppercase => values.into_iter().map(|v| v.to_uppercase()).collect(),
        }
    }
}

/// Python's `re.findall(pattern, text)[group_select]`, stripped.
fn regex_select(regex: &Regex, text: &str, group_select: i64) -> Option<String> {
    let n_groups = regex.captures_len() - 1;
    let matches: Vec<String> = regex
        .captures_iter(text)
        .map(|caps| match n_groups {
            0 => caps.get(0).map_or("", |m| m.as_str()).to_string(),
            1 => caps.get(1).map_or("", |m| m.as_str()).to_string(),
            _ => (1..=n_groups)
                .filter_map(|i| caps.get(i).map(|m| m.as_str()))
                .find(|s| !s.is_empty())
                .unwrap_or("")
                .to_string(),
        })
        .collect();
    if matches.is_empty() {
        return None;
    }
    let index = if group_select < 0 {
        matches.len() as i64 + group_select
    } else {
        group_select
    };
    let chosen = matches.get(usize::try_from(index).ok()?)?;
    if n_groups > 1 && chosen.is_empty() {
        return None;
    }
    Some(chosen.trim().to_string())
}

/// A pattern written for Python's `re` that Rust's `regex` cannot compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "cannot compile regex `{pattern}` (Podium's regexes are Python's minus look-around and back-references): {error}"
)]
pub struct PythonRegexError {
    pub pattern: String,
    pub error: String,
}

/// Compile a pattern written for Python's `re`. Rust's `regex` has no
/// look-around or back-references; such patterns get a clear error.
pub fn compile_python_regex(pattern: &str) -> Result<Regex, PythonRegexError> {
    Regex::new(pattern).map_err(|err| PythonRegexError {
        pattern: pattern.to_string(),
        error: err.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline(steps: Vec<FilterStep>) -> FilterPipeline {
        FilterPipeline {
            name: "t".into(),
            steps,
        }
    }

    fn regex(pattern: &str, group_select: i64) -> FilterStep {
        FilterStep::Regex {
            regex: compile_python_regex(pattern).unwrap(),
            group_select,
            fallback: "[invalid]".into(),
        }
    }

    fn check(p: &FilterPipeline, responses: &[&str], expected: &[&str]) {
        let responses: Vec<String> = responses.iter().map(|s| s.to_string()).collect();
        assert_eq!(p.apply(&responses), expected, "responses {responses:?}");
    }

    #[test]
    fn gsm8k_strict_match() {
        // lm-evaluation-harness gsm8k-cot strict-match.
        let p = pipeline(vec![
            regex(r"The answer is (\-?[0-9\.\,]+).", 0),
            FilterStep::TakeFirst,
        ]);
        check(&p, &["So 3 + 4 = 7. The answer is 7.\n\nQ:"], &["7"]);
        // As in Python, the greedy class takes the period and `.` the space.
        check(&p, &["The answer is 1,000. The answer is 5."], &["1,000."]);
        check(&p, &["I think it is 7"], &["[invalid]"]);
    }

    #[test]
    fn gsm8k_flexible_extract_takes_last_number() {
        // Two groups: a match yields its first non-empty group.
        let p = pipeline(vec![
            regex(r"(-?[$0-9.,]{2,})|(-?[0-9]+)", -1),
            FilterStep::TakeFirst,
        ]);
        check(&p, &["First 12 apples, then 5 more, so $17."], &["$17."]);
        check(&p, &["it is 4"], &["4"]);
        check(&p, &["no numbers"], &["[invalid]"]);
    }

    #[test]
    fn regex_without_groups_returns_whole_match() {
        let p = pipeline(vec![regex(r"[0-9]+", 1)]);
        check(&p, &["a 1 b 22 c 333"], &["22"]);
        check(&p, &["only 1"], &["[invalid]"]);
    }

    #[test]
    fn majority_vote_prefers_most_common_then_first() {
        let p = pipeline(vec![FilterStep::MajorityVote]);
        check(&p, &["a", "b", "b", "a", "c", "b"], &["b"]);
        check(&p, &["x", "y"], &["x"]);
    }

    #[test]
    fn case_whitespace_and_take_first_k() {
        check(
            &pipeline(vec![FilterStep::RemoveWhitespace]),
            &[" Abc", "  d", "e"],
            &["Abc", " d", "e"],
        );
        check(&pipeline(vec![FilterStep::Lowercase]), &["AbC"], &["abc"]);
        check(&pipeline(vec![FilterStep::Uppercase]), &["AbC"], &["ABC"]);
        check(
            &pipeline(vec![FilterStep::TakeFirstK(2)]),
            &["a", "b", "c"],
            &["a", "b"],
        );
        check(&FilterPipeline::none(), &["a", "b"], &["a"]);
    }

    #[test]
    fn unsupported_regex_syntax_is_a_clear_error() {
        let err = compile_python_regex(r"(?<=a)b").unwrap_err().to_string();
        assert!(err.contains("look-around"), "{err}");
    }
}
