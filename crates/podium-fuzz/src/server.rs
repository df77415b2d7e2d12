//! Fuzz targets of `podium-server`.

use podium_server::engine::Prompt;
use podium_server::request::{self, Limits, ModelShape};

use crate::Target;

pub const TARGETS: &[Target] = &[Target {
    name: "serve_model_request",
    run: serve_model_request,
}];

/// A small fake model: validation needs only its context and vocabulary sizes.
const MODEL: ModelShape = ModelShape {
    context: 64,
    vocab_size: 1000,
};

/// `serve-model`'s request decoder and validation, on a completions body and on a
/// chat body: every refusal is a client error (4xx) and every accepted request asks
/// for no more than the fake model's context holds. A text prompt counts one token per
/// character here (the real count comes from the model's tokenizer).
pub fn serve_model_request(data: &[u8]) {
    let limits = Limits::default();
    match request::decode_completion(data, &limits, &MODEL) {
        Ok(completion) => {
            let n_tokens = match &completion.prompt {
                Prompt::Text(text) => text.chars().count(),
                Prompt::Ids(ids) => {
                    assert!(ids.iter().all(|&id| (id as usize) < MODEL.vocab_size));
                    ids.len()
                }
            };
            assert!(completion.sampling.stops.len() <= limits.max_stop_strings);
            if completion.echo {
                assert!(completion.sampling.max_tokens.unwrap_or(0) <= 1);
                let _ = request::check_prompt_tokens(n_tokens, &MODEL);
            } else {
                check_budget(&completion.sampling, n_tokens);
            }
        }
        Err(error) => assert!(error.status().is_client_error(), "{error}"),
    }
    match request::decode_chat(data, &limits) {
        Ok(chat) => {
            assert!(!chat.messages.is_empty() && chat.messages.len() <= limits.max_messages);
            let n_tokens: usize = chat
                .messages
                .iter()
                .map(|m| m.content.chars().count())
                .sum();
            check_budget(&chat.sampling, n_tokens);
        }
        Err(error) => assert!(error.status().is_client_error(), "{error}"),
    }
}

fn check_budget(sampling: &request::Sampling, n_tokens: usize) {
    match sampling.params(n_tokens, &MODEL) {
        Ok(params) => assert!(n_tokens >= 1 && n_tokens + params.max_tokens <= MODEL.context),
        Err(error) => assert!(error.status().is_client_error(), "{error}"),
    }
}
