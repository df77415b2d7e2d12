//! Unicode helpers the pre-tokenizers need: letter / number / whitespace classes
//! with the same meaning as llama.cpp's `\p{L}`, `\p{N}` and `\s`, and GPT-2's
//! reversible byte-to-character mapping.

use std::sync::OnceLock;

/// Unicode's general category `L` (all letters), as a sorted list of ranges.
///
/// The ranges come from `regex-syntax`'s Unicode tables so that Podium does not
/// carry its own copy of the Unicode database.
fn letter_ranges() -> &'static [(u32, u32)] {
    static RANGES: OnceLock<Vec<(u32, u32)>> = OnceLock::new();
    RANGES.get_or_init(|| {
        let hir = regex_syntax::Parser::new()
            .parse(r"\p{L}")
            .expect("the \\p{L} class is built into regex-syntax");
        match hir.kind() {
            regex_syntax::hir::HirKind::Class(regex_syntax::hir::Class::Unicode(class)) => class
                .ranges()
                .iter()
                .map(|range| (range.start() as u32, range.end() as u32))
                .collect(),
            other => unreachable!("\\p{{L}} parsed to a non-class: {other:?}"),
        }
    })
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
