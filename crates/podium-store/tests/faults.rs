//! Disk faults: a full disk and a folder where the database's side files cannot be
//! created give an error that names the database file, never a panic, and lose no
//! sample already stored. (Tests run as root, where permission bits do not stop
//! writes: a full disk is SQLite's `max_page_count`, an uncreatable file is a
//! directory in its place.)

use std::collections::HashSet;
use std::error::Error;
use std::path::Path;

use podium_store::{ModelRecord, RunKey, SampleRecord, SampleStatus, Store};

fn sample(doc_id: u64, payload_bytes: usize) -> SampleRecord {
    SampleRecord {
        doc_id,
        prompt_hash: format!("prompt-{doc_id}"),
        requests_json: format!(r#"["{}"]"#, "r".repeat(payload_bytes)),
        responses_json: "[]".to_owned(),
        metrics_json: r#"{"acc":1.0}"#.to_owned(),
        n_input_tokens: Some(12),
        n_output_tokens: None,
        timing_json: "{}".to_owned(),
        status: SampleStatus::Ok,
        error: None,
    }
}

/// A database at `path` with one run of three stored samples; returns the run id.
fn store_with_samples(path: &Path) -> i64 {
    let mut store = Store::open(path).unwrap();
    let model_id = store
        .upsert_model(&ModelRecord {
            spec: "mock:m".into(),
            fingerprint: "f".into(),
            chat_template_hash: None,
        })
        .unwrap();
    let task_id = store.upsert_task("t", "sha256:t", "{}").unwrap();
    let key = RunKey {
        model_id,
        task_id,
        n_shots: 0,
        chat_template: false,
        seed: 1,
        limit: None,
    };
    let (run_id, _) = store.find_or_create_run(&key, "{}", "test").unwrap();
    for doc_id in 0..3 {
        store.put_sample(run_id, &sample(doc_id, 100)).unwrap();
    }
    run_id
}

/// The error and all its sources, as the CLI prints them (`{:#}`).
fn chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn stored_doc_ids(path: &Path, run_id: i64) -> HashSet<u64> {
    Store::open(path)
        .unwrap()
        .completed_doc_ids(run_id)
        .unwrap()
}

/// Regression (issue 9, disk faults): a write on a full disk answered "database or
/// disk is full" without saying which database; it names the file now, and the
/// samples stored before it are all there after reopening.
#[test]
fn a_full_disk_is_an_error_naming_the_file_and_loses_no_sample() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("podium.db");
    let run_id = store_with_samples(&path);

    let mut store = Store::open(&path).unwrap();
    let pages = store.page_count().unwrap();
    store.simulate_full_disk_at_pages(pages).unwrap();
    let error = store
        .put_sample(run_id, &sample(3, 64 * 1024))
        .expect_err("the disk is full");
    let message = chain(&error);
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("full"), "{message}");
    // The store stays usable for reading, and the earlier samples are intact.
    assert_eq!(store.samples(run_id).unwrap().len(), 3);
    drop(store);
    assert_eq!(stored_doc_ids(&path, run_id), HashSet::from([0, 1, 2]));
}

/// A database whose side files (`-wal`, `-shm`) cannot be created, as in a read-only
/// folder, is refused with an error naming it; once writable again, nothing is lost.
#[test]
fn a_database_whose_side_files_cannot_be_created_is_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("podium.db");
    let run_id = store_with_samples(&path);
    for side in ["podium.db-wal", "podium.db-shm"] {
        let blocker = dir.path().join(side);
        assert!(!blocker.exists(), "{side} is left after a clean close");
        std::fs::create_dir(&blocker).unwrap();
        // SQLite may open the file and fail only at the first write.
        let error = match Store::open(&path) {
            Ok(mut store) => store
                .put_sample(run_id, &sample(3, 100))
                .expect_err("no side file"),
            Err(error) => error,
        };
        let message = chain(&error);
        assert!(
            message.contains(&path.display().to_string()),
            "{side}: {message}"
        );
        std::fs::remove_dir(&blocker).unwrap();
        assert_eq!(stored_doc_ids(&path, run_id), HashSet::from([0, 1, 2]));
    }
    // A database path that is a directory.
    let error = Store::open(dir.path())
        .err()
        .expect("a directory is no database");
    let message = chain(&error);
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
}
