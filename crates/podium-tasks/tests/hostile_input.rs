//! Hostile task folders and data files (issue 9, classes 2 to 4): each gives
//! a clear error naming the file at fault, never a stack overflow, an
//! exhausted memory, a hang, a panic or a silently wrong score.

use std::path::Path;
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use podium_core::LoglikelihoodResult;
use podium_tasks::config::DatasetSpec;
use podium_tasks::{BuildOptions, Registry, Response, Task, dataset};

fn write(dir: &Path, name: &str, content: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// Replace the temporary folder in messages, so tests compare the rest.
fn relative(dir: &Path, message: &str) -> String {
    message.replace(&format!("{}/", dir.display()), "")
}

const DATA: &str = "{\"question\": \"Why?\", \"answer\": \"Because.\"}\n";

/// A valid generation task named `name`, with `extra` appended.
fn task_yaml(name: &str, extra: &str) -> String {
    format!(
        "task: {name}\n\
         dataset_path: json\n\
         dataset_kwargs:\n  data_files:\n    test: data.jsonl\n\
         test_split: test\n\
         output_type: generate_until\n\
         doc_to_text: \"Q: {{{{question}}}}\\nA:\"\n\
         {extra}"
    )
}

/// Discover `files`, select `name`, load it and build its prompts; the error.
fn select_error(files: &[(&str, &str)], name: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    for (file, content) in files {
        write(dir.path(), file, content);
    }
    let mut registry = Registry::discover(&[dir.path().to_path_buf()]);
    let outcome = (|| {
        registry.resolve(&[name.to_string()])?;
        let task = Task::load(registry.task_config(name).unwrap().clone())?;
        task.build_instances(&BuildOptions::default(), None)
    })();
    match outcome {
        Ok(_) => panic!("{name} loaded without error"),
        Err(err) => relative(dir.path(), &err.to_string()),
    }
}

/// Regression: discovery of a tasks folder overflowed the stack on a deeply
/// nested file, aborting even `podium tasks`. Now the file is skipped with a
/// located error and the other tasks load.
#[test]
fn deeply_nested_file_in_a_tasks_folder_is_a_located_error() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "good.yaml",
        &task_yaml("good", "doc_to_target: answer\n"),
    );
    write(dir.path(), "data.jsonl", DATA);
    write(
        dir.path(),
        "deep.yaml",
        &format!("task: {}x\n", "[".repeat(100_000)),
    );
    write(
        dir.path(),
        "deeper.yaml",
        &format!("task:\n  {}x\n", "- ".repeat(100_000)),
    );
    let mut registry = Registry::discover(&[dir.path().to_path_buf()]);
    assert!(registry.task_config("good").is_some());
    let errors: Vec<String> = registry
        .broken_files()
        .map(|e| relative(dir.path(), &e.to_string()))
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    for error in &errors {
        assert!(
            error.starts_with("deep.yaml:1: ") || error.starts_with("deeper.yaml:2: "),
            "{error}"
        );
    }
    let err = registry.resolve(&["deeper".to_string()]).unwrap_err();
    assert!(err.to_string().contains("deeper than 64 levels"), "{err}");
}

/// Regression: a 1 KB file of nested aliases exhausted memory when loaded.
#[test]
fn billion_laughs_task_file_is_an_error() {
    let mut yaml = String::from("task: laughs\nl0: &l0 [ha, ha, ha, ha, ha, ha, ha, ha, ha, ha]\n");
    for level in 1..12 {
        let prev = format!("*l{}", level - 1);
        yaml.push_str(&format!(
            "l{level}: &l{level} [{}]\n",
            vec![prev; 10].join(",")
        ));
    }
    assert!(yaml.len() < 1024);
    let err = select_error(&[("laughs.yaml", &yaml)], "laughs");
    assert!(err.starts_with("laughs.yaml:"), "{err}");
    assert!(err.contains("aliases expand to more than"), "{err}");
}

/// Regression: `repeats` was unbounded; 10^12 built that many requests per doc.
#[test]
fn huge_repeats_is_a_located_error() {
    let err = select_error(
        &[
            (
                "rep.yaml",
                &task_yaml("rep", "doc_to_target: answer\nrepeats: 1000000000000\n"),
            ),
            ("data.jsonl", DATA),
        ],
        "rep",
    );
    assert_eq!(
        err,
        "rep.yaml:10: `repeats`: 1000000000000 generations per doc: expected 1 to 1024"
    );
}

/// Regression: groups listing groups multiply; 9 levels of 10 built 10^9
/// selections (a hang, then exhausted memory).
#[test]
fn group_fan_out_is_bounded() {
    let mut files = vec![
        (
            "t.yaml".to_string(),
            task_yaml("t", "doc_to_target: answer\n"),
        ),
        ("data.jsonl".to_string(), DATA.to_string()),
    ];
    for level in 0..9 {
        let member = if level == 0 {
            "t".to_string()
        } else {
            format!("g{}", level - 1)
        };
        let members = vec![member; 10].join(", ");
        files.push((
            format!("g{level}.yaml"),
            format!("group: g{level}\ntask: [{members}]\n"),
        ));
    }
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let err = select_error(&files, "g8");
    assert!(
        err.contains("the selection expands to more than 100000 tasks and groups"),
        "{err}"
    );
    // A group of moderate size still resolves.
    let dir = tempfile::tempdir().unwrap();
    for (file, content) in &files {
        write(dir.path(), file, content);
    }
    let mut registry = Registry::discover(&[dir.path().to_path_buf()]);
    let selections = registry.resolve(&["g3".to_string()]).unwrap();
    let mut names = Vec::new();
    selections[0].task_names(&mut names);
    assert_eq!(names, vec!["t".to_string()]);
}

/// Regression: two symbolic links back up a tasks folder made discovery walk
/// 2^40 paths (a hang), and one link indexed every file 40 times.
#[cfg(unix)]
#[test]
fn symlink_loops_in_a_tasks_folder_end() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "sub/t.yaml",
        &task_yaml("t", "doc_to_target: answer\n"),
    );
    write(dir.path(), "sub/data.jsonl", DATA);
    std::os::unix::fs::symlink(dir.path(), dir.path().join("sub/up1")).unwrap();
    std::os::unix::fs::symlink(dir.path(), dir.path().join("sub/up2")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("sub"), dir.path().join("sub/here")).unwrap();
    let mut registry = Registry::discover(&[dir.path().to_path_buf()]);
    assert_eq!(registry.warnings, Vec::<String>::new());
    assert_eq!(registry.broken_files().count(), 0);
    assert_eq!(registry.listing().len(), 1);
    registry.resolve(&["t".to_string()]).unwrap();
}

/// Regression: a second file defining the same task name silently replaced
/// the first. Now asking for the name names both files.
#[test]
fn two_files_defining_one_name_are_reported_with_both_paths() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "a/dup.yaml",
        &task_yaml("dup", "doc_to_target: answer\n"),
    );
    write(
        dir.path(),
        "b/dup.yaml",
        &task_yaml("dup", "doc_to_target: question\n"),
    );
    write(dir.path(), "a/data.jsonl", DATA);
    write(dir.path(), "b/data.jsonl", DATA);
    let mut registry = Registry::discover(&[dir.path().to_path_buf()]);
    let expected = "`dup` is defined by more than one file: a/dup.yaml and b/dup.yaml; rename one (its `task:` or `group:` key)";
    let warnings: Vec<String> = registry
        .warnings
        .iter()
        .map(|w| relative(dir.path(), w))
        .collect();
    assert_eq!(warnings, vec![expected.to_string()]);
    let err = registry.resolve(&["dup".to_string()]).unwrap_err();
    assert_eq!(relative(dir.path(), &err.to_string()), expected);
    // A group naming it fails the same way.
    write(dir.path(), "g.yaml", "group: g\ntask: [dup]\n");
    let mut registry = Registry::discover(&[dir.path().to_path_buf()]);
    let err = registry.resolve(&["g".to_string()]).unwrap_err();
    assert_eq!(relative(dir.path(), &err.to_string()), expected);
    // The same file given again by path is no duplicate.
    let mut registry = Registry::default();
    registry.add_file(&dir.path().join("a/dup.yaml")).unwrap();
    registry
        .add_file(&dir.path().join("a/../a/dup.yaml"))
        .unwrap();
    let err = registry
        .add_file(&dir.path().join("b/dup.yaml"))
        .unwrap_err();
    assert!(err.to_string().contains("dup.yaml and"), "{err}");
}

/// Regression: `doc_to_target: "[]"` gave every doc an empty gold list, so
/// every sample scored 0 for ever.
#[test]
fn empty_target_list_is_an_error() {
    for target in ["doc_to_target: \"[]\"\n", "doc_to_target: []\n"] {
        let err = select_error(
            &[("t.yaml", &task_yaml("t", target)), ("data.jsonl", DATA)],
            "t",
        );
        assert_eq!(
            err,
            "task `t`, doc 0: `doc_to_target`: the target is an empty list: the doc has no gold answer",
            "{target}"
        );
    }
    let mc = "task: mc\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: data.jsonl\n\
              test_split: test\noutput_type: multiple_choice\ndoc_to_text: q\n\
              doc_to_choice: [a, b]\ndoc_to_target: \"[]\"\n";
    let err = select_error(&[("mc.yaml", mc), ("data.jsonl", DATA)], "mc");
    assert!(err.contains("the target is an empty list"), "{err}");
}

/// Regression: an empty evaluation split ran, reported n = 0 and exited 0.
#[test]
fn empty_split_is_an_error() {
    let yaml = task_yaml("t", "doc_to_target: answer\n");
    for empty in ["", "\n\n", "[]"] {
        let err = select_error(&[("t.yaml", &yaml), ("data.jsonl", empty)], "t");
        assert_eq!(
            err, "task `t`: the evaluation split `test` has no docs (data.jsonl)",
            "{empty:?}"
        );
    }
}

/// Regression: a NaN log-prob lost every comparison, so choice 0 won and
/// scored `acc` 1.0. Scoring now refuses non-finite log-probs.
#[test]
fn non_finite_logprobs_are_not_scored() {
    let dir = tempfile::tempdir().unwrap();
    let mc = "task: mc\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: data.jsonl\n\
              test_split: test\noutput_type: multiple_choice\ndoc_to_text: q\n\
              doc_to_choice: [a, b]\ndoc_to_target: 0\n";
    write(dir.path(), "mc.yaml", mc);
    write(dir.path(), "data.jsonl", DATA);
    let mut registry = Registry::default();
    registry.add_file(&dir.path().join("mc.yaml")).unwrap();
    let task = Task::load(registry.task_config("mc").unwrap().clone()).unwrap();
    let instances = task
        .build_instances(&BuildOptions::default(), None)
        .unwrap();
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let response = Response::Loglikelihood {
            results: vec![
                LoglikelihoodResult {
                    logprob: bad,
                    is_greedy: false,
                    n_tokens: 1,
                },
                LoglikelihoodResult {
                    logprob: -1.0,
                    is_greedy: false,
                    n_tokens: 1,
                },
            ],
        };
        assert!(response.check_finite().is_err());
        let err = task
            .score(&instances[0], &response)
            .unwrap_err()
            .to_string();
        assert!(err.contains("must be a finite number"), "{err}");
    }
    let rolling = Response::Rolling {
        result: podium_core::RollingResult {
            logprob: f64::NAN,
            n_tokens: 3,
        },
    };
    assert!(rolling.check_finite().is_err());
}

/// A parquet file with one UTF-8 column `page`.
fn pages_parquet(pages: &[String]) -> Vec<u8> {
    use parquet::data_type::{ByteArray, ByteArrayType};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;
    let schema =
        Arc::new(parse_message_type("message doc { REQUIRED BYTE_ARRAY page (UTF8); }").unwrap());
    let mut bytes = Vec::new();
    let mut writer = SerializedFileWriter::new(
        &mut bytes,
        schema,
        Arc::new(WriterProperties::builder().build()),
    )
    .unwrap();
    let mut group = writer.next_row_group().unwrap();
    let mut column = group.next_column().unwrap().unwrap();
    let values: Vec<ByteArray> = pages.iter().map(|p| ByteArray::from(p.as_str())).collect();
    column
        .typed::<ByteArrayType>()
        .write_batch(&values, None, None)
        .unwrap();
    column.close().unwrap();
    group.close().unwrap();
    writer.close().unwrap();
    bytes
}

/// Regression: some corrupted parquet files panicked inside the parquet
/// crate, aborting the run. Seeded bit flips and truncations of a valid file
/// each load or fail with an error naming the file.
#[test]
fn corrupted_parquet_files_are_errors_naming_the_file() {
    let pages: Vec<String> = (0..40).map(|i| format!("page {i} of the test")).collect();
    let good = pages_parquet(&pages);
    let path = Path::new("data/pages.parquet");
    let load = |bytes: Vec<u8>| dataset::parse_data_file("parquet", path, bytes, None);
    assert_eq!(load(good.clone()).unwrap().len(), 40);

    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut n_errors = 0;
    let mut n_caught_panics = 0;
    for attempt in 0..600 {
        let mut bytes = good.clone();
        if attempt % 10 == 0 {
            bytes.truncate(rng.random_range(0..good.len()));
        } else {
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(0..bytes.len());
                bytes[at] ^= 1 << rng.random_range(0..8);
            }
        }
        if let Err(err) = load(bytes) {
            let message = err.to_string();
            assert!(message.starts_with("data/pages.parquet"), "{message}");
            n_errors += 1;
            if message.contains("the reader failed") {
                n_caught_panics += 1;
            }
        }
    }
    assert!(n_errors > 0);
    // Some of these inputs do panic inside the parquet crate: the test
    // exercises the boundary, not just the crate's own error paths.
    assert!(n_caught_panics > 0, "no input panicked the parquet reader");
}

/// Regressions (fuzz/regressions/dataset_parquet), each an allocation sized by
/// a declared length that aborted or exhausted memory, which no `catch_unwind`
/// can catch: a 363-byte footer declaring a list of ~2^31 column chunks
/// (parquet 57 reserved 153 GB; parquet 60 bounds lists by the bytes left), and
/// a dictionary page declaring ~800 million values (parquet 60 fills 13 GB;
/// Podium checks dictionary pages first), and a page header whose unknown
/// field is a list of ~2^31 elements at the end of the chunk (parquet 60
/// skips it element by element past the end: 12 s per list). Each file is now
/// an error naming it, at once.
#[test]
fn declared_lengths_beyond_the_file_are_errors_not_aborts() {
    for (input, expected) in [
        (
            "thrift_list_length_allocates_153_GB",
            "invalid Parquet file",
        ),
        ("dictionary_num_values_fills_13_GB", "dictionary page"),
        (
            "page_header_skip_loops_2_billion_times",
            "page header's list declares",
        ),
    ] {
        let input = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/regressions/dataset_parquet")
            .join(input);
        let bytes = std::fs::read(&input).unwrap();
        let path = Path::new("data/hostile.parquet");
        let err = dataset::parse_data_file("parquet", path, bytes, None).unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("data/hostile.parquet"), "{message}");
        assert!(message.contains(expected), "{message}");
    }
}

/// A hostile split of a task: the json, csv and llama.cpp loaders answer
/// errors for bad bytes without panicking.
#[test]
fn other_loaders_reject_bad_bytes() {
    let spec = |loader: &str| DatasetSpec {
        loader: loader.into(),
        name: None,
        data_files: Default::default(),
        column_names: None,
    };
    let path = Path::new("d");
    for (loader, bytes) in [
        ("json", &b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["[..]),
        ("json", b"{\"a\": 1}\n\xff\n"),
        ("csv", b"a,b\n1\n"),
        ("csv", b"a,b\n\"1,2\n"),
        ("llama_cpp_hellaswag", b"ctx\nnine\na\nb\nc\nd\n"),
    ] {
        let spec = spec(loader);
        let err = dataset::parse_data_file(&spec.loader, path, bytes.to_vec(), None).unwrap_err();
        assert!(err.to_string().starts_with("d"), "{err}");
    }
}
