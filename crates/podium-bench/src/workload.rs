//! Prompts to send: synthetic ones of a given length, unique per request so
//! no server cache can answer from memory, or prompts from a JSONL file.

use std::path::Path;

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::load::BenchError;

#[derive(Debug, Clone)]
pub enum PromptSource {
    /// Unique prompts of about `input_tokens` words, generated per request.
    Synthetic { input_tokens: usize, seed: u64 },
    /// Given prompts, used in order and cycled.
    List(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct Workload {
    pub source: PromptSource,
    /// Asked of the server with `max_tokens`; the received count is measured.
    pub output_tokens: usize,
}

impl Workload {
    /// The prompt of request `index`.
    pub fn prompt(&self, index: usize) -> String {
        match &self.source {
            PromptSource::Synthetic { input_tokens, seed } => {
                synthetic_prompt(index, *input_tokens, *seed)
            }
            PromptSource::List(prompts) => prompts[index % prompts.len().max(1)].clone(),
        }
    }
}

/// Common English words: about one token each for most tokenizers.
const WORDS: &[&str] = &[
    "time", "people", "way", "water", "world", "house", "river", "light", "music", "garden",
    "market", "window", "story", "number", "city", "family", "school", "paper", "money", "table",
    "country", "morning", "night", "friend", "road", "book", "question", "answer", "history",
    "field",
];

/// A prompt of about `input_tokens` words. Each starts with its own request
/// number and a seeded random word sequence, so no two share a prefix longer
/// than a few tokens.
fn synthetic_prompt(index: usize, input_tokens: usize, seed: u64) -> String {
    let mut rng =
        ChaCha8Rng::seed_from_u64(seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut prompt = format!("Request {index}-{}:", rng.random::<u32>());
    for _ in 0..input_tokens.saturating_sub(4) {
        prompt.push(' ');
        prompt.push_str(WORDS.choose(&mut rng).copied().unwrap_or("word"));
    }
    prompt.push_str("\nWrite a long story about these words.");
    prompt
}

/// The first `n` synthetic prompts.
pub fn synthetic_prompts(n: usize, input_tokens: usize, seed: u64) -> Vec<String> {
    (0..n)
        .map(|i| synthetic_prompt(i, input_tokens, seed))
        .collect()
}

/// Prompts from a JSONL file: each line an object with a `prompt` string.
pub fn prompts_from_jsonl(path: &Path) -> Result<Vec<String>, BenchError> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| BenchError::Input(format!("{}: cannot read: {err}", path.display())))?;
    let mut prompts = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(line).map_err(|err| {
            BenchError::Input(format!(
                "{}:{}: not a JSON object: {err}",
                path.display(),
                i + 1
            ))
        })?;
        let prompt = value
            .get("prompt")
            .and_then(|p| p.as_str())
            .ok_or_else(|| {
                BenchError::Input(format!(
                    "{}:{}: missing string field `prompt`",
                    path.display(),
                    i + 1
                ))
            })?;
        prompts.push(prompt.to_string());
    }
    if prompts.is_empty() {
        return Err(BenchError::Input(format!("{}: no prompts", path.display())));
    }
    Ok(prompts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_prompts_are_unique_sized_and_seeded() {
        let a = synthetic_prompts(50, 100, 7);
        let b = synthetic_prompts(50, 100, 7);
        assert_eq!(a, b);
        let unique: std::collections::HashSet<_> = a.iter().collect();
        assert_eq!(unique.len(), 50);
        let words = a[0].split_whitespace().count();
        assert!((100..110).contains(&words), "{words}");
        assert_ne!(synthetic_prompts(1, 100, 8), synthetic_prompts(1, 100, 7));
    }

    #[test]
    fn jsonl_errors_name_the_line() {
        let dir = std::env::temp_dir().join(format!("podium-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.jsonl");
        std::fs::write(&path, "{\"prompt\": \"a\"}\n{\"text\": 1}\n").unwrap();
        let err = prompts_from_jsonl(&path).unwrap_err().to_string();
        assert!(
            err.contains("p.jsonl:2: missing string field `prompt`"),
            "{err}"
        );
        std::fs::write(&path, "{\"prompt\": \"a\"}\n\n{\"prompt\": \"b\"}\n").unwrap();
        assert_eq!(prompts_from_jsonl(&path).unwrap(), vec!["a", "b"]);
    }
}
