//! Small fixed tokenizers for the fuzz harnesses of `podium-fuzz` and for this crate's
//! tests; not a stable API.

use std::collections::HashMap;

use candle_core::quantized::gguf_file::Value;

use crate::Tokenizer;

/// An array of strings, as GGUF metadata holds token texts.
pub fn strings(items: &[&str]) -> Value {
    Value::Array(
        items
            .iter()
            .map(|s| Value::String((*s).to_owned()))
            .collect(),
    )
}

/// GGUF metadata from key-value pairs.
pub fn metadata(entries: Vec<(&str, Value)>) -> HashMap<String, Value> {
    entries
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

/// A tiny GPT-2 style vocabulary: every byte-level character of "a b1\n",
/// a few merges and one control token.
pub fn tiny_bpe() -> Tokenizer {
    tiny_bpe_with_pre_tokenizer("smollm")
}

/// [`tiny_bpe`] with the pre-tokenizer `pre` (a `tokenizer.ggml.pre` name).
pub fn tiny_bpe_with_pre_tokenizer(pre: &str) -> Tokenizer {
    let tokens = ["<|end|>", "a", "b", "Ġ", "1", "Ċ", "ab", "Ġab", "Ġb"];
    let types = [3, 1, 1, 1, 1, 1, 1, 1, 1];
    Tokenizer::from_metadata(&metadata(vec![
        ("tokenizer.ggml.model", Value::String("gpt2".into())),
        ("tokenizer.ggml.pre", Value::String(pre.into())),
        ("tokenizer.ggml.tokens", strings(&tokens)),
        (
            "tokenizer.ggml.token_type",
            Value::Array(types.iter().map(|&t| Value::I32(t)).collect()),
        ),
        ("tokenizer.ggml.merges", strings(&["a b", "Ġ ab", "Ġ b"])),
        ("tokenizer.ggml.bos_token_id", Value::U32(0)),
        ("tokenizer.ggml.eos_token_id", Value::U32(0)),
    ]))
    .expect("the fixed vocabulary is valid")
}

/// A tiny SentencePiece vocabulary with scores and byte fallback.
pub fn tiny_spm(add_space_prefix: bool) -> Tokenizer {
    let mut tokens = vec![
        "<unk>", "<bos>", "<eos>", "<turn>", "▁", "a", "b", "▁a", "ab", "▁ab",
    ];
    let mut scores = vec![0.0, 0.0, 0.0, 0.0, -1.0, -2.0, -2.0, -1.5, -0.5, -0.1];
    let mut types = vec![2, 3, 3, 3, 1, 1, 1, 1, 1, 1];
    let bytes: Vec<String> = (0..=255u8).map(|b| format!("<0x{b:02X}>")).collect();
    tokens.extend(bytes.iter().map(String::as_str));
    scores.extend(std::iter::repeat_n(0.0, 256));
    types.extend(std::iter::repeat_n(6, 256));
    Tokenizer::from_metadata(&metadata(vec![
        ("tokenizer.ggml.model", Value::String("llama".into())),
        ("tokenizer.ggml.tokens", strings(&tokens)),
        (
            "tokenizer.ggml.scores",
            Value::Array(scores.into_iter().map(Value::F32).collect()),
        ),
        (
            "tokenizer.ggml.token_type",
            Value::Array(types.into_iter().map(Value::I32).collect()),
        ),
        (
            "tokenizer.ggml.add_space_prefix",
            Value::Bool(add_space_prefix),
        ),
    ]))
    .expect("the fixed vocabulary is valid")
}

/// A tiny Gemma 4 style vocabulary (`tokenizer.ggml.model = gemma4`): raw UTF-8 merges
/// with `▁` for spaces, newline tokens and `<0xNN>` byte fallback.
pub fn tiny_gemma4() -> Tokenizer {
    let mut tokens = vec![
        "<pad>", "<eos>", "<bos>", "<unk>", "a", "b", "▁", "ab", "▁ab", "\n", "\n\n",
    ];
    let mut types = vec![3, 3, 3, 2, 1, 1, 1, 1, 1, 1, 1];
    let bytes: Vec<String> = (0..=255u8).map(|b| format!("<0x{b:02X}>")).collect();
    tokens.extend(bytes.iter().map(String::as_str));
    types.extend(std::iter::repeat_n(6, 256));
    Tokenizer::from_metadata(&metadata(vec![
        ("tokenizer.ggml.model", Value::String("gemma4".into())),
        ("tokenizer.ggml.tokens", strings(&tokens)),
        (
            "tokenizer.ggml.token_type",
            Value::Array(types.into_iter().map(Value::I32).collect()),
        ),
        ("tokenizer.ggml.merges", strings(&["a b", "▁ ab", "\n \n"])),
        ("tokenizer.ggml.bos_token_id", Value::U32(2)),
        ("tokenizer.ggml.eos_token_id", Value::U32(1)),
        ("tokenizer.ggml.unknown_token_id", Value::U32(3)),
    ]))
    .expect("the fixed vocabulary is valid")
}

/// A tiny BERT WordPiece vocabulary (`tokenizer.ggml.model = bert`), with `▁` marking
/// word starts as llama.cpp's GGUF conversion writes them.
pub fn tiny_wordpiece() -> Tokenizer {
    let tokens = [
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "▁a", "▁ab", "b", "▁,", "▁1", "1", "▁e", "▁日",
    ];
    let types = [3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1];
    Tokenizer::from_metadata(&metadata(vec![
        ("tokenizer.ggml.model", Value::String("bert".into())),
        ("tokenizer.ggml.pre", Value::String("bert-bge".into())),
        ("tokenizer.ggml.tokens", strings(&tokens)),
        (
            "tokenizer.ggml.token_type",
            Value::Array(types.iter().map(|&t| Value::I32(t)).collect()),
        ),
        ("tokenizer.ggml.padding_token_id", Value::U32(0)),
        ("tokenizer.ggml.unknown_token_id", Value::U32(1)),
        ("tokenizer.ggml.bos_token_id", Value::U32(2)),
        ("tokenizer.ggml.seperator_token_id", Value::U32(3)),
    ]))
    .expect("the fixed vocabulary is valid")
}
