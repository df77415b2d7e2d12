//! `podium eval --queue` and `podium worker` processes on a real PostgreSQL
//! server: workers killed at seeded moments lose and double nothing and the
//! scores equal a single-process run's; a provider's `rpm` holds across all
//! workers together.

mod common;

use common::{podium, run_ok};

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::sleep;
use std::time::{Duration, Instant};

use podium_store::{JobState, Store};

fn worker(db: &str, name: &str, extra: &[&str]) -> Child {
    podium()
        .args([
            "worker",
            "--db",
            db,
            "--name",
            name,
            "--exit-when-idle",
            "--quiet",
        ])
        .args(["--lease-s", "2", "--poll-s", "0.05"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("a worker starts")
}

/// Waits for every child; kills them all and fails after `limit`.
fn wait_all(children: &mut [Child], limit: Duration) {
    let start = Instant::now();
    loop {
        let mut running = 0;
        for child in children.iter_mut() {
            match child.try_wait().unwrap() {
                Some(status) => assert!(status.success(), "a worker failed: {status}"),
                None => running += 1,
            }
        }
        if running == 0 {
            return;
        }
        if start.elapsed() > limit {
            for child in children.iter_mut() {
                let _ = child.kill();
            }
            panic!("workers still running after {limit:?}");
        }
        sleep(Duration::from_millis(50));
    }
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Each finished run's results (task → results JSON) in a store.
fn results(url: &str) -> BTreeMap<String, serde_json::Value> {
    let store = Store::open_url(url).unwrap();
    store
        .latest_results()
        .unwrap()
        .into_iter()
        .map(|r| (r.task_name, serde_json::from_str(&r.results_json).unwrap()))
        .collect()
}

const MODEL: &str = "mock:a?delay_ms=1";
const N_DOCS: usize = 5000;

/// The fault-injection test of issue 16: 4 workers on a 5,000-sample run, two
/// SIGKILLed at seeded moments (when a seeded number of samples is stored, so
/// they die holding a job), one of them restarted; over three seeds.
#[test]
fn killed_workers_lose_nothing_double_nothing_and_change_no_score() {
    if podium_testkit::postgres::database().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let reference = format!("sqlite:{}", dir.path().join("single.db").display());
    let limit = N_DOCS.to_string();
    let eval = [
        "eval",
        "-m",
        MODEL,
        "-t",
        "hellaswag",
        "--limit",
        &limit,
        "--quiet",
    ];
    run_ok(podium().args(eval).args(["--db", &reference]));
    let expected = results(&reference);
    assert_eq!(expected.len(), 1);

    for seed in [1u64, 2, 3] {
        let url = podium_testkit::postgres::database().unwrap();
        run_ok(
            podium()
                .args(eval)
                .args(["--db", &url, "--queue", "--job-docs", "100"]),
        );
        let store = Store::open_url(&url).unwrap();
        let run_id = store.list_runs().unwrap()[0].run_id;
        assert_eq!(store.jobs(&[JobState::Queued]).unwrap().len(), N_DOCS / 100);

        let mut workers: Vec<Child> = (0..4)
            .map(|i| worker(&url, &format!("w{i}"), &[]))
            .collect();
        let mut rng = seed;
        let first = (splitmix(&mut rng) % 4) as usize;
        let second = (first + 1 + (splitmix(&mut rng) % 3) as usize) % 4;
        let kill_at = [
            500 + (splitmix(&mut rng) % 1500) as usize,
            2500 + (splitmix(&mut rng) % 1500) as usize,
        ];
        let started = Instant::now();
        for (victim, at) in [first, second].into_iter().zip(kill_at) {
            while store.completed_doc_ids(run_id).unwrap().len() < at {
                assert!(started.elapsed() < Duration::from_secs(300), "no progress");
                sleep(Duration::from_millis(20));
            }
            assert!(
                workers[victim].try_wait().unwrap().is_none(),
                "the victim had exited"
            );
            workers[victim].kill().unwrap();
            workers[victim].wait().unwrap();
            if victim == first {
                workers.push(worker(&url, "w-restarted", &[]));
            }
        }
        let mut alive: Vec<Child> = workers
            .into_iter()
            .enumerate()
            .filter(|(i, _)| *i != first && *i != second)
            .map(|(_, c)| c)
            .collect();
        wait_all(&mut alive, Duration::from_secs(300));

        // Nothing lost, nothing doubled: one row per doc, each written once.
        let attempts = store.sample_attempts(run_id).unwrap();
        assert_eq!(attempts.len(), N_DOCS, "seed {seed}: samples lost");
        let doubled: Vec<_> = attempts.iter().filter(|(_, n)| *n != 1).collect();
        assert!(
            doubled.is_empty(),
            "seed {seed}: written twice: {doubled:?}"
        );
        let jobs = store.jobs(&[]).unwrap();
        assert!(
            jobs.iter().all(|j| j.state == JobState::Done),
            "seed {seed}: {jobs:?}"
        );
        assert!(
            jobs.iter().any(|j| j.claims >= 2),
            "seed {seed}: no job was taken over from a killed worker"
        );
        // The same scores as the single-process SQLite run.
        assert_eq!(results(&url), expected, "seed {seed}");
    }
}

/// What the fake server saw: each request's arrival, and the most requests
/// it had in flight at once.
#[derive(Default)]
struct Seen {
    arrivals: Vec<Instant>,
    in_flight: usize,
    most_in_flight: usize,
}

/// A fake OpenAI-compatible server that answers every completion after
/// `delay` with a one-token stream.
fn fake_server(delay: Duration) -> (String, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let arrivals = Arc::new(Mutex::new(Seen::default()));
    let seen = arrivals.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                loop {
                    let mut length = 0usize;
                    let mut line = String::new();
                    let mut first = true;
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if first {
                            let mut seen = seen.lock().unwrap();
                            seen.arrivals.push(Instant::now());
                            seen.in_flight += 1;
                            seen.most_in_flight = seen.most_in_flight.max(seen.in_flight);
                            first = false;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        let lower = line.to_ascii_lowercase();
                        if let Some(value) = lower.strip_prefix("content-length:") {
                            length = value.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let events = "data: {\"choices\":[{\"index\":0,\"text\":\" 42\",\"finish_reason\":\"stop\"}]}\n\n\
                                  data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":1}}\n\n\
                                  data: [DONE]\n\n";
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\n\r\n{events}",
                        events.len()
                    );
                    sleep(delay);
                    seen.lock().unwrap().in_flight -= 1;
                    if stream.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (format!("http://{address}/v1"), arrivals)
}

/// Queues `limit` zero-shot GSM8K docs of `model` in jobs of `job_docs`, and
/// runs them with three workers of two jobs each until none is left.
fn three_workers_run(url: &str, model: &str, limit: &str, job_docs: &str) {
    run_ok(podium().args([
        "eval",
        "-m",
        model,
        "-t",
        "gsm8k",
        "--shots",
        "0",
        "--limit",
        limit,
        "--db",
        url,
        "--queue",
        "--job-docs",
        job_docs,
        "--quiet",
    ]));
    let mut workers: Vec<Child> = (0..3)
        .map(|i| worker(url, &format!("w{i}"), &["--concurrency", "2"]))
        .collect();
    wait_all(&mut workers, Duration::from_secs(240));
}

/// Three workers against one endpoint with `rpm=600`: no 10-second window
/// sees more than 100 requests, though each worker alone could send far more.
#[test]
fn three_workers_share_one_rpm_limit() {
    let Some(url) = podium_testkit::postgres::database() else {
        return;
    };
    let (base, seen) = fake_server(Duration::ZERO);
    let model = format!("openai-compatible:{base}#fake?rpm=600&concurrency=4");
    three_workers_run(&url, &model, "200", "10");

    let mut times = seen.lock().unwrap().arrivals.clone();
    times.sort();
    assert_eq!(times.len(), 200, "one request per doc");
    let window = Duration::from_secs(10);
    let most = (0..times.len())
        .map(|i| {
            times[i..]
                .iter()
                .take_while(|t| **t - times[i] < window)
                .count()
        })
        .max()
        .unwrap();
    assert!(
        most <= 100,
        "{most} requests in one 10-second window (rpm=600 allows 100)"
    );
    // The limit was what paced the work: the requests took about 200 / 10 s.
    let span = *times.last().unwrap() - times[0];
    assert!(span >= Duration::from_secs(19), "{span:?}");
    let store = Store::open_url(&url).unwrap();
    assert!(
        store
            .jobs(&[])
            .unwrap()
            .iter()
            .all(|j| j.state == JobState::Done)
    );
}

/// Three workers, each running two jobs at once, against one endpoint with
/// `concurrency=2`: the server never has more than two requests in flight.
#[test]
fn three_workers_share_one_concurrency_cap() {
    let Some(url) = podium_testkit::postgres::database() else {
        return;
    };
    let (base, seen) = fake_server(Duration::from_millis(100));
    let model = format!("openai-compatible:{base}#fake?concurrency=2");
    three_workers_run(&url, &model, "40", "5");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.arrivals.len(), 40);
    assert_eq!(
        seen.most_in_flight, 2,
        "the cap is 2 for all workers together"
    );
}

/// `--queue` stores the model spec for the workers, so a spec with a URL
/// password is refused (exit 2) before anything is queued; `jobs cancel` wants
/// ids or `--all`; `jobs retry` and `cancel` say how many jobs they changed.
#[test]
fn queue_refuses_secrets_and_jobs_commands_say_what_they_did() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("q.db").display());
    let output = podium()
        .args([
            "eval",
            "-m",
            "openai-compatible:http://user:hunter2@127.0.0.1:9/v1#m",
            "-t",
            "arc_easy",
            "--limit",
            "4",
            "--queue",
            "--db",
            &db,
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("api_key_env"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");

    run_ok(podium().args([
        "eval",
        "-m",
        "mock:a",
        "-t",
        "arc_easy",
        "--limit",
        "4",
        "--queue",
        "--job-docs",
        "2",
        "--db",
        &db,
        "--quiet",
    ]));
    let listed: serde_json::Value = serde_json::from_str(&run_ok(
        podium().args(["jobs", "--format", "json", "--db", &db]),
    ))
    .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert_eq!(listed[0]["state"], "queued");
    assert_eq!(listed[0]["n_docs"], 2);
    let refused = podium()
        .args(["jobs", "cancel", "--db", &db])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let cancelled = run_ok(podium().args(["jobs", "cancel", "1", "--db", &db]));
    assert_eq!(cancelled.trim(), "1 jobs cancelled");
    let retried = run_ok(podium().args(["jobs", "retry", "1", "--db", &db]));
    assert_eq!(retried.trim(), "1 jobs requeued");
    // Queueing the same run again adds nothing.
    let again = run_ok(podium().args([
        "eval", "-m", "mock:a", "-t", "arc_easy", "--limit", "4", "--queue", "--db", &db,
    ]));
    assert!(again.contains("arc_easy"), "{again}");
    let listed: serde_json::Value = serde_json::from_str(&run_ok(
        podium().args(["jobs", "--format", "json", "--db", &db]),
    ))
    .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
}
