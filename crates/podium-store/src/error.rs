//! The store's error type.

use std::path::PathBuf;

use thiserror::Error;

/// Why a store operation failed.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("cannot create the directory {path} for the database")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open database {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "database schema version {found} is newer than this Podium supports ({supported}); upgrade Podium"
    )]
    SchemaTooNew { found: i64, supported: i64 },
    #[error("migrating the database to schema version {version} failed")]
    Migration {
        version: i64,
        #[source]
        source: rusqlite::Error,
    },
    /// An SQLite error on an open file database (a full disk, a read-only folder).
    #[error("database {path}")]
    Database {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "run {run_id}, doc {doc_id}: {field} = {value} is above the largest token count a sample may hold ({max})",
        max = crate::store::MAX_STORED_TOKEN_COUNT
    )]
    TokenCount {
        run_id: i64,
        doc_id: u64,
        field: &'static str,
        value: u64,
    },
    #[error("run {0} does not exist")]
    RunNotFound(i64),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}
