//! Task and group results, and their export in lm-evaluation-harness's
//! results-JSON layout (`results`, `groups`, `versions`, `n-shot`, `configs`,
//! `n-samples`, `acc,none` / `acc_stderr,none` keys).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

use crate::metrics::{self, SampleValue};
use crate::registry::Selection;
use crate::task::Task;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricResult {
    /// `metric,filter`, e.g. `acc,none` or `exact_match,strict-match`.
    pub key: String,
    pub value: f64,
    pub stderr: Option<f64>,
    pub higher_is_better: bool,
}

impl MetricResult {
    pub fn metric(&self) -> &str {
        self.key.split(',').next().unwrap_or(&self.key)
    }

    pub fn filter(&self) -> &str {
        self.key.split_once(',').map_or("none", |(_, f)| f)
    }

    /// 95% interval: mean ± 1.96 · stderr.
    pub fn ci95(&self) -> Option<(f64, f64)> {
        self.stderr
            .map(|se| (self.value - 1.96 * se, self.value + 1.96 * se))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskResult {
    pub name: String,
    pub alias: Option<String>,
    pub metrics: Vec<MetricResult>,
    /// Docs scored (after --limit), and docs in the evaluation split.
    pub n_samples: usize,
    pub n_original: usize,
    pub n_shot: usize,
    /// Chance level of the task's primary metric (normalized score).
    pub random_baseline: f64,
    pub version: Json,
    pub config: Json,
    pub content_hash: String,
}

impl TaskResult {
    /// The metric shown first: the first metric of the first filter.
    pub fn primary(&self) -> Option<&MetricResult> {
        self.metrics.first()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupResult {
    pub name: String,
    pub subtasks: Vec<String>,
    pub metrics: Vec<MetricResult>,
    pub n_samples: usize,
}

/// Aggregate per-sample scores of one task. Samples lacking a key (a failed
/// doc) do not count toward that key.
pub fn aggregate_task(
    task: &Task,
    samples: &[BTreeMap<String, SampleValue>],
    n_shot: usize,
    random_baseline: f64,
    bootstrap_iters: usize,
    seed: u64,
) -> TaskResult {
    let metrics = task
        .metric_keys()
        .into_iter()
        .map(|(key, name, higher_is_better)| {
            let values: Vec<SampleValue> = samples
                .iter()
                .filter_map(|s| s.get(&key).copied())
                .collect();
            let aggregated = metrics::aggregate(name.aggregation(), &values, bootstrap_iters, seed);
            MetricResult {
                key,
                value: aggregated.value,
                stderr: aggregated.stderr,
                higher_is_better,
            }
        })
        .collect();
    TaskResult {
        name: task.config.name.clone(),
        alias: task.config.alias.clone(),
        metrics,
        n_samples: samples.len(),
        n_original: task.n_original_docs,
        n_shot,
        random_baseline,
        version: task.config.version.clone(),
        config: task.config.raw.clone(),
        content_hash: task.content_hash.clone(),
    }
}

/// Aggregate every group of the selections, as lm-evaluation-harness does
/// (`lm_eval/api/group.py`, `Group.aggregate`): a group's value is the
/// size-weighted (or plain) mean over all the *leaf tasks* under it, however
/// deeply nested, with the pooled standard error of those leaf tasks; it is
/// not computed from its subgroups' aggregates. (For a size-weighted mean the
/// value is the same either way, but the pooled stderr is not, and a plain
/// mean differs in value too.)
pub fn aggregate_groups(
    selections: &[Selection],
    tasks: &BTreeMap<String, TaskResult>,
) -> Vec<GroupResult> {
    let mut groups = Vec::new();
    for selection in selections {
        aggregate_group(selection, tasks, &mut groups);
    }
    groups
}

/// Pushes the results of this selection's groups (subgroups first) to `out`.
fn aggregate_group(
    selection: &Selection,
    tasks: &BTreeMap<String, TaskResult>,
    out: &mut Vec<GroupResult>,
) {
    let Selection::Group {
        name,
        members,
        aggregate,
    } = selection
    else {
        return;
    };
    for member in members {
        aggregate_group(member, tasks, out);
    }
    let mut leaf_names = Vec::new();
    selection.task_names(&mut leaf_names);
    let leaves: Vec<&TaskResult> = leaf_names.iter().filter_map(|t| tasks.get(t)).collect();
    let mut metrics = Vec::new();
    for spec in aggregate {
        for filter in &spec.filter_list {
            let key = format!("{},{filter}", spec.metric);
            let found: Vec<(&MetricResult, usize)> = leaves
                .iter()
                .filter_map(|t| {
                    t.metrics
                        .iter()
                        .find(|m| m.key == key)
                        .map(|m| (m, t.n_samples))
                })
                .collect();
            if found.is_empty() {
                continue;
            }
            let subtasks: Vec<podium_stats::SubtaskResult> = found
                .iter()
                .map(|(m, n)| podium_stats::SubtaskResult {
                    value: m.value,
                    stderr: m.stderr,
                    n_samples: *n,
                })
                .collect();
            let weighting = if spec.weight_by_size {
                podium_stats::GroupWeighting::BySize
            } else {
                podium_stats::GroupWeighting::Equal
            };
            let (value, stderr) = match podium_stats::aggregate_group(&subtasks, weighting) {
                Ok(aggregate) => (aggregate.value, aggregate.stderr),
                // A pooled stderr needs more than one sample per subtask.
                Err(_) => (
                    podium_stats::aggregate_subtask_metrics(
                        &subtasks.iter().map(|s| s.value).collect::<Vec<_>>(),
                        &subtasks.iter().map(|s| s.n_samples).collect::<Vec<_>>(),
                        weighting,
                    )
                    .unwrap_or(f64::NAN),
                    None,
                ),
            };
            metrics.push(MetricResult {
                key,
                value,
                stderr,
                higher_is_better: found[0].0.higher_is_better,
            });
        }
    }
    if aggregate.is_empty() {
        return;
    }
    let subtasks = members
        .iter()
        .map(|member| match member {
            Selection::Task(t) => t.clone(),
            Selection::Group { name, .. } => name.clone(),
        })
        .collect();
    out.push(GroupResult {
        name: name.clone(),
        subtasks,
        metrics,
        n_samples: leaves.iter().map(|t| t.n_samples).sum(),
    });
}

fn metric_entries(alias: &str, metrics: &[MetricResult]) -> serde_json::Map<String, Json> {
    let mut entry = serde_json::Map::new();
    entry.insert("alias".into(), json!(alias));
    for m in metrics {
        entry.insert(m.key.clone(), json!(m.value));
        let stderr_key = format!("{}_stderr,{}", m.metric(), m.filter());
        entry.insert(
            stderr_key,
            match m.stderr {
                Some(se) => json!(se),
                None => json!("N/A"),
            },
        );
    }
    entry
}

/// The whole run as lm-evaluation-harness's results JSON, plus a `podium`
/// section with what makes it reproducible.
pub fn lm_eval_json(
    tasks: &[TaskResult],
    groups: &[GroupResult],
    model_spec: &str,
    podium: Json,
) -> Json {
    let mut results = serde_json::Map::new();
    let mut versions = serde_json::Map::new();
    let mut n_shot = serde_json::Map::new();
    let mut configs = serde_json::Map::new();
    let mut n_samples = serde_json::Map::new();
    let mut higher_is_better = serde_json::Map::new();
    for task in tasks {
        results.insert(
            task.name.clone(),
            Json::Object(metric_entries(
                task.alias.as_deref().unwrap_or(&task.name),
                &task.metrics,
            )),
        );
        versions.insert(task.name.clone(), task.version.clone());
        n_shot.insert(task.name.clone(), json!(task.n_shot));
        configs.insert(task.name.clone(), task.config.clone());
        n_samples.insert(
            task.name.clone(),
            json!({"original": task.n_original, "effective": task.n_samples}),
        );
        higher_is_better.insert(
            task.name.clone(),
            Json::Object(
                task.metrics
                    .iter()
                    .map(|m| (m.metric().to_string(), json!(m.higher_is_better)))
                    .collect(),
            ),
        );
    }
    let mut group_entries = serde_json::Map::new();
    let mut group_subtasks = serde_json::Map::new();
    for group in groups {
        let entry = Json::Object(metric_entries(&group.name, &group.metrics));
        results.insert(group.name.clone(), entry.clone());
        group_entries.insert(group.name.clone(), entry);
        group_subtasks.insert(group.name.clone(), json!(group.subtasks));
    }
    json!({
        "results": results,
        "groups": group_entries,
        "group_subtasks": group_subtasks,
        "configs": configs,
        "versions": versions,
        "n-shot": n_shot,
        "higher_is_better": higher_is_better,
        "n-samples": n_samples,
        "config": {"model": model_spec},
        "podium": podium,
    })
}
