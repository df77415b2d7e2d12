//! Load benchmark of the board server: serves a database on 127.0.0.1:0 in this
//! process (its own runtime and threads) and drives it over keep-alive HTTP/1.1:
//!
//! ```text
//! cargo run --release -p podium-web --example load -- \
//!     --db /dev/shm/seed.db [--catalog FILE] [--rate 1000] [--seconds 15] \
//!     [--warmup 3] [--server-threads 2] [--samples-requests 300] [--gzip 1]
//! ```
//!
//! `--gzip 1` asks for the board's JSON and page gzipped (`Accept-Encoding: gzip`); sizes are
//! then the compressed bytes, as a browser or `curl --compressed` receives them.
//!
//! 1. The first `/api/v1/board` (the board is built) and `/` (the page), timed,
//!    with their sizes.
//! 2. Open loop: `--rate` requests per second to `/api/v1/board` at fixed
//!    intervals, each on its own task (a new connection only when every pooled
//!    one is busy), `--warmup` seconds discarded, then `--seconds` measured.
//!    Latency is taken from the request's scheduled time to the last byte of
//!    the body, so a late client or a queue at the server counts (no
//!    coordinated omission).
//! 3. Closed loop, one at a time: `--samples-requests` requests to
//!    `/runs/{id}/samples` over the runs of the board's first models, and as
//!    many to the board page `/`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use podium_board::{BoardCatalog, BoardOptions};
use podium_store::Store;

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

struct Args {
    db: std::path::PathBuf,
    catalog: Option<std::path::PathBuf>,
    rate: f64,
    seconds: f64,
    warmup: f64,
    server_threads: usize,
    samples_requests: usize,
    path: String,
    gzip: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        db: Default::default(),
        catalog: None,
        rate: 1000.0,
        seconds: 15.0,
        warmup: 3.0,
        server_threads: 2,
        samples_requests: 300,
        path: "/api/v1/board".into(),
        gzip: false,
    };
    let mut db = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let number = || value.parse::<f64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--db" => db = Some(value.clone().into()),
            "--catalog" => args.catalog = Some(value.clone().into()),
            "--rate" => args.rate = number()?,
            "--seconds" => args.seconds = number()?,
            "--warmup" => args.warmup = number()?,
            "--server-threads" => args.server_threads = number()? as usize,
            "--samples-requests" => args.samples_requests = number()? as usize,
            "--path" => args.path = value.clone(),
            "--gzip" => args.gzip = number()? != 0.0,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    args.db = db.ok_or("--db PATH is required")?;
    if !args.db.exists() {
        return Err(format!("{} does not exist", args.db.display()));
    }
    Ok(args)
}

/// One GET: (status, body bytes); the body is read to its end and dropped.
async fn fetch(client: &HttpClient, uri: &str, gzip: bool) -> Result<(u16, usize), String> {
    let mut request = hyper::Request::get(uri);
    if gzip {
        request = request.header("accept-encoding", "gzip");
    }
    let request = request
        .body(Empty::new())
        .map_err(|e| format!("{uri}: {e}"))?;
    let response = client.request(request).await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let mut body = response.into_body();
    let mut bytes = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| e.to_string())?;
        if let Some(data) = frame.data_ref() {
            bytes += data.len();
        }
    }
    Ok((status, bytes))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summary(label: &str, mut ms: Vec<f64>) {
    ms.sort_by(f64::total_cmp);
    println!(
        "{label}: n {}, p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms.len(),
        percentile(&ms, 50.0),
        percentile(&ms, 90.0),
        percentile(&ms, 99.0),
        ms.last().copied().unwrap_or(f64::NAN),
    );
}

struct Outcome {
    /// Scheduled time → last body byte.
    latency_ms: f64,
    /// Sent → last body byte (what the server and the connection took).
    service_ms: f64,
    ok: bool,
    done: Instant,
}

/// Open loop at `rate` for `seconds`: every request is scheduled at a fixed
/// time and sent from its own task.
async fn open_loop(
    client: &HttpClient,
    uri: &str,
    rate: f64,
    seconds: f64,
    gzip: bool,
) -> Vec<Outcome> {
    let n = (rate * seconds).round() as u64;
    let start = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due).await;
        let client = client.clone();
        let uri = uri.to_string();
        tasks.spawn(async move {
            let sent = Instant::now();
            let result = fetch(&client, &uri, gzip).await;
            let done = Instant::now();
            Outcome {
                latency_ms: (done - due.into_std()).as_secs_f64() * 1e3,
                service_ms: (done - sent).as_secs_f64() * 1e3,
                ok: matches!(result, Ok((200, _))),
                done,
            }
        });
    }
    let mut outcomes = Vec::with_capacity(n as usize);
    while let Some(outcome) = tasks.join_next().await {
        if let Ok(outcome) = outcome {
            outcomes.push(outcome);
        }
    }
    outcomes
}

async fn closed_loop(
    client: &HttpClient,
    uris: &[String],
    n: usize,
    gzip: bool,
) -> (Vec<f64>, usize, usize) {
    let mut ms = Vec::with_capacity(n);
    let mut errors = 0;
    let mut bytes = 0;
    for i in 0..n {
        let uri = &uris[i % uris.len()];
        let started = Instant::now();
        match fetch(client, uri, gzip).await {
            Ok((200, size)) => bytes = bytes.max(size),
            _ => errors += 1,
        }
        ms.push(started.elapsed().as_secs_f64() * 1e3);
    }
    (ms, errors, bytes)
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let store = Store::open(&args.db)?;
    let catalog = match &args.catalog {
        Some(path) => BoardCatalog::with_user_file(path)?,
        None => BoardCatalog::builtin(),
    };
    let state = podium_web::AppState::new(store, catalog, BoardOptions::default());

    // The server: its own runtime and worker threads, as `podium serve` has.
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.server_threads.max(1))
        .enable_all()
        .build()?;
    let listener = server.block_on(podium_web::bind("127.0.0.1:0".parse()?))?;
    let addr = listener.local_addr()?;
    server.spawn(podium_web::serve_listener(
        listener,
        state,
        std::future::pending(),
    ));
    let base = format!("http://{addr}");
    println!(
        "server on {base}, {} worker threads; client on 1 thread; {} cores online",
        args.server_threads,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    client_rt.block_on(async {
        let client: HttpClient = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build_http();
        let board_uri = format!("{base}{}", args.path);

        let started = Instant::now();
        let (status, size) = fetch(&client, &board_uri, args.gzip).await?;
        println!(
            "first {}: {status}, {size} bytes in {:.3} s (builds the board)",
            args.path,
            started.elapsed().as_secs_f64()
        );
        let started = Instant::now();
        let (status, size) = fetch(&client, &format!("{base}/"), args.gzip).await?;
        println!(
            "first /: {status}, {size} bytes ({:.1} KB) in {:.3} s",
            size as f64 / 1000.0,
            started.elapsed().as_secs_f64()
        );

        // Run ids for the samples pages, from the board's first models.
        let body = client
            .get(format!("{base}/api/v1/board").parse()?)
            .await?
            .into_body()
            .collect()
            .await?
            .to_bytes();
        let board: serde_json::Value = serde_json::from_slice(&body)?;
        let run_ids: Vec<i64> = board["models"]
            .as_array()
            .into_iter()
            .flatten()
            .take(20)
            .flat_map(|m| m["cells"].as_array().cloned().unwrap_or_default())
            .filter_map(|c| c["run_id"].as_i64())
            .collect();
        drop(board);

        if args.rate > 0.0 && args.seconds > 0.0 {
            let warm = open_loop(&client, &board_uri, args.rate, args.warmup, args.gzip).await;
            println!(
                "warm-up: {} requests, {} errors",
                warm.len(),
                warm.iter().filter(|o| !o.ok).count()
            );
            let began = Instant::now();
            let outcomes =
                open_loop(&client, &board_uri, args.rate, args.seconds, args.gzip).await;
            let last = outcomes.iter().map(|o| o.done).max().unwrap_or(began);
            let errors = outcomes.iter().filter(|o| !o.ok).count();
            println!(
                "open loop {} at {} req/s for {} s: {} requests, {} errors, achieved {:.0} req/s",
                args.path,
                args.rate,
                args.seconds,
                outcomes.len(),
                errors,
                (outcomes.len() - errors) as f64 / (last - began).as_secs_f64()
            );
            summary(
                "  latency (scheduled -> last byte)",
                outcomes.iter().map(|o| o.latency_ms).collect(),
            );
            summary(
                "  service (sent -> last byte)",
                outcomes.iter().map(|o| o.service_ms).collect(),
            );
        }

        if args.samples_requests > 0 && !run_ids.is_empty() {
            let uris: Vec<String> = run_ids
                .iter()
                .map(|id| format!("{base}/runs/{id}/samples"))
                .collect();
            let (ms, errors, bytes) = closed_loop(&client, &uris, args.samples_requests, false).await;
            println!(
                "/runs/{{id}}/samples over {} runs, one at a time: {errors} errors, largest {:.1} KB",
                uris.len(),
                bytes as f64 / 1000.0
            );
            summary("  latency", ms);
            let (ms, errors, bytes) =
                closed_loop(&client, &[format!("{base}/")], args.samples_requests, args.gzip).await;
            println!(
                "/ (board page), one at a time: {errors} errors, {:.1} KB",
                bytes as f64 / 1000.0
            );
            summary("  latency", ms);
        }
        Ok::<(), Box<dyn std::error::Error>>(())
    })?;
    server.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("load: {error}");
            ExitCode::FAILURE
        }
    }
}
