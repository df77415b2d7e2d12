//! Time per `put_sample` (one sample, one transaction) on SQLite and on
//! PostgreSQL, side by side in one invocation, each engine in turn, repeated:
//!
//! `cargo run --release -p podium-store --example sample_write_overhead -- [SAMPLES] [REPEATS]`
//!
//! SQLite: a WAL file with `synchronous=NORMAL` (the store's setting: no sync per
//! commit). PostgreSQL: a throwaway local cluster (podium-testkit) over TCP on
//! 127.0.0.1, once with its durable defaults (`synchronous_commit=on`: each commit
//! waits for its WAL flush) and once with `synchronous_commit=off` (a crash may lose
//! the last commits but never corrupts: SQLite NORMAL's guarantee).

use std::time::Instant;

use podium_store::{ModelRecord, RunKey, SampleRecord, SampleStatus, Store};
use podium_testkit::postgres::Cluster;

fn sample(doc_id: u64) -> SampleRecord {
    SampleRecord {
        doc_id,
        prompt_hash: format!("{doc_id:064x}"),
        requests_json: format!(
            r#"[{{"kind":"generate_until","context":"{}","until":["\n\n"]}}]"#,
            "Question: what is the capital of France? Answer:".repeat(12)
        ),
        responses_json: r#"[{"text":" Paris.","logprob":null}]"#.into(),
        metrics_json: r#"{"metrics":{"exact_match,none":1.0}}"#.into(),
        n_input_tokens: Some(180),
        n_output_tokens: Some(3),
        timing_json: r#"{"t0":0.0,"ttft_s":0.05,"e2e_s":0.08}"#.into(),
        status: SampleStatus::Ok,
        error: None,
    }
}

/// Microseconds per sample written to a fresh run of `store`.
fn micros_per_sample(mut store: Store, n_samples: u64) -> f64 {
    let model_id = store
        .upsert_model(&ModelRecord {
            spec: "mock:bench".into(),
            fingerprint: "f".into(),
            chat_template_hash: None,
        })
        .unwrap();
    let task_id = store.upsert_task("bench", "h", "{}").unwrap();
    let key = RunKey {
        model_id,
        task_id,
        n_shots: 0,
        chat_template: false,
        seed: 1,
        limit: None,
    };
    let (run_id, _) = store.find_or_create_run(&key, "{}", "bench").unwrap();
    let samples: Vec<SampleRecord> = (0..n_samples).map(sample).collect();
    let start = Instant::now();
    for s in &samples {
        store.put_sample(run_id, s).unwrap();
    }
    start.elapsed().as_secs_f64() * 1e6 / n_samples as f64
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n_samples: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let repeats: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let durable = Cluster::start_with(&[]).unwrap();
    let async_commit = Cluster::start_with(&["synchronous_commit=off"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    println!("{n_samples} samples per measurement, {repeats} rounds; µs per sample");
    println!("round  sqlite  pg(sync_commit=on)  pg(sync_commit=off)  ratio_on  ratio_off");
    for round in 0..repeats {
        let path = dir.path().join(format!("bench-{round}.db"));
        let sqlite = micros_per_sample(Store::open(&path).unwrap(), n_samples);
        let on = micros_per_sample(
            Store::open_url(&durable.create_database().unwrap()).unwrap(),
            n_samples,
        );
        let off = micros_per_sample(
            Store::open_url(&async_commit.create_database().unwrap()).unwrap(),
            n_samples,
        );
        println!(
            "{round:>5}  {sqlite:>6.0}  {on:>18.0}  {off:>19.0}  {:>8.2}  {:>9.2}",
            on / sqlite,
            off / sqlite
        );
    }
}
