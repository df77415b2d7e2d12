//! Rule metrics for open-ended answers: `contains`, `contains_any`, `contains_all`,
//! `regex`, `starts_with`, `json_valid`, `json_schema`, `numeric`, `similarity`,
//! `length`, and `rules` (several rules in one score).
//!
//! Each rule gives a sample a value — 1 (pass) or 0 (fail), or a similarity in [0, 1] —
//! and a reason in words ("missing `refund`"), both stored with the sample. A rule's
//! argument comes from its `metric_list` entry (`value:`, `values:`, `pattern:`,
//! `schema:`), from a doc field (`field:`), or by default from the doc's target. Regexes
//! and schemas written in the YAML are compiled once, at load; those read from the data
//! are checked when the prompts are built, before anything runs.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::{Regex, RegexBuilder};
use serde_json::Value as Json;

use crate::config::Fields;
use crate::error::TaskError;
use crate::metrics::{MetricName, TextNormalization};
use crate::reference::is_python_space;
use crate::yaml::{Loc, Node, Value};

/// The most memory one compiled regex may use (its program and its lazy DFA).
pub const MAX_REGEX_BYTES: usize = 1 << 20;

/// Why a rule cannot be checked against a doc, or a pattern or schema does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("`numeric` expects a number, and {} has none", quote(.0))]
    NoNumber(String),
    #[error("the doc has no field `{0}`")]
    NoField(String),
    #[error("the doc has no target")]
    NoTarget,
    #[error("{what} must be text or a list of texts, found {found}")]
    NotText { what: String, found: String },
    #[error("{0} is an empty list")]
    EmptyList(String),
    #[error("the schema is not valid JSON: {0}")]
    SchemaText(String),
    #[error("invalid JSON Schema: {0}")]
    Schema(String),
    #[error(
        "cannot compile regex {} (Podium's regexes are Python's minus look-around and back-references, at most {max} bytes compiled): {error}",
        quote(.pattern),
        max = MAX_REGEX_BYTES
    )]
    Regex { pattern: String, error: String },
}
/// Characters of an answer or argument quoted in a reason.
const QUOTE_CHARS: usize = 60;

/// One rule of a metric entry, with the options every rule has.
#[derive(Debug, Clone)]
pub struct RuleSpec {
    pub metric: MetricName,
    pub kind: RuleKind,
    /// Swap pass and fail (a continuous value `v` becomes `1 − v`).
    pub negate: bool,
    /// The rule's weight inside a `rules` metric (1 unless given).
    pub weight: f64,
    pub normalization: TextNormalization,
}

/// Where a rule's argument comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// Written in the entry (`value:`, `values:`, `pattern:`, `schema:`).
    Literal(Json),
    /// The doc's field of this name (`field:`).
    Field(String),
    /// The doc's target (`doc_to_target`): its text, or each text of a list.
    Target,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    /// Σ weight · value / Σ weight.
    Mean,
    /// 1 when every rule passes.
    All,
    /// 1 when any rule passes.
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimilarityMethod {
    /// Python `Levenshtein.ratio` (= `rapidfuzz.fuzz.ratio` / 100): 1 − InDel distance /
    /// (len a + len b), where a substitution costs 2.
    Ratio,
    /// `rapidfuzz.distance.Levenshtein.normalized_similarity`: 1 − Levenshtein distance /
    /// max(len a, len b).
    Levenshtein,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LengthUnit {
    Chars,
    Words,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberPick {
    First,
    Last,
}

/// A pattern compiled at load, or one read per doc.
#[derive(Debug, Clone)]
pub enum PatternSource {
    Compiled(Regex),
    Row(Source),
}

/// A schema compiled at load, or one read per doc.
#[derive(Debug, Clone)]
pub enum SchemaSource {
    Compiled(Box<jsonschema::Validator>),
    Row(Source),
}

#[derive(Debug, Clone)]
pub enum RuleKind {
    /// `contains` and `contains_any`: some text of the argument occurs in the answer.
    ContainsAny(Source),
    /// Every text of the argument occurs in the answer.
    ContainsAll(Source),
    /// The answer, leading whitespace aside, starts with some text of the argument.
    StartsWith(Source),
    /// The pattern matches somewhere in the answer (Python's `re.search`).
    RegexMatch(PatternSource),
    /// The pattern's `group` of its first match equals some text of the argument.
    RegexExtract {
        regex: Regex,
        group: usize,
        expected: Source,
    },
    JsonValid,
    JsonSchema(SchemaSource),
    Numeric {
        expected: Source,
        abs_tol: f64,
        rel_tol: f64,
        pick: NumberPick,
    },
    Similarity {
        expected: Source,
        method: SimilarityMethod,
        /// Turns the similarity into pass (≥ threshold) or fail.
        threshold: Option<f64>,
    },
    Length {
        min: Option<usize>,
        max: Option<usize>,
        unit: LengthUnit,
    },
    Combined {
        rules: Vec<RuleSpec>,
        combine: Combine,
    },
}

/// What a doc gives its rules: the target's texts and the fields rules read.
#[derive(Debug, Clone, Copy)]
pub struct RowArgs<'a> {
    pub golds: &'a [String],
    pub fields: &'a BTreeMap<String, Json>,
}

/// A rule's value for one answer, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub value: f64,
    pub reason: String,
}

impl RuleSpec {
    /// Whether every value of this rule is 0 or 1.
    pub fn is_pass_fail(&self) -> bool {
        match &self.kind {
            RuleKind::Similarity { threshold, .. } => threshold.is_some(),
            RuleKind::Combined { rules, combine } => {
                *combine != Combine::Mean || rules.iter().all(RuleSpec::is_pass_fail)
            }
            _ => true,
        }
    }

    /// The doc fields the rule reads (`field:`), its sub-rules' included.
    pub fn row_fields(&self) -> Vec<&str> {
        let mut fields = Vec::new();
        self.collect_fields(&mut fields);
        fields.sort_unstable();
        fields.dedup();
        fields
    }

    fn collect_fields<'a>(&'a self, out: &mut Vec<&'a str>) {
        let source = match &self.kind {
            RuleKind::ContainsAny(s)
            | RuleKind::ContainsAll(s)
            | RuleKind::StartsWith(s)
            | RuleKind::RegexMatch(PatternSource::Row(s))
            | RuleKind::JsonSchema(SchemaSource::Row(s))
            | RuleKind::RegexExtract { expected: s, .. }
            | RuleKind::Numeric { expected: s, .. }
            | RuleKind::Similarity { expected: s, .. } => Some(s),
            RuleKind::Combined { rules, .. } => {
                for rule in rules {
                    rule.collect_fields(out);
                }
                None
            }
            _ => None,
        };
        if let Some(Source::Field(name)) = source {
            out.push(name);
        }
    }

    /// Checks a doc's arguments before the run: fields present and of the right kind,
    /// patterns and schemas read from the data compile, expected numbers parse.
    pub fn check_row(&self, row: RowArgs<'_>) -> Result<(), RuleError> {
        match &self.kind {
            RuleKind::ContainsAny(s)
            | RuleKind::ContainsAll(s)
            | RuleKind::StartsWith(s)
            | RuleKind::RegexExtract { expected: s, .. }
            | RuleKind::Similarity { expected: s, .. } => texts(s, row).map(drop),
            RuleKind::RegexMatch(PatternSource::Row(s)) => {
                for pattern in texts(s, row)? {
                    compile_regex(&pattern, self.normalization.ignore_case)?;
                }
                Ok(())
            }
            RuleKind::JsonSchema(SchemaSource::Row(s)) => row_schema(s, row).map(drop),
            RuleKind::Numeric { expected, .. } => {
                for text in texts(expected, row)? {
                    if find_number(&text, NumberPick::Last).is_none() {
                        return Err(RuleError::NoNumber(text));
                    }
                }
                Ok(())
            }
            RuleKind::Combined { rules, .. } => rules.iter().try_for_each(|r| r.check_row(row)),
            RuleKind::RegexMatch(PatternSource::Compiled(_))
            | RuleKind::JsonSchema(SchemaSource::Compiled(_))
            | RuleKind::JsonValid
            | RuleKind::Length { .. } => Ok(()),
        }
    }

    /// The rule's value for `answer` (after the task's filters), with its reason:
    /// `pass: …` or `fail: …`, or the value itself for a continuous score.
    pub fn evaluate(&self, answer: &str, row: RowArgs<'_>) -> Verdict {
        let (value, detail) = self.evaluate_inner(answer, row);
        let (value, detail) = if self.negate {
            (1.0 - value, format!("negated, {detail}"))
        } else {
            (value, detail)
        };
        let verdict = if value == 1.0 && self.is_pass_fail() {
            "pass".to_string()
        } else if value == 0.0 && self.is_pass_fail() {
            "fail".to_string()
        } else {
            format!("{value:.3}")
        };
        Verdict {
            value,
            reason: format!("{verdict}: {detail}"),
        }
    }

    fn evaluate_inner(&self, answer: &str, row: RowArgs<'_>) -> (f64, String) {
        match self.try_evaluate(answer, row) {
            Ok(result) => result,
            // Checked before the run (`check_row`); kept as a failure with its reason all
            // the same rather than trusted.
            Err(message) => (0.0, format!("error: {message}")),
        }
    }

    fn try_evaluate(&self, answer: &str, row: RowArgs<'_>) -> Result<(f64, String), RuleError> {
        let norm = &self.normalization;
        let answer = norm.apply(answer);
        let normalized_texts = |source: &Source| -> Result<Vec<String>, RuleError> {
            Ok(texts(source, row)?.iter().map(|t| norm.apply(t)).collect())
        };
        Ok(match &self.kind {
            RuleKind::ContainsAny(source) => {
                let needles = normalized_texts(source)?;
                match needles.iter().find(|n| answer.contains(n.as_str())) {
                    Some(found) => (1.0, format!("contains {}", quote(found))),
                    None if needles.len() == 1 => (0.0, format!("missing {}", quote(&needles[0]))),
                    None => (0.0, format!("contains none of {}", quote_list(&needles))),
                }
            }
            RuleKind::ContainsAll(source) => {
                let needles = normalized_texts(source)?;
                let missing: Vec<String> = needles
                    .iter()
                    .filter(|n| !answer.contains(n.as_str()))
                    .cloned()
                    .collect();
                if missing.is_empty() {
                    (1.0, format!("contains all of {}", quote_list(&needles)))
                } else {
                    (0.0, format!("missing {}", quote_list(&missing)))
                }
            }
            RuleKind::StartsWith(source) => {
                let prefixes = normalized_texts(source)?;
                let start = answer.trim_start();
                match prefixes.iter().find(|p| start.starts_with(p.as_str())) {
                    Some(prefix) => (1.0, format!("starts with {}", quote(prefix))),
                    None => (
                        0.0,
                        format!(
                            "starts with {}, not {}",
                            quote(start),
                            quote_list(&prefixes)
                        ),
                    ),
                }
            }
            RuleKind::RegexMatch(pattern) => {
                let regexes = match pattern {
                    PatternSource::Compiled(regex) => vec![regex.clone()],
                    PatternSource::Row(source) => texts(source, row)?
                        .iter()
                        .map(|p| compile_regex(p, norm.ignore_case))
                        .collect::<Result<_, _>>()?,
                };
                match regexes.iter().find_map(|r| r.find(&answer).map(|m| (r, m))) {
                    Some((regex, found)) => (
                        1.0,
                        format!(
                            "{} matches {}",
                            quote(regex.as_str()),
                            quote(found.as_str())
                        ),
                    ),
                    None => (
                        0.0,
                        format!(
                            "no match for {}",
                            regexes
                                .iter()
                                .map(|r| quote(r.as_str()))
                                .collect::<Vec<_>>()
                                .join(" or ")
                        ),
                    ),
                }
            }
            RuleKind::RegexExtract {
                regex,
                group,
                expected,
            } => {
                let expected = normalized_texts(expected)?;
                let Some(captures) = regex.captures(&answer) else {
                    return Ok((0.0, format!("no match for {}", quote(regex.as_str()))));
                };
                let Some(extracted) = captures.get(*group) else {
                    return Ok((0.0, format!("group {group} did not take part in the match")));
                };
                // Normalized again: case-insensitive patterns extract the answer's case.
                let extracted = norm.apply(extracted.as_str());
                if expected.contains(&extracted) {
                    (1.0, format!("extracted {}", quote(&extracted)))
                } else {
                    (
                        0.0,
                        format!(
                            "extracted {}, expected {}",
                            quote(&extracted),
                            quote_list(&expected)
                        ),
                    )
                }
            }
            RuleKind::JsonValid => match serde_json::from_str::<Json>(strip_code_fence(&answer)) {
                Ok(_) => (1.0, "valid JSON".to_string()),
                Err(err) => (0.0, format!("not valid JSON: {err}")),
            },
            RuleKind::JsonSchema(schema) => {
                let instance = match serde_json::from_str::<Json>(strip_code_fence(&answer)) {
                    Ok(instance) => instance,
                    Err(err) => return Ok((0.0, format!("not valid JSON: {err}"))),
                };
                let row_validator;
                let validator = match schema {
                    SchemaSource::Compiled(validator) => validator.as_ref(),
                    SchemaSource::Row(source) => {
                        row_validator = row_schema(source, row)?;
                        &row_validator
                    }
                };
                match validator.validate(&instance) {
                    Ok(()) => (1.0, "valid against the schema".to_string()),
                    Err(err) => (
                        0.0,
                        format!(
                            "does not match the schema at `{}`: {}",
                            err.instance_path(),
                            cut(&err.to_string(), 2 * QUOTE_CHARS)
                        ),
                    ),
                }
            }
            RuleKind::Numeric {
                expected,
                abs_tol,
                rel_tol,
                pick,
            } => {
                let Some(got) = find_number(&answer, *pick) else {
                    return Ok((0.0, "no number in the answer".to_string()));
                };
                let targets: Vec<f64> = texts(expected, row)?
                    .iter()
                    .filter_map(|t| find_number(t, NumberPick::Last))
                    .collect();
                match targets
                    .iter()
                    .find(|&&t| is_close(got, t, *abs_tol, *rel_tol))
                {
                    Some(t) => (1.0, format!("{got} is within tolerance of {t}")),
                    None => (
                        0.0,
                        format!(
                            "{got}, expected {}",
                            targets
                                .iter()
                                .map(|t| t.to_string())
                                .collect::<Vec<_>>()
                                .join(" or ")
                        ),
                    ),
                }
            }
            RuleKind::Similarity {
                expected,
                method,
                threshold,
            } => {
                let expected = normalized_texts(expected)?;
                let (best, text) = expected
                    .iter()
                    .map(|t| (similarity(*method, &answer, t), t))
                    .fold((f64::NEG_INFINITY, None), |best, (s, t)| {
                        if s > best.0 { (s, Some(t)) } else { best }
                    });
                let text = text.map_or(String::new(), |t| quote(t));
                match threshold {
                    Some(threshold) if best >= *threshold => {
                        (1.0, format!("similarity {best:.3} ≥ {threshold} to {text}"))
                    }
                    Some(threshold) => {
                        (0.0, format!("similarity {best:.3} < {threshold} to {text}"))
                    }
                    None => (best.max(0.0), format!("similarity {best:.3} to {text}")),
                }
            }
            RuleKind::Length { min, max, unit } => {
                let (n, what) = match unit {
                    LengthUnit::Chars => (answer.chars().count(), "characters"),
                    LengthUnit::Words => (
                        answer
                            .split(is_python_space)
                            .filter(|w| !w.is_empty())
                            .count(),
                        "words",
                    ),
                };
                if min.is_some_and(|m| n < m) {
                    (0.0, format!("{n} {what}, fewer than {}", min.unwrap_or(0)))
                } else if max.is_some_and(|m| n > m) {
                    (0.0, format!("{n} {what}, more than {}", max.unwrap_or(0)))
                } else {
                    (1.0, format!("{n} {what}"))
                }
            }
            RuleKind::Combined { rules, combine } => {
                let verdicts: Vec<(f64, Verdict)> = rules
                    .iter()
                    .map(|rule| (rule.weight, rule.evaluate(&answer, row)))
                    .collect();
                let value = match combine {
                    Combine::Mean => {
                        let total: f64 = verdicts.iter().map(|(w, _)| w).sum();
                        let sum: f64 = verdicts.iter().map(|(w, v)| w * v.value).sum();
                        if total > 0.0 { sum / total } else { 0.0 }
                    }
                    Combine::All => {
                        f64::from(u8::from(verdicts.iter().all(|(_, v)| v.value == 1.0)))
                    }
                    Combine::Any => {
                        f64::from(u8::from(verdicts.iter().any(|(_, v)| v.value == 1.0)))
                    }
                };
                let parts: Vec<String> = rules
                    .iter()
                    .zip(&verdicts)
                    .map(|(rule, (weight, verdict))| {
                        let weight = if *weight == 1.0 || *combine != Combine::Mean {
                            String::new()
                        } else {
                            format!(" ×{weight}")
                        };
                        format!("{}{weight} {}", rule.metric.as_str(), verdict.reason)
                    })
                    .collect();
                let how = match combine {
                    Combine::Mean => "weighted mean",
                    Combine::All => "all must pass",
                    Combine::Any => "any may pass",
                };
                (value, format!("{how}: {}", parts.join("; ")))
            }
        })
    }
}

/// The texts of a rule's argument for one doc.
fn texts(source: &Source, row: RowArgs<'_>) -> Result<Vec<String>, RuleError> {
    match source {
        Source::Literal(value) => json_texts(value, "the entry's value"),
        Source::Target => Ok(row.golds.to_vec()),
        Source::Field(name) => match row.fields.get(name) {
            Some(value) => json_texts(value, &format!("field `{name}`")),
            None => Err(RuleError::NoField(name.clone())),
        },
    }
}

fn json_texts(value: &Json, what: &str) -> Result<Vec<String>, RuleError> {
    let text = |item: &Json| match item {
        Json::String(s) => Ok(s.clone()),
        Json::Number(n) => Ok(n.to_string()),
        Json::Bool(b) => Ok(b.to_string()),
        other => Err(RuleError::NotText {
            what: what.to_string(),
            found: other.to_string(),
        }),
    };
    match value {
        Json::Array(items) if items.is_empty() => Err(RuleError::EmptyList(what.to_string())),
        Json::Array(items) => items.iter().map(text).collect(),
        other => Ok(vec![text(other)?]),
    }
}

/// A per-doc schema: a JSON object (or boolean schema), or text holding one.
fn row_schema(source: &Source, row: RowArgs<'_>) -> Result<jsonschema::Validator, RuleError> {
    let schema = match source {
        Source::Field(name) => match row.fields.get(name) {
            Some(Json::String(text)) => parse_schema_text(text)?,
            Some(value) => value.clone(),
            None => return Err(RuleError::NoField(name.clone())),
        },
        Source::Target => match row.golds.first() {
            Some(text) => parse_schema_text(text)?,
            None => return Err(RuleError::NoTarget),
        },
        Source::Literal(value) => value.clone(),
    };
    compile_schema(&schema)
}

fn parse_schema_text(text: &str) -> Result<Json, RuleError> {
    serde_json::from_str(text).map_err(|err| RuleError::SchemaText(err.to_string()))
}

/// Compiles a JSON Schema. Remote and file `$ref`s cannot resolve: the crate is built
/// without network or file access.
pub fn compile_schema(schema: &Json) -> Result<jsonschema::Validator, RuleError> {
    jsonschema::validator_for(schema).map_err(|err| RuleError::Schema(err.to_string()))
}

/// Compiles a regex with Rust's `regex` syntax (Python's minus look-around and
/// back-references) and a memory limit of [`MAX_REGEX_BYTES`].
pub fn compile_regex(pattern: &str, case_insensitive: bool) -> Result<Regex, RuleError> {
    RegexBuilder::new(pattern)
        .case_insensitive(case_insensitive)
        .size_limit(MAX_REGEX_BYTES)
        .dfa_size_limit(MAX_REGEX_BYTES)
        .build()
        .map_err(|err| RuleError::Regex {
            pattern: pattern.to_string(),
            error: err.to_string(),
        })
}

/// The answer without a surrounding Markdown code fence (```` ```json … ``` ````).
fn strip_code_fence(text: &str) -> &str {
    let trimmed = text.trim();
    let Some(rest) = trimmed.strip_prefix("```") else {
        return trimmed;
    };
    let body = rest.split_once('\n').map_or("", |(_, body)| body);
    body.trim_end().strip_suffix("```").unwrap_or(body).trim()
}

static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"[-+]?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|[-+]?\.[0-9]+",
    )
    .expect("a fixed pattern compiles")
});

/// The first or last number written in `text`: an optional sign, digits with optional
/// thousands commas, an optional fraction and exponent.
pub fn find_number(text: &str, pick: NumberPick) -> Option<f64> {
    let mut numbers = NUMBER
        .find_iter(text)
        .filter_map(|m| m.as_str().replace(',', "").parse::<f64>().ok());
    match pick {
        NumberPick::First => numbers.next(),
        NumberPick::Last => numbers.last(),
    }
}

/// Python's `math.isclose`: |a − b| ≤ max(rel_tol · max(|a|, |b|), abs_tol).
pub fn is_close(a: f64, b: f64, abs_tol: f64, rel_tol: f64) -> bool {
    a == b || (a - b).abs() <= (rel_tol * a.abs().max(b.abs())).max(abs_tol)
}

/// The similarity of two texts over Unicode code points (as Python strings count them).
pub fn similarity(method: SimilarityMethod, a: &str, b: &str) -> f64 {
    match method {
        SimilarityMethod::Ratio => {
            rapidfuzz::distance::indel::normalized_similarity(a.chars(), b.chars())
        }
        SimilarityMethod::Levenshtein => {
            rapidfuzz::distance::levenshtein::normalized_similarity(a.chars(), b.chars())
        }
    }
}

fn cut(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

fn quote(text: &str) -> String {
    format!("`{}`", cut(text, QUOTE_CHARS).replace('\n', "\\n"))
}

fn quote_list(texts: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut parts: Vec<String> = texts.iter().take(SHOWN).map(|t| quote(t)).collect();
    if texts.len() > SHOWN {
        parts.push(format!("and {} more", texts.len() - SHOWN));
    }
    parts.join(", ")
}

// ---------------------------------------------------------------------------------------
// Reading a `metric_list` entry

/// Options of the text-comparing rules: exact_match's normalization.
const TEXT_OPTIONS: &[&str] = &["ignore_case", "ignore_punctuation", "ignore_numbers"];

/// The options each rule metric reads, besides `metric`, `name`, `negate`, `weight` and
/// `regexes_to_ignore`.
fn rule_options(metric: MetricName) -> &'static [&'static str] {
    match metric {
        MetricName::Contains | MetricName::StartsWith => &["value", "field"],
        MetricName::ContainsAny | MetricName::ContainsAll => &["values", "field"],
        MetricName::Regex => &["pattern", "mode", "group", "value", "field"],
        MetricName::JsonSchema => &["schema", "field"],
        MetricName::Numeric => &["value", "field", "abs_tol", "rel_tol", "pick"],
        MetricName::Similarity => &["value", "field", "method", "threshold"],
        MetricName::Length => &["min", "max", "unit"],
        MetricName::Rules => &["rules", "combine"],
        _ => &[],
    }
}

fn compares_text(metric: MetricName) -> bool {
    matches!(
        metric,
        MetricName::Contains
            | MetricName::ContainsAny
            | MetricName::ContainsAll
            | MetricName::StartsWith
            | MetricName::Regex
            | MetricName::Similarity
    )
}

/// Reads one rule entry. `in_rules` is true for an entry of a `rules:` list (which may
/// have a `weight`, and no `name` or nested `rules`).
pub(crate) fn parse_rule(
    fields: &Fields<'_>,
    metric: MetricName,
    metric_loc: &Loc,
    in_rules: bool,
) -> Result<RuleSpec, TaskError> {
    let context = if in_rules { " inside `rules`" } else { "" };
    for (key, loc, _) in fields.entries {
        let key = key.as_str();
        let known = ["metric", "negate", "regexes_to_ignore"].contains(&key)
            || rule_options(metric).contains(&key)
            || (compares_text(metric) && TEXT_OPTIONS.contains(&key))
            || (in_rules && key == "weight")
            || (!in_rules && key == "name");
        if !known {
            let hint = match key {
                "weight" => " (`weight` applies to a rule inside a `rules:` list)",
                "name" => " (a rule inside `rules` has no key of its own)",
                _ => "",
            };
            let mut options: Vec<&str> = vec!["negate", "regexes_to_ignore"];
            options.extend(rule_options(metric));
            if compares_text(metric) {
                options.extend(TEXT_OPTIONS);
            }
            options.push(if in_rules { "weight" } else { "name" });
            return Err(TaskError::invalid(
                loc,
                key,
                format!(
                    "unknown option for metric `{}`{context}{hint}; its options are: {}",
                    metric.as_str(),
                    options.join(", ")
                ),
            ));
        }
    }
    let normalization = TextNormalization {
        ignore_case: fields.bool("ignore_case")?.unwrap_or(false),
        ignore_punctuation: fields.bool("ignore_punctuation")?.unwrap_or(false),
        ignore_numbers: fields.bool("ignore_numbers")?.unwrap_or(false),
        regexes_to_ignore: fields
            .string_list("regexes_to_ignore")?
            .unwrap_or_default()
            .iter()
            .map(|pattern| {
                compile_regex(pattern, false).map_err(|err| {
                    TaskError::invalid(
                        fields.loc_of("regexes_to_ignore"),
                        "regexes_to_ignore",
                        err.to_string(),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let weight = match fields.float("weight")? {
        None => 1.0,
        Some(w) if w.is_finite() && w >= 0.0 => w,
        Some(w) => {
            return Err(TaskError::invalid(
                fields.loc_of("weight"),
                "weight",
                format!("{w} is not a weight: expected a finite number ≥ 0"),
            ));
        }
    };
    let kind = parse_kind(fields, metric, metric_loc, &normalization)?;
    Ok(RuleSpec {
        metric,
        kind,
        negate: fields.bool("negate")?.unwrap_or(false),
        weight,
        normalization,
    })
}

/// The argument of a rule that compares with texts: `literal_key` (`value` or `values`),
/// else `field`, else the target.
fn source(fields: &Fields<'_>, literal_key: &str) -> Result<Source, TaskError> {
    let literal = if literal_key == "values" {
        match fields.string_list("values")? {
            Some(values) if values.is_empty() => {
                return Err(TaskError::invalid(
                    fields.loc_of("values"),
                    "values",
                    "an empty list: nothing to look for",
                ));
            }
            Some(values) => Some(Source::Literal(Json::Array(
                values.into_iter().map(Json::String).collect(),
            ))),
            None => None,
        }
    } else {
        fields
            .string(literal_key)?
            .map(|s| Source::Literal(Json::String(s)))
    };
    let field = fields.string("field")?;
    match (literal, field) {
        (Some(_), Some(_)) => Err(TaskError::invalid(
            fields.loc_of("field"),
            "field",
            format!("give `{literal_key}` or `field`, not both"),
        )),
        (Some(literal), None) => Ok(literal),
        (None, Some(field)) => Ok(Source::Field(field)),
        (None, None) => Ok(Source::Target),
    }
}

fn parse_kind(
    fields: &Fields<'_>,
    metric: MetricName,
    metric_loc: &Loc,
    normalization: &TextNormalization,
) -> Result<RuleKind, TaskError> {
    Ok(match metric {
        MetricName::Contains | MetricName::ContainsAny => RuleKind::ContainsAny(source(
            fields,
            if metric == MetricName::Contains {
                "value"
            } else {
                "values"
            },
        )?),
        MetricName::ContainsAll => RuleKind::ContainsAll(source(fields, "values")?),
        MetricName::StartsWith => RuleKind::StartsWith(source(fields, "value")?),
        MetricName::Regex => {
            let mode =
                fields.one_of("mode", &[("match", false), ("extract", true)], "regex mode")?;
            let pattern = match fields.string("pattern")? {
                None => None,
                Some(pattern) => Some(compile_regex(&pattern, normalization.ignore_case).map_err(
                    |err| TaskError::invalid(fields.loc_of("pattern"), "pattern", err.to_string()),
                )?),
            };
            if mode == Some(true) {
                let Some(regex) = pattern else {
                    return Err(TaskError::invalid(
                        metric_loc,
                        "pattern",
                        "`mode: extract` needs a `pattern` with the group to extract",
                    ));
                };
                let group = match fields.usize("group")? {
                    Some(group) => group,
                    None => usize::from(regex.captures_len() > 1),
                };
                if group >= regex.captures_len() {
                    return Err(TaskError::invalid(
                        fields.loc_of("group"),
                        "group",
                        format!(
                            "the pattern has {} group(s); `group` must be 0 (the whole match) to {}",
                            regex.captures_len() - 1,
                            regex.captures_len() - 1
                        ),
                    ));
                }
                RuleKind::RegexExtract {
                    regex,
                    group,
                    expected: source(fields, "value")?,
                }
            } else {
                for key in ["group", "value"] {
                    if fields.get(key).is_some() {
                        return Err(TaskError::invalid(
                            fields.loc_of(key),
                            key,
                            "only with `mode: extract`",
                        ));
                    }
                }
                match pattern {
                    Some(regex) => {
                        if fields.get("field").is_some() {
                            return Err(TaskError::invalid(
                                fields.loc_of("field"),
                                "field",
                                "give `pattern` or `field`, not both",
                            ));
                        }
                        RuleKind::RegexMatch(PatternSource::Compiled(regex))
                    }
                    None => RuleKind::RegexMatch(PatternSource::Row(source(fields, "pattern")?)),
                }
            }
        }
        MetricName::JsonValid => RuleKind::JsonValid,
        MetricName::JsonSchema => match fields.get("schema") {
            Some((loc, node)) => {
                if fields.get("field").is_some() {
                    return Err(TaskError::invalid(
                        fields.loc_of("field"),
                        "field",
                        "give `schema` or `field`, not both",
                    ));
                }
                let schema = match &node.value {
                    Value::Str(text) => parse_schema_text(text)
                        .map_err(|err| TaskError::invalid(loc, "schema", err.to_string()))?,
                    Value::Map(_) | Value::Bool(_) => node.to_json(),
                    _ => return Err(fields.wrong_type("schema", "a mapping or JSON text", node)),
                };
                let validator = compile_schema(&schema)
                    .map_err(|err| TaskError::invalid(loc, "schema", err.to_string()))?;
                RuleKind::JsonSchema(SchemaSource::Compiled(Box::new(validator)))
            }
            None => RuleKind::JsonSchema(SchemaSource::Row(source(fields, "schema")?)),
        },
        MetricName::Numeric => {
            let tolerance = |key: &str, default: f64| -> Result<f64, TaskError> {
                match fields.float(key)? {
                    None => Ok(default),
                    Some(t) if t.is_finite() && t >= 0.0 => Ok(t),
                    Some(t) => Err(TaskError::invalid(
                        fields.loc_of(key),
                        key,
                        format!("{t} is not a tolerance: expected a finite number ≥ 0"),
                    )),
                }
            };
            let expected = match fields.get("value") {
                Some((_, node)) => match node.value {
                    Value::Int(_) | Value::Float(_) => Source::Literal(Json::String(
                        fields.float("value")?.unwrap_or(0.0).to_string(),
                    )),
                    _ => return Err(fields.wrong_type("value", "a number", node)),
                },
                None => source(fields, "value")?,
            };
            RuleKind::Numeric {
                expected,
                abs_tol: tolerance("abs_tol", 0.0)?,
                rel_tol: tolerance("rel_tol", 1e-9)?,
                pick: fields
                    .one_of(
                        "pick",
                        &[("first", NumberPick::First), ("last", NumberPick::Last)],
                        "number pick",
                    )?
                    .unwrap_or(NumberPick::Last),
            }
        }
        MetricName::Similarity => {
            let threshold = match fields.float("threshold")? {
                None => None,
                Some(t) if (0.0..=1.0).contains(&t) => Some(t),
                Some(t) => {
                    return Err(TaskError::invalid(
                        fields.loc_of("threshold"),
                        "threshold",
                        format!("{t}: expected a number from 0 to 1"),
                    ));
                }
            };
            RuleKind::Similarity {
                expected: source(fields, "value")?,
                method: fields
                    .one_of(
                        "method",
                        &[
                            ("ratio", SimilarityMethod::Ratio),
                            ("levenshtein", SimilarityMethod::Levenshtein),
                        ],
                        "similarity method",
                    )?
                    .unwrap_or(SimilarityMethod::Ratio),
                threshold,
            }
        }
        MetricName::Length => {
            let (min, max) = (fields.usize("min")?, fields.usize("max")?);
            if min.is_none() && max.is_none() {
                return Err(TaskError::invalid(
                    metric_loc,
                    "length",
                    "give `min`, `max` or both",
                ));
            }
            if let (Some(lo), Some(hi)) = (min, max)
                && lo > hi
            {
                return Err(TaskError::invalid(
                    fields.loc_of("min"),
                    "min",
                    format!("`min` {lo} is above `max` {hi}"),
                ));
            }
            RuleKind::Length {
                min,
                max,
                unit: fields
                    .one_of(
                        "unit",
                        &[("chars", LengthUnit::Chars), ("words", LengthUnit::Words)],
                        "length unit",
                    )?
                    .unwrap_or(LengthUnit::Chars),
            }
        }
        MetricName::Rules => parse_combined(fields, metric_loc)?,
        _ => unreachable!("parse_rule is called for rule metrics only"),
    })
}

fn parse_combined(fields: &Fields<'_>, metric_loc: &Loc) -> Result<RuleKind, TaskError> {
    let combine = fields
        .one_of(
            "combine",
            &[
                ("mean", Combine::Mean),
                ("all", Combine::All),
                ("any", Combine::Any),
            ],
            "combination",
        )?
        .unwrap_or(Combine::Mean);
    let items: &[Node] = match fields.get("rules") {
        Some((
            _,
            Node {
                value: Value::Seq(items),
                ..
            },
        )) if !items.is_empty() => items,
        Some((_, node)) => {
            return Err(fields.wrong_type("rules", "a non-empty list of rules", node));
        }
        None => {
            return Err(TaskError::invalid(
                metric_loc,
                "rules",
                "metric `rules` needs a `rules:` list",
            ));
        }
    };
    let mut rules = Vec::new();
    for item in items {
        let entry = Fields::new(item)?;
        let name = entry.string("metric")?.ok_or_else(|| TaskError::Yaml {
            loc: item.loc.clone(),
            message: "a rule inside `rules` needs `metric`".into(),
        })?;
        let loc = entry.loc_of("metric");
        let metric = MetricName::parse(&name)
            .filter(|m| m.family() == crate::metrics::MetricFamily::Rule && *m != MetricName::Rules)
            .ok_or_else(|| {
                TaskError::invalid(
                    loc,
                    "metric",
                    format!(
                        "`{name}` is not a rule; a `rules` list takes: {}",
                        MetricName::ALL
                            .iter()
                            .filter(|m| m.family() == crate::metrics::MetricFamily::Rule
                                && **m != MetricName::Rules)
                            .map(|m| m.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?;
        let rule = parse_rule(&entry, metric, loc, true)?;
        if combine != Combine::Mean && !rule.is_pass_fail() {
            return Err(TaskError::invalid(
                loc,
                "metric",
                "`combine: all` and `combine: any` need pass/fail rules: give `similarity` a `threshold`",
            ));
        }
        rules.push(rule);
    }
    if combine == Combine::Mean && rules.iter().all(|r| r.weight == 0.0) {
        return Err(TaskError::invalid(
            metric_loc,
            "rules",
            "every rule has weight 0",
        ));
    }
    Ok(RuleKind::Combined { rules, combine })
}
