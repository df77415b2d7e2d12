//! Prompt sets for the arena and for judged battles: JSON lines of
//! `{"id", "category"?, "prompt"}`. A set is bundled (`prompts/prompts.jsonl`,
//! compiled into the binary) so the arena works with no files at hand.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::ArenaError;

/// The bundled prompt set's text.
pub const BUNDLED: &str = include_str!("../prompts/prompts.jsonl");

/// The most prompts one set may hold.
pub const MAX_PROMPTS: usize = 100_000;
/// The longest prompt, in bytes.
pub const MAX_PROMPT_BYTES: usize = 64 * 1024;

/// One prompt of a set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArenaPrompt {
    pub id: String,
    #[serde(default)]
    pub category: Option<String>,
    pub prompt: String,
}

/// Parses a prompt set (JSON lines; blank lines skipped). Every malformed
/// line is an error naming the line and field; ids must be unique.
pub fn parse_prompts(text: &str) -> Result<Vec<ArenaPrompt>, ArenaError> {
    let mut prompts = Vec::new();
    let mut ids = HashSet::new();
    for (index, line) in text.lines().enumerate() {
        let line_no = index as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        let row_error = |field: &str, message: String| ArenaError::Row {
            line: line_no,
            field: field.to_owned(),
            message,
        };
        if prompts.len() >= MAX_PROMPTS {
            return Err(row_error(
                "prompt",
                format!("more than {MAX_PROMPTS} prompts in one set"),
            ));
        }
        let prompt: ArenaPrompt = serde_json::from_str(line).map_err(|e| {
            let field = ["id", "prompt", "category"]
                .into_iter()
                .find(|f| e.to_string().contains(&format!("`{f}`")))
                .unwrap_or("(line)");
            row_error(field, e.to_string())
        })?;
        if prompt.id.trim().is_empty() {
            return Err(row_error("id", "is empty".into()));
        }
        if prompt.prompt.trim().is_empty() {
            return Err(row_error("prompt", "is empty".into()));
        }
        if prompt.prompt.len() > MAX_PROMPT_BYTES {
            return Err(row_error(
                "prompt",
                format!("is longer than {MAX_PROMPT_BYTES} bytes"),
            ));
        }
        if !ids.insert(prompt.id.clone()) {
            return Err(row_error("id", format!("`{}` appears twice", prompt.id)));
        }
        prompts.push(prompt);
    }
    if prompts.is_empty() {
        return Err(ArenaError::Input("the prompt set holds no prompts".into()));
    }
    Ok(prompts)
}

/// The bundled prompt set.
pub fn bundled() -> Vec<ArenaPrompt> {
    // The bundled file is checked by a test; an error here cannot happen.
    parse_prompts(BUNDLED).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_set_parses_with_categories() {
        let prompts = parse_prompts(BUNDLED).unwrap();
        assert_eq!(prompts.len(), 30);
        assert!(prompts.iter().all(|p| p.category.is_some()));
        assert_eq!(bundled(), prompts);
    }

    #[test]
    fn malformed_lines_name_the_line_and_field() {
        let err = parse_prompts("{\"id\":\"a\",\"prompt\":\"x\"}\n\n{\"id\":\"b\"}\n").unwrap_err();
        assert!(
            matches!(&err, ArenaError::Row { line: 3, field, .. } if field == "prompt"),
            "{err:?}"
        );
        let err = parse_prompts("{\"id\":\"a\",\"prompt\":\"x\"}\n{\"id\":\"a\",\"prompt\":\"y\"}")
            .unwrap_err();
        assert!(matches!(&err, ArenaError::Row { line: 2, field, .. } if field == "id"));
        let err = parse_prompts("{\"id\":\"a\",\"prompt\":\"  \"}").unwrap_err();
        assert!(matches!(&err, ArenaError::Row { line: 1, field, .. } if field == "prompt"));
        assert!(parse_prompts("\n\n").is_err());
        assert!(matches!(
            parse_prompts("nope"),
            Err(ArenaError::Row { line: 1, .. })
        ));
    }
}
