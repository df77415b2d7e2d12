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

/// Limits an endpoint shares with every other process that uses the same
/// database (the `podium worker`s of a fleet), so that a provider's `rpm`,
/// `tpm` and concurrency caps hold for all of them together.
///
/// The calls block (they go to the database); async callers run them on a
/// blocking thread.
pub trait SharedLimits: Send + Sync {
    /// Reserves `cost_s` seconds on the pacing clock `key` and returns how long
    /// to wait before starting: starts are spaced at least their cost apart.
    fn pace(&self, key: &str, cost_s: f64) -> Result<std::time::Duration, String>;
    /// Moves the clock `key` by `delta_s` (a request's real cost known).
    fn pace_adjust(&self, key: &str, delta_s: f64);
    /// Takes one of the `cap` slots of `key` for at most `hold`, or `None`
    /// when all are taken.
    fn try_slot(
        &self,
        key: &str,
        cap: usize,
        hold: std::time::Duration,
    ) -> Result<Option<SlotHold>, String>;
    /// Gives back a slot.
    fn release_slot(&self, key: &str, slot: &SlotHold);
}

/// A slot taken by [`SharedLimits::try_slot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotHold {
    pub slot: u64,
    /// Who holds it (unique per hold), so a release frees only this hold.
    pub holder: String,
}

/// What the backends of one process share: the response cache and the
/// limits shared with other processes.
#[derive(Clone, Default)]
pub struct Shared {
    pub cache: Option<std::sync::Arc<dyn ResponseCache>>,
    pub limits: Option<std::sync::Arc<dyn SharedLimits>>,
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
