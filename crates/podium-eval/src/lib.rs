//! The evaluation runner: builds every prompt first, then sends requests to a
//! backend in batches and writes each scored sample to the store as it
//! completes, so a killed run resumes where it stopped without redoing or
//! double-counting a sample.
//!
//! *Architecture Invariant:* a run's score is computed only from the samples
//! in the store, so a resumed run and an uninterrupted one give the same
//! numbers.

use std::collections::{BTreeMap, HashSet};

use serde_json::json;

mod judging;
pub use judging::{Judges, run_task_hash};

use podium_core::{
    Backend, BackendError, ChatMessage, PODIUM_VERSION, ResponseCache, SharedLimits, SlotHold,
};
use podium_store::{
    Lease, ModelRecord, RunKey, RunState, SampleRecord, SampleStatus, Store, StoreError,
};

mod queue;
use podium_tasks::metrics::SampleValue;
use podium_tasks::results::{self, GroupResult, TaskResult};
use podium_tasks::{
    BuildOptions, Instance, InstanceRequest, Response, SampleScores, Selection, Task, TaskError,
};
pub use queue::{JobReport, QueuedRun, enqueue, finish_queued_run, run_job};

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Task(#[from] TaskError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A worker's model, task or options are not those of the run its job
    /// belongs to (another model file, another version of the task).
    #[error(
        "run {run_id}: model `{model}` on task `{task}` as this worker has them is not that run (another model file or endpoint, or another version of the task or its data)"
    )]
    NotTheRun {
        run_id: i64,
        model: String,
        task: String,
    },
    #[error("model `{model}` on task `{task}`: {source}")]
    Backend {
        model: String,
        task: String,
        source: BackendError,
    },
}

#[derive(Debug, Clone)]
pub struct EvalOptions {
    pub limit: Option<usize>,
    pub num_fewshot: Option<usize>,
    pub seed: u64,
    pub apply_chat_template: bool,
    /// Docs sent to the backend at once.
    pub batch_size: usize,
    pub bootstrap_iters: usize,
    /// The judge models of tasks with `metric: judge` entries.
    pub judges: Judges,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            limit: None,
            num_fewshot: None,
            seed: 1234,
            apply_chat_template: false,
            batch_size: 16,
            bootstrap_iters: podium_stats::DEFAULT_BOOTSTRAP_ITERS,
            judges: Judges::default(),
        }
    }
}

/// Progress reporting, implemented by the CLI with progress bars.
pub trait Progress: Send + Sync {
    /// A task starts: `total` docs, of which `done` were stored by an earlier attempt.
    fn task_started(&self, task: &str, total: usize, done: usize);
    fn docs_done(&self, n: usize);
    fn task_finished(&self, task: &str);
}

/// Progress that reports nothing (tests, JSON output).
pub struct NoProgress;

impl Progress for NoProgress {
    fn task_started(&self, _: &str, _: usize, _: usize) {}
    fn docs_done(&self, _: usize) {}
    fn task_finished(&self, _: &str) {}
}

/// The store's response cache behind the backends' [`ResponseCache`] trait.
/// It holds a connection of its own (the store is in WAL mode, so it can sit
/// beside the runner's). Store errors count as misses: a broken cache slows a
/// run down but never fails it.
pub struct StoreCache {
    store: std::sync::Mutex<Store>,
}

impl StoreCache {
    pub fn new(store: Store) -> StoreCache {
        StoreCache {
            store: std::sync::Mutex::new(store),
        }
    }
}

impl ResponseCache for StoreCache {
    fn get(&self, key: &str) -> Option<String> {
        let store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        store.cache_get(key).ok().flatten()
    }

    fn put(&self, key: &str, value: &str) {
        let store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        let _ = store.cache_put(key, value);
    }
}

/// The store's shared limits behind the backends' [`SharedLimits`] trait: a
/// connection of its own, used by every endpoint of a worker, so that `rpm`,
/// `tpm` and `concurrency` hold across all the workers of one database.
pub struct StoreLimits {
    store: std::sync::Mutex<Store>,
    /// This process, in the holder names of the slots it takes.
    worker: String,
    next_hold: std::sync::atomic::AtomicU64,
}

impl StoreLimits {
    pub fn new(store: Store, worker: &str) -> StoreLimits {
        StoreLimits {
            store: std::sync::Mutex::new(store),
            worker: worker.to_string(),
            next_hold: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl SharedLimits for StoreLimits {
    fn pace(&self, key: &str, cost_s: f64) -> Result<std::time::Duration, String> {
        self.store().pace(key, cost_s).map_err(|e| e.to_string())
    }

    fn pace_adjust(&self, key: &str, delta_s: f64) {
        let _ = self.store().pace_adjust(key, delta_s);
    }

    fn try_slot(
        &self,
        key: &str,
        cap: usize,
        hold: std::time::Duration,
    ) -> Result<Option<SlotHold>, String> {
        let n = self
            .next_hold
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let holder = format!("{}#{n}", self.worker);
        let slot = self
            .store()
            .acquire_slot(key, cap as u64, &holder, hold)
            .map_err(|e| e.to_string())?;
        Ok(slot.map(|slot| SlotHold { slot, holder }))
    }

    fn release_slot(&self, key: &str, slot: &SlotHold) {
        let _ = self.store().release_slot(key, slot.slot, &slot.holder);
    }
}

#[derive(Debug, Clone)]
pub struct TaskOutcome {
    pub run_id: i64,
    pub result: TaskResult,
    /// Samples found already stored when the run started (resumed).
    pub n_resumed: usize,
    pub n_failed: usize,
    /// The first failure's message, when any sample failed.
    pub first_error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct EvalReport {
    pub model: String,
    pub tasks: Vec<TaskOutcome>,
    pub groups: Vec<GroupResult>,
    /// lm-evaluation-harness-compatible results JSON.
    pub results_json: serde_json::Value,
}

impl EvalReport {
    pub fn n_failed(&self) -> usize {
        self.tasks.iter().map(|t| t.n_failed).sum()
    }
}

/// Evaluate `tasks` (already loaded) on `backend`, storing every sample.
pub async fn evaluate(
    store: &mut Store,
    backend: &dyn Backend,
    tasks: &[Task],
    selections: &[Selection],
    options: &EvalOptions,
    progress: &dyn Progress,
) -> Result<EvalReport, EvalError> {
    let identity = backend.identity();
    let build = BuildOptions {
        limit: options.limit,
        num_fewshot: options.num_fewshot,
        seed: options.seed,
    };
    let render = |messages: &[ChatMessage], add_generation_prompt: bool| {
        backend.apply_chat_template(messages, add_generation_prompt)
    };
    // Every prompt of every task is built before anything is stored, so bad
    // templates or data leave the store untouched.
    let mut all_instances = Vec::with_capacity(tasks.len());
    for task in tasks {
        let chat: Option<podium_tasks::task::ChatRenderer<'_>> = if options.apply_chat_template {
            Some(&render)
        } else {
            None
        };
        all_instances.push(task.build_instances(&build, chat)?);
        // A judge metric without a judge fails here, before anything is stored.
        options.judges.for_task(task)?;
    }

    let model_id = store.upsert_model(&ModelRecord {
        spec: identity.spec.clone(),
        fingerprint: identity.fingerprint.clone(),
        chat_template_hash: identity.chat_template_hash.clone(),
    })?;
    let mut outcomes = Vec::new();
    for (task, instances) in tasks.iter().zip(&all_instances) {
        let outcome = run_task(store, backend, model_id, task, instances, options, progress)
            .await
            .map_err(|err| match err {
                EvalError::Backend { source, .. } => EvalError::Backend {
                    model: identity.spec.clone(),
                    task: task.name().to_string(),
                    source,
                },
                other => other,
            })?;
        outcomes.push(outcome);
    }

    let by_name: BTreeMap<String, TaskResult> = outcomes
        .iter()
        .map(|o| (o.result.name.clone(), o.result.clone()))
        .collect();
    let groups = results::aggregate_groups(selections, &by_name);
    let task_results: Vec<TaskResult> = outcomes.iter().map(|o| o.result.clone()).collect();
    let results_json = results::lm_eval_json(
        &task_results,
        &groups,
        &identity.spec,
        json!({
            "version": PODIUM_VERSION,
            "model": identity,
            "seed": options.seed,
            "limit": options.limit,
            "apply_chat_template": options.apply_chat_template,
            "bootstrap_iters": options.bootstrap_iters,
            "runs": outcomes.iter().map(|o| json!({
                "task": o.result.name,
                "run_id": o.run_id,
                "content_hash": o.result.content_hash,
                "n_failed": o.n_failed,
            })).collect::<Vec<_>>(),
        }),
    );
    Ok(EvalReport {
        model: identity.spec,
        tasks: outcomes,
        groups,
        results_json,
    })
}

/// The run of `task` under this model and these options: found, or created
/// when new. Returns it with its state and the shots it uses.
fn open_run(
    store: &mut Store,
    identity: &podium_core::ModelIdentity,
    model_id: i64,
    task: &Task,
    options: &EvalOptions,
) -> Result<(i64, RunState, usize), EvalError> {
    let n_shots = options.num_fewshot.unwrap_or(task.config.num_fewshot);
    let judges = options.judges.for_task(task)?;
    let task_hash = run_task_hash(task, &judges);
    let task_id = store.upsert_task(
        task.name(),
        &task_hash,
        &serde_json::to_string(&task.config.raw).unwrap_or_default(),
    )?;
    let manifest = json!({
        "podium_version": PODIUM_VERSION,
        "model": identity,
        "task": task.name(),
        "task_hash": task.content_hash,
        "judges": judges.iter().map(|(metric, judge)| json!({
            "metric": metric.name,
            "judge": judge.identity(),
        })).collect::<Vec<_>>(),
        "n_shots": n_shots,
        "apply_chat_template": options.apply_chat_template,
        "chat_template_hash": if options.apply_chat_template { identity.chat_template_hash.clone() } else { None },
        "seed": options.seed,
        "limit": options.limit,
    });
    let key = RunKey {
        model_id,
        task_id,
        n_shots: n_shots as u32,
        chat_template: options.apply_chat_template,
        seed: options.seed,
        limit: options.limit.map(|l| l as u64),
    };
    let (run_id, state) = store.find_or_create_run(&key, &manifest.to_string(), PODIUM_VERSION)?;
    Ok((run_id, state, n_shots))
}

async fn run_task(
    store: &mut Store,
    backend: &dyn Backend,
    model_id: i64,
    task: &Task,
    instances: &[Instance],
    options: &EvalOptions,
    progress: &dyn Progress,
) -> Result<TaskOutcome, EvalError> {
    let (run_id, state, n_shots) = open_run(store, &backend.identity(), model_id, task, options)?;
    let done: HashSet<u64> = store.completed_doc_ids(run_id)?;
    let n_resumed = if state.existing { done.len() } else { 0 };
    let pending: Vec<&Instance> = instances
        .iter()
        .filter(|i| !done.contains(&(i.doc_id as u64)))
        .collect();
    progress.task_started(
        task.name(),
        instances.len(),
        instances.len() - pending.len(),
    );
    let written = run_docs(
        store, backend, task, options, run_id, None, &pending, progress,
    )
    .await?;
    progress.task_finished(task.name());
    let mut outcome = aggregate_run(store, run_id, task, instances, options, n_shots)?;
    outcome.n_resumed = n_resumed;
    outcome.n_failed = outcome.n_failed.max(written.n_failed);
    if written.first_error.is_some() {
        outcome.first_error = written.first_error;
    }
    Ok(outcome)
}

/// What [`run_docs`] wrote.
struct Written {
    n_failed: usize,
    first_error: Option<String>,
}

/// Sends `pending` to the backend in batches, scores and judges each answer,
/// and writes each sample: to the run, or through a worker's `lease` (then a
/// lapsed lease stops the work with [`StoreError::LeaseLost`]).
#[allow(clippy::too_many_arguments)]
async fn run_docs(
    store: &mut Store,
    backend: &dyn Backend,
    task: &Task,
    options: &EvalOptions,
    run_id: i64,
    lease: Option<&Lease>,
    pending: &[&Instance],
    progress: &dyn Progress,
) -> Result<Written, EvalError> {
    let judges = options.judges.for_task(task)?;
    let mut n_failed = 0;
    let mut first_error = None;
    for batch in pending.chunks(options.batch_size.max(1)) {
        let responses = call_backend(backend, batch).await?;
        let mut scored = Vec::with_capacity(batch.len());
        for (instance, response) in batch.iter().zip(responses) {
            // A NaN or infinite log-prob is a failed request, not a score: it
            // is stored as failed, so the next run of the same task retries it.
            let response = response
                .map_err(SampleFailure::Backend)
                .and_then(|response| {
                    response.check_finite().map(|()| response).map_err(|error| {
                        SampleFailure::NonFinite {
                            doc_id: instance.doc_id,
                            error,
                        }
                    })
                });
            scored.push(match response {
                Ok(response) => {
                    let scores = task.score(instance, &response)?;
                    (*instance, Ok((response, scores)))
                }
                Err(failure) => (*instance, Err(failure)),
            });
        }
        if !judges.is_empty() {
            judge_scored(task, &judges, &mut scored).await?;
        }
        for (instance, outcome) in scored {
            let record = match outcome {
                Ok((response, scores)) => {
                    sample_record(instance, Some(&response), Some(&scores), None)
                }
                Err(failure) => {
                    let message = failure.to_string();
                    n_failed += 1;
                    first_error.get_or_insert_with(|| message.clone());
                    sample_record(instance, None, None, Some(message))
                }
            };
            match lease {
                Some(lease) => store.put_job_sample(lease, &record)?,
                None => store.put_sample(run_id, &record)?,
            };
        }
        progress.docs_done(batch.len());
    }
    Ok(Written {
        n_failed,
        first_error,
    })
}

/// The task's result from the run's stored samples (see the crate's
/// invariant); the run is marked finished when every doc is stored ok.
fn aggregate_run(
    store: &mut Store,
    run_id: i64,
    task: &Task,
    instances: &[Instance],
    options: &EvalOptions,
    n_shots: usize,
) -> Result<TaskOutcome, EvalError> {
    let wanted: HashSet<u64> = instances.iter().map(|i| i.doc_id as u64).collect();
    let stored = store.samples(run_id)?;
    let mut metrics: Vec<BTreeMap<String, SampleValue>> = Vec::new();
    let mut judgements = Vec::new();
    let mut doc_ids: Vec<usize> = Vec::new();
    let mut n_stored_failed = 0;
    let mut first_error = None;
    for sample in stored.iter().filter(|s| wanted.contains(&s.doc_id)) {
        match sample.status {
            SampleStatus::Ok => {
                let scores: SampleScores =
                    serde_json::from_str(&sample.metrics_json).map_err(|err| TaskError::Task {
                        task: task.name().to_string(),
                        message: format!(
                            "stored sample {} has unreadable metrics: {err}",
                            sample.doc_id
                        ),
                    })?;
                metrics.push(scores.metrics);
                judgements.push(scores.judgements);
                doc_ids.push(sample.doc_id as usize);
            }
            SampleStatus::Failed => {
                n_stored_failed += 1;
                if first_error.is_none() {
                    first_error = sample.error.clone();
                }
            }
        }
    }
    let baseline = task.random_baseline(instances);
    let mut result = results::aggregate_task(
        task,
        &metrics,
        n_shots,
        baseline,
        options.bootstrap_iters,
        options.seed,
    );
    result.judges = podium_tasks::judge::summarize(&judgements);
    if task.config.doc_to_category.is_some() {
        let with_ids: Vec<(usize, BTreeMap<String, SampleValue>)> =
            doc_ids.into_iter().zip(metrics.iter().cloned()).collect();
        result.categories =
            results::aggregate_categories(task, &with_ids, options.bootstrap_iters, options.seed);
    }
    if n_stored_failed == 0 && metrics.len() == instances.len() {
        store.finish_run(run_id, &serde_json::to_string(&result).unwrap_or_default())?;
    }
    Ok(TaskOutcome {
        run_id,
        result,
        n_resumed: 0,
        n_failed: n_stored_failed,
        first_error,
    })
}

/// Why one sample failed; its message is stored with the sample.
#[derive(Debug, thiserror::Error)]
enum SampleFailure {
    #[error("{0}")]
    Backend(BackendError),
    #[error("doc {doc_id}: {error}")]
    NonFinite {
        doc_id: usize,
        error: podium_tasks::task::NonFiniteLogprob,
    },
    /// A judge's request for the sample's answer failed.
    #[error("doc {doc_id}: {error}")]
    Judge { doc_id: usize, error: String },
}

type Scored<'a> = (
    &'a Instance,
    Result<(Response, SampleScores), SampleFailure>,
);

/// Grade the scored answers of a batch with the task's judges; a failed
/// judge request turns its sample into a failed one.
async fn judge_scored(
    task: &Task,
    judges: &[(&podium_tasks::judge::JudgeMetric, &dyn Backend)],
    scored: &mut [Scored<'_>],
) -> Result<(), EvalError> {
    let mut items: Vec<judging::ToJudge<'_>> = scored
        .iter_mut()
        .filter_map(|(instance, outcome)| match outcome {
            Ok((_, scores)) => Some(judging::ToJudge {
                instance,
                scores,
                error: None,
            }),
            Err(_) => None,
        })
        .collect();
    judging::judge_batch(task, judges, &mut items)
        .await
        .map_err(|source| EvalError::Backend {
            model: String::new(),
            task: String::new(),
            source,
        })?;
    let failed: BTreeMap<usize, String> = items
        .into_iter()
        .filter_map(|item| item.error.map(|e| (item.instance.doc_id, e)))
        .collect();
    for (instance, outcome) in scored.iter_mut() {
        if let Some(error) = failed.get(&instance.doc_id) {
            *outcome = Err(SampleFailure::Judge {
                doc_id: instance.doc_id,
                error: error.clone(),
            });
        }
    }
    Ok(())
}

type BatchResponses = Vec<Result<Response, BackendError>>;

/// Send one batch of docs; all docs of a task share one request type.
async fn call_backend(
    backend: &dyn Backend,
    batch: &[&Instance],
) -> Result<BatchResponses, EvalError> {
    let backend_error = |source: BackendError| EvalError::Backend {
        model: String::new(),
        task: String::new(),
        source,
    };
    let Some(first) = batch.first() else {
        return Ok(Vec::new());
    };
    match &first.request {
        InstanceRequest::Loglikelihood(_) => {
            let requests: Vec<_> = batch
                .iter()
                .filter_map(|i| match &i.request {
                    InstanceRequest::Loglikelihood(r) => Some(r.clone()),
                    _ => None,
                })
                .collect();
            let results = backend
                .loglikelihood(&requests)
                .await
                .map_err(backend_error)?;
            check_len(results.len(), batch.len())?;
            Ok(results
                .into_iter()
                .zip(&requests)
                .map(|(r, request)| {
                    r.and_then(|results| {
                        if results.len() == request.continuations.len() {
                            Ok(Response::Loglikelihood { results })
                        } else {
                            Err(BackendError::Request(format!(
                                "the backend scored {} of {} continuations",
                                results.len(),
                                request.continuations.len()
                            )))
                        }
                    })
                })
                .collect())
        }
        InstanceRequest::Rolling(_) => {
            let requests: Vec<_> = batch
                .iter()
                .filter_map(|i| match &i.request {
                    InstanceRequest::Rolling(r) => Some(r.clone()),
                    _ => None,
                })
                .collect();
            let results = backend
                .loglikelihood_rolling(&requests)
                .await
                .map_err(backend_error)?;
            check_len(results.len(), batch.len())?;
            Ok(results
                .into_iter()
                .map(|r| r.map(|result| Response::Rolling { result }))
                .collect())
        }
        InstanceRequest::Generate { .. } => {
            // Repeats are flattened into one batch, then regrouped per doc.
            let mut requests = Vec::new();
            let mut counts = Vec::new();
            for instance in batch {
                if let InstanceRequest::Generate { requests: per_doc } = &instance.request {
                    counts.push(per_doc.len());
                    requests.extend(per_doc.iter().cloned());
                }
            }
            let results = backend
                .generate_until(&requests)
                .await
                .map_err(backend_error)?;
            check_len(results.len(), requests.len())?;
            let mut results = results.into_iter();
            Ok(counts
                .into_iter()
                .map(|n| {
                    let per_doc: Result<Vec<_>, BackendError> = results.by_ref().take(n).collect();
                    per_doc.map(|results| Response::Generate { results })
                })
                .collect())
        }
    }
}

fn check_len(got: usize, expected: usize) -> Result<(), EvalError> {
    if got == expected {
        Ok(())
    } else {
        Err(EvalError::Backend {
            model: String::new(),
            task: String::new(),
            source: BackendError::Fatal(format!(
                "the backend answered {got} of {expected} requests"
            )),
        })
    }
}

fn sample_record(
    instance: &Instance,
    response: Option<&Response>,
    scores: Option<&SampleScores>,
    error: Option<String>,
) -> SampleRecord {
    let (n_in, n_out, timing) = match response {
        Some(Response::Generate { results }) => (
            results
                .iter()
                .map(|r| r.n_input_tokens.map(|n| n as u64))
                .sum::<Option<u64>>(),
            results
                .iter()
                .map(|r| r.n_output_tokens.map(|n| n as u64))
                .sum::<Option<u64>>(),
            serde_json::to_string(&results.iter().map(|r| &r.timing).collect::<Vec<_>>())
                .unwrap_or_else(|_| "null".into()),
        ),
        _ => (None, None, "null".to_string()),
    };
    SampleRecord {
        doc_id: instance.doc_id as u64,
        prompt_hash: instance.prompt_hash.clone(),
        requests_json: serde_json::to_string(&json!({
            "prompt": instance.prompt,
            "request": instance.request,
            "target": instance.target,
        }))
        .unwrap_or_else(|_| "null".into()),
        responses_json: serde_json::to_string(&response).unwrap_or_else(|_| "null".into()),
        metrics_json: match scores {
            Some(scores) => serde_json::to_string(scores).unwrap_or_else(|_| "null".into()),
            None => "null".into(),
        },
        n_input_tokens: n_in,
        n_output_tokens: n_out,
        timing_json: timing,
        status: if error.is_some() {
            SampleStatus::Failed
        } else {
            SampleStatus::Ok
        },
        error,
    }
}

/// Per-sample JSONL lines of one run (doc, prompt, responses, filtered answers, metrics).
pub fn samples_jsonl(store: &Store, run_id: i64, task: &Task) -> Result<String, EvalError> {
    let mut out = String::new();
    for sample in store.samples(run_id)? {
        let parse = |text: &str| {
            serde_json::from_str::<serde_json::Value>(text).unwrap_or(serde_json::Value::Null)
        };
        let line = json!({
            "doc_id": sample.doc_id,
            "doc": task.doc(sample.doc_id as usize),
            "prompt_hash": sample.prompt_hash,
            "arguments": parse(&sample.requests_json),
            "resps": parse(&sample.responses_json),
            "metrics": parse(&sample.metrics_json),
            "status": sample.status.as_str(),
            "error": sample.error,
            "n_input_tokens": sample.n_input_tokens,
            "n_output_tokens": sample.n_output_tokens,
        });
        out.push_str(&line.to_string());
        out.push('\n');
    }
    Ok(out)
}
