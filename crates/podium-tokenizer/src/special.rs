//! Cutting special tokens (`<|im_start|>`, `<start_of_turn>`, Gemma's `\n\n`) out
//! of text before the ordinary tokenizer sees it, following llama.cpp's
//! `tokenizer_st_partition`: longer special tokens are cut first, each one at
//! every place it occurs in the text that is left, and tokens marked `LSTRIP` /
//! `RSTRIP` take the whitespace before / after them along.

use aho_corasick::{AhoCorasick, MatchKind};

use crate::error::TokenizerError;
use crate::vocab::{Vocab, attr};

/// One piece of partitioned text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fragment {
    /// A byte range of the input still to be tokenized.
    Text { start: usize, end: usize },
    /// A special token matched in the input.
    Token(u32),
}

pub(crate) struct SpecialTokens {
    /// Control, user-defined and unknown tokens, longest text first.
    ids: Vec<u32>,
    /// Whether each of `ids` is matched only when parsing specials is on.
    needs_parse_special: Vec<bool>,
    /// Finds which special tokens occur at all, so that a text is scanned only
    /// for those (Gemma has over six thousand special tokens).
    finder: Option<AhoCorasick>,
}

impl SpecialTokens {
    pub(crate) fn new(vocab: &Vocab) -> Result<SpecialTokens, TokenizerError> {
        let mut ids: Vec<u32> = (0..vocab.len() as u32)
            .filter(|&id| {
                vocab.attrs[id as usize] & (attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN) != 0
            })
            .collect();
        // llama.cpp sorts by length only, with an unstable sort; ties are broken
        // by id here so that the order is at least deterministic.
        ids.sort_by(|&a, &b| {
            let (text_a, text_b) = (&vocab.texts[a as usize], &vocab.texts[b as usize]);
            text_b.len().cmp(&text_a.len()).then(a.cmp(&b))
        });
        let needs_parse_special = ids
            .iter()
            .map(|&id| vocab.attrs[id as usize] & (attr::CONTROL | attr::UNKNOWN) != 0)
            .collect();
        let finder = if ids.is_empty() {
            None
        } else {
            // Building fails only past aho-corasick's size limits (a hostile vocabulary).
            let finder = AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .build(ids.iter().map(|&id| vocab.texts[id as usize].as_bytes()))
                .map_err(|e| TokenizerError::Invalid {
                    key: "tokenizer.ggml.tokens",
                    message: format!("its special tokens cannot be searched for: {e}"),
                })?;
            Some(finder)
        };
        Ok(SpecialTokens {
            ids,
            needs_parse_special,
            finder,
        })
    }

    /// Splits `text` into plain-text ranges and special tokens.
    pub(crate) fn partition(
        &self,
        vocab: &Vocab,
        text: &str,
        parse_special: bool,
    ) -> Vec<Fragment> {
        let mut fragments = Vec::new();
        if text.is_empty() {
            return fragments;
        }
        fragments.push(Fragment::Text {
            start: 0,
            end: text.len(),
        });
        let Some(finder) = &self.finder else {
            return fragments;
        };
        // Indices into `ids` of the special tokens present, in priority order.
        let mut present: Vec<usize> = finder
            .find_overlapping_iter(text)
            .map(|m| m.pattern().as_usize())
            .filter(|&idx| parse_special || !self.needs_parse_special[idx])
            .collect();
        if present.is_empty() {
            return fragments;
        }
        present.sort_unstable();
        present.dedup();

        let bytes = text.as_bytes();
        let mut next = Vec::with_capacity(fragments.len() * 2);
        for idx in present {
            let id = self.ids[idx];
            let needle = vocab.texts[id as usize].as_str();
            let lstrip = vocab.attrs[id as usize] & attr::LSTRIP != 0;
            let rstrip = vocab.attrs[id as usize] & attr::RSTRIP != 0;
            next.clear();
            for fragment in &fragments {
                let Fragment::Text { start, end } = *fragment else {
                    next.push(*fragment);
                    continue;
                };
                let mut from = start;
                while let Some(found) = text[from..end].find(needle) {
                    let match_start = from + found;
                    let mut left_end = match_start;
                    if lstrip {
                        while left_end > from && is_c_space(bytes[left_end - 1]) {
                            left_end -= 1;
                        }
                    }
                    if left_end > from {
                        next.push(Fragment::Text {
                            start: from,
                            end: left_end,
                        });
                    }
                    next.push(Fragment::Token(id));
                    from = match_start + needle.len();
                    if rstrip {
                        while from < end && is_c_space(bytes[from]) {
                            from += 1;
                        }
                    }
                }
                if from < end {
                    next.push(Fragment::Text { start: from, end });
                }
            }
            std::mem::swap(&mut fragments, &mut next);
        }
        fragments
    }
}

/// C's `isspace`, which llama.cpp uses to strip around tokens with `LSTRIP`/`RSTRIP`.
fn is_c_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
}
