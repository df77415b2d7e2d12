//! Process faults on the store: `kill -9` of `podium` while it migrates an older
//! database leaves the database at the old schema version or the new one, never
//! half-migrated, with its rows intact, and the next open succeeds. Also: a database
//! path that cannot be a database is a clear error with exit code 1, not a panic.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use podium_store::{ModelRecord, PAUSE_MIGRATION_ENV, SCHEMA_VERSION, Store, create_at_version};

/// The schema version before the last migration.
const OLD_VERSION: i64 = SCHEMA_VERSION - 1;
/// What the last migration adds: present exactly at [`SCHEMA_VERSION`].
/// Update it with each new migration.
const LAST_MIGRATION_ADDS: &str = "jobs";

/// An older Podium's database at `path`, with a model and a task stored.
fn old_database(path: &Path) {
    create_at_version(path, OLD_VERSION).unwrap();
    let connection = rusqlite::Connection::open(path).unwrap();
    connection
        .execute_batch(
            "INSERT INTO models (spec, fingerprint) VALUES ('mock:m', 'f');
             INSERT INTO tasks (name, content_hash, config_json) VALUES ('t', 'h', '{}');",
        )
        .unwrap();
}

/// The database's version and whether its schema is exactly that version's (the
/// last migration adds [`LAST_MIGRATION_ADDS`]), and the rows are all there.
fn check_consistent(path: &Path) -> i64 {
    let connection = rusqlite::Connection::open(path).unwrap();
    let version: i64 = connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    let has_new_object: bool = connection
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = ?1",
            [LAST_MIGRATION_ADDS],
            |row| row.get::<_, i64>(0),
        )
        .unwrap()
        == 1;
    assert!(
        version == OLD_VERSION && !has_new_object || version == SCHEMA_VERSION && has_new_object,
        "half-migrated: version {version}, {LAST_MIGRATION_ADDS} present: {has_new_object}"
    );
    let integrity: String = connection
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let models: i64 = connection
        .query_row("SELECT count(*) FROM models", [], |row| row.get(0))
        .unwrap();
    assert_eq!(models, 1, "a stored row was lost");
    drop(connection);
    // The next open migrates (or finds the new version) and keeps the rows.
    let store = Store::open(path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    let id = store
        .upsert_model(&ModelRecord {
            spec: "mock:m".into(),
            fingerprint: "f".into(),
            chat_template_hash: None,
        })
        .unwrap();
    assert_eq!(id, 1, "the stored model is found again");
    version
}

fn podium_board(path: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_podium"));
    command
        .arg("--db")
        .arg(path)
        .arg("board")
        .env_remove("PODIUM_DB")
        .stdout(Stdio::null());
    command
}

/// `kill -9` inside the migration's transaction, after all its statements ran and
/// before the commit (a test-only pause holds it there): the database stays at the
/// old version, and opening it again migrates it.
#[test]
fn kill_9_inside_a_migration_leaves_the_old_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("podium.db");
    old_database(&path);
    let mut child = podium_board(&path)
        .env(PAUSE_MIGRATION_ENV, "60000")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.contains(&format!("migration to schema version {SCHEMA_VERSION}")),
        "{line}"
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(check_consistent(&path), OLD_VERSION);
}

/// `kill -9` after seeded pseudo-random delays, anywhere from start-up to the end
/// of the migration: every outcome is one version or the other, never a mix.
#[test]
fn kill_9_at_random_points_never_half_migrates() {
    let dir = tempfile::tempdir().unwrap();
    let mut state: u64 = 0x5eed_1234;
    let mut seen = Vec::new();
    for round in 0..12 {
        let path = dir.path().join(format!("podium-{round}.db"));
        old_database(&path);
        // xorshift: 0 to 40 ms.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let delay = Duration::from_micros(state % 40_000);
        let mut child = podium_board(&path).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        child.wait().unwrap();
        seen.push(check_consistent(&path));
    }
    eprintln!("versions after the kills: {seen:?}");
}

/// A `--db` that is a directory: a clear error naming it, exit code 1, no panic.
#[test]
fn a_database_path_that_is_a_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = podium_board(dir.path()).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&dir.path().display().to_string()),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
