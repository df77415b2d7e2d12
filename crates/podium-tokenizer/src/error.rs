//! The errors this crate returns.

/// Why a tokenizer could not be built from GGUF metadata, or a call failed.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("GGUF metadata has no `{0}`")]
    MissingKey(&'static str),
    #[error("GGUF metadata `{key}` is not {expected}")]
    WrongType {
        key: &'static str,
        expected: &'static str,
    },
    #[error("GGUF metadata `{key}` has {got} entries but the vocabulary has {expected} tokens")]
    LengthMismatch {
        key: &'static str,
        got: usize,
        expected: usize,
    },
    #[error(
        "unsupported tokenizer model `{0}` in `tokenizer.ggml.model` (Podium supports `gpt2` byte-level BPE, `llama` SentencePiece, `gemma4` and `bert` WordPiece)"
    )]
    UnsupportedModel(String),
    #[error(
        "unsupported pre-tokenizer `{0}` in `tokenizer.ggml.pre`; Podium knows llama.cpp's GPT-2, StarCoder/SmolLM, Llama 3, Qwen 2, Qwen 3.5, DeepSeek LLM/Coder, Falcon, Gemma 4 and default ones"
    )]
    UnsupportedPreTokenizer(String),
    #[error("duplicate token in vocabulary: {text:?} has ids {first} and {second}")]
    DuplicateToken {
        text: String,
        first: u32,
        second: u32,
    },
    #[error("`{key}` is set but the vocabulary has no `{id_key}`")]
    MissingSpecialToken {
        key: &'static str,
        id_key: &'static str,
    },
    #[error("the vocabulary has no token for byte 0x{0:02X}")]
    MissingByteToken(u8),
    #[error("GGUF metadata `{key}` is invalid: {message}")]
    Invalid { key: &'static str, message: String },
    #[error("token id {id} is out of range (vocabulary size {vocab_size})")]
    IdOutOfRange { id: u32, vocab_size: usize },
}
