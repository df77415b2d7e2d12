//! The `judge` metric's side of a run (METRICS.md, "Judge metric"): which
//! backend judges each `metric: judge` entry, the judge's part of a run's
//! identity, and grading a batch of scored answers.
//!
//! The grading prompt and the verdict parser are podium-tasks' (`judge`); this
//! module only calls the judge model. A judge's requests are greedy
//! (temperature 0), so the response cache answers a rerun, and its tokens are
//! stored with its verdict, apart from the candidate's.

use std::collections::BTreeMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use podium_core::{Backend, BackendError, ChatMessage, GenerateRequest};
use podium_tasks::judge::{self, JudgeMetric, Judgement};
use podium_tasks::metrics::SampleValue;
use podium_tasks::{Instance, SampleScores, Target, Task, TaskError};

/// The judge models of a run: `--judge` for every judge metric, else the
/// backend opened for the metric's own `model:`.
#[derive(Clone, Default)]
pub struct Judges {
    /// The judge given on the command line; it wins over the tasks' `model:`.
    pub chosen: Option<Arc<dyn Backend>>,
    /// Backends by the spec written in a task's `model:`.
    pub by_spec: BTreeMap<String, Arc<dyn Backend>>,
}

impl std::fmt::Debug for Judges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Judges")
            .field("chosen", &self.chosen.as_ref().map(|b| b.identity().spec))
            .field("by_spec", &self.by_spec.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Judges {
    /// The backend that judges `metric`, or why there is none.
    pub fn resolve(&self, task: &str, metric: &JudgeMetric) -> Result<&dyn Backend, TaskError> {
        if let Some(chosen) = &self.chosen {
            return Ok(chosen.as_ref());
        }
        match &metric.model {
            Some(spec) => {
                self.by_spec
                    .get(spec)
                    .map(|b| b.as_ref())
                    .ok_or_else(|| TaskError::Task {
                        task: task.to_string(),
                        message: format!(
                            "judge model `{spec}` of metric `{}` is not open",
                            metric.name
                        ),
                    })
            }
            None => Err(TaskError::Task {
                task: task.to_string(),
                message: format!(
                    "metric `{}` needs a judge model: pass `--judge SPEC` (e.g. `--judge openai:gpt-4o-mini`) or set `model:` in its `metric_list` entry",
                    metric.name
                ),
            }),
        }
    }

    /// Every judge metric of `task` with its backend.
    pub fn for_task<'a>(
        &'a self,
        task: &'a Task,
    ) -> Result<Vec<(&'a JudgeMetric, &'a dyn Backend)>, TaskError> {
        task.config
            .judges
            .iter()
            .map(|metric| Ok((metric, self.resolve(task.name(), metric)?)))
            .collect()
    }
}

/// The task's identity in a run: its content hash, and for a task with judge
/// metrics also each judge's spec and fingerprint, so that a run graded by
/// one judge never resumes samples graded by another.
pub fn run_task_hash(task: &Task, judges: &[(&JudgeMetric, &dyn Backend)]) -> String {
    if judges.is_empty() {
        return task.content_hash.clone();
    }
    let mut hasher = Sha256::new();
    hasher.update(task.content_hash.as_bytes());
    for (metric, backend) in judges {
        let identity = backend.identity();
        for part in [
            "judge",
            metric.name.as_str(),
            identity.spec.as_str(),
            identity.fingerprint.as_str(),
        ] {
            hasher.update([0u8]);
            hasher.update(part.as_bytes());
        }
    }
    podium_core::hex(&hasher.finalize())
}

/// One answer to grade: the sample's scores, which receive the verdicts.
pub(crate) struct ToJudge<'a> {
    pub instance: &'a Instance,
    pub scores: &'a mut SampleScores,
    /// Set when a judge request for this answer failed: the sample fails.
    pub error: Option<String>,
}

/// Grade every answer of a batch with every judge metric of the task. A
/// judge's failed request fails its sample (stored as failed, retried by the
/// next run); an unparseable verdict is recorded with the sample and leaves
/// the metric without a value for it. An error of the whole call stops the run.
pub(crate) async fn judge_batch(
    task: &Task,
    judges: &[(&JudgeMetric, &dyn Backend)],
    items: &mut [ToJudge<'_>],
) -> Result<(), BackendError> {
    let filter = task.judged_filter().to_string();
    for (metric, backend) in judges {
        let judge_spec = backend.identity().spec;
        let key = format!("{},{filter}", metric.name);
        let mut prompts = Vec::with_capacity(items.len());
        let mut requests = Vec::with_capacity(items.len());
        let mut which = Vec::with_capacity(items.len());
        for (i, item) in items.iter_mut().enumerate() {
            if item.error.is_some() {
                continue;
            }
            let question = match task.question(item.instance.doc_id) {
                Ok(question) => question,
                Err(err) => {
                    item.error = Some(format!("judge `{judge_spec}`: {err}"));
                    continue;
                }
            };
            let answer = item
                .scores
                .filtered
                .get(&filter)
                .and_then(|answers| answers.first())
                .cloned()
                .unwrap_or_default();
            let reference = match &item.instance.target {
                Target::Texts { golds, .. } => golds.first().map(String::as_str),
                _ => None,
            };
            let prompt = metric.render(&question, &answer, reference);
            let context = match chat_prompt(*backend, &prompt) {
                Ok(context) => context,
                Err(err) => {
                    item.error = Some(format!("judge `{judge_spec}`: {err}"));
                    continue;
                }
            };
            requests.push(GenerateRequest {
                context,
                until: Vec::new(),
                max_tokens: metric.max_tokens,
                temperature: 0.0,
                top_p: 1.0,
                do_sample: false,
                seed: 0,
                messages: None,
            });
            prompts.push(prompt);
            which.push(i);
        }
        if requests.is_empty() {
            continue;
        }
        let prefix = |message: String| format!("judge `{judge_spec}`: {message}");
        let results = backend
            .generate_until(&requests)
            .await
            .map_err(|err| match err {
                BackendError::Unsupported(m) => BackendError::Unsupported(prefix(m)),
                BackendError::Request(m) => BackendError::Request(prefix(m)),
                BackendError::Fatal(m) => BackendError::Fatal(prefix(m)),
            })?;
        if results.len() != requests.len() {
            return Err(BackendError::Fatal(format!(
                "the judge `{judge_spec}` answered {} of {} requests",
                results.len(),
                requests.len()
            )));
        }
        for ((i, prompt), result) in which.into_iter().zip(prompts).zip(results) {
            let Some(item) = items.get_mut(i) else {
                continue;
            };
            match result {
                Err(err) => item.error = Some(format!("judge `{judge_spec}`: {err}")),
                Ok(result) => {
                    let output = judge::bounded_output(&result.text).to_string();
                    let verdict = metric.parse(&output);
                    match verdict {
                        Ok(value) => item.scores.insert_with_reason(
                            key.clone(),
                            SampleValue::Scalar(value),
                            verdict_reason(metric, value),
                        ),
                        Err(why) => {
                            item.scores
                                .reasons
                                .insert(key.clone(), format!("no value: {why}"));
                        }
                    }
                    item.scores.judgements.insert(
                        metric.name.clone(),
                        Judgement {
                            judge: judge_spec.clone(),
                            prompt,
                            output,
                            value: verdict.ok(),
                            unparseable: verdict.err(),
                            n_input_tokens: result.n_input_tokens.map(|n| n as u64),
                            n_output_tokens: result.n_output_tokens.map(|n| n as u64),
                        },
                    );
                }
            }
        }
    }
    Ok(())
}

/// The reason stored beside a verdict's value.
fn verdict_reason(metric: &JudgeMetric, value: f64) -> String {
    match metric.scale {
        judge::JudgeScale::PassFail if value >= 1.0 => {
            "pass: the judge's verdict is [[PASS]]".into()
        }
        judge::JudgeScale::PassFail => "fail: the judge's verdict is [[FAIL]]".into(),
        judge::JudgeScale::Score10 => format!("the judge's rating is [[{value}]]"),
    }
}

/// `text` as the judge's user turn: through its chat template when it has
/// one; as it is otherwise (a chat API sends it as the user's message).
fn chat_prompt(backend: &dyn Backend, text: &str) -> Result<String, BackendError> {
    let messages = [ChatMessage {
        role: "user".into(),
        content: text.to_owned(),
    }];
    match backend.apply_chat_template(&messages, true) {
        Ok(prompt) => Ok(prompt),
        Err(BackendError::Unsupported(_)) => Ok(text.to_owned()),
        Err(error) => Err(error),
    }
}
