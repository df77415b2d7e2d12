//! Runs split into jobs for `podium worker`s (`podium eval --queue`), and one
//! job run by a worker. The samples a job writes are the same as those an
//! in-process run writes (same prompts, same scoring, same rows), and a run's
//! scores come from its stored samples alone, so the result is the same
//! whichever worker did which document.

use std::collections::HashSet;

use podium_core::{Backend, ChatMessage};
use podium_store::{Enqueued, Lease, ModelRecord, NewJobs, RunKey, Store};
use podium_tasks::{BuildOptions, Instance, Task};

use crate::{
    EvalError, EvalOptions, Progress, TaskOutcome, aggregate_run, open_run, run_docs, run_task_hash,
};

/// What `eval --queue` did for one task.
#[derive(Debug, Clone)]
pub struct QueuedRun {
    pub task: String,
    pub run_id: i64,
    /// The run was finished already: nothing was queued.
    pub finished: bool,
    pub enqueued: Enqueued,
}

/// What a worker's job did.
#[derive(Debug, Clone)]
pub struct JobReport {
    /// Documents of the job stored ok by this claim or an earlier one.
    pub n_stored: usize,
    pub n_failed: usize,
    pub first_error: Option<String>,
    /// The run's result, when this job was its last and the run is now finished.
    pub run_finished: Option<TaskOutcome>,
}

/// Every instance of `task`, built as `evaluate` builds them.
fn build(
    backend: &dyn Backend,
    task: &Task,
    options: &EvalOptions,
) -> Result<Vec<Instance>, EvalError> {
    let build = BuildOptions {
        limit: options.limit,
        num_fewshot: options.num_fewshot,
        seed: options.seed,
    };
    let render = |messages: &[ChatMessage], add_generation_prompt: bool| {
        backend.apply_chat_template(messages, add_generation_prompt)
    };
    let chat: Option<podium_tasks::task::ChatRenderer<'_>> = if options.apply_chat_template {
        Some(&render)
    } else {
        None
    };
    // A judge metric without a judge fails here, before anything is stored.
    options.judges.for_task(task)?;
    Ok(task.build_instances(&build, chat)?)
}

/// Records the runs of `tasks` on `backend`'s model and splits the documents
/// each still needs into jobs of `docs_per_job`, instead of running them.
/// Every prompt is built first, so bad templates or data queue nothing.
/// `spec_json` tells a worker how to rebuild the work of a task.
pub fn enqueue(
    store: &mut Store,
    backend: &dyn Backend,
    tasks: &[Task],
    options: &EvalOptions,
    docs_per_job: usize,
    spec_json: impl Fn(&Task) -> String,
) -> Result<Vec<QueuedRun>, EvalError> {
    let identity = backend.identity();
    let all_instances = tasks
        .iter()
        .map(|task| build(backend, task, options))
        .collect::<Result<Vec<_>, _>>()?;
    let model_id = store.upsert_model(&ModelRecord {
        spec: identity.spec.clone(),
        fingerprint: identity.fingerprint.clone(),
        chat_template_hash: identity.chat_template_hash.clone(),
    })?;
    let mut queued = Vec::with_capacity(tasks.len());
    for (task, instances) in tasks.iter().zip(&all_instances) {
        let (run_id, state, _) = open_run(store, &identity, model_id, task, options)?;
        let doc_ids: Vec<u64> = instances.iter().map(|i| i.doc_id as u64).collect();
        let enqueued = if state.finished {
            Enqueued {
                n_jobs: 0,
                n_docs: 0,
                n_stored: doc_ids.len(),
                n_in_jobs: 0,
            }
        } else {
            store.enqueue_jobs(&NewJobs {
                run_id,
                model_spec: &identity.spec,
                task_name: task.name(),
                spec_json: &spec_json(task),
                doc_ids: &doc_ids,
                docs_per_job,
            })?
        };
        queued.push(QueuedRun {
            task: task.name().to_string(),
            run_id,
            finished: state.finished,
            enqueued,
        });
    }
    Ok(queued)
}

/// The run that `task` on `backend` with `options` makes, if it is `run_id`:
/// the worker's model (spec and fingerprint: the same file, the same
/// endpoint), task content and options must be exactly the run's.
fn check_run(
    store: &Store,
    backend: &dyn Backend,
    task: &Task,
    options: &EvalOptions,
    run_id: i64,
) -> Result<(), EvalError> {
    let identity = backend.identity();
    let judges = options.judges.for_task(task)?;
    let key = RunKey {
        model_id: 0,
        task_id: 0,
        n_shots: options.num_fewshot.unwrap_or(task.config.num_fewshot) as u32,
        chat_template: options.apply_chat_template,
        seed: options.seed,
        limit: options.limit.map(|l| l as u64),
    };
    let model = ModelRecord {
        spec: identity.spec.clone(),
        fingerprint: identity.fingerprint.clone(),
        chat_template_hash: None,
    };
    let found = store.find_run(&model, task.name(), &run_task_hash(task, &judges), &key)?;
    if found == Some(run_id) {
        Ok(())
    } else {
        Err(EvalError::NotTheRun {
            run_id,
            model: identity.spec,
            task: task.name().to_string(),
        })
    }
}

/// Runs the documents `doc_ids` of a leased job of run `lease.run_id`: those
/// not stored ok yet are sent to `backend`, each sample written under the
/// lease. Ends the job (done, or failed with its first error), and when it was
/// the run's last open job and nothing failed, aggregates and finishes the run.
///
/// A lease lost on the way (it lapsed and another worker took the job, or the
/// job was cancelled) stops the work with `StoreError::LeaseLost` before any
/// further write.
pub async fn run_job(
    store: &mut Store,
    backend: &dyn Backend,
    task: &Task,
    options: &EvalOptions,
    lease: &Lease,
    doc_ids: &[u64],
    progress: &dyn Progress,
) -> Result<JobReport, EvalError> {
    check_run(store, backend, task, options, lease.run_id)?;
    let instances = build(backend, task, options)?;
    let wanted: HashSet<u64> = doc_ids.iter().copied().collect();
    let known: HashSet<u64> = instances.iter().map(|i| i.doc_id as u64).collect();
    if let Some(missing) = doc_ids.iter().find(|d| !known.contains(d)) {
        return Err(EvalError::Task(podium_tasks::TaskError::Task {
            task: task.name().to_string(),
            message: format!(
                "job {} names doc {missing}, which the task does not have",
                lease.job_id
            ),
        }));
    }
    let done = store.completed_doc_ids(lease.run_id)?;
    let pending: Vec<&Instance> = instances
        .iter()
        .filter(|i| wanted.contains(&(i.doc_id as u64)) && !done.contains(&(i.doc_id as u64)))
        .collect();
    progress.task_started(task.name(), wanted.len(), wanted.len() - pending.len());
    let written = run_docs(
        store,
        backend,
        task,
        options,
        lease.run_id,
        Some(lease),
        &pending,
        progress,
    )
    .await?;
    progress.task_finished(task.name());
    let n_stored = wanted.len() - written.n_failed;
    let run_jobs = store.finish_job(
        lease,
        n_stored as u64,
        written.n_failed as u64,
        written.first_error.as_deref(),
    )?;
    let run_finished = if run_jobs.open == 0 && run_jobs.failed == 0 {
        finish_with(store, task, options, lease.run_id, &instances)?
    } else {
        None
    };
    Ok(JobReport {
        n_stored,
        n_failed: written.n_failed,
        first_error: written.first_error,
        run_finished,
    })
}

/// Aggregates and finishes a queued run whose jobs are all done (its last
/// worker died before doing so); `None` while documents are missing or failed.
pub fn finish_queued_run(
    store: &mut Store,
    backend: &dyn Backend,
    task: &Task,
    options: &EvalOptions,
    run_id: i64,
) -> Result<Option<TaskOutcome>, EvalError> {
    check_run(store, backend, task, options, run_id)?;
    let instances = build(backend, task, options)?;
    finish_with(store, task, options, run_id, &instances)
}

fn finish_with(
    store: &mut Store,
    task: &Task,
    options: &EvalOptions,
    run_id: i64,
    instances: &[Instance],
) -> Result<Option<TaskOutcome>, EvalError> {
    let n_shots = options.num_fewshot.unwrap_or(task.config.num_fewshot);
    let outcome = aggregate_run(store, run_id, task, instances, options, n_shots)?;
    let complete = outcome.n_failed == 0 && outcome.result.n_samples == instances.len();
    Ok(complete.then_some(outcome))
}
