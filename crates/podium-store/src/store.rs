//! [`Store`]: one connection, to SQLite or PostgreSQL, and the queries of runs,
//! samples, the response cache and benchmarks.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::location::{Location, PostgresUrl};
use crate::migrations::migrate;
use crate::sql::{self, Begin, Dialect, Param, Row, params};
use crate::timestamp::now_rfc3339;
use crate::{
    LatestResult, ModelRecord, RunKey, RunState, RunStatus, RunSummary, SampleRecord, SampleStatus,
    SampleWrite, StoreError, TokenTotals,
};

/// How long a statement waits for another process's write lock (e.g. the board
/// server reading while `podium eval` writes) before failing with "busy".
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long connecting to a PostgreSQL server may take, unless the URL says
/// (`connect_timeout=SECONDS`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A Podium database, SQLite or PostgreSQL. Synchronous and `Send` but not
/// `Sync`: share it behind a mutex and call it from `spawn_blocking` in async code.
pub struct Store {
    pub(crate) connection: sql::Connection,
    /// The database file, named in errors; `None` in memory.
    path: Option<PathBuf>,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and its parent
    /// directories, switches it to WAL, and applies pending migrations.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(|source| StoreError::CreateDir {
                path: parent.to_owned(),
                source,
            })?;
        }
        let open_error = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let connection = rusqlite::Connection::open(path).map_err(open_error)?;
        // Set before switching to WAL, which itself needs a lock another process
        // opening the same fresh database may hold for a moment.
        connection.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
        // WAL lets readers (the board) proceed while one writer (an eval) commits,
        // and makes each sample's commit cheap. SQLite answers with the mode it
        // ended up in; a filesystem without shared memory can refuse WAL, and
        // Podium then still works, only with readers blocking writers.
        let _mode: String = connection
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(open_error)?;
        // In WAL mode NORMAL cannot corrupt the database; a power cut may lose the
        // last few commits, which resume simply evaluates again.
        connection
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_error)?;
        Self::configure_sqlite(connection, Some(path.to_owned()))
    }

    /// Opens the database `url` names: `postgres://…` or `postgresql://…` is a
    /// PostgreSQL database, `sqlite:PATH` or a plain path an SQLite file (see
    /// [`Location::parse`]).
    pub fn open_url(url: &str) -> Result<Store, StoreError> {
        Self::open_location(&Location::parse(std::ffi::OsStr::new(url))?)
    }

    /// Opens the database at `location`, applying pending migrations.
    pub fn open_location(location: &Location) -> Result<Store, StoreError> {
        match location {
            Location::Sqlite(path) => Self::open(path),
            Location::Postgres(url) => Self::open_postgres(url),
        }
    }

    /// Connects to a PostgreSQL database (with TLS when the URL asks for it,
    /// the server's certificate verified) and applies pending migrations under
    /// an advisory lock.
    fn open_postgres(url: &PostgresUrl) -> Result<Store, StoreError> {
        let mut config = (*url.config).clone();
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("podium");
        }
        let connected = match &url.tls {
            None => sql::outside_async(|| config.connect(postgres::NoTls)),
            Some(tls) => {
                let connector = tls_connector(tls)?;
                sql::outside_async(|| config.connect(connector))
            }
        };
        let client = connected.map_err(|source| StoreError::Connect {
            database: url.name().to_owned(),
            source,
        })?;
        let mut connection = sql::Connection::postgres(client, url.name().to_owned());
        migrate(&mut connection)?;
        Ok(Store {
            connection,
            path: None,
        })
    }

    /// A private, empty database for tests and dry runs (no WAL: nothing shares it).
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Self::configure_sqlite(rusqlite::Connection::open_in_memory()?, None)
    }

    fn configure_sqlite(
        connection: rusqlite::Connection,
        path: Option<PathBuf>,
    ) -> Result<Store, StoreError> {
        let mut store = Store {
            connection: sql::Connection::Sqlite(connection),
            path,
        };
        store.with_mut(|this| {
            if let sql::Connection::Sqlite(connection) = &this.connection {
                connection.busy_timeout(BUSY_TIMEOUT)?;
                // SQLite leaves foreign keys off by default; on, a sample can never
                // point at a run that does not exist.
                connection.pragma_update(None, "foreign_keys", true)?;
                // Room for every statement the store runs, prepared once.
                connection.set_prepared_statement_cache_capacity(64);
            }
            migrate(&mut this.connection)
        })?;
        Ok(store)
    }

    /// The database as errors and logs name it: the SQLite file, or the
    /// PostgreSQL URL without its password; `:memory:` in memory.
    pub fn name(&self) -> String {
        match (&self.connection, &self.path) {
            (sql::Connection::Postgres(pg), _) => pg.name.clone(),
            (sql::Connection::Sqlite(_), Some(path)) => path.display().to_string(),
            (sql::Connection::Sqlite(_), None) => ":memory:".into(),
        }
    }

    /// Whether this connection to PostgreSQL is encrypted (`pg_stat_ssl`);
    /// `false` for SQLite.
    pub fn connection_encrypted(&self) -> Result<bool, StoreError> {
        if !self.is_postgres() {
            return Ok(false);
        }
        self.with(|this| {
            this.connection
                .query_one(
                    "SELECT coalesce((SELECT CASE WHEN ssl THEN 1 ELSE 0 END FROM pg_stat_ssl
                                      WHERE pid = pg_backend_pid()), 0)",
                    &[],
                )?
                .get::<bool>(0)
        })
    }

    /// Whether this store is a PostgreSQL database.
    pub fn is_postgres(&self) -> bool {
        self.connection.dialect() == Dialect::Postgres
    }

    pub(crate) fn dialect(&self) -> Dialect {
        self.connection.dialect()
    }

    /// Runs one operation; an SQLite error names the database file (a full disk or
    /// a read-only folder is reported with the file it hit). PostgreSQL errors
    /// name their database already.
    pub(crate) fn with<T>(
        &self,
        operation: impl FnOnce(&Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let result = operation(self);
        result.map_err(|error| self.named(error))
    }

    /// [`Store::with`] for operations that need the store mutably.
    pub(crate) fn with_mut<T>(
        &mut self,
        operation: impl FnOnce(&mut Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let result = operation(self);
        result.map_err(|error| self.named(error))
    }

    fn named(&self, error: StoreError) -> StoreError {
        match (error, &self.path) {
            (StoreError::Sqlite(source), Some(path)) => StoreError::Database {
                path: path.clone(),
                source,
            },
            (error, _) => error,
        }
    }

    fn sqlite(&self, what: &'static str) -> Result<&rusqlite::Connection, StoreError> {
        match &self.connection {
            sql::Connection::Sqlite(connection) => Ok(connection),
            sql::Connection::Postgres(_) => Err(StoreError::Unsupported(what)),
        }
    }

    /// Caps the database at `pages` pages for this connection (SQLite's
    /// `max_page_count`): writes past it fail as on a full disk. For fault-injection
    /// tests; SQLite only.
    #[doc(hidden)]
    pub fn simulate_full_disk_at_pages(&self, pages: u64) -> Result<u64, StoreError> {
        self.with(|this| {
            Ok(this.sqlite("max_page_count")?.query_row(
                &format!("PRAGMA max_page_count = {pages}"),
                [],
                |row| row.get(0),
            )?)
        })
    }

    /// Pages the database file has now (`PRAGMA page_count`); SQLite only.
    #[doc(hidden)]
    pub fn page_count(&self) -> Result<u64, StoreError> {
        self.with(|this| {
            Ok(this
                .sqlite("page_count")?
                .query_row("PRAGMA page_count", [], |row| row.get(0))?)
        })
    }

    /// The journal mode in effect (`wal` for file databases, `memory` in memory);
    /// `postgresql` for a PostgreSQL database, which has its own write-ahead log.
    pub fn journal_mode(&self) -> Result<String, StoreError> {
        self.with(|this| match &this.connection {
            sql::Connection::Sqlite(connection) => {
                Ok(connection.query_row("PRAGMA journal_mode", [], |row| row.get(0))?)
            }
            sql::Connection::Postgres(_) => Ok("postgresql".into()),
        })
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.with(|this| match &this.connection {
            sql::Connection::Sqlite(connection) => {
                Ok(connection.query_row("PRAGMA user_version", [], |row| row.get(0))?)
            }
            sql::Connection::Postgres(_) => {
                crate::migrations::postgres_schema_version(&this.connection)
            }
        })
    }

    /// Returns the id of the model with this (spec, fingerprint), inserting it if
    /// new. A known chat-template hash is updated; `None` never erases one.
    pub fn upsert_model(&self, model: &ModelRecord) -> Result<i64, StoreError> {
        self.with(|this| {
            this.connection
                .query_one(
                    "INSERT INTO models (spec, fingerprint, chat_template_hash) VALUES (?1, ?2, ?3)
                     ON CONFLICT (spec, fingerprint) DO UPDATE
                         SET chat_template_hash =
                             coalesce(excluded.chat_template_hash, models.chat_template_hash)
                     RETURNING id",
                    params![&model.spec, &model.fingerprint, &model.chat_template_hash],
                )?
                .get(0)
        })
    }

    /// Returns the id of the task with this (name, content hash), inserting it if new.
    pub fn upsert_task(
        &self,
        name: &str,
        content_hash: &str,
        config_json: &str,
    ) -> Result<i64, StoreError> {
        self.with(|this| {
            this.connection
                .query_one(
                    "INSERT INTO tasks (name, content_hash, config_json) VALUES (?1, ?2, ?3)
                     ON CONFLICT (name, content_hash) DO UPDATE SET config_json = excluded.config_json
                     RETURNING id",
                    params![name, content_hash, config_json],
                )?
                .get(0)
        })
    }

    /// Returns the run with this identity, creating it if there is none, so that
    /// running the same evaluation again resumes it instead of starting over.
    ///
    /// A failed run is set back to running (its ok samples are kept). A finished
    /// run is returned as it is, with `finished: true`; the caller decides whether
    /// to skip it or [`reopen_run`](Self::reopen_run). `manifest_json` and
    /// `podium_version` are recorded only when the run is created.
    pub fn find_or_create_run(
        &mut self,
        key: &RunKey,
        manifest_json: &str,
        podium_version: &str,
    ) -> Result<(i64, RunState), StoreError> {
        let dialect = self.dialect();
        self.with_mut(|this| {
            // SQLite's IMMEDIATE transaction takes the write lock before the lookup;
            // on PostgreSQL the model's row is locked instead. Either way two
            // processes resuming the same run cannot both decide to create it.
            this.connection.transaction(Begin::Write, |tx| {
                if dialect == Dialect::Postgres {
                    tx.execute(
                        "SELECT id FROM models WHERE id = ?1 FOR UPDATE",
                        params![key.model_id],
                    )?;
                }
                let seed = seed_to_sql(key.seed);
                let existing = tx
                    .query_opt(
                        "SELECT id, status FROM runs
                         WHERE model_id = ?1 AND task_id = ?2 AND n_shots = ?3
                           AND chat_template = ?4 AND seed = ?5
                           AND coalesce(limit_n, -1) = coalesce(CAST(?6 AS BIGINT), -1)",
                        params![
                            key.model_id,
                            key.task_id,
                            key.n_shots,
                            key.chat_template,
                            seed,
                            key.limit
                        ],
                    )?
                    .map(|row| Ok::<_, StoreError>((row.get::<i64>(0)?, row.get::<RunStatus>(1)?)))
                    .transpose()?;
                Ok(match existing {
                    Some((run_id, RunStatus::Finished)) => (
                        run_id,
                        RunState {
                            existing: true,
                            finished: true,
                        },
                    ),
                    Some((run_id, status)) => {
                        if status == RunStatus::Failed {
                            tx.execute(
                                "UPDATE runs SET status = 'running', error = NULL, finished_at = NULL
                                 WHERE id = ?1",
                                params![run_id],
                            )?;
                        }
                        // A killed session recorded no end: it counts up to its last
                        // stored sample (a failed one was closed already). A new
                        // session starts now.
                        tx.execute(
                            &format!(
                                "UPDATE runs SET active_ms = active_ms + {}, session_started_at = ?2
                                 WHERE id = ?1",
                                session_ms(
                                    dialect,
                                    "(SELECT max(created_at) FROM samples
                                      WHERE run_id = ?1 AND created_at >= runs.session_started_at)"
                                )
                            ),
                            params![run_id, now_rfc3339().as_str()],
                        )?;
                        (
                            run_id,
                            RunState {
                                existing: true,
                                finished: false,
                            },
                        )
                    }
                    None => {
                        let now = now_rfc3339();
                        let run_id = tx
                            .query_one(
                                "INSERT INTO runs (model_id, task_id, manifest_json, podium_version,
                                                   n_shots, chat_template, seed, limit_n, status,
                                                   started_at, active_ms, session_started_at)
                                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'running', ?9, 0, ?9)
                                 RETURNING id",
                                params![
                                    key.model_id,
                                    key.task_id,
                                    manifest_json,
                                    podium_version,
                                    key.n_shots,
                                    key.chat_template,
                                    seed,
                                    key.limit,
                                    now.as_str()
                                ],
                            )?
                            .get(0)?;
                        (
                            run_id,
                            RunState {
                                existing: false,
                                finished: false,
                            },
                        )
                    }
                })
            })
        })
    }

    /// The run with this identity, by the model's (spec, fingerprint) and the
    /// task's (name, content hash), without creating anything: how a worker
    /// checks that the model and task it opened are the run's own.
    pub fn find_run(
        &self,
        model: &ModelRecord,
        task_name: &str,
        task_hash: &str,
        key: &RunKey,
    ) -> Result<Option<i64>, StoreError> {
        self.with(|this| {
            this.connection
                .query_opt(
                    "SELECT r.id FROM runs r
                     JOIN models m ON m.id = r.model_id
                     JOIN tasks t ON t.id = r.task_id
                     WHERE m.spec = ?1 AND m.fingerprint = ?2 AND t.name = ?3
                       AND t.content_hash = ?4 AND r.n_shots = ?5 AND r.chat_template = ?6
                       AND r.seed = ?7
                       AND coalesce(r.limit_n, -1) = coalesce(CAST(?8 AS BIGINT), -1)",
                    params![
                        &model.spec,
                        &model.fingerprint,
                        task_name,
                        task_hash,
                        key.n_shots,
                        key.chat_template,
                        seed_to_sql(key.seed),
                        key.limit
                    ],
                )?
                .map(|row| row.get(0))
                .transpose()
        })
    }

    /// Document ids of the run's successful samples: the ones resume can skip.
    pub fn completed_doc_ids(&self, run_id: i64) -> Result<HashSet<u64>, StoreError> {
        self.with(|this| {
            this.connection
                .query(
                    "SELECT doc_id FROM samples WHERE run_id = ?1 AND status = 'ok'",
                    params![run_id],
                )?
                .iter()
                .map(|row| row.get(0))
                .collect()
        })
    }

    /// Stores one sample in one transaction. Writing a document again replaces
    /// its row (never adds a second one), except that a failed retry does not
    /// overwrite an ok sample. A token count above [`MAX_STORED_TOKEN_COUNT`] is
    /// refused, before anything is written.
    pub fn put_sample(
        &mut self,
        run_id: i64,
        sample: &SampleRecord,
    ) -> Result<SampleWrite, StoreError> {
        check_token_counts(run_id, sample)?;
        let dialect = self.dialect();
        self.with_mut(|this| {
            this.connection
                .transaction(Begin::Write, |tx| write_sample(tx, dialect, run_id, sample))
        })
    }

    /// All samples of a run, ok and failed, in document order.
    pub fn samples(&self, run_id: i64) -> Result<Vec<SampleRecord>, StoreError> {
        self.with(|this| {
            this.connection.query_map(
                "SELECT doc_id, prompt_hash, requests_json, responses_json, metrics_json,
                        n_input_tokens, n_output_tokens, timing_json, status, error
                 FROM samples WHERE run_id = ?1 ORDER BY doc_id",
                params![run_id],
                sample_from_row,
            )
        })
    }

    /// Marks a run finished with its aggregated results.
    pub fn finish_run(&self, run_id: i64, results_json: &str) -> Result<(), StoreError> {
        self.with(|this| {
            this.update_run(
                run_id,
                &format!(
                    "UPDATE runs SET status = 'finished', finished_at = ?2, results_json = ?3,
                                     error = NULL, active_ms = active_ms + {},
                                     session_started_at = NULL
                     WHERE id = ?1",
                    session_ms(this.dialect(), "?2")
                ),
                params![run_id, now_rfc3339().as_str(), results_json],
            )
        })
    }

    /// Marks a run failed with the reason; its ok samples stay for a later resume.
    pub fn fail_run(&self, run_id: i64, error: &str) -> Result<(), StoreError> {
        self.with(|this| {
            this.update_run(
                run_id,
                &format!(
                    "UPDATE runs SET status = 'failed', finished_at = ?2, error = ?3,
                                     active_ms = active_ms + {}, session_started_at = NULL
                     WHERE id = ?1",
                    session_ms(this.dialect(), "?2")
                ),
                params![run_id, now_rfc3339().as_str(), error],
            )
        })
    }

    /// Sets a finished (or failed) run back to running, e.g. to add documents.
    /// Its results are cleared because they no longer cover every sample; until
    /// it finishes again the board shows the previous finished run, if any.
    pub fn reopen_run(&self, run_id: i64) -> Result<(), StoreError> {
        self.with(|this| {
            this.update_run(
                run_id,
                "UPDATE runs SET status = 'running', finished_at = NULL, results_json = NULL,
                                 error = NULL, session_started_at = ?2
                 WHERE id = ?1",
                params![run_id, now_rfc3339().as_str()],
            )
        })
    }

    fn update_run(&self, run_id: i64, sql: &str, params: &[Param<'_>]) -> Result<(), StoreError> {
        if self.connection.execute(sql, params)? == 0 {
            return Err(StoreError::RunNotFound(run_id));
        }
        Ok(())
    }

    /// Every run, oldest first, with its sample counts.
    pub fn list_runs(&self) -> Result<Vec<RunSummary>, StoreError> {
        self.with(|this| {
            this.connection.query_map(
                "SELECT r.id, m.spec, t.name, r.status,
                        (SELECT count(*) FROM samples s WHERE s.run_id = r.id),
                        (SELECT count(*) FROM samples s WHERE s.run_id = r.id AND s.status = 'failed'),
                        r.started_at, r.finished_at, r.n_shots, r.seed, r.limit_n
                 FROM runs r
                 JOIN models m ON m.id = r.model_id
                 JOIN tasks t ON t.id = r.task_id
                 ORDER BY r.id",
                &[],
                |row| {
                    Ok(RunSummary {
                        run_id: row.get(0)?,
                        model_spec: row.get(1)?,
                        task_name: row.get(2)?,
                        status: row.get(3)?,
                        n_samples: row.get(4)?,
                        n_failed: row.get(5)?,
                        started_at: row.get(6)?,
                        finished_at: row.get(7)?,
                        n_shots: row.get(8)?,
                        seed: seed_from_sql(row.get(9)?),
                        limit: row.get(10)?,
                    })
                },
            )
        })
    }

    /// Token counts summed over the successful samples of run `run_id`.
    ///
    /// Whatever the samples hold (a database written before counts were checked may
    /// hold counts near 2^63, or anything edited in by hand), the sums are taken in
    /// floating point (SQLite's `TOTAL`, which never overflows, where `SUM` fails the
    /// whole query with "integer overflow"; PostgreSQL's `sum` of `float8`) and
    /// saturate into `u64`; negative sums read as 0.
    pub fn run_token_totals(&self, run_id: i64) -> Result<TokenTotals, StoreError> {
        Ok(self
            .token_totals_by_run(&[run_id])?
            .remove(&run_id)
            .unwrap_or_default())
    }

    /// [`Store::run_token_totals`] for many runs in one query (the board's cost
    /// column reads every run on the board): the totals of each run in `run_ids`
    /// that has a successful sample; a run without one is absent (its totals are
    /// all zero). Sums saturate as in [`Store::run_token_totals`].
    pub fn token_totals_by_run(
        &self,
        run_ids: &[i64],
    ) -> Result<HashMap<i64, TokenTotals>, StoreError> {
        self.with(|this| {
            // Bound as a JSON array, so any number of ids is one parameter; each id
            // is one range of the samples' primary key (run_id, doc_id).
            let ids = serde_json::to_string(run_ids).unwrap_or_else(|_| "[]".into());
            let sql = match this.dialect() {
                Dialect::Sqlite => {
                    "SELECT run_id, COUNT(*), COUNT(n_input_tokens), TOTAL(n_input_tokens),
                            TOTAL(n_output_tokens)
                     FROM samples
                     WHERE run_id IN (SELECT value FROM json_each(?1)) AND status = 'ok'
                     GROUP BY run_id"
                }
                Dialect::Postgres => {
                    "SELECT run_id, COUNT(*), COUNT(n_input_tokens),
                            coalesce(sum(n_input_tokens::float8), 0),
                            coalesce(sum(n_output_tokens::float8), 0)
                     FROM samples
                     WHERE run_id IN (SELECT value::bigint FROM json_array_elements_text(?1::json))
                       AND status = 'ok'
                     GROUP BY run_id"
                }
            };
            let rows = this.connection.query(sql, params![ids.as_str()])?;
            rows.iter()
                .map(|row| {
                    // `as` saturates (and maps NaN to 0), which is what a sum needs here.
                    let sum =
                        |i| -> Result<u64, StoreError> { Ok(row.get::<f64>(i)?.max(0.0) as u64) };
                    Ok((
                        row.get::<i64>(0)?,
                        TokenTotals {
                            samples: row.get(1)?,
                            counted: row.get(2)?,
                            input_tokens: sum(3)?,
                            output_tokens: sum(4)?,
                        },
                    ))
                })
                .collect()
        })
    }

    /// For each (model spec, task name), the most recently finished run,
    /// ordered by model spec then task name.
    pub fn latest_results(&self) -> Result<Vec<LatestResult>, StoreError> {
        self.with(|this| {
            // finished_at has a fixed-width format, so text order is time order; the
            // run id breaks ties between runs finished in the same microsecond.
            this.connection.query_map(
                "SELECT spec, name, id, finished_at, results_json, started_at, active_ms FROM (
                     SELECT m.spec, t.name, r.id, r.finished_at, r.results_json, r.started_at,
                            r.active_ms,
                            row_number() OVER (
                                PARTITION BY m.spec, t.name
                                ORDER BY r.finished_at DESC, r.id DESC
                            ) AS recency
                     FROM runs r
                     JOIN models m ON m.id = r.model_id
                     JOIN tasks t ON t.id = r.task_id
                     WHERE r.status = 'finished'
                       AND r.finished_at IS NOT NULL
                       AND r.results_json IS NOT NULL
                 ) AS ranked
                 WHERE recency = 1
                 ORDER BY spec, name",
                &[],
                |row| {
                    Ok(LatestResult {
                        model_spec: row.get(0)?,
                        task_name: row.get(1)?,
                        run_id: row.get(2)?,
                        finished_at: row.get(3)?,
                        results_json: row.get(4)?,
                        started_at: row.get(5)?,
                        active_ms: row.get(6)?,
                    })
                },
            )
        })
    }

    /// The cached response for `key` (`podium_core::cache_key`), if any.
    pub fn cache_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.with(|this| {
            this.connection
                .query_opt(
                    "SELECT response_json FROM cache WHERE key = ?1",
                    params![key],
                )?
                .map(|row| row.get(0))
                .transpose()
        })
    }

    /// Caches `response_json` under `key`, replacing any earlier entry.
    pub fn cache_put(&self, key: &str, response_json: &str) -> Result<(), StoreError> {
        self.with(|this| {
            this.connection.execute(
                "INSERT INTO cache (key, response_json, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE
                     SET response_json = excluded.response_json, created_at = excluded.created_at",
                params![key, response_json, now_rfc3339().as_str()],
            )?;
            Ok(())
        })
    }
}

/// The largest token count one sample may store: far above any real request (the
/// backends refuse a server's count above 10^9 per request), and small enough that
/// summing the counts of millions of samples stays within 64-bit integers.
pub const MAX_STORED_TOKEN_COUNT: u64 = 1_000_000_000_000;

pub(crate) fn sample_from_row(row: &Row) -> Result<SampleRecord, StoreError> {
    Ok(SampleRecord {
        doc_id: row.get(0)?,
        prompt_hash: row.get(1)?,
        requests_json: row.get(2)?,
        responses_json: row.get(3)?,
        metrics_json: row.get(4)?,
        n_input_tokens: row.get(5)?,
        n_output_tokens: row.get(6)?,
        timing_json: row.get(7)?,
        status: row.get(8)?,
        error: row.get(9)?,
    })
}

/// Both engines' integers are signed 64-bit; a seed is any `u64`. Reinterpreting
/// the bits keeps every seed storable and round-trips exactly (seeds above
/// `i64::MAX` read as negative numbers in raw SQL, which nothing relies on).
pub(crate) fn seed_to_sql(seed: u64) -> i64 {
    seed as i64
}

pub(crate) fn seed_from_sql(stored: i64) -> u64 {
    stored as u64
}

/// One stored load level of a `podium bench` run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BenchResult {
    pub id: i64,
    pub model_spec: String,
    /// A label such as `concurrency 8` or `rate 2.00/s (burstiness 1)`.
    pub load: String,
    pub config_json: String,
    pub summary_json: String,
    pub created_at: String,
}

impl Store {
    /// Record one load level of a bench run.
    pub fn put_bench_result(
        &self,
        model_spec: &str,
        load: &str,
        config_json: &str,
        summary_json: &str,
    ) -> Result<i64, StoreError> {
        self.put_bench_result_at(
            model_spec,
            load,
            config_json,
            summary_json,
            &crate::rfc3339_utc(std::time::SystemTime::now()),
        )
    }

    /// The newest result of each (model, load level), ordered by model then load.
    pub fn latest_bench_results(&self) -> Result<Vec<BenchResult>, StoreError> {
        self.with(|this| {
            this.connection.query_map(
                "SELECT id, model_spec, load, config_json, summary_json, created_at FROM (
                     SELECT *, row_number() OVER (
                         PARTITION BY model_spec, load ORDER BY created_at DESC, id DESC
                     ) AS recency
                     FROM bench_results
                 ) AS ranked
                 WHERE recency = 1
                 ORDER BY model_spec, load",
                &[],
                |row| {
                    Ok(BenchResult {
                        id: row.get(0)?,
                        model_spec: row.get(1)?,
                        load: row.get(2)?,
                        config_json: row.get(3)?,
                        summary_json: row.get(4)?,
                        created_at: row.get(5)?,
                    })
                },
            )
        })
    }
}

/// SQL for the milliseconds from the run's `session_started_at` to `end` (an SQL
/// expression giving an RFC 3339 time); 0 where either is NULL (no open session,
/// or no sample stored in it).
fn session_ms(dialect: Dialect, end: &str) -> String {
    match dialect {
        Dialect::Sqlite => format!(
            "coalesce(CAST(round((julianday({end}) - julianday(session_started_at)) * 86400000)
                      AS INTEGER), 0)"
        ),
        Dialect::Postgres => format!(
            "coalesce(CAST(round(extract(epoch FROM (CAST(CAST({end} AS TEXT) AS timestamptz)
                                         - CAST(session_started_at AS timestamptz))) * 1000)
                      AS BIGINT), 0)"
        ),
    }
}

/// The TLS set-up of a PostgreSQL connection: Mozilla's roots and the
/// certificates of `sslrootcert`, ring as the crypto provider.
fn tls_connector(
    settings: &crate::location::TlsSettings,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = &settings.root_cert {
        let named =
            |message: String| StoreError::Tls(format!("sslrootcert {}: {message}", path.display()));
        let mut n = 0;
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| named(e.to_string()))? {
            roots
                .add(cert.map_err(|e| named(e.to_string()))?)
                .map_err(|e| named(e.to_string()))?;
            n += 1;
        }
        if n == 0 {
            return Err(named("holds no PEM certificate".into()));
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// Refuses a token count above [`MAX_STORED_TOKEN_COUNT`] before anything is written.
pub(crate) fn check_token_counts(run_id: i64, sample: &SampleRecord) -> Result<(), StoreError> {
    for (field, count) in [
        ("n_input_tokens", sample.n_input_tokens),
        ("n_output_tokens", sample.n_output_tokens),
    ] {
        if let Some(value) = count.filter(|&n| n > MAX_STORED_TOKEN_COUNT) {
            return Err(StoreError::TokenCount {
                run_id,
                doc_id: sample.doc_id,
                field,
                value,
            });
        }
    }
    Ok(())
}

/// The sample upsert of [`Store::put_sample`], inside the caller's write
/// transaction. Every write that changes the row counts one more attempt.
pub(crate) fn write_sample(
    tx: &sql::Connection,
    dialect: Dialect,
    run_id: i64,
    sample: &SampleRecord,
) -> Result<SampleWrite, StoreError> {
    // On PostgreSQL, writers of one run share its row lock (KEY SHARE:
    // they do not wait for each other) and each locks the sample it
    // replaces; SQLite's write lock covers both.
    let (lock_run, lock_sample) = match dialect {
        Dialect::Sqlite => ("", ""),
        Dialect::Postgres => (" FOR KEY SHARE", " FOR UPDATE"),
    };
    let run_exists = tx
        .query_opt(
            &format!("SELECT 1 FROM runs WHERE id = ?1{lock_run}"),
            params![run_id],
        )?
        .is_some();
    if !run_exists {
        return Err(StoreError::RunNotFound(run_id));
    }
    let previous: Option<SampleStatus> = tx
        .query_opt(
            &format!("SELECT status FROM samples WHERE run_id = ?1 AND doc_id = ?2{lock_sample}"),
            params![run_id, sample.doc_id],
        )?
        .map(|row| row.get(0))
        .transpose()?;
    // The condition on the update keeps an ok sample from a failed retry
    // even when another connection inserted the row after the read above
    // (PostgreSQL cannot lock a row that does not exist yet).
    let written = tx.query_opt(
        "INSERT INTO samples (run_id, doc_id, prompt_hash, requests_json, responses_json,
                                  metrics_json, n_input_tokens, n_output_tokens, timing_json,
                                  status, error, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
             ON CONFLICT (run_id, doc_id) DO UPDATE SET
                 attempts = samples.attempts + 1,
                 prompt_hash = excluded.prompt_hash,
                 requests_json = excluded.requests_json,
                 responses_json = excluded.responses_json,
                 metrics_json = excluded.metrics_json,
                 n_input_tokens = excluded.n_input_tokens,
                 n_output_tokens = excluded.n_output_tokens,
                 timing_json = excluded.timing_json,
                 status = excluded.status,
                 error = excluded.error,
                 created_at = excluded.created_at
             WHERE NOT (samples.status = 'ok' AND excluded.status = 'failed')
             RETURNING 1",
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
            now_rfc3339().as_str()
        ],
    )?;
    Ok(match (written, previous) {
        (None, _) => SampleWrite::KeptExisting,
        (Some(_), None) => SampleWrite::Inserted,
        (Some(_), Some(_)) => SampleWrite::Replaced,
    })
}
