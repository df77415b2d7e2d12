//! `podium eval -t FILE.csv` and `podium task new` end to end on the mock
//! backend: what is recognized, per-category scores on the board, broken and
//! ambiguous files (exit code 2, the store untouched), and the round trip
//! through the written YAML (the same task, the same scores).

mod common;

use common::podium;

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(dir: &Path, args: &[&str]) -> Run {
    let out = podium().current_dir(dir).args(args).output().unwrap();
    let run = Run {
        code: out.status.code().expect("podium exits"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    };
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    run
}

fn run_ok(dir: &Path, args: &[&str]) -> Run {
    let out = run(dir, args);
    assert_eq!(out.code, 0, "podium {args:?}:\n{}", out.stderr);
    out
}

/// The README's example file, copied into `dir`.
fn tickets(dir: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/tickets.csv");
    let path = dir.join("tickets.csv");
    std::fs::copy(source, &path).unwrap();
    path
}

fn results(dir: &Path) -> Json {
    let text = std::fs::read_to_string(dir.join("results.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn csv_runs_with_categories_on_the_board() {
    let dir = tempfile::tempdir().unwrap();
    let path = tickets(dir.path());
    let db = dir.path().join("p.db");
    let db = db.to_str().unwrap();
    let out = run_ok(
        dir.path(),
        &[
            "eval",
            "-m",
            "mock:a",
            "-t",
            path.to_str().unwrap(),
            "--db",
            db,
            "--output",
            "out",
        ],
    );
    assert!(
        out.stderr.contains("tickets.csv: 20 rows, generation task, input `question`, target `answer`, system `system`, category `category`, id `id` (unique), metric exact_match"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains("tickets · web"), "{}", out.stdout);
    let json = results(&dir.path().join("out"));
    let categories = &json["podium"]["categories"]["tickets"];
    assert_eq!(categories["web"]["n"], 11);
    assert_eq!(categories["mobile"]["n"], 5);
    assert_eq!(categories["api"]["n"], 4);
    assert!(categories["web"]["intervals"]["exact_match,none"]["ci95"].is_array());

    let board = run_ok(dir.path(), &["board", "--format", "json", "--db", db]);
    let board: Json = serde_json::from_str(&board.stdout).unwrap();
    let ids: Vec<&str> = board["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["tickets", "tickets:api", "tickets:mobile", "tickets:web"]
    );
    assert_eq!(board["columns"][3]["parent"], "tickets");
    assert_eq!(board["columns"][3]["setting"]["category"], "web");
    assert_eq!(board["models"][0]["cells"][3]["n"], 11);
    // The sub-columns stay out of the average.
    assert_eq!(board["average_columns"], serde_json::json!([0]));
}

#[test]
fn broken_file_lists_every_bad_row_and_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.csv");
    std::fs::write(
        &path,
        "question,answer,category\nok,fine,a\n,x,a\nq,,b\nq,y,\n",
    )
    .unwrap();
    let db = dir.path().join("p.db");
    let out = run(
        dir.path(),
        &[
            "eval",
            "-m",
            "mock:a",
            "-t",
            "bad.csv",
            "--db",
            db.to_str().unwrap(),
        ],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    for expected in [
        "bad.csv: 3 problems in the rows",
        "row 2, column `question`: empty",
        "row 3, column `answer`: empty",
        "row 4, column `category`: empty",
    ] {
        assert!(
            out.stderr.contains(expected),
            "{expected} in {}",
            out.stderr
        );
    }
    assert!(out.stdout.is_empty());
    assert!(!db.exists(), "the store was created");
    // A store that exists is left as it was, byte for byte.
    run_ok(
        dir.path(),
        &[
            "eval",
            "-m",
            "mock:a",
            "-t",
            tickets(dir.path()).to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
        ],
    );
    let before = std::fs::read(&db).unwrap();
    let out = run(
        dir.path(),
        &[
            "eval",
            "-m",
            "mock:b",
            "-t",
            "bad.csv",
            "--db",
            db.to_str().unwrap(),
        ],
    );
    assert_eq!(out.code, 2);
    assert_eq!(std::fs::read(&db).unwrap(), before);
}

#[test]
fn ambiguous_file_asks_for_a_flag() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("two.jsonl"),
        "{\"prompt\": \"a\", \"question\": \"b\", \"answer\": \"c\"}\n",
    )
    .unwrap();
    let db = dir.path().join("p.db");
    let out = run(
        dir.path(),
        &[
            "eval",
            "-m",
            "mock:a",
            "-t",
            "two.jsonl",
            "--db",
            db.to_str().unwrap(),
        ],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("cannot tell which column is the prompt: `prompt` and `question` could each be; pass --input-col COLUMN (columns found: `prompt`, `question`, `answer`)"), "{}", out.stderr);
    assert!(!db.exists());
    run_ok(
        dir.path(),
        &[
            "eval",
            "-m",
            "mock:a",
            "-t",
            "two.jsonl",
            "--input-col",
            "prompt",
            "--db",
            db.to_str().unwrap(),
        ],
    );
}

#[test]
fn task_new_round_trip_is_the_same_task() {
    let dir = tempfile::tempdir().unwrap();
    let path = tickets(dir.path());
    let db = dir.path().join("p.db");
    let db = db.to_str().unwrap();
    run_ok(
        dir.path(),
        &[
            "eval",
            "-m",
            "mock:a",
            "-t",
            "tickets.csv",
            "--db",
            db,
            "--output",
            "direct",
        ],
    );
    // Written next to the data file (the current folder by default).
    let out = run_ok(
        dir.path(),
        &["task", "new", "tickets", "--from", "tickets.csv"],
    );
    assert!(
        out.stderr.contains("wrote ./tickets.yaml"),
        "{}",
        out.stderr
    );
    let yaml = std::fs::read_to_string(dir.path().join("tickets.yaml")).unwrap();
    assert!(yaml.contains("dataset_path: csv"), "{yaml}");
    assert!(yaml.contains("# Podium-only"), "{yaml}");
    // Kept unless --force.
    let out = run(
        dir.path(),
        &["task", "new", "tickets", "--from", "tickets.csv"],
    );
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("tickets.yaml exists: pass --force"),
        "{}",
        out.stderr
    );
    run_ok(
        dir.path(),
        &["task", "new", "tickets", "--from", "tickets.csv", "--force"],
    );

    // The YAML is the same task: the same run resumes, nothing is sent again.
    let out = run_ok(
        dir.path(),
        &[
            "eval",
            "-m",
            "mock:a",
            "-t",
            "tickets",
            "--tasks-dir",
            ".",
            "--db",
            db,
            "--output",
            "saved",
        ],
    );
    assert!(
        out.stderr
            .contains("resumed run 1 (20 samples were already stored)"),
        "{}",
        out.stderr
    );
    let direct = results(&dir.path().join("direct"));
    let saved = results(&dir.path().join("saved"));
    assert_eq!(direct["results"], saved["results"]);
    assert_eq!(
        direct["podium"]["categories"],
        saved["podium"]["categories"]
    );
    assert_eq!(
        direct["podium"]["runs"][0]["content_hash"],
        saved["podium"]["runs"][0]["content_hash"]
    );

    // Written elsewhere it names the data file by its absolute path: another
    // content hash, the same scores.
    let other = dir.path().join("my-tasks");
    run_ok(
        dir.path(),
        &[
            "task",
            "new",
            "tickets2",
            "--from",
            path.to_str().unwrap(),
            "--tasks-dir",
            other.to_str().unwrap(),
        ],
    );
    let db2 = dir.path().join("q.db");
    run_ok(
        dir.path(),
        &[
            "eval",
            "-m",
            "mock:a",
            "-t",
            "tickets2",
            "--tasks-dir",
            other.to_str().unwrap(),
            "--db",
            db2.to_str().unwrap(),
            "--output",
            "other",
        ],
    );
    let elsewhere = results(&dir.path().join("other"));
    assert_eq!(
        elsewhere["results"]["tickets2"]["exact_match,none"],
        direct["results"]["tickets"]["exact_match,none"]
    );
    assert_eq!(
        elsewhere["podium"]["categories"]["tickets2"],
        direct["podium"]["categories"]["tickets"]
    );
}

#[test]
fn task_new_refuses_unknown_metrics_and_bad_names() {
    let dir = tempfile::tempdir().unwrap();
    tickets(dir.path());
    let out = run(
        dir.path(),
        &[
            "task",
            "new",
            "t",
            "--from",
            "tickets.csv",
            "--metric",
            "no_such_metric",
        ],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("unknown metric `no_such_metric`"),
        "{}",
        out.stderr
    );
    assert!(!dir.path().join("t.yaml").exists());
    let out = run(
        dir.path(),
        &["task", "new", "../t", "--from", "tickets.csv"],
    );
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("use letters, digits"), "{}", out.stderr);
}
