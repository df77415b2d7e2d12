//! Unicode helpers the pre-tokenizers need: letter / number / whitespace classes
//! with the same meaning as llama.cpp's `\p{L}`, `\p{N}` and `\s`, and GPT-2's
//! reversible byte-to-character mapping.

use std::sync::OnceLock;

/// The ranges of a Unicode class that `regex-syntax` knows (`\\p{L}`, `\\p{Cc}`), so
/// that Podium does not carry its own copy of the Unicode database.
fn class_ranges(class: &str) -> Vec<(u32, u32)> {
    let hir = regex_syntax::Parser::new()
        .parse(class)
        .expect("the Unicode classes used here are built into regex-syntax");
    match hir.kind() {
        regex_syntax::hir::HirKind::Class(regex_syntax::hir::Class::Unicode(class)) => class
            .ranges()
            .iter()
            .map(|range| (range.start() as u32, range.end() as u32))
            .collect(),
        other => unreachable!("{class} parsed to a non-class: {other:?}"),
    }
}

/// Unicode's general category `L` (all letters), as a sorted list of ranges.
fn letter_ranges() -> &'static [(u32, u32)] {
    static RANGES: OnceLock<Vec<(u32, u32)>> = OnceLock::new();
    RANGES.get_or_init(|| class_ranges(r"\p{L}"))
}

/// The character classes of llama.cpp's `unicode_cpt_flags`: one per code point,
/// from its Unicode general category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Category {
    /// Unassigned (`Cn`).
    Undefined,
    /// `\p{N}`
    Number,
    /// `\p{L}`
    Letter,
    /// `\p{Z}`
    Separator,
    /// `\p{M}`
    Mark,
    /// `\p{P}`
    Punctuation,
    /// `\p{S}`
    Symbol,
    /// `\p{C}` but unassigned: `Cc`, `Cf`, `Co` (and `Cs`, which no `char` is).
    Control,
}

/// Every assigned code point's category, as sorted `(start, end, category)` ranges.
fn category_ranges() -> &'static [(u32, u32, Category)] {
    static RANGES: OnceLock<Vec<(u32, u32, Category)>> = OnceLock::new();
    RANGES.get_or_init(|| {
        let mut ranges = Vec::new();
        for (class, category) in [
            (r"\p{N}", Category::Number),
            (r"\p{L}", Category::Letter),
            (r"\p{Z}", Category::Separator),
            (r"\p{M}", Category::Mark),
            (r"\p{P}", Category::Punctuation),
            (r"\p{S}", Category::Symbol),
            (r"[\p{Cc}\p{Cf}\p{Co}]", Category::Control),
        ] {
            ranges.extend(
                class_ranges(class)
                    .into_iter()
                    .map(|(start, end)| (start, end, category)),
            );
        }
        ranges.sort_unstable_by_key(|&(start, _, _)| start);
        ranges
    })
}

/// The llama.cpp category of `c`.
pub(crate) fn category(c: char) -> Category {
    let cp = c as u32;
    let ranges = category_ranges();
    let idx = ranges.partition_point(|&(start, _, _)| start <= cp);
    match idx.checked_sub(1).map(|i| ranges[i]) {
        Some((_, end, category)) if cp <= end => category,
        _ => Category::Undefined,
    }
}

/// `\p{M}`: a combining mark.
pub(crate) fn is_mark(c: char) -> bool {
    !c.is_ascii() && category(c) == Category::Mark
}

/// Unicode's simple lower-case mapping (one code point to one), as llama.cpp's
/// `unicode_tolower`: `char::to_lowercase` except where that gives several characters
/// (only U+0130, whose simple mapping is `i`).
pub(crate) fn simple_lowercase(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    let mut lower = c.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(single), None) => single,
        _ if c == '\u{130}' => 'i',
        _ => c,
    }
}

/// The first code point of `c`'s canonical decomposition (NFD), as llama.cpp's
/// `unicode_cpts_normalize_nfd` maps each code point: `é` becomes `e`, and the accent
/// is dropped rather than kept as a second code point.
pub(crate) fn nfd_first(c: char) -> char {
    if c.is_ascii() {
        return c;
    }
    let mut first = None;
    unicode_normalization::char::decompose_canonical(c, |d| {
        first.get_or_insert(d);
    });
    first.unwrap_or(c)
}

/// `\p{L}`: the character is a letter (general category Lu, Ll, Lt, Lm or Lo).
pub(crate) fn is_letter(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphabetic();
    }
    let cp = c as u32;
    let ranges = letter_ranges();
    // Binary search for the last range starting at or before `cp`.
    let idx = ranges.partition_point(|&(start, _)| start <= cp);
    idx > 0 && cp <= ranges[idx - 1].1
}

/// `\p{N}`: the character is a number (general category Nd, Nl or No), which is
/// exactly what `char::is_numeric` tests.
pub(crate) fn is_number(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_digit();
    }
    c.is_numeric()
}

/// `\s`: the character has Unicode's White_Space property, the same set
/// llama.cpp's tables mark as whitespace.
pub(crate) fn is_whitespace(c: char) -> bool {
    c.is_whitespace()
}

/// GPT-2's byte-level alphabet: every byte maps to one printable character, so a
/// BPE vocabulary can be stored as text. Bytes that are already printable and
/// not whitespace map to themselves; the rest map to U+0100 and up, in order.
pub(crate) struct ByteLevelAlphabet {
    byte_to_char: [char; 256],
}

impl ByteLevelAlphabet {
    pub(crate) fn get() -> &'static ByteLevelAlphabet {
        static ALPHABET: OnceLock<ByteLevelAlphabet> = OnceLock::new();
        ALPHABET.get_or_init(|| {
            let mut byte_to_char = ['\0'; 256];
            let mut n_shifted = 0u32;
            for byte in 0..=255u8 {
                let printable = matches!(byte, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF);
                byte_to_char[byte as usize] = if printable {
                    char::from(byte)
                } else {
                    let c = char::from_u32(256 + n_shifted).expect("U+0100..U+0143 are chars");
                    n_shifted += 1;
                    c
                };
            }
            ByteLevelAlphabet { byte_to_char }
        })
    }

    /// Appends the byte-level spelling of `bytes` to `out`.
    pub(crate) fn encode_into(&self, bytes: &[u8], out: &mut String) {
        for &byte in bytes {
            out.push(self.byte_to_char[byte as usize]);
        }
    }

    /// The byte a byte-level character stands for, if it is one.
    pub(crate) fn decode_char(&self, c: char) -> Option<u8> {
        let cp = c as u32;
        if cp < 256 && self.byte_to_char[cp as usize] == c {
            return Some(cp as u8);
        }
        if (256..256 + 68).contains(&cp) {
            return self
                .byte_to_char
                .iter()
                .position(|&mapped| mapped == c)
                .map(|byte| byte as u8);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_numbers_and_spaces_follow_unicode_categories() {
        for c in ['a', 'Z', 'é', 'Ü', '日', 'ß', 'ʰ'] {
            assert!(is_letter(c), "{c:?} is a letter");
        }
        for c in ['1', '٣', '²', 'Ⅻ', ' ', '-', '🙂', '\u{0301}'] {
            assert!(!is_letter(c), "{c:?} is not a letter");
        }
        for c in ['0', '9', '٣', '²', 'Ⅻ', '½'] {
            assert!(is_number(c), "{c:?} is a number");
        }
        for c in [' ', '\t', '\n', '\u{a0}', '\u{3000}', '\u{2028}'] {
            assert!(is_whitespace(c), "{c:?} is whitespace");
        }
        assert!(
            !is_whitespace('\u{200b}'),
            "zero-width space is not White_Space"
        );
    }

    #[test]
    fn byte_level_alphabet_round_trips_every_byte() {
        let alphabet = ByteLevelAlphabet::get();
        for byte in 0..=255u8 {
            let mut s = String::new();
            alphabet.encode_into(&[byte], &mut s);
            let c = s.chars().next().unwrap();
            assert_eq!(s.chars().count(), 1);
            assert_eq!(alphabet.decode_char(c), Some(byte));
        }
        let mut s = String::new();
        alphabet.encode_into(b" \n", &mut s);
        assert_eq!(s, "\u{120}\u{10a}", "space is Ġ and newline is Ċ");
    }
}
