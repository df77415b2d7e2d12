//! Podium's reference metrics and similarity against the values of sacrebleu 2.6.0,
//! rouge-score 0.1.2, Levenshtein 0.27.5 and rapidfuzz 3.14.6 on 300 seeded pairs
//! (`tests/data/refmetrics.jsonl`, written by bench/refmetrics/python_values.py), per
//! pair and for the corpus, so the suite guards the agreement without Python.

mod support {
    pub(crate) mod refmetrics_values;
}

use serde_json::Value as Json;
use support::refmetrics_values::{corpus_values, pair_values};

/// The Python and Rust sides agree exactly today (docs/CROSSCHECK.md); the tolerance
/// only allows a different but equally correct order of float operations.
const TOLERANCE: f64 = 1e-9;

fn close(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => {
            (x.as_f64().unwrap_or(f64::NAN) - y.as_f64().unwrap_or(f64::NAN)).abs() <= TOLERANCE
        }
        (Json::Array(xs), Json::Array(ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| close(x, y))
        }
        _ => false,
    }
}

#[test]
fn reference_metrics_agree_with_the_python_implementations() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/refmetrics.jsonl"),
    )
    .unwrap();
    let lines: Vec<Json> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (corpus, pairs) = lines.split_last().unwrap();
    assert_eq!(pairs.len(), 300);
    let mut all = Vec::new();
    let mut n_checked = 0;
    for (i, pair) in pairs.iter().enumerate() {
        let hyp = pair["hyp"].as_str().unwrap();
        let refs: Vec<String> = pair["refs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect();
        let ours = pair_values(hyp, &refs);
        for (metric, expected) in pair["python"].as_object().unwrap() {
            let got = &ours[metric];
            assert!(
                close(got, expected),
                "pair {i} ({hyp:?} vs {refs:?}): {metric} is {got}, Python's {expected}"
            );
            n_checked += 1;
        }
        all.push((hyp.to_string(), refs));
    }
    assert_eq!(n_checked, 300 * 15);
    let ours = corpus_values(&all);
    for (metric, expected) in corpus["corpus"].as_object().unwrap() {
        let expected = expected.as_f64().unwrap();
        assert!(
            (ours[metric] - expected).abs() <= TOLERANCE,
            "corpus {metric}: {} vs Python's {expected}",
            ours[metric]
        );
    }
}
