//! Byte-level BPE (`tokenizer.ggml.model = gpt2`): pre-tokenize into words, spell
//! each word in GPT-2's byte alphabet, then apply ranked merges, lowest rank
//! first and leftmost first on ties, exactly as llama.cpp's BPE session does.
//! Gemma 4's SentencePiece-style BPE (`tokenizer.ggml.model = gemma4`) is the same
//! session on raw UTF-8 with spaces written `▁`, one symbol per character to start
//! with, and `<0xNN>` byte tokens for what no token covers.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rustc_hash::FxHashMap;

use crate::pretokenize::PreTokenizerRules;
use crate::unicode::ByteLevelAlphabet;
use crate::vocab::Vocab;

/// Marks a symbol whose text is neither a token nor a merge half; it can never
/// merge and falls back to bytes at the end.
const NO_ID: u32 = u32::MAX;

pub(crate) struct BpeModel {
    rules: PreTokenizerRules,
    /// `(left, right)` → `(rank, merged)`, by interned id. Ids below the
    /// vocabulary size are tokens; ids above name merge halves or results that
    /// are not tokens themselves (a GGUF may list such merges; llama.cpp works on
    /// strings, so they must still take part).
    merges: FxHashMap<(u32, u32), (u32, u32)>,
    /// The interned id of the single character that stands for each byte.
    byte_symbol_ids: [u32; 256],
    /// Interned ids of merge halves and results that are not tokens (raw UTF-8
    /// words look their characters up here too).
    extra: FxHashMap<String, u32>,
    /// `<0xNN>` for each byte, for raw UTF-8 words.
    byte_fallback: [Option<u32>; 256],
    n_vocab: u32,
}

struct Symbol {
    id: u32,
    /// Byte range in the byte-level spelling of the word.
    start: usize,
    end: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

impl BpeModel {
    pub(crate) fn new(vocab: &Vocab, rules: PreTokenizerRules) -> BpeModel {
        let n_vocab = vocab.len() as u32;
        let mut extra: FxHashMap<String, u32> = FxHashMap::default();
        let mut intern = |text: &str| -> u32 {
            if let Some(&id) = vocab.token_to_id.get(text) {
                return id;
            }
            let next_id = n_vocab + extra.len() as u32;
            *extra.entry(text.to_owned()).or_insert(next_id)
        };
        let mut merges = FxHashMap::default();
        merges.reserve(vocab.merges.len());
        for (rank, (left, right)) in vocab.merges.iter().enumerate() {
            let left_id = intern(left);
            let right_id = intern(right);
            let merged_id = intern(&format!("{left}{right}"));
            // llama.cpp keeps the first rank of a duplicated merge.
            merges
                .entry((left_id, right_id))
                .or_insert((rank as u32, merged_id));
        }
        let alphabet = ByteLevelAlphabet::get();
        let mut byte_symbol_ids = [NO_ID; 256];
        for (byte, slot) in byte_symbol_ids.iter_mut().enumerate() {
            let mut spelled = String::new();
            alphabet.encode_into(&[byte as u8], &mut spelled);
            *slot = vocab
                .token_to_id
                .get(spelled.as_str())
                .copied()
                .or_else(|| extra.get(&spelled).copied())
                .unwrap_or(NO_ID);
        }
        let mut byte_fallback = [None; 256];
        for (byte, slot) in byte_fallback.iter_mut().enumerate() {
            *slot = vocab
                .token_to_id
                .get(format!("<0x{byte:02X}>").as_str())
                .copied();
        }
        BpeModel {
            rules,
            merges,
            byte_symbol_ids,
            extra,
            byte_fallback,
            n_vocab,
        }
    }

    /// Tokenizes one fragment of plain text (no special tokens in it).
    pub(crate) fn encode(&self, vocab: &Vocab, text: &str, out: &mut Vec<u32>) {
        let mut symbols = Vec::new();
        let mut queue = BinaryHeap::new();
        if !self.rules.byte_encode {
            let escaped = text.replace(' ', "▁");
            for word in self.rules.split(&escaped) {
                if (self.rules.ignore_merges
                    || (self.rules.whole_newline_words && word.bytes().all(|b| b == b'\n')))
                    && let Some(&id) = vocab.token_to_id.get(word)
                {
                    out.push(id);
                    continue;
                }
                symbols.clear();
                for (start, c) in word.char_indices() {
                    let end = start + c.len_utf8();
                    let piece = &word[start..end];
                    let id = vocab
                        .token_to_id
                        .get(piece)
                        .or_else(|| self.extra.get(piece))
                        .copied()
                        .unwrap_or(NO_ID);
                    push_symbol(&mut symbols, id, start, end);
                }
                self.merge_and_emit(vocab, word, &mut symbols, &mut queue, out);
            }
            return;
        }
        let alphabet = ByteLevelAlphabet::get();
        let mut spelled = String::new();
        for word in self.rules.split(text) {
            spelled.clear();
            alphabet.encode_into(word.as_bytes(), &mut spelled);
            if self.rules.ignore_merges
                && let Some(&id) = vocab.token_to_id.get(spelled.as_str())
            {
                out.push(id);
                continue;
            }
            symbols.clear();
            let mut offset = 0;
            for &byte in word.as_bytes() {
                let len = if spelled.as_bytes()[offset] < 0x80 {
                    1
                } else {
                    2
                };
                push_symbol(
                    &mut symbols,
                    self.byte_symbol_ids[byte as usize],
                    offset,
                    offset + len,
                );
                offset += len;
            }
            self.merge_and_emit(vocab, &spelled, &mut symbols, &mut queue, out);
        }
    }

    /// Applies the merges to the symbols of one word (`spelled`) and emits them.
    fn merge_and_emit(
        &self,
        vocab: &Vocab,
        spelled: &str,
        symbols: &mut [Symbol],
        queue: &mut BinaryHeap<Reverse<(u32, usize)>>,
        out: &mut Vec<u32>,
    ) {
        if let Some(last) = symbols.last_mut() {
            last.next = None;
        } else {
            return;
        }
        queue.clear();
        if symbols.len() == 1 {
            self.emit(vocab, spelled, &symbols[0], out);
            return;
        }
        for left in 0..symbols.len().saturating_sub(1) {
            self.push_pair(symbols, left, left + 1, queue);
        }
        // Each queue entry is (rank, left index). An entry is stale when either
        // side has merged since it was pushed; it is then skipped unless the
        // pair now at that place has the very same rank, in which case it is the
        // same merge that a fresh entry with the same key would perform.
        while let Some(Reverse((rank, left))) = queue.pop() {
            let Some(right) = symbols[left].next else {
                continue;
            };
            if symbols[left].end == symbols[left].start {
                continue;
            }
            let pair = (symbols[left].id, symbols[right].id);
            match self.merges.get(&pair) {
                Some(&(pair_rank, merged)) if pair_rank == rank => {
                    let right_sym_end = symbols[right].end;
                    let right_next = symbols[right].next;
                    symbols[right].end = symbols[right].start;
                    let left_sym = &mut symbols[left];
                    left_sym.id = merged;
                    left_sym.end = right_sym_end;
                    left_sym.next = right_next;
                    if let Some(next) = right_next {
                        symbols[next].prev = Some(left);
                    }
                    if let Some(prev) = symbols[left].prev {
                        self.push_pair(symbols, prev, left, queue);
                    }
                    if let Some(next) = right_next {
                        self.push_pair(symbols, left, next, queue);
                    }
                }
                _ => continue,
            }
        }
        let mut idx = Some(0);
        while let Some(i) = idx {
            self.emit(vocab, spelled, &symbols[i], out);
            idx = symbols[i].next;
        }
    }

    fn push_pair(
        &self,
        symbols: &[Symbol],
        left: usize,
        right: usize,
        queue: &mut BinaryHeap<Reverse<(u32, usize)>>,
    ) {
        if let Some(&(rank, _)) = self.merges.get(&(symbols[left].id, symbols[right].id)) {
            queue.push(Reverse((rank, left)));
        }
    }

    /// Emits a finished symbol: its token, or, when its text is not a token,
    /// the tokens of its single ASCII bytes (byte-level) or its bytes' `<0xNN>`
    /// tokens (raw UTF-8) as llama.cpp does.
    fn emit(&self, vocab: &Vocab, spelled: &str, symbol: &Symbol, out: &mut Vec<u32>) {
        if symbol.id < self.n_vocab {
            out.push(symbol.id);
            return;
        }
        let text = &spelled[symbol.start..symbol.end];
        if !self.rules.byte_encode {
            out.extend(text.bytes().filter_map(|b| self.byte_fallback[b as usize]));
            return;
        }
        for byte in text.bytes().filter(u8::is_ascii) {
            let single = [byte];
            let single = std::str::from_utf8(&single).expect("ASCII is UTF-8");
            if let Some(&id) = vocab.token_to_id.get(single) {
                out.push(id);
            }
        }
    }
}

/// Appends a symbol linked to the one before it; the last symbol's `next` is cleared
/// by `merge_and_emit`.
fn push_symbol(symbols: &mut Vec<Symbol>, id: u32, start: usize, end: usize) {
    let idx = symbols.len();
    symbols.push(Symbol {
        id,
        start,
        end,
        prev: idx.checked_sub(1),
        next: Some(idx + 1),
    });
}
