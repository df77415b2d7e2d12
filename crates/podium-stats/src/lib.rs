//! Statistics for Podium's scores: means, standard errors, seeded bootstrap,
//! lm-evaluation-harness aggregations, normalized scores and percentiles.
//!
//! *Architecture Invariant:* this crate does no IO and reads no clock or global
//! random state. Every random result is a function of its inputs and an explicit
//! seed, so a published score can be recomputed bit for bit on any platform.

mod bootstrap;
mod cost;
mod descriptive;
mod error;
mod group;
mod normalize;
mod percentile;
mod perplexity;
mod ratio;
mod speed;

pub use bootstrap::{
    DEFAULT_BOOTSTRAP_ITERS, bootstrap_replicates, bootstrap_stderr, percentile_bootstrap_interval,
};
pub use cost::{blended_price_per_million, request_cost_usd};
pub use descriptive::{Z_95, ci95_mean, mean, sample_std, stderr_of_mean, wilson_interval};
pub use error::StatsError;
pub use group::{
    GroupAggregate, GroupWeighting, SubtaskResult, aggregate_group, aggregate_subtask_metrics,
    pooled_sample_stderr, unweighted_mean_stderr,
};
pub use normalize::{multiple_choice_baseline, normalized_score};
pub use percentile::{Percentiles, percentile, percentile_of_sorted, percentiles};
pub use perplexity::{
    WeightedLogLikelihood, bits_per_byte, bits_per_byte_stderr, perplexity, perplexity_stderr,
    weighted_perplexity, weighted_perplexity_stderr,
};
pub use ratio::{RatioOfSums, ratio_of_sums};
pub use speed::{output_tokens_per_s, tpot_s};

#[cfg(test)]
mod test_util;
