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
    /// Values aggregated: the samples that have this metric (a failed doc has none).
    /// For a group, the sum over its leaf tasks. 0 in results stored before Podium
    /// kept it.
    #[serde(default)]
    pub n: usize,
    /// The 95% interval of METRICS.md, formed at aggregation (see [`interval_of_mean`]
    /// and [`aggregate_groups`]); `None` where it is undefined or, in results stored
    /// before Podium kept it, where [`MetricResult::ci95`] falls back to mean ± 1.96 ·
    /// stderr.
    #[serde(default)]
    pub interval: Option<(f64, f64)>,
    /// Every value lies in [0, 1] (accuracies, match rates, probabilities), so the
    /// interval is on a scale of 100 points and can be judged by its width.
    #[serde(default)]
    pub unit_range: bool,
    /// Every value is 0 or 1: the value is a proportion, with Wilson's interval.
    #[serde(default)]
    pub proportion: bool,
}

/// Half-width above which an interval on the [0, 1] scale is marked low-confidence:
/// ±15 points.
pub const LOW_CONFIDENCE_HALF_WIDTH: f64 = 0.15;

impl MetricResult {
    pub fn metric(&self) -> &str {
        self.key.split(',').next().unwrap_or(&self.key)
    }

    pub fn filter(&self) -> &str {
        self.key.split_once(',').map_or("none", |(_, f)| f)
    }

    /// The 95% interval (METRICS.md): the Wilson score interval for a proportion, mean ±
    /// 1.96 · stderr (kept inside [0, 1] for values in that range) for other means and
    /// for groups, as formed at aggregation.
    pub fn ci95(&self) -> Option<(f64, f64)> {
        self.interval.or_else(|| {
            self.stderr
                .map(|se| podium_stats::ci95_mean(self.value, se))
        })
    }

    /// Half of the interval's width, where it exists.
    pub fn half_width(&self) -> Option<f64> {
        self.ci95().map(|(lo, hi)| (hi - lo) / 2.0)
    }

    /// An interval on the [0, 1] scale wider than ±15 points: too few samples for the
    /// number to rank models by.
    pub fn low_confidence(&self) -> bool {
        self.unit_range
            && self
                .half_width()
                .is_some_and(|h| h > LOW_CONFIDENCE_HALF_WIDTH)
    }
}

/// The interval of a mean of `values` (METRICS.md): Wilson's when every value is 0 or 1
/// (the mean is a proportion), else mean ± 1.96 · stderr, clipped to [0, 1] when every
/// value lies in it.
pub fn interval_of_mean(values: &[f64], mean: f64, stderr: Option<f64>) -> MeanInterval {
    if values.is_empty() || !mean.is_finite() {
        return MeanInterval::default();
    }
    let unit_range = values.iter().all(|v| (0.0..=1.0).contains(v));
    if values.iter().all(|&v| v == 0.0 || v == 1.0) {
        return MeanInterval {
            interval: podium_stats::wilson_interval(mean, values.len()),
            unit_range: true,
            proportion: true,
        };
    }
    MeanInterval {
        interval: stderr.map(|se| normal_interval(mean, se, unit_range)),
        unit_range,
        proportion: false,
    }
}

/// The interval of a ratio of sums (METRICS.md, IFEval's instruction-level
/// accuracy): Wilson's at the effective sample size of the clustered items when
/// every item is a 0/1 value (each numerator between 0 and its weight).
fn interval_of_ratio(values: &[SampleValue]) -> MeanInterval {
    let pairs = metrics::ratio_pairs(values);
    let unit_range = !pairs.is_empty() && pairs.iter().all(|&(x, n)| (0.0..=n).contains(&x));
    let Ok(ratio) = podium_stats::ratio_of_sums(&pairs) else {
        return MeanInterval::default();
    };
    MeanInterval {
        interval: if unit_range {
            ratio.wilson_interval()
        } else {
            ratio
                .stderr
                .map(|se| normal_interval(ratio.value, se, false))
        },
        unit_range,
        proportion: false,
    }
}

/// What [`interval_of_mean`] finds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MeanInterval {
    pub interval: Option<(f64, f64)>,
    /// Every value lies in [0, 1].
    pub unit_range: bool,
    /// Every value is 0 or 1.
    pub proportion: bool,
}

/// mean ± 1.96 · stderr, clipped to [0, 1] when the values lie in it.
fn normal_interval(mean: f64, stderr: f64, unit_range: bool) -> (f64, f64) {
    let (lo, hi) = podium_stats::ci95_mean(mean, stderr);
    if unit_range {
        (lo.max(0.0), hi.min(1.0))
    } else {
        (lo, hi)
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
    /// The judge models' work, for tasks with judge metrics (filled by the runner).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub judges: Vec<crate::judge::JudgeSummary>,
    /// Per-category scores (`metadata.doc_to_category`): each metric with its
    /// stderr and interval over that category's samples, by category name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<CategoryResult>,
}

/// One category's scores within a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryResult {
    pub name: String,
    pub metrics: Vec<MetricResult>,
    pub n_samples: usize,
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
    TaskResult {
        name: task.config.name.clone(),
        alias: task.config.alias.clone(),
        metrics: metric_results(task, samples, bootstrap_iters, seed),
        n_samples: samples.len(),
        n_original: task.n_original_docs,
        n_shot,
        random_baseline,
        version: task.config.version.clone(),
        config: task.config.raw.clone(),
        content_hash: task.content_hash.clone(),
        judges: Vec::new(),
        categories: Vec::new(),
    }
}

/// Per-category results of one task's samples, given with their doc ids; empty
/// when the task has no `metadata.doc_to_category`. Categories in name order,
/// each aggregated like the task (the same stderr and interval rules).
pub fn aggregate_categories(
    task: &Task,
    samples: &[(usize, BTreeMap<String, SampleValue>)],
    bootstrap_iters: usize,
    seed: u64,
) -> Vec<CategoryResult> {
    if task.config.doc_to_category.is_none() {
        return Vec::new();
    }
    let mut by_category: BTreeMap<String, Vec<BTreeMap<String, SampleValue>>> = BTreeMap::new();
    for (doc_id, metrics) in samples {
        if let Some(category) = task.category(*doc_id) {
            by_category
                .entry(category)
                .or_default()
                .push(metrics.clone());
        }
    }
    by_category
        .into_iter()
        .map(|(name, samples)| CategoryResult {
            metrics: metric_results(task, &samples, bootstrap_iters, seed),
            n_samples: samples.len(),
            name,
        })
        .collect()
}

fn metric_results(
    task: &Task,
    samples: &[BTreeMap<String, SampleValue>],
    bootstrap_iters: usize,
    seed: u64,
) -> Vec<MetricResult> {
    task.metric_keys()
        .into_iter()
        .map(|(key, name, higher_is_better)| {
            let values: Vec<SampleValue> = samples
                .iter()
                .filter_map(|s| s.get(&key).cloned())
                .collect();
            let aggregation = name.aggregation();
            let aggregated = metrics::aggregate(aggregation, &values, bootstrap_iters, seed);
            let found = match aggregation {
                metrics::Aggregation::Mean => {
                    let scalars: Vec<f64> = values.iter().map(|v| v.scalar()).collect();
                    interval_of_mean(&scalars, aggregated.value, aggregated.stderr)
                }
                // Corpus scores (BLEU, chrF, 0–100): the bootstrap's percentile interval.
                metrics::Aggregation::CorpusBleu | metrics::Aggregation::CorpusChrf => {
                    MeanInterval {
                        interval: aggregated.interval,
                        unit_range: false,
                        proportion: false,
                    }
                }
                metrics::Aggregation::RatioOfSums => interval_of_ratio(&values),
                _ => MeanInterval::default(),
            };
            MetricResult {
                key,
                value: aggregated.value,
                stderr: aggregated.stderr,
                higher_is_better,
                n: values.len(),
                interval: found.interval,
                unit_range: found.unit_range,
                proportion: found.proportion,
            }
        })
        .collect()
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
            // The interval (METRICS.md, groups): a size-weighted mean of proportions is
            // itself the proportion of all the leaves' docs, so it gets Wilson's interval
            // over their total; any other group gets value ± 1.96 · pooled stderr, kept
            // inside [0, 1] when every leaf's values are.
            let n_total: usize = found.iter().map(|(m, _)| m.n).sum();
            let unit_range = found.iter().all(|(m, _)| m.unit_range);
            let proportion =
                spec.weight_by_size && found.iter().all(|(m, _)| m.proportion && m.n > 0);
            let interval = if !value.is_finite() {
                None
            } else if proportion {
                podium_stats::wilson_interval(value, n_total)
            } else {
                stderr.map(|se| normal_interval(value, se, unit_range))
            };
            metrics.push(MetricResult {
                key,
                value,
                stderr,
                higher_is_better: found[0].0.higher_is_better,
                n: n_total,
                interval,
                unit_range,
                proportion,
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

/// Each metric's 95% interval, its sample count and how the interval is formed, for
/// the `podium` section (lm-evaluation-harness's own keys stay exactly its own).
fn interval_entries(metrics: &[MetricResult]) -> Json {
    Json::Object(
        metrics
            .iter()
            .map(|m| {
                let entry = json!({
                    "ci95": m.ci95().map(|(lo, hi)| [lo, hi]),
                    "n": m.n,
                    "method": match (m.interval, m.proportion) {
                        (Some(_), true) => "wilson",
                        (Some(_), false) if m.unit_range => "normal, clipped to [0, 1]",
                        _ => "normal",
                    },
                    "low_confidence": m.low_confidence(),
                });
                (m.key.clone(), entry)
            })
            .collect(),
    )
}

/// The whole run as lm-evaluation-harness's results JSON, plus a `podium`
/// section with what makes it reproducible and each metric's 95% interval
/// (`podium.intervals`).
pub fn lm_eval_json(
    tasks: &[TaskResult],
    groups: &[GroupResult],
    model_spec: &str,
    mut podium: Json,
) -> Json {
    if let Json::Object(section) = &mut podium {
        let intervals: serde_json::Map<String, Json> = tasks
            .iter()
            .map(|t| (t.name.clone(), interval_entries(&t.metrics)))
            .chain(
                groups
                    .iter()
                    .map(|g| (g.name.clone(), interval_entries(&g.metrics))),
            )
            .collect();
        section.insert("intervals".into(), Json::Object(intervals));
        let judges: serde_json::Map<String, Json> = tasks
            .iter()
            .filter(|t| !t.judges.is_empty())
            .map(|t| (t.name.clone(), json!(t.judges)))
            .collect();
        if !judges.is_empty() {
            section.insert("judges".into(), Json::Object(judges));
        }
        let categories: serde_json::Map<String, Json> = tasks
            .iter()
            .filter(|t| !t.categories.is_empty())
            .map(|t| {
                let entries: serde_json::Map<String, Json> = t
                    .categories
                    .iter()
                    .map(|c| {
                        let mut entry = metric_entries(&c.name, &c.metrics);
                        entry.remove("alias");
                        entry.insert("n".into(), json!(c.n_samples));
                        entry.insert("intervals".into(), interval_entries(&c.metrics));
                        (c.name.clone(), Json::Object(entry))
                    })
                    .collect();
                (t.name.clone(), Json::Object(entries))
            })
            .collect();
        if !categories.is_empty() {
            section.insert("categories".into(), Json::Object(categories));
        }
    }
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
