//! A Parquet data file that makes the parquet crate panic is an error naming
//! the file, and nothing else: the caught panic prints no panic message of
//! its own (issue 9). `data/reader_panics.parquet` is a fuzzed file on which
//! parquet 60.1 panics ("column start and length should not be negative").

use std::process::Command;

#[test]
fn a_panicking_parquet_file_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/reader_panics.parquet"
        ),
        dir.path().join("data.parquet"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("pq.yaml"),
        "task: pq\n\
         dataset_path: parquet\n\
         dataset_kwargs:\n  data_files:\n    test: data.parquet\n\
         test_split: test\n\
         output_type: multiple_choice\n\
         doc_to_text: \"{{question}}\"\n\
         doc_to_choice: [\"a\", \"b\"]\n\
         doc_to_target: 0\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_podium"))
        .arg("--db")
        .arg(dir.path().join("podium.db"))
        .arg("--tasks-dir")
        .arg(dir.path())
        .args(["eval", "-m", "mock:a", "-t", "pq"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("data.parquet"), "{stderr}");
    assert!(
        stderr.contains("invalid Parquet file (the reader failed"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
