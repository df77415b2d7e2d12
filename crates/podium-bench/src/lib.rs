//! Load generation and speed metrics for `podium bench`: closed-loop
//! concurrency, open-loop gamma arrivals on a precomputed seeded schedule,
//! and a sweep to saturation that finds the highest rate meeting an SLO.
//! Metric definitions follow docs/METRICS.md to the letter.

mod load;
mod slo;
mod summary;
mod workload;

pub use load::{
    BenchConfig, BenchError, LiveCounts, Load, RequestRecord, Stop, gamma_schedule, run,
    run_counted,
};
pub use slo::{Slo, SloError, SloMetric, SloTarget, parse_duration, parse_slo};
pub use summary::{Summary, summarize, tpot};
pub use workload::{PromptSource, Workload, prompts_from_jsonl, synthetic_prompts};
