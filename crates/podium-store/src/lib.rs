//! Podium's persistent state in SQLite or PostgreSQL: models, tasks, runs,
//! per-document samples (for resume), the response cache, benchmarks, arena
//! battles and judge models' verdicts.
//!
//! *Architecture Invariant:* this is the only crate that contains SQL, in both
//! dialects. Every other crate goes through [`Store`], whose methods are the same
//! for both engines and synchronous; async callers wrap it in a mutex and
//! `spawn_blocking`.

mod arena;
mod board;
mod copy;
mod error;
mod import;
mod jobs;
mod judgements;
mod limits;
mod location;
mod migrations;
mod records;
mod sql;
mod store;
mod timestamp;

pub use arena::{BattleFilter, BattleRow};
pub use board::{BoardRun, MAX_SAMPLES_PER_PAGE, RunRecord, SampleQuery};
pub use copy::TableSummary;
pub use error::StoreError;
pub use import::ImportedRun;
pub use jobs::{Enqueued, Job, JobState, Lease, NewJobs, RunJobs};
pub use judgements::{JudgedPair, JudgementRow};
pub use location::{Location, PostgresUrl};
pub use migrations::{PAUSE_MIGRATION_ENV, SCHEMA_VERSION, create_at_version};
pub use records::{
    LatestResult, ModelRecord, RunKey, RunState, RunStatus, RunSummary, SampleRecord, SampleStatus,
    SampleWrite, TokenTotals,
};
pub use store::{BenchResult, MAX_STORED_TOKEN_COUNT, Store};
pub use timestamp::{parse_rfc3339_utc, rfc3339_utc};
