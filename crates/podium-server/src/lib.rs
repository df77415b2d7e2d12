//! HTTP serving: `serve-model`'s OpenAI-compatible API over a local model
//! engine. (The leaderboard pages and JSON API will live here too.)

pub mod engine;
pub mod openai_api;

pub use engine::{
    Engine, FinishReason, GenerateOutcome, GenerateParams, Prompt, PromptScores, TokenLogprob,
    TokenizerInfo, Worker,
};
pub use openai_api::{ApiError, app, serve};
