//! `nltk.word_tokenize` (nltk 3.9.1): Punkt sentences, then NLTK's improved
//! Treebank word tokenizer (`NLTKWordTokenizer.tokenize`, no parenthesis
//! conversion) on each. Its regular expressions are Python's, translated for the
//! `regex` crate: the two with look-ahead are rewritten without it (see
//! [`QUOTE_BEFORE_LETTER`] and the `wanna` rule), which matches the same text.

use std::sync::LazyLock;

use regex::{Captures, Regex};

use super::punkt;

struct Rule {
    regex: Regex,
    replacement: &'static str,
}

fn rules(list: &[(&str, &'static str)]) -> Vec<Rule> {
    list.iter()
        .map(|(pattern, replacement)| Rule {
            regex: Regex::new(pattern).expect("a valid constant regex"),
            replacement,
        })
        .collect()
}

fn apply(rules: &[Rule], mut text: String) -> String {
    for rule in rules {
        if let std::borrow::Cow::Owned(replaced) = rule.regex.replace_all(&text, rule.replacement) {
            text = replaced;
        }
    }
    text
}

/// `STARTING_QUOTES` but the last rule.
static STARTING_QUOTES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    rules(&[
        (r"([«“‘„]|[`]+)", " ${1} "),
        (r#"^""#, "``"),
        (r"(``)", " ${1} "),
        (r#"([ (\[{<])("|'{2})"#, "${1} `` "),
    ])
});

/// `(?i)(\')(?!re|ve|ll|m|t|s|d|n)(\w)\b` → `\1 \2`: a quote before a one-letter
/// word. The word is followed by a non-word character, so `re`, `ve`, `ll` can
/// never follow; the match is kept unchanged when the letter is m, t, s, d or n.
static QUOTE_BEFORE_LETTER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(')([\p{L}\p{N}_])\b").expect("a valid constant regex"));

static PUNCTUATION: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    rules(&[
        (r#"([^.])(\.)([\])}>"'»”’ ]*)\s*$"#, "${1} ${2} ${3} "),
        (r"([:,])([^\d])", " ${1} ${2}"),
        // Python's `$` also matches before a final newline.
        (r"([:,])(\n?)$", " ${1} ${2}"),
        (r"\.{2,}", " ${0} "),
        (r"[;@#$%&]", " ${0} "),
        (r#"([^.])(\.)([\])}>"']*)\s*$"#, "${1} ${2}${3} "),
        (r"[?!]", " ${0} "),
        (r"([^'])' ", "${1} ' "),
        (r"[*]", " ${0} "),
        // PARENS_BRACKETS, then DOUBLE_DASHES.
        (r"[\]\[(){}<>]", " ${0} "),
        (r"--", " -- "),
    ])
});

static ENDING_QUOTES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    rules(&[
        (r"([»”’])", " ${1} "),
        (r"''", " '' "),
        (r#"""#, " '' "),
        (r"\s+", " "),
        (r"([^' ])('[sS]|'[mM]|'[dD]|') ", "${1} ${2} "),
        (r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ", "${1} ${2} "),
    ])
});

static CONTRACTIONS: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    rules(&[
        (r"(?i)\b(can)(not)\b", " ${1} ${2} "),
        (r"(?i)\b(d)('ye)\b", " ${1} ${2} "),
        (r"(?i)\b(gim)(me)\b", " ${1} ${2} "),
        (r"(?i)\b(gon)(na)\b", " ${1} ${2} "),
        (r"(?i)\b(got)(ta)\b", " ${1} ${2} "),
        (r"(?i)\b(lem)(me)\b", " ${1} ${2} "),
        (r"(?i)\b(more)('n)\b", " ${1} ${2} "),
        // `(?=\s)` as a consumed group put back after the replacement.
        (r"(?i)\b(wan)(na)(\s)", " ${1} ${2} ${3}"),
        (r"(?i) ('t)(is)\b", " ${1} ${2} "),
        (r"(?i) ('t)(was)\b", " ${1} ${2} "),
    ])
});

/// `NLTKWordTokenizer().tokenize(text)`.
pub fn treebank_tokenize(text: &str) -> Vec<String> {
    let mut text = apply(&STARTING_QUOTES, text.to_string());
    text = QUOTE_BEFORE_LETTER
        .replace_all(&text, |caps: &Captures<'_>| {
            let letter = &caps[2];
            if matches!(
                letter,
                "m" | "t" | "s" | "d" | "n" | "M" | "T" | "S" | "D" | "N"
            ) {
                caps[0].to_string()
            } else {
                format!("{} {letter}", &caps[1])
            }
        })
        .into_owned();
    text = apply(&PUNCTUATION, text);
    text = format!(" {text} ");
    text = apply(&ENDING_QUOTES, text);
    text = apply(&CONTRACTIONS, text);
    super::text::py_split_whitespace(&text)
        .map(str::to_string)
        .collect()
}

/// `nltk.word_tokenize(text)` (English, `preserve_line=False`).
pub fn word_tokenize(text: &str) -> Vec<String> {
    punkt::sentences(text)
        .into_iter()
        .flat_map(treebank_tokenize)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tokens as `nltk.word_tokenize` (nltk 3.9.1) gives them.
    #[test]
    fn tokenizes_like_nltk() {
        let cases: &[(&str, &[&str])] = &[
            ("", &[]),
            (
                "DON'T do that, U.S.A. said: \"OK\". He's here.",
                &[
                    "DO", "N'T", "do", "that", ",", "U.S.A.", "said", ":", "``", "OK", "''", ".",
                    "He", "'s", "here", ".",
                ],
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(word_tokenize(text), *expected, "{text:?}");
        }
    }
}
