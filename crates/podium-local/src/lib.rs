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
mod gguf;
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
pub use model::{WeightFormat, read_gguf_header};
pub use sampling::SamplingParams;
pub use threads::set_thread_count;
pub use tokenizer::{TextTokenizer, TokenizerError, encode_pair};

/// Entry points for the fuzz harnesses of `podium-fuzz`; not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    use std::path::Path;

    use crate::error::LocalError;

    /// Everything loading does with a GGUF file before reading its weights, on `bytes`
    /// as the whole file: the header, the model configuration and tensor shapes, and the
    /// tokenizer and chat template (then used on a short text). Returns the first error.
    pub fn check_header(bytes: &[u8]) -> Result<(), LocalError> {
        let path = Path::new("fuzz-input.gguf");
        let content = crate::model::read_content(&mut &bytes[..], bytes.len() as u64, path)?;
        // Both halves run whatever the other says, so that each is exercised.
        let model = crate::model::inspect(&content, path).map(|_| ());
        let tokenizer = crate::GgufTokenizer::from_gguf(&content).and_then(|tokenizer| {
            use crate::TextTokenizer;
            let ids = tokenizer
                .encode("Hello, world! <|im_start|> 123 \u{e9}\n", true)
                .map_err(|e| LocalError::Tokenizer(e.to_string()))?;
            tokenizer
                .decode(&ids)
                .map_err(|e| LocalError::Tokenizer(e.to_string()))?;
            Ok(())
        });
        model.and(tokenizer)
    }
}
