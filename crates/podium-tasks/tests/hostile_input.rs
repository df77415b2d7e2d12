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

/// `file` (a Parquet file written by the parquet crate) with `fields`
/// added at the end of its footer's `FileMetaData` and `trailing` bytes after
/// it (the crate reads nothing past `FileMetaData`'s stop field).
fn with_footer_fields(file: &[u8], fields: &[u8], trailing: &[u8]) -> Vec<u8> {
    let tail_at = file.len() - 8;
    let len = u32::from_le_bytes(file[tail_at..tail_at + 4].try_into().unwrap()) as usize;
    let start = tail_at - len;
    // FileMetaData's stop field ends the footer.
    assert_eq!(file[tail_at - 1], 0);
    let mut out = file[..tail_at - 1].to_vec();
    out.extend_from_slice(fields);
    out.push(0);
    out.extend_from_slice(trailing);
    let new_len = u32::try_from(out.len() - start).unwrap();
    out.extend_from_slice(&new_len.to_le_bytes());
    out.extend_from_slice(b"PAR1");
    out
}

/// A footer field of id 100 (unknown to the crate, so skipped by its
/// declared type): a list header of `count` elements of compact type
/// `element`, then `body`.
fn unknown_list_field(element: u8, count: u32, body: &[u8]) -> Vec<u8> {
    // Field header with a full id: type 9 (list), zigzag(100) = 200.
    let mut field = vec![0x09, 0xc8, 0x01, 0xf0 | element];
    let mut n = count;
    while n >= 0x80 {
        field.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    field.push(n as u8);
    field.extend_from_slice(body);
    field
}

fn load_pages(bytes: Vec<u8>) -> Result<usize, String> {
    let path = Path::new("data/hostile.parquet");
    dataset::parse_data_file("parquet", path, bytes, None)
        .map(|docs| docs.len())
        .map_err(|err| err.to_string())
}

/// Regressions (fuzz/regressions/dataset_parquet/footer_skips_*): the parquet
/// crate skips a footer field it does not know element by element, and
/// passes over each boolean of a list without reading its byte, so a list
/// declaring ~8 × 10^8 booleans in a 350-byte file looped for a second (12 s
/// under AddressSanitizer), and a file can hold many. In
/// `footer_skips_776_million_booleans` the list follows a `created_by` field
/// whose header declares an i32: the crate reads field 6 as a string whatever
/// its declared type, and the footer guard once skipped it as an i32, lost
/// step and stopped at a byte it took for the footer's end. Each is now the
/// guard's error, not the crate's own end-of-file after the loop.
#[test]
fn footers_the_crate_would_skip_for_seconds_are_refused() {
    for input in [
        "footer_skips_776_million_booleans",
        "footer_skips_805_million_booleans",
        "footer_skips_805_million_booleans_2",
    ] {
        let input = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/regressions/dataset_parquet")
            .join(input);
        let message = load_pages(std::fs::read(&input).unwrap()).unwrap_err();
        assert!(
            message.starts_with("data/hostile.parquet: invalid Parquet file: the footer's "),
            "{message}"
        );
        assert!(message.contains(" declares "), "{message}");
    }
}

/// The footer guard follows the crate through every field of the footer:
/// a list of 2^31 - 1 booleans in an unknown field is refused, also after a
/// field whose declared type differs from the one the crate reads it as, and
/// so are lists that each fit but together declare more elements than the
/// footer has bytes (the crate's work would grow with the square of the
/// file's size). Unknown fields holding well-formed values still load.
#[test]
fn the_footer_guard_walks_every_field_as_the_crate_reads_it() {
    let pages: Vec<String> = (0..3).map(|i| format!("page {i}")).collect();
    let good = pages_parquet(&pages);

    let bools = unknown_list_field(1, i32::MAX as u32, &[]);
    let message = load_pages(with_footer_fields(&good, &bools, &[])).unwrap_err();
    assert!(
        message.contains("the footer's list declares 2147483647 elements but only"),
        "{message}"
    );

    // Field 6 (`created_by`, a string to the crate) declared as an i32: the
    // crate reads a 2-byte string, [0, 0], then the list. Walked by the
    // declared type, the first 0 would have ended the footer.
    let mut shifted = vec![0x05, 0x0c, 0x02, 0x00, 0x00];
    shifted.extend_from_slice(&bools);
    let message = load_pages(with_footer_fields(&good, &shifted, &[])).unwrap_err();
    assert!(
        message.contains("the footer's list declares 2147483647 elements"),
        "{message}"
    );

    // 400 lists of 100 booleans each, with 200 bytes after the footer's end
    // so that each list alone fits in the bytes that follow it.
    let lists: Vec<u8> = (0..400).flat_map(|_| [0xf1, 100]).collect();
    let nested = unknown_list_field(9, 400, &lists);
    let message = load_pages(with_footer_fields(&good, &nested, &[0; 200])).unwrap_err();
    assert!(
        message
            .contains("the footer's skipped fields declare more elements in all than the footer's"),
        "{message}"
    );

    // Well formed, all unknown to the crate: a list of 3 i32s, a map of 2
    // i32 → binary, a struct. (Not booleans in a collection: the crate skips
    // those without reading their bytes, so it misreads even a well-formed one.)
    let mut known_shape = unknown_list_field(5, 3, &[0x02, 0x04, 0x06]);
    known_shape.extend_from_slice(&[0x1b, 0x02, 0x58, 0x02, 0x01, b'a', 0x04, 0x00]);
    known_shape.extend_from_slice(&[0x1c, 0x15, 0x06, 0x00]);
    assert_eq!(
        load_pages(with_footer_fields(&good, &known_shape, &[])),
        Ok(3)
    );
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

/// A file whose footer has only a schema: a root, `depth` groups nested one
/// in the other, an INT32 leaf; no row groups.
fn nested_schema_parquet(depth: usize) -> Vec<u8> {
    // FileMetaData: version 1, then the schema list's header (structs, long count).
    let mut footer = vec![0x15, 0x02, 0x19, 0xfc];
    let mut n = depth + 2;
    while n >= 0x80 {
        footer.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    footer.push(n as u8);
    // The root "r" with one child; each group "g" (REQUIRED) with one child.
    footer.extend_from_slice(&[0x48, 0x01, b'r', 0x15, 0x02, 0x00]);
    for _ in 0..depth {
        footer.extend_from_slice(&[0x35, 0x00, 0x18, 0x01, b'g', 0x15, 0x02, 0x00]);
    }
    // The leaf "x": INT32, REQUIRED. Then num_rows 0, no row groups.
    footer.extend_from_slice(&[0x15, 0x02, 0x25, 0x00, 0x18, 0x01, b'x', 0x00]);
    footer.extend_from_slice(&[0x16, 0x00, 0x19, 0x0c, 0x00]);
    let mut file = b"PAR1".to_vec();
    file.extend_from_slice(&footer);
    file.extend_from_slice(&u32::try_from(footer.len()).unwrap().to_le_bytes());
    file.extend_from_slice(b"PAR1");
    file
}

/// Regression: parquet 60.1 builds the schema tree recursively, one stack
/// frame per level, without a limit: an 80 KB file of 10,000 nested groups
/// overflowed the stack and aborted the process. A schema nesting more than
/// 100 levels below its root is now refused naming the file; 100 still loads.
#[test]
fn a_schema_nested_too_deep_is_refused_not_a_stack_overflow() {
    // `depth` groups between the root and the leaf: the leaf is `depth + 1`
    // levels below the root.
    for depth in [100, 10_000, 100_000] {
        let message = load_pages(nested_schema_parquet(depth)).unwrap_err();
        assert_eq!(
            message,
            "data/hostile.parquet: invalid Parquet file: the schema nests more than 100 levels below its root"
        );
    }
    assert_eq!(load_pages(nested_schema_parquet(99)), Ok(0));
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64, out: &mut Vec<u8>) {
    varint(((v << 1) ^ (v >> 63)) as u64, out);
}

/// A Snappy-compressed file of one INT32 column and one data page whose
/// header declares `uncompressed` bytes (its Snappy data holds 4).
fn snappy_page_parquet(uncompressed: i64) -> Vec<u8> {
    // The page: PageHeader {type DATA_PAGE, uncompressed, compressed 6,
    // DataPageHeader {1 value, PLAIN, RLE, RLE}}, then Snappy: length 4, a
    // 4-byte literal.
    let data = [0x04, 0x0c, 1, 0, 0, 0];
    let mut page = vec![0x15, 0x00, 0x15];
    zigzag(uncompressed, &mut page);
    page.push(0x15);
    zigzag(data.len() as i64, &mut page);
    page.extend_from_slice(&[
        0x2c, 0x15, 0x02, 0x15, 0x00, 0x15, 0x06, 0x15, 0x06, 0x00, 0x00,
    ]);
    page.extend_from_slice(&data);
    let chunk = page.len() as i64;

    // FileMetaData: version 1; schema: root "r" with one child, the REQUIRED
    // INT32 "x"; num_rows 1; one row group of one column chunk at offset 4.
    let mut footer = vec![0x15, 0x02, 0x19, 0x2c];
    footer.extend_from_slice(&[0x48, 0x01, b'r', 0x15, 0x02, 0x00]);
    footer.extend_from_slice(&[0x15, 0x02, 0x25, 0x00, 0x18, 0x01, b'x', 0x00]);
    footer.extend_from_slice(&[0x16, 0x02, 0x19, 0x1c, 0x19, 0x1c]);
    // ColumnChunk: file_offset 4, ColumnMetaData {INT32, [PLAIN], SNAPPY,
    // 1 value, sizes, data_page_offset 4}.
    footer.extend_from_slice(&[0x26, 0x08, 0x1c, 0x15, 0x02, 0x19, 0x15, 0x00, 0x25, 0x02]);
    footer.extend_from_slice(&[0x16, 0x02, 0x16]);
    zigzag(chunk + uncompressed, &mut footer);
    footer.push(0x16);
    zigzag(chunk, &mut footer);
    footer.extend_from_slice(&[0x26, 0x08, 0x00, 0x00]);
    // RowGroup: total_byte_size, num_rows 1.
    footer.push(0x16);
    zigzag(chunk, &mut footer);
    footer.extend_from_slice(&[0x16, 0x02, 0x00, 0x00]);

    let mut file = b"PAR1".to_vec();
    file.extend_from_slice(&page);
    file.extend_from_slice(&footer);
    file.extend_from_slice(&u32::try_from(footer.len()).unwrap().to_le_bytes());
    file.extend_from_slice(b"PAR1");
    file
}

/// Regression (`dataset_parquet`, a libFuzzer out-of-memory): parquet 60.1
/// reserves a compressed page's declared uncompressed size before
/// decompressing it, so a small Snappy page declaring ~1.9 GB reserved 1.9 GB
/// (an abort where the memory is not there). Snappy expands at most ~21
/// times; a page declaring more than 32 times its compressed size is refused.
#[test]
fn a_page_declaring_more_than_snappy_can_expand_is_refused() {
    let message = load_pages(snappy_page_parquet(0x7fff_fff0)).unwrap_err();
    assert_eq!(
        message,
        "data/hostile.parquet: invalid Parquet file: a page of row group 0, column 0 declares 2147483632 bytes uncompressed from 6 compressed, more than the codec's 32-fold at most"
    );
    // The same file declaring the true size loads its one row.
    assert_eq!(load_pages(snappy_page_parquet(4)), Ok(1));
}
