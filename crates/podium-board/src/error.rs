use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    #[error(transparent)]
    Store(#[from] podium_store::StoreError),
    #[error("{path}: {error}")]
    Catalog {
        path: PathBuf,
        #[source]
        error: crate::catalog::CatalogError,
    },
    /// A board option names something the board does not have.
    #[error("{0}")]
    Options(String),
}
