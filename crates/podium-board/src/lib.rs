//! The leaderboard as a value (no HTTP, no terminal): the store and the
//! catalogue in, a [`Leaderboard`] out, plus the views computed from it — the
//! Pareto fronts, the fit-for-purpose pick and the history. `podium board`
//! and `podium serve` both render these values, so they can never disagree.
//!
//! *Architecture Invariant:* runs share a column only when their setting
//! ([`Setting`]: task content hash, board metric, shots, chat template, doc
//! set) is equal; nothing ranks a model against a run of another setting.

pub mod arena;
mod board;
mod catalog;
mod error;
mod export;
mod groups;
mod history;
pub mod metric_choice;
mod pick;

pub use board::{
    Average, BoardOptions, Cell, Column, Cost, Leaderboard, ModelRow, Setting, Speed, access_label,
    average_text, parameters_text, rank_upper_bound, score_text,
};
pub use catalog::{BoardCatalog, CatalogError, ModelInfo};
pub use error::BoardError;
pub use export::{csv_table, to_csv, visible};
pub use groups::GroupSpec;
pub use history::{CategoryPoint, History, MAX_HISTORY_POINTS, RankPoint, history};
pub use pick::{
    Axis, Excluded, Pick, PickRequest, Qualified, Verdict, pareto_front, pick, quality_of,
};
