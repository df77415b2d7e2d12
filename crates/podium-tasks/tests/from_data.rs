//! Tasks from plain data files: each recognized layout, ambiguous and broken
//! files, CSV quirks, JSON / JSON Lines / Parquet, and the YAML they become
//! loading through the normal YAML path.

use std::path::{Path, PathBuf};

use podium_tasks::from_data::{self, DataTaskOptions};
use podium_tasks::{BuildOptions, InstanceRequest, Registry, Target, Task};

fn write(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

/// The task a data file becomes, loaded through the YAML path as `podium eval` does.
fn load(path: &Path, options: &DataTaskOptions) -> (from_data::DataTask, Task) {
    let dir = path.parent().unwrap();
    let data = from_data::data_task(path, dir, options).unwrap();
    let mut registry = Registry::default();
    let name = registry
        .add_text(&data.yaml, &dir.join(format!("{}.yaml", data.name)))
        .unwrap_or_else(|err| panic!("{err}\n{}", data.yaml));
    let config = registry.task_config(&name).unwrap().clone();
    let task = Task::load(config).unwrap();
    (data, task)
}

fn error(path: &Path, options: &DataTaskOptions) -> String {
    from_data::data_task(path, path.parent().unwrap(), options)
        .unwrap_err()
        .to_string()
}

fn golds_and_choices(task: &Task) -> Vec<(Vec<String>, Vec<usize>)> {
    task.build_instances(&BuildOptions::default(), None)
        .unwrap()
        .into_iter()
        .map(|i| match i.target {
            Target::Choices { choices, golds, .. } => (choices, golds),
            other => panic!("not multiple choice: {other:?}"),
        })
        .collect()
}

#[test]
fn generation_layout_with_category_and_id() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "tickets.csv",
        b"id,category,question,answer\nT1,web,Where is my order?,shipping\nT2,api,Why 502?,technical\n",
    );
    let (data, task) = load(&path, &DataTaskOptions::default());
    assert_eq!(data.name, "tickets");
    assert_eq!(
        data.summary,
        "tickets.csv: 2 rows, generation task, input `question`, target `answer`, category `category`, id `id` (unique), metric exact_match"
    );
    let instances = task
        .build_instances(&BuildOptions::default(), None)
        .unwrap();
    assert_eq!(instances[0].prompt, "Question: Where is my order?\nAnswer:");
    let InstanceRequest::Generate { requests } = &instances[0].request else {
        panic!("not a generation")
    };
    assert_eq!(requests[0].until, vec!["\n\n".to_string()]);
    assert_eq!(requests[0].max_tokens, 256);
    assert_eq!(requests[0].messages, None, "a plain task sends no messages");
    assert_eq!(
        instances[1].target,
        Target::Texts {
            golds: vec!["technical".into()],
            fields: Default::default(),
        }
    );
    assert_eq!(task.category(0).as_deref(), Some("web"));
    assert_eq!(task.category(1).as_deref(), Some("api"));
}

#[test]
fn input_and_target_names_are_recognized_without_case() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "p.jsonl",
        b"{\"Prompt\": \"Say hi\", \"Expected\": \"hi\"}\n",
    );
    let (data, task) = load(&path, &DataTaskOptions::default());
    assert!(
        data.summary.contains("input `Prompt`, target `Expected`"),
        "{}",
        data.summary
    );
    let instances = task
        .build_instances(&BuildOptions::default(), None)
        .unwrap();
    assert_eq!(instances[0].prompt, "Say hi");
}

#[test]
fn choices_column_with_each_target_form() {
    let dir = tempfile::tempdir().unwrap();
    // CSV: the choices are JSON text; targets as text.
    let path = write(
        dir.path(),
        "mc.csv",
        b"question,choices,answer\nSky?,\"[\"\"blue\"\", \"\"green\"\"]\",blue\nGrass?,\"[\"\"blue\"\", \"\"green\"\", \"\"red\"\"]\",green\n",
    );
    let (data, task) = load(&path, &DataTaskOptions::default());
    assert!(
        data.summary
            .contains("choices `choices`, target as the choice's text"),
        "{}",
        data.summary
    );
    assert!(
        data.summary.contains("metrics acc, acc_norm"),
        "{}",
        data.summary
    );
    assert_eq!(
        golds_and_choices(&task),
        vec![
            (vec!["blue".into(), "green".into()], vec![0]),
            (vec!["blue".into(), "green".into(), "red".into()], vec![1]),
        ]
    );
    // JSON Lines: real lists; targets as indices, then as letters.
    for (name, answers, form) in [
        ("idx.jsonl", ["1", "0"], "an index"),
        ("letter.jsonl", ["\"B\"", "\"A\""], "a letter"),
    ] {
        let text = format!(
            "{{\"question\": \"Sky?\", \"choices\": [\"green\", \"blue\"], \"answer\": {}}}\n{{\"question\": \"Grass?\", \"choices\": [\"green\", \"blue\"], \"answer\": {}}}\n",
            answers[0], answers[1]
        );
        let path = write(dir.path(), name, text.as_bytes());
        let (data, task) = load(&path, &DataTaskOptions::default());
        assert!(
            data.summary.contains(&format!("target as {form}")),
            "{}",
            data.summary
        );
        let golds: Vec<Vec<usize>> = golds_and_choices(&task)
            .into_iter()
            .map(|(_, g)| g)
            .collect();
        assert_eq!(golds, vec![vec![1], vec![0]], "{name}");
    }
}

#[test]
fn letter_columns_with_each_target_form() {
    let dir = tempfile::tempdir().unwrap();
    for (name, answers) in [
        ("letters.csv", ["C", "A"]),
        ("index.csv", ["2", "0"]),
        ("text.csv", ["Paris", "4"]),
    ] {
        let text = format!(
            "question,A,B,C,D,answer\nCapital of France?,Rome,Berlin,Paris,Madrid,{}\n2+2?,4,5,6,7,{}\n",
            answers[0], answers[1]
        );
        let path = write(dir.path(), name, text.as_bytes());
        let (data, task) = load(&path, &DataTaskOptions::default());
        assert!(
            data.summary.contains("choices in columns A/B/C/D"),
            "{}",
            data.summary
        );
        let instances = task
            .build_instances(&BuildOptions::default(), None)
            .unwrap();
        assert_eq!(
            instances[0].prompt,
            "Capital of France?\nA. Rome\nB. Berlin\nC. Paris\nD. Madrid\nAnswer:"
        );
        let found = golds_and_choices(&task);
        assert_eq!(found[0].0, vec!["A", "B", "C", "D"], "{name}");
        assert_eq!(found[0].1, vec![2], "{name}");
        assert_eq!(found[1].1, vec![0], "{name}");
    }
}

#[test]
fn system_column_becomes_description_and_chat_messages() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "sys.jsonl",
        b"{\"system\": \"Answer in one word.\", \"input\": \"Colour of the sky?\", \"target\": \"blue\"}\n{\"system\": \"\", \"input\": \"2+2?\", \"target\": \"4\"}\n",
    );
    let (data, task) = load(&path, &DataTaskOptions::default());
    assert!(data.yaml.contains("native_chat: true"), "{}", data.yaml);
    let instances = task
        .build_instances(&BuildOptions::default(), None)
        .unwrap();
    // Without a chat template the system prompt precedes the prompt (lm-eval's description).
    assert_eq!(
        instances[0].prompt,
        "Answer in one word.\n\nColour of the sky?"
    );
    assert_eq!(instances[1].prompt, "2+2?");
    let InstanceRequest::Generate { requests } = &instances[0].request else {
        panic!()
    };
    let messages = requests[0].messages.as_ref().expect("chat messages");
    assert_eq!(messages.len(), 2);
    assert_eq!(
        (messages[0].role.as_str(), messages[0].content.as_str()),
        ("system", "Answer in one word.")
    );
    assert_eq!(
        (messages[1].role.as_str(), messages[1].content.as_str()),
        ("user", "Colour of the sky?")
    );
    let InstanceRequest::Generate { requests } = &instances[1].request else {
        panic!()
    };
    assert_eq!(
        requests[0].messages.as_ref().unwrap().len(),
        1,
        "no empty system message"
    );
    // Under a chat template the system prompt is the system message.
    let render = |messages: &[podium_core::ChatMessage],
                  _: bool|
     -> Result<String, podium_core::BackendError> {
        Ok(messages
            .iter()
            .map(|m| format!("<{}>{}", m.role, m.content))
            .collect())
    };
    let instances = task
        .build_instances(&BuildOptions::default(), Some(&render))
        .unwrap();
    assert_eq!(
        instances[0].prompt,
        "<system>Answer in one word.\n\n<user>Colour of the sky?"
    );
}

#[test]
fn messages_column_in_csv_and_jsonl() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write(
        dir.path(),
        "chat.csv",
        "messages,answer\n\"[{\"\"role\"\": \"\"system\"\", \"\"content\"\": \"\"Be brief.\"\"}, {\"\"role\"\": \"\"user\"\", \"\"content\"\": \"\"Hi?\"\"}]\",hello\n".as_bytes(),
    );
    let jsonl = write(
        dir.path(),
        "chat.jsonl",
        b"{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Hi?\"}], \"answer\": \"hello\"}\n",
    );
    for path in [csv, jsonl] {
        let (data, task) = load(&path, &DataTaskOptions::default());
        assert!(
            data.summary.contains("messages `messages`"),
            "{}",
            data.summary
        );
        let instances = task
            .build_instances(&BuildOptions::default(), None)
            .unwrap();
        assert_eq!(
            instances[0].prompt,
            "system: Be brief.\n\nuser: Hi?\n\nassistant:"
        );
        let InstanceRequest::Generate { requests } = &instances[0].request else {
            panic!()
        };
        assert_eq!(requests[0].messages.as_ref().unwrap().len(), 2);
        let render = |messages: &[podium_core::ChatMessage],
                      add: bool|
         -> Result<String, podium_core::BackendError> {
            assert!(add);
            Ok(messages
                .iter()
                .map(|m| format!("<{}>{}", m.role, m.content))
                .collect())
        };
        let instances = task
            .build_instances(&BuildOptions::default(), Some(&render))
            .unwrap();
        assert_eq!(instances[0].prompt, "<system>Be brief.<user>Hi?");
        let InstanceRequest::Generate { requests } = &instances[0].request else {
            panic!()
        };
        assert_eq!(
            requests[0].messages, None,
            "the template already rendered them"
        );
    }
}

#[test]
fn ambiguous_and_unknown_layouts_ask_for_flags() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "two.csv", b"input,question,answer\na,b,c\n");
    let err = error(&path, &DataTaskOptions::default());
    assert!(
        err.contains("`input` and `question` could each be"),
        "{err}"
    );
    assert!(err.contains("--input-col"), "{err}");
    assert!(
        err.contains("columns found: `input`, `question`, `answer`"),
        "{err}"
    );
    let options = DataTaskOptions {
        input_col: Some("question".into()),
        ..Default::default()
    };
    let (data, _) = load(&path, &options);
    assert!(
        data.summary.contains("input `question`"),
        "{}",
        data.summary
    );

    let path = write(dir.path(), "odd.csv", b"ticket,queue\na,b\n");
    let err = error(&path, &DataTaskOptions::default());
    assert!(err.contains("pass --input-col COLUMN"), "{err}");
    assert!(err.contains("columns found: `ticket`, `queue`"), "{err}");
    let options = DataTaskOptions {
        input_col: Some("ticket".into()),
        ..Default::default()
    };
    let err = error(&path, &options);
    assert!(err.contains("pass --target-col COLUMN"), "{err}");
    let options = DataTaskOptions {
        input_col: Some("ticket".into()),
        target_col: Some("queue".into()),
        metrics: vec!["exact_match".into()],
        ..Default::default()
    };
    load(&path, &options);
    let options = DataTaskOptions {
        input_col: Some("tickets".into()),
        ..Default::default()
    };
    let err = error(&path, &options);
    assert!(
        err.contains("--input-col `tickets`: no such column"),
        "{err}"
    );
}

#[test]
fn broken_rows_are_all_reported_by_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "bad.csv",
        b"id,question,answer,category\n1,ok,fine,a\n2,,x,a\n3,q,,\n1,q,y,b\n",
    );
    let err = error(&path, &DataTaskOptions::default());
    assert!(
        err.starts_with(&format!("{}: 4 problems", path.display())),
        "{err}"
    );
    for expected in [
        "row 2, column `question`: empty",
        "row 3, column `answer`: empty",
        "row 3, column `category`: empty",
        "row 4, column `id`: id `1` is also the id of row 1",
    ] {
        assert!(err.contains(expected), "{expected} in {err}");
    }
    // Bad multiple-choice targets and choices; JSON values of the wrong type.
    let path = write(
        dir.path(),
        "bad.jsonl",
        b"{\"question\": \"q\", \"choices\": [\"a\", \"b\"], \"answer\": 5}\n{\"question\": [1], \"choices\": \"nope\", \"answer\": 0}\n{\"question\": \"q\", \"choices\": [\"a\"], \"answer\": 0}\n",
    );
    let err = error(&path, &DataTaskOptions::default());
    for expected in [
        "row 1, column `answer`: `5` does not name one of the 2 choices",
        "row 2, column `question`: is [1], expected text",
        "row 2, column `choices`: is not a JSON list of choices",
        "row 3, column `choices`: needs at least two choices",
    ] {
        assert!(err.contains(expected), "{expected} in {err}");
    }
    // Broken messages.
    let path = write(
        dir.path(),
        "chat.jsonl",
        b"{\"messages\": [{\"role\": \"user\"}], \"answer\": \"a\"}\n{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", \"content\": \"a\"}], \"answer\": \"a\"}\n",
    );
    let err = error(&path, &DataTaskOptions::default());
    assert!(
        err.contains("row 1, column `messages`: message 1 needs a `role` and a text `content`"),
        "{err}"
    );
    assert!(
        err.contains("row 2, column `messages`: the last message must be the user's"),
        "{err}"
    );
}

#[test]
fn row_errors_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("question,answer\n");
    for _ in 0..500 {
        text.push_str("q,\n");
    }
    let path = write(dir.path(), "many.csv", text.as_bytes());
    let err = error(&path, &DataTaskOptions::default());
    assert!(err.contains("500 problems"), "{err}");
    assert_eq!(
        err.matches("column `answer`: empty").count(),
        from_data::MAX_ROW_ERRORS
    );
    assert!(err.contains("… and 450 more"), "{err}");
}

#[test]
fn csv_quirks_bom_quoted_newlines_trailing_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "quirks.csv",
        "\u{feff}question,answer\r\n\"Line one\nline two\",\"yes, really\"\r\nsecond,no\r\n\r\n"
            .as_bytes(),
    );
    let (data, task) = load(&path, &DataTaskOptions::default());
    assert_eq!(data.n_rows, 2);
    let instances = task
        .build_instances(&BuildOptions::default(), None)
        .unwrap();
    assert_eq!(instances[0].prompt, "Question: Line one\nline two\nAnswer:");
    assert_eq!(
        instances[0].target,
        Target::Texts {
            golds: vec!["yes, really".into()],
            fields: Default::default(),
        }
    );
}

#[test]
fn json_array_and_parquet() {
    use parquet::data_type::{ByteArray, ByteArrayType};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "arr.json",
        b"[{\"prompt\": \"a\", \"target\": \"b\"}, {\"prompt\": \"c\", \"target\": 7}]",
    );
    let (data, task) = load(&path, &DataTaskOptions::default());
    assert_eq!(data.n_rows, 2);
    assert_eq!(
        task.build_instances(&BuildOptions::default(), None)
            .unwrap()[1]
            .target,
        Target::Texts {
            golds: vec!["7".into()],
            fields: Default::default(),
        }
    );

    let path = dir.path().join("p.parquet");
    let schema = Arc::new(
        parse_message_type(
            "message doc { REQUIRED BYTE_ARRAY question (UTF8); REQUIRED BYTE_ARRAY answer (UTF8); }",
        )
        .unwrap(),
    );
    let file = std::fs::File::create(&path).unwrap();
    let mut writer =
        SerializedFileWriter::new(file, schema, Arc::new(WriterProperties::builder().build()))
            .unwrap();
    let mut group = writer.next_row_group().unwrap();
    for values in [["q1", "q2"], ["a1", "a2"]] {
        let mut col = group.next_column().unwrap().unwrap();
        col.typed::<ByteArrayType>()
            .write_batch(&values.map(ByteArray::from), None, None)
            .unwrap();
        col.close().unwrap();
    }
    group.close().unwrap();
    writer.close().unwrap();
    let (data, task) = load(&path, &DataTaskOptions::default());
    assert!(data.yaml.contains("dataset_path: parquet"), "{}", data.yaml);
    assert_eq!(task.n_docs(), 2);
}

#[test]
fn metric_names_pass_through_to_metric_list() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "m.csv", b"input,target\na,b\n");
    let options = DataTaskOptions {
        metrics: vec!["contains".into(), "exact_match".into()],
        ..Default::default()
    };
    let data = from_data::data_task(&path, dir.path(), &options).unwrap();
    assert!(
        data.yaml
            .contains("  - metric: \"contains\"\n  - metric: \"exact_match\""),
        "{}",
        data.yaml
    );
}

#[test]
fn yaml_written_elsewhere_names_the_data_file_absolutely() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    std::fs::create_dir(&data_dir).unwrap();
    let path = write(&data_dir, "t.csv", b"input,target\na,b\n");
    let here = from_data::data_task(&path, &data_dir, &DataTaskOptions::default()).unwrap();
    assert!(here.yaml.contains("test: \"t.csv\""), "{}", here.yaml);
    let tasks_dir = dir.path().join("tasks");
    let there = from_data::data_task(&path, &tasks_dir, &DataTaskOptions::default()).unwrap();
    let absolute = std::fs::canonicalize(&path).unwrap();
    assert!(
        there
            .yaml
            .contains(&format!("test: \"{}\"", absolute.display())),
        "{}",
        there.yaml
    );
    let parent = from_data::data_task(&path, dir.path(), &DataTaskOptions::default()).unwrap();
    assert!(
        parent.yaml.contains("test: \"data/t.csv\""),
        "{}",
        parent.yaml
    );
}

#[test]
fn empty_and_oversized_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "empty.csv", b"question,answer\n");
    assert!(error(&path, &DataTaskOptions::default()).contains("has no rows"));
    assert_eq!(
        from_data::default_task_name(Path::new("2024 tickets.csv")),
        "task_2024_tickets"
    );
    assert!(from_data::is_data_file(Path::new("x.JSONL")));
    assert!(!from_data::is_data_file(Path::new("x.yaml")));
}
