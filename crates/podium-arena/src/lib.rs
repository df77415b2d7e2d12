//! Arena ratings: people or judge models compare two anonymous answers, and
//! the battles become ratings with honest intervals (METRICS.md, "Arena
//! ratings").
//!
//! Pure and IO-free: battles come in as values (or from a reader handed to
//! [`formats`]), ratings go out as values; every random result is a function
//! of an explicit seed.
//!
//! - [`battle`]: a battle, its outcome, and the interned columnar
//!   [`BattleSet`] the fits run on.
//! - [`formats`]: FastChat battle JSONL and CSV (LLMFAO's layout) read
//!   from a reader, JSONL written back, and the Markdown style counts of an
//!   answer.
//! - [`pairing`]: which two models answer the next arena prompt.
//! - [`answer`]: whether an answer reveals its model (identity words).
//! - [`rating`]: Bradley–Terry by maximum likelihood (ties half a win),
//!   bootstrap and sandwich intervals, rank (UB), online Elo, win rates.
//! - [`judge`]: judge models: the pairwise judging prompt, its verdict's
//!   parser, and one outcome from the two orders a pair is judged in.

pub mod answer;
pub mod battle;
mod error;
mod fit;
pub mod formats;
pub mod judge;
mod linalg;
pub mod pairing;
pub mod prompts;
pub mod rating;
mod style;

pub use battle::{Battle, BattleSet, Outcome, StyleCounts};
pub use error::ArenaError;
pub use formats::{BattleFormat, ReadLimits};
pub use prompts::{ArenaPrompt, parse_prompts};
pub use rating::{
    CiMethod, ModelRating, PairStat, RatingOptions, Ratings, online_elo, predicted_win_rate,
    rank_changes, rate,
};
