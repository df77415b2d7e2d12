//! Podium's local CPU inference engine: loads GGUF models (llama and gemma3 families)
//! with candle's quantized tensors and runs our own forward pass over them.
//!
//! The engine works on token ids; text comes in through a [`TextTokenizer`]. The model
//! runs on its own thread, fed by a channel; [`LocalBackend`] implements
//! [`podium_core::Backend`] by sending jobs there and awaiting the replies.
//!
//! Architecture invariant: nothing here blocks an async runtime's threads; every tensor
//! operation happens on the model thread.

mod activation;
mod backend;
mod config;
mod engine;
mod error;
mod gguf_tokenizer;
mod model;
mod sampling;
mod threads;
mod tokenizer;

#[cfg(test)]
mod tests;

pub use backend::{LocalBackend, LocalOptions, StreamEvent};
pub use config::{Architecture, ModelConfig, SUPPORTED_ARCHITECTURES};
pub use engine::{FinishReason, SequenceScore, SpeedReport};
pub use error::LocalError;
pub use gguf_tokenizer::GgufTokenizer;
pub use model::WeightFormat;
pub use sampling::SamplingParams;
pub use threads::set_thread_count;
pub use tokenizer::{TextTokenizer, TokenizerError, encode_pair};
