//! llama.cpp's general-purpose pre-tokenizer regexes, the ones its `unicode.cpp` has no
//! hand-written matcher for and runs with C++ `std::regex`. The result must be
//! llama.cpp's, not what the regex means in Python or Rust, so this module reproduces
//! how llama.cpp runs them:
//!
//! - A regex that uses a Unicode category (`\p{N}`, `\p{L}`, `\p{P}`, `\p{M}`, `\p{S}`)
//!   runs on a "collapsed" text with one byte per code point: ASCII stays as it is,
//!   other whitespace becomes `\x0B`, and every other code point becomes one byte
//!   standing for its category (`\xD1` number, `\xD2` letter, `\xD3` punctuation,
//!   `\xD4` mark, `\xD5` symbol, `\xD0` anything else). Each `\p{X}` in the regex
//!   becomes that byte plus llama.cpp's list of the ASCII characters of category X
//!   (its own list: `$+<=>^`|~` are symbols, the rest of ASCII punctuation is
//!   punctuation).
//! - Any other regex runs on the code points themselves, with non-ASCII whitespace
//!   replaced by `\x0B` (C++'s `\s` knows only ASCII whitespace).
//!
//! `\s` is ASCII whitespace in both. `std::regex` in ECMAScript mode and the `regex`
//! crate in its default leftmost-first mode choose the same match for these patterns
//! (no look-around, no back-references): the leftmost start, then the first
//! alternative and the longest greedy repetition that match there.

use std::sync::OnceLock;

use regex::bytes::Regex as BytesRegex;

use crate::unicode::{Category, category, is_whitespace};

/// A regex of llama.cpp's `llm_tokenizer_bpe` table that runs through `std::regex`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StlRegex {
    /// `[\r\n]` (DeepSeek).
    CrOrLf,
    /// DeepSeek LLM's letters: `\s?[A-Za-zµÀ-ÖØ-öø-ƺ…]+`.
    DeepseekLlmLetters,
    /// DeepSeek LLM's punctuation: `\s?[!-/:-~！-／：-～‘-‟　-。]+`.
    DeepseekLlmPunctuation,
    /// `\s+$`: trailing whitespace.
    TrailingWhitespace,
    /// CJK and Hangul runs: `[一-龥ࠀ-一가-퟿]+` (DeepSeek).
    Cjk,
    /// `\p{N}+`
    Numbers,
    /// `\s?\p{L}+` (DeepSeek Coder).
    SpaceLetters,
    /// `\s?\p{P}+` (DeepSeek Coder).
    SpacePunctuation,
    /// Falcon's `[\p{P}\$\+<=>\^~\|`]+`.
    FalconPunctuation,
    /// llama.cpp's default `[\p{P}\$\+<=>\^~\|]+`.
    DefaultPunctuation,
    /// `[0-9][0-9][0-9]`
    ThreeDigits,
}

/// How a regex sees the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Collapsed,
    CodePoints,
}

struct Compiled {
    mode: Mode,
    regex: BytesRegex,
}

impl StlRegex {
    const ALL: [StlRegex; 11] = [
        StlRegex::CrOrLf,
        StlRegex::DeepseekLlmLetters,
        StlRegex::DeepseekLlmPunctuation,
        StlRegex::TrailingWhitespace,
        StlRegex::Cjk,
        StlRegex::Numbers,
        StlRegex::SpaceLetters,
        StlRegex::SpacePunctuation,
        StlRegex::FalconPunctuation,
        StlRegex::DefaultPunctuation,
        StlRegex::ThreeDigits,
    ];

    /// The regex as llama.cpp's `llama-vocab.cpp` writes it.
    fn source(self) -> &'static str {
        match self {
            StlRegex::CrOrLf => "[\r\n]",
            StlRegex::DeepseekLlmLetters => {
                "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+"
            }
            StlRegex::DeepseekLlmPunctuation => "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
            StlRegex::TrailingWhitespace => "\\s+$",
            StlRegex::Cjk => "[一-龥ࠀ-一가-퟿]+",
            StlRegex::Numbers => "\\p{N}+",
            StlRegex::SpaceLetters => "\\s?\\p{L}+",
            StlRegex::SpacePunctuation => "\\s?\\p{P}+",
            StlRegex::FalconPunctuation => "[\\p{P}\\$\\+<=>\\^~\\|`]+",
            StlRegex::DefaultPunctuation => "[\\p{P}\\$\\+<=>\\^~\\|]+",
            StlRegex::ThreeDigits => "[0-9][0-9][0-9]",
        }
    }

    fn compiled(self) -> &'static Compiled {
        const N: usize = StlRegex::ALL.len();
        static COMPILED: [OnceLock<Compiled>; N] = [const { OnceLock::new() }; N];
        COMPILED[self as usize].get_or_init(|| compile(self.source()))
    }

    /// Cuts `text` into the regex's matches and the text between them, in order.
    pub(crate) fn split<'t>(self, text: &'t str, out: &mut Vec<&'t str>) {
        let compiled = self.compiled();
        // Byte offset in `text` of each code point, plus the end.
        let mut offsets: Vec<usize> = text.char_indices().map(|(offset, _)| offset).collect();
        offsets.push(text.len());
        let mut emit_to = 0;
        let mut emit = |start: usize, end: usize, out: &mut Vec<&'t str>| {
            if emit_to < start {
                out.push(&text[offsets[emit_to]..offsets[start]]);
            }
            if start < end {
                out.push(&text[offsets[start]..offsets[end]]);
            }
            emit_to = end;
        };
        match compiled.mode {
            Mode::Collapsed => {
                let collapsed: Vec<u8> = text.chars().map(collapse).collect();
                // One byte per code point: match offsets are code point indices.
                for m in compiled.regex.find_iter(&collapsed) {
                    emit(m.start(), m.end(), out);
                }
            }
            Mode::CodePoints => {
                let mut wide = String::with_capacity(text.len());
                // Code point index of each byte offset of `wide` that starts one.
                let mut index_at = vec![0usize; text.len() + 1];
                for (idx, c) in text.chars().enumerate() {
                    index_at[wide.len()] = idx;
                    wide.push(if !c.is_ascii() && is_whitespace(c) {
                        '\u{0B}'
                    } else {
                        c
                    });
                }
                let n_chars = offsets.len() - 1;
                index_at[wide.len()] = n_chars;
                for m in compiled.regex.find_iter(wide.as_bytes()) {
                    emit(index_at[m.start()], index_at[m.end()], out);
                }
            }
        }
        let n_chars = offsets.len() - 1;
        emit(n_chars, n_chars, out);
    }
}

/// The byte that stands for `c` in the collapsed text.
fn collapse(c: char) -> u8 {
    if c.is_ascii() {
        return c as u8;
    }
    if is_whitespace(c) {
        return 0x0B;
    }
    match category(c) {
        Category::Number => 0xD1,
        Category::Letter => 0xD2,
        Category::Punctuation => 0xD3,
        Category::Mark => 0xD4,
        Category::Symbol => 0xD5,
        _ => 0xD0,
    }
}

/// llama.cpp's `\p{X}` classes it collapses, with the byte and the ASCII characters
/// each one stands for.
const CATEGORIES: &[(&str, &str)] = &[
    ("\\p{N}", "\\xD10-9"),
    ("\\p{L}", "\\xD2A-Za-z"),
    ("\\p{P}", "\\xD3!-#%-*,-/:-;?-@\\[-\\]_\\{\\}"),
    ("\\p{M}", "\\xD4"),
    ("\\p{S}", "\\xD5\\$\\+<->\\^`\\|\\~"),
];

/// Translates one of llama.cpp's regexes into a `regex` crate pattern over bytes
/// (collapsed text, or the UTF-8 of the code points), as llama.cpp's
/// `unicode_regex_split` does for `std::regex`.
fn compile(source: &str) -> Compiled {
    const ASCII_SPACE: &str = "[\\t\\n\\x0B\\x0C\\r ]";
    let mode = if CATEGORIES.iter().any(|(p, _)| source.contains(p)) {
        Mode::Collapsed
    } else {
        Mode::CodePoints
    };
    let mut pattern = String::new();
    let mut inside = false;
    let mut rest = source;
    while let Some(c) = rest.chars().next() {
        if let Some((p, replacement)) = CATEGORIES.iter().find(|(p, _)| rest.starts_with(p)) {
            if inside {
                pattern.push_str(replacement);
            } else {
                pattern.push('[');
                pattern.push_str(replacement);
                pattern.push(']');
            }
            rest = &rest[p.len()..];
            continue;
        }
        if rest.starts_with("\\s") {
            pattern.push_str(if inside {
                "\\t\\n\\x0B\\x0C\\r "
            } else {
                ASCII_SPACE
            });
            rest = &rest[2..];
            continue;
        }
        if c == '\\' {
            let escaped: String = rest.chars().take(2).collect();
            pattern.push_str(&escaped);
            rest = &rest[escaped.len()..];
            continue;
        }
        match c {
            '[' => inside = true,
            ']' => inside = false,
            _ => {}
        }
        pattern.push(c);
        rest = &rest[c.len_utf8()..];
    }
    let regex = regex::bytes::RegexBuilder::new(&pattern)
        .unicode(mode == Mode::CodePoints)
        .build()
        .unwrap_or_else(|e| panic!("llama.cpp regex {source:?} as {pattern:?}: {e}"));
    Compiled { mode, regex }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(regex: StlRegex, text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        regex.split(text, &mut out);
        assert_eq!(out.concat(), text, "{regex:?} keeps every character");
        out
    }

    #[test]
    fn every_regex_compiles() {
        for regex in StlRegex::ALL {
            split(regex, "a b 1 ,");
        }
    }

    #[test]
    fn categories_match_through_the_collapsed_text() {
        assert_eq!(split(StlRegex::Numbers, "a12٣b"), ["a", "12٣", "b"]);
        assert_eq!(
            split(StlRegex::SpaceLetters, "  héllo, 日本"),
            [" ", " héllo", ",", " 日本"]
        );
        // `$` is a symbol in llama.cpp's ASCII list, `!` and `《` punctuation.
        assert_eq!(
            split(StlRegex::SpacePunctuation, "a $! 《x"),
            ["a $", "!", " 《", "x"]
        );
        assert_eq!(
            split(StlRegex::FalconPunctuation, "a$+b`"),
            ["a", "$+", "b", "`"]
        );
    }

    #[test]
    fn code_point_regexes_see_non_ascii_whitespace_as_vertical_tab() {
        // U+3000 is in DeepSeek's punctuation class, but llama.cpp turns it into \x0B
        // before matching, so it is only ever whitespace. (`:-~` covers ASCII letters.)
        assert_eq!(
            split(StlRegex::DeepseekLlmPunctuation, "é\u{3000}\u{3000}!bé"),
            ["é\u{3000}", "\u{3000}!b", "é"]
        );
        assert_eq!(
            split(StlRegex::TrailingWhitespace, "a \u{a0}"),
            ["a", " \u{a0}"]
        );
        assert_eq!(split(StlRegex::ThreeDigits, "12345"), ["123", "45"]);
        assert_eq!(split(StlRegex::Cjk, "ab我想c"), ["ab", "我想", "c"]);
        assert_eq!(split(StlRegex::CrOrLf, "a\r\nb"), ["a", "\r", "\n", "b"]);
    }
}
