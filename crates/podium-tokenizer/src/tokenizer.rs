//! The public tokenizer: built from GGUF metadata, it gives the same ids as
//! llama.cpp's `llama_tokenize` and turns ids back into text.

use std::collections::HashMap;

use candle_core::quantized::gguf_file::{Content, Value};

use crate::bpe::BpeModel;
use crate::error::TokenizerError;
use crate::special::{Fragment, SpecialTokens};
use crate::spm::SpmModel;
use crate::unicode::ByteLevelAlphabet;
use crate::vocab::{TokenKind, Vocab, VocabKind, attr};
use crate::wordpiece::WordPieceModel;

/// How `Tokenizer::encode` treats special tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EncodeOptions {
    /// Add BOS (and EOS) when the model asks for them
    /// (`tokenizer.ggml.add_bos_token` / `add_eos_token`), like llama.cpp's
    /// `add_special`.
    pub add_special: bool,
    /// Turn control-token text in the input (`<|im_start|>`) into the control
    /// token, like llama.cpp's `parse_special`. User-defined tokens are always
    /// matched.
    pub parse_special: bool,
}

impl EncodeOptions {
    /// Plain text: no BOS, control-token text tokenized as ordinary text.
    pub const PLAIN: EncodeOptions = EncodeOptions {
        add_special: false,
        parse_special: false,
    };
    /// A rendered chat prompt: control-token text becomes control tokens, and
    /// BOS is added when the model asks for it.
    pub const PROMPT: EncodeOptions = EncodeOptions {
        add_special: true,
        parse_special: true,
    };
}

/// How `Tokenizer::decode_with` renders ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DecodeOptions {
    /// Render control and unknown tokens as their text (`<|im_end|>`) instead
    /// of leaving them out.
    pub render_special: bool,
}

enum Model {
    Bpe(Box<BpeModel>),
    Spm(Box<SpmModel>),
    WordPiece(WordPieceModel),
}

/// A tokenizer equivalent to llama.cpp's for the same GGUF file.
pub struct Tokenizer {
    vocab: Vocab,
    model: Model,
    specials: SpecialTokens,
    /// Each token's bytes as llama.cpp's `token_to_piece(special = true)`.
    pieces: Vec<Box<[u8]>>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("kind", &self.vocab.kind)
            .field("pre_tokenizer", &self.vocab.pre_tokenizer_name)
            .field("vocab_size", &self.vocab.len())
            .finish_non_exhaustive()
    }
}

impl Tokenizer {
    /// Builds the tokenizer from a GGUF file's metadata.
    pub fn from_gguf(content: &Content) -> Result<Tokenizer, TokenizerError> {
        Tokenizer::from_metadata(&content.metadata)
    }

    /// Builds the tokenizer from GGUF metadata key-value pairs.
    pub fn from_metadata(metadata: &HashMap<String, Value>) -> Result<Tokenizer, TokenizerError> {
        let vocab = Vocab::from_metadata(metadata)?;
        let model = match (vocab.kind, &vocab.pre_tokenizer) {
            (VocabKind::BytePairEncoding, Some(rules)) => {
                Model::Bpe(Box::new(BpeModel::new(&vocab, rules.clone())))
            }
            (VocabKind::BytePairEncoding, None) => {
                unreachable!("Vocab::from_metadata always sets rules for BPE")
            }
            (VocabKind::SentencePiece, _) => Model::Spm(Box::new(SpmModel::new(&vocab))),
            (VocabKind::WordPiece, _) => {
                let unk_id = vocab.unk_id.ok_or(TokenizerError::MissingKey(
                    "tokenizer.ggml.unknown_token_id",
                ))?;
                Model::WordPiece(WordPieceModel::new(&vocab, unk_id))
            }
        };
        let specials = SpecialTokens::new(&vocab)?;
        let pieces = (0..vocab.len() as u32)
            .map(|id| compute_piece(&vocab, id))
            .collect();
        Ok(Tokenizer {
            vocab,
            model,
            specials,
            pieces,
        })
    }

    /// Token ids for `text`, the same as llama.cpp's
    /// `llama_tokenize(text, add_special, parse_special)`.
    pub fn encode(&self, text: &str, options: EncodeOptions) -> Result<Vec<u32>, TokenizerError> {
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        self.encode_into(text, options, &mut out)?;
        Ok(out)
    }

    /// Like `encode`, appending to `out` so a caller can reuse one buffer.
    pub fn encode_into(
        &self,
        text: &str,
        options: EncodeOptions,
        out: &mut Vec<u32>,
    ) -> Result<(), TokenizerError> {
        let vocab = &self.vocab;
        let add_bos = options.add_special && vocab.add_bos;
        let add_eos = options.add_special && vocab.add_eos;
        if add_bos {
            out.extend(vocab.bos_id);
        }
        let fragments = self.specials.partition(vocab, text, options.parse_special);
        match &self.model {
            Model::Bpe(bpe) => {
                for fragment in fragments {
                    match fragment {
                        Fragment::Token(id) => out.push(id),
                        Fragment::Text { start, end } => bpe.encode(vocab, &text[start..end], out),
                    }
                }
            }
            Model::Spm(spm) => {
                // SentencePiece marks word starts with `▁`; a fragment at the
                // start of the text or right after a special token gets a leading
                // space when the model asks for one (Gemma 3 does not).
                let mut after_special = true;
                let mut escaped = String::new();
                for fragment in fragments {
                    match fragment {
                        Fragment::Token(id) => {
                            out.push(id);
                            after_special = true;
                        }
                        Fragment::Text { start, end } => {
                            escaped.clear();
                            if vocab.add_space_prefix && after_special {
                                escaped.push('▁');
                            }
                            for c in text[start..end].chars() {
                                escaped.push(if c == ' ' { '▁' } else { c });
                            }
                            spm.encode(vocab, &escaped, out)?;
                            after_special = false;
                        }
                    }
                }
            }
            Model::WordPiece(wpm) => {
                for fragment in fragments {
                    match fragment {
                        Fragment::Token(id) => out.push(id),
                        Fragment::Text { start, end } => wpm.encode(vocab, &text[start..end], out),
                    }
                }
                // BERT closes with [SEP] rather than EOS.
                if options.add_special {
                    out.extend(vocab.sep_id);
                }
            }
        }
        if add_eos {
            out.extend(vocab.eos_id);
        }
        Ok(())
    }

    /// Text for `ids`, leaving out control tokens, like llama.cpp's
    /// `llama_detokenize(remove_special = false, unparse_special = false)`.
    /// Byte sequences that are not UTF-8 become U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        self.decode_with(ids, DecodeOptions::default())
    }

    /// Text for `ids` with explicit options.
    pub fn decode_with(
        &self,
        ids: &[u32],
        options: DecodeOptions,
    ) -> Result<String, TokenizerError> {
        let mut bytes = Vec::new();
        let mut strip_space = self.vocab.add_space_prefix;
        for &id in ids {
            self.check_id(id)?;
            let hidden = self.vocab.attrs[id as usize] & (attr::CONTROL | attr::UNKNOWN) != 0;
            if hidden && !options.render_special {
                strip_space = false;
                continue;
            }
            let mut piece: &[u8] = &self.pieces[id as usize];
            // The space SentencePiece adds before the first word is not part of
            // the text.
            if strip_space && piece.first() == Some(&b' ') {
                piece = &piece[1..];
            }
            strip_space = false;
            bytes.extend_from_slice(piece);
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The text one token stands for (control tokens as their own text), like
    /// llama.cpp's `token_to_piece(special = true)`. A byte token that is not
    /// UTF-8 on its own becomes U+FFFD; see `token_bytes` for the raw bytes.
    pub fn token_piece(&self, id: u32) -> Result<String, TokenizerError> {
        Ok(String::from_utf8_lossy(self.token_bytes(id)?).into_owned())
    }

    /// The bytes one token stands for.
    pub fn token_bytes(&self, id: u32) -> Result<&[u8], TokenizerError> {
        self.check_id(id)?;
        Ok(&self.pieces[id as usize])
    }

    /// The token's text as stored in the vocabulary (`Ġhello`, `▁hello`).
    pub fn token_text(&self, id: u32) -> Result<&str, TokenizerError> {
        self.check_id(id)?;
        Ok(&self.vocab.texts[id as usize])
    }

    pub fn token_kind(&self, id: u32) -> Result<TokenKind, TokenizerError> {
        self.check_id(id)?;
        Ok(self.vocab.kind_of(id))
    }

    /// The id of a token given its vocabulary text.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.vocab.token_to_id.get(text).copied()
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    pub fn vocab_kind(&self) -> VocabKind {
        self.vocab.kind
    }

    /// `tokenizer.ggml.pre`, when the file names one.
    pub fn pre_tokenizer(&self) -> Option<&str> {
        self.vocab.pre_tokenizer_name.as_deref()
    }

    pub fn bos_id(&self) -> Option<u32> {
        self.vocab.bos_id
    }

    pub fn eos_id(&self) -> Option<u32> {
        self.vocab.eos_id
    }

    /// The end-of-turn token (`<|im_end|>`, `<end_of_turn>`), from metadata or
    /// recognised by its text as llama.cpp does.
    pub fn eot_id(&self) -> Option<u32> {
        self.vocab.eot_id
    }

    pub fn unk_id(&self) -> Option<u32> {
        self.vocab.unk_id
    }

    pub fn pad_id(&self) -> Option<u32> {
        self.vocab.pad_id
    }

    /// Every token that ends generation (EOS, EOT and llama.cpp's list of
    /// end-of-generation texts), sorted.
    pub fn eog_ids(&self) -> &[u32] {
        &self.vocab.eog_ids
    }

    pub fn is_eog(&self, id: u32) -> bool {
        self.vocab.eog_ids.binary_search(&id).is_ok()
    }

    /// Whether `EncodeOptions::add_special` adds BOS for this model.
    pub fn adds_bos(&self) -> bool {
        self.vocab.add_bos
    }

    /// Whether `EncodeOptions::add_special` adds EOS for this model.
    pub fn adds_eos(&self) -> bool {
        self.vocab.add_eos
    }

    fn check_id(&self, id: u32) -> Result<(), TokenizerError> {
        if (id as usize) < self.vocab.len() {
            Ok(())
        } else {
            Err(TokenizerError::IdOutOfRange {
                id,
                vocab_size: self.vocab.len(),
            })
        }
    }
}

/// A token's bytes, as llama.cpp's `token_to_piece` with `special = true`.
fn compute_piece(vocab: &Vocab, id: u32) -> Box<[u8]> {
    let text = &vocab.texts[id as usize];
    let a = vocab.attrs[id as usize];
    if a & (attr::UNKNOWN | attr::CONTROL | attr::USER_DEFINED) != 0 {
        return text.as_bytes().into();
    }
    if a & attr::NORMAL != 0 {
        // SentencePiece, WordPiece and Gemma 4 write spaces as `▁`; other BPE
        // vocabularies spell bytes in GPT-2's alphabet.
        let byte_level = match (vocab.kind, &vocab.pre_tokenizer) {
            (VocabKind::BytePairEncoding, Some(rules)) => rules.byte_encode,
            _ => false,
        };
        if !byte_level {
            return text.replace('▁', " ").into_bytes().into();
        }
        let alphabet = ByteLevelAlphabet::get();
        let mut bytes = Vec::with_capacity(text.len());
        for c in text.chars() {
            match alphabet.decode_char(c) {
                Some(byte) => bytes.push(byte),
                // Not a byte-level character: keep it as it is rather
                // than llama.cpp's `[UNK_BYTE_…]` marker.
                None => bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            }
        }
        return bytes.into();
    }
    if a & attr::BYTE != 0 {
        let byte = text
            .get(3..5)
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        return byte.map(|b| vec![b]).unwrap_or_default().into();
    }
    Box::default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzzing::{metadata, strings, tiny_bpe, tiny_spm};

    fn check(tokenizer: &Tokenizer, text: &str, options: EncodeOptions, expected: &[u32]) {
        assert_eq!(
            tokenizer.encode(text, options).unwrap(),
            expected,
            "{text:?}"
        );
    }

    const SPECIAL: EncodeOptions = EncodeOptions {
        add_special: false,
        parse_special: true,
    };

    #[test]
    fn bpe_applies_merges_by_rank_and_splits_digits() {
        let tok = tiny_bpe();
        check(&tok, "ab ab b", EncodeOptions::PLAIN, &[6, 7, 8]);
        check(&tok, "a11", EncodeOptions::PLAIN, &[1, 4, 4]);
        assert_eq!(tok.decode(&[6, 7, 8]).unwrap(), "ab ab b");
    }

    #[test]
    fn bpe_control_text_is_matched_only_with_parse_special() {
        let tok = tiny_bpe();
        check(&tok, "ab<|end|>", SPECIAL, &[6, 0]);
        assert!(
            !tok.encode("ab<|end|>", EncodeOptions::PLAIN)
                .unwrap()
                .contains(&0)
        );
        assert_eq!(
            tok.eot_id(),
            Some(0),
            "<|end|> is recognised as end of turn"
        );
        assert!(tok.is_eog(0));
    }

    #[test]
    fn spm_merges_by_score_and_falls_back_to_bytes() {
        let tok = tiny_spm(false);
        // "▁ab" (score -0.1) wins over "▁a" (-1.5) once "ab" (-0.5) formed.
        check(&tok, " ab", EncodeOptions::PLAIN, &[9]);
        check(&tok, "ab", EncodeOptions::PLAIN, &[8]);
        // "c" is no token: its byte token <0x63> is id 10 + 0x63.
        check(&tok, "ac", EncodeOptions::PLAIN, &[5, 10 + 0x63]);
        // Multi-byte characters fall back byte by byte.
        check(&tok, "é", EncodeOptions::PLAIN, &[10 + 0xC3, 10 + 0xA9]);
        assert_eq!(
            tok.decode(&[5, 10 + 0x63, 10 + 0xC3, 10 + 0xA9]).unwrap(),
            "acé"
        );
    }

    #[test]
    fn spm_space_prefix_follows_the_metadata_and_special_tokens() {
        let tok = tiny_spm(true);
        check(&tok, "ab", EncodeOptions::PLAIN, &[9]);
        check(&tok, "ab<turn>ab", SPECIAL, &[9, 3, 9]);
        assert_eq!(
            tok.decode(&[9]).unwrap(),
            "ab",
            "the added space is removed again"
        );
        // BOS is added by default for SentencePiece models.
        check(&tok, "ab", EncodeOptions::PROMPT, &[1, 9]);
        let tok = tiny_spm(false);
        check(&tok, "ab<turn>ab", SPECIAL, &[8, 3, 8]);
    }

    #[test]
    fn gemma4_merges_raw_text_with_escaped_spaces_and_byte_fallback() {
        let tok = crate::fuzzing::tiny_gemma4();
        check(&tok, "ab ab", EncodeOptions::PLAIN, &[7, 8]);
        // A word of newlines that is a token is taken whole; others merge.
        check(&tok, "a\n\nb", EncodeOptions::PLAIN, &[4, 10, 5]);
        check(&tok, "\n\n\n", EncodeOptions::PLAIN, &[10, 9]);
        // No token for `é`: its two bytes' `<0xNN>` tokens.
        check(&tok, "é", EncodeOptions::PLAIN, &[11 + 0xC3, 11 + 0xA9]);
        // BOS is always added for Gemma 4.
        check(&tok, "ab", EncodeOptions::PROMPT, &[2, 7]);
        assert_eq!(tok.decode(&[7, 8, 11 + 0xC3, 11 + 0xA9]).unwrap(), "ab abé");
    }

    #[test]
    fn wordpiece_lowercases_strips_accents_and_takes_the_longest_pieces() {
        let tok = crate::fuzzing::tiny_wordpiece();
        // "ab" is one word, "," one of its own, "1b" is `▁1` + `b`.
        check(&tok, "AB, 1b", EncodeOptions::PLAIN, &[5, 7, 8, 6]);
        check(&tok, "É", EncodeOptions::PLAIN, &[10]);
        // A word that cannot be covered is [UNK] whole, and CJK characters are words.
        check(&tok, "zz abz", EncodeOptions::PLAIN, &[1, 1]);
        check(&tok, "日本", EncodeOptions::PLAIN, &[11, 1]);
        // [CLS] ... [SEP] with add_special.
        check(&tok, "ab", EncodeOptions::PROMPT, &[2, 5, 3]);
        assert_eq!(tok.decode(&[5, 7]).unwrap(), " ab ,");
    }

    #[test]
    fn qwen_pre_tokenizers_split_every_digit() {
        let tok = crate::fuzzing::tiny_bpe_with_pre_tokenizer("qwen2");
        check(&tok, "a11", EncodeOptions::PLAIN, &[1, 4, 4]);
        check(&tok, "ab ab b", EncodeOptions::PLAIN, &[6, 7, 8]);
    }

    /// The tiny BPE vocabulary (`<|end|>` is control) with extra metadata and tokens.
    fn tiny_bpe_with(extra: Vec<(&str, Value)>, extra_tokens: &[&str]) -> Tokenizer {
        let mut tokens = vec!["<|end|>", "a", "b", "Ġ", "1", "Ċ", "ab", "Ġab", "Ġb"];
        tokens.extend(extra_tokens);
        let mut types = vec![Value::I32(3)];
        types.extend(std::iter::repeat_n(Value::I32(1), tokens.len() - 1));
        let mut entries = vec![
            ("tokenizer.ggml.model", Value::String("gpt2".into())),
            ("tokenizer.ggml.pre", Value::String("smollm".into())),
            ("tokenizer.ggml.tokens", strings(&tokens)),
            ("tokenizer.ggml.token_type", Value::Array(types)),
            ("tokenizer.ggml.merges", strings(&["a b", "Ġ ab", "Ġ b"])),
        ];
        entries.extend(extra);
        Tokenizer::from_metadata(&metadata(entries)).unwrap()
    }

    #[test]
    fn phi3_special_tokens_eat_the_whitespace_after_them() {
        let plain = tiny_bpe_with(vec![], &[]);
        check(&plain, "ab<|end|>  ab", SPECIAL, &[6, 0, 3, 7]);
        // llama.cpp sets RSTRIP on Phi-3's special tokens, by model name.
        let phi3 = tiny_bpe_with(
            vec![("general.name", Value::String("Phi-3 mini".into()))],
            &[],
        );
        check(&phi3, "ab<|end|> \n ab", SPECIAL, &[6, 0, 6]);
        check(
            &phi3,
            "ab<|end|>  ab",
            EncodeOptions::PLAIN,
            &plain.encode("ab<|end|>  ab", EncodeOptions::PLAIN).unwrap(),
        );
    }

    #[test]
    fn llama_cpp_end_of_generation_workarounds_apply() {
        // Next to Gemma 4's `<|tool_response>`, `</s>` is an ordinary token.
        let tok = tiny_bpe_with(vec![], &["<|tool_response>", "</s>"]);
        assert!(tok.is_eog(9) && !tok.is_eog(10));
        assert_eq!(tok.token_kind(10).unwrap(), TokenKind::Normal);
        // FIM padding found by its text is a control token that ends generation.
        let tok = tiny_bpe_with(vec![], &["<|fim_pad|>"]);
        assert!(tok.is_eog(9));
        assert_eq!(tok.token_kind(9).unwrap(), TokenKind::Control);
    }

    #[test]
    fn out_of_range_ids_are_errors() {
        let tok = tiny_bpe();
        assert!(matches!(
            tok.decode(&[99]),
            Err(TokenizerError::IdOutOfRange {
                id: 99,
                vocab_size: 9
            })
        ));
        assert!(tok.token_piece(99).is_err());
    }

    #[test]
    fn unknown_models_and_pre_tokenizers_are_rejected() {
        let md = metadata(vec![
            ("tokenizer.ggml.model", Value::String("gpt2".into())),
            ("tokenizer.ggml.pre", Value::String("no-such-pre".into())),
            ("tokenizer.ggml.tokens", strings(&["a"])),
            ("tokenizer.ggml.merges", strings(&[])),
        ]);
        let err = Tokenizer::from_metadata(&md).unwrap_err();
        assert!(
            matches!(err, TokenizerError::UnsupportedPreTokenizer(ref name) if name == "no-such-pre")
        );
        assert!(err.to_string().contains("`no-such-pre`"), "{err}");
        let md = metadata(vec![("tokenizer.ggml.model", Value::String("t5".into()))]);
        assert!(matches!(
            Tokenizer::from_metadata(&md),
            Err(TokenizerError::UnsupportedModel(_))
        ));
    }

    /// The metadata of [`tiny_spm`] with `key` replaced by `value`.
    fn spm_metadata_with(key: &str, value: Value) -> HashMap<String, Value> {
        let mut md = metadata(vec![
            ("tokenizer.ggml.model", Value::String("llama".into())),
            (
                "tokenizer.ggml.tokens",
                strings(&["<unk>", "<s>", "</s>", "a"]),
            ),
            (
                "tokenizer.ggml.scores",
                Value::Array(vec![Value::F32(0.0); 4]),
            ),
            (
                "tokenizer.ggml.token_type",
                Value::Array(vec![
                    Value::I32(2),
                    Value::I32(3),
                    Value::I32(3),
                    Value::I32(1),
                ]),
            ),
        ]);
        md.insert(key.to_owned(), value);
        md
    }

    fn build_error(md: &HashMap<String, Value>) -> String {
        match Tokenizer::from_metadata(md) {
            Ok(_) => panic!("built a tokenizer from {md:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn hostile_vocabulary_metadata_is_a_clear_error() {
        // Regression: an empty vocabulary built a tokenizer that failed on every text.
        let error = build_error(&spm_metadata_with("tokenizer.ggml.tokens", strings(&[])));
        assert!(
            error.contains("`tokenizer.ggml.tokens`") && error.contains("0 tokens"),
            "{error}"
        );
        // Regression: per-token arrays longer than the vocabulary were cut silently.
        let error = build_error(&spm_metadata_with(
            "tokenizer.ggml.scores",
            Value::Array(vec![Value::F32(0.0); 5]),
        ));
        assert!(
            error.contains("`tokenizer.ggml.scores` has 5 entries"),
            "{error}"
        );
        let error = build_error(&spm_metadata_with(
            "tokenizer.ggml.token_type",
            Value::Array(vec![Value::I32(1); 3]),
        ));
        assert!(
            error.contains("`tokenizer.ggml.token_type` has 3 entries"),
            "{error}"
        );
        // Regression: a NaN score made the merge order inconsistent.
        let error = build_error(&spm_metadata_with(
            "tokenizer.ggml.scores",
            Value::Array(vec![
                Value::F32(0.0),
                Value::F32(0.0),
                Value::F32(f32::NAN),
                Value::F32(0.0),
            ]),
        ));
        assert!(error.contains("token 2 is NaN"), "{error}");
        // Regression: a merge with no separator became an empty pair, silently.
        for merge in ["ab", "a ", ""] {
            let md = metadata(vec![
                ("tokenizer.ggml.model", Value::String("gpt2".into())),
                ("tokenizer.ggml.pre", Value::String("gpt-2".into())),
                ("tokenizer.ggml.tokens", strings(&["a", "b", "ab"])),
                ("tokenizer.ggml.merges", strings(&["a b", merge])),
            ]);
            let error = build_error(&md);
            assert!(error.contains("merge 1"), "{merge:?}: {error}");
        }
        // Wrong element types name the key.
        let error = build_error(&spm_metadata_with(
            "tokenizer.ggml.tokens",
            Value::Array(vec![Value::U8(1)]),
        ));
        assert!(error.contains("`tokenizer.ggml.tokens`"), "{error}");
    }

    #[test]
    fn merges_of_texts_outside_the_vocabulary_still_take_part() {
        // llama.cpp works on the merge strings, and real files list merges whose halves
        // or results are not tokens: they are accepted, and a result that is no token
        // falls back to its bytes' tokens.
        let md = metadata(vec![
            ("tokenizer.ggml.model", Value::String("gpt2".into())),
            ("tokenizer.ggml.pre", Value::String("gpt-2".into())),
            ("tokenizer.ggml.tokens", strings(&["a", "b", "c", "abc"])),
            ("tokenizer.ggml.merges", strings(&["a b", "ab c", "x y"])),
        ]);
        let tok = Tokenizer::from_metadata(&md).unwrap();
        check(&tok, "abc", EncodeOptions::PLAIN, &[3]);
        check(&tok, "ab", EncodeOptions::PLAIN, &[0, 1]);
    }

    #[test]
    fn encoding_and_decoding_odd_text_never_fails() {
        let texts = [
            "",
            " ",
            "\u{0}",
            "<|end|><|end|",
            "<turn><turn>",
            "\u{FFFD}\u{10FFFF}\u{200B}",
            "   \n\n\t 1234567890 ''s 'LL",
            "ééé\r\n<0x41>▁▁",
        ];
        let mut tokenizers = vec![tiny_bpe(), tiny_spm(true), tiny_spm(false)];
        for pre in [
            "llama3",
            "gpt-2",
            "qwen2",
            "qwen35",
            "deepseek-llm",
            "deepseek-coder",
            "falcon",
            "default",
        ] {
            tokenizers.push(crate::fuzzing::tiny_bpe_with_pre_tokenizer(pre));
        }
        tokenizers.push(crate::fuzzing::tiny_gemma4());
        tokenizers.push(crate::fuzzing::tiny_wordpiece());
        for tok in &tokenizers {
            for text in texts {
                for options in [EncodeOptions::PLAIN, EncodeOptions::PROMPT, SPECIAL] {
                    let ids = tok.encode(text, options).unwrap();
                    tok.decode(&ids).unwrap();
                }
            }
        }
    }
}
