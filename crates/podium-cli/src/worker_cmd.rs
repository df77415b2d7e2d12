//! Work spread over machines: `podium eval --queue` records runs and splits
//! them into jobs, `podium worker` claims and runs jobs, `podium jobs` lists,
//! retries and cancels them. The jobs live in the store (PostgreSQL for a
//! fleet; an SQLite file serves workers on one machine).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use podium_core::Backend;
use podium_eval::{EvalOptions, Progress};
use podium_store::{Job, JobState, Lease, Location, Store, StoreError};
use podium_tasks::Task;
use podium_tasks::from_data::DataTaskOptions;

use crate::UserError;
use crate::args::{EvalArgs, Format};
use crate::board::Table;
use crate::commands::{load_tasks, open_judges, open_store};

/// How a worker rebuilds a job's work: the `podium eval` settings that made
/// its run, kept in the job's row. Paths are absolute (a worker's working
/// folder differs); the model spec holds no secret (workers read keys from
/// their own environment).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct JobSpec {
    model: String,
    /// Every `-t` value of the eval command; the job's task is one of the tasks they select.
    tasks: Vec<String>,
    tasks_dirs: Vec<PathBuf>,
    input_col: Option<String>,
    target_col: Option<String>,
    choices_col: Option<String>,
    metrics: Vec<String>,
    limit: Option<u64>,
    shots: Option<usize>,
    seed: u64,
    apply_chat_template: bool,
    batch_size: u64,
    bootstrap_iters: usize,
    judge: Option<String>,
}

impl JobSpec {
    fn data_options(&self) -> DataTaskOptions {
        DataTaskOptions {
            name: None,
            input_col: self.input_col.clone(),
            target_col: self.target_col.clone(),
            choices_col: self.choices_col.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

/// An existing path made absolute; anything else (a task name) as it is.
fn absolute(item: &str) -> String {
    let path = Path::new(item.trim());
    match path.canonicalize() {
        Ok(path) if path.exists() => path.display().to_string(),
        _ => item.to_string(),
    }
}

/// `podium eval --queue`: records the runs and queues their documents as jobs.
pub(crate) fn queue(
    db: &Location,
    dirs: &[PathBuf],
    args: &EvalArgs,
    tasks: &[Task],
) -> anyhow::Result<ExitCode> {
    let redacted = podium_backends::redact_spec(&args.model);
    if redacted != args.model {
        return Err(UserError(format!(
            "with --queue the model spec is stored for the workers, so it cannot hold a secret (`{redacted}`): drop user:password@ from the URL and give the key with api_key_env=NAME, which each worker reads from its own environment"
        ))
        .into());
    }
    let mut store = open_store(db)?;
    let cache: Arc<dyn podium_core::ResponseCache> =
        Arc::new(podium_eval::StoreCache::new(open_store(db)?));
    let backend = podium_backends::open_with_cache(&args.model, Some(cache.clone()))?;
    let judges = open_judges(tasks, args.judge.as_deref(), &cache)?;
    let options = crate::commands::eval_options(args, judges);
    let spec = JobSpec {
        model: args.model.clone(),
        tasks: args.tasks.iter().map(|t| absolute(t)).collect(),
        tasks_dirs: dirs
            .iter()
            .skip(1)
            .map(|d| PathBuf::from(absolute(&d.display().to_string())))
            .collect(),
        input_col: args.input_col.clone(),
        target_col: args.target_col.clone(),
        choices_col: args.choices_col.clone(),
        metrics: args.metric.clone(),
        limit: args.limit,
        shots: args.shots,
        seed: args.seed,
        apply_chat_template: args.apply_chat_template,
        batch_size: args.batch_size,
        bootstrap_iters: args.bootstrap_iters,
        judge: args.judge.clone(),
    };
    let spec_json = serde_json::to_string(&spec).context("cannot write the job spec")?;
    let queued = podium_eval::enqueue(
        &mut store,
        backend.as_ref(),
        tasks,
        &options,
        args.job_docs as usize,
        |_| spec_json.clone(),
    )?;
    let mut table = Table::new(&[
        ("task", false),
        ("run", true),
        ("jobs queued", true),
        ("docs queued", true),
        ("already stored", true),
        ("already in jobs", true),
    ]);
    for run in &queued {
        table.push(vec![
            if run.finished {
                format!("{} (finished)", run.task)
            } else {
                run.task.clone()
            },
            run.run_id.to_string(),
            run.enqueued.n_jobs.to_string(),
            run.enqueued.n_docs.to_string(),
            run.enqueued.n_stored.to_string(),
            run.enqueued.n_in_jobs.to_string(),
        ]);
    }
    crate::emit(&table.render(Format::Table)?)?;
    crate::note!(
        "queued in {db}; run the jobs with `podium worker --db URL` on any machine that can reach the model, and follow them with `podium jobs`"
    );
    Ok(ExitCode::SUCCESS)
}

/// `podium worker`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  podium worker --db postgres://podium@db.internal/podium
  podium worker --db postgres://podium@db.internal/podium --models 'local:*' --concurrency 2
  podium worker --db postgres://podium@db.internal/podium --exit-when-idle   # a batch job

A worker claims the oldest queued job it can run (`SELECT … FOR UPDATE SKIP LOCKED`),
holds it under a lease that it renews every third of --lease-s, writes each sample as
it is scored, and marks the job done when all its documents are stored. A worker that
dies loses its lease; another worker takes the job over and redoes only the documents
not stored yet. Ctrl-C or SIGTERM gives the worker's jobs back to the queue at once.
Endpoints' rpm=, tpm= and concurrency= limits hold across all workers together.
Keys come from each worker's environment (api_key_env=NAME in the model spec).")]
pub(crate) struct WorkerArgs {
    /// Only jobs whose model spec matches this pattern (`*` any text, `?` one character), e.g. 'local:*'
    #[arg(long, value_name = "PATTERN")]
    pub(crate) models: Option<String>,
    /// Jobs run at once by this worker
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub(crate) concurrency: u64,
    /// Seconds a job's lease lasts without a heartbeat: how soon another worker takes over the jobs of a dead one
    #[arg(long, default_value_t = 30.0, value_parser = parse_lease)]
    pub(crate) lease_s: f64,
    /// Seconds between looks at the queue when it is empty
    #[arg(long, default_value_t = 1.0, value_parser = parse_poll)]
    pub(crate) poll_s: f64,
    /// Stop when no job is queued or running (instead of waiting for more)
    #[arg(long)]
    pub(crate) exit_when_idle: bool,
    /// This worker's name in `podium jobs` (default: HOST:PID)
    #[arg(long)]
    pub(crate) name: Option<String>,
}

fn parse_lease(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if (0.5..=3600.0).contains(&value) {
        Ok(value)
    } else {
        Err("the lease is between 0.5 and 3600 seconds".into())
    }
}

fn parse_poll(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if (0.01..=600.0).contains(&value) {
        Ok(value)
    } else {
        Err("the poll interval is between 0.01 and 600 seconds".into())
    }
}

/// A job spec's model and tasks, opened once per worker.
struct Prepared {
    backend: Arc<dyn Backend>,
    tasks: Vec<Task>,
    options: EvalOptions,
}

/// What the job loops of one worker share.
struct Worker {
    db: Location,
    dirs: Vec<PathBuf>,
    name: String,
    models: Option<String>,
    lease: Duration,
    poll: Duration,
    exit_when_idle: bool,
    shared: podium_core::Shared,
    /// Opened job specs by their JSON; `Err` when this worker cannot run them.
    prepared: Mutex<HashMap<String, Result<Arc<Prepared>, String>>>,
    /// Runs this worker cannot run (model or task missing or different here).
    skip_runs: Mutex<HashSet<i64>>,
    /// Leases held now, with the documents stored under each (for heartbeats).
    held: Mutex<HashMap<i64, (Lease, Arc<AtomicU64>)>>,
    stopping: AtomicBool,
}

/// Counts a job's stored documents for its heartbeat.
struct JobProgress(Arc<AtomicU64>);

impl Progress for JobProgress {
    fn task_started(&self, _: &str, _: usize, done: usize) {
        self.0.store(done as u64, Ordering::Relaxed);
    }
    fn docs_done(&self, n: usize) {
        self.0.fetch_add(n as u64, Ordering::Relaxed);
    }
    fn task_finished(&self, _: &str) {}
}

pub(crate) fn run_worker(
    db: &Location,
    dirs: &[PathBuf],
    args: &WorkerArgs,
) -> anyhow::Result<ExitCode> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "worker".into());
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("{host}:{}", std::process::id()));
    let cache: Arc<dyn podium_core::ResponseCache> =
        Arc::new(podium_eval::StoreCache::new(open_store(db)?));
    let limits: Arc<dyn podium_core::SharedLimits> =
        Arc::new(podium_eval::StoreLimits::new(open_store(db)?, &name));
    let worker = Arc::new(Worker {
        db: db.clone(),
        dirs: dirs.to_vec(),
        name: name.clone(),
        models: args.models.clone(),
        lease: Duration::from_secs_f64(args.lease_s),
        poll: Duration::from_secs_f64(args.poll_s),
        exit_when_idle: args.exit_when_idle,
        shared: podium_core::Shared {
            cache: Some(cache),
            limits: Some(limits),
        },
        prepared: Mutex::new(HashMap::new()),
        skip_runs: Mutex::new(HashSet::new()),
        held: Mutex::new(HashMap::new()),
        stopping: AtomicBool::new(false),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    crate::note!(
        "worker {name}: {} from {db}{}",
        match args.concurrency {
            1 => "one job at a time".to_string(),
            n => format!("up to {n} jobs at once"),
        },
        args.models
            .as_deref()
            .map(|m| format!(" for models matching `{m}`"))
            .unwrap_or_default()
    );

    // Heartbeats on a connection of their own, so a long batch never starves them.
    let heart = {
        let worker = worker.clone();
        let mut store = open_store(db)?;
        std::thread::spawn(move || heartbeat(&worker, &mut store))
    };
    // Ctrl-C or SIGTERM: give the held jobs back and stop.
    {
        let worker = worker.clone();
        let store = open_store(db)?;
        runtime.spawn(async move {
            wait_for_stop_signal().await;
            worker.stopping.store(true, Ordering::SeqCst);
            let held: Vec<Lease> = lock(&worker.held).values().map(|(l, _)| *l).collect();
            let store = Mutex::new(store);
            for lease in held {
                let _ = lock(&store).release_job(&lease, "its worker was stopped");
            }
            crate::note!("worker stopped; its jobs are back in the queue");
            std::process::exit(130);
        });
    }
    let loops: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let worker = worker.clone();
            let handle = runtime.handle().clone();
            std::thread::spawn(move || handle.block_on(job_loop(&worker)))
        })
        .collect();
    let mut result = Ok(());
    for handle in loops {
        match handle.join() {
            Ok(Ok(())) => {}
            Ok(Err(err)) => result = Err(err),
            Err(_) => result = Err(anyhow::anyhow!("a job loop panicked")),
        }
    }
    worker.stopping.store(true, Ordering::SeqCst);
    let _ = heart.join();
    result?;
    crate::note!("worker {name}: no job left, stopping");
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Renews every held lease each third of the lease, until the worker stops.
fn heartbeat(worker: &Worker, store: &mut Store) {
    let every = worker.lease / 3;
    let mut last = Instant::now();
    while !worker.stopping.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50).min(every));
        if last.elapsed() < every {
            continue;
        }
        last = Instant::now();
        let held: Vec<(Lease, u64)> = lock(&worker.held)
            .values()
            .map(|(lease, n)| (*lease, n.load(Ordering::Relaxed)))
            .collect();
        for (lease, n_stored) in held {
            match store.renew_lease(&lease, worker.lease, n_stored) {
                Ok(true) => {}
                Ok(false) => {
                    // Warned once: the job loop drops the job at its next write.
                    lock(&worker.held).remove(&lease.job_id);
                    eprintln!(
                        "warning: job {}: the lease was lost (taken over or cancelled); its writes will stop",
                        lease.job_id
                    );
                }
                Err(err) => eprintln!("warning: job {}: heartbeat failed: {err}", lease.job_id),
            }
        }
    }
}

/// Claims and runs jobs until stopped (or, with --exit-when-idle, until none
/// is queued or running).
async fn job_loop(worker: &Worker) -> anyhow::Result<()> {
    let mut store = open_store(&worker.db)?;
    while !worker.stopping.load(Ordering::SeqCst) {
        let skip: Vec<i64> = lock(&worker.skip_runs).iter().copied().collect();
        // Each job loop drives its future on a thread of its own
        // (`Handle::block_on`), so the store's blocking calls stall no one else.
        let claimed = store
            .claim_job(&worker.name, worker.models.as_deref(), &skip, worker.lease)
            .with_context(|| format!("cannot claim a job from {}", worker.db))?;
        match claimed {
            Some((lease, job)) => run_one(worker, &mut store, lease, job).await?,
            None => {
                finish_orphaned_runs(worker, &mut store);
                if worker.exit_when_idle {
                    let open = store.jobs(&[JobState::Queued, JobState::Running])?;
                    let skip = lock(&worker.skip_runs).clone();
                    if open.iter().all(|job| skip.contains(&job.run_id)) {
                        return Ok(());
                    }
                }
                tokio::time::sleep(worker.poll).await;
            }
        }
    }
    Ok(())
}

/// Opens (once per spec) the model and tasks of a job spec.
fn prepare(worker: &Worker, spec_json: &str) -> Result<Arc<Prepared>, String> {
    if let Some(found) = lock(&worker.prepared).get(spec_json) {
        return found.clone();
    }
    let opened = (|| -> anyhow::Result<Prepared> {
        let spec: JobSpec = serde_json::from_str(spec_json)
            .context("the job's spec is not one this Podium reads")?;
        let mut dirs = vec![worker.dirs.first().cloned().unwrap_or_default()];
        dirs.extend(spec.tasks_dirs.iter().cloned());
        dirs.extend(worker.dirs.iter().skip(1).cloned());
        let (tasks, _) = load_tasks(&dirs, &spec.tasks, "-t", &spec.data_options())?;
        let backend = podium_backends::open_shared(&spec.model, worker.shared.clone())?;
        let cache = worker
            .shared
            .cache
            .clone()
            .context("the worker has no response cache")?;
        let judges = open_judges(&tasks, spec.judge.as_deref(), &cache)?;
        let options = EvalOptions {
            limit: spec.limit.map(|l| l as usize),
            num_fewshot: spec.shots,
            seed: spec.seed,
            apply_chat_template: spec.apply_chat_template,
            batch_size: spec.batch_size as usize,
            bootstrap_iters: spec.bootstrap_iters,
            judges,
        };
        Ok(Prepared {
            backend,
            tasks,
            options,
        })
    })()
    .map(Arc::new)
    .map_err(|err| format!("{err:#}"));
    lock(&worker.prepared).insert(spec_json.to_string(), opened.clone());
    opened
}

/// Runs one claimed job; a job this worker cannot run goes back to the queue.
async fn run_one(worker: &Worker, store: &mut Store, lease: Lease, job: Job) -> anyhow::Result<()> {
    let started = Instant::now();
    let give_back = |store: &mut Store, reason: String| -> anyhow::Result<()> {
        lock(&worker.skip_runs).insert(job.run_id);
        crate::note!(
            "job {} (run {}, {}): this worker cannot run it: {reason}",
            job.id,
            job.run_id,
            job.task_name
        );
        store.release_job(&lease, &format!("{}: {reason}", worker.name))?;
        Ok(())
    };
    let prepared = match prepare(worker, &job.spec_json) {
        Ok(prepared) => prepared,
        Err(reason) => return give_back(store, reason),
    };
    let Some(task) = prepared.tasks.iter().find(|t| t.name() == job.task_name) else {
        return give_back(
            store,
            format!("the job's settings select no task `{}` here", job.task_name),
        );
    };
    let progress = Arc::new(AtomicU64::new(0));
    lock(&worker.held).insert(job.id, (lease, progress.clone()));
    let outcome = podium_eval::run_job(
        store,
        prepared.backend.as_ref(),
        task,
        &prepared.options,
        &lease,
        &job.doc_ids,
        &JobProgress(progress),
    )
    .await;
    lock(&worker.held).remove(&job.id);
    match outcome {
        Ok(report) => {
            crate::note!(
                "job {} (run {}, {}, {} docs): {} in {:.1} s ({} stored, {} failed){}",
                job.id,
                job.run_id,
                job.task_name,
                job.n_docs,
                if report.n_failed == 0 {
                    "done"
                } else {
                    "failed"
                },
                started.elapsed().as_secs_f64(),
                report.n_stored,
                report.n_failed,
                match &report.run_finished {
                    Some(_) => format!("; run {} finished", job.run_id),
                    None => String::new(),
                }
            );
        }
        Err(podium_eval::EvalError::Store(StoreError::LeaseLost { .. })) => {
            crate::note!(
                "job {} (run {}): the lease was lost (taken over or cancelled); dropped",
                job.id,
                job.run_id
            );
        }
        Err(err @ podium_eval::EvalError::NotTheRun { .. }) => {
            give_back(store, err.to_string())?;
        }
        Err(err) => {
            // The model, the task or a write failed for the whole batch: the
            // job fails with the reason, and `podium jobs retry` requeues it.
            // Only a database that cannot record that stops the worker.
            let message = err.to_string();
            crate::note!("job {} (run {}): failed: {message}", job.id, job.run_id);
            match store.finish_job(&lease, 0, job.n_docs, Some(&message)) {
                Ok(_) | Err(StoreError::LeaseLost { .. }) => {}
                Err(other) => return Err(other.into()),
            }
        }
    }
    Ok(())
}

/// Finishes runs whose jobs are all done but which no worker aggregated (the
/// worker that ended the last job died first).
fn finish_orphaned_runs(worker: &Worker, store: &mut Store) {
    let Ok(runs) = store.runs_with_all_jobs_done() else {
        return;
    };
    for (run_id, task_name, spec_json) in runs {
        if lock(&worker.skip_runs).contains(&run_id) {
            continue;
        }
        match finish_run(worker, store, run_id, &task_name, &spec_json) {
            Ok(Some(_)) => crate::note!("run {run_id}: all its jobs were done; finished it"),
            Ok(None) => {
                lock(&worker.skip_runs).insert(run_id);
            }
            Err(reason) => {
                eprintln!("warning: run {run_id}: cannot finish it here: {reason}");
                lock(&worker.skip_runs).insert(run_id);
            }
        }
    }
}

fn finish_run(
    worker: &Worker,
    store: &mut Store,
    run_id: i64,
    task_name: &str,
    spec_json: &str,
) -> Result<Option<podium_eval::TaskOutcome>, String> {
    let prepared = prepare(worker, spec_json)?;
    let task = prepared
        .tasks
        .iter()
        .find(|t| t.name() == task_name)
        .ok_or_else(|| format!("the job's settings select no task `{task_name}` here"))?;
    podium_eval::finish_queued_run(
        store,
        prepared.backend.as_ref(),
        task,
        &prepared.options,
        run_id,
    )
    .map_err(|e| e.to_string())
}

/// `podium jobs`.
#[derive(Debug, clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Examples:
  podium jobs                                   # every job: state, worker, progress
  podium jobs --state running,failed --format json
  podium jobs retry                             # requeue every failed job
  podium jobs retry 12 13                       # requeue these (failed or cancelled)
  podium jobs cancel 14                         # its worker stops at its next write
  podium jobs cancel --all                      # everything queued or running"
)]
pub(crate) struct JobsArgs {
    #[command(subcommand)]
    pub(crate) command: Option<JobsCommand>,
    /// Only jobs in these states (queued, running, done, failed, cancelled), comma-separated
    #[arg(long, value_delimiter = ',', value_parser = parse_state)]
    pub(crate) state: Vec<JobState>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub(crate) format: Format,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum JobsCommand {
    /// Requeue failed jobs (all of them, or the given ids, which may also be cancelled ones)
    Retry { ids: Vec<i64> },
    /// Cancel queued or running jobs by id (or all of them with --all)
    Cancel {
        ids: Vec<i64>,
        #[arg(long, conflicts_with = "ids")]
        all: bool,
    },
}

fn parse_state(text: &str) -> Result<JobState, String> {
    JobState::parse(text).ok_or_else(|| {
        format!("`{text}` is not a job state (queued, running, done, failed, cancelled)")
    })
}

pub(crate) fn run_jobs(db: &Location, args: &JobsArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(db)?;
    match &args.command {
        Some(JobsCommand::Retry { ids }) => {
            let n = store.retry_jobs(ids)?;
            crate::emit(&format!("{n} jobs requeued"))?;
        }
        Some(JobsCommand::Cancel { ids, all }) => {
            if ids.is_empty() && !all {
                return Err(UserError(
                    "name the jobs to cancel (podium jobs cancel 12 13), or pass --all".into(),
                )
                .into());
            }
            let n = store.cancel_jobs(ids)?;
            crate::emit(&format!("{n} jobs cancelled"))?;
        }
        None => {
            let jobs = store.jobs(&args.state)?;
            if args.format == Format::Json {
                crate::emit(&serde_json::to_string_pretty(&jobs)?)?;
            } else {
                let mut table = Table::new(&[
                    ("job", true),
                    ("run", true),
                    ("model", false),
                    ("task", false),
                    ("state", false),
                    ("worker", false),
                    ("docs", true),
                    ("failed", true),
                    ("claims", true),
                    ("lease left", true),
                    ("error", false),
                ]);
                for job in jobs {
                    table.push(vec![
                        job.id.to_string(),
                        job.run_id.to_string(),
                        job.model_spec,
                        job.task_name,
                        job.state.as_str().to_string(),
                        job.worker.unwrap_or_default(),
                        format!("{}/{}", job.n_stored, job.n_docs),
                        job.n_failed.to_string(),
                        job.claims.to_string(),
                        job.lease_left_s
                            .map(|s| format!("{s:.0} s"))
                            .unwrap_or_default(),
                        job.error
                            .map(|e| e.chars().take(80).collect())
                            .unwrap_or_default(),
                    ]);
                }
                crate::emit(&table.render(args.format)?)?;
                crate::note!("{}", summary(&store.jobs(&[])?));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One line over all jobs: how many in each state, and the documents done.
fn summary(jobs: &[Job]) -> String {
    if jobs.is_empty() {
        return "no jobs: queue some with `podium eval … --queue`".into();
    }
    let states = [
        JobState::Queued,
        JobState::Running,
        JobState::Done,
        JobState::Failed,
        JobState::Cancelled,
    ];
    let counts: Vec<String> = states
        .iter()
        .filter_map(|state| {
            let n = jobs.iter().filter(|j| j.state == *state).count();
            (n > 0).then(|| format!("{n} {}", state.as_str()))
        })
        .collect();
    let workers: HashSet<&str> = jobs
        .iter()
        .filter(|j| j.state == JobState::Running)
        .filter_map(|j| j.worker.as_deref())
        .collect();
    let docs: u64 = jobs.iter().map(|j| j.n_docs).sum();
    let stored: u64 = jobs
        .iter()
        .map(|j| match j.state {
            JobState::Done => j.n_docs,
            _ => j.n_stored,
        })
        .sum();
    format!(
        "{} jobs: {}; {} workers busy; {stored} of {docs} documents stored",
        jobs.len(),
        counts.join(", "),
        workers.len()
    )
}
