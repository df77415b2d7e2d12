//! Model engines behind the `Backend` trait, and the factory that opens one
//! from a model spec (`mock:NAME`, …).

mod mock;

use std::sync::Arc;

use podium_core::{Backend, ModelSpec};

pub use mock::{MockBackend, MockOptions};

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
    let parsed = ModelSpec::parse(spec)?;
    match parsed.kind.as_str() {
        "mock" => Ok(Arc::new(MockBackend::from_spec(spec, &parsed.rest)?)),
        kind => Err(OpenError::NotYet {
            kind: kind.to_string(),
            known: "mock".to_string(),
        }),
    }
}
