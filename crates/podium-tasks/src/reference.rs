//! Reference metrics: an answer compared with the doc's reference texts (its target, or
//! each text of a list target).
//!
//! - `bleu` and `chrf` follow sacrebleu 2.x (`BLEU()` with the `13a` tokenizer and `exp`
//!   smoothing, `CHRF()` with 6 character orders and β = 2). They are corpus-level, as in
//!   lm-evaluation-harness (`sacrebleu.corpus_bleu` / `corpus_chrf` over all docs): each
//!   sample stores its sufficient statistics, and the score is computed from their sums,
//!   so it comes from the store alone and a resumed run gives the same number.
//! - `rouge1`, `rouge2` and `rougeL` follow rouge-score (`RougeScorer` without stemming,
//!   `score_multi` over several references): the per-sample F-measure, averaged.
//!
//! Every count is linear in the texts' lengths but ROUGE-L's longest common subsequence,
//! which runs bit-parallel (rapidfuzz), O(n·m/64).

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;

use crate::config::Fields;
use crate::error::TaskError;
use crate::metrics::{AggregateValue, Aggregation, MetricName, SampleValue};

/// BLEU's n-gram orders (sacrebleu's `MAX_NGRAM_ORDER`).
pub const BLEU_MAX_ORDER: usize = 4;
/// Limits of chrF's `char_order` and `word_order` options.
pub const MAX_CHAR_ORDER: usize = 10;
pub const MAX_WORD_ORDER: usize = 4;
/// chrF's β (sacrebleu's default, and lm-evaluation-harness's).
pub const CHRF_BETA: f64 = 2.0;

/// The options of a reference metric entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceSpec {
    /// BLEU, chrF: lowercase answer and references first (sacrebleu's `lowercase`).
    pub lowercase: bool,
    /// BLEU's tokenizer.
    pub tokenize: BleuTokenizer,
    /// chrF: character n-gram orders (6) and word n-gram orders (0; 2 is chrF++).
    pub char_order: usize,
    pub word_order: usize,
    /// chrF: keep whitespace inside character n-grams (sacrebleu's `whitespace`).
    pub whitespace: bool,
}

impl Default for ReferenceSpec {
    fn default() -> Self {
        ReferenceSpec {
            lowercase: false,
            tokenize: BleuTokenizer::Mteval13a,
            char_order: 6,
            word_order: 0,
            whitespace: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BleuTokenizer {
    /// sacrebleu's default `13a` (mteval-v13a).
    Mteval13a,
    /// `none`: split on whitespace only.
    None,
}

/// Reads a reference metric's entry (`metric`, `name` and the options of METRICS.md).
pub(crate) fn parse_reference(
    fields: &Fields<'_>,
    metric: MetricName,
) -> Result<ReferenceSpec, TaskError> {
    let options: &[&str] = match metric {
        MetricName::Bleu => &["lowercase", "tokenize"],
        MetricName::Chrf => &["lowercase", "char_order", "word_order", "whitespace"],
        _ => &[],
    };
    for (key, loc, _) in fields.entries {
        if !["metric", "name"].contains(&key.as_str()) && !options.contains(&key.as_str()) {
            let hint = if key == "use_stemmer" {
                " (Podium has no port of NLTK's Porter stemmer, which rouge-score stems with)"
            } else {
                ""
            };
            return Err(TaskError::invalid(
                loc,
                key,
                format!(
                    "unknown option for metric `{}`{hint}; its options are: {}",
                    metric.as_str(),
                    ["name"]
                        .iter()
                        .chain(options)
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    let mut spec = ReferenceSpec {
        lowercase: fields.bool("lowercase")?.unwrap_or(false),
        whitespace: fields.bool("whitespace")?.unwrap_or(false),
        tokenize: fields
            .one_of(
                "tokenize",
                &[
                    ("13a", BleuTokenizer::Mteval13a),
                    ("none", BleuTokenizer::None),
                ],
                "BLEU tokenizer",
            )?
            .unwrap_or(BleuTokenizer::Mteval13a),
        ..ReferenceSpec::default()
    };
    for (key, limit, slot) in [
        ("char_order", MAX_CHAR_ORDER, &mut spec.char_order),
        ("word_order", MAX_WORD_ORDER, &mut spec.word_order),
    ] {
        if let Some(order) = fields.usize(key)? {
            if order > limit {
                return Err(TaskError::invalid(
                    fields.loc_of(key),
                    key,
                    format!("{order}: at most {limit}"),
                ));
            }
            *slot = order;
        }
    }
    if spec.char_order + spec.word_order == 0 {
        return Err(TaskError::invalid(
            fields.loc_of("char_order"),
            "char_order",
            "chrF needs at least one n-gram order",
        ));
    }
    Ok(spec)
}

/// One sample's value of a reference metric: for BLEU and chrF the sentence-level score
/// with the statistics the corpus score sums, for ROUGE the F-measure.
pub fn sample_value(
    metric: MetricName,
    spec: &ReferenceSpec,
    answer: &str,
    references: &[String],
) -> SampleValue {
    match metric {
        MetricName::Bleu => {
            let stats = bleu_statistics(answer, references, spec);
            SampleValue::Stats {
                value: bleu_from_statistics(&stats, true),
                stats,
            }
        }
        MetricName::Chrf => {
            let stats = chrf_statistics(answer, references, spec);
            SampleValue::Stats {
                value: chrf_from_statistics(&stats),
                stats,
            }
        }
        MetricName::Rouge1 => SampleValue::Scalar(rouge(Rouge::N(1), answer, references)),
        MetricName::Rouge2 => SampleValue::Scalar(rouge(Rouge::N(2), answer, references)),
        _ => SampleValue::Scalar(rouge(Rouge::L, answer, references)),
    }
}

/// Python's `str.isspace`: Unicode White_Space plus the four ASCII separators
/// U+001C–U+001F, which Python's `str.split()` also splits on.
pub fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.split()` without arguments.
fn python_split(text: &str) -> impl Iterator<Item = &str> {
    text.split(is_python_space).filter(|t| !t.is_empty())
}

// ---------------------------------------------------------------------------------------
// BLEU

static TOKENIZE_13A_STEPS: LazyLock<[(Regex, &'static str); 3]> = LazyLock::new(|| {
    let compile = |pattern: &str| Regex::new(pattern).expect("a fixed pattern compiles");
    [
        // A period or comma not preceded by a digit.
        (compile(r"([^0-9])([.,])"), "${1} ${2} "),
        // A period or comma not followed by a digit.
        (compile(r"([.,])([^0-9])"), " ${1} ${2}"),
        // A dash after a digit.
        (compile(r"([0-9])(-)"), "${1} ${2} "),
    ]
});

/// The ASCII symbols mteval-v13a always splits off: `[{-~[-\` -&(-+:-@/]`.
fn is_13a_symbol(c: char) -> bool {
    matches!(c, '{'..='~' | '['..='`' | ' '..='&' | '('..='+' | ':'..='@' | '/')
}

/// sacrebleu's `13a` tokenizer (`Tokenizer13a` then `TokenizerRegexp`).
pub fn tokenize_13a(line: &str) -> String {
    let mut line = line
        .replace("<skipped>", "")
        .replace("-\n", "")
        .replace('\n', " ");
    if line.contains('&') {
        line = line
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
    }
    let mut spaced = String::with_capacity(line.len() * 2 + 2);
    spaced.push(' ');
    for c in line.chars() {
        if is_13a_symbol(c) {
            spaced.push(' ');
            spaced.push(c);
            spaced.push(' ');
        } else {
            spaced.push(c);
        }
    }
    spaced.push(' ');
    let mut text = spaced;
    for (regex, replacement) in TOKENIZE_13A_STEPS.iter() {
        text = regex.replace_all(&text, *replacement).into_owned();
    }
    python_split(&text).collect::<Vec<_>>().join(" ")
}

fn bleu_preprocess(text: &str, spec: &ReferenceSpec) -> String {
    let text = if spec.lowercase {
        text.to_lowercase()
    } else {
        text.to_string()
    };
    let text = text.trim_end_matches(is_python_space);
    match spec.tokenize {
        BleuTokenizer::Mteval13a => tokenize_13a(text),
        BleuTokenizer::None => text.to_string(),
    }
}

/// Word n-grams of orders 1..=`max_order` and their counts.
fn word_ngrams<'a>(tokens: &'a [&'a str], max_order: usize) -> HashMap<&'a [&'a str], u64> {
    let mut counts = HashMap::new();
    for n in 1..=max_order {
        for gram in tokens.windows(n) {
            *counts.entry(gram).or_insert(0) += 1;
        }
    }
    counts
}

/// sacrebleu's segment statistics: `[hyp_len, ref_len, correct_1..4, total_1..4]`, with
/// the reference length closest to the hypothesis's (the shorter on a tie) and each
/// n-gram's count clipped by its highest count in any one reference.
pub fn bleu_statistics(hypothesis: &str, references: &[String], spec: &ReferenceSpec) -> Vec<f64> {
    let references: Vec<String> = references
        .iter()
        .map(|r| bleu_preprocess(r, spec))
        .collect();
    let reference_tokens: Vec<Vec<&str>> = references
        .iter()
        .map(|r| python_split(r).collect())
        .collect();
    let mut reference_ngrams: HashMap<&[&str], u64> = HashMap::new();
    for tokens in &reference_tokens {
        for (gram, count) in word_ngrams(tokens, BLEU_MAX_ORDER) {
            let slot = reference_ngrams.entry(gram).or_insert(0);
            *slot = (*slot).max(count);
        }
    }
    let hypothesis = bleu_preprocess(hypothesis, spec);
    let hypothesis_tokens: Vec<&str> = python_split(&hypothesis).collect();
    let hyp_len = hypothesis_tokens.len();
    let mut closest: Option<(usize, usize)> = None; // (difference, length)
    for tokens in &reference_tokens {
        let len = tokens.len();
        let diff = len.abs_diff(hyp_len);
        closest = match closest {
            Some((best_diff, best_len))
                if diff > best_diff || (diff == best_diff && len >= best_len) =>
            {
                Some((best_diff, best_len))
            }
            _ => Some((diff, len)),
        };
    }
    // sacrebleu's -1 when there is no reference; a target always has one.
    let ref_len = closest.map_or(-1.0, |(_, len)| len as f64);
    let mut correct = [0u64; BLEU_MAX_ORDER];
    let mut total = [0u64; BLEU_MAX_ORDER];
    for (gram, count) in word_ngrams(&hypothesis_tokens, BLEU_MAX_ORDER) {
        let n = gram.len() - 1;
        total[n] += count;
        if let Some(&reference_count) = reference_ngrams.get(gram) {
            correct[n] += count.min(reference_count);
        }
    }
    let mut stats = vec![hyp_len as f64, ref_len];
    stats.extend(correct.iter().map(|&c| c as f64));
    stats.extend(total.iter().map(|&t| t as f64));
    stats
}

/// sacrebleu's `floored log`: log(0) is −9999999999.
fn floored_log(x: f64) -> f64 {
    if x == 0.0 { -9_999_999_999.0 } else { x.ln() }
}

/// BLEU (0–100) from (summed) statistics, with `exp` smoothing (sacrebleu's
/// `compute_bleu`); `effective_order` as sacrebleu's `sentence_bleu` uses it.
pub fn bleu_from_statistics(stats: &[f64], effective_order: bool) -> f64 {
    if stats.len() != 2 + 2 * BLEU_MAX_ORDER {
        return f64::NAN;
    }
    let (sys_len, ref_len) = (stats[0], stats[1]);
    let correct = &stats[2..2 + BLEU_MAX_ORDER];
    let total = &stats[2 + BLEU_MAX_ORDER..];
    let mut brevity_penalty = 1.0;
    if sys_len < ref_len {
        brevity_penalty = if sys_len > 0.0 {
            (1.0 - ref_len / sys_len).exp()
        } else {
            0.0
        };
    }
    if correct.iter().all(|&c| c == 0.0) {
        return 0.0;
    }
    let mut precisions = [0.0; BLEU_MAX_ORDER];
    let mut smooth = 1.0;
    let mut order = BLEU_MAX_ORDER;
    for n in 0..BLEU_MAX_ORDER {
        if total[n] == 0.0 {
            break;
        }
        if effective_order {
            order = n + 1;
        }
        if correct[n] == 0.0 {
            smooth *= 2.0;
            precisions[n] = 100.0 / (smooth * total[n]);
        } else {
            precisions[n] = 100.0 * correct[n] / total[n];
        }
    }
    let log_sum: f64 = precisions[..order].iter().map(|&p| floored_log(p)).sum();
    brevity_penalty * (log_sum / order as f64).exp()
}

/// sacrebleu's `sentence_bleu` (effective order, `exp` smoothing).
pub fn sentence_bleu(hypothesis: &str, references: &[String], spec: &ReferenceSpec) -> f64 {
    bleu_from_statistics(&bleu_statistics(hypothesis, references, spec), true)
}

// ---------------------------------------------------------------------------------------
// chrF

const CHRF_PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// sacrebleu's `_remove_punctuation`: one punctuation mark split off the end of a word,
/// or else off its start.
fn chrf_words(text: &str) -> Vec<&str> {
    let mut words = Vec::new();
    for word in python_split(text) {
        let mut chars = word.chars();
        let first = chars.next();
        let last = chars.next_back();
        match (first, last) {
            (Some(_), None) => words.push(word),
            (Some(first), Some(last)) => {
                if CHRF_PUNCTUATION.contains(last) {
                    let cut = word.len() - last.len_utf8();
                    words.push(&word[..cut]);
                    words.push(&word[cut..]);
                } else if CHRF_PUNCTUATION.contains(first) {
                    let cut = first.len_utf8();
                    words.push(&word[..cut]);
                    words.push(&word[cut..]);
                } else {
                    words.push(word);
                }
            }
            (None, _) => {}
        }
    }
    words
}

/// The n-gram counts of one text, per order (characters first, then words).
struct ChrfNgrams<'a> {
    chars: Vec<HashMap<&'a str, u64>>,
    words: Vec<HashMap<&'a [&'a str], u64>>,
}

fn chrf_ngrams<'a>(text: &'a str, words: &'a [&'a str], spec: &ReferenceSpec) -> ChrfNgrams<'a> {
    // `text` has its whitespace removed already unless `whitespace` is set.
    let boundaries: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(text.len()))
        .collect();
    let n_chars = boundaries.len() - 1;
    let chars = (1..=spec.char_order)
        .map(|n| {
            let mut counts = HashMap::new();
            for i in 0..(n_chars + 1).saturating_sub(n) {
                *counts
                    .entry(&text[boundaries[i]..boundaries[i + n]])
                    .or_insert(0) += 1;
            }
            counts
        })
        .collect();
    let words = (1..=spec.word_order)
        .map(|n| {
            let mut counts = HashMap::new();
            for gram in words.windows(n) {
                *counts.entry(gram).or_insert(0) += 1;
            }
            counts
        })
        .collect();
    ChrfNgrams { chars, words }
}

fn chrf_prepare(text: &str, spec: &ReferenceSpec) -> (String, String) {
    let text = if spec.lowercase {
        text.to_lowercase()
    } else {
        text.to_string()
    };
    let chars = if spec.whitespace {
        text.clone()
    } else {
        text.chars().filter(|&c| !is_python_space(c)).collect()
    };
    (text, chars)
}

fn match_statistics<K: std::hash::Hash + Eq>(
    hypothesis: &HashMap<K, u64>,
    reference: &HashMap<K, u64>,
    out: &mut Vec<f64>,
) {
    // sacrebleu counts no hypothesis n-grams of an order the reference has none of (a
    // reference shorter than n characters or words), so they lower no corpus precision.
    let n_hyp: u64 = if reference.is_empty() {
        0
    } else {
        hypothesis.values().sum()
    };
    let n_ref: u64 = reference.values().sum();
    let n_match: u64 = hypothesis
        .iter()
        .filter_map(|(gram, &count)| reference.get(gram).map(|&r| count.min(r)))
        .sum();
    out.extend([n_hyp as f64, n_ref as f64, n_match as f64]);
}

/// sacrebleu's chrF segment statistics: `[hyp, ref, match]` per order (character orders,
/// then word orders), of the reference with the best sentence-level score (the first on a
/// tie).
pub fn chrf_statistics(hypothesis: &str, references: &[String], spec: &ReferenceSpec) -> Vec<f64> {
    let (hyp_text, hyp_chars) = chrf_prepare(hypothesis, spec);
    let hyp_words = chrf_words(&hyp_text);
    let hyp = chrf_ngrams(&hyp_chars, &hyp_words, spec);
    let mut best: Option<(f64, Vec<f64>)> = None;
    for reference in references {
        let (ref_text, ref_chars) = chrf_prepare(reference, spec);
        let ref_words = chrf_words(&ref_text);
        let reference = chrf_ngrams(&ref_chars, &ref_words, spec);
        let mut stats = Vec::with_capacity(3 * (spec.char_order + spec.word_order));
        for (h, r) in hyp.chars.iter().zip(&reference.chars) {
            match_statistics(h, r, &mut stats);
        }
        for (h, r) in hyp.words.iter().zip(&reference.words) {
            match_statistics(h, r, &mut stats);
        }
        let score = chrf_from_statistics(&stats);
        if best.as_ref().is_none_or(|(b, _)| score > *b) {
            best = Some((score, stats));
        }
    }
    best.map(|(_, stats)| stats).unwrap_or_default()
}

/// chrF (0–100, β = 2) from (summed) statistics: sacrebleu's `_compute_f_score` without
/// epsilon smoothing — precision and recall averaged over the orders both sides have,
/// then combined.
pub fn chrf_from_statistics(stats: &[f64]) -> f64 {
    if stats.is_empty() || !stats.len().is_multiple_of(3) {
        return f64::NAN;
    }
    const EPS: f64 = 1e-16;
    let factor = CHRF_BETA * CHRF_BETA;
    let (mut avg_precision, mut avg_recall, mut effective_order) = (0.0, 0.0, 0usize);
    for order in stats.chunks_exact(3) {
        let (n_hyp, n_ref, n_match) = (order[0], order[1], order[2]);
        let precision = if n_hyp > 0.0 { n_match / n_hyp } else { EPS };
        let recall = if n_ref > 0.0 { n_match / n_ref } else { EPS };
        if n_hyp > 0.0 && n_ref > 0.0 {
            avg_precision += precision;
            avg_recall += recall;
            effective_order += 1;
        }
    }
    if effective_order == 0 {
        return 0.0;
    }
    avg_precision /= effective_order as f64;
    avg_recall /= effective_order as f64;
    if avg_precision + avg_recall == 0.0 {
        return 0.0;
    }
    let score = (1.0 + factor) * avg_precision * avg_recall;
    100.0 * (score / (factor * avg_precision + avg_recall))
}

/// sacrebleu's `sentence_chrf`.
pub fn sentence_chrf(hypothesis: &str, references: &[String], spec: &ReferenceSpec) -> f64 {
    chrf_from_statistics(&chrf_statistics(hypothesis, references, spec))
}

// ---------------------------------------------------------------------------------------
// Corpus aggregation

/// The corpus score of summed statistics; NaN when the samples' statistics differ in
/// length (they cannot come from one metric entry).
fn corpus_score(aggregation: Aggregation, stats: &[&[f64]]) -> f64 {
    let Some(first) = stats.first() else {
        return f64::NAN;
    };
    let mut sums = vec![0.0; first.len()];
    for sample in stats {
        if sample.len() != sums.len() {
            return f64::NAN;
        }
        for (sum, x) in sums.iter_mut().zip(sample.iter()) {
            *sum += x;
        }
    }
    match aggregation {
        Aggregation::CorpusBleu => bleu_from_statistics(&sums, false),
        _ => chrf_from_statistics(&sums),
    }
}

/// A corpus-level score from the samples' statistics, with a seeded bootstrap over docs:
/// its standard error (sample standard deviation of the replicates) and its 95%
/// percentile interval.
pub fn aggregate_corpus(
    aggregation: Aggregation,
    values: &[SampleValue],
    bootstrap_iters: usize,
    seed: u64,
) -> AggregateValue {
    let stats: Vec<&[f64]> = values
        .iter()
        .filter_map(|v| match v {
            SampleValue::Stats { stats, .. } => Some(stats.as_slice()),
            _ => None,
        })
        .collect();
    let value = corpus_score(aggregation, &stats);
    let replicates = if bootstrap_iters >= 2 {
        podium_stats::bootstrap_replicates(
            &stats,
            |resample| corpus_score(aggregation, resample),
            bootstrap_iters,
            seed,
        )
        .ok()
    } else {
        None
    };
    let replicates = replicates.filter(|r| r.iter().all(|x| x.is_finite()));
    let stderr = replicates
        .as_ref()
        .and_then(|r| podium_stats::sample_std(r).ok())
        .filter(|se| se.is_finite());
    let interval = replicates.as_ref().and_then(|r| {
        Some((
            podium_stats::percentile(r, 2.5).ok()?,
            podium_stats::percentile(r, 97.5).ok()?,
        ))
    });
    AggregateValue {
        value,
        stderr,
        n: stats.len(),
        interval: interval.filter(|_| value.is_finite()),
    }
}

// ---------------------------------------------------------------------------------------
// ROUGE

/// A ROUGE variant: n-gram overlap of order n, or the longest common subsequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rouge {
    N(usize),
    L,
}

/// rouge-score's default tokenizer without stemming: lowercase, every run of characters
/// other than `a-z0-9` is a separator.
pub fn rouge_tokens(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit()))
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// rouge-score's `fmeasure`.
fn f_measure(precision: f64, recall: f64) -> f64 {
    if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    }
}

fn ngram_counts(tokens: &[String], n: usize) -> HashMap<&[String], u64> {
    let mut counts = HashMap::new();
    for gram in tokens.windows(n) {
        *counts.entry(gram).or_insert(0) += 1;
    }
    counts
}

/// Each token's id in `ids`, new tokens numbered in order of appearance.
fn token_ids<'a>(tokens: &'a [String], ids: &mut HashMap<&'a str, u32>) -> Vec<u32> {
    tokens
        .iter()
        .map(|t| {
            let next = ids.len() as u32;
            *ids.entry(t.as_str()).or_insert(next)
        })
        .collect()
}

fn rouge_pair(kind: Rouge, target: &[String], prediction: &[String]) -> f64 {
    match kind {
        Rouge::N(n) => {
            let (target_grams, prediction_grams) =
                (ngram_counts(target, n), ngram_counts(prediction, n));
            let overlap: u64 = target_grams
                .iter()
                .map(|(gram, &c)| c.min(prediction_grams.get(gram).copied().unwrap_or(0)))
                .sum();
            let n_target: u64 = target_grams.values().sum();
            let n_prediction: u64 = prediction_grams.values().sum();
            let precision = overlap as f64 / n_prediction.max(1) as f64;
            let recall = overlap as f64 / n_target.max(1) as f64;
            f_measure(precision, recall)
        }
        Rouge::L => {
            if target.is_empty() || prediction.is_empty() {
                return 0.0;
            }
            // Tokens as small integers, so the bit-parallel LCS can hash them.
            let mut ids: HashMap<&str, u32> = HashMap::new();
            let target_ids = token_ids(target, &mut ids);
            let prediction_ids = token_ids(prediction, &mut ids);
            let lcs = rapidfuzz::distance::lcs_seq::similarity(
                target_ids.iter().copied(),
                prediction_ids.iter().copied(),
            );
            let precision = lcs as f64 / prediction.len() as f64;
            let recall = lcs as f64 / target.len() as f64;
            f_measure(precision, recall)
        }
    }
}

/// rouge-score's F-measure of `answer` against the best of `references`
/// (`RougeScorer.score_multi`).
pub fn rouge(kind: Rouge, answer: &str, references: &[String]) -> f64 {
    let prediction = rouge_tokens(answer);
    references
        .iter()
        .map(|r| rouge_pair(kind, &rouge_tokens(r), &prediction))
        .fold(f64::NAN, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(texts: &[&str]) -> Vec<String> {
        texts.iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn tokenize_13a_splits_symbols_and_keeps_numbers() {
        assert_eq!(tokenize_13a("Hello, world."), "Hello , world .");
        assert_eq!(
            tokenize_13a("It costs $1,000.50 (net)"),
            "It costs $ 1,000.50 ( net )"
        );
        assert_eq!(tokenize_13a("a 2-3 &amp; b"), "a 2 - 3 & b");
        assert_eq!(tokenize_13a("\u{1c}x\u{a0}y"), "x y");
    }

    #[test]
    fn bleu_matches_sacrebleu_on_known_values() {
        // sacrebleu 2.6.0: sentence_bleu("the cat sat on the mat", ["the cat is on the mat"]).score
        let spec = ReferenceSpec::default();
        let got = sentence_bleu(
            "the cat sat on the mat",
            &refs(&["the cat is on the mat"]),
            &spec,
        );
        assert!((got - 37.99178428257963).abs() < 1e-9, "{got}");
        assert_eq!(sentence_bleu("", &refs(&["a b"]), &spec), 0.0);
        let same = sentence_bleu("a b c d", &refs(&["x", "a b c d"]), &spec);
        assert!((same - 100.0).abs() < 1e-9);
    }

    #[test]
    fn chrf_and_rouge_known_values() {
        let spec = ReferenceSpec::default();
        // sacrebleu 2.6.0: sentence_chrf("the cat sat", ["the cat is"]).score
        let got = sentence_chrf("the cat sat", &refs(&["the cat is"]), &spec);
        assert!((got - 59.34146140007401).abs() < 1e-9, "{got}");
        // rouge-score 0.1.2: rouge1 F of "the cat sat" vs "the cat is" = 2/3
        let r1 = rouge(Rouge::N(1), "the cat sat", &refs(&["the cat is"]));
        assert!((r1 - 2.0 / 3.0).abs() < 1e-12);
        let rl = rouge(Rouge::L, "a b c d", &refs(&["a c d e f"]));
        // LCS 3: p = 3/4, r = 3/5
        assert!((rl - 2.0 * 0.75 * 0.6 / 1.35).abs() < 1e-12);
        assert_eq!(rouge(Rouge::L, "", &refs(&["a"])), 0.0);
        assert_eq!(rouge(Rouge::N(2), "Élan!", &refs(&["lan"])), 0.0);
    }

    #[test]
    fn corpus_bleu_sums_statistics_and_bootstraps() {
        let spec = ReferenceSpec::default();
        let values: Vec<SampleValue> = [("a b c d", "a b c d"), ("e f g", "e f h")]
            .iter()
            .map(|(h, r)| sample_value(MetricName::Bleu, &spec, h, &refs(&[r])))
            .collect();
        let aggregate = aggregate_corpus(Aggregation::CorpusBleu, &values, 200, 7);
        assert_eq!(aggregate.n, 2);
        assert!(aggregate.value > 0.0 && aggregate.value < 100.0);
        let (lo, hi) = aggregate.interval.unwrap();
        assert!(lo <= aggregate.value && aggregate.value <= hi);
        assert!(aggregate.stderr.unwrap() > 0.0);
        let again = aggregate_corpus(Aggregation::CorpusBleu, &values, 200, 7);
        assert_eq!(aggregate, again);
        let empty = aggregate_corpus(Aggregation::CorpusBleu, &[], 200, 7);
        assert!(empty.value.is_nan() && empty.stderr.is_none() && empty.interval.is_none());
    }
}
