//! HTTP serving: `serve-model`'s OpenAI-compatible API over a local model
//! engine. (The leaderboard pages and JSON API will live here too.)

pub mod engine;
pub mod error;
pub mod openai_api;
pub mod request;

pub use engine::{
    Engine, FinishReason, GenerateOutcome, GenerateParams, Prompt, PromptScores, TokenLogprob,
    TokenizerInfo, Worker,
};
pub use error::ApiError;
pub use openai_api::{app, app_with_limits, serve};
pub use request::{Limits, ModelShape};
