//! Podium's reference-metric values for a JSONL of pairs (`{"hyp": …, "refs": [...]}`, as
//! bench/refmetrics/python_values.py writes them), for the cross-check with sacrebleu,
//! rouge-score and rapidfuzz:
//!
//!     cargo run -p podium-tasks --example refmetrics -- PAIRS.jsonl > podium.jsonl
//!
//! One line per pair (`{"podium": {metric: value}}`), then `{"corpus": {metric: value}}`.

#[path = "../tests/support/refmetrics_values.rs"]
mod refmetrics_values;

use std::io::{BufRead, Write};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: refmetrics PAIRS.jsonl")?;
    let file = std::io::BufReader::new(std::fs::File::open(&path)?);
    let mut pairs = Vec::new();
    let mut out = std::io::stdout().lock();
    for line in file.lines() {
        let line: serde_json::Value = serde_json::from_str(&line?)?;
        let (Some(hyp), Some(refs)) = (line["hyp"].as_str(), line["refs"].as_array()) else {
            continue;
        };
        let refs: Vec<String> = refs
            .iter()
            .map(|r| r.as_str().unwrap_or_default().to_string())
            .collect();
        let values = refmetrics_values::pair_values(hyp, &refs);
        writeln!(out, "{}", serde_json::json!({ "podium": values }))?;
        pairs.push((hyp.to_string(), refs));
    }
    let corpus = refmetrics_values::corpus_values(&pairs);
    writeln!(out, "{}", serde_json::json!({ "corpus": corpus }))?;
    Ok(())
}
