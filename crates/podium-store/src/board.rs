//! The queries the leaderboard reads: the latest run of each comparable
//! setting, a model's runs, and a run's samples a page at a time.

use rusqlite::{OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use crate::{RunStatus, SampleRecord, Store, StoreError};

/// One finished run as the board sees it: the model's identity and every
/// part of the setting that decides whether two runs are comparable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoardRun {
    pub run_id: i64,
    pub model_id: i64,
    pub model_spec: String,
    pub fingerprint: String,
    pub task_name: String,
    /// Hash of the task's whole configuration: prompts, data, metrics.
    pub content_hash: String,
    pub n_shots: u32,
    pub chat_template: bool,
    /// `--limit`: the run covered only the first this-many documents.
    pub limit: Option<u64>,
    pub seed: u64,
    pub podium_version: String,
    pub started_at: String,
    pub finished_at: String,
    /// Milliseconds worked on the run (see [`crate::LatestResult::active_ms`]).
    pub active_ms: Option<i64>,
    pub results_json: String,
    pub manifest_json: String,
}

/// Any run of a model, finished or not, for its page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: i64,
    pub model_id: i64,
    pub model_spec: String,
    pub fingerprint: String,
    pub task_name: String,
    pub content_hash: String,
    pub n_shots: u32,
    pub chat_template: bool,
    pub limit: Option<u64>,
    pub seed: u64,
    pub podium_version: String,
    pub status: RunStatus,
    pub error: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub results_json: Option<String>,
    pub manifest_json: String,
    /// Milliseconds worked on the run (see [`crate::LatestResult::active_ms`]).
    pub active_ms: Option<i64>,
}

/// Which samples of a run a page shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SampleQuery {
    /// Only samples whose `metrics_json` value at this metric key (e.g.
    /// `acc,none`) is 1 (`Some(true)`) or not 1 (`Some(false)`); failed
    /// samples count as not correct.
    pub correct: Option<(String, bool)>,
    /// Only failed samples.
    pub failed_only: bool,
    /// Only samples whose request or response text contains this (case-insensitive
    /// for ASCII, as SQLite's `instr(lower(…))`).
    pub text: Option<String>,
    /// Only these documents (the side-by-side view's "where they differ").
    pub doc_ids: Option<Vec<u64>>,
    pub offset: u64,
    pub limit: u64,
}

/// The most samples one page may ask for.
pub const MAX_SAMPLES_PER_PAGE: u64 = 500;

const RUN_COLUMNS: &str = "r.id, r.model_id, m.spec, m.fingerprint, t.name, t.content_hash,
     r.n_shots, r.chat_template, r.limit_n, r.seed, r.podium_version, r.status, r.error,
     r.started_at, r.finished_at, r.results_json, r.manifest_json, r.active_ms";

fn run_from_row(row: &Row<'_>) -> rusqlite::Result<RunRecord> {
    Ok(RunRecord {
        run_id: row.get(0)?,
        model_id: row.get(1)?,
        model_spec: row.get(2)?,
        fingerprint: row.get(3)?,
        task_name: row.get(4)?,
        content_hash: row.get(5)?,
        n_shots: row.get(6)?,
        chat_template: row.get(7)?,
        limit: row.get(8)?,
        seed: row.get::<_, i64>(9)? as u64,
        podium_version: row.get(10)?,
        status: row.get(11)?,
        error: row.get(12)?,
        started_at: row.get(13)?,
        finished_at: row.get(14)?,
        results_json: row.get(15)?,
        manifest_json: row.get(16)?,
        active_ms: row.get(17)?,
    })
}

impl Store {
    /// For each model identity (spec and fingerprint) and comparable setting
    /// (task name and content hash, shots, chat template, limit), the newest
    /// finished run — finished at or before `as_of` (an RFC 3339 time; text
    /// order is time order) when given. Ordered by model id, task, run id.
    pub fn board_runs(&self, as_of: Option<&str>) -> Result<Vec<BoardRun>, StoreError> {
        self.with(|this| {
            let mut statement = this.connection.prepare(
                "SELECT id, model_id, spec, fingerprint, name, content_hash, n_shots,
                        chat_template, limit_n, seed, podium_version, started_at,
                        finished_at, active_ms, results_json, manifest_json FROM (
                     SELECT r.*, m.spec, m.fingerprint, t.name, t.content_hash,
                            row_number() OVER (
                                PARTITION BY r.model_id, r.task_id, r.n_shots,
                                             r.chat_template, ifnull(r.limit_n, -1)
                                ORDER BY r.finished_at DESC, r.id DESC
                            ) AS recency
                     FROM runs r
                     JOIN models m ON m.id = r.model_id
                     JOIN tasks t ON t.id = r.task_id
                     WHERE r.status = 'finished'
                       AND r.finished_at IS NOT NULL
                       AND r.results_json IS NOT NULL
                       AND (?1 IS NULL OR r.finished_at <= ?1)
                 )
                 WHERE recency = 1
                 ORDER BY model_id, name, id",
            )?;
            let runs = statement
                .query_map(params![as_of], |row| {
                    Ok(BoardRun {
                        run_id: row.get(0)?,
                        model_id: row.get(1)?,
                        model_spec: row.get(2)?,
                        fingerprint: row.get(3)?,
                        task_name: row.get(4)?,
                        content_hash: row.get(5)?,
                        n_shots: row.get(6)?,
                        chat_template: row.get(7)?,
                        limit: row.get(8)?,
                        seed: row.get::<_, i64>(9)? as u64,
                        podium_version: row.get(10)?,
                        started_at: row.get(11)?,
                        finished_at: row.get(12)?,
                        active_ms: row.get(13)?,
                        results_json: row.get(14)?,
                        manifest_json: row.get(15)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(runs)
        })
    }

    /// The finish times of every finished run, oldest first (the board's history
    /// is the board as of each of them).
    pub fn finish_times(&self) -> Result<Vec<String>, StoreError> {
        self.with(|this| {
            let mut statement = this.connection.prepare(
                "SELECT DISTINCT finished_at FROM runs
                 WHERE status = 'finished' AND finished_at IS NOT NULL
                 ORDER BY finished_at",
            )?;
            let times = statement
                .query_map([], |row| row.get(0))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(times)
        })
    }

    /// Every run of model `model_id`, newest first.
    pub fn model_runs(&self, model_id: i64) -> Result<Vec<RunRecord>, StoreError> {
        self.with(|this| {
            let mut statement = this.connection.prepare(&format!(
                "SELECT {RUN_COLUMNS} FROM runs r
                 JOIN models m ON m.id = r.model_id
                 JOIN tasks t ON t.id = r.task_id
                 WHERE r.model_id = ?1
                 ORDER BY r.started_at DESC, r.id DESC"
            ))?;
            let runs = statement
                .query_map([model_id], run_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(runs)
        })
    }

    /// One run, or `None` when no run has this id.
    pub fn run(&self, run_id: i64) -> Result<Option<RunRecord>, StoreError> {
        self.with(|this| {
            Ok(this
                .connection
                .query_row(
                    &format!(
                        "SELECT {RUN_COLUMNS} FROM runs r
                         JOIN models m ON m.id = r.model_id
                         JOIN tasks t ON t.id = r.task_id
                         WHERE r.id = ?1"
                    ),
                    [run_id],
                    run_from_row,
                )
                .optional()?)
        })
    }

    /// One page of a run's samples in document order, and how many samples
    /// match the query in all. `limit` is capped at [`MAX_SAMPLES_PER_PAGE`].
    pub fn samples_page(
        &self,
        run_id: i64,
        query: &SampleQuery,
    ) -> Result<(Vec<SampleRecord>, u64), StoreError> {
        self.with(|this| {
            let mut conditions = vec!["run_id = :run".to_string()];
            let mut values: Vec<(&str, rusqlite::types::Value)> =
                vec![(":run", rusqlite::types::Value::Integer(run_id))];
            if let Some((metric, correct)) = &query.correct {
                // A JSON path quotes the key: metric keys hold commas and dashes.
                let path = format!("$.metrics.\"{}\"", metric.replace('"', ""));
                values.push((":path", path.into()));
                conditions.push(if *correct {
                    "status = 'ok' AND json_extract(metrics_json, :path) = 1".into()
                } else {
                    "(status = 'failed' OR ifnull(json_extract(metrics_json, :path), 0) != 1)"
                        .into()
                });
            }
            if query.failed_only {
                conditions.push("status = 'failed'".into());
            }
            if let Some(text) = query.text.as_deref().filter(|t| !t.is_empty()) {
                values.push((":text", text.to_lowercase().into()));
                conditions.push(
                    "(instr(lower(requests_json), :text) > 0
                      OR instr(lower(responses_json), :text) > 0)"
                        .into(),
                );
            }
            if let Some(ids) = &query.doc_ids {
                // Bound as a JSON array, so any number of ids is one parameter.
                let list = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
                values.push((":ids", list.into()));
                conditions.push("doc_id IN (SELECT value FROM json_each(:ids))".into());
            }
            let filter = conditions.join(" AND ");
            let named: Vec<(&str, &dyn rusqlite::ToSql)> = values
                .iter()
                .map(|(name, value)| (*name, value as &dyn rusqlite::ToSql))
                .collect();
            let total: u64 = this.connection.query_row(
                &format!("SELECT count(*) FROM samples WHERE {filter}"),
                named.as_slice(),
                |row| row.get(0),
            )?;
            let limit = query.limit.min(MAX_SAMPLES_PER_PAGE) as i64;
            let offset = query.offset.min(i64::MAX as u64) as i64;
            let mut paged = named.clone();
            paged.push((":limit", &limit));
            paged.push((":offset", &offset));
            let mut statement = this.connection.prepare(&format!(
                "SELECT doc_id, prompt_hash, requests_json, responses_json, metrics_json,
                        n_input_tokens, n_output_tokens, timing_json, status, error
                 FROM samples WHERE {filter}
                 ORDER BY doc_id LIMIT :limit OFFSET :offset"
            ))?;
            let samples = statement
                .query_map(paged.as_slice(), crate::store::sample_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok((samples, total))
        })
    }

    /// The documents of run `run_id` whose value at metric key `metric` is 1,
    /// as (doc id, correct) for every sample (failed samples are not correct).
    pub fn sample_outcomes(
        &self,
        run_id: i64,
        metric: &str,
    ) -> Result<Vec<(u64, bool)>, StoreError> {
        self.with(|this| {
            let path = format!("$.metrics.\"{}\"", metric.replace('"', ""));
            let mut statement = this.connection.prepare(
                "SELECT doc_id, status = 'ok' AND ifnull(json_extract(metrics_json, ?2), 0) = 1
                 FROM samples WHERE run_id = ?1 ORDER BY doc_id",
            )?;
            let outcomes = statement
                .query_map(params![run_id, path], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(outcomes)
        })
    }

    /// A number that changes whenever any connection commits to the database
    /// (SQLite's `data_version` plus this connection's own change count), so a
    /// reader can cache what it computed from the data until it changes.
    pub fn data_version(&self) -> Result<(i64, u64), StoreError> {
        self.with(|this| {
            let version: i64 = this
                .connection
                .query_row("PRAGMA data_version", [], |row| row.get(0))?;
            Ok((version, this.connection.total_changes()))
        })
    }
}
