//! IFEval (Zhou et al. 2023) as lm-evaluation-harness scores it (`ifeval`
//! task, v0.4.9): the 25 verifiable instructions of `instructions_registry`,
//! checked on the response as it is (strict) and on lm-eval's eight loose
//! variants of it, and the four metrics built from those verdicts.
//!
//! The checkers follow `instructions.py` and `instructions_util.py` line by
//! line, with Python's string and `re` semantics (`text`), NLTK's Punkt sentence
//! tokenizer (`punkt`) and word tokenizer (`treebank`), Python's `json.loads`
//! (`json`), and language identification (`language`, where Podium differs from
//! lm-eval's `langdetect`). docs/CROSSCHECK.md measures the agreement.

mod checkers;
mod json;
mod language;
pub mod punkt;
mod text;
pub mod treebank;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

pub use checkers::{INSTRUCTION_IDS, Instruction, InstructionError, LANGUAGE_CODES, Relation};
pub use language::detect as detect_language;

/// The four metrics, in lm-eval's order.
pub const METRICS: [&str; 4] = [
    "prompt_level_strict_acc",
    "inst_level_strict_acc",
    "prompt_level_loose_acc",
    "inst_level_loose_acc",
];

/// One instruction's verdicts on one response, kept with the sample.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstructionVerdict {
    pub id: String,
    pub strict: bool,
    pub loose: bool,
}

/// A doc's instructions, parsed.
#[derive(Debug, Clone)]
pub struct Instructions {
    ids: Vec<String>,
    checks: Vec<Instruction>,
}

impl Instructions {
    /// `instruction_id_list` with its `kwargs` (one object per instruction) as
    /// lm-eval reads them. An error names the instruction at fault.
    pub fn parse(ids: &[String], kwargs: &[Json]) -> Result<Instructions, InstructionError> {
        if ids.len() != kwargs.len() {
            return Err(InstructionError::Counts {
                ids: ids.len(),
                kwargs: kwargs.len(),
            });
        }
        if ids.is_empty() {
            return Err(InstructionError::Empty);
        }
        let checks = ids
            .iter()
            .zip(kwargs)
            .enumerate()
            .map(|(i, (id, args))| {
                Instruction::parse(id, args).map_err(|error| InstructionError::At {
                    index: i,
                    error: Box::new(error),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Instructions {
            ids: ids.to_vec(),
            checks,
        })
    }

    /// The verdicts of every instruction on `response`.
    pub fn verdicts(&self, response: &str) -> Vec<InstructionVerdict> {
        let variants = loose_variants(response);
        self.ids
            .iter()
            .zip(&self.checks)
            .map(|(id, check)| InstructionVerdict {
                id: id.clone(),
                strict: followed(check, response),
                loose: variants.iter().any(|variant| followed(check, variant)),
            })
            .collect()
    }
}

/// lm-eval's `response.strip() and instruction.check_following(response)`.
fn followed(check: &Instruction, response: &str) -> bool {
    !text::py_strip(response).is_empty() && check.check(response)
}

/// `test_instruction_following_loose`'s eight responses: as is, without
/// asterisks, without the first line, the last line or both, and those three
/// without asterisks.
fn loose_variants(response: &str) -> Vec<String> {
    let lines: Vec<&str> = response.split('\n').collect();
    let n = lines.len();
    let join = |from: usize, to: usize| -> String {
        if from >= to {
            return String::new();
        }
        text::py_strip(&lines[from..to].join("\n")).to_string()
    };
    let remove_first = join(1, n);
    let remove_last = join(0, n.saturating_sub(1));
    let remove_both = join(1, n.saturating_sub(1));
    let no_stars = |s: &str| s.replace('*', "");
    vec![
        response.to_string(),
        no_stars(response),
        no_stars(&remove_first),
        no_stars(&remove_last),
        no_stars(&remove_both),
        remove_first,
        remove_last,
        remove_both,
    ]
}

/// The per-doc values of the four metrics: prompt-level 0/1, instruction-level
/// (instructions followed, instructions).
pub fn doc_metrics(verdicts: &[InstructionVerdict]) -> [(f64, f64); 4] {
    let n = verdicts.len() as f64;
    let strict = verdicts.iter().filter(|v| v.strict).count() as f64;
    let loose = verdicts.iter().filter(|v| v.loose).count() as f64;
    let all = |k: f64| f64::from(u8::from(k == n));
    [
        (all(strict), 1.0),
        (strict, n),
        (all(loose), 1.0),
        (loose, n),
    ]
}

#[cfg(test)]
mod tests;
