//! Domain types shared by every Podium crate: the requests the evaluation engine
//! sends to a model, their results, and the `Backend` trait that model engines
//! implement. This crate does no IO.

mod backend;
mod model_spec;
mod request;

pub use backend::{Backend, BackendError, ModelIdentity, ResponseCache};
pub use model_spec::{KNOWN_MODEL_KINDS, ModelSpec, ModelSpecError};
pub use request::{
    ChatMessage, GenerateRequest, GenerateResult, LoglikelihoodRequest, LoglikelihoodResult,
    RequestTiming, RollingRequest, RollingResult, TokenCountSource,
};

/// Podium's version, recorded in every run manifest.
pub const PODIUM_VERSION: &str = env!("CARGO_PKG_VERSION");
