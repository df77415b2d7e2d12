//! The error type shared by every function in this crate.

use thiserror::Error;

/// Why a statistic could not be computed from the given input.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum StatsError {
    /// The statistic needs more observations than it was given.
    #[error("{statistic} needs at least {needed} values, got {got}")]
    NotEnoughValues {
        statistic: &'static str,
        needed: usize,
        got: usize,
    },
    /// Two slices that pair up element by element have different lengths.
    #[error("{statistic}: {left_name} has {left_len} entries but {right_name} has {right_len}")]
    LengthMismatch {
        statistic: &'static str,
        left_name: &'static str,
        left_len: usize,
        right_name: &'static str,
        right_len: usize,
    },
    /// Weights (word counts, byte counts, subtask sizes) sum to zero.
    #[error("{statistic}: weights sum to zero")]
    ZeroTotalWeight { statistic: &'static str },
    /// A percentile outside 0..=100 was requested.
    #[error("percentile {0} is outside 0..=100")]
    PercentileOutOfRange(f64),
    /// A confidence level outside the open interval (0, 1) was requested.
    #[error("confidence level {0} is outside (0, 1)")]
    ConfidenceLevelOutOfRange(f64),
    /// A chance baseline of 1 or more leaves no room above chance to normalize by.
    #[error("baseline {0} must be below 1 to normalize a score")]
    BaselineOutOfRange(f64),
    /// A multiple-choice question must offer at least one choice.
    #[error("a multiple-choice baseline needs at least one choice")]
    NoChoices,
}
