//! What an answer's text tells about a battle before anyone votes on it: its
//! style counts (the covariates of style control) and whether it reveals
//! which model wrote it.

use crate::StyleCounts;

/// Words that name a model family or its maker. An answer containing one
/// (as a whole word, any case) may reveal its model, so a vote on it is kept
/// but marked non-anonymous (FastChat's rule; `GPT` also matches `GPT-4`,
/// since a hyphen ends a word). `podium serve
/// --identity-words FILE` replaces this list.
pub const DEFAULT_IDENTITY_WORDS: &[&str] = &[
    "OpenAI",
    "ChatGPT",
    "GPT",
    "PaLM",
    "Claude",
    "Anthropic",
    "Gemini",
    "Gemma",
    "Bard",
    "Google",
    "DeepMind",
    "Llama",
    "Meta",
    "Mistral",
    "Mixtral",
    "Qwen",
    "Alibaba",
    "DeepSeek",
    "SmolLM",
    "SmolLM2",
    "HuggingFace",
    "Hugging Face",
    "Microsoft",
    "Grok",
    "xAI",
    "Cohere",
    "Command R",
    "Vicuna",
    "LMSYS",
];

/// Parses an identity-word list: one word or phrase per line; blank lines
/// and lines starting with `#` are skipped.
pub fn parse_identity_words(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// The first of `words` that `answer` contains as a whole word (not inside a
/// longer word; case ignored), if any.
pub fn revealed_identity<'w, S: AsRef<str>>(answer: &str, words: &'w [S]) -> Option<&'w str> {
    let haystack = answer.to_lowercase();
    words.iter().map(AsRef::as_ref).find(|word| {
        let needle = word.trim().to_lowercase();
        !needle.is_empty() && contains_word(&haystack, &needle)
    })
}

/// Whether `needle` occurs in `haystack` with no letter or digit right
/// before or after it.
fn contains_word(haystack: &str, needle: &str) -> bool {
    let is_word_char = |c: char| c.is_alphanumeric() || c == '_';
    let mut start = 0;
    while let Some(offset) = haystack[start..].find(needle) {
        let at = start + offset;
        let end = at + needle.len();
        let before = haystack[..at].chars().next_back();
        let after = haystack[end..].chars().next();
        if !before.is_some_and(is_word_char) && !after.is_some_and(is_word_char) {
            return true;
        }
        // Step one character past this match's start.
        start = at + haystack[at..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

/// The style counts of one answer, as FastChat counts them (code blocks
/// removed first): Markdown headers (`#` … `######` then a space, at a line
/// start), list items (`- `, `* `, `+ ` or `1. ` after optional indent) and
/// bold spans (`**…**` or `__…__` within a line). `tokens` is the answer's
/// length in tokens, as the backend counted it.
pub fn style_counts(answer: &str, tokens: f64) -> StyleCounts {
    let mut counts = StyleCounts {
        tokens,
        ..StyleCounts::default()
    };
    let mut in_code = false;
    for line in answer.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        if is_header(line) {
            counts.headers += 1.0;
        }
        if is_list_item(trimmed) {
            counts.lists += 1.0;
        }
        counts.bold += (bold_spans(line, "**") + bold_spans(line, "__")) as f64;
    }
    counts
}

fn is_header(line: &str) -> bool {
    let hashes = line.chars().take_while(|&c| c == '#').count();
    (1..=6).contains(&hashes) && line[hashes..].starts_with(char::is_whitespace)
}

fn is_list_item(trimmed: &str) -> bool {
    let mut chars = trimmed.chars();
    match chars.next() {
        Some('-' | '*' | '+') => chars.next().is_some_and(char::is_whitespace),
        Some(c) if c.is_ascii_digit() => {
            let rest = trimmed.trim_start_matches(|c: char| c.is_ascii_digit());
            rest.strip_prefix('.')
                .is_some_and(|r| r.starts_with(char::is_whitespace))
        }
        _ => false,
    }
}

/// Spans `MARK text MARK` with non-empty text free of the mark's character,
/// counted left to right without overlap (FastChat's `\*\*[^*\n]+\*\*`).
fn bold_spans(line: &str, mark: &str) -> usize {
    let mark_char = mark.chars().next().unwrap_or('*');
    let mut count = 0;
    let mut rest = line;
    while let Some(open) = rest.find(mark) {
        let after = &rest[open + mark.len()..];
        let text_len = after.find(mark_char).unwrap_or(after.len());
        if text_len > 0 && after[text_len..].starts_with(mark) {
            count += 1;
            rest = &after[text_len + mark.len()..];
        } else {
            rest = &rest[open + 1..];
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_words_match_whole_words_in_any_case() {
        let check = |answer: &str, expected: Option<&str>| {
            assert_eq!(
                revealed_identity(answer, DEFAULT_IDENTITY_WORDS),
                expected,
                "{answer}"
            );
        };
        check("I am ChatGPT, a model by OpenAI.", Some("OpenAI"));
        check(
            "As a large language model trained by google…",
            Some("Google"),
        );
        check("i'm claude", Some("Claude"));
        check("I was built by Hugging Face.", Some("Hugging Face"));
        check("Metadata and metaphors are fine; so is llamas.", None);
        check("The answer is 42.", None);
        check("", None);
    }

    #[test]
    fn identity_word_lists_parse_one_per_line() {
        let words = parse_identity_words("# ours\nAcmeGPT\n\n  Widget Co  \n");
        assert_eq!(words, vec!["AcmeGPT".to_string(), "Widget Co".to_string()]);
        assert_eq!(
            revealed_identity("made by widget co.", &words),
            Some("Widget Co")
        );
    }

    #[test]
    fn style_counts_follow_fastchat() {
        let answer = "# Title\n## Sub\n#NotAHeader\n- one\n* two\n  + three\n1. first\n10. tenth\n\
                      **bold** and __also__ and **not closed\n```\n# in code\n- in code\n**code**\n```\nplain";
        let counts = style_counts(answer, 17.0);
        assert_eq!(
            counts,
            StyleCounts {
                tokens: 17.0,
                headers: 2.0,
                lists: 5.0,
                bold: 2.0
            }
        );
    }
}
