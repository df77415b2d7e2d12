//! HTTP serving: `serve-model`'s OpenAI-compatible API over a blocking model
//! [`Engine`], and the local GGUF engine behind it ([`LocalEngine`]).

pub mod engine;
pub mod error;
pub mod local;
pub mod openai_api;
pub mod request;

pub use engine::{
    Engine, EngineError, FinishReason, GenerateOutcome, GenerateParams, Prompt, PromptScores,
    TokenLogprob, TokenizerInfo, Worker,
};
pub use error::ApiError;
pub use local::LocalEngine;
pub use openai_api::{app, app_with_limits, serve};
pub use request::{Limits, ModelShape};
