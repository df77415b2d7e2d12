//! The `podium` binary on PostgreSQL: `--db postgres://…` and `PODIUM_DB` select
//! it, the same evaluation gives the same board as on SQLite, and
//! `podium store copy` moves a store SQLite → PostgreSQL → SQLite unchanged.

mod common;

use common::{podium, run_ok};

use serde_json::Value as Json;

const EVAL: &[&str] = &[
    "eval",
    "-m",
    "mock:a",
    "-t",
    "arc_easy,hellaswag",
    "--limit",
    "8",
    "--quiet",
];

/// The board's JSON without what differs between two runs of the same
/// evaluation (times, run ids, the database it came from).
fn board(db: &str) -> Json {
    let out = run_ok(podium().args(["board", "--format", "json", "--db", db]));
    let mut json: Json = serde_json::from_str(&out).unwrap();
    strip_volatile(&mut json);
    json
}

fn strip_volatile(json: &mut Json) {
    match json {
        Json::Object(map) => {
            map.retain(|key, _| {
                !(key.ends_with("_at")
                    || key.ends_with("_ms")
                    || key.contains("run_id")
                    || key == "as_of"
                    || key == "last_run"
                    || key == "database")
            });
            map.values_mut().for_each(strip_volatile);
        }
        Json::Array(items) => items.iter_mut().for_each(strip_volatile),
        _ => {}
    }
}

#[test]
fn eval_on_postgres_gives_the_same_board_as_on_sqlite() {
    let Some(url) = podium_testkit::postgres::database() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sqlite = dir.path().join("podium.db").display().to_string();
    run_ok(podium().args(EVAL).args(["--db", &sqlite]));
    // PODIUM_DB selects the database as --db does.
    run_ok(podium().args(EVAL).env("PODIUM_DB", &url));
    let on_postgres = board(&url);
    assert_eq!(on_postgres, board(&sqlite));
    assert_eq!(on_postgres["models"].as_array().unwrap().len(), 1);
    // Resuming on PostgreSQL redoes nothing and changes nothing.
    run_ok(podium().args(EVAL).args(["--db", &url]));
    assert_eq!(board(&url), on_postgres);
}

#[test]
fn store_copy_round_trips_sqlite_postgres_sqlite() {
    let Some(url) = podium_testkit::postgres::database() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.db").display().to_string();
    let back = dir.path().join("back.db").display().to_string();
    run_ok(podium().args(EVAL).args(["--db", &first]));
    run_ok(podium().args([
        "eval", "-m", "mock:b", "-t", "arc_easy", "--limit", "4", "-q", "--db", &first,
    ]));
    let to_postgres = run_ok(podium().args(["store", "copy", &first, &url]));
    let to_sqlite = run_ok(podium().args(["store", "copy", &url, &format!("sqlite:{back}")]));
    // The same rows and checksums at every step, and the same board.
    assert_eq!(to_postgres, to_sqlite);
    assert!(to_postgres.contains("samples"), "{to_postgres}");
    let original = board(&first);
    assert_eq!(board(&url), original);
    assert_eq!(board(&back), original);
    // Copying again into a store that is not empty is refused (exit code 2).
    let refused = podium()
        .args(["store", "copy", &first, &url])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("not empty"), "{stderr}");
}

#[test]
fn a_bad_database_is_named_without_its_password() {
    let out = podium()
        .args([
            "runs",
            "--db",
            "postgres://podium:s3cret-pw@127.0.0.1:1/podium?connect_timeout=5",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("postgres://podium@127.0.0.1:1/podium"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
}
