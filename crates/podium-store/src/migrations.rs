//! Forward-only schema migrations, the same versions in both dialects: SQLite
//! tracks the version in `PRAGMA user_version`, PostgreSQL in the one-row table
//! `podium_schema`.
//!
//! Migration `i` (0-based) takes the schema from version `i` to `i + 1`. Never
//! edit a migration that has shipped: databases in the field already ran it.
//! Append a new one instead, to both lists.

use rusqlite::{Connection, TransactionBehavior};

use crate::StoreError;
use crate::sql::{self, params};

/// The schema version this build writes; databases newer than this are refused.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

const _: () = assert!(MIGRATIONS.len() == POSTGRES_MIGRATIONS.len());
const MIGRATIONS: &[&str] = &[
    // 1: models, tasks, runs, samples, cache.
    r#"
    CREATE TABLE models (
        id                 INTEGER PRIMARY KEY,
        spec               TEXT NOT NULL,
        fingerprint        TEXT NOT NULL,
        chat_template_hash TEXT,
        UNIQUE (spec, fingerprint)
    );

    CREATE TABLE tasks (
        id           INTEGER PRIMARY KEY,
        name         TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        config_json  TEXT NOT NULL CHECK (json_valid(config_json)),
        UNIQUE (name, content_hash)
    );

    CREATE TABLE runs (
        id             INTEGER PRIMARY KEY,
        model_id       INTEGER NOT NULL REFERENCES models (id),
        task_id        INTEGER NOT NULL REFERENCES tasks (id),
        manifest_json  TEXT NOT NULL CHECK (json_valid(manifest_json)),
        podium_version TEXT NOT NULL,
        n_shots        INTEGER NOT NULL CHECK (n_shots >= 0),
        chat_template  INTEGER NOT NULL CHECK (chat_template IN (0, 1)),
        seed           INTEGER NOT NULL,
        limit_n        INTEGER CHECK (limit_n >= 0),
        status         TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed')),
        error          TEXT,
        started_at     TEXT NOT NULL,
        finished_at    TEXT,
        results_json   TEXT CHECK (results_json IS NULL OR json_valid(results_json))
    );

    -- One run per identity, so resuming can never fork a second copy. limit_n is
    -- nullable and NULLs are distinct in UNIQUE, hence the ifnull.
    CREATE UNIQUE INDEX runs_identity ON runs (
        model_id, task_id, n_shots, chat_template, seed, ifnull(limit_n, -1)
    );

    CREATE TABLE samples (
        run_id          INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        doc_id          INTEGER NOT NULL CHECK (doc_id >= 0),
        prompt_hash     TEXT NOT NULL,
        requests_json   TEXT NOT NULL CHECK (json_valid(requests_json)),
        responses_json  TEXT NOT NULL CHECK (json_valid(responses_json)),
        metrics_json    TEXT NOT NULL CHECK (json_valid(metrics_json)),
        n_input_tokens  INTEGER,
        n_output_tokens INTEGER,
        timing_json     TEXT NOT NULL CHECK (json_valid(timing_json)),
        status          TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
        error           TEXT,
        created_at      TEXT NOT NULL,
        PRIMARY KEY (run_id, doc_id)
    ) WITHOUT ROWID;

    CREATE TABLE cache (
        key           TEXT PRIMARY KEY,
        response_json TEXT NOT NULL CHECK (json_valid(response_json)),
        created_at    TEXT NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 2: speed benchmarks (`podium bench`), one row per load level.
    r#"
    CREATE TABLE bench_results (
        id           INTEGER PRIMARY KEY,
        model_spec   TEXT NOT NULL,
        load         TEXT NOT NULL,
        config_json  TEXT NOT NULL CHECK (json_valid(config_json)),
        summary_json TEXT NOT NULL CHECK (json_valid(summary_json)),
        created_at   TEXT NOT NULL
    );
    CREATE INDEX bench_results_by_model ON bench_results (model_spec, created_at);
    "#,
    // 3: the time a run was being worked on, summed over the sessions that ran it
    // (a resumed run's pause is not machine time). NULL for runs made before.
    r#"
    ALTER TABLE runs ADD COLUMN active_ms INTEGER;
    ALTER TABLE runs ADD COLUMN session_started_at TEXT;
    "#,
    // 4: a run's token counts without reading its samples' text. A sample row
    // (~1 KB of JSON and more) spills onto overflow pages that lie before the
    // counts, so summing the counts of every run on the board read the whole
    // table; this covering index holds only what the sums need.
    r#"
    CREATE INDEX samples_token_counts
        ON samples (run_id, status, n_input_tokens, n_output_tokens);
    "#,
    // 5: arena battles: people's votes, judge models' verdicts and imported
    // battle files, one row per battle. `judge` is NULL for a person's vote.
    r#"
    CREATE TABLE battles (
        id              INTEGER PRIMARY KEY,
        model_a         TEXT NOT NULL,
        model_b         TEXT NOT NULL,
        winner          TEXT NOT NULL
            CHECK (winner IN ('model_a', 'model_b', 'tie', 'tie (bothbad)')),
        category        TEXT,
        judge           TEXT,
        language        TEXT,
        tstamp          REAL NOT NULL,
        turns           INTEGER NOT NULL,
        anonymous       INTEGER NOT NULL CHECK (anonymous IN (0, 1)),
        conversation_a  TEXT CHECK (conversation_a IS NULL OR json_valid(conversation_a)),
        conversation_b  TEXT CHECK (conversation_b IS NULL OR json_valid(conversation_b)),
        style_json      TEXT CHECK (style_json IS NULL OR json_valid(style_json)),
        judge_output    TEXT,
        source          TEXT NOT NULL,
        created_at      TEXT NOT NULL
    );
    CREATE INDEX battles_by_time ON battles (tstamp, id);
    "#,
    // 6: every answer of a judge model (`podium arena judge`), one row per
    // order a pair was judged in, with its parsed verdict or why it has none.
    // A pair whose two verdicts parse is one battle (`battle_id`); a pair with
    // an unparseable verdict makes no battle but is kept and counted here.
    // `a_first`: whether model_a's answer was shown as Assistant A.
    r#"
    CREATE TABLE judgements (
        id          INTEGER PRIMARY KEY,
        battle_id   INTEGER REFERENCES battles (id),
        judge       TEXT NOT NULL,
        prompt_id   TEXT NOT NULL,
        prompt_hash TEXT NOT NULL,
        category    TEXT,
        model_a     TEXT NOT NULL,
        model_b     TEXT NOT NULL,
        a_first     INTEGER NOT NULL CHECK (a_first IN (0, 1)),
        output      TEXT NOT NULL,
        verdict     TEXT CHECK (verdict IN ('A>>B', 'A>B', 'A=B', 'B>A', 'B>>A')),
        reason      TEXT,
        created_at  TEXT NOT NULL,
        CHECK ((verdict IS NULL) = (reason IS NOT NULL))
    );
    CREATE INDEX judgements_by_pair ON judgements (judge, prompt_hash, model_a, model_b);
    "#,
    // 7: work distribution (`podium eval --queue`, `podium worker`). A job is a
    // shard of one run's documents; a worker holds it under a lease that expires
    // unless renewed (`lease_token` grows at every claim, so a worker whose lease
    // was taken over can no longer write). Times of leases are seconds since the
    // Unix epoch on the database's clock, so workers' clocks do not matter.
    // `samples.attempts` counts the writes of each sample. `shared_limits` holds
    // one pacing clock per (endpoint, limit) and `shared_slots` each endpoint's
    // concurrency slots, so limits hold across all workers together.
    r#"
    ALTER TABLE samples ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1 CHECK (attempts >= 1);

    CREATE TABLE jobs (
        id            INTEGER PRIMARY KEY,
        run_id        INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        model_spec    TEXT NOT NULL,
        task_name     TEXT NOT NULL,
        spec_json     TEXT NOT NULL CHECK (json_valid(spec_json)),
        doc_ids_json  TEXT NOT NULL CHECK (json_valid(doc_ids_json)),
        n_docs        INTEGER NOT NULL CHECK (n_docs > 0),
        state         TEXT NOT NULL
            CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
        worker        TEXT,
        lease_token   INTEGER NOT NULL DEFAULT 0,
        lease_expires REAL,
        claims        INTEGER NOT NULL DEFAULT 0,
        n_stored      INTEGER NOT NULL DEFAULT 0,
        n_failed      INTEGER NOT NULL DEFAULT 0,
        error         TEXT,
        created_at    TEXT NOT NULL,
        started_at    TEXT,
        heartbeat_at  TEXT,
        finished_at   TEXT
    );
    CREATE INDEX jobs_by_state ON jobs (state, id);
    CREATE INDEX jobs_by_run ON jobs (run_id, state);

    CREATE TABLE shared_limits (
        key     TEXT PRIMARY KEY,
        next_at REAL NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE shared_slots (
        key     TEXT NOT NULL,
        slot    INTEGER NOT NULL CHECK (slot >= 0),
        holder  TEXT,
        expires REAL,
        PRIMARY KEY (key, slot)
    ) WITHOUT ROWID;
    "#,
];

/// The same schema in PostgreSQL's dialect, version for version. Integers are
/// `BIGINT` (SQLite's are 64-bit), ids are identity columns that also accept a
/// given id (`podium store copy` keeps ids), JSON is stored as text and checked by
/// a cast, and times stay fixed-width RFC 3339 text, whose order is time order.
const POSTGRES_MIGRATIONS: &[&str] = &[
    // 1: models, tasks, runs, samples, cache.
    r#"
    CREATE TABLE models (
        id                 BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        spec               TEXT NOT NULL,
        fingerprint        TEXT NOT NULL,
        chat_template_hash TEXT,
        UNIQUE (spec, fingerprint)
    );

    CREATE TABLE tasks (
        id           BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        name         TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        config_json  TEXT NOT NULL CHECK (config_json::json IS NOT NULL),
        UNIQUE (name, content_hash)
    );

    CREATE TABLE runs (
        id             BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        model_id       BIGINT NOT NULL REFERENCES models (id),
        task_id        BIGINT NOT NULL REFERENCES tasks (id),
        manifest_json  TEXT NOT NULL CHECK (manifest_json::json IS NOT NULL),
        podium_version TEXT NOT NULL,
        n_shots        BIGINT NOT NULL CHECK (n_shots >= 0),
        chat_template  BIGINT NOT NULL CHECK (chat_template IN (0, 1)),
        seed           BIGINT NOT NULL,
        limit_n        BIGINT CHECK (limit_n >= 0),
        status         TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed')),
        error          TEXT,
        started_at     TEXT NOT NULL,
        finished_at    TEXT,
        results_json   TEXT CHECK (results_json IS NULL OR results_json::json IS NOT NULL)
    );

    CREATE UNIQUE INDEX runs_identity ON runs (
        model_id, task_id, n_shots, chat_template, seed, coalesce(limit_n, -1)
    );

    CREATE TABLE samples (
        run_id          BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        doc_id          BIGINT NOT NULL CHECK (doc_id >= 0),
        prompt_hash     TEXT NOT NULL,
        requests_json   TEXT NOT NULL CHECK (requests_json::json IS NOT NULL),
        responses_json  TEXT NOT NULL CHECK (responses_json::json IS NOT NULL),
        metrics_json    TEXT NOT NULL CHECK (metrics_json::json IS NOT NULL),
        n_input_tokens  BIGINT,
        n_output_tokens BIGINT,
        timing_json     TEXT NOT NULL CHECK (timing_json::json IS NOT NULL),
        status          TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
        error           TEXT,
        created_at      TEXT NOT NULL,
        PRIMARY KEY (run_id, doc_id)
    );

    CREATE TABLE cache (
        key           TEXT PRIMARY KEY,
        response_json TEXT NOT NULL CHECK (response_json::json IS NOT NULL),
        created_at    TEXT NOT NULL
    );
    "#,
    // 2: speed benchmarks.
    r#"
    CREATE TABLE bench_results (
        id           BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        model_spec   TEXT NOT NULL,
        load         TEXT NOT NULL,
        config_json  TEXT NOT NULL CHECK (config_json::json IS NOT NULL),
        summary_json TEXT NOT NULL CHECK (summary_json::json IS NOT NULL),
        created_at   TEXT NOT NULL
    );
    CREATE INDEX bench_results_by_model ON bench_results (model_spec, created_at);
    "#,
    // 3: time worked on a run.
    r#"
    ALTER TABLE runs ADD COLUMN active_ms BIGINT;
    ALTER TABLE runs ADD COLUMN session_started_at TEXT;
    "#,
    // 4: a run's token counts without reading its samples' text.
    r#"
    CREATE INDEX samples_token_counts
        ON samples (run_id, status, n_input_tokens, n_output_tokens);
    "#,
    // 5: arena battles.
    r#"
    CREATE TABLE battles (
        id              BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        model_a         TEXT NOT NULL,
        model_b         TEXT NOT NULL,
        winner          TEXT NOT NULL
            CHECK (winner IN ('model_a', 'model_b', 'tie', 'tie (bothbad)')),
        category        TEXT,
        judge           TEXT,
        language        TEXT,
        tstamp          DOUBLE PRECISION NOT NULL,
        turns           BIGINT NOT NULL,
        anonymous       BIGINT NOT NULL CHECK (anonymous IN (0, 1)),
        conversation_a  TEXT CHECK (conversation_a IS NULL OR conversation_a::json IS NOT NULL),
        conversation_b  TEXT CHECK (conversation_b IS NULL OR conversation_b::json IS NOT NULL),
        style_json      TEXT CHECK (style_json IS NULL OR style_json::json IS NOT NULL),
        judge_output    TEXT,
        source          TEXT NOT NULL,
        created_at      TEXT NOT NULL
    );
    CREATE INDEX battles_by_time ON battles (tstamp, id);
    "#,
    // 6: judge models' verdicts.
    r#"
    CREATE TABLE judgements (
        id          BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        battle_id   BIGINT REFERENCES battles (id),
        judge       TEXT NOT NULL,
        prompt_id   TEXT NOT NULL,
        prompt_hash TEXT NOT NULL,
        category    TEXT,
        model_a     TEXT NOT NULL,
        model_b     TEXT NOT NULL,
        a_first     BIGINT NOT NULL CHECK (a_first IN (0, 1)),
        output      TEXT NOT NULL,
        verdict     TEXT CHECK (verdict IN ('A>>B', 'A>B', 'A=B', 'B>A', 'B>>A')),
        reason      TEXT,
        created_at  TEXT NOT NULL,
        CHECK ((verdict IS NULL) = (reason IS NOT NULL))
    );
    CREATE INDEX judgements_by_pair ON judgements (judge, prompt_hash, model_a, model_b);
    "#,
    // 7: work distribution.
    r#"
    ALTER TABLE samples ADD COLUMN attempts BIGINT NOT NULL DEFAULT 1 CHECK (attempts >= 1);

    CREATE TABLE jobs (
        id            BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        run_id        BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        model_spec    TEXT NOT NULL,
        task_name     TEXT NOT NULL,
        spec_json     TEXT NOT NULL CHECK (spec_json::json IS NOT NULL),
        doc_ids_json  TEXT NOT NULL CHECK (doc_ids_json::json IS NOT NULL),
        n_docs        BIGINT NOT NULL CHECK (n_docs > 0),
        state         TEXT NOT NULL
            CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
        worker        TEXT,
        lease_token   BIGINT NOT NULL DEFAULT 0,
        lease_expires DOUBLE PRECISION,
        claims        BIGINT NOT NULL DEFAULT 0,
        n_stored      BIGINT NOT NULL DEFAULT 0,
        n_failed      BIGINT NOT NULL DEFAULT 0,
        error         TEXT,
        created_at    TEXT NOT NULL,
        started_at    TEXT,
        heartbeat_at  TEXT,
        finished_at   TEXT
    );
    CREATE INDEX jobs_by_state ON jobs (state, id);
    CREATE INDEX jobs_by_run ON jobs (run_id, state);

    CREATE TABLE shared_limits (
        key     TEXT PRIMARY KEY,
        next_at DOUBLE PRECISION NOT NULL
    );

    CREATE TABLE shared_slots (
        key     TEXT NOT NULL,
        slot    BIGINT NOT NULL CHECK (slot >= 0),
        holder  TEXT,
        expires DOUBLE PRECISION,
        PRIMARY KEY (key, slot)
    );
    "#,
];

/// Brings the schema up to [`SCHEMA_VERSION`].
pub(crate) fn migrate(connection: &mut sql::Connection) -> Result<(), StoreError> {
    match connection {
        sql::Connection::Sqlite(connection) => migrate_sqlite(connection),
        sql::Connection::Postgres(_) => migrate_postgres(connection),
    }
}

/// SQLite: one transaction per migration.
fn migrate_sqlite(connection: &mut Connection) -> Result<(), StoreError> {
    // The common case, an up-to-date database, needs no write lock.
    if schema_version(connection)? == SCHEMA_VERSION {
        return Ok(());
    }
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let target_version = index as i64 + 1;
        let as_migration_error = |source| StoreError::Migration {
            version: target_version,
            source,
        };
        // IMMEDIATE takes the write lock before reading the version, so two
        // processes opening a fresh database cannot both run the same migration.
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(as_migration_error)?;
        let current_version = schema_version(&transaction)?;
        if current_version >= target_version {
            continue;
        }
        transaction
            .execute_batch(sql)
            .and_then(|()| transaction.pragma_update(None, "user_version", target_version))
            .map_err(as_migration_error)?;
        pause_for_fault_injection(target_version);
        transaction.commit().map_err(as_migration_error)?;
    }
    Ok(())
}

/// An arbitrary constant naming Podium's advisory lock (`pg_advisory_xact_lock`).
const POSTGRES_MIGRATION_LOCK: i64 = 0x506f_6469_756d_0001;

/// PostgreSQL: every pending migration in one transaction, under an advisory
/// lock, so several processes opening a fresh database at once wait for the
/// first instead of racing to create the same tables.
fn migrate_postgres(connection: &sql::Connection) -> Result<(), StoreError> {
    // The common case, an up-to-date database, takes no lock and creates nothing
    // (a board replica may connect as a user that can only read).
    if postgres_schema_version(connection)? == SCHEMA_VERSION {
        return Ok(());
    }
    connection.transaction(sql::Begin::Write, |tx| {
        tx.execute(
            "SELECT pg_advisory_xact_lock(?1)",
            params![POSTGRES_MIGRATION_LOCK],
        )?;
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS podium_schema (
                 one     BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
                 version BIGINT NOT NULL
             )",
        )?;
        let current_version = postgres_schema_version(tx)?;
        for (index, sql) in POSTGRES_MIGRATIONS.iter().enumerate() {
            let target_version = index as i64 + 1;
            if current_version >= target_version {
                continue;
            }
            tx.execute_batch(sql)
                .map_err(|error| as_migration_error(target_version, error))?;
            tx.execute(
                "INSERT INTO podium_schema (one, version) VALUES (TRUE, ?1)
                 ON CONFLICT (one) DO UPDATE SET version = excluded.version",
                params![target_version],
            )?;
            pause_for_fault_injection(target_version);
        }
        Ok(())
    })
}

/// The version recorded in `podium_schema` (0 for an empty database), refusing
/// a database written by a newer Podium.
pub(crate) fn postgres_schema_version(connection: &sql::Connection) -> Result<i64, StoreError> {
    let exists = connection
        .query_one("SELECT to_regclass('podium_schema') IS NOT NULL", &[])?
        .get::<bool>(0)?;
    if !exists {
        return Ok(0);
    }
    let version = connection
        .query_opt("SELECT version FROM podium_schema", &[])?
        .map(|row| row.get::<i64>(0))
        .transpose()?
        .unwrap_or(0);
    refuse_newer(version)
}

fn as_migration_error(version: i64, error: StoreError) -> StoreError {
    match error {
        StoreError::Postgres { source, .. } => StoreError::PostgresMigration { version, source },
        other => other,
    }
}

/// The environment variable that makes a migration wait, inside its transaction and
/// after all its statements, for this many milliseconds: the `kill -9` test
/// (crates/podium-cli/tests/store_faults.rs) kills the process there.
pub const PAUSE_MIGRATION_ENV: &str = "PODIUM_TEST_PAUSE_MIGRATION_MS";

fn pause_for_fault_injection(target_version: i64) {
    let Some(ms) = std::env::var(PAUSE_MIGRATION_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return;
    };
    eprintln!("podium-store: paused inside the migration to schema version {target_version}");
    std::thread::sleep(std::time::Duration::from_millis(ms));
}

/// Creates a database at `path` with the schema of `version` (an older Podium's), to
/// test migrating it. Not for production use.
#[doc(hidden)]
pub fn create_at_version(path: &std::path::Path, version: i64) -> Result<(), StoreError> {
    let connection = Connection::open(path)?;
    connection.query_row("PRAGMA journal_mode = WAL", [], |row| {
        row.get::<_, String>(0)
    })?;
    for (index, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .take(usize::try_from(version).unwrap_or(0))
    {
        connection.execute_batch(sql)?;
        connection.pragma_update(None, "user_version", index as i64 + 1)?;
    }
    Ok(())
}

/// Reads `PRAGMA user_version`, refusing databases written by a newer Podium:
/// running old code against a newer schema could silently drop what it added.
fn schema_version(connection: &Connection) -> Result<i64, StoreError> {
    let version: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    refuse_newer(version)
}

fn refuse_newer(version: i64) -> Result<i64, StoreError> {
    if version > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(version)
}
