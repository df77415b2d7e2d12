//! SentencePiece-style merging (`tokenizer.ggml.model = llama`): the vocabulary
//! has scores and no merge list, so adjacent pieces merge whenever their
//! concatenation is a token, highest score first and leftmost first on ties;
//! characters that end up outside every token fall back to `<0xNN>` byte tokens.
//! This is llama.cpp's SPM session.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::error::TokenizerError;
use crate::vocab::Vocab;

pub(crate) struct SpmModel {
    /// The token for each byte when a character has no token of its own.
    byte_tokens: [Option<u32>; 256],
}

struct Symbol {
    start: usize,
    /// Length in bytes; 0 once merged into the symbol on its left.
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

struct Candidate {
    score: f32,
    left: usize,
    right: usize,
    /// Byte length of the merged text, to detect stale entries like llama.cpp.
    len: usize,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Candidate {}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Candidate {
    /// Higher score first, then the leftmost pair.
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .partial_cmp(&other.score)
            .unwrap_or(Ordering::Equal)
            .then_with(|| other.left.cmp(&self.left))
    }
}

impl SpmModel {
    pub(crate) fn new(vocab: &Vocab) -> SpmModel {
        let mut byte_tokens = [None; 256];
        for (byte, slot) in byte_tokens.iter_mut().enumerate() {
            let hex = format!("<0x{byte:02X}>");
            *slot = vocab.token_to_id.get(hex.as_str()).copied().or_else(|| {
                // llama.cpp falls back to the byte itself as a one-byte token.
                let single = [byte as u8];
                std::str::from_utf8(&single)
                    .ok()
                    .and_then(|s| vocab.token_to_id.get(s).copied())
            });
        }
        SpmModel { byte_tokens }
    }

    /// Tokenizes one fragment whose spaces are already escaped as `▁`.
    pub(crate) fn encode(
        &self,
        vocab: &Vocab,
        text: &str,
        out: &mut Vec<u32>,
    ) -> Result<(), TokenizerError> {
        let mut symbols: Vec<Symbol> = Vec::with_capacity(text.len());
        for (idx, (start, c)) in text.char_indices().enumerate() {
            symbols.push(Symbol {
                start,
                len: c.len_utf8(),
                prev: idx.checked_sub(1),
                next: (start + c.len_utf8() < text.len()).then_some(idx + 1),
            });
        }
        let mut queue = BinaryHeap::new();
        for left in 1..symbols.len() {
            push_pair(
                vocab,
                text,
                &symbols,
                Some(left - 1),
                Some(left),
                &mut queue,
            );
        }
        while let Some(candidate) = queue.pop() {
            let (left, right) = (candidate.left, candidate.right);
            if symbols[left].len == 0
                || symbols[right].len == 0
                || symbols[left].len + symbols[right].len != candidate.len
            {
                continue;
            }
            symbols[left].len += symbols[right].len;
            symbols[right].len = 0;
            let right_next = symbols[right].next;
            symbols[left].next = right_next;
            if let Some(next) = right_next {
                symbols[next].prev = Some(left);
            }
            push_pair(
                vocab,
                text,
                &symbols,
                symbols[left].prev,
                Some(left),
                &mut queue,
            );
            push_pair(vocab, text, &symbols, Some(left), right_next, &mut queue);
        }
        let mut idx = (!symbols.is_empty()).then_some(0);
        while let Some(i) = idx {
            let symbol = &symbols[i];
            let piece = &text[symbol.start..symbol.start + symbol.len];
            match vocab.token_to_id.get(piece) {
                Some(&id) => out.push(id),
                None => {
                    for byte in piece.bytes() {
                        out.push(
                            self.byte_tokens[byte as usize]
                                .ok_or(TokenizerError::MissingByteToken(byte))?,
                        );
                    }
                }
            }
            idx = symbol.next;
        }
        Ok(())
    }
}

fn push_pair(
    vocab: &Vocab,
    text: &str,
    symbols: &[Symbol],
    left: Option<usize>,
    right: Option<usize>,
    queue: &mut BinaryHeap<Candidate>,
) {
    let (Some(left), Some(right)) = (left, right) else {
        return;
    };
    let start = symbols[left].start;
    let len = symbols[left].len + symbols[right].len;
    if let Some(&id) = vocab.token_to_id.get(&text[start..start + len]) {
        queue.push(Candidate {
            score: vocab.scores[id as usize],
            left,
            right,
            len,
        });
    }
}
