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
    /// A worker's lease on a job lapsed and was taken over, or the job was
    /// cancelled: the worker must drop the job.
    #[error(
        "job {job_id}: this worker no longer holds its lease (it lapsed and was taken over, or the job was cancelled)"
    )]
    LeaseLost { job_id: i64 },
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// A PostgreSQL URL that does not parse; the URL itself is not repeated
    /// because it may hold a password.
    #[error(
        "`{scheme}://…` is not a valid PostgreSQL URL (expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE)"
    )]
    BadUrl { scheme: String },
    /// A connection option of a PostgreSQL URL Podium reads itself.
    #[error("the database URL's `{option}`: {message}")]
    UrlOption {
        option: &'static str,
        message: String,
    },
    /// TLS to PostgreSQL could not be set up (e.g. an unreadable `sslrootcert`).
    #[error("TLS to the database: {0}")]
    Tls(String),
    /// Connecting failed; `database` is the URL without its password.
    #[error("cannot connect to the database {database}")]
    Connect {
        database: String,
        #[source]
        source: postgres::Error,
    },
    #[error("migrating the database to schema version {version} failed")]
    PostgresMigration {
        version: i64,
        #[source]
        source: postgres::Error,
    },
    /// A PostgreSQL error; `database` is the URL without its password.
    #[error("database {database}")]
    Postgres {
        database: String,
        #[source]
        source: postgres::Error,
    },
    /// A column held a value of the wrong type (a database edited by hand).
    #[error("unexpected value in the database: {0}")]
    Value(String),
    /// An operation only one engine has (SQLite's page limits, for tests).
    #[error("{0} is not available on this database engine")]
    Unsupported(&'static str),
    /// The copy's target does not hold what was copied.
    #[error("verifying the copy failed: table {table}: {detail}")]
    CopyMismatch { table: &'static str, detail: String },
    /// `podium store copy` into a database that already holds data.
    #[error(
        "the target database {database} is not empty ({table} has {rows} rows); copy only into an empty one"
    )]
    TargetNotEmpty {
        database: String,
        table: &'static str,
        rows: i64,
    },
}

impl StoreError {
    /// Whether the database refused the write because it broke a rule of the
    /// schema (a unique identity, a CHECK such as valid JSON, a foreign key).
    pub fn is_constraint_violation(&self) -> bool {
        let sqlite = |e: &rusqlite::Error| {
            matches!(e, rusqlite::Error::SqliteFailure(f, _)
                if f.code == rusqlite::ErrorCode::ConstraintViolation)
        };
        match self {
            StoreError::Sqlite(e) | StoreError::Database { source: e, .. } => sqlite(e),
            StoreError::Postgres { source, .. } => source.code().is_some_and(|code| {
                // Class 23 (integrity constraint violation), and 22P02 (invalid
                // text representation): JSON that does not parse in a CHECK.
                code.code().starts_with("23")
                    || code == &postgres::error::SqlState::INVALID_TEXT_REPRESENTATION
            }),
            _ => false,
        }
    }
}
