//! The `podium` binary end to end, on the mock backend and temporary
//! databases: evaluation and the board, bad input (exit code 2, one error
//! line, nothing stored), kill-and-resume, failed samples, and the
//! lm-evaluation-harness-style output folder.

mod common;

use common::podium;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use podium_store::{RunSummary, SampleStatus, Store};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Run {
    run_command(podium().args(args))
}

fn run_command(command: &mut Command) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().expect("podium runs");
    let run = Run {
        code: status.code().expect("podium exits, not killed"),
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    };
    assert!(
        !run.stderr.contains("panicked"),
        "podium panicked:\n{}",
        run.stderr
    );
    run
}

fn run_ok(args: &[&str]) -> Run {
    let run = run(args);
    assert_eq!(run.code, 0, "podium {args:?} failed:\n{}", run.stderr);
    run
}

fn db_arg(path: &Path) -> String {
    path.display().to_string()
}

fn stored_runs(db: &Path) -> Vec<RunSummary> {
    Store::open(db).unwrap().list_runs().unwrap()
}

/// `podium board --format json`: the board value (columns, models, cells).
fn board_json(db: &Path) -> Json {
    let out = run_ok(&["board", "--format", "json", "--db", &db_arg(db)]);
    serde_json::from_str::<Json>(&out.stdout).unwrap()
}

/// `podium runs` as rows of whitespace-separated cells, header and rule dropped.
fn runs_table(db: &Path) -> Vec<Vec<String>> {
    let out = run_ok(&["runs", "--db", &db_arg(db)]);
    let mut lines = out.stdout.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("run  model"), "{header}");
    assert!(lines.next().unwrap().starts_with("---"));
    lines
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

// ---------------------------------------------------------------------------
// Evaluation and the board.
// ---------------------------------------------------------------------------

#[test]
fn eval_five_tasks_then_board_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("podium.db");
    let out = run_ok(&[
        "eval",
        "-m",
        "mock:a",
        "-t",
        "arc_easy,hellaswag,mmlu,gsm8k,truthfulqa_mc2",
        "--limit",
        "5",
        "--db",
        &db_arg(&db),
    ]);
    assert!(out.stdout.contains("mmlu (group)"), "{}", out.stdout);

    let board = board_json(&db);
    let columns = board["columns"].as_array().unwrap();
    // The tasks' columns, then one per group with an aggregate score: mmlu
    // and its four categories.
    let tasks: Vec<&str> = columns
        .iter()
        .filter(|c| c.get("members").is_none())
        .map(|c| c["setting"]["task"].as_str().unwrap())
        .collect();
    let mut groups: Vec<&str> = columns
        .iter()
        .filter(|c| c.get("members").is_some())
        .map(|c| c["setting"]["task"].as_str().unwrap())
        .collect();
    groups.sort();
    assert_eq!(
        groups,
        [
            "mmlu",
            "mmlu_humanities",
            "mmlu_other",
            "mmlu_social_sciences",
            "mmlu_stem"
        ]
    );
    // The average counts mmlu once: the four other tasks and mmlu.
    assert_eq!(board["average_columns"].as_array().unwrap().len(), 5);
    let mmlu_subjects = tasks.iter().filter(|t| t.starts_with("mmlu_")).count();
    assert_eq!(mmlu_subjects, 57);
    for task in ["arc_easy", "hellaswag", "gsm8k", "truthfulqa_mc2"] {
        assert!(tasks.contains(&task), "{task} missing from {tasks:?}");
    }
    // One column per task: one setting each, ranked by its board metric.
    assert_eq!(tasks.len(), 61);
    let metric = |task: &str| {
        columns
            .iter()
            .find(|c| c["setting"]["task"] == task)
            .unwrap()["setting"]["metric"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(metric("arc_easy"), "acc_norm,none");
    assert_eq!(metric("hellaswag"), "acc_norm,none");
    assert_eq!(metric("gsm8k"), "exact_match,strict-match");
    assert_eq!(metric("truthfulqa_mc2"), "acc,none");
    assert_eq!(metric("mmlu_anatomy"), "acc,none");
    let models = board["models"].as_array().unwrap();
    assert_eq!(models.len(), 1);
    assert_eq!(models[0]["spec"], "mock:a");
    assert!(models[0]["average"]["value"].is_number());
    for (column, cell) in columns.iter().zip(models[0]["cells"].as_array().unwrap()) {
        // A group's n is its members' docs: 5 per subject.
        let n = column
            .get("members")
            .map_or(5, |m| 5 * m.as_array().unwrap().len());
        assert_eq!(cell["n"], n, "{cell}");
        assert_eq!(cell["rank"], 1, "{cell}");
        let value = cell["value"].as_f64().expect("a value");
        assert!(cell["stderr"].as_f64().unwrap() >= 0.0, "{cell}");
        // Every metric here is a mean of values in [0, 1]: the interval stays inside
        // it. Proportions (all but truthfulqa_mc2's probability mass) of 5 docs have a
        // Wilson interval far wider than ±15 points, which the board says.
        let (lo, hi) = (
            cell["ci95"][0].as_f64().unwrap(),
            cell["ci95"][1].as_f64().unwrap(),
        );
        assert!(
            0.0 <= lo && lo <= value && value <= hi && hi <= 1.0,
            "{cell}"
        );
        // (A group pools its subjects' docs: 5 × 57 for mmlu, enough for ±15.)
        if column["setting"]["task"] != "truthfulqa_mc2" && column.get("members").is_none() {
            assert_eq!(cell["low_confidence"], true, "{cell}");
        }
    }

    let csv = run_ok(&["board", "--format", "csv", "--db", &db_arg(&db)]).stdout;
    assert!(
        csv.starts_with("model_id,model,spec,access,licence,provider,parameters,"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 2);
    assert!(csv.contains(",arc_easy:value,"), "{csv}");

    let markdown = run_ok(&["board", "--format", "markdown", "--db", &db_arg(&db)]).stdout;
    assert!(
        markdown.starts_with("| rank | model | average (5 tasks) | access |"),
        "{markdown}"
    );
    assert_eq!(markdown.lines().count(), 3);
    assert!(markdown.contains("| 1 | mock:a | "), "{markdown}");

    let table = run_ok(&["board", "--db", &db_arg(&db)]).stdout;
    let explicit = run_ok(&["board", "--format", "table", "--db", &db_arg(&db)]).stdout;
    assert_eq!(table, explicit);
    assert!(table.starts_with("rank  model"), "{table}");
    assert_eq!(table.lines().count(), 3);
}

#[test]
fn output_folder_is_lm_eval_style_and_env_sets_db() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("env.db");
    let out_dir = dir.path().join("out");
    run_command(
        podium()
            .env("PODIUM_DB", &db)
            .args(["eval", "-m", "mock:a", "-t", "arc_easy", "--limit", "5"])
            .arg("--output")
            .arg(&out_dir),
    );
    assert_eq!(stored_runs(&db).len(), 1, "PODIUM_DB chose the database");

    let results: Json =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("results.json")).unwrap())
            .unwrap();
    for key in ["results", "versions", "n-shot", "configs", "n-samples"] {
        assert!(results.get(key).is_some(), "results.json lacks {key}");
    }
    let arc = &results["results"]["arc_easy"];
    for key in [
        "acc,none",
        "acc_stderr,none",
        "acc_norm,none",
        "acc_norm_stderr,none",
    ] {
        assert!(
            arc[key].is_number(),
            "results.arc_easy[{key}] = {}",
            arc[key]
        );
    }
    assert_eq!(results["n-shot"]["arc_easy"], 0);
    assert_eq!(
        results["n-samples"]["arc_easy"],
        serde_json::json!({"original": 2376, "effective": 5})
    );
    assert_eq!(results["configs"]["arc_easy"]["task"], "arc_easy");
    assert_eq!(results["versions"]["arc_easy"], 1.0);
    assert_eq!(results["config"]["model"], "mock:a");

    let samples = std::fs::read_to_string(out_dir.join("samples_arc_easy.jsonl")).unwrap();
    let lines: Vec<Json> = samples
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["doc_id"], i);
        assert_eq!(line["status"], "ok");
        assert!(line["doc"]["question"].is_string(), "{line}");
        assert!(line["metrics"]["metrics"]["acc,none"].is_number(), "{line}");
        assert!(
            line["arguments"]["prompt"]
                .as_str()
                .unwrap()
                .starts_with("Question: ")
        );
    }
}

/// IFEval end to end: the four metrics under lm-eval's keys, each with a stderr and an
/// interval, and every sample's per-instruction verdicts in samples_ifeval.jsonl.
#[test]
fn ifeval_runs_with_the_mock_backend() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ifeval.db");
    let out_dir = dir.path().join("out");
    run_command(
        podium()
            .env("PODIUM_DB", &db)
            .args(["eval", "-m", "mock:a", "-t", "ifeval", "--limit", "5"])
            .arg("--output")
            .arg(&out_dir),
    );
    let results: Json =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("results.json")).unwrap())
            .unwrap();
    let ifeval = &results["results"]["ifeval"];
    for metric in [
        "prompt_level_strict_acc",
        "inst_level_strict_acc",
        "prompt_level_loose_acc",
        "inst_level_loose_acc",
    ] {
        let value = ifeval[format!("{metric},none")].as_f64();
        assert!(
            value.is_some_and(|v| (0.0..=1.0).contains(&v)),
            "{metric}: {ifeval}"
        );
        assert!(
            ifeval[format!("{metric}_stderr,none")].is_number(),
            "{metric}: {ifeval}"
        );
    }
    assert_eq!(
        results["n-samples"]["ifeval"],
        serde_json::json!({"original": 541, "effective": 5})
    );
    let samples = std::fs::read_to_string(out_dir.join("samples_ifeval.jsonl")).unwrap();
    let lines: Vec<Json> = samples
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    for line in &lines {
        let ids = line["doc"]["instruction_id_list"].as_array().unwrap();
        let verdicts = line["metrics"]["instructions"].as_array().unwrap();
        assert_eq!(verdicts.len(), ids.len(), "{line}");
        for (verdict, id) in verdicts.iter().zip(ids) {
            assert_eq!(&verdict["id"], id);
            assert!(verdict["strict"].is_boolean() && verdict["loose"].is_boolean());
        }
    }
    // The run is stored and listed.
    let table = run_ok(&["runs", "--db", &db_arg(&db)]).stdout;
    assert!(table.contains("ifeval"), "{table}");
}

// ---------------------------------------------------------------------------
// Bad input: exit code 2, one error line, nothing stored.
// ---------------------------------------------------------------------------

const TINY_DATA: &str = "{\"question\": \"Why?\", \"answer\": \"Because.\"}\n";

/// A valid generation task with `extra` appended.
fn tiny_task(extra: &str) -> String {
    format!(
        "task: tiny\n\
         dataset_path: json\n\
         dataset_kwargs:\n  data_files:\n    test: data.jsonl\n\
         test_split: test\n\
         output_type: generate_until\n\
         doc_to_text: \"Q: {{{{question}}}}\\nA:\"\n\
         doc_to_target: answer\n\
         {extra}"
    )
}

/// The lines of stderr that carry a message (clap's `--help` hint aside).
fn message_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("For more information"))
        .collect()
}

struct BadInput<'a> {
    files: &'a [(&'a str, &'a str)],
    /// `eval` arguments; `{dir}` stands for the folder holding `files`.
    args: &'a [&'a str],
    /// Parts of the one error line, `{dir}` as in `args`.
    expected: &'a [&'a str],
}

fn check_bad_input(case: BadInput<'_>) {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().display().to_string();
    for (name, content) in case.files {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    let db = dir.path().join("podium.db");
    let args: Vec<String> = ["eval"]
        .iter()
        .chain(case.args)
        .map(|a| a.replace("{dir}", &folder))
        .chain(["--db".to_string(), db_arg(&db)])
        .collect();
    let out = run_command(podium().args(&args));
    assert_eq!(out.code, 2, "podium {args:?}:\n{}", out.stderr);
    let lines = message_lines(&out.stderr);
    assert_eq!(lines.len(), 1, "podium {args:?}: {lines:#?}");
    assert!(lines[0].starts_with("error: "), "{}", lines[0]);
    for part in case.expected {
        let part = part.replace("{dir}", &folder);
        assert!(lines[0].contains(&part), "`{part}` not in: {}", lines[0]);
    }
    assert!(out.stdout.is_empty(), "stdout: {}", out.stdout);
    // Nothing reached the store.
    assert_eq!(runs_table(&db), Vec::<Vec<String>>::new());
    assert_eq!(stored_runs(&db).len(), 0);
}

fn task_files<'a>(yaml: &'a str, data: &'a str) -> [(&'a str, &'a str); 2] {
    [("tiny.yaml", yaml), ("data.jsonl", data)]
}

#[test]
fn malformed_yaml() {
    check_bad_input(BadInput {
        files: &[(
            "tiny.yaml",
            "task: bad\ndoc_to_choice: [A, B\ndoc_to_target: 0\n",
        )],
        args: &["-m", "mock:a", "-t", "{dir}/tiny.yaml"],
        expected: &["error: {dir}/tiny.yaml:3: illegal placement of ':' indicator"],
    });
}

#[test]
fn wrong_type_for_a_key() {
    let yaml = tiny_task("num_fewshot: five\n");
    check_bad_input(BadInput {
        files: &task_files(&yaml, TINY_DATA),
        args: &["-m", "mock:a", "-t", "{dir}/tiny.yaml"],
        expected: &[
            "{dir}/tiny.yaml:10: key `num_fewshot` must be a non-negative integer, found a string",
        ],
    });
}

#[test]
fn function_tag_for_process_results() {
    let yaml = tiny_task("process_results: !function utils.process_results\n");
    check_bad_input(BadInput {
        files: &task_files(&yaml, TINY_DATA),
        args: &["-m", "mock:a", "-t", "{dir}/tiny.yaml"],
        expected: &[
            "{dir}/tiny.yaml:10: `process_results`: `!function utils.process_results`",
            "use a built-in name instead (truthfulqa_mc2, ifeval)",
        ],
    });
}

#[test]
fn missing_data_file() {
    let yaml = tiny_task("");
    check_bad_input(BadInput {
        files: &[("tiny.yaml", &yaml)],
        args: &["-m", "mock:a", "-t", "{dir}/tiny.yaml"],
        expected: &["{dir}/data.jsonl: cannot read data file of split `test`"],
    });
}

#[test]
fn csv_with_a_ragged_row() {
    let yaml = tiny_task("")
        .replace("dataset_path: json", "dataset_path: csv")
        .replace("data.jsonl", "data.csv");
    check_bad_input(BadInput {
        files: &[
            ("tiny.yaml", &yaml),
            ("data.csv", "question,answer\nWhy?,Because.\nHow?\n"),
        ],
        args: &["-m", "mock:a", "-t", "{dir}/tiny.yaml"],
        expected: &["{dir}/data.csv:3: row has 1 fields, expected 2 (ragged CSV)"],
    });
}

#[test]
fn jsonl_line_that_is_not_json() {
    let yaml = tiny_task("");
    let data = format!("{TINY_DATA}{{question: oops}}\n");
    check_bad_input(BadInput {
        files: &task_files(&yaml, &data),
        args: &["-m", "mock:a", "-t", "{dir}/tiny.yaml"],
        expected: &["{dir}/data.jsonl:2: not a JSON object"],
    });
}

#[test]
fn template_referencing_a_missing_field() {
    let yaml = tiny_task("");
    let data = format!("{TINY_DATA}{{\"questoin\": \"typo\", \"answer\": \"x\"}}\n");
    check_bad_input(BadInput {
        files: &task_files(&yaml, &data),
        args: &["-m", "mock:a", "-t", "{dir}/tiny.yaml"],
        expected: &[
            "task `tiny`, doc 1: `doc_to_text`: ",
            "a field the template uses is missing from the doc",
        ],
    });
}

#[test]
fn unknown_task_with_suggestion() {
    check_bad_input(BadInput {
        files: &[],
        args: &["-m", "mock:a", "-t", "arc_esay"],
        expected: &["error: unknown task `arc_esay`: did you mean `arc_easy`?"],
    });
    check_bad_input(BadInput {
        files: &[],
        args: &["-m", "mock:a", "-t", "arc_easy,zzzz_nothing"],
        expected: &["error: unknown task `zzzz_nothing` (run `podium tasks`"],
    });
}

#[test]
fn unknown_metric() {
    let yaml = tiny_task("metric_list:\n  - metric: accuracy\n");
    check_bad_input(BadInput {
        files: &task_files(&yaml, TINY_DATA),
        args: &["-m", "mock:a", "-t", "{dir}/tiny.yaml"],
        expected: &[
            "{dir}/tiny.yaml:11: `metric`: unknown metric `accuracy`; the metrics are: acc, ",
        ],
    });
}

#[test]
fn unknown_filter() {
    let yaml = tiny_task("filter_list:\n  - name: x\n    filter:\n      - function: regexp\n");
    check_bad_input(BadInput {
        files: &task_files(&yaml, TINY_DATA),
        args: &["-m", "mock:a", "-t", "{dir}/tiny.yaml"],
        expected: &[
            "{dir}/tiny.yaml:13: `function`: unknown filter `regexp`; the filters are: regex, ",
        ],
    });
}

#[test]
fn split_not_in_data_files() {
    let yaml = tiny_task("").replace("test_split: test", "test_split: validation");
    check_bad_input(BadInput {
        files: &task_files(&yaml, TINY_DATA),
        args: &["-m", "mock:a", "-t", "{dir}/tiny.yaml"],
        expected: &[
            "{dir}/tiny.yaml:6: `test_split`: split `validation` is not in `dataset_kwargs.data_files` (it has: test)",
        ],
    });
}

#[test]
fn limit_zero() {
    check_bad_input(BadInput {
        files: &[],
        args: &["-m", "mock:a", "-t", "arc_easy", "--limit", "0"],
        expected: &["error: invalid value '0' for '--limit <LIMIT>'"],
    });
}

#[test]
fn unknown_model_kind_lists_known_kinds() {
    check_bad_input(BadInput {
        files: &[],
        args: &["-m", "foo:x", "-t", "arc_easy"],
        expected: &["unknown model kind `foo` in `foo:x`: known kinds are mock, "],
    });
    check_bad_input(BadInput {
        files: &[],
        args: &["-m", "mock:a?speed=3", "-t", "arc_easy"],
        expected: &["unknown mock option `speed` (known: delay_ms, fail_every, verdicts)"],
    });
}

#[test]
fn unknown_key_is_a_warning_and_the_eval_runs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tiny.yaml"),
        tiny_task("doc_to_txt: typo\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("data.jsonl"), TINY_DATA).unwrap();
    let db = dir.path().join("podium.db");
    let yaml = dir.path().join("tiny.yaml").display().to_string();
    let out = run_ok(&["eval", "-m", "mock:a", "-t", &yaml, "--db", &db_arg(&db)]);
    assert_eq!(
        message_lines(&out.stderr),
        [format!(
            "warning: {yaml}:10: unknown key `doc_to_txt` (ignored)"
        )]
    );
    let runs = stored_runs(&db);
    assert_eq!(runs.len(), 1);
    assert_eq!((runs[0].task_name.as_str(), runs[0].n_samples), ("tiny", 1));
}

// ---------------------------------------------------------------------------
// Kill and resume; failed samples.
// ---------------------------------------------------------------------------

const SLOW_MODEL: &str = "mock:slow?delay_ms=30";

fn slow_eval(db: &Path) -> Command {
    let mut command = podium();
    command.args([
        "eval", "-m", SLOW_MODEL, "-t", "arc_easy", "--limit", "60", "--db",
    ]);
    command.arg(db);
    command
}

fn stored_samples(db: &Path) -> u64 {
    stored_runs(db).iter().map(|r| r.n_samples).sum()
}

/// The board without the times runs finished.
fn board_values(db: &Path) -> Json {
    fn strip(value: &mut Json) {
        match value {
            Json::Object(map) => {
                map.remove("finished_at");
                map.remove("last_run");
                map.values_mut().for_each(strip);
            }
            Json::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut board = board_json(db);
    strip(&mut board);
    board
}

fn check_single_complete_run(db: &Path, n: u64) -> RunSummary {
    let runs = stored_runs(db);
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run = runs.into_iter().next().unwrap();
    assert_eq!((run.n_samples, run.n_failed), (n, 0));
    assert_eq!(run.status.to_string(), "finished");
    let store = Store::open(db).unwrap();
    let doc_ids: Vec<u64> = store
        .samples(run.run_id)
        .unwrap()
        .iter()
        .map(|s| s.doc_id)
        .collect();
    assert_eq!(doc_ids, (0..n).collect::<Vec<_>>());
    run
}

#[test]
fn killed_eval_resumes_to_the_same_scores() {
    let dir = tempfile::tempdir().unwrap();
    let db_a: PathBuf = dir.path().join("a.db");
    let db_b: PathBuf = dir.path().join("b.db");

    let mut child = slow_eval(&db_a)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let stored_before_kill = loop {
        assert!(Instant::now() < deadline, "no samples stored within 60 s");
        if let Some(status) = child.try_wait().unwrap() {
            panic!("eval finished ({status}) before it could be interrupted");
        }
        let n = if db_a.exists() {
            stored_samples(&db_a)
        } else {
            0
        };
        if n > 0 {
            child.kill().unwrap();
            child.wait().unwrap();
            break stored_samples(&db_a);
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(
        stored_before_kill > 0 && stored_before_kill < 60,
        "{stored_before_kill} samples stored when killed"
    );
    assert_eq!(stored_runs(&db_a)[0].status.to_string(), "running");

    let resumed = run_command(&mut slow_eval(&db_a));
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert!(
        resumed.stderr.contains(&format!(
            "arc_easy: resumed run 1 ({stored_before_kill} samples were already stored)"
        )),
        "{}",
        resumed.stderr
    );
    let uninterrupted = run_command(&mut slow_eval(&db_b));
    assert_eq!(uninterrupted.code, 0, "{}", uninterrupted.stderr);

    check_single_complete_run(&db_a, 60);
    check_single_complete_run(&db_b, 60);
    let board_a = board_values(&db_a);
    assert_eq!(board_a["columns"].as_array().unwrap().len(), 1, "arc_easy");
    assert!(board_a["models"][0]["cells"][0]["stderr"].is_number());
    assert_eq!(board_a, board_values(&db_b));
    // The printed results agree too.
    assert_eq!(resumed.stdout, uninterrupted.stdout);
}

#[test]
fn failed_samples_are_recorded_and_retried() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flaky.db");
    let args = [
        "eval",
        "-m",
        "mock:flaky?fail_every=3",
        "-t",
        "arc_easy",
        "--limit",
        "30",
        "--db",
        &db_arg(&db),
    ];
    let first = run(&args);
    assert_eq!(first.code, 1, "{}", first.stderr);
    assert!(
        first
            .stderr
            .contains("samples failed and were recorded; run the same command again to retry them"),
        "{}",
        first.stderr
    );
    assert!(first.stderr.contains("mock failure (fail_every=3)"));

    let check_store = || -> u64 {
        let runs = stored_runs(&db);
        assert_eq!(runs.len(), 1, "{runs:?}");
        assert_eq!(runs[0].n_samples, 30, "one row per doc, no duplicates");
        assert_eq!(runs[0].status.to_string(), "running", "not finished");
        let failed = runs[0].n_failed;
        assert!(failed > 0 && failed < 30, "{failed} failed");
        let store = Store::open(&db).unwrap();
        let samples = store.samples(runs[0].run_id).unwrap();
        let errors: Vec<&str> = samples
            .iter()
            .filter(|s| s.status == SampleStatus::Failed)
            .map(|s| s.error.as_deref().unwrap_or(""))
            .collect();
        assert_eq!(errors.len() as u64, failed);
        assert!(errors.iter().all(|e| *e == "mock failure (fail_every=3)"));
        // `podium runs` shows the count in its `failed` column.
        let table = runs_table(&db);
        assert_eq!(table.len(), 1);
        assert_eq!(table[0][1], "mock:flaky?fail_every=3");
        assert_eq!(table[0][4], "30");
        assert_eq!(table[0][5], failed.to_string());
        failed
    };
    let failed = check_store();
    assert!(
        first
            .stderr
            .contains(&format!("arc_easy: {failed} samples failed")),
        "{}",
        first.stderr
    );

    // The rerun resumes the ok samples and retries the failed ones, which fail again.
    let second = run(&args);
    assert_eq!(second.code, 1, "{}", second.stderr);
    assert!(
        second
            .stderr
            .contains(&format!("resumed run 1 ({} samples", 30 - failed)),
        "{}",
        second.stderr
    );
    assert_eq!(check_store(), failed);
    // A run with failed samples is not on the board.
    assert_eq!(board_json(&db)["models"], serde_json::json!([]));
}

/// Regression: a broken YAML in `--tasks-dir` asked for by name used to print
/// "skipped" as a warning, then "unknown task".
#[test]
fn broken_task_file_asked_by_name_gives_its_own_error() {
    let dir = tempfile::tempdir().unwrap();
    let tasks = dir.path().join("mine");
    std::fs::create_dir_all(&tasks).unwrap();
    std::fs::write(tasks.join("mytask.yaml"), "task: mytask\nnum_fewshot: [1\n").unwrap();
    let db = dir.path().join("p.db");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_podium"))
        .args(["eval", "-m", "mock:a", "-t", "mytask", "--tasks-dir"])
        .arg(&tasks)
        .arg("--db")
        .arg(&db)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("mytask.yaml:"), "{stderr}");
    assert!(!stderr.contains("unknown task"), "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
}

#[test]
fn bench_records_and_the_speed_board() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("podium.db");
    let records = dir.path().join("records.jsonl");
    let db_text = db_arg(&db);
    let bench = |requests: &str, records: &Path, more: &[&str]| {
        let mut args = vec![
            "--db",
            &db_text,
            "bench",
            "-m",
            "mock:a",
            "--requests",
            requests,
        ];
        args.extend(more);
        args.extend(["--records", records.to_str().unwrap()]);
        run(&args)
    };
    let ok = bench("3", &records, &["--concurrency", "1,2", "--warmup", "0"]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let lines: Vec<Json> = std::fs::read_to_string(&records)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    // Three requests at each of the two levels, each labelled with its level.
    assert_eq!(lines.len(), 6);
    assert_eq!(lines[0]["level"], "concurrency 1");
    assert_eq!(lines[5]["level"], "concurrency 2");
    assert!(
        lines
            .iter()
            .all(|l| l["ok"] == true && l["e2e_s"].is_number())
    );

    let board = run_ok(&["--db", &db_arg(&db), "board", "--speed", "--format", "csv"]).stdout;
    let mut rows = board.lines();
    let header = rows.next().unwrap();
    assert!(header.starts_with("model,load,"), "{header}");
    assert!(header.ends_with(",blended $/1M"), "{header}");
    // The mock model has no catalogue price: the price cell is empty, not 0.
    let row = rows.next().unwrap();
    assert!(row.starts_with("mock:a,") && row.ends_with(','), "{row}");

    // A bad --records path is a clear error, not a panic.
    let bad = bench("1", &dir.path().join("no/such/dir/r.jsonl"), &[]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("--records"), "{}", bad.stderr);
}

/// `--quiet` leaves results on stdout and nothing else: no notes (a resumed
/// run says so without it), no progress; errors still reach stderr.
#[test]
fn quiet_prints_only_results_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_arg(&dir.path().join("q.db"));
    let args = [
        "--db",
        &db,
        "eval",
        "-m",
        "mock:a",
        "-t",
        "lite_arc_easy",
        "--limit",
        "3",
    ];
    run_ok(&args);
    let loud = run_ok(&args);
    assert!(loud.stderr.contains("resumed run"), "{}", loud.stderr);
    let quiet = run_ok(&[&["--quiet"][..], &args[..]].concat());
    assert_eq!(quiet.stderr, "");
    assert_eq!(quiet.stdout, loud.stdout);
    let failed = run(&[
        "-q",
        "--db",
        &db,
        "eval",
        "-m",
        "nope:x",
        "-t",
        "lite_arc_easy",
    ]);
    assert_eq!(failed.code, 2);
    assert!(failed.stderr.starts_with("error: "), "{}", failed.stderr);
}

// ---------------------------------------------------------------------------
// Rule and reference metrics (issue 14)
// ---------------------------------------------------------------------------

/// A generation task scored by several rule metrics and two reference metrics, run end to
/// end with the mock backend: result keys (one per entry, `name:` when a metric repeats),
/// values that do not depend on the mock's text, reasons stored with each sample, BLEU's
/// bootstrap stderr, and the same numbers again when the run resumes from the store.
#[test]
fn rule_and_reference_metrics_score_a_generation_task() {
    let dir = tempfile::tempdir().unwrap();
    let tasks = dir.path().join("tasks");
    std::fs::create_dir(&tasks).unwrap();
    let data: String = (0..6)
        .map(|i| format!("{{\"question\": \"Ticket {i}?\", \"answer\": \"refund number {i}\"}}\n"))
        .collect();
    std::fs::write(tasks.join("data.jsonl"), data).unwrap();
    std::fs::write(
        tasks.join("support.yaml"),
        "task: support\n\
         dataset_path: json\n\
         dataset_kwargs:\n  data_files:\n    test: data.jsonl\n\
         test_split: test\n\
         output_type: generate_until\n\
         doc_to_text: \"{{question}}\"\n\
         doc_to_target: answer\n\
         generation_kwargs:\n  max_gen_toks: 16\n\
         metric_list:\n\
         \x20 - metric: regex\n    name: always\n    pattern: '(?s).*'\n\
         \x20 - metric: regex\n    name: never\n    pattern: '(?s).*'\n    negate: true\n\
         \x20 - metric: length\n    max: 100000\n\
         \x20 - metric: json_valid\n\
         \x20 - metric: rules\n    name: mix\n    rules:\n      - {metric: regex, pattern: '(?s).*', weight: 3}\n      - {metric: length, max: 0, negate: false, min: 0, weight: 1, regexes_to_ignore: ['(?s).+']}\n      - {metric: contains, value: 'never-in-any-answer-%%', weight: 1}\n\
         \x20 - metric: bleu\n\
         \x20 - metric: rougeL\n",
    )
    .unwrap();
    let db = dir.path().join("podium.db");
    let out_dir = dir.path().join("out");
    let eval = |out: &Path| {
        run_command(
            podium()
                .args(["eval", "-m", "mock:a", "-t", "support", "--tasks-dir"])
                .arg(&tasks)
                .arg("--db")
                .arg(&db)
                .arg("--output")
                .arg(out),
        )
    };
    let first = eval(&out_dir);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let results: Json =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("results.json")).unwrap())
            .unwrap();
    let task = &results["results"]["support"];
    assert_eq!(task["always,none"], 1.0, "{task}");
    assert_eq!(task["never,none"], 0.0);
    assert_eq!(task["length,none"], 1.0);
    // 3 · 1 + 1 · 1 (every answer is empty once `.+` is ignored) + 1 · 0, of 5.
    let mix = task["mix,none"].as_f64().unwrap();
    assert!((mix - 0.8).abs() < 1e-12, "{mix}");
    for key in [
        "json_valid,none",
        "bleu,none",
        "bleu_stderr,none",
        "rougeL,none",
    ] {
        assert!(
            task[key].is_number(),
            "results.support[{key}] = {}",
            task[key]
        );
    }
    let intervals = &results["podium"]["intervals"]["support"];
    assert_eq!(intervals["always,none"]["method"], "wilson");
    assert!(intervals["bleu,none"]["ci95"].is_array(), "{intervals}");

    let samples = std::fs::read_to_string(out_dir.join("samples_support.jsonl")).unwrap();
    let lines: Vec<Json> = samples
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 6);
    for line in &lines {
        let scores = &line["metrics"];
        let reason = scores["reasons"]["always,none"].as_str().unwrap();
        assert!(reason.starts_with("pass: `(?s).*` matches"), "{reason}");
        let reason = scores["reasons"]["never,none"].as_str().unwrap();
        assert!(reason.starts_with("fail: negated, "), "{reason}");
        assert!(scores["reasons"]["json_valid,none"].is_string(), "{scores}");
        // BLEU stores its sufficient statistics; ROUGE has no reason.
        assert_eq!(
            scores["metrics"]["bleu,none"]["stats"]
                .as_array()
                .unwrap()
                .len(),
            10
        );
        assert!(scores["reasons"].get("rougeL,none").is_none());
    }

    // Again: every sample comes from the store, and the numbers are the same.
    let again_dir = dir.path().join("again");
    let second = eval(&again_dir);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let again: Json =
        serde_json::from_str(&std::fs::read_to_string(again_dir.join("results.json")).unwrap())
            .unwrap();
    assert_eq!(again["results"], results["results"]);
}
