//! Regression: a NaN log-prob (a model file with a NaN `rms_norm_eps`) was
//! scored as `acc 1.0` whenever the gold was the first choice, because NaN
//! loses every comparison. A NaN or infinite log-prob must fail its sample,
//! which a later run of the same task then retries.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use podium_core::{
    Backend, BackendError, GenerateRequest, GenerateResult, LoglikelihoodRequest,
    LoglikelihoodResult, ModelIdentity, RollingRequest, RollingResult,
};
use podium_eval::{EvalOptions, NoProgress, evaluate};
use podium_store::{SampleStatus, Store};
use podium_tasks::{Registry, Task};

/// Scores choice 0 best; answers `bad_logprob` for every choice of the doc
/// whose context contains "poisoned" while `broken` is set.
struct Scripted {
    broken: AtomicBool,
    bad_logprob: f64,
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
        let broken = self.broken.load(Ordering::SeqCst);
        Ok(requests
            .iter()
            .map(|request| {
                Ok((0..request.continuations.len())
                    .map(|i| LoglikelihoodResult {
                        logprob: if broken && request.context.contains("poisoned") {
                            self.bad_logprob
                        } else {
                            -1.0 - i as f64
                        },
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
    std::fs::write(
        dir.join("data.jsonl"),
        "{\"q\": \"fine\"}\n{\"q\": \"poisoned\"}\n",
    )
    .unwrap();
}

fn check(bad_logprob: f64) {
    let dir = tempfile::tempdir().unwrap();
    write_task(dir.path());
    let mut registry = Registry::discover(&[dir.path().to_path_buf()]);
    let selections = registry.resolve(&["mc".to_string()]).unwrap();
    let task = Task::load(registry.task_config("mc").unwrap().clone()).unwrap();
    let tasks = [task];
    let mut store = Store::open(&dir.path().join("podium.db")).unwrap();
    let backend = Scripted {
        broken: AtomicBool::new(true),
        bad_logprob,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let options = EvalOptions::default();

    let report = runtime
        .block_on(evaluate(
            &mut store,
            &backend,
            &tasks,
            &selections,
            &options,
            &NoProgress,
        ))
        .unwrap();
    let outcome = &report.tasks[0];
    assert_eq!(outcome.n_failed, 1, "{bad_logprob}");
    let message = outcome.first_error.as_deref().unwrap();
    assert!(
        message.contains("doc 1") && message.contains("finite"),
        "{message}"
    );
    let samples = store.samples(outcome.run_id).unwrap();
    let poisoned = samples.iter().find(|s| s.doc_id == 1).unwrap();
    assert_eq!(poisoned.status, SampleStatus::Failed);
    // Only the good doc is scored: the gold is choice 1, the backend prefers
    // choice 0, so acc is 0 over one sample (not 0.5 over two).
    let acc = outcome.result.primary().unwrap();
    assert_eq!(outcome.result.n_samples, 1);
    assert_eq!(acc.value, 0.0);

    // The backend is fixed: the next run retries the failed doc only.
    backend.broken.store(false, Ordering::SeqCst);
    let report = runtime
        .block_on(evaluate(
            &mut store,
            &backend,
            &tasks,
            &selections,
            &options,
            &NoProgress,
        ))
        .unwrap();
    let outcome = &report.tasks[0];
    assert_eq!(outcome.n_failed, 0);
    assert_eq!(outcome.n_resumed, 1);
    assert_eq!(outcome.result.n_samples, 2);
}

#[test]
fn nan_logprob_fails_the_sample_and_is_retried() {
    check(f64::NAN);
}

#[test]
fn infinite_logprobs_fail_the_sample() {
    check(f64::INFINITY);
    check(f64::NEG_INFINITY);
}
