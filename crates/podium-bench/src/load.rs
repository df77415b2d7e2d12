//! The load generator. Closed loop: `concurrency` workers each send the next
//! request as soon as their previous one completes. Open loop: requests leave
//! at precomputed, seeded gamma-distributed times; a late send is recorded as
//! lateness and never compressed to "catch up".

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gamma};
use serde::{Deserialize, Serialize};

use podium_core::{Backend, GenerateRequest, TokenCountSource};

use crate::workload::Workload;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}")]
    Input(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Load {
    Closed {
        concurrency: usize,
    },
    /// Mean `rate` requests/s; gamma gaps with shape `burstiness` (1 = Poisson).
    Open {
        rate: f64,
        burstiness: f64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Stop {
    Requests(usize),
    /// Stop issuing new requests after this many seconds; in-flight ones finish.
    Duration(f64),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchConfig {
    pub load: Load,
    pub stop: Stop,
    /// Requests sent one at a time before the measured phase, then discarded.
    pub warmup: usize,
    pub seed: u64,
    pub temperature: f64,
}

/// One measured request. Times are seconds from the start of the measured phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub index: usize,
    pub scheduled_s: Option<f64>,
    pub sent_s: f64,
    pub done_s: f64,
    pub ok: bool,
    pub error: Option<String>,
    pub queue_s: Option<f64>,
    pub ttft_s: Option<f64>,
    pub ttfat_s: Option<f64>,
    pub e2e_s: Option<f64>,
    pub n_input_tokens: Option<usize>,
    pub n_output_tokens: Option<usize>,
    pub token_count_source: Option<TokenCountSource>,
    pub inter_chunk_s: Vec<f64>,
    /// `CLOCK_MONOTONIC` nanoseconds (Python's `time.monotonic_ns()`) when the request
    /// was written, and when its first token arrived: for joining with a server's own
    /// stamps on the same machine. None where the backend gives no start instant.
    #[serde(default)]
    pub t0_monotonic_ns: Option<u64>,
    #[serde(default)]
    pub first_token_monotonic_ns: Option<u64>,
}

/// `CLOCK_MONOTONIC` now, in nanoseconds.
#[cfg(unix)]
fn clock_monotonic_ns() -> Option<u64> {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    Some(u64::try_from(now.tv_sec).ok()? * 1_000_000_000 + u64::try_from(now.tv_nsec).ok()?)
}

/// Maps `Instant`s to `CLOCK_MONOTONIC` nanoseconds, the clock `Instant` reads on Linux.
#[derive(Debug, Clone, Copy)]
struct MonotonicAnchor {
    instant: Instant,
    ns: u64,
}

impl MonotonicAnchor {
    /// The instant bracketed by two clock readings, the tightest of a few tries, and
    /// mapped to their midpoint (within a microsecond or so).
    #[cfg(unix)]
    fn now() -> Option<MonotonicAnchor> {
        let mut best: Option<(u64, MonotonicAnchor)> = None;
        for _ in 0..5 {
            let before = clock_monotonic_ns()?;
            let instant = Instant::now();
            let after = clock_monotonic_ns()?;
            let width = after.saturating_sub(before);
            if best.is_none_or(|(w, _)| width < w) {
                let ns = before + width / 2;
                best = Some((width, MonotonicAnchor { instant, ns }));
            }
        }
        best.map(|(_, anchor)| anchor)
    }

    #[cfg(not(unix))]
    fn now() -> Option<MonotonicAnchor> {
        None
    }

    fn ns(&self, at: Instant) -> u64 {
        match at.checked_duration_since(self.instant) {
            Some(after) => self.ns + after.as_nanos() as u64,
            None => self
                .ns
                .saturating_sub((self.instant - at).as_nanos() as u64),
        }
    }
}

/// Send times of an open-loop run: cumulative gamma gaps with
/// `shape = burstiness`, `scale = 1 / (rate · burstiness)` (METRICS.md).
pub fn gamma_schedule(
    n: usize,
    rate: f64,
    burstiness: f64,
    seed: u64,
    max_s: Option<f64>,
) -> Result<Vec<f64>, BenchError> {
    if !(rate.is_finite() && rate > 0.0) {
        return Err(BenchError::Input(format!(
            "--rate must be positive, got {rate}"
        )));
    }
    if !(burstiness.is_finite() && burstiness > 0.0) {
        return Err(BenchError::Input(format!(
            "--burstiness must be positive, got {burstiness}"
        )));
    }
    let gamma = Gamma::new(burstiness, 1.0 / (rate * burstiness))
        .map_err(|err| BenchError::Input(format!("invalid arrival process: {err}")))?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut t = 0.0;
    let mut times = Vec::new();
    // The first request leaves at 0; each later one after a gamma gap.
    while times.len() < n {
        if max_s.is_some_and(|max| t >= max) {
            break;
        }
        times.push(t);
        t += gamma.sample(&mut rng);
    }
    Ok(times)
}

fn request(workload: &Workload, index: usize, config: &BenchConfig) -> GenerateRequest {
    GenerateRequest {
        messages: None,
        context: workload.prompt(index),
        until: Vec::new(),
        max_tokens: workload.output_tokens,
        temperature: config.temperature,
        top_p: 1.0,
        do_sample: config.temperature > 0.0,
        seed: config.seed.wrapping_add(index as u64),
    }
}

async fn send(
    backend: &dyn Backend,
    request: GenerateRequest,
    index: usize,
    start: Instant,
    scheduled_s: Option<f64>,
    anchor: Option<MonotonicAnchor>,
) -> RequestRecord {
    let sent = Instant::now();
    let result = backend.generate_until(std::slice::from_ref(&request)).await;
    let done = Instant::now();
    let mut record = RequestRecord {
        index,
        scheduled_s,
        sent_s: sent.duration_since(start).as_secs_f64(),
        done_s: done.duration_since(start).as_secs_f64(),
        ok: false,
        error: None,
        queue_s: None,
        ttft_s: None,
        ttfat_s: None,
        e2e_s: None,
        n_input_tokens: None,
        n_output_tokens: None,
        token_count_source: None,
        inter_chunk_s: Vec::new(),
        t0_monotonic_ns: None,
        first_token_monotonic_ns: None,
    };
    match result.map(|mut v| v.pop()) {
        Ok(Some(Ok(generated))) => {
            record.ok = true;
            record.n_input_tokens = generated.n_input_tokens;
            record.n_output_tokens = generated.n_output_tokens;
            record.token_count_source = Some(generated.token_count_source);
            match generated.timing {
                Some(timing) => {
                    record.queue_s = Some(timing.queue_s);
                    record.ttft_s = timing.ttft_s;
                    record.ttfat_s = timing.ttfat_s;
                    record.e2e_s = Some(timing.e2e_s);
                    record.inter_chunk_s = timing.inter_chunk_s;
                    if let (Some(anchor), Some(started)) = (anchor, timing.started) {
                        let t0 = anchor.ns(started);
                        record.t0_monotonic_ns = Some(t0);
                        record.first_token_monotonic_ns =
                            timing.ttft_s.map(|s| t0 + (s * 1e9).round() as u64);
                    }
                }
                // A backend without streamed timing: end-to-end from our clock.
                None => record.e2e_s = Some(done.duration_since(sent).as_secs_f64()),
            }
        }
        Ok(Some(Err(err))) => record.error = Some(err.to_string()),
        Ok(None) => record.error = Some("the backend returned no result".into()),
        Err(err) => record.error = Some(err.to_string()),
    }
    record
}

/// Running totals of a measured phase, for a live progress line.
#[derive(Debug, Default)]
pub struct LiveCounts {
    ok: AtomicUsize,
    failed: AtomicUsize,
    output_tokens: AtomicUsize,
}

impl LiveCounts {
    fn add(&self, record: &RequestRecord) {
        if record.ok {
            self.ok.fetch_add(1, Ordering::Relaxed);
            let tokens = record.n_output_tokens.unwrap_or(0);
            self.output_tokens.fetch_add(tokens, Ordering::Relaxed);
        } else {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Requests finished so far: (succeeded, failed).
    pub fn finished(&self) -> (usize, usize) {
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }

    /// Output tokens of the succeeded requests so far.
    pub fn output_tokens(&self) -> usize {
        self.output_tokens.load(Ordering::Relaxed)
    }
}

/// Run the warm-up, then the measured phase; returns measured requests only.
pub async fn run(
    backend: Arc<dyn Backend>,
    workload: &Workload,
    config: &BenchConfig,
) -> Result<Vec<RequestRecord>, BenchError> {
    run_counted(backend, workload, config, Arc::default()).await
}

/// [`run`], keeping `counts` up to date as measured requests finish.
pub async fn run_counted(
    backend: Arc<dyn Backend>,
    workload: &Workload,
    config: &BenchConfig,
    counts: Arc<LiveCounts>,
) -> Result<Vec<RequestRecord>, BenchError> {
    // Warm-up: as many requests at once as the level will have in flight (at
    // least `warmup`), so every pooled connection the level uses is open
    // before measuring and no connection set-up lands in a measured TTFT.
    let warm_start = Instant::now();
    let in_flight = match config.load {
        Load::Closed { concurrency } => concurrency,
        Load::Open { .. } => 1,
    };
    if config.warmup > 0 {
        let n = config.warmup.max(in_flight);
        let mut warmers = Vec::with_capacity(n);
        for i in 0..n {
            // Warm-up prompts come after every measured index so none repeats.
            let index = usize::MAX / 2 + i;
            let backend = backend.clone();
            let request = request(workload, index, config);
            warmers.push(tokio::spawn(async move {
                send(backend.as_ref(), request, index, warm_start, None, None).await
            }));
        }
        for warmer in warmers {
            let _ = warmer.await;
        }
    }
    let start = Instant::now();
    let anchor = MonotonicAnchor::now();
    let mut records = match config.load {
        Load::Closed { concurrency } => {
            if concurrency == 0 {
                return Err(BenchError::Input("--concurrency must be at least 1".into()));
            }
            let next = Arc::new(AtomicUsize::new(0));
            let mut workers = Vec::new();
            for _ in 0..concurrency {
                let backend = backend.clone();
                let next = next.clone();
                let workload = workload.clone();
                let config = config.clone();
                let counts = counts.clone();
                workers.push(tokio::spawn(async move {
                    let mut mine = Vec::new();
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let more = match config.stop {
                            Stop::Requests(n) => index < n,
                            Stop::Duration(d) => start.elapsed().as_secs_f64() < d,
                        };
                        if !more {
                            break;
                        }
                        let record = send(
                            backend.as_ref(),
                            request(&workload, index, &config),
                            index,
                            start,
                            None,
                            anchor,
                        )
                        .await;
                        counts.add(&record);
                        mine.push(record);
                    }
                    mine
                }));
            }
            let mut all = Vec::new();
            for worker in workers {
                all.extend(worker.await.unwrap_or_default());
            }
            all
        }
        Load::Open { rate, burstiness } => {
            let (n, max_s) = match config.stop {
                Stop::Requests(n) => (n, None),
                Stop::Duration(d) => (usize::MAX, Some(d)),
            };
            let schedule = gamma_schedule(n, rate, burstiness, config.seed, max_s)?;
            let mut tasks = Vec::with_capacity(schedule.len());
            for (index, at) in schedule.into_iter().enumerate() {
                tokio::time::sleep_until((start + Duration::from_secs_f64(at)).into()).await;
                let backend = backend.clone();
                let request = request(workload, index, config);
                let counts = counts.clone();
                tasks.push(tokio::spawn(async move {
                    let record =
                        send(backend.as_ref(), request, index, start, Some(at), anchor).await;
                    counts.add(&record);
                    record
                }));
            }
            let mut all = Vec::new();
            for task in tasks {
                if let Ok(record) = task.await {
                    all.push(record);
                }
            }
            all
        }
    };
    records.sort_by_key(|r| r.index);
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gamma_schedule_has_the_asked_rate_and_is_seeded() {
        let times = gamma_schedule(20_000, 50.0, 1.0, 3, None).unwrap();
        let mean_gap = times.last().unwrap() / (times.len() - 1) as f64;
        assert!((mean_gap - 0.02).abs() < 0.001, "{mean_gap}");
        assert_eq!(times, gamma_schedule(20_000, 50.0, 1.0, 3, None).unwrap());
        // Burstiness < 1 spreads gaps more: larger coefficient of variation.
        let cv = |times: &[f64]| {
            let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
            podium_stats::sample_std(&gaps).unwrap() / podium_stats::mean(&gaps).unwrap()
        };
        let bursty = gamma_schedule(20_000, 50.0, 0.25, 3, None).unwrap();
        assert!((cv(&times) - 1.0).abs() < 0.05, "Poisson gaps have CV 1");
        assert!(
            (cv(&bursty) - 2.0).abs() < 0.15,
            "shape 0.25 gives CV 1/sqrt(0.25) = 2"
        );
        let limited = gamma_schedule(usize::MAX, 10.0, 1.0, 3, Some(2.0)).unwrap();
        assert!(limited.iter().all(|t| *t < 2.0));
        assert!(gamma_schedule(5, 0.0, 1.0, 3, None).is_err());
    }
}

#[cfg(all(test, unix))]
mod monotonic_tests {
    use super::*;
    use std::sync::Mutex;

    use async_trait::async_trait;
    use podium_core::{
        BackendError, GenerateResult, LoglikelihoodRequest, LoglikelihoodResult, ModelIdentity,
        RequestTiming, RollingRequest, RollingResult,
    };

    /// Answers at once, saying it started each request at an instant whose
    /// CLOCK_MONOTONIC reading it keeps.
    #[derive(Default)]
    struct Stamping {
        stamps: Mutex<Vec<u64>>,
    }

    #[async_trait]
    impl Backend for Stamping {
        fn identity(&self) -> ModelIdentity {
            ModelIdentity {
                spec: "stamping".into(),
                fingerprint: "stamping".into(),
                chat_template_hash: None,
            }
        }

        async fn loglikelihood(
            &self,
            _: &[LoglikelihoodRequest],
        ) -> Result<Vec<Result<Vec<LoglikelihoodResult>, BackendError>>, BackendError> {
            Err(BackendError::Unsupported("scoring".into()))
        }

        async fn loglikelihood_rolling(
            &self,
            _: &[RollingRequest],
        ) -> Result<Vec<Result<RollingResult, BackendError>>, BackendError> {
            Err(BackendError::Unsupported("scoring".into()))
        }

        async fn generate_until(
            &self,
            requests: &[GenerateRequest],
        ) -> Result<Vec<Result<GenerateResult, BackendError>>, BackendError> {
            let started = Instant::now();
            self.stamps
                .lock()
                .unwrap()
                .push(clock_monotonic_ns().unwrap());
            Ok(requests
                .iter()
                .map(|_| {
                    Ok(GenerateResult {
                        text: "x".into(),
                        reasoning: None,
                        n_input_tokens: Some(1),
                        n_output_tokens: Some(1),
                        token_count_source: TokenCountSource::Server,
                        timing: Some(RequestTiming {
                            ttft_s: Some(0.25),
                            e2e_s: 0.25,
                            started: Some(started),
                            ..RequestTiming::default()
                        }),
                    })
                })
                .collect())
        }
    }

    #[tokio::test]
    async fn records_carry_clock_monotonic_stamps_and_counts_are_live() {
        let backend = Arc::new(Stamping::default());
        let workload = Workload {
            source: crate::PromptSource::Synthetic {
                input_tokens: 8,
                seed: 1,
            },
            output_tokens: 1,
        };
        let config = BenchConfig {
            load: Load::Closed { concurrency: 1 },
            stop: Stop::Requests(5),
            warmup: 0,
            seed: 1,
            temperature: 0.0,
        };
        let counts = Arc::new(LiveCounts::default());
        let records = run_counted(backend.clone(), &workload, &config, counts.clone())
            .await
            .unwrap();
        // The live counts saw every measured request (and its one output token).
        assert_eq!(counts.finished(), (5, 0));
        assert_eq!(counts.output_tokens(), 5);
        let stamps = backend.stamps.lock().unwrap().clone();
        assert_eq!(records.len(), stamps.len());
        for (record, stamp) in records.iter().zip(&stamps) {
            let t0 = record.t0_monotonic_ns.unwrap();
            // The backend read the clock right after taking its instant.
            assert!(t0.abs_diff(*stamp) < 1_000_000, "{t0} vs {stamp}");
            assert_eq!(record.first_token_monotonic_ns, Some(t0 + 250_000_000));
        }
    }
}
