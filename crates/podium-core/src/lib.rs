//! Domain types shared by every Podium crate: the requests the evaluation engine
//! sends to a model, their results, and the `Backend` trait that model engines
//! implement, and the hashes Podium records. This crate does no IO of its own
//! (a hash of a reader reads what the caller opened).

mod backend;
mod digest;
mod fences;
mod model_spec;
mod request;
mod stop;

pub use backend::{
    Backend, BackendError, ModelIdentity, ResponseCache, Shared, SharedLimits, SlotHold,
};
pub use digest::{cache_key, hex, sha256_hex, sha256_hex_reader};
pub use fences::lines_outside_fences;
pub use model_spec::{KNOWN_MODEL_KINDS, ModelKind, ModelSpec, ModelSpecError};
pub use request::{
    ChatMessage, GenerateRequest, GenerateResult, LoglikelihoodRequest, LoglikelihoodResult,
    RequestTiming, RollingRequest, RollingResult, TokenCountSource,
};
pub use stop::{first_stop, shown_len};

/// Podium's version, recorded in every run manifest.
pub const PODIUM_VERSION: &str = env!("CARGO_PKG_VERSION");
