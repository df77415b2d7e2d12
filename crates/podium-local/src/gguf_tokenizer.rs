//! The GGUF file's own tokenizer (from `podium-tokenizer`) behind [`TextTokenizer`].

use candle_core::quantized::gguf_file::Content;
use podium_core::ChatMessage;
use podium_tokenizer::{ChatTemplate, EncodeOptions, Tokenizer};
use sha2::{Digest, Sha256};

use crate::error::{LocalError, Result};
use crate::tokenizer::{TextTokenizer, TokenizerError};

/// llama.cpp-exact tokenization and the chat template, both read from GGUF metadata.
#[derive(Debug)]
pub struct GgufTokenizer {
    tokenizer: Tokenizer,
    chat_template: Option<ChatTemplate>,
}

impl GgufTokenizer {
    pub fn from_gguf(content: &Content) -> Result<GgufTokenizer> {
        let tokenizer =
            Tokenizer::from_gguf(content).map_err(|e| LocalError::Tokenizer(e.to_string()))?;
        let chat_template =
            ChatTemplate::from_gguf(content).map_err(|e| LocalError::Tokenizer(e.to_string()))?;
        Ok(GgufTokenizer {
            tokenizer,
            chat_template,
        })
    }

    /// The tokenizer of the GGUF file at `path` (its metadata only; no weights are read).
    pub fn from_file(path: &std::path::Path) -> Result<GgufTokenizer> {
        let gguf = crate::load::GgufFile::open(path)?;
        GgufTokenizer::from_gguf(&gguf.content).map_err(|e| e.in_file(path))
    }

    pub fn inner(&self) -> &Tokenizer {
        &self.tokenizer
    }
}

impl TextTokenizer for GgufTokenizer {
    fn encode(&self, text: &str, add_special: bool) -> Result<Vec<u32>, TokenizerError> {
        // Control-token text is parsed as control tokens, like a Hugging Face tokenizer
        // does by default; rendered chat prompts depend on it.
        let options = EncodeOptions {
            add_special,
            parse_special: true,
        };
        Ok(self.tokenizer.encode(text, options)?)
    }

    fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        Ok(self.tokenizer.decode(ids)?)
    }

    fn bos_id(&self) -> Option<u32> {
        self.tokenizer.bos_id()
    }

    fn eos_id(&self) -> Option<u32> {
        self.tokenizer.eos_id()
    }

    fn token_text(&self, id: u32) -> Option<String> {
        self.tokenizer.token_piece(id).ok()
    }

    fn chat_template_source(&self) -> Option<String> {
        self.chat_template.as_ref().map(|t| t.source().to_string())
    }

    fn end_of_generation_ids(&self) -> Vec<u32> {
        self.tokenizer.eog_ids().to_vec()
    }

    fn apply_chat_template(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Option<Result<String, TokenizerError>> {
        let template = self.chat_template.as_ref()?;
        Some(
            template
                .render(messages, add_generation_prompt)
                .map_err(|e| Box::new(e) as TokenizerError),
        )
    }

    fn chat_template_hash(&self) -> Option<String> {
        let template = self.chat_template.as_ref()?;
        Some(format!(
            "{:x}",
            Sha256::digest(template.source().as_bytes())
        ))
    }
}
