//! The small tokenizer interface the engine needs, and lm-evaluation-harness's rule for
//! splitting a (context, continuation) pair into tokens.

use podium_core::ChatMessage;

/// An error from a tokenizer implementation, kept as its message chain.
pub type TokenizerError = Box<dyn std::error::Error + Send + Sync>;

/// Text <-> token ids for one model. The engine works on ids; anything that can turn
/// text into the model's ids (the GGUF tokenizer, a test stub) plugs in here.
pub trait TextTokenizer: Send + Sync {
    /// Token ids of `text`. `add_special` adds BOS/EOS when the model asks for them
    /// (llama.cpp's `add_special`). Control-token text (`<|im_start|>`) should become the
    /// control token, as a Hugging Face tokenizer does by default.
    fn encode(&self, text: &str, add_special: bool) -> Result<Vec<u32>, TokenizerError>;

    /// Text of `ids`, leaving control tokens out.
    fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError>;

    fn bos_id(&self) -> Option<u32>;

    fn eos_id(&self) -> Option<u32>;

    /// The text one token stands for, control tokens included (`<|im_end|>`); `None`
    /// for an id outside the vocabulary.
    fn token_text(&self, _id: u32) -> Option<String> {
        None
    }

    /// The chat template's Jinja source, when the model has one.
    fn chat_template_source(&self) -> Option<String> {
        None
    }

    /// Every token that ends generation (EOS, end-of-turn, ...).
    fn end_of_generation_ids(&self) -> Vec<u32>;

    /// Renders chat messages with the model's template; `None` when it has none.
    fn apply_chat_template(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Option<Result<String, TokenizerError>> {
        let _ = (messages, add_generation_prompt);
        None
    }

    /// A hash of the chat template, for run manifests.
    fn chat_template_hash(&self) -> Option<String> {
        None
    }
}

/// Token ids of a (context, continuation) pair, split the way lm-evaluation-harness's
/// `_encode_pair` does: trailing whitespace of the context moves to the continuation,
/// the whole text is encoded at once, and the continuation is what follows the
/// context's own encoding. An empty context becomes `[prefix_token]`.
pub fn encode_pair(
    tokenizer: &dyn TextTokenizer,
    context: &str,
    continuation: &str,
    prefix_token: u32,
) -> Result<(Vec<u32>, Vec<u32>), TokenizerError> {
    if context.is_empty() {
        return Ok((vec![prefix_token], tokenizer.encode(continuation, false)?));
    }
    let trimmed = context.trim_end();
    let (context, continuation) = if trimmed.len() < context.len() {
        (
            trimmed.to_string(),
            format!("{}{continuation}", &context[trimmed.len()..]),
        )
    } else {
        (context.to_string(), continuation.to_string())
    };
    let whole = tokenizer.encode(&format!("{context}{continuation}"), true)?;
    let context_ids = tokenizer.encode(&context, true)?;
    let continuation_ids = whole.get(context_ids.len()..).unwrap_or_default().to_vec();
    Ok((context_ids, continuation_ids))
}

#[cfg(test)]
pub(crate) mod testing {
    //! A byte-level tokenizer for tests on random-weight models: id = byte value + 3.

    use super::*;

    pub(crate) const BOS: u32 = 1;
    pub(crate) const EOS: u32 = 2;

    pub(crate) struct ByteTokenizer {
        pub(crate) add_bos: bool,
    }

    impl TextTokenizer for ByteTokenizer {
        fn encode(&self, text: &str, add_special: bool) -> Result<Vec<u32>, TokenizerError> {
            let bos = (add_special && self.add_bos).then_some(BOS);
            Ok(bos
                .into_iter()
                .chain(text.bytes().map(|b| u32::from(b) + 3))
                .collect())
        }

        fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
            let bytes: Vec<u8> = ids
                .iter()
                .filter(|&&id| (3..259).contains(&id))
                .map(|&id| (id - 3) as u8)
                .collect();
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        }

        fn bos_id(&self) -> Option<u32> {
            Some(BOS)
        }

        fn eos_id(&self) -> Option<u32> {
            Some(EOS)
        }

        fn end_of_generation_ids(&self) -> Vec<u32> {
            vec![EOS]
        }
    }

    #[test]
    fn pair_moves_trailing_space_to_the_continuation() {
        let tok = ByteTokenizer { add_bos: true };
        let (ctx, cont) = encode_pair(&tok, "ab ", "c", 0).unwrap();
        assert_eq!(ctx, vec![BOS, 97 + 3, 98 + 3]);
        assert_eq!(cont, vec![32 + 3, 99 + 3]);
        let (ctx, cont) = encode_pair(&tok, "", "c", 7).unwrap();
        assert_eq!((ctx, cont), (vec![7], vec![99 + 3]));
    }
}
