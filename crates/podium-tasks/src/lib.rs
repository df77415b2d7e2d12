//! Evaluation tasks in lm-evaluation-harness's YAML format: config parsing,
//! local dataset loading, prompt building, response filters and metrics.
//! This crate does no network IO and knows nothing of models or storage.

pub mod config;
pub mod dataset;
mod error;
pub mod filters;
pub mod from_data;
pub mod ifeval;
pub mod judge;
pub mod metrics;
mod parquet_guard;
pub mod reference;
pub mod registry;
pub mod results;
pub mod rules;
pub mod task;
pub mod template;
pub mod yaml;

pub use error::TaskError;
pub use registry::{Registry, Selection};
pub use task::{BuildOptions, Instance, InstanceRequest, Response, SampleScores, Target, Task};
