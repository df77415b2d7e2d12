//! Python's `str` semantics that IFEval's checkers rely on: `isspace`, `strip`,
//! `split()`, `isupper`/`islower`, the `\w` class of `re`, and `\w+` word counts.

use std::sync::LazyLock;

use regex::Regex;

/// `str.isspace()` for one character (also what `re`'s `\s` matches in a `str`
/// pattern): Unicode White_Space plus the ASCII separators U+001C–U+001F, which
/// Python counts as whitespace and Rust does not.
pub(crate) fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `str.strip()` with no argument.
pub(crate) fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

/// `str.split()` with no argument: runs of whitespace separate, no empty parts.
pub(crate) fn py_split_whitespace(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_py_space).filter(|part| !part.is_empty())
}

/// Titlecase letters (general category Lt): `str.isupper()` and `str.islower()`
/// fail on them, although they are neither Uppercase nor Lowercase.
fn is_titlecase(c: char) -> bool {
    matches!(c,
        '\u{01C5}' | '\u{01C8}' | '\u{01CB}' | '\u{01F2}'
        | '\u{1F88}'..='\u{1F8F}' | '\u{1F98}'..='\u{1F9F}' | '\u{1FA8}'..='\u{1FAF}'
        | '\u{1FBC}' | '\u{1FCC}' | '\u{1FFC}')
}

/// `str.isupper()`: at least one cased character, and none lowercase or titlecase.
pub(crate) fn py_isupper(s: &str) -> bool {
    let mut cased = false;
    for c in s.chars() {
        if c.is_lowercase() || is_titlecase(c) {
            return false;
        }
        cased |= c.is_uppercase();
    }
    cased
}

/// `str.islower()`: at least one cased character, and none uppercase or titlecase.
pub(crate) fn py_islower(s: &str) -> bool {
    let mut cased = false;
    for c in s.chars() {
        if c.is_uppercase() || is_titlecase(c) {
            return false;
        }
        cased |= c.is_lowercase();
    }
    cased
}

/// `str.lower()`. Rust's `to_lowercase` applies the same Unicode mappings,
/// final sigma included.
pub(crate) fn py_lower(s: &str) -> String {
    s.to_lowercase()
}

/// Python's `\w` in a `str` pattern is `str.isalnum()` or `_`: letters (L*) and
/// numbers (N*), but not the combining marks that the `regex` crate's `\w` adds.
static PY_WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[\p{L}\p{N}_]+").expect("a valid constant regex"));

/// lm-eval's `count_words`: the number of matches of `\w+`
/// (`nltk.tokenize.RegexpTokenizer(r"\w+")`).
pub(crate) fn count_word_runs(s: &str) -> usize {
    PY_WORD.find_iter(s).count()
}

/// Whether `c` is a word character of Python's `re` (`\w`: letters, numbers, `_`).
pub(crate) fn is_py_word_char(c: char) -> bool {
    static WORD_CHAR: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^[\p{L}\p{N}_]$").expect("a valid constant regex"));
    if c.is_ascii() {
        return c.is_ascii_alphanumeric() || c == '_';
    }
    let mut buf = [0u8; 4];
    WORD_CHAR.is_match(c.encode_utf8(&mut buf))
}

/// Whether `c` is a Unicode digit (`\d` of Python's `re`: category Nd).
pub(crate) fn is_py_digit(c: char) -> bool {
    static DIGIT: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^\p{Nd}$").expect("a valid constant regex"));
    if c.is_ascii() {
        return c.is_ascii_digit();
    }
    let mut buf = [0u8; 4];
    DIGIT.is_match(c.encode_utf8(&mut buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_string_predicates() {
        // (text, isupper, islower), as CPython 3.11 answers.
        let cases = [
            ("", false, false),
            ("123", false, false),
            ("ABC 1!", true, false),
            ("abc 1!", false, true),
            ("Abc", false, false),
            ("ǅ", false, false),
            ("ÀÉ", true, false),
            ("straße", false, true),
        ];
        for (text, upper, lower) in cases {
            assert_eq!(py_isupper(text), upper, "isupper({text:?})");
            assert_eq!(py_islower(text), lower, "islower({text:?})");
        }
    }

    #[test]
    fn python_whitespace_and_words() {
        assert_eq!(py_strip("\u{1c} a b \u{3000}"), "a b");
        assert_eq!(
            py_split_whitespace(" a\tb\n\nc ").collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        // `\w+` as Python: "don't" is two runs, digits and `_` are word characters,
        // a combining mark (the Devanagari virama) ends a run.
        let cases = [
            ("", 0),
            ("don't stop", 3),
            ("a_b 12", 2),
            ("नमस्ते", 2),
            ("…", 0),
        ];
        for (text, n) in cases {
            assert_eq!(count_word_runs(text), n, "{text:?}");
        }
        assert!(is_py_word_char('é') && is_py_word_char('_') && is_py_word_char('٣'));
        assert!(!is_py_word_char('\u{94d}') && !is_py_word_char('-'));
        assert!(is_py_digit('٣') && !is_py_digit('Ⅻ') && !is_py_digit('a'));
    }
}
