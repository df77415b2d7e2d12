//! What an answer's text tells about a battle before anyone votes on it:
//! whether it reveals which model wrote it. (Its style counts are
//! [`crate::formats::style_counts`].)

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
}
