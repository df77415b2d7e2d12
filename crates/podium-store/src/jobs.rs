//! Work distribution: a run's documents split into jobs that `podium worker`s
//! claim, each under a lease it renews by heartbeat.
//!
//! - A claim takes the oldest queued job no other claim holds (PostgreSQL's
//!   `FOR UPDATE SKIP LOCKED`; SQLite's single writer does the same by
//!   serializing claims) and gives it a new `lease_token`.
//! - A job whose lease lapsed (its worker died or hung) goes back to the queue
//!   when any worker next claims ([`Store::reap_expired_jobs`]).
//! - Every sample a worker writes is fenced by its lease: the write checks, in
//!   its own transaction and under a share lock on the job's row, that the job
//!   is still running under the same token. A worker whose lease was taken over
//!   can therefore never write again, and the reclaiming update waits for any
//!   write in flight.
//! - Lease times are seconds since the Unix epoch on the database's clock, so
//!   the workers' clocks do not matter.

use std::collections::HashSet;
use std::time::Duration;

use crate::sql::{Begin, Connection, Dialect, FromValue, Row, Value, params};
use crate::store::{check_token_counts, write_sample};
use crate::timestamp::now_rfc3339;
use crate::{SampleRecord, SampleWrite, Store, StoreError};

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Done,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }
}

impl JobState {
    /// The state a name ([`JobState::as_str`]) stands for.
    pub fn parse(name: &str) -> Option<JobState> {
        [
            JobState::Queued,
            JobState::Running,
            JobState::Done,
            JobState::Failed,
            JobState::Cancelled,
        ]
        .into_iter()
        .find(|state| state.as_str() == name)
    }
}

impl FromValue for JobState {
    fn from_value(value: &Value) -> Result<Self, String> {
        let name = String::from_value(value)?;
        JobState::parse(&name).ok_or_else(|| format!("`{name}` is not a job state"))
    }
}

/// The jobs to add for one run.
#[derive(Debug, Clone)]
pub struct NewJobs<'a> {
    pub run_id: i64,
    /// The model's spec as the board shows it (what `--models` patterns match).
    pub model_spec: &'a str,
    pub task_name: &'a str,
    /// How a worker rebuilds the work (model, task, options): JSON the store
    /// keeps as it is.
    pub spec_json: &'a str,
    /// Every document of the run; those already stored ok, or in a job that is
    /// queued, running or failed, are left out.
    pub doc_ids: &'a [u64],
    /// Documents per job (at least 1).
    pub docs_per_job: usize,
}

/// What [`Store::enqueue_jobs`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Enqueued {
    pub n_jobs: usize,
    /// Documents put in the new jobs.
    pub n_docs: usize,
    /// Documents already stored ok (nothing to do).
    pub n_stored: usize,
    /// Documents already in an open job (queued, running or failed).
    pub n_in_jobs: usize,
}

/// A job as `podium jobs` lists it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Job {
    pub id: i64,
    pub run_id: i64,
    pub model_spec: String,
    pub task_name: String,
    #[serde(skip)]
    pub spec_json: String,
    #[serde(skip)]
    pub doc_ids: Vec<u64>,
    pub state: JobState,
    /// The worker that holds or last held it.
    pub worker: Option<String>,
    /// How many times it was claimed (more than 1: a lease lapsed, or a retry).
    pub claims: u64,
    pub n_docs: u64,
    /// Documents stored by its current or last holder (updated with each heartbeat).
    pub n_stored: u64,
    pub n_failed: u64,
    pub error: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub heartbeat_at: Option<String>,
    pub finished_at: Option<String>,
    /// Seconds until the lease lapses (negative: lapsed), for a running job.
    pub lease_left_s: Option<f64>,
}

/// A worker's hold on a job. Every write under it is fenced by `token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub job_id: i64,
    pub run_id: i64,
    pub token: i64,
}

/// How a run's jobs stand, after a job finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunJobs {
    /// Jobs queued or running.
    pub open: u64,
    /// Jobs that ended with failed samples (a retry requeues them).
    pub failed: u64,
}

/// The database's clock, in seconds since the Unix epoch.
pub(crate) fn now_expr(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "((julianday('now') - 2440587.5) * 86400.0)",
        Dialect::Postgres => "CAST(extract(epoch FROM clock_timestamp()) AS DOUBLE PRECISION)",
    }
}

/// `FOR UPDATE SKIP LOCKED` and friends, which SQLite (one writer) needs not.
pub(crate) fn lock(dialect: Dialect, clause: &'static str) -> &'static str {
    match dialect {
        Dialect::Sqlite => "",
        Dialect::Postgres => clause,
    }
}

/// A `--models` glob (`*` any text, `?` one character) as a `LIKE` pattern
/// with `\` as its escape character.
pub(crate) fn glob_to_like(glob: &str) -> String {
    let mut like = String::with_capacity(glob.len() + 4);
    for c in glob.chars() {
        match c {
            '*' => like.push('%'),
            '?' => like.push('_'),
            '%' | '_' | '\\' => {
                like.push('\\');
                like.push(c);
            }
            c => like.push(c),
        }
    }
    like
}

const JOB_COLUMNS: &str =
    "id, run_id, model_spec, task_name, spec_json, doc_ids_json, state, worker,
                           claims, n_docs, n_stored, n_failed, error, created_at, started_at,
                           heartbeat_at, finished_at";

/// A job's stored `doc_ids_json`.
fn parse_doc_ids(text: &str) -> Result<Vec<u64>, StoreError> {
    serde_json::from_str(text)
        .map_err(|err| StoreError::Value(format!("job's doc_ids_json is not a list of ids: {err}")))
}

fn job_from_row(row: &Row, lease_left_s: Option<f64>) -> Result<Job, StoreError> {
    let doc_ids = parse_doc_ids(&row.get::<String>(5)?)?;
    Ok(Job {
        id: row.get(0)?,
        run_id: row.get(1)?,
        model_spec: row.get(2)?,
        task_name: row.get(3)?,
        spec_json: row.get(4)?,
        doc_ids,
        state: row.get(6)?,
        worker: row.get(7)?,
        claims: row.get(8)?,
        n_docs: row.get(9)?,
        n_stored: row.get(10)?,
        n_failed: row.get(11)?,
        error: row.get(12)?,
        created_at: row.get(13)?,
        started_at: row.get(14)?,
        heartbeat_at: row.get(15)?,
        finished_at: row.get(16)?,
        lease_left_s,
    })
}

impl Store {
    /// Splits the documents of a run that still need work into jobs of
    /// `docs_per_job`, in one transaction under the run's lock, so two
    /// concurrent `eval --queue` of the same run never queue a document twice.
    pub fn enqueue_jobs(&mut self, new: &NewJobs<'_>) -> Result<Enqueued, StoreError> {
        let dialect = self.dialect();
        self.with_mut(|this| {
            this.connection.transaction(Begin::Write, |tx| {
                let run = tx.query_opt(
                    &format!(
                        "SELECT id FROM runs WHERE id = ?1{}",
                        lock(dialect, " FOR UPDATE")
                    ),
                    params![new.run_id],
                )?;
                if run.is_none() {
                    return Err(StoreError::RunNotFound(new.run_id));
                }
                let stored: HashSet<u64> = tx
                    .query(
                        "SELECT doc_id FROM samples WHERE run_id = ?1 AND status = 'ok'",
                        params![new.run_id],
                    )?
                    .iter()
                    .map(|row| row.get(0))
                    .collect::<Result<_, _>>()?;
                let mut in_jobs = HashSet::new();
                for row in tx.query(
                    "SELECT doc_ids_json FROM jobs
                     WHERE run_id = ?1 AND state IN ('queued', 'running', 'failed')",
                    params![new.run_id],
                )? {
                    in_jobs.extend(parse_doc_ids(&row.get::<String>(0)?)?);
                }
                let mut seen = HashSet::new();
                let mut todo = Vec::new();
                let (mut n_stored, mut n_in_jobs) = (0, 0);
                for &doc in new.doc_ids {
                    if !seen.insert(doc) {
                        continue;
                    }
                    if stored.contains(&doc) {
                        n_stored += 1;
                    } else if in_jobs.contains(&doc) {
                        n_in_jobs += 1;
                    } else {
                        todo.push(doc);
                    }
                }
                let now = now_rfc3339();
                let mut n_jobs = 0;
                for chunk in todo.chunks(new.docs_per_job.max(1)) {
                    let ids = serde_json::to_string(chunk)
                        .map_err(|err| StoreError::Value(err.to_string()))?;
                    tx.execute(
                        "INSERT INTO jobs (run_id, model_spec, task_name, spec_json, doc_ids_json,
                                           n_docs, state, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', ?7)",
                        params![
                            new.run_id,
                            new.model_spec,
                            new.task_name,
                            new.spec_json,
                            ids.as_str(),
                            chunk.len() as u64,
                            now.as_str()
                        ],
                    )?;
                    n_jobs += 1;
                }
                Ok(Enqueued {
                    n_jobs,
                    n_docs: todo.len(),
                    n_stored,
                    n_in_jobs,
                })
            })
        })
    }

    /// Returns to the queue every running job whose lease lapsed; how many.
    pub fn reap_expired_jobs(&self) -> Result<u64, StoreError> {
        let now = now_expr(self.dialect());
        self.with(|this| {
            this.connection.execute(
                &format!(
                    "UPDATE jobs SET state = 'queued', lease_expires = NULL
                     WHERE state = 'running' AND lease_expires < {now}"
                ),
                &[],
            )
        })
    }

    /// Claims the oldest queued job whose model spec matches `model_glob` (all
    /// when `None`) and whose run is not in `skip_runs`, first returning lapsed
    /// leases to the queue. The lease lasts `lease` unless renewed.
    pub fn claim_job(
        &mut self,
        worker: &str,
        model_glob: Option<&str>,
        skip_runs: &[i64],
        lease: Duration,
    ) -> Result<Option<(Lease, Job)>, StoreError> {
        self.reap_expired_jobs()?;
        let dialect = self.dialect();
        let now = now_expr(dialect);
        let like = glob_to_like(model_glob.unwrap_or("*"));
        // Ids are integers: formatting them into the text is safe.
        let skip = if skip_runs.is_empty() {
            String::new()
        } else {
            let ids: Vec<String> = skip_runs.iter().map(i64::to_string).collect();
            format!(" AND run_id NOT IN ({})", ids.join(", "))
        };
        self.with_mut(|this| {
            this.connection.transaction(Begin::Write, |tx| {
                let claimed = tx.query_opt(
                    &format!(
                        "UPDATE jobs SET state = 'running', worker = ?1,
                                         lease_token = lease_token + 1,
                                         lease_expires = {now} + ?2, claims = claims + 1,
                                         n_stored = 0, n_failed = 0, error = NULL,
                                         started_at = coalesce(started_at, ?3),
                                         heartbeat_at = ?3, finished_at = NULL
                         WHERE id = (SELECT id FROM jobs
                                     WHERE state = 'queued' AND model_spec LIKE ?4 ESCAPE '\\'{skip}
                                     ORDER BY id LIMIT 1{})
                         RETURNING {JOB_COLUMNS}, lease_token, lease_expires - {now}",
                        lock(dialect, " FOR UPDATE SKIP LOCKED")
                    ),
                    params![
                        worker,
                        lease.as_secs_f64(),
                        now_rfc3339().as_str(),
                        like.as_str()
                    ],
                )?;
                claimed
                    .map(|row| {
                        let job = job_from_row(&row, row.get(18)?)?;
                        let lease = Lease {
                            job_id: job.id,
                            run_id: job.run_id,
                            token: row.get(17)?,
                        };
                        Ok((lease, job))
                    })
                    .transpose()
            })
        })
    }

    /// Extends a lease by `lease` from now and records the job's progress.
    /// `false` when the lease is no longer held (it lapsed and was reclaimed,
    /// or the job was cancelled): the worker must stop working on it.
    pub fn renew_lease(
        &self,
        lease: &Lease,
        lease_for: Duration,
        n_stored: u64,
    ) -> Result<bool, StoreError> {
        let now = now_expr(self.dialect());
        self.with(|this| {
            Ok(this.connection.execute(
                &format!(
                    "UPDATE jobs SET lease_expires = {now} + ?3, heartbeat_at = ?4, n_stored = ?5
                     WHERE id = ?1 AND lease_token = ?2 AND state = 'running'"
                ),
                params![
                    lease.job_id,
                    lease.token,
                    lease_for.as_secs_f64(),
                    now_rfc3339().as_str(),
                    n_stored
                ],
            )? == 1)
        })
    }

    /// Stores one sample of a leased job, like [`Store::put_sample`], but only
    /// while the lease is held: otherwise [`StoreError::LeaseLost`] and nothing
    /// is written.
    pub fn put_job_sample(
        &mut self,
        lease: &Lease,
        sample: &SampleRecord,
    ) -> Result<SampleWrite, StoreError> {
        check_token_counts(lease.run_id, sample)?;
        let dialect = self.dialect();
        self.with_mut(|this| {
            this.connection.transaction(Begin::Write, |tx| {
                hold(tx, dialect, lease, " FOR SHARE")?;
                write_sample(tx, dialect, lease.run_id, sample)
            })
        })
    }

    /// Ends a leased job: `done` when none of its documents failed, else
    /// `failed` with the first error (`podium jobs retry` requeues it). Returns
    /// how the run's jobs stand, read under the run's lock so that of two
    /// workers ending a run's last two jobs at once, the second sees the first.
    pub fn finish_job(
        &mut self,
        lease: &Lease,
        n_stored: u64,
        n_failed: u64,
        error: Option<&str>,
    ) -> Result<RunJobs, StoreError> {
        let dialect = self.dialect();
        self.with_mut(|this| {
            this.connection.transaction(Begin::Write, |tx| {
                tx.query_opt(
                    &format!(
                        "SELECT id FROM runs WHERE id = ?1{}",
                        lock(dialect, " FOR UPDATE")
                    ),
                    params![lease.run_id],
                )?;
                hold(tx, dialect, lease, " FOR UPDATE")?;
                let state = if n_failed == 0 {
                    JobState::Done
                } else {
                    JobState::Failed
                };
                tx.execute(
                    "UPDATE jobs SET state = ?2, n_stored = ?3, n_failed = ?4, error = ?5,
                                     finished_at = ?6, lease_expires = NULL
                     WHERE id = ?1",
                    params![
                        lease.job_id,
                        state.as_str(),
                        n_stored,
                        n_failed,
                        error,
                        now_rfc3339().as_str()
                    ],
                )?;
                run_jobs(tx, lease.run_id)
            })
        })
    }

    /// Gives a leased job back to the queue untouched (e.g. this worker cannot
    /// open its model); `reason` is kept as its error until the next claim.
    pub fn release_job(&self, lease: &Lease, reason: &str) -> Result<bool, StoreError> {
        self.with(|this| {
            Ok(this.connection.execute(
                "UPDATE jobs SET state = 'queued', lease_expires = NULL, error = ?3
                 WHERE id = ?1 AND lease_token = ?2 AND state = 'running'",
                params![lease.job_id, lease.token, reason],
            )? == 1)
        })
    }

    /// How run `run_id`'s jobs stand.
    pub fn run_jobs(&self, run_id: i64) -> Result<RunJobs, StoreError> {
        self.with(|this| run_jobs(&this.connection, run_id))
    }

    /// Runs that have jobs, none of them open or failed, and are not finished:
    /// their last worker ended its job but died before aggregating the run.
    /// Each with its task's name and the spec of its latest job.
    pub fn runs_with_all_jobs_done(&self) -> Result<Vec<(i64, String, String)>, StoreError> {
        self.with(|this| {
            this.connection.query_map(
                "SELECT r.id, t.name, (SELECT j.spec_json FROM jobs j WHERE j.run_id = r.id
                                       ORDER BY j.id DESC LIMIT 1)
                 FROM runs r
                 JOIN tasks t ON t.id = r.task_id
                 WHERE r.status <> 'finished'
                   AND EXISTS (SELECT 1 FROM jobs j WHERE j.run_id = r.id AND j.state = 'done')
                   AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.run_id = r.id
                                   AND j.state IN ('queued', 'running', 'failed'))
                 ORDER BY r.id",
                &[],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
        })
    }

    /// Every job, oldest first; only those in `states` when it is not empty.
    pub fn jobs(&self, states: &[JobState]) -> Result<Vec<Job>, StoreError> {
        let now = now_expr(self.dialect());
        let filter = if states.is_empty() {
            String::new()
        } else {
            let names: Vec<String> = states.iter().map(|s| format!("'{}'", s.as_str())).collect();
            format!(" WHERE state IN ({})", names.join(", "))
        };
        self.with(|this| {
            this.connection.query_map(
                &format!(
                    "SELECT {JOB_COLUMNS},
                            CASE WHEN state = 'running' THEN lease_expires - {now} END
                     FROM jobs{filter} ORDER BY id"
                ),
                &[],
                |row| job_from_row(row, row.get(17)?),
            )
        })
    }

    /// Requeues failed or cancelled jobs: those of `ids`, or every failed job
    /// when `ids` is empty. Returns how many.
    pub fn retry_jobs(&self, ids: &[i64]) -> Result<u64, StoreError> {
        let which = match ids_list(ids) {
            Some(list) => format!("state IN ('failed', 'cancelled') AND id IN ({list})"),
            None => "state = 'failed'".into(),
        };
        self.with(|this| {
            this.connection.execute(
                &format!(
                    "UPDATE jobs SET state = 'queued', lease_expires = NULL, finished_at = NULL
                     WHERE {which}"
                ),
                &[],
            )
        })
    }

    /// Cancels queued or running jobs: those of `ids`, or all of them when
    /// `ids` is empty. A running job's worker stops at its next write or
    /// heartbeat. Returns how many.
    pub fn cancel_jobs(&self, ids: &[i64]) -> Result<u64, StoreError> {
        let which = match ids_list(ids) {
            Some(list) => format!("state IN ('queued', 'running') AND id IN ({list})"),
            None => "state IN ('queued', 'running')".into(),
        };
        self.with(|this| {
            this.connection.execute(
                &format!(
                    "UPDATE jobs SET state = 'cancelled', lease_expires = NULL, finished_at = ?1
                     WHERE {which}"
                ),
                params![now_rfc3339().as_str()],
            )
        })
    }

    /// How many times each sample of a run was written, in document order.
    pub fn sample_attempts(&self, run_id: i64) -> Result<Vec<(u64, u64)>, StoreError> {
        self.with(|this| {
            this.connection.query_map(
                "SELECT doc_id, attempts FROM samples WHERE run_id = ?1 ORDER BY doc_id",
                params![run_id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
        })
    }
}

/// Checks, under a row lock of `lock` strength, that `lease` still holds its job.
fn hold(
    tx: &Connection,
    dialect: Dialect,
    lease: &Lease,
    row_lock: &'static str,
) -> Result<(), StoreError> {
    let held = tx
        .query_opt(
            &format!(
                "SELECT 1 FROM jobs WHERE id = ?1 AND lease_token = ?2 AND state = 'running'{}",
                lock(dialect, row_lock)
            ),
            params![lease.job_id, lease.token],
        )?
        .is_some();
    if held {
        Ok(())
    } else {
        Err(StoreError::LeaseLost {
            job_id: lease.job_id,
        })
    }
}

fn run_jobs(tx: &Connection, run_id: i64) -> Result<RunJobs, StoreError> {
    let row = tx.query_one(
        "SELECT coalesce(sum(CASE WHEN state IN ('queued', 'running') THEN 1 ELSE 0 END), 0),
                coalesce(sum(CASE WHEN state = 'failed' THEN 1 ELSE 0 END), 0)
         FROM jobs WHERE run_id = ?1",
        params![run_id],
    )?;
    Ok(RunJobs {
        open: row.get(0)?,
        failed: row.get(1)?,
    })
}

fn ids_list(ids: &[i64]) -> Option<String> {
    (!ids.is_empty()).then(|| {
        ids.iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    })
}

#[cfg(test)]
mod tests {
    use super::glob_to_like;

    #[test]
    fn globs_become_escaped_like_patterns() {
        assert_eq!(glob_to_like("*"), "%");
        assert_eq!(glob_to_like("local:*"), "local:%");
        assert_eq!(glob_to_like("mock:a?c"), "mock:a_c");
        assert_eq!(glob_to_like("a_b%c\\"), "a\\_b\\%c\\\\");
    }
}
