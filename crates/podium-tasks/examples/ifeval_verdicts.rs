//! IFEval verdicts of JSONL responses, for bench/ifeval/crosscheck.py: reads lines
//! `{"instruction_id_list": [...], "kwargs": [...], "response": "..."}` on stdin
//! and writes `{"strict": [...], "loose": [...]}` per line on stdout, through the
//! same `Instructions::verdicts` that `Task::score` calls.

use std::io::{BufRead, Write};

use podium_tasks::ifeval::Instructions;
use serde_json::{Value as Json, json};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let stdin = std::io::stdin();
    let mut out = std::io::BufWriter::new(std::io::stdout());
    for (number, line) in stdin.lock().lines().enumerate() {
        let line = line?;
        let case: Json =
            serde_json::from_str(&line).map_err(|err| format!("line {}: {err}", number + 1))?;
        let ids: Vec<String> = serde_json::from_value(case["instruction_id_list"].clone())
            .map_err(|err| format!("line {}: instruction_id_list: {err}", number + 1))?;
        let kwargs: Vec<Json> = serde_json::from_value(case["kwargs"].clone())
            .map_err(|err| format!("line {}: kwargs: {err}", number + 1))?;
        let response = case["response"]
            .as_str()
            .ok_or_else(|| format!("line {}: no response", number + 1))?;
        let instructions = Instructions::parse(&ids, &kwargs)
            .map_err(|err| format!("line {}: {err}", number + 1))?;
        let verdicts = instructions.verdicts(response);
        let strict: Vec<bool> = verdicts.iter().map(|v| v.strict).collect();
        let loose: Vec<bool> = verdicts.iter().map(|v| v.loose).collect();
        writeln!(out, "{}", json!({"strict": strict, "loose": loose}))?;
    }
    out.flush()?;
    Ok(())
}
