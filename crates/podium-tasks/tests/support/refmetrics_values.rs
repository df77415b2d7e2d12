//! Podium's values of the reference metrics for one (answer, references) pair, under the
//! names bench/refmetrics/python_values.py gives the Python values: shared by the
//! `refmetrics` example and the fixture test.

use std::collections::BTreeMap;

use podium_tasks::metrics::{Aggregation, MetricName, SampleValue};
use podium_tasks::reference::{self, BleuTokenizer, ReferenceSpec, Rouge};
use podium_tasks::rules::{self, SimilarityMethod};
use serde_json::{Value as Json, json};

/// The metric variants the fixture holds: (name, metric, options).
pub(crate) fn variants() -> Vec<(&'static str, MetricName, ReferenceSpec)> {
    let default = ReferenceSpec::default();
    vec![
        ("bleu", MetricName::Bleu, default.clone()),
        (
            "bleu_lc_none",
            MetricName::Bleu,
            ReferenceSpec {
                lowercase: true,
                tokenize: BleuTokenizer::None,
                ..default.clone()
            },
        ),
        ("chrf", MetricName::Chrf, default.clone()),
        (
            "chrf_pp",
            MetricName::Chrf,
            ReferenceSpec {
                word_order: 2,
                ..default.clone()
            },
        ),
        (
            "chrf_lc_ws",
            MetricName::Chrf,
            ReferenceSpec {
                lowercase: true,
                whitespace: true,
                ..default
            },
        ),
    ]
}

/// Every value of one pair, keyed as in the fixture.
pub(crate) fn pair_values(hyp: &str, refs: &[String]) -> BTreeMap<String, Json> {
    let mut values = BTreeMap::new();
    for (name, metric, spec) in variants() {
        if let SampleValue::Stats { value, stats } =
            reference::sample_value(metric, &spec, hyp, refs)
        {
            values.insert(name.to_string(), json!(value));
            values.insert(format!("{name}_stats"), json!(stats));
        }
    }
    for (name, kind) in [
        ("rouge1", Rouge::N(1)),
        ("rouge2", Rouge::N(2)),
        ("rougeL", Rouge::L),
    ] {
        values.insert(name.to_string(), json!(reference::rouge(kind, hyp, refs)));
    }
    for (name, method) in [
        ("similarity_ratio", SimilarityMethod::Ratio),
        ("similarity_levenshtein", SimilarityMethod::Levenshtein),
    ] {
        let best = refs
            .iter()
            .map(|r| rules::similarity(method, hyp, r))
            .fold(f64::NEG_INFINITY, f64::max);
        values.insert(name.to_string(), json!(best));
    }
    values
}

/// Corpus scores over all pairs, aggregated as a run aggregates stored samples.
pub(crate) fn corpus_values(pairs: &[(String, Vec<String>)]) -> BTreeMap<String, f64> {
    variants()
        .into_iter()
        .map(|(name, metric, spec)| {
            let samples: Vec<SampleValue> = pairs
                .iter()
                .map(|(hyp, refs)| reference::sample_value(metric, &spec, hyp, refs))
                .collect();
            let aggregation = if metric == MetricName::Bleu {
                Aggregation::CorpusBleu
            } else {
                Aggregation::CorpusChrf
            };
            let aggregate = reference::aggregate_corpus(aggregation, &samples, 0, 0);
            (name.to_string(), aggregate.value)
        })
        .collect()
}
