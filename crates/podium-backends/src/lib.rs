//! Model engines behind the `Backend` trait, and the factory that opens one
//! from a model spec (`mock:NAME`, `openai-compatible:URL#MODEL`, `openai:MODEL`,
//! `together:MODEL`, `anthropic:MODEL`, …).

mod anthropic;
mod h1;
mod http;
mod local;
mod mock;
mod openai;
mod reasoning;
pub mod speed;
mod sse;
mod timing;

use std::sync::Arc;

use podium_core::{Backend, ModelSpec, ResponseCache};

pub use anthropic::AnthropicBackend;
pub use http::{EndpointOptions, HttpClient};
pub use local::{local_model_path, open_local};
pub use mock::{MockBackend, MockOptions};
pub use openai::{NO_PROMPT_LOGPROBS, OpenAiApi, OpenAiBackend};

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{0}")]
    Spec(#[from] podium_core::ModelSpecError),
    #[error("model kind `{kind}` is not available in this build yet (known kinds: {known})")]
    NotYet { kind: String, known: String },
    #[error("`{spec}`: {message}")]
    Invalid { spec: String, message: String },
}

/// Open the backend a model spec names.
pub fn open(spec: &str) -> Result<Arc<dyn Backend>, OpenError> {
    open_with_cache(spec, None)
}

/// Open the backend a model spec names; remote backends answer repeated
/// requests from `cache` (local and mock backends ignore it).
pub fn open_with_cache(
    spec: &str,
    cache: Option<Arc<dyn ResponseCache>>,
) -> Result<Arc<dyn Backend>, OpenError> {
    let parsed = ModelSpec::parse(spec).map_err(|err| match err {
        // The spec may hold a pasted key: never echo it.
        podium_core::ModelSpecError::UnknownKind { kind, spec } => {
            OpenError::Spec(podium_core::ModelSpecError::UnknownKind {
                kind,
                spec: http::redact_spec(&spec),
            })
        }
        other => OpenError::Spec(other),
    })?;
    match parsed.kind.as_str() {
        "mock" => Ok(Arc::new(MockBackend::from_spec(spec, &parsed.rest)?)),
        "openai-compatible" | "openai" | "together" => {
            Ok(Arc::new(OpenAiBackend::open(spec, cache)?))
        }
        "anthropic" => Ok(Arc::new(AnthropicBackend::open(spec, cache)?)),
        "local" | "gguf" => Ok(Arc::new(local::open_local(
            &parsed.kind,
            &parsed.rest,
            spec,
        )?)),
        kind => Err(OpenError::NotYet {
            kind: kind.to_string(),
            known: "mock, local, gguf, openai-compatible, openai, together, anthropic".to_string(),
        }),
    }
}
