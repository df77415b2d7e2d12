//! The `Backend` trait: what a model engine must do for the evaluation engine.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::request::{
    ChatMessage, GenerateRequest, GenerateResult, LoglikelihoodRequest, LoglikelihoodResult,
    RollingRequest, RollingResult,
};

/// What identifies a model in a run manifest, so a score can be reproduced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelIdentity {
    /// The spec the user gave, e.g. `local:smollm2-135m-instruct`.
    pub spec: String,
    /// A stable fingerprint: a file's sha256, or `endpoint#served-name`.
    pub fingerprint: String,
    /// Hash of the chat template, when the model has one.
    pub chat_template_hash: Option<String>,
}

/// A store of responses keyed by a hash of (endpoint, served model, request
/// body), so that re-running an evaluation does not pay for the same request
/// twice. Failures to read or write are treated as misses: a cache never makes
/// a request fail.
pub trait ResponseCache: Send + Sync {
    fn get(&self, key: &str) -> Option<String>;
    fn put(&self, key: &str, value: &str);
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The backend cannot serve this kind of request at all (e.g. no prompt
    /// log-probs from a chat-only endpoint). The whole run stops.
    #[error("{0}")]
    Unsupported(String),
    /// One request failed (after any retries); it is recorded as failed and
    /// retried on resume.
    #[error("{0}")]
    Request(String),
    /// The backend itself is broken (model failed to load, thread died).
    #[error("{0}")]
    Fatal(String),
}

/// A model engine. Each method takes a batch and answers one result per
/// request, in order; a failed request fails alone.
#[async_trait]
pub trait Backend: Send + Sync {
    fn identity(&self) -> ModelIdentity;

    /// Score each continuation of each request. The inner `Vec` has one
    /// result per continuation, in order.
    async fn loglikelihood(
        &self,
        requests: &[LoglikelihoodRequest],
    ) -> Result<Vec<Result<Vec<LoglikelihoodResult>, BackendError>>, BackendError>;

    async fn loglikelihood_rolling(
        &self,
        requests: &[RollingRequest],
    ) -> Result<Vec<Result<RollingResult, BackendError>>, BackendError>;

    async fn generate_until(
        &self,
        requests: &[GenerateRequest],
    ) -> Result<Vec<Result<GenerateResult, BackendError>>, BackendError>;

    /// Render chat messages with the model's chat template into a prompt.
    /// `add_generation_prompt` appends the assistant turn's opening.
    fn apply_chat_template(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, BackendError> {
        let _ = (messages, add_generation_prompt);
        Err(BackendError::Unsupported(format!(
            "model `{}` has no chat template",
            self.identity().spec
        )))
    }
}
