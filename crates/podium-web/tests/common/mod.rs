//! A seeded store for the router tests: three models (two open, one closed),
//! two tasks, hostile and huge outputs, a failed sample and a bench result.

#![allow(dead_code, unreachable_pub)]

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use podium_board::{BoardCatalog, BoardOptions};
use podium_store::{ModelRecord, RunKey, SampleRecord, SampleStatus, Store};
use podium_web::AppState;
use serde_json::json;
use tower::ServiceExt;

pub const HOSTILE_SCRIPT: &str = "<script>alert(1)</script>";
pub const HOSTILE_ATTR: &str = "\"><img src=x onerror=alert(1)>";
pub const HUGE_CHARS: usize = 1_000_000;

pub const CATALOG: &str = r#"
[[model]]
spec = "mock:a"
display_name = "Alpha Open"
provider = "Acme"
access = "open"
licence = "apache-2.0"
parameters = 7000000000
price = { input_per_mtok = 0.1, output_per_mtok = 0.2 }

[[model]]
spec = "mock:b"
display_name = "Beta Closed"
provider = "Bcorp"
access = "closed"
licence = "proprietary"
price = { input_per_mtok = 1.0, output_per_mtok = 4.0 }

[[model]]
spec = "mock:c"
display_name = "Gamma <img src=x onerror=alert(2)>"
provider = "Acme"
access = "open"
licence = "mit"
parameters = 1000000000
"#;

/// Ids the tests need.
pub struct Seeded {
    pub models: Vec<i64>,
    /// (arc_easy run, gsm8k run) of each model; mock:c has no gsm8k run.
    pub arc_runs: Vec<i64>,
    pub gsm_runs: Vec<i64>,
}

fn result_json(
    task: &str,
    hash: &str,
    key: &str,
    value: f64,
    interval: (f64, f64),
    baseline: f64,
    tag: &str,
) -> String {
    json!({
        "name": task,
        "alias": null,
        "metrics": [{
            "key": key,
            "value": value,
            "stderr": (interval.1 - interval.0) / 3.92,
            "higher_is_better": true,
            "n": 100,
            "interval": [interval.0, interval.1],
            "unit_range": true,
            "proportion": true
        }],
        "n_samples": 100,
        "n_original": 1000,
        "n_shot": 0,
        "random_baseline": baseline,
        "version": 1,
        "config": {"tag": [tag]},
        "content_hash": hash
    })
    .to_string()
}

fn arc_sample(doc_id: u64, correct: bool) -> SampleRecord {
    SampleRecord {
        doc_id,
        prompt_hash: format!("arc{doc_id}"),
        requests_json: json!({
            "prompt": format!("Question {doc_id}: which is a mammal?"),
            "request": {"type": "loglikelihood", "context": "Question", "continuations": [" cat", " fish"]},
            "target": {"type": "choices", "choices": ["cat", "fish"], "golds": [0]}
        })
        .to_string(),
        responses_json: json!({
            "type": "loglikelihood",
            "results": [
                {"logprob": if correct { -1.0 } else { -3.0 }, "is_greedy": correct, "n_tokens": 1},
                {"logprob": -2.0, "is_greedy": !correct, "n_tokens": 1}
            ]
        })
        .to_string(),
        metrics_json: json!({"metrics": {"acc,none": if correct { 1.0 } else { 0.0 }, "acc_norm,none": if correct { 1.0 } else { 0.0 }}}).to_string(),
        n_input_tokens: None,
        n_output_tokens: None,
        timing_json: "null".into(),
        status: SampleStatus::Ok,
        error: None,
    }
}

fn gsm_sample(doc_id: u64, output: &str, correct: bool) -> SampleRecord {
    SampleRecord {
        doc_id,
        prompt_hash: format!("gsm{doc_id}"),
        requests_json: json!({
            "prompt": format!("Q: what is 40 + {doc_id}?\nA:"),
            "request": {"type": "generate", "context": "Q", "until": ["\n"]},
            "target": {"type": "text", "text": "42"}
        })
        .to_string(),
        responses_json: json!({
            "type": "generate",
            "results": [{"text": output, "n_input_tokens": 12, "n_output_tokens": 5, "timing": null}]
        })
        .to_string(),
        metrics_json: json!({
            "metrics": {"exact_match,strict-match": if correct { 1.0 } else { 0.0 }},
            "filtered": {"strict-match": [if correct { "42" } else { "[invalid]" }]}
        })
        .to_string(),
        n_input_tokens: Some(12),
        n_output_tokens: Some(5),
        timing_json: "null".into(),
        status: SampleStatus::Ok,
        error: None,
    }
}

/// A value and its 95% interval.
type Score = (f64, (f64, f64));

pub fn seed(store: &mut Store) -> Seeded {
    let arc_task = store
        .upsert_task("arc_easy", "sha256:arc", r#"{"tag":["ai2_arc"]}"#)
        .unwrap();
    let gsm_task = store
        .upsert_task("gsm8k", "sha256:gsm", r#"{"tag":["math"]}"#)
        .unwrap();
    let mut seeded = Seeded {
        models: Vec::new(),
        arc_runs: Vec::new(),
        gsm_runs: Vec::new(),
    };
    // (spec, arc value and interval, gsm value and interval)
    let plan: [(&str, Score, Option<Score>); 3] = [
        ("mock:a", (0.80, (0.72, 0.86)), Some((0.50, (0.40, 0.60)))),
        ("mock:b", (0.90, (0.83, 0.94)), Some((0.70, (0.60, 0.78)))),
        ("mock:c", (0.40, (0.31, 0.50)), None),
    ];
    for (index, (spec, arc, gsm)) in plan.iter().enumerate() {
        let model_id = store
            .upsert_model(&ModelRecord {
                spec: spec.to_string(),
                fingerprint: format!("fp-{spec}"),
                chat_template_hash: None,
            })
            .unwrap();
        seeded.models.push(model_id);
        let key = |task_id| RunKey {
            model_id,
            task_id,
            n_shots: 0,
            chat_template: false,
            seed: 1,
            limit: None,
        };
        let manifest = json!({"podium_version": "0.1.0", "task": "arc_easy", "api_key": "sk-SECRET-1234", "seed": 1}).to_string();
        let (run, _) = store
            .find_or_create_run(&key(arc_task), &manifest, "0.1.0")
            .unwrap();
        for doc in 0..4u64 {
            store
                .put_sample(
                    run,
                    &arc_sample(doc, (doc + index as u64).is_multiple_of(2)),
                )
                .unwrap();
        }
        store
            .finish_run(
                run,
                &result_json(
                    "arc_easy",
                    "sha256:arc",
                    "acc_norm,none",
                    arc.0,
                    arc.1,
                    0.25,
                    "ai2_arc",
                ),
            )
            .unwrap();
        seeded.arc_runs.push(run);
        if let Some(gsm) = gsm {
            let (run, _) = store
                .find_or_create_run(&key(gsm_task), "{}", "0.1.0")
                .unwrap();
            let hostile = format!("{HOSTILE_SCRIPT} {HOSTILE_ATTR} \u{202E}evil\u{200B}");
            let huge = "y".repeat(HUGE_CHARS);
            let outputs: [(&str, bool); 4] = if index == 0 {
                [
                    ("The answer is 42", true),
                    ("41", false),
                    ("42", true),
                    ("no idea", false),
                ]
            } else {
                [
                    ("42", true),
                    (hostile.as_str(), true),
                    (huge.as_str(), false),
                    ("42", true),
                ]
            };
            for (doc, (output, correct)) in outputs.iter().enumerate() {
                store
                    .put_sample(run, &gsm_sample(doc as u64, output, *correct))
                    .unwrap();
            }
            let mut failed = gsm_sample(4, "", false);
            failed.status = SampleStatus::Failed;
            failed.error = Some(format!("backend error: {HOSTILE_SCRIPT}"));
            failed.metrics_json = "null".into();
            store.put_sample(run, &failed).unwrap();
            store
                .finish_run(
                    run,
                    &result_json(
                        "gsm8k",
                        "sha256:gsm",
                        "exact_match,strict-match",
                        gsm.0,
                        gsm.1,
                        0.0,
                        "math",
                    ),
                )
                .unwrap();
            seeded.gsm_runs.push(run);
        }
    }
    let percentiles = |base: f64| json!({"p5": base * 0.5, "p25": base * 0.8, "p50": base, "p75": base * 1.2, "p90": base * 1.4, "p95": base * 1.5, "p99": base * 2.0});
    store
        .put_bench_result(
            "mock:a",
            "concurrency 1",
            "{}",
            &json!({"output_speed": percentiles(50.0), "ttft_s": percentiles(0.2), "tpot_s": percentiles(0.02)}).to_string(),
        )
        .unwrap();
    store
        .put_bench_result(
            "mock:b",
            "concurrency 1",
            "{}",
            &json!({"output_speed": percentiles(120.0), "ttft_s": percentiles(0.5), "tpot_s": percentiles(0.008)}).to_string(),
        )
        .unwrap();
    seeded
}

pub fn state() -> (AppState, Seeded) {
    let mut store = Store::open_in_memory().unwrap();
    let seeded = seed(&mut store);
    let catalog = BoardCatalog::with_user_toml(CATALOG).unwrap();
    (
        AppState::new(store, catalog, BoardOptions::default()),
        seeded,
    )
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|err| panic!("{err}: {}", self.body))
    }
}

pub async fn request(state: &AppState, method: &str, uri: &str) -> Reply {
    let response = podium_web::app(state.clone())
        .oneshot(
            Request::builder()
                .method(method)
                .uri(uri)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

pub async fn get(state: &AppState, uri: &str) -> Reply {
    request(state, "GET", uri).await
}
