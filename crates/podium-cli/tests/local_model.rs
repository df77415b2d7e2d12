//! `podium eval` on the real SmolLM2 GGUF: a 20-doc HellaSwag smoke run through the
//! whole pipeline (task YAML, tokenizer, packed scoring, store, results export). Runs
//! when `PODIUM_MODEL_DIR` holds the test models (scripts/test sets it).

use std::process::Command;

#[test]
fn hellaswag_smoke_run_on_smollm2() {
    let Some(model) = podium_testkit::models::test_model(podium_testkit::models::SMOLLM2) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let eval = |options: &str, out_dir: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_podium"))
            .env_remove("PODIUM_DB")
            .env_remove("PODIUM_TASKS_DIR")
            .arg("eval")
            .arg("-m")
            .arg(format!("gguf:{}{options}", model.display()))
            .args(["-t", "hellaswag", "--limit", "20", "--db"])
            .arg(work.path().join("podium.db"))
            .arg("--output")
            .arg(work.path().join(out_dir))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        stderr
    };
    let stderr = eval("?threads=1", "out");
    assert!(!stderr.contains("resumed run"), "{stderr}");

    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(work.path().join("out/results.json")).unwrap(),
    )
    .unwrap();
    let scores = &results["results"]["hellaswag"];
    for metric in ["acc,none", "acc_norm,none"] {
        let value = scores[metric]
            .as_f64()
            .unwrap_or_else(|| panic!("{metric} in {scores}"));
        // 20 docs of 4 choices: a working model lands well inside (0, 1); SmolLM2-135M
        // scores ~40% acc_norm on HellaSwag.
        assert!((0.05..=0.95).contains(&value), "{metric} = {value}");
        assert!(scores[metric.replace(',', "_stderr,")].as_f64().unwrap() > 0.0);
    }
    let samples = std::fs::read_to_string(work.path().join("out/samples_hellaswag.jsonl")).unwrap();
    assert_eq!(samples.lines().count(), 20);
    for line in samples.lines() {
        let sample: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(sample["status"], "ok", "{sample}");
        let responses = sample["resps"]["results"].as_array().unwrap();
        assert_eq!(responses.len(), 4, "{sample}");
        // Log-probs of real endings are negative and finite; every ending has tokens.
        for response in responses {
            let logprob = response["logprob"].as_f64().unwrap();
            assert!(logprob < 0.0 && logprob > -500.0, "{sample}");
            assert!(response["n_tokens"].as_u64().unwrap() > 0, "{sample}");
        }
    }

    // Threads change no number: the same model without them resumes the stored run.
    let stderr = eval("", "out_again");
    assert!(
        stderr.contains("resumed run 1 (20 samples were already stored)"),
        "{stderr}"
    );
    // A cap on the context changes the scores: a run of its own, never the stored one's
    // samples (issue 9: `max_context=2` once "resumed" and reported the full run's score).
    let stderr = eval("?threads=1&max_context=8", "out_short");
    assert!(!stderr.contains("resumed run"), "{stderr}");
    let short: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(work.path().join("out_short/results.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        short["config"]["model"].as_str().unwrap(),
        format!("gguf:{}?max_context=8", model.display())
    );
    // Its own samples: 8 tokens of context cannot score as the whole context does.
    let first_logprobs = |dir: &str| -> Vec<f64> {
        let samples =
            std::fs::read_to_string(work.path().join(dir).join("samples_hellaswag.jsonl")).unwrap();
        let first: serde_json::Value =
            serde_json::from_str(samples.lines().next().unwrap()).unwrap();
        first["resps"]["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["logprob"].as_f64().unwrap())
            .collect()
    };
    assert_ne!(first_logprobs("out_short"), first_logprobs("out"));
}

/// A GGUF header whose `general.alignment` is 0, and nothing else.
fn zero_alignment_gguf() -> Vec<u8> {
    let mut bytes = b"GGUF".to_vec();
    bytes.extend(3u32.to_le_bytes());
    bytes.extend(0u64.to_le_bytes()); // tensors
    bytes.extend(1u64.to_le_bytes()); // metadata entries
    let key = "general.alignment";
    bytes.extend((key.len() as u64).to_le_bytes());
    bytes.extend(key.as_bytes());
    bytes.extend(4u32.to_le_bytes()); // u32
    bytes.extend(0u32.to_le_bytes());
    bytes
}

#[test]
fn a_hostile_model_file_is_exit_code_2_naming_file_and_key() {
    // Regression: `general.alignment = 0` divided by zero inside candle's GGUF reader
    // (a panic, exit code 101) in every command that opens a model.
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("hostile.gguf");
    std::fs::write(&model, zero_alignment_gguf()).unwrap();
    let runs: [&[&str]; 2] = [
        &["tokenize", "--text", "hi"],
        &["serve-model", "--addr", "127.0.0.1:0"],
    ];
    for args in runs {
        let mut command = Command::new(env!("CARGO_BIN_EXE_podium"));
        command.args(&args[..1]);
        if args[0] == "serve-model" {
            command.arg(format!("gguf:{}", model.display()));
        } else {
            command.arg(&model);
        }
        let out = command.args(&args[1..]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("hostile.gguf") && stderr.contains("`general.alignment` is 0"),
            "{args:?}: {stderr}"
        );
    }
}
