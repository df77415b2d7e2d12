//! Tokenizers built from GGUF metadata that give exactly the ids llama.cpp gives
//! for the same file, plus chat-template rendering.
//!
//! Three vocabulary kinds are supported: BPE (`tokenizer.ggml.model = gpt2`, with the
//! pre-tokenizer chosen by `tokenizer.ggml.pre`, and Gemma 4's `gemma4`),
//! SentencePiece-style merging by score (`llama`, e.g. Gemma 3) and WordPiece (`bert`).
//! The algorithms follow llama.cpp's `llama-vocab.cpp` and `unicode.cpp` step by step,
//! including how special tokens are cut out of the text first;
//! `tests/llamacpp_vocab_suite.rs` runs llama.cpp's own tokenizer test suite and
//! `tests/reference.rs` checks the ids against llama.cpp's on real models.
//!
//! *Architecture invariant:* this crate reads no files; callers pass an already
//! parsed `gguf_file::Content`.

mod bpe;
mod chat_template;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod pretokenize;
mod report;
pub mod sandbox;
mod special;
mod spm;
mod stl_regex;
mod tokenizer;
mod unicode;
mod vocab;
mod wordpiece;

pub use chat_template::{ChatTemplate, ChatTemplateError};
pub use error::TokenizerError;
pub use report::{TokenEntry, TokenizeReport};
pub use tokenizer::{DecodeOptions, EncodeOptions, Tokenizer};
pub use vocab::{TokenKind, VocabKind};
