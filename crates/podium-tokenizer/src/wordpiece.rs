//! WordPiece (`tokenizer.ggml.model = bert`), as llama.cpp's WPM session: normalize
//! and cut the text into words (whitespace separates, punctuation and CJK characters
//! are words of their own), then cover each word from the left with the longest
//! token, starting from `▁word`. GGUF BERT vocabularies are stored with `▁` marking
//! word starts instead of `##` marking continuations, so every piece is looked up
//! as it is. A word that cannot be covered becomes `[UNK]` whole.

use crate::unicode::{Category, category, is_whitespace, nfd_first, simple_lowercase};
use crate::vocab::Vocab;

pub(crate) struct WordPieceModel {
    /// The longest token text in bytes: no longer piece is looked up.
    max_token_len: usize,
    unk_id: u32,
}

impl WordPieceModel {
    pub(crate) fn new(vocab: &Vocab, unk_id: u32) -> WordPieceModel {
        WordPieceModel {
            max_token_len: vocab.texts.iter().map(String::len).max().unwrap_or(0),
            unk_id,
        }
    }

    /// Tokenizes one fragment of plain text (no special tokens in it).
    pub(crate) fn encode(&self, vocab: &Vocab, text: &str, out: &mut Vec<u32>) {
        let mut word = String::from("▁");
        for c in text.chars() {
            let c = if vocab.strip_accents { nfd_first(c) } else { c };
            if is_whitespace(c) {
                self.encode_word(vocab, &mut word, out);
                continue;
            }
            let class = category(c);
            if c == '\0' || c == '\u{FFFD}' || class == Category::Control {
                continue;
            }
            if vocab.strip_accents && class == Category::Mark {
                continue;
            }
            // Whether it stands alone is decided before lower-casing, as in llama.cpp.
            let alone = class == Category::Punctuation
                || (c < '\u{7F}' && class == Category::Symbol)
                || is_chinese_char(c);
            let c = if vocab.lowercase {
                simple_lowercase(c)
            } else {
                c
            };
            if alone {
                self.encode_word(vocab, &mut word, out);
                word.push(c);
                self.encode_word(vocab, &mut word, out);
            } else {
                word.push(c);
            }
        }
        self.encode_word(vocab, &mut word, out);
    }

    /// Encodes `word` (`▁` and the word's text; nothing when empty) and resets it to
    /// `▁`.
    fn encode_word(&self, vocab: &Vocab, word: &mut String, out: &mut Vec<u32>) {
        const PREFIX: usize = '▁'.len_utf8();
        if word.len() > PREFIX {
            let first_new = out.len();
            let n = word.len();
            let mut start = 0;
            while start < n {
                let longest = (start + 1..=n.min(start + self.max_token_len + 1))
                    .rev()
                    .find_map(|end| {
                        let id = word
                            .get(start..end)
                            .and_then(|p| vocab.token_to_id.get(p))?;
                        Some((end, *id))
                    });
                match longest {
                    Some((end, id)) => {
                        out.push(id);
                        start = end;
                    }
                    None => {
                        out.truncate(first_new);
                        break;
                    }
                }
            }
            if out.len() == first_new {
                out.push(self.unk_id);
            }
        }
        word.truncate(PREFIX);
    }
}

/// The CJK ranges llama.cpp (after Hugging Face's BERT) cuts into one-character words;
/// `0x2B920` rather than Unicode's `0x2B820` is theirs.
fn is_chinese_char(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF
        | 0x3400..=0x4DBF
        | 0x20000..=0x2A6DF
        | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F
        | 0x2B920..=0x2CEAF
        | 0xF900..=0xFAFF
        | 0x2F800..=0x2FA1F)
}
