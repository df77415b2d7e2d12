//! The error type of the local engine: what can go wrong loading a GGUF file or running it.

use std::path::PathBuf;

/// Everything that can fail in `podium-local`.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a GGUF file (magic bytes {magic:02x?}, expected \"GGUF\")")]
    NotGguf { path: PathBuf, magic: Vec<u8> },
    #[error("{path}: corrupt GGUF header: {message}")]
    CorruptHeader { path: PathBuf, message: String },
    #[error(
        "{path}: unsupported architecture `{architecture}` (supported: {supported})",
        supported = crate::config::SUPPORTED_ARCHITECTURES.join(", ")
    )]
    UnsupportedArchitecture { path: PathBuf, architecture: String },
    #[error(
        "{path}: tensor `{tensor}` has unsupported quantization type {type_name} (ggml type {type_id})"
    )]
    UnsupportedQuantization {
        path: PathBuf,
        tensor: String,
        type_name: String,
        type_id: u32,
    },
    #[error("GGUF metadata key `{key}` is missing")]
    MissingMetadata { key: String },
    #[error("GGUF metadata key `{key}` is invalid: {message}")]
    InvalidMetadata { key: String, message: String },
    #[error("GGUF tensor `{name}` is missing")]
    MissingTensor { name: String },
    #[error("GGUF tensor `{name}` has shape {actual:?}, expected {expected:?}")]
    TensorShape {
        name: String,
        actual: Vec<usize>,
        expected: Vec<usize>,
    },
    /// An error about a model file's contents, with the file it is about.
    #[error("{path}: {error}")]
    InFile {
        path: PathBuf,
        error: Box<LocalError>,
    },
    #[error("the model thread panicked: {0}")]
    Panicked(String),
    #[error("GGUF tensor `{name}` is invalid: {message}")]
    InvalidTensor { name: String, message: String },
    #[error("unsupported model feature: {0}")]
    UnsupportedFeature(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("the model thread has stopped")]
    EngineStopped,
    /// A batch-weights name that is none of the three (`LocalOptions::set_batch_weights`).
    #[error("f16, f32 or quantized, got `{0}`")]
    BatchWeights(String),
    #[error("cannot start the model thread: {0}")]
    SpawnThread(#[source] std::io::Error),
    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

impl LocalError {
    /// This error, naming the model file `path` unless it already does.
    pub(crate) fn in_file(self, path: &std::path::Path) -> LocalError {
        match self {
            LocalError::Io { .. }
            | LocalError::NotGguf { .. }
            | LocalError::CorruptHeader { .. }
            | LocalError::UnsupportedArchitecture { .. }
            | LocalError::UnsupportedQuantization { .. }
            | LocalError::InFile { .. } => self,
            other => LocalError::InFile {
                path: path.to_path_buf(),
                error: Box::new(other),
            },
        }
    }
}

pub(crate) type Result<T, E = LocalError> = std::result::Result<T, E>;
