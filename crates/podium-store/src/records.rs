//! The rows the store reads and writes, as plain serde-able structs. JSON
//! payloads travel as JSON text (`*_json: String`) so the store never needs to
//! know the shapes other crates put in them; the database checks they are valid JSON.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A model's identity: what the user asked for and what was actually served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRecord {
    /// The model spec as the user wrote it (e.g. `openai:gpt-4o-mini`, a GGUF path).
    pub spec: String,
    /// A file hash for local models; endpoint plus served model name for remote ones.
    pub fingerprint: String,
    /// Hash of the chat template in use, when known.
    pub chat_template_hash: Option<String>,
}

/// The identity of a run for resuming: two invocations with equal keys continue
/// the same run instead of starting a second one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RunKey {
    pub model_id: i64,
    pub task_id: i64,
    pub n_shots: u32,
    pub chat_template: bool,
    pub seed: u64,
    /// `--limit`: evaluate only the first this-many documents; `None` for all.
    pub limit: Option<u64>,
}

/// What [`Store::find_or_create_run`](crate::Store::find_or_create_run) found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunState {
    /// A run with this key already existed (its samples can be skipped).
    pub existing: bool,
    /// That run had finished; its results are complete.
    pub finished: bool,
}

/// Lifecycle of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    Finished,
    Failed,
}

/// Whether a document was scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SampleStatus {
    Ok,
    Failed,
}

/// One document of a run: what was sent, what came back, and its scores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleRecord {
    pub doc_id: u64,
    pub prompt_hash: String,
    pub requests_json: String,
    pub responses_json: String,
    pub metrics_json: String,
    /// `None` where the backend reported no token counts.
    pub n_input_tokens: Option<u64>,
    pub n_output_tokens: Option<u64>,
    pub timing_json: String,
    pub status: SampleStatus,
    /// Why the sample failed; `None` for successful samples.
    pub error: Option<String>,
}

/// What [`Store::put_sample`](crate::Store::put_sample) did with a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SampleWrite {
    /// No sample for this document existed.
    Inserted,
    /// A sample existed and was replaced (a failed one retried, or an ok one rescored).
    Replaced,
    /// An ok sample existed and the new one failed; the ok one was kept so a
    /// flaky retry never throws away a good result.
    KeptExisting,
}

/// One row of `podium runs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSummary {
    pub run_id: i64,
    pub model_spec: String,
    pub task_name: String,
    pub status: RunStatus,
    /// All stored samples, ok and failed.
    pub n_samples: u64,
    pub n_failed: u64,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub n_shots: u32,
    pub seed: u64,
    pub limit: Option<u64>,
}

/// Token counts over a run's successful samples, for its cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenTotals {
    /// Successful samples.
    pub samples: u64,
    /// Of those, the samples that recorded their token counts.
    pub counted: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// The newest finished run of one (model spec, task name): one cell of the board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatestResult {
    pub model_spec: String,
    pub task_name: String,
    pub run_id: i64,
    pub started_at: String,
    pub finished_at: String,
    pub results_json: String,
    /// Milliseconds the run was worked on, summed over the sessions that ran it
    /// (a pause between an interrupted session and its resume left out); `None`
    /// for runs recorded before Podium kept it.
    pub active_ms: Option<i64>,
}

impl RunStatus {
    /// The value stored in `runs.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Finished => "finished",
            RunStatus::Failed => "failed",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        match text {
            "running" => Some(RunStatus::Running),
            "finished" => Some(RunStatus::Finished),
            "failed" => Some(RunStatus::Failed),
            _ => None,
        }
    }
}

impl SampleStatus {
    /// The value stored in `samples.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            SampleStatus::Ok => "ok",
            SampleStatus::Failed => "failed",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        match text {
            "ok" => Some(SampleStatus::Ok),
            "failed" => Some(SampleStatus::Failed),
            _ => None,
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for SampleStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
