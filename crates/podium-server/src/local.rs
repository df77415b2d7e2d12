//! A local GGUF model (podium-local's [`LocalModel`]) behind the blocking [`Engine`]
//! interface that `serve-model` serves. The worker's one model thread calls the model
//! directly: there is no second thread or queue behind this adapter.

use std::ops::ControlFlow;

use podium_core::{ChatMessage, GenerateRequest};
use podium_local::LocalModel;

use crate::engine::{
    Engine, EngineError, FinishReason, GenerateOutcome, GenerateParams, Prompt, PromptScores,
    TokenLogprob, TokenizerInfo,
};

/// The local engine behind `serve-model`'s blocking `Engine` interface.
pub struct LocalEngine {
    model: LocalModel,
    name: String,
    vocab_size: usize,
}

impl LocalEngine {
    /// Serve `model` under `name`.
    pub fn new(model: LocalModel, name: String) -> LocalEngine {
        LocalEngine {
            vocab_size: tokenizer_vocab_size(model.tokenizer().as_ref()),
            model,
            name,
        }
    }
}

/// How many ids the tokenizer knows: ids run from 0 without gaps, so the first id it
/// has no text for (found by bisection) is the size.
fn tokenizer_vocab_size(tokenizer: &dyn podium_local::TextTokenizer) -> usize {
    let (mut known, mut unknown) = (0_u64, 1_u64 << 32);
    if tokenizer.token_text(0).is_none() {
        return 0;
    }
    while unknown - known > 1 {
        let middle = known + (unknown - known) / 2;
        match u32::try_from(middle)
            .ok()
            .and_then(|id| tokenizer.token_text(id))
        {
            Some(_) => known = middle,
            None => unknown = middle,
        }
    }
    usize::try_from(unknown).unwrap_or(usize::MAX)
}

impl Engine for LocalEngine {
    fn model_id(&self) -> String {
        self.name.clone()
    }

    fn chat_prompt(&self, messages: &[ChatMessage]) -> Result<String, EngineError> {
        self.model
            .chat_prompt(messages)
            .map_err(EngineError::invalid)
    }

    fn generate(
        &self,
        prompt: &str,
        params: &GenerateParams,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<GenerateOutcome, EngineError> {
        let request = GenerateRequest {
            messages: None,
            context: prompt.to_string(),
            until: Vec::new(),
            max_tokens: params.max_tokens,
            temperature: params.temperature,
            top_p: params.top_p,
            do_sample: params.temperature > 0.0,
            seed: params.seed,
        };
        let mut stopped = false;
        let result = self
            .model
            .generate(&request, |text| {
                if on_text(text) {
                    ControlFlow::Continue(())
                } else {
                    stopped = true;
                    ControlFlow::Break(())
                }
            })
            .map_err(EngineError::failed)?;
        let completion_tokens = result.n_output_tokens.unwrap_or(0);
        Ok(GenerateOutcome {
            prompt_tokens: result.n_input_tokens.unwrap_or(0),
            completion_tokens,
            finish_reason: if !stopped && completion_tokens >= params.max_tokens {
                FinishReason::Length
            } else {
                FinishReason::Stop
            },
        })
    }

    fn prompt_logprobs(&self, prompt: &Prompt) -> Result<PromptScores, EngineError> {
        self.prompt_logprobs_batch(std::slice::from_ref(prompt))
            .pop()
            .unwrap_or_else(|| Err(EngineError::failed("no score")))
    }

    /// Every prompt of the batch goes to the model at once, which packs them into
    /// shared forward passes.
    fn prompt_logprobs_batch(&self, prompts: &[Prompt]) -> Vec<Result<PromptScores, EngineError>> {
        let tokenizer = self.model.tokenizer();
        let ids: Vec<Result<Vec<u32>, EngineError>> = prompts
            .iter()
            .map(|prompt| match prompt {
                Prompt::Text(text) => tokenizer.encode(text, true).map_err(EngineError::invalid),
                Prompt::Ids(ids) if ids.is_empty() => Err(EngineError::invalid("empty prompt")),
                Prompt::Ids(ids) => Ok(ids.clone()),
            })
            .collect();
        // Each prompt is its first token as context and the rest as the continuation,
        // plus one placeholder target that makes the engine report the greedy next token.
        let mut items = Vec::new();
        for ids in ids.iter().flatten() {
            if let Some((first, rest)) = ids.split_first() {
                let mut targets = rest.to_vec();
                targets.push(0);
                items.push((vec![*first], vec![targets]));
            }
        }
        let mut scores = self.model.score_token_batch(&items).into_iter();
        ids.into_iter()
            .map(|ids| {
                let ids = ids?;
                if ids.is_empty() {
                    return Err(EngineError::invalid("empty prompt"));
                }
                let score = scores
                    .next()
                    .ok_or(EngineError::failed("no score"))?
                    .map_err(EngineError::failed)?
                    .pop()
                    .ok_or(EngineError::failed("no score"))?;
                prompt_scores(tokenizer.as_ref(), &ids, &score)
            })
            .collect()
    }

    fn tokenize(&self, text: &str, add_special: bool) -> Result<Vec<u32>, EngineError> {
        self.model
            .tokenizer()
            .encode(text, add_special)
            .map_err(EngineError::invalid)
    }

    fn detokenize(&self, ids: &[u32]) -> Result<String, EngineError> {
        self.model
            .tokenizer()
            .decode(ids)
            .map_err(EngineError::invalid)
    }

    fn tokenizer_info(&self) -> TokenizerInfo {
        let tokenizer = self.model.tokenizer();
        let text = |id: Option<u32>| id.and_then(|id| tokenizer.token_text(id));
        TokenizerInfo {
            bos_token: text(tokenizer.bos_id()),
            eos_token: text(tokenizer.eos_id()),
            pad_token: None,
            chat_template: tokenizer.chat_template_source(),
            max_model_len: self.model.max_context(),
        }
    }

    fn vocab_size(&self) -> usize {
        self.vocab_size
    }
}

/// Per-token log-probs, top alternatives and offsets of a prompt from its engine score
/// (the first token has none; the score's extra last position is the greedy next token).
fn prompt_scores(
    tokenizer: &dyn podium_local::TextTokenizer,
    ids: &[u32],
    score: &podium_local::SequenceScore,
) -> Result<PromptScores, EngineError> {
    let piece = |id: u32| tokenizer.decode(&[id]).unwrap_or_default();
    let mut offset = 0;
    let mut tokens = Vec::with_capacity(ids.len());
    for (i, &id) in ids.iter().enumerate() {
        let text = piece(id);
        let (logprob, top) = if i == 0 {
            (None, None)
        } else {
            (
                score.token_logprobs.get(i - 1).copied(),
                score
                    .top_token_ids
                    .get(i - 1)
                    .zip(score.top_logprobs.get(i - 1))
                    .map(|(&t, &lp)| (piece(t), lp)),
            )
        };
        tokens.push(TokenLogprob {
            token: text.clone(),
            logprob,
            top,
            offset,
        });
        offset += text.len();
    }
    let last = ids
        .len()
        .checked_sub(1)
        .ok_or(EngineError::invalid("empty prompt"))?;
    let next_id = *score
        .top_token_ids
        .get(last)
        .ok_or(EngineError::failed("no next token"))?;
    let next_lp = score.top_logprobs.get(last).copied();
    let next = TokenLogprob {
        token: piece(next_id),
        logprob: next_lp,
        top: next_lp.map(|lp| (piece(next_id), lp)),
        offset,
    };
    Ok(PromptScores { tokens, next })
}
