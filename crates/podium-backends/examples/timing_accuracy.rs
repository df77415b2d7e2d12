//! The tight timing figures of docs/BENCHMARKS.md ("Remote client timing"):
//! per request, Podium's TTFT and TPOT minus the injected delays and minus the
//! fake server's own write stamps (it stamps its writes and reads the kernel's
//! arrival time of each request), at concurrency 1 and 64, through both HTTP
//! clients. A report, not a check: timing bounds in tests would be flaky.
//!
//! `cargo run --release -p podium-backends --example timing_accuracy`

#[path = "../tests/remote/fake_server.rs"]
#[allow(dead_code)]
mod fake_server;

use std::time::Duration;

use fake_server::{FakeServer, Reply, completion_chunks};
use podium_backends::OpenAiBackend;
use podium_core::{Backend, GenerateRequest};
use podium_stats::tpot_s;

fn backend(server: &FakeServer, options: &str) -> OpenAiBackend {
    let spec = format!("openai-compatible:{}/v1#fake-model{options}", server.url);
    OpenAiBackend::open(&spec, None).expect("the fake server's spec opens")
}

fn generate_request(context: &str) -> GenerateRequest {
    GenerateRequest {
        messages: None,
        context: context.to_string(),
        until: vec!["\n\nQ:".to_string()],
        max_tokens: 64,
        temperature: 0.0,
        top_p: 1.0,
        do_sample: false,
        seed: 1234,
    }
}

fn main() {
    const FIRST_MS: u64 = 50;
    const GAP_MS: u64 = 5;
    // 22 chunks, every 4th carrying 3 tokens: 32 tokens, as bench/remote/fake_server.py sends.
    let chunk_sizes: Vec<usize> = (0..22)
        .map(|k| if (k + 1) % 4 == 0 { 3 } else { 1 })
        .collect();
    let n_tokens: usize = chunk_sizes.iter().sum();
    let pieces: Vec<String> = chunk_sizes
        .iter()
        .enumerate()
        .map(|(k, &n)| (0..n).map(|j| format!(" w{k}_{j}")).collect())
        .collect();
    // Server and client on separate runtimes (and threads), so neither's timers wait
    // behind the other's work; the server writes from blocking threads on the OS timer.
    let runtime = |threads| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
            .unwrap()
    };
    let (server_rt, client_rt) = (runtime(1), runtime(2));
    let server = server_rt.block_on(FakeServer::start(move |_, _| {
        Reply::sse_precise(
            FIRST_MS,
            GAP_MS,
            completion_chunks(&pieces, Some((7, n_tokens as u64))),
        )
    }));
    let injected_tpot =
        (chunk_sizes.len() - 1) as f64 * GAP_MS as f64 / 1e3 / (n_tokens - 1) as f64;
    let pct = |values: &mut Vec<f64>, q: f64| {
        values.sort_by(f64::total_cmp);
        let pos = (values.len() - 1) as f64 * q;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        values[lo] + (values[hi] - values[lo]) * (pos - lo as f64)
    };
    println!(
        "| concurrency | client | requests | TTFT − injected p50 / p99 ms | = request path (t0 → request arrived, kernel stamp) | + server's first write late by | + response path (TTFT − server's first write stamp) | TPOT − injected p50 / p99 ms | TPOT − server stamps | tokens exact |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let levels = [(1usize, 40usize), (64, 512)];
    for ((concurrency, n), http_client) in levels
        .into_iter()
        .flat_map(|level| [(level, "builtin"), (level, "reqwest")])
    {
        let backend = backend(
            &server,
            &format!("?concurrency={concurrency}&http_client={http_client}"),
        );
        // Warm-up: one request per connection the level will hold open.
        let warm: Vec<_> = (0..concurrency)
            .map(|i| generate_request(&format!("warm{concurrency}{http_client}-{i}")))
            .collect();
        client_rt.block_on(backend.generate_until(&warm)).unwrap();
        let requests: Vec<_> = (0..n)
            .map(|i| generate_request(&format!("c{concurrency}{http_client}-Q{i}")))
            .collect();
        let results = client_rt
            .block_on(backend.generate_until(&requests))
            .unwrap();
        let (mut ttft_inj, mut ttft_srv, mut tpot_inj, mut tpot_srv) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut request_path, mut server_late) = (Vec::new(), Vec::new());
        let mut exact = true;
        for (request, result) in requests.iter().zip(results) {
            let result = result.unwrap();
            let timing = result.timing.unwrap();
            let (ttft, started) = (timing.ttft_s.unwrap(), timing.started.unwrap());
            let (seen, stamps) = server.served(&request.context);
            let (first, last) = (stamps[0], stamps[stamps.len() - 1]);
            let n_out = result.n_output_tokens.unwrap();
            exact &= n_out == n_tokens;
            ttft_inj.push((ttft - FIRST_MS as f64 / 1e3) * 1e3);
            ttft_srv.push((ttft - first.duration_since(started).as_secs_f64()) * 1e3);
            let arrived_at = seen.arrived_at;
            request_path.push(arrived_at.duration_since(started).as_secs_f64() * 1e3);
            let due = arrived_at + Duration::from_millis(FIRST_MS);
            server_late.push(first.duration_since(due).as_secs_f64() * 1e3);
            let tpot = tpot_s(timing.e2e_s, ttft, n_out).unwrap();
            tpot_inj.push((tpot - injected_tpot) * 1e3);
            let server_tpot = last.duration_since(first).as_secs_f64() / (n_out - 1) as f64;
            tpot_srv.push((tpot - server_tpot) * 1e3);
        }
        let cell =
            |values: &mut Vec<f64>| format!("{:+.3} / {:+.3}", pct(values, 0.5), pct(values, 0.99));
        println!(
            "| {concurrency} | {http_client} | {n} | {} | {} | {} | {} | {} | {} | {exact} |",
            cell(&mut ttft_inj),
            cell(&mut request_path),
            cell(&mut server_late),
            cell(&mut ttft_srv),
            cell(&mut tpot_inj),
            cell(&mut tpot_srv)
        );
    }
}
