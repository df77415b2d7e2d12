//! The queries the leaderboard reads: the latest run of each comparable
//! setting, a model's runs, and a run's samples a page at a time.

use serde::{Deserialize, Serialize};

use crate::sql::{Dialect, Param, Row, params};
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
    /// Only samples whose request or response text contains this (case-insensitive:
    /// for ASCII on SQLite, whose `lower` folds only ASCII; for all of Unicode on
    /// PostgreSQL).
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

fn run_from_row(row: &Row) -> Result<RunRecord, StoreError> {
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
        seed: crate::store::seed_from_sql(row.get(9)?),
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
            this.connection.query_map(
                "SELECT id, model_id, spec, fingerprint, name, content_hash, n_shots,
                        chat_template, limit_n, seed, podium_version, started_at,
                        finished_at, active_ms, results_json, manifest_json FROM (
                     SELECT r.*, m.spec, m.fingerprint, t.name, t.content_hash,
                            row_number() OVER (
                                PARTITION BY r.model_id, r.task_id, r.n_shots,
                                             r.chat_template, coalesce(r.limit_n, -1)
                                ORDER BY r.finished_at DESC, r.id DESC
                            ) AS recency
                     FROM runs r
                     JOIN models m ON m.id = r.model_id
                     JOIN tasks t ON t.id = r.task_id
                     WHERE r.status = 'finished'
                       AND r.finished_at IS NOT NULL
                       AND r.results_json IS NOT NULL
                       AND (CAST(?1 AS TEXT) IS NULL OR r.finished_at <= CAST(?1 AS TEXT))
                 ) AS ranked
                 WHERE recency = 1
                 ORDER BY model_id, name, id",
                params![as_of],
                |row| {
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
                        seed: crate::store::seed_from_sql(row.get(9)?),
                        podium_version: row.get(10)?,
                        started_at: row.get(11)?,
                        finished_at: row.get(12)?,
                        active_ms: row.get(13)?,
                        results_json: row.get(14)?,
                        manifest_json: row.get(15)?,
                    })
                },
            )
        })
    }

    /// The finish times of every finished run, oldest first (the board's history
    /// is the board as of each of them).
    pub fn finish_times(&self) -> Result<Vec<String>, StoreError> {
        self.with(|this| {
            this.connection.query_map(
                "SELECT DISTINCT finished_at FROM runs
                 WHERE status = 'finished' AND finished_at IS NOT NULL
                 ORDER BY finished_at",
                &[],
                |row| row.get(0),
            )
        })
    }

    /// Every run of model `model_id`, newest first.
    pub fn model_runs(&self, model_id: i64) -> Result<Vec<RunRecord>, StoreError> {
        self.with(|this| {
            this.connection.query_map(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM runs r
                     JOIN models m ON m.id = r.model_id
                     JOIN tasks t ON t.id = r.task_id
                     WHERE r.model_id = ?1
                     ORDER BY r.started_at DESC, r.id DESC"
                ),
                params![model_id],
                run_from_row,
            )
        })
    }

    /// One run, or `None` when no run has this id.
    pub fn run(&self, run_id: i64) -> Result<Option<RunRecord>, StoreError> {
        self.with(|this| {
            this.connection
                .query_opt(
                    &format!(
                        "SELECT {RUN_COLUMNS} FROM runs r
                         JOIN models m ON m.id = r.model_id
                         JOIN tasks t ON t.id = r.task_id
                         WHERE r.id = ?1"
                    ),
                    params![run_id],
                )?
                .map(|row| run_from_row(&row))
                .transpose()
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
            let dialect = this.dialect();
            // Parameters are numbered in the order they are added.
            let mut owned: Vec<String> = Vec::new();
            let mut conditions = vec!["run_id = ?1".to_string()];
            let metric = query
                .correct
                .as_ref()
                .map(|(metric, correct)| (metric_key_param(dialect, metric), *correct));
            if let Some((key, _)) = &metric {
                owned.push(key.clone());
            }
            let text = query
                .text
                .as_deref()
                .filter(|t| !t.is_empty())
                .map(str::to_lowercase);
            if let Some(text) = &text {
                owned.push(text.clone());
            }
            let ids = query
                .doc_ids
                .as_ref()
                // Bound as a JSON array, so any number of ids is one parameter.
                .map(|ids| serde_json::to_string(ids).unwrap_or_else(|_| "[]".into()));
            if let Some(ids) = &ids {
                owned.push(ids.clone());
            }
            let mut next = 2;
            let mut placeholder = || {
                let p = format!("?{next}");
                next += 1;
                p
            };
            if let Some((_, correct)) = &metric {
                let is_one = metric_is_one(dialect, &placeholder());
                conditions.push(if *correct {
                    format!("status = 'ok' AND {is_one}")
                } else {
                    format!("(status = 'failed' OR NOT {is_one})")
                });
            }
            if query.failed_only {
                conditions.push("status = 'failed'".into());
            }
            if text.is_some() {
                let p = placeholder();
                conditions.push(match dialect {
                    Dialect::Sqlite => format!(
                        "(instr(lower(requests_json), {p}) > 0 OR instr(lower(responses_json), {p}) > 0)"
                    ),
                    Dialect::Postgres => format!(
                        "(strpos(lower(requests_json), {p}) > 0 OR strpos(lower(responses_json), {p}) > 0)"
                    ),
                });
            }
            if ids.is_some() {
                let p = placeholder();
                conditions.push(match dialect {
                    Dialect::Sqlite => format!("doc_id IN (SELECT value FROM json_each({p}))"),
                    Dialect::Postgres => format!(
                        "doc_id IN (SELECT value::bigint FROM json_array_elements_text(CAST({p} AS TEXT)::json))"
                    ),
                });
            }
            let (limit_p, offset_p) = (placeholder(), placeholder());
            let filter = conditions.join(" AND ");
            let mut values: Vec<Param<'_>> = vec![Param::Int(run_id)];
            values.extend(owned.iter().map(|v| Param::Text(v)));
            let total: u64 = this
                .connection
                .query_one(&format!("SELECT count(*) FROM samples WHERE {filter}"), &values)?
                .get(0)?;
            let limit = query.limit.min(MAX_SAMPLES_PER_PAGE) as i64;
            let offset = query.offset.min(i64::MAX as u64) as i64;
            values.push(Param::Int(limit));
            values.push(Param::Int(offset));
            let samples = this.connection.query_map(
                &format!(
                    "SELECT doc_id, prompt_hash, requests_json, responses_json, metrics_json,
                            n_input_tokens, n_output_tokens, timing_json, status, error
                     FROM samples WHERE {filter}
                     ORDER BY doc_id LIMIT {limit_p} OFFSET {offset_p}"
                ),
                &values,
                crate::store::sample_from_row,
            )?;
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
            let dialect = this.dialect();
            let key = metric_key_param(dialect, metric);
            this.connection.query_map(
                &format!(
                    "SELECT doc_id, CASE WHEN status = 'ok' AND {} THEN 1 ELSE 0 END
                     FROM samples WHERE run_id = ?1 ORDER BY doc_id",
                    metric_is_one(dialect, "?2")
                ),
                params![run_id, key.as_str()],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
        })
    }

    /// A number that changes whenever any connection commits to the database,
    /// so a reader can cache what it computed from the data until it changes.
    /// SQLite: its `data_version` plus this connection's own change count.
    /// PostgreSQL: the server's transaction snapshot (the next transaction id and
    /// the ones in progress), which moves whenever any transaction writes or ends
    /// — more often than this database changes, never less.
    pub fn data_version(&self) -> Result<(i64, u64), StoreError> {
        self.with(|this| match &this.connection {
            crate::sql::Connection::Sqlite(connection) => {
                let version: i64 =
                    connection.query_row("PRAGMA data_version", [], |row| row.get(0))?;
                Ok((version, connection.total_changes()))
            }
            crate::sql::Connection::Postgres(_) => {
                let row = this.connection.query_one(
                    "SELECT CAST(pg_snapshot_xmax(pg_current_snapshot()) AS TEXT),
                            CAST(pg_current_snapshot() AS TEXT)",
                    &[],
                )?;
                let next_xid: String = row.get(0)?;
                let snapshot: String = row.get(1)?;
                use std::hash::{Hash, Hasher};
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                snapshot.hash(&mut hasher);
                Ok((next_xid.parse().unwrap_or(0), hasher.finish()))
            }
        })
    }
}

/// The parameter that names a metric in a sample's `metrics_json`: a JSON path
/// for SQLite (quoted: metric keys hold commas and dashes), the bare key for
/// PostgreSQL.
fn metric_key_param(dialect: Dialect, metric: &str) -> String {
    match dialect {
        Dialect::Sqlite => format!("$.metrics.\"{}\"", metric.replace('"', "")),
        Dialect::Postgres => metric.replace('"', ""),
    }
}

/// SQL that is true when the sample's metric named by parameter `key` is 1
/// (a number equal to 1, or `true`), false otherwise (also when it is absent).
fn metric_is_one(dialect: Dialect, key: &str) -> String {
    match dialect {
        Dialect::Sqlite => format!("coalesce(json_extract(metrics_json, {key}), 0) = 1"),
        Dialect::Postgres => format!(
            "coalesce(metrics_json::jsonb -> 'metrics' -> CAST({key} AS TEXT)
                      IN ('1'::jsonb, 'true'::jsonb), false)"
        ),
    }
}
