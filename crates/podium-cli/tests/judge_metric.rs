//! The `judge` task metric end to end with mock judges: verdicts become a
//! score with an interval, unparseable verdicts are stored and counted, the
//! judge's raw output and tokens are stored with each sample apart from the
//! candidate's, a rerun is answered from the store, another judge makes
//! another run, and a judge metric without a judge stops before anything is
//! stored.

mod common;

use common::podium;

use std::path::Path;
use std::process::Output;

use serde_json::Value as Json;

use podium_store::Store;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[String]) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = podium().args(args).output().expect("podium runs");
    let run = Run {
        code: status.code().expect("podium exits"),
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    };
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    run
}

const N_DOCS: usize = 24;

/// A support-question task graded by exact match and by a pass/fail judge,
/// with `extra` appended to the judge's entry.
fn write_task(dir: &Path, judge_extra: &str) {
    let mut data = String::new();
    for i in 0..N_DOCS {
        data.push_str(&format!(
            "{{\"question\": \"Can I get a refund for order {i}?\", \"answer\": \"Yes, within 30 days.\"}}\n"
        ));
    }
    std::fs::write(dir.join("data.jsonl"), data).unwrap();
    std::fs::write(
        dir.join("support.yaml"),
        format!(
            "task: support\n\
             dataset_path: json\n\
             dataset_kwargs:\n  data_files:\n    test: data.jsonl\n\
             test_split: test\n\
             output_type: generate_until\n\
             doc_to_text: \"Customer: {{{{question}}}}\\nAgent:\"\n\
             doc_to_target: answer\n\
             generation_kwargs:\n  until: [\"\\n\\n\"]\n  max_gen_toks: 64\n\
             metric_list:\n\
             \x20 - metric: exact_match\n\
             \x20 - metric: judge\n\
             \x20   rubric: The agent answers the refund question politely and correctly.\n\
             {judge_extra}"
        ),
    )
    .unwrap();
}

fn eval_args(dir: &Path, db: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "eval",
        "-m",
        "mock:a",
        "-t",
        &dir.join("support.yaml").display().to_string(),
        "--db",
        &db.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

#[test]
fn judge_verdicts_are_scored_stored_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    write_task(dir.path(), "");
    let db = dir.path().join("podium.db");
    let out_dir = dir.path().join("out");
    let judge = "mock:j?verdicts=grade";
    let mut args = eval_args(dir.path(), &db, &["--judge", judge, "--output"]);
    args.push(out_dir.display().to_string());
    let first = run(&args);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(first.stdout.contains("judge"), "{}", first.stdout);

    let results: Json =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("results.json")).unwrap())
            .unwrap();
    let support = &results["results"]["support"];
    let value = support["judge,none"].as_f64().expect("a judge score");
    let stderr = support["judge_stderr,none"].as_f64().expect("a stderr");
    assert!((0.0..=1.0).contains(&value), "{value}");
    assert!(stderr > 0.0, "{stderr}");
    let summaries = results["podium"]["judges"]["support"].as_array().unwrap();
    assert_eq!(summaries.len(), 1);
    let summary = &summaries[0];
    assert_eq!(summary["judge"], judge);
    assert_eq!(summary["metric"], "judge");
    let n_verdicts = summary["n_verdicts"].as_u64().unwrap() as usize;
    let n_unparseable = summary["n_unparseable"].as_u64().unwrap() as usize;
    assert_eq!(n_verdicts + n_unparseable, N_DOCS, "{summary}");
    assert!(n_unparseable > 0, "the mock judge leaves some undecided");
    assert!(n_verdicts > 0);
    // The metric's n counts the verdicts only; none is silently dropped.
    let interval = &results["podium"]["intervals"]["support"];
    assert!(interval.to_string().contains("judge"), "{interval}");

    // Every sample keeps the judge's prompt, raw output and tokens.
    let samples = std::fs::read_to_string(out_dir.join("samples_support.jsonl")).unwrap();
    let mut passes = 0;
    let mut judge_input_tokens = 0;
    for line in samples.lines() {
        let sample: Json = serde_json::from_str(line).unwrap();
        let judgement = &sample["metrics"]["judgements"]["judge"];
        assert_eq!(judgement["judge"], judge, "{sample}");
        let prompt = judgement["prompt"].as_str().unwrap();
        assert!(prompt.contains("politely and correctly"), "{prompt}");
        assert!(prompt.contains("Can I get a refund for order"), "{prompt}");
        // The answer is the candidate's, cut at the task's stop string.
        assert!(prompt.contains("The answer is"), "{prompt}");
        assert!(!prompt.contains("Q: next"), "{prompt}");
        assert!(
            prompt.contains("Yes, within 30 days."),
            "the reference is shown"
        );
        let output = judgement["output"].as_str().unwrap();
        match judgement["value"].as_f64() {
            Some(v) => {
                assert!(output.contains(if v == 1.0 { "[[PASS]]" } else { "[[FAIL]]" }));
                assert_eq!(sample["metrics"]["metrics"]["judge,none"].as_f64(), Some(v));
                passes += v as usize;
            }
            None => {
                assert_eq!(judgement["unparseable"], "no_verdict", "{judgement}");
                assert!(sample["metrics"]["metrics"].get("judge,none").is_none());
            }
        }
        judge_input_tokens += judgement["n_input_tokens"].as_u64().unwrap();
        // The candidate's own token counts stay the candidate's.
        assert!(sample["n_output_tokens"].as_u64().unwrap() < 100);
    }
    assert!((value - passes as f64 / n_verdicts as f64).abs() < 1e-12);
    assert_eq!(
        summary["n_input_tokens"].as_u64().unwrap(),
        judge_input_tokens
    );
    assert!(
        first.stderr.contains(&format!(
            "support: judge {judge} (judge): {n_verdicts} verdicts, {n_unparseable} unparseable"
        )),
        "{}",
        first.stderr
    );
    assert!(first.stderr.contains("not in the model's cost"));

    // The same command resumes the stored run and reports the same score.
    let again = run(&eval_args(dir.path(), &db, &["--judge", judge]));
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stderr.contains("resumed run"), "{}", again.stderr);
    let store = Store::open(&db).unwrap();
    assert_eq!(store.list_runs().unwrap().len(), 1);

    // Another judge is another run: its verdicts are not the first judge's.
    let other = run(&eval_args(
        dir.path(),
        &db,
        &["--judge", "mock:k?verdicts=grade"],
    ));
    assert_eq!(other.code, 0, "{}", other.stderr);
    assert!(!other.stderr.contains("resumed run"), "{}", other.stderr);
    assert_eq!(store.list_runs().unwrap().len(), 2);
}

#[test]
fn a_rating_judge_named_in_the_task() {
    let dir = tempfile::tempdir().unwrap();
    write_task(
        dir.path(),
        "    name: helpfulness\n    scale: score_1_10\n    reference: false\n    model: \"mock:r?verdicts=rating\"\n",
    );
    let db = dir.path().join("podium.db");
    let out = run(&eval_args(dir.path(), &db, &[]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains("helpfulness"))
        .unwrap_or_else(|| panic!("no helpfulness row:\n{}", out.stdout));
    // A mean rating on the 1-10 scale.
    let value: f64 = line
        .split_whitespace()
        .find_map(|cell| cell.parse::<f64>().ok().filter(|v| *v > 1.0))
        .unwrap_or_else(|| panic!("{line}"));
    assert!((1.0..=10.0).contains(&value), "{line}");
    assert!(
        out.stderr
            .contains("support: judge mock:r?verdicts=rating (helpfulness)"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_judge_metric_without_a_judge_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    write_task(dir.path(), "");
    let db = dir.path().join("podium.db");
    let out = run(&eval_args(dir.path(), &db, &[]));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("task `support`: metric `judge` needs a judge model: pass --judge SPEC"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty());
    if db.exists() {
        assert!(Store::open(&db).unwrap().list_runs().unwrap().is_empty());
    }
}

#[test]
fn bad_judge_entries_name_file_line_and_key() {
    for (extra, expected) in [
        ("    scale: stars\n", "unknown judge scale `stars`"),
        ("    template: \"{question}\"\n", "`{answer}` exactly once"),
        (
            "    temperature: 1\n",
            "`temperature`: unsupported option for metric `judge`",
        ),
        ("    max_tokens: 0\n", "between 1 and 32768"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        write_task(dir.path(), extra);
        let db = dir.path().join("podium.db");
        let out = run(&eval_args(
            dir.path(),
            &db,
            &["--judge", "mock:j?verdicts=grade"],
        ));
        assert_eq!(out.code, 2, "{extra}: {}", out.stderr);
        assert!(out.stderr.contains("support.yaml:"), "{}", out.stderr);
        assert!(out.stderr.contains(expected), "{extra}: {}", out.stderr);
    }
}

#[test]
fn a_local_model_as_judge() {
    let Some(model) = podium_testkit::models::test_model(podium_testkit::models::SMOLLM2) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    write_task(dir.path(), "    max_tokens: 12\n");
    let db = dir.path().join("podium.db");
    let out_dir = dir.path().join("out");
    let judge = format!("gguf:{}?threads=1", model.display());
    let mut args = eval_args(
        dir.path(),
        &db,
        &["--judge", &judge, "--limit", "3", "--output"],
    );
    args.push(out_dir.display().to_string());
    let out = run(&args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let samples = std::fs::read_to_string(out_dir.join("samples_support.jsonl")).unwrap();
    let mut n_judged = 0;
    for line in samples.lines() {
        let sample: Json = serde_json::from_str(line).unwrap();
        let judgement = &sample["metrics"]["judgements"]["judge"];
        // The grading prompt went through SmolLM2's chat template, and the
        // engine counted the judge's own tokens.
        assert!(judgement["output"].is_string(), "{sample}");
        assert!(
            judgement["n_input_tokens"].as_u64().unwrap() > 100,
            "{judgement}"
        );
        let n_out = judgement["n_output_tokens"].as_u64().unwrap();
        assert!((1..=12).contains(&n_out), "{judgement}");
        // A verdict or a recorded reason, never neither.
        assert!(
            judgement["value"].is_number() != judgement.get("unparseable").is_some(),
            "{judgement}"
        );
        n_judged += 1;
    }
    assert_eq!(n_judged, 3);
    let results: Json =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("results.json")).unwrap())
            .unwrap();
    let summary = &results["podium"]["judges"]["support"][0];
    assert_eq!(
        summary["n_verdicts"].as_u64().unwrap() + summary["n_unparseable"].as_u64().unwrap(),
        3,
        "{summary}"
    );
    assert_eq!(summary["n_uncounted"], 0);
}
