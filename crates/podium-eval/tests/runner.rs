//! The runner on its own, with a scripted backend: batches of `batch_size`
//! docs, an interrupted run resumed without sending a stored doc again, scores
//! aggregated from the stored samples, and a finished run answered from the
//! store without a request.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use podium_core::{
    Backend, BackendError, GenerateRequest, GenerateResult, LoglikelihoodRequest,
    LoglikelihoodResult, ModelIdentity, RollingRequest, RollingResult,
};
use podium_eval::{EvalError, EvalOptions, NoProgress, evaluate};
use podium_store::Store;
use podium_tasks::{Registry, Selection, Task};

/// Prefers choice "b" for docs whose text holds "even", choice "a" otherwise;
/// records the size of every batch; fails the whole call number
/// `fail_on_call` (1-based) as a broken backend would.
struct Scripted {
    batches: Mutex<Vec<usize>>,
    calls: AtomicUsize,
    fail_on_call: usize,
}

impl Scripted {
    fn new(fail_on_call: usize) -> Scripted {
        Scripted {
            batches: Mutex::new(Vec::new()),
            calls: AtomicUsize::new(0),
            fail_on_call,
        }
    }

    fn batches(&self) -> Vec<usize> {
        self.batches.lock().unwrap().clone()
    }
}

#[async_trait]
impl Backend for Scripted {
    fn identity(&self) -> ModelIdentity {
        ModelIdentity {
            spec: "scripted".into(),
            fingerprint: "scripted".into(),
            chat_template_hash: None,
        }
    }

    async fn loglikelihood(
        &self,
        requests: &[LoglikelihoodRequest],
    ) -> Result<Vec<Result<Vec<LoglikelihoodResult>, BackendError>>, BackendError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if call == self.fail_on_call {
            return Err(BackendError::Fatal("the model thread died".into()));
        }
        self.batches.lock().unwrap().push(requests.len());
        Ok(requests
            .iter()
            .map(|request| {
                let prefer_b = request.context.contains("even");
                Ok((0..request.continuations.len())
                    .map(|i| LoglikelihoodResult {
                        logprob: if (i == 1) == prefer_b { -1.0 } else { -2.0 },
                        is_greedy: false,
                        n_tokens: 1,
                    })
                    .collect())
            })
            .collect())
    }

    async fn loglikelihood_rolling(
        &self,
        _: &[RollingRequest],
    ) -> Result<Vec<Result<RollingResult, BackendError>>, BackendError> {
        Err(BackendError::Unsupported("not in this test".into()))
    }

    async fn generate_until(
        &self,
        _: &[GenerateRequest],
    ) -> Result<Vec<Result<GenerateResult, BackendError>>, BackendError> {
        Err(BackendError::Unsupported("not in this test".into()))
    }
}

/// A two-choice task of 10 docs; the gold is always "b", so a doc is correct
/// exactly when its text holds "even" (docs 0, 2, 4, 6, 8).
fn write_task(dir: &Path) {
    std::fs::write(
        dir.join("mc.yaml"),
        "task: mc\n\
         dataset_path: json\n\
         dataset_kwargs:\n  data_files:\n    test: data.jsonl\n\
         test_split: test\n\
         output_type: multiple_choice\n\
         doc_to_text: \"{{q}}\"\n\
         doc_to_choice: [\"a\", \"b\"]\n\
         doc_to_target: 1\n",
    )
    .unwrap();
    let docs: String = (0..10)
        .map(|i| {
            let parity = if i % 2 == 0 { "even" } else { "odd" };
            format!("{{\"q\": \"question {i}, {parity}\"}}\n")
        })
        .collect();
    std::fs::write(dir.join("data.jsonl"), docs).unwrap();
}

struct Setup {
    dir: tempfile::TempDir,
    tasks: Vec<Task>,
    selections: Vec<Selection>,
    runtime: tokio::runtime::Runtime,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    write_task(dir.path());
    let mut registry = Registry::discover(&[dir.path().to_path_buf()]);
    let selections = registry.resolve(&["mc".to_string()]).unwrap();
    let task = Task::load(registry.task_config("mc").unwrap().clone()).unwrap();
    Setup {
        dir,
        tasks: vec![task],
        selections,
        runtime: tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap(),
    }
}

impl Setup {
    fn store(&self) -> Store {
        Store::open(&self.dir.path().join("podium.db")).unwrap()
    }

    fn run(
        &self,
        store: &mut Store,
        backend: &Scripted,
        batch_size: usize,
    ) -> Result<podium_eval::EvalReport, EvalError> {
        let options = EvalOptions {
            batch_size,
            ..EvalOptions::default()
        };
        self.runtime.block_on(evaluate(
            store,
            backend,
            &self.tasks,
            &self.selections,
            &options,
            &NoProgress,
        ))
    }
}

#[test]
fn docs_go_to_the_backend_in_batches_of_batch_size() {
    let setup = setup();
    let mut store = setup.store();
    let backend = Scripted::new(0);
    let report = setup.run(&mut store, &backend, 3).unwrap();
    assert_eq!(backend.batches(), [3, 3, 3, 1]);
    let outcome = &report.tasks[0];
    assert_eq!((outcome.n_failed, outcome.n_resumed), (0, 0));
    assert_eq!(outcome.result.n_samples, 10);
}

#[test]
fn an_interrupted_run_resumes_without_sending_a_stored_doc_again() {
    let setup = setup();
    let mut store = setup.store();
    // The second batch fails as a dead model thread would: the run stops.
    let broken = Scripted::new(2);
    let err = setup.run(&mut store, &broken, 4).unwrap_err();
    assert!(err.to_string().contains("the model thread died"), "{err}");
    let runs = store.list_runs().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].n_samples, 4, "the first batch was stored");

    let healthy = Scripted::new(0);
    let report = setup.run(&mut store, &healthy, 4).unwrap();
    let outcome = &report.tasks[0];
    assert_eq!(outcome.n_resumed, 4);
    assert_eq!(healthy.batches().iter().sum::<usize>(), 6, "only the rest");
    assert_eq!(outcome.result.n_samples, 10);
    // The same run, not a second one.
    assert_eq!(store.list_runs().unwrap().len(), 1);
}

#[test]
fn scores_come_from_the_stored_samples_and_a_finished_run_sends_nothing() {
    let setup = setup();
    let mut store = setup.store();
    let first = setup.run(&mut store, &Scripted::new(0), 16).unwrap();
    let outcome = &first.tasks[0];
    // Docs 0, 2, 4, 6, 8 are right: acc 0.5, from the stored per-sample scores.
    let acc = outcome.result.primary().unwrap();
    assert_eq!(acc.key, "acc,none");
    assert_eq!(acc.value, 0.5);
    let stored: Vec<f64> = store
        .samples(outcome.run_id)
        .unwrap()
        .iter()
        .map(|s| {
            let metrics: serde_json::Value = serde_json::from_str(&s.metrics_json).unwrap();
            metrics["metrics"]["acc,none"].as_f64().unwrap()
        })
        .collect();
    assert_eq!(stored.len(), 10);
    assert_eq!(stored.iter().sum::<f64>() / 10.0, acc.value);
    for (doc, value) in stored.iter().enumerate() {
        assert_eq!(*value, if doc % 2 == 0 { 1.0 } else { 0.0 }, "doc {doc}");
    }

    // Run again: everything is stored, nothing is sent, the numbers agree.
    let idle = Scripted::new(0);
    let second = setup.run(&mut store, &idle, 16).unwrap();
    assert!(idle.batches().is_empty(), "{:?}", idle.batches());
    assert_eq!(second.tasks[0].result.metrics, outcome.result.metrics);
}
