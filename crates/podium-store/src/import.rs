//! Bulk writing of finished runs whose times the caller gives: for importing
//! results computed elsewhere and for seeded test databases (podium-testkit),
//! where millions of samples must be written quickly and byte-for-byte
//! reproducibly, which per-sample transactions stamped with the clock cannot do.

use crate::sql::{Begin, params};
use crate::store::{MAX_STORED_TOKEN_COUNT, seed_to_sql};
use crate::{RunKey, SampleRecord, Store, StoreError};

/// A finished run and all its samples, with its own timestamps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedRun {
    pub key: RunKey,
    pub manifest_json: String,
    pub podium_version: String,
    /// RFC 3339 UTC in the store's fixed-width format (see [`crate::rfc3339_utc`]).
    pub started_at: String,
    pub finished_at: String,
    pub active_ms: Option<i64>,
    pub results_json: String,
    /// Each sample's `created_at` is the run's `finished_at`.
    pub samples: Vec<SampleRecord>,
}

impl Store {
    /// Writes finished runs and their samples in one transaction: all of them
    /// or, on any error, none. A run whose identity ([`RunKey`]) is already in
    /// the store is refused (SQLite's unique constraint), as is a token count
    /// above [`MAX_STORED_TOKEN_COUNT`]. Returns the new run ids in order.
    pub fn import_finished_runs(&mut self, runs: &[ImportedRun]) -> Result<Vec<i64>, StoreError> {
        for run in runs {
            for sample in &run.samples {
                for (field, count) in [
                    ("n_input_tokens", sample.n_input_tokens),
                    ("n_output_tokens", sample.n_output_tokens),
                ] {
                    if let Some(value) = count.filter(|&n| n > MAX_STORED_TOKEN_COUNT) {
                        return Err(StoreError::TokenCount {
                            run_id: 0,
                            doc_id: sample.doc_id,
                            field,
                            value,
                        });
                    }
                }
            }
        }
        self.with_mut(|this| {
            this.connection.transaction(Begin::Write, |tx| {
                let mut run_ids = Vec::with_capacity(runs.len());
                for run in runs {
                    let key = &run.key;
                    let run_id: i64 = tx
                        .query_one(
                            "INSERT INTO runs (model_id, task_id, manifest_json, podium_version,
                                               n_shots, chat_template, seed, limit_n, status,
                                               started_at, finished_at, results_json, active_ms)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'finished', ?9, ?10, ?11, ?12)
                             RETURNING id",
                            params![
                                key.model_id,
                                key.task_id,
                                &run.manifest_json,
                                &run.podium_version,
                                key.n_shots,
                                key.chat_template,
                                seed_to_sql(key.seed),
                                key.limit,
                                &run.started_at,
                                &run.finished_at,
                                &run.results_json,
                                run.active_ms,
                            ],
                        )?
                        .get(0)?;
                    for sample in &run.samples {
                        tx.execute(
                            "INSERT INTO samples (run_id, doc_id, prompt_hash, requests_json,
                                                  responses_json, metrics_json, n_input_tokens,
                                                  n_output_tokens, timing_json, status, error,
                                                  created_at)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                            params![
                                run_id,
                                sample.doc_id,
                                &sample.prompt_hash,
                                &sample.requests_json,
                                &sample.responses_json,
                                &sample.metrics_json,
                                sample.n_input_tokens,
                                sample.n_output_tokens,
                                &sample.timing_json,
                                sample.status,
                                &sample.error,
                                &run.finished_at,
                            ],
                        )?;
                    }
                    run_ids.push(run_id);
                }
                Ok(run_ids)
            })
        })
    }

    /// [`Store::put_bench_result`] with the time it was measured given
    /// (RFC 3339 UTC in the store's format) instead of read from the clock.
    pub fn put_bench_result_at(
        &self,
        model_spec: &str,
        load: &str,
        config_json: &str,
        summary_json: &str,
        created_at: &str,
    ) -> Result<i64, StoreError> {
        self.with(|this| {
            this.connection
                .query_one(
                    "INSERT INTO bench_results (model_spec, load, config_json, summary_json,
                                                created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     RETURNING id",
                    params![model_spec, load, config_json, summary_json, created_at],
                )?
                .get(0)
        })
    }
}
