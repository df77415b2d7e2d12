//! Per-sample metrics (`metric_list`) with lm-evaluation-harness's
//! definitions, and their aggregation into a task score with a standard error.

use regex::Regex;
use serde::{Deserialize, Serialize};

use podium_core::LoglikelihoodResult;

use crate::config::OutputType;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricName {
    Acc,
    AccNorm,
    AccBytes,
    AccNormTokens,
    ExactMatch,
    Perplexity,
    WordPerplexity,
    BytePerplexity,
    BitsPerByte,
    // Rule metrics (`rules.rs`): a 0/1 pass value per sample, with a reason.
    Contains,
    ContainsAny,
    ContainsAll,
    Regex,
    StartsWith,
    JsonValid,
    JsonSchema,
    Numeric,
    Similarity,
    Length,
    /// Several rules in one score: their weighted mean, or all / any of them.
    Rules,
    // Reference metrics (`reference.rs`): sacrebleu's and rouge-score's definitions.
    Bleu,
    Chrf,
    Rouge1,
    Rouge2,
    RougeL,
    /// IFEval (`process_results: ifeval`): every instruction of the prompt followed.
    PromptLevelStrictAcc,
    /// IFEval: instructions followed over instructions, over all prompts.
    InstLevelStrictAcc,
    PromptLevelLooseAcc,
    InstLevelLooseAcc,
}

/// Where a metric's per-sample value is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricFamily {
    /// lm-evaluation-harness's own metrics, computed in `task.rs`.
    Builtin,
    /// A rule over the answer (`rules.rs`), with a reason per sample.
    Rule,
    /// A comparison with the reference texts (`reference.rs`).
    Reference,
    // A metric whose value needs a backend call (a judge model) would be a family of its
    // own: `Task::score` leaves it out, and the runner adds its values to the sample's
    // `SampleScores` (`insert_with_reason`) before storing it.
}

impl MetricName {
    pub const ALL: [MetricName; 29] = [
        MetricName::Acc,
        MetricName::AccNorm,
        MetricName::AccBytes,
        MetricName::AccNormTokens,
        MetricName::ExactMatch,
        MetricName::Perplexity,
        MetricName::WordPerplexity,
        MetricName::BytePerplexity,
        MetricName::BitsPerByte,
        MetricName::Contains,
        MetricName::ContainsAny,
        MetricName::ContainsAll,
        MetricName::Regex,
        MetricName::StartsWith,
        MetricName::JsonValid,
        MetricName::JsonSchema,
        MetricName::Numeric,
        MetricName::Similarity,
        MetricName::Length,
        MetricName::Rules,
        MetricName::Bleu,
        MetricName::Chrf,
        MetricName::Rouge1,
        MetricName::Rouge2,
        MetricName::RougeL,
        MetricName::PromptLevelStrictAcc,
        MetricName::InstLevelStrictAcc,
        MetricName::PromptLevelLooseAcc,
        MetricName::InstLevelLooseAcc,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MetricName::Acc => "acc",
            MetricName::AccNorm => "acc_norm",
            MetricName::AccBytes => "acc_bytes",
            MetricName::AccNormTokens => "acc_norm_tokens",
            MetricName::ExactMatch => "exact_match",
            MetricName::Perplexity => "perplexity",
            MetricName::WordPerplexity => "word_perplexity",
            MetricName::BytePerplexity => "byte_perplexity",
            MetricName::BitsPerByte => "bits_per_byte",
            MetricName::Contains => "contains",
            MetricName::ContainsAny => "contains_any",
            MetricName::ContainsAll => "contains_all",
            MetricName::Regex => "regex",
            MetricName::StartsWith => "starts_with",
            MetricName::JsonValid => "json_valid",
            MetricName::JsonSchema => "json_schema",
            MetricName::Numeric => "numeric",
            MetricName::Similarity => "similarity",
            MetricName::Length => "length",
            MetricName::Rules => "rules",
            MetricName::Bleu => "bleu",
            MetricName::Chrf => "chrf",
            MetricName::Rouge1 => "rouge1",
            MetricName::Rouge2 => "rouge2",
            MetricName::RougeL => "rougeL",
            MetricName::PromptLevelStrictAcc => "prompt_level_strict_acc",
            MetricName::InstLevelStrictAcc => "inst_level_strict_acc",
            MetricName::PromptLevelLooseAcc => "prompt_level_loose_acc",
            MetricName::InstLevelLooseAcc => "inst_level_loose_acc",
        }
    }

    pub fn family(self) -> MetricFamily {
        match self {
            MetricName::Contains
            | MetricName::ContainsAny
            | MetricName::ContainsAll
            | MetricName::Regex
            | MetricName::StartsWith
            | MetricName::JsonValid
            | MetricName::JsonSchema
            | MetricName::Numeric
            | MetricName::Similarity
            | MetricName::Length
            | MetricName::Rules => MetricFamily::Rule,
            MetricName::Bleu
            | MetricName::Chrf
            | MetricName::Rouge1
            | MetricName::Rouge2
            | MetricName::RougeL => MetricFamily::Reference,
            _ => MetricFamily::Builtin,
        }
    }

    pub fn parse(name: &str) -> Option<MetricName> {
        MetricName::ALL.into_iter().find(|m| m.as_str() == name)
    }

    pub fn higher_is_better(self) -> bool {
        !matches!(
            self,
            MetricName::Perplexity
                | MetricName::WordPerplexity
                | MetricName::BytePerplexity
                | MetricName::BitsPerByte
        )
    }

    /// Whether the metric can be computed for tasks of this output type.
    pub fn fits(self, output_type: OutputType) -> bool {
        match self {
            MetricName::Acc => matches!(
                output_type,
                OutputType::MultipleChoice | OutputType::Loglikelihood
            ),
            MetricName::AccNorm | MetricName::AccBytes | MetricName::AccNormTokens => {
                output_type == OutputType::MultipleChoice
            }
            MetricName::ExactMatch => output_type == OutputType::GenerateUntil,
            MetricName::PromptLevelStrictAcc
            | MetricName::InstLevelStrictAcc
            | MetricName::PromptLevelLooseAcc
            | MetricName::InstLevelLooseAcc => output_type == OutputType::GenerateUntil,
            // Rule and reference metrics score generated text.
            _ if self.family() != MetricFamily::Builtin => output_type == OutputType::GenerateUntil,
            MetricName::Perplexity => output_type == OutputType::Loglikelihood,
            MetricName::WordPerplexity | MetricName::BytePerplexity | MetricName::BitsPerByte => {
                output_type == OutputType::LoglikelihoodRolling
            }
            _ => false,
        }
    }

    pub fn aggregation(self) -> Aggregation {
        match self {
            MetricName::Perplexity => Aggregation::Perplexity,
            MetricName::WordPerplexity | MetricName::BytePerplexity => {
                Aggregation::WeightedPerplexity
            }
            MetricName::BitsPerByte => Aggregation::BitsPerByte,
            MetricName::Bleu => Aggregation::CorpusBleu,
            MetricName::Chrf => Aggregation::CorpusChrf,
            MetricName::InstLevelStrictAcc | MetricName::InstLevelLooseAcc => {
                Aggregation::RatioOfSums
            }
            _ => Aggregation::Mean,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregation {
    Mean,
    /// exp(−mean(ll)) over per-sample log-likelihoods.
    Perplexity,
    /// exp(−Σll / Σweight) over (ll, weight) pairs.
    WeightedPerplexity,
    /// −Σll / Σbytes / ln 2 over (ll, bytes) pairs.
    BitsPerByte,
    /// sacrebleu's `corpus_bleu` from the summed per-sample statistics.
    CorpusBleu,
    /// sacrebleu's `corpus_chrf` from the summed per-sample statistics.
    CorpusChrf,
    /// Σx / Σn over (x, n) pairs, with the cluster-robust stderr of a ratio
    /// (lm-eval's `agg_inst_level_acc`: the mean over all instructions, flattened).
    RatioOfSums,
}

#[derive(Debug, Clone)]
pub struct MetricSpec {
    pub name: MetricName,
    /// The metric part of the result keys (`KEY,filter`): the entry's `name:`, else the
    /// metric's name. Two entries of one task never share a key.
    pub key: String,
    pub higher_is_better: bool,
    pub normalization: TextNormalization,
    /// A rule metric's rule (`rules.rs`).
    pub rule: Option<crate::rules::RuleSpec>,
    /// A reference metric's options (`reference.rs`).
    pub reference: Option<crate::reference::ReferenceSpec>,
}

impl MetricSpec {
    pub fn plain(name: MetricName) -> MetricSpec {
        MetricSpec {
            name,
            key: name.as_str().to_string(),
            higher_is_better: name.higher_is_better(),
            normalization: TextNormalization::default(),
            rule: None,
            reference: None,
        }
    }

    /// The doc fields the metric reads its per-row arguments from (`field:`).
    pub fn row_fields(&self) -> Vec<&str> {
        self.rule
            .as_ref()
            .map(|r| r.row_fields())
            .unwrap_or_default()
    }
}

/// exact_match's options to normalize texts before comparing them
/// (`ignore_case`, `ignore_punctuation`, `ignore_numbers`, `regexes_to_ignore`), shared
/// by the rule metrics that compare texts.
#[derive(Debug, Clone, Default)]
pub struct TextNormalization {
    pub ignore_case: bool,
    pub ignore_punctuation: bool,
    pub ignore_numbers: bool,
    pub regexes_to_ignore: Vec<Regex>,
}

impl TextNormalization {
    /// Hugging Face `evaluate`'s order: the regexes, then case, punctuation, digits.
    pub fn apply(&self, text: &str) -> String {
        let mut text = text.to_string();
        for regex in &self.regexes_to_ignore {
            text = regex.replace_all(&text, "").into_owned();
        }
        if self.ignore_case {
            text = text.to_lowercase();
        }
        if self.ignore_punctuation {
            text.retain(|c| !PUNCTUATION.contains(c));
        }
        if self.ignore_numbers {
            text.retain(|c| !c.is_ascii_digit());
        }
        text
    }
}

/// One sample's value of one metric: a number, (value, weight) for the corpus-level
/// perplexities, or a per-sample score with the sufficient statistics of a corpus-level
/// metric (BLEU, chrF), from which the corpus score is aggregated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SampleValue {
    Scalar(f64),
    Weighted(f64, f64),
    /// Serialized as `{"value": …, "stats": [...]}`, which neither older form can be.
    Stats {
        /// The sentence-level score (shown per sample; not what is aggregated).
        value: f64,
        stats: Vec<f64>,
    },
}

impl SampleValue {
    pub fn scalar(&self) -> f64 {
        match *self {
            SampleValue::Scalar(x) | SampleValue::Weighted(x, _) => x,
            SampleValue::Stats { value, .. } => value,
        }
    }
}

/// The index of the highest score; the lowest index wins a tie (numpy's argmax).
pub fn argmax(scores: &[f64]) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, &score) in scores.iter().enumerate() {
        if best.is_none_or(|(_, b)| score > b) {
            best = Some((i, score));
        }
    }
    best.map(|(i, _)| i)
}

/// The multiple-choice metrics of one doc.
///
/// `golds` holds the correct choice indices (several for multi-target tasks).
pub fn multiple_choice_value(
    metric: MetricName,
    results: &[LoglikelihoodResult],
    choices: &[String],
    golds: &[usize],
) -> f64 {
    let scores: Vec<f64> = results
        .iter()
        .zip(choices)
        .map(|(r, choice)| match metric {
            MetricName::AccNorm => r.logprob / choice.chars().count().max(1) as f64,
            MetricName::AccBytes => r.logprob / choice.len().max(1) as f64,
            MetricName::AccNormTokens => r.logprob / r.n_tokens.max(1) as f64,
            _ => r.logprob,
        })
        .collect();
    match argmax(&scores) {
        Some(pred) if golds.contains(&pred) => 1.0,
        _ => 0.0,
    }
}

/// lm-evaluation-harness's `process_results_mc2` (v0.4.9 and later): the
/// probability mass on the answers labelled 1, normalized over all answers.
/// `None` when the labels do not fit the results or no answer is false.
pub fn truthfulqa_mc2(results: &[LoglikelihoodResult], labels: &[i64]) -> Option<f64> {
    if labels.len() != results.len() || !labels.contains(&0) {
        return None;
    }
    let probs: Vec<f64> = results.iter().map(|r| r.logprob.exp()).collect();
    let total: f64 = probs.iter().sum();
    if total == 0.0 {
        return Some(0.0);
    }
    let true_mass: f64 = probs
        .iter()
        .zip(labels)
        .filter(|&(_, &l)| l == 1)
        .map(|(p, _)| p)
        .sum();
    Some(true_mass / total)
}

const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// The `exact_match` of Hugging Face `evaluate`, as lm-evaluation-harness calls it.
pub fn exact_match(spec: &MetricSpec, prediction: &str, reference: &str) -> f64 {
    let normalize = |text: &str| spec.normalization.apply(text);
    if normalize(prediction) == normalize(reference) {
        1.0
    } else {
        0.0
    }
}

/// Words as lm-evaluation-harness counts them: `len(re.split(r"\s+", text))`.
pub fn count_words(text: &str) -> usize {
    // Python's split keeps empty strings at the ends, so a leading or trailing
    // whitespace run adds one "word"; splitting on runs matches that.
    let mut n = 1;
    let mut in_space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            if !in_space {
                n += 1;
            }
            in_space = true;
        } else {
            in_space = false;
        }
    }
    n
}

/// (numerator, weight) pairs of [`Aggregation::RatioOfSums`]: a scalar counts as
/// one item.
pub fn ratio_pairs(values: &[SampleValue]) -> Vec<(f64, f64)> {
    values
        .iter()
        .map(|v| match *v {
            SampleValue::Weighted(x, n) => (x, n),
            SampleValue::Scalar(x) | SampleValue::Stats { value: x, .. } => (x, 1.0),
        })
        .collect()
}

/// A task's aggregated metric: the value, its standard error, and how the
/// error was computed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AggregateValue {
    pub value: f64,
    pub stderr: Option<f64>,
    pub n: usize,
    /// The 95% percentile bootstrap interval, for the corpus-level scores (BLEU, chrF);
    /// `None` for the others, whose interval `results` forms.
    #[serde(default)]
    pub interval: Option<(f64, f64)>,
}

pub fn aggregate(
    aggregation: Aggregation,
    values: &[SampleValue],
    bootstrap_iters: usize,
    seed: u64,
) -> AggregateValue {
    let n = values.len();
    let pairs = || -> Vec<podium_stats::WeightedLogLikelihood> {
        values
            .iter()
            .map(|v| match *v {
                SampleValue::Weighted(ll, w) => podium_stats::WeightedLogLikelihood {
                    loglikelihood: ll,
                    weight: w,
                },
                SampleValue::Scalar(ll) | SampleValue::Stats { value: ll, .. } => {
                    podium_stats::WeightedLogLikelihood {
                        loglikelihood: ll,
                        weight: 1.0,
                    }
                }
            })
            .collect()
    };
    let scalars = || -> Vec<f64> { values.iter().map(|v| v.scalar()).collect() };
    if matches!(
        aggregation,
        Aggregation::CorpusBleu | Aggregation::CorpusChrf
    ) {
        return crate::reference::aggregate_corpus(aggregation, values, bootstrap_iters, seed);
    }
    // With no samples (or one, for spreads) the statistics are undefined: NaN
    // value and no stderr, which the board shows as "—".
    let (value, stderr) = match aggregation {
        Aggregation::Mean => {
            let xs = scalars();
            (
                podium_stats::mean(&xs).ok(),
                podium_stats::stderr_of_mean(&xs).ok(),
            )
        }
        Aggregation::Perplexity => {
            let xs = scalars();
            (
                podium_stats::perplexity(&xs).ok(),
                podium_stats::perplexity_stderr(&xs, bootstrap_iters, seed).ok(),
            )
        }
        Aggregation::WeightedPerplexity => {
            let items = pairs();
            (
                podium_stats::weighted_perplexity(&items).ok(),
                podium_stats::weighted_perplexity_stderr(&items, bootstrap_iters, seed).ok(),
            )
        }
        Aggregation::BitsPerByte => {
            let items = pairs();
            (
                podium_stats::bits_per_byte(&items).ok(),
                podium_stats::bits_per_byte_stderr(&items, bootstrap_iters, seed).ok(),
            )
        }
        Aggregation::CorpusBleu | Aggregation::CorpusChrf => (None, None),
        Aggregation::RatioOfSums => match podium_stats::ratio_of_sums(&ratio_pairs(values)) {
            Ok(ratio) => (Some(ratio.value), ratio.stderr),
            Err(_) => (None, None),
        },
    };
    AggregateValue {
        value: value.unwrap_or(f64::NAN),
        stderr: stderr.filter(|se| se.is_finite()),
        n,
        interval: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ll(logprob: f64, n_tokens: usize) -> LoglikelihoodResult {
        LoglikelihoodResult {
            logprob,
            is_greedy: false,
            n_tokens,
        }
    }

    #[test]
    fn acc_variants_normalize_differently() {
        // Choice 0 is short with a low total; choice 1 long with a higher total.
        let choices = vec!["ab".to_string(), "abcdefgh".to_string(), "é".to_string()];
        let results = vec![ll(-2.0, 1), ll(-1.5, 4), ll(-3.0, 3)];
        // acc: argmax(-2, -1.5, -3) = 1
        assert_eq!(
            multiple_choice_value(MetricName::Acc, &results, &choices, &[1]),
            1.0
        );
        // acc_norm (chars): -1, -0.1875, -3 → 1
        assert_eq!(
            multiple_choice_value(MetricName::AccNorm, &results, &choices, &[1]),
            1.0
        );
        // acc_bytes: -1, -0.1875, -1.5 ("é" is 2 bytes) → 1
        assert_eq!(
            multiple_choice_value(MetricName::AccBytes, &results, &choices, &[0]),
            0.0
        );
        // acc_norm_tokens: -2, -0.375, -1 → 1
        assert_eq!(
            multiple_choice_value(MetricName::AccNormTokens, &results, &choices, &[1]),
            1.0
        );
        let results = vec![ll(-2.0, 1), ll(-1.9, 1), ll(-3.0, 1)];
        let choices = vec!["a".to_string(), "abcdefgh".to_string(), "abc".to_string()];
        // acc_norm: -2, -0.2375, -1 → 1; acc_norm_tokens == acc here → 1
        assert_eq!(
            multiple_choice_value(MetricName::AccNorm, &results, &choices, &[1]),
            1.0
        );
    }

    #[test]
    fn argmax_ties_take_lowest_index() {
        assert_eq!(argmax(&[-1.0, -0.5, -0.5]), Some(1));
        assert_eq!(argmax(&[]), None);
    }

    #[test]
    fn mc2_is_normalized_true_mass() {
        // p = e^-1, e^-2 (true) and e^-1 (false): (e^-1 + e^-2) / (2e^-1 + e^-2)
        let results = vec![ll(-1.0, 1), ll(-2.0, 1), ll(-1.0, 1)];
        let expected = ((-1f64).exp() + (-2f64).exp()) / (2.0 * (-1f64).exp() + (-2f64).exp());
        let got = truthfulqa_mc2(&results, &[1, 1, 0]).unwrap();
        assert!((got - expected).abs() < 1e-12);
        assert_eq!(truthfulqa_mc2(&results, &[1, 1, 1]), None);
        // A true answer after a false one counts (lm-eval PR #2768).
        let got = truthfulqa_mc2(&results, &[1, 0, 1]).unwrap();
        let expected = 2.0 * (-1f64).exp() / (2.0 * (-1f64).exp() + (-2f64).exp());
        assert!((got - expected).abs() < 1e-12);
    }

    #[test]
    fn exact_match_options() {
        let mut spec = MetricSpec::plain(MetricName::ExactMatch);
        assert_eq!(exact_match(&spec, "Paris", "paris"), 0.0);
        spec.normalization.ignore_case = true;
        assert_eq!(exact_match(&spec, "Paris", "paris"), 1.0);
        spec.normalization.ignore_punctuation = true;
        assert_eq!(exact_match(&spec, "Paris!", "paris"), 1.0);
        // gsm8k's regexes_to_ignore: commas, dollars, the "#### " prefix and a final period.
        let mut gsm = MetricSpec::plain(MetricName::ExactMatch);
        gsm.normalization.regexes_to_ignore = [",", r"\$", "(?s).*#### ", r"\.$"]
            .iter()
            .map(|p| Regex::new(p).unwrap())
            .collect();
        assert_eq!(exact_match(&gsm, "$1,000.", "Work...\n#### 1000"), 1.0);
        assert_eq!(exact_match(&gsm, "1001", "#### 1000"), 0.0);
        let mut numbers = MetricSpec::plain(MetricName::ExactMatch);
        numbers.normalization.ignore_numbers = true;
        assert_eq!(exact_match(&numbers, "a1b", "ab2"), 1.0);
    }

    #[test]
    fn word_count_matches_python_split() {
        // len(re.split(r"\s+", s)) in Python.
        assert_eq!(count_words("a b  c"), 3);
        assert_eq!(count_words(" a b"), 3);
        assert_eq!(count_words("a\n\nb "), 3);
        assert_eq!(count_words(""), 1);
    }
}
