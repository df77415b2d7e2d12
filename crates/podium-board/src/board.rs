//! The leaderboard value: one row per model identity, one column per
//! comparable setting, ranks with ties, the average and its interval, speed
//! and cost. Computed from the store and the catalogue; every renderer (the
//! terminal table, the web pages, the JSON API) shows this value and nothing
//! else, so they cannot disagree.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use podium_models::Access;
use podium_store::{BoardRun, Store};
use podium_tasks::results::{MetricResult, TaskResult};
use serde::{Deserialize, Serialize};

use crate::catalog::{BoardCatalog, ModelInfo};
use crate::{BoardError, metric_choice};

/// One comparable setting: runs share a column only when every field here
/// is equal (the task's content hash covers its prompts, data and metrics).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Setting {
    pub task: String,
    pub content_hash: String,
    /// The board metric's key, e.g. `acc_norm,none`.
    pub metric: String,
    pub n_shots: u32,
    pub chat_template: bool,
    /// The doc set: `None` is every doc, `Some(n)` the first n (`--limit`).
    pub limit: Option<u64>,
    /// A category's sub-column of the task's column (`metadata.doc_to_category`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    /// Short, URL-safe and unique on this board: the task name, with the
    /// setting appended only where two columns share a task.
    pub id: String,
    /// What a header shows (the task name, plus what sets the column apart).
    pub label: String,
    pub setting: Setting,
    pub higher_is_better: bool,
    /// Every value lies in [0, 1]: shown in points (× 100).
    pub unit_range: bool,
    /// Chance level; `None` where the metric has no normalized score
    /// (perplexities, anything outside [0, 1]).
    pub random_baseline: Option<f64>,
    /// The task's tags and groups (e.g. `ai2_arc`, `mmlu_stem_tasks`).
    pub categories: Vec<String>,
    /// The task's documents in its evaluation split.
    pub n_docs_in_split: usize,
    /// Every value is 0 or 1 (accuracies): intervals are Wilson's.
    #[serde(default)]
    pub proportion: bool,
    /// For a group column (`mmlu`): its member tasks, each also a column.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
    /// For a category's sub-column: the id of its task's column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

/// One model's score in one column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub run_id: i64,
    pub value: f64,
    pub stderr: Option<f64>,
    /// The 95% interval of METRICS.md; `None` where undefined.
    pub ci95: Option<(f64, f64)>,
    pub n: usize,
    pub low_confidence: bool,
    /// `max(0, (raw − baseline) / (1 − baseline)) · 100`.
    pub normalized: Option<f64>,
    /// The normalized score's standard error: `100 · stderr / (1 − baseline)`.
    pub normalized_stderr: Option<f64>,
    /// 1 + the models whose interval lies entirely better than this one's.
    pub rank: usize,
    pub finished_at: String,
    /// For a group cell: the member runs it aggregates (`run_id` is the first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub member_runs: Vec<i64>,
}

/// The mean of normalized scores over the average's columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Average {
    pub value: f64,
    /// `sqrt(Σ se_i²) / k` over the k columns (docs are independent across tasks).
    pub stderr: Option<f64>,
    /// value ± 1.96 · stderr, clipped to [0, 100].
    pub ci95: Option<(f64, f64)>,
    pub rank: usize,
}

/// Output speed and time to first token from the model's latest `podium bench`
/// at the board's load level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Speed {
    pub load: String,
    /// Median output tokens per second.
    pub output_speed: Option<f64>,
    /// Median time to first token, seconds.
    pub ttft_s: Option<f64>,
    pub measured_at: String,
}

/// What the model's runs on this board cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    /// US dollars over the runs in this board's columns.
    pub usd: f64,
    pub per_1k_samples: Option<f64>,
    /// Some samples recorded no token counts: the cost is a lower bound.
    pub lower_bound: bool,
    /// Local model priced by the machine's hourly price.
    pub from_machine_hours: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRow {
    /// The store's model id: stable for this database, used in URLs.
    pub id: i64,
    pub spec: String,
    /// File hash (local) or endpoint and served model (remote).
    pub fingerprint: String,
    /// The catalogue's display name, else the spec; a short fingerprint is
    /// added where two identities share a spec.
    pub name: String,
    pub info: ModelInfo,
    /// Indexed like [`Leaderboard::columns`].
    pub cells: Vec<Option<Cell>>,
    /// `None` when the model lacks any of the average's columns.
    pub average: Option<Average>,
    pub speed: Option<Speed>,
    pub cost: Option<Cost>,
    pub last_run: String,
}

/// How to build the board.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoardOptions {
    /// Only runs finished at or before this RFC 3339 time.
    pub as_of: Option<String>,
    /// Column ids the average is taken over; `None` for every column with a
    /// normalized score.
    pub average_over: Option<Vec<String>>,
    /// The `podium bench` load level whose speed is shown.
    pub bench_load: String,
    /// US dollars per hour of the machine local models ran on.
    pub machine_price: Option<f64>,
    /// Groups whose members get one aggregated column (from the task
    /// registry); the default average counts a group once, not its members.
    #[serde(default)]
    pub groups: Vec<crate::GroupSpec>,
}

impl Default for BoardOptions {
    fn default() -> Self {
        BoardOptions {
            as_of: None,
            average_over: None,
            bench_load: "concurrency 1".into(),
            machine_price: None,
            groups: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Leaderboard {
    pub columns: Vec<Column>,
    /// Indexes into `columns` the average is taken over.
    pub average_columns: Vec<usize>,
    /// Sorted by average rank, then average, then name; models without an
    /// average last.
    pub models: Vec<ModelRow>,
    pub options: BoardOptions,
    /// Runs that could not be shown, each with the reason.
    pub skipped: Vec<String>,
}

impl Leaderboard {
    pub fn column(&self, id: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.id == id)
    }

    pub fn model(&self, id: i64) -> Option<&ModelRow> {
        self.models.iter().find(|m| m.id == id)
    }

    /// Build the board from the store.
    pub fn build(
        store: &Store,
        catalog: &BoardCatalog,
        options: BoardOptions,
    ) -> Result<Leaderboard, BoardError> {
        let runs = store.board_runs(options.as_of.as_deref())?;
        let bench = store.latest_bench_results()?;
        // What the cost of a local model needs of its runs, kept before the
        // runs move into the board.
        let times: HashMap<i64, RunTimes> = runs
            .iter()
            .map(|run| {
                let times = RunTimes {
                    active_ms: run.active_ms,
                    started_at: run.started_at.clone(),
                    finished_at: run.finished_at.clone(),
                };
                (run.run_id, times)
            })
            .collect();
        let mut inputs = Vec::with_capacity(runs.len());
        let mut skipped = Vec::new();
        for run in runs {
            match serde_json::from_str::<TaskResult>(&run.results_json) {
                Ok(result) => inputs.push((run, result)),
                Err(err) => skipped.push(format!(
                    "run {} ({} on {}): unreadable results: {err}",
                    run.run_id, run.model_spec, run.task_name
                )),
            }
        }
        let mut board = Leaderboard::from_runs(inputs, catalog, options, skipped)?;
        // Every run's token counts in one query (one per run took most of the build).
        let run_ids: Vec<i64> = board
            .models
            .iter()
            .flat_map(|row| row.cells.iter().flatten().map(|c| c.run_id))
            .collect();
        let totals = store.token_totals_by_run(&run_ids)?;
        let mut bench_by_spec: HashMap<&str, Vec<&podium_store::BenchResult>> = HashMap::new();
        for result in &bench {
            bench_by_spec
                .entry(result.model_spec.as_str())
                .or_default()
                .push(result);
        }
        for row in &mut board.models {
            let benched = bench_by_spec.get(row.spec.as_str()).map_or(&[][..], |v| v);
            row.speed = speed_of(benched, &board.options.bench_load);
            row.cost = cost_of(row, &board.options, &totals, &times);
        }
        Ok(board)
    }

    /// Build the board from runs already read (the store-free core, tested
    /// directly).
    pub fn from_runs(
        runs: Vec<(BoardRun, TaskResult)>,
        catalog: &BoardCatalog,
        options: BoardOptions,
        mut skipped: Vec<String>,
    ) -> Result<Leaderboard, BoardError> {
        // Columns: one per distinct setting, in task-name order.
        let mut per_setting: BTreeMap<Setting, Vec<(&BoardRun, &MetricResult, &TaskResult)>> =
            BTreeMap::new();
        for (run, result) in &runs {
            let Some(metric) = metric_choice::board_metric(result) else {
                skipped.push(format!(
                    "run {} ({} on {}): no metric to show",
                    run.run_id, run.model_spec, run.task_name
                ));
                continue;
            };
            let setting = Setting {
                task: run.task_name.clone(),
                content_hash: run.content_hash.clone(),
                metric: metric.key.clone(),
                n_shots: run.n_shots,
                chat_template: run.chat_template,
                limit: run.limit,
                category: None,
            };
            per_setting
                .entry(setting)
                .or_default()
                .push((run, metric, result));
        }
        let labels = column_labels(per_setting.keys());
        let mut columns = Vec::with_capacity(per_setting.len());
        let mut rows: BTreeMap<i64, ModelRow> = BTreeMap::new();
        let mut specs: HashMap<String, BTreeSet<i64>> = HashMap::new();
        for (run, _) in &runs {
            specs
                .entry(run.model_spec.clone())
                .or_default()
                .insert(run.model_id);
        }
        let n_columns = per_setting.len();
        for (index, ((setting, entries), (id, label))) in
            per_setting.into_iter().zip(labels).enumerate()
        {
            let (_, first_metric, first_result) = &entries[0];
            let random_baseline = (first_metric.unit_range || first_metric.proportion)
                .then_some(first_result.random_baseline)
                .filter(|b| b.is_finite() && *b < 1.0)
                .filter(|_| first_metric.higher_is_better);
            columns.push(Column {
                id,
                label,
                higher_is_better: first_metric.higher_is_better,
                unit_range: first_metric.unit_range || first_metric.proportion,
                random_baseline,
                categories: categories(&first_result.config),
                n_docs_in_split: first_result.n_original,
                proportion: first_metric.proportion,
                members: Vec::new(),
                parent: None,
                setting,
            });
            for (run, metric, _) in entries {
                let row = rows.entry(run.model_id).or_insert_with(|| {
                    let info = catalog.info(&run.model_spec);
                    let shared = specs.get(&run.model_spec).is_some_and(|ids| ids.len() > 1);
                    let mut name = info
                        .display_name
                        .clone()
                        .unwrap_or_else(|| run.model_spec.clone());
                    if shared {
                        name = format!("{name} [{}]", short_fingerprint(&run.fingerprint));
                    }
                    ModelRow {
                        id: run.model_id,
                        spec: run.model_spec.clone(),
                        fingerprint: run.fingerprint.clone(),
                        name,
                        info,
                        cells: vec![None; n_columns],
                        average: None,
                        speed: None,
                        cost: None,
                        last_run: String::new(),
                    }
                });
                if run.finished_at > row.last_run {
                    row.last_run = run.finished_at.clone();
                }
                let (normalized, normalized_stderr) = match random_baseline {
                    Some(b) if metric.value.is_finite() => (
                        podium_stats::normalized_score(metric.value, b).ok(),
                        metric.stderr.map(|se| 100.0 * se / (1.0 - b)),
                    ),
                    _ => (None, None),
                };
                row.cells[index] = Some(Cell {
                    run_id: run.run_id,
                    value: metric.value,
                    stderr: metric.stderr,
                    ci95: metric.ci95(),
                    n: metric.n,
                    low_confidence: metric.low_confidence(),
                    normalized,
                    normalized_stderr,
                    rank: 0,
                    finished_at: run.finished_at.clone(),
                    member_runs: Vec::new(),
                });
            }
        }
        let mut models: Vec<ModelRow> = rows.into_values().collect();
        // Per-category sub-columns after every task column whose runs have
        // categories; they stay out of the default average.
        let sub_columns = add_category_columns(&runs, &mut columns, &mut models);

        // Group columns, then every column in id order (a group, e.g.
        // `lite_mmlu`, sorts just before its members).
        let added = crate::groups::add_group_columns(&options.groups, &mut columns, &mut models);
        let group_settings: Vec<Setting> = added
            .iter()
            .map(|(i, _)| columns[*i].setting.clone())
            .collect();
        for ((index, _), (id, label)) in added.iter().zip(column_labels(group_settings.iter())) {
            let n = columns[*index].members.len();
            columns[*index].id = id;
            columns[*index].label = format!("{label} ({n} tasks)");
        }
        // What the default average leaves out: the members of a group column,
        // and a group inside a larger one (`mmlu_stem` within `mmlu`).
        let mut covered: BTreeSet<usize> =
            added.iter().flat_map(|(_, m)| m.iter().copied()).collect();
        covered.extend(sub_columns);
        for (a, members_a) in &added {
            let inside = added.iter().any(|(b, members_b)| {
                b != a
                    && members_b.len() > members_a.len()
                    && members_a.iter().all(|m| members_b.contains(m))
            });
            if inside {
                covered.insert(*a);
            }
        }
        let mut order: Vec<usize> = (0..columns.len()).collect();
        order.sort_by(|&a, &b| columns[a].id.cmp(&columns[b].id));
        let position: Vec<usize> = {
            let mut p = vec![0; order.len()];
            for (new, &old) in order.iter().enumerate() {
                p[old] = new;
            }
            p
        };
        let mut old_columns: Vec<Option<Column>> = columns.into_iter().map(Some).collect();
        let columns: Vec<Column> = order
            .iter()
            .filter_map(|&i| old_columns[i].take())
            .collect();
        for model in &mut models {
            let mut old_cells: Vec<Option<Cell>> = std::mem::take(&mut model.cells);
            model.cells = order.iter().map(|&i| old_cells[i].take()).collect();
        }
        let covered: BTreeSet<usize> = covered.into_iter().map(|i| position[i]).collect();

        // Ranks per column.
        for (index, column) in columns.iter().enumerate() {
            let intervals: Vec<Option<(f64, f64)>> = models
                .iter()
                .map(|m| m.cells[index].as_ref().map(cell_interval))
                .collect();
            let ranks = rank_upper_bound(&intervals, column.higher_is_better);
            for (model, rank) in models.iter_mut().zip(ranks) {
                if let (Some(cell), Some(rank)) = (model.cells[index].as_mut(), rank) {
                    cell.rank = rank;
                }
            }
        }

        // The average.
        let average_columns: Vec<usize> = match &options.average_over {
            Some(ids) => {
                let mut chosen = Vec::with_capacity(ids.len());
                for id in ids {
                    let index = columns.iter().position(|c| &c.id == id).ok_or_else(|| {
                        BoardError::Options(format!(
                            "no column `{id}` on this board (columns: {})",
                            columns
                                .iter()
                                .map(|c| c.id.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    })?;
                    if columns[index].random_baseline.is_none() {
                        return Err(BoardError::Options(format!(
                            "column `{id}` has no normalized score, so it cannot enter the average"
                        )));
                    }
                    if !chosen.contains(&index) {
                        chosen.push(index);
                    }
                }
                chosen
            }
            None => (0..columns.len())
                .filter(|&i| columns[i].random_baseline.is_some() && !covered.contains(&i))
                .collect(),
        };
        for model in &mut models {
            model.average = average_of(model, &average_columns);
        }
        let intervals: Vec<Option<(f64, f64)>> = models
            .iter()
            .map(|m| {
                m.average
                    .as_ref()
                    .map(|a| a.ci95.unwrap_or((a.value, a.value)))
            })
            .collect();
        let ranks = rank_upper_bound(&intervals, true);
        for (model, rank) in models.iter_mut().zip(ranks) {
            if let (Some(average), Some(rank)) = (model.average.as_mut(), rank) {
                average.rank = rank;
            }
        }
        models.sort_by(|a, b| {
            let key = |m: &ModelRow| m.average.as_ref().map(|a| (a.rank, -a.value));
            match (key(a), key(b)) {
                (Some(x), Some(y)) => {
                    x.0.cmp(&y.0)
                        .then(x.1.total_cmp(&y.1))
                        .then_with(|| a.name.cmp(&b.name))
                }
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => a.name.cmp(&b.name),
            }
        });
        Ok(Leaderboard {
            columns,
            average_columns,
            models,
            options,
            skipped,
        })
    }
}

/// A cell's interval, or its point where no interval exists.
fn cell_interval(cell: &Cell) -> (f64, f64) {
    cell.ci95.unwrap_or((cell.value, cell.value))
}

/// Rank (UB) of METRICS.md for each entry that has an interval: 1 + the number
/// of others whose interval lies entirely better (for higher-is-better, whose
/// lower bound is above this upper bound). Models that no interval separates
/// share a rank.
pub fn rank_upper_bound(
    intervals: &[Option<(f64, f64)>],
    higher_is_better: bool,
) -> Vec<Option<usize>> {
    intervals
        .iter()
        .map(|this| {
            let (lo, hi) = (*this)?;
            let better = intervals
                .iter()
                .flatten()
                .filter(|(other_lo, other_hi)| {
                    if higher_is_better {
                        *other_lo > hi
                    } else {
                        *other_hi < lo
                    }
                })
                .count();
            Some(1 + better)
        })
        .collect()
}

/// The mean normalized score over `columns`, or `None` when one is missing.
fn average_of(model: &ModelRow, columns: &[usize]) -> Option<Average> {
    if columns.is_empty() {
        return None;
    }
    let mut sum = 0.0;
    let mut variance = Some(0.0);
    for &index in columns {
        let cell = model.cells.get(index)?.as_ref()?;
        sum += cell.normalized?;
        variance = match (variance, cell.normalized_stderr) {
            (Some(v), Some(se)) if se.is_finite() => Some(v + se * se),
            _ => None,
        };
    }
    let k = columns.len() as f64;
    let value = sum / k;
    let stderr = variance.map(|v| v.sqrt() / k);
    let ci95 = stderr.map(|se| {
        (
            (value - podium_stats::Z_95 * se).clamp(0.0, 100.0),
            (value + podium_stats::Z_95 * se).clamp(0.0, 100.0),
        )
    });
    Some(Average {
        value,
        stderr,
        ci95,
        rank: 0,
    })
}

/// Adds a sub-column per category to each task column whose runs report
/// per-category scores (the board metric's value, stderr and interval over that
/// category's samples); returns the indices of the columns added.
fn add_category_columns(
    runs: &[(BoardRun, TaskResult)],
    columns: &mut Vec<Column>,
    models: &mut [ModelRow],
) -> Vec<usize> {
    let mut added = Vec::new();
    let n_task_columns = columns.len();
    for parent_index in 0..n_task_columns {
        let parent = columns[parent_index].clone();
        // The runs in this column, found by their run ids in the models' cells.
        let run_ids: Vec<(usize, i64)> = models
            .iter()
            .enumerate()
            .filter_map(|(m, row)| row.cells[parent_index].as_ref().map(|c| (m, c.run_id)))
            .collect();
        let in_column: Vec<(usize, &TaskResult)> = run_ids
            .iter()
            .filter_map(|(m, run_id)| {
                runs.iter()
                    .find(|(run, _)| run.run_id == *run_id)
                    .map(|(_, result)| (*m, result))
            })
            .collect();
        let names: BTreeSet<&str> = in_column
            .iter()
            .flat_map(|(_, result)| result.categories.iter().map(|c| c.name.as_str()))
            .collect();
        for name in names {
            let index = columns.len();
            let mut setting = parent.setting.clone();
            setting.category = Some(name.to_string());
            let mut unit_range = parent.unit_range;
            let mut proportion = parent.proportion;
            for model in models.iter_mut() {
                model.cells.push(None);
            }
            for (m, result) in &in_column {
                let Some(metric) = result
                    .categories
                    .iter()
                    .find(|c| c.name == name)
                    .and_then(|c| c.metrics.iter().find(|x| x.key == parent.setting.metric))
                else {
                    continue;
                };
                unit_range &= metric.unit_range || metric.proportion;
                proportion &= metric.proportion;
                let Some(parent_cell) = models[*m].cells[parent_index].clone() else {
                    continue;
                };
                let (normalized, normalized_stderr) = match parent.random_baseline {
                    Some(b) if metric.value.is_finite() => (
                        podium_stats::normalized_score(metric.value, b).ok(),
                        metric.stderr.map(|se| 100.0 * se / (1.0 - b)),
                    ),
                    _ => (None, None),
                };
                models[*m].cells[index] = Some(Cell {
                    run_id: parent_cell.run_id,
                    value: metric.value,
                    stderr: metric.stderr,
                    ci95: metric.ci95(),
                    n: metric.n,
                    low_confidence: metric.low_confidence(),
                    normalized,
                    normalized_stderr,
                    rank: 0,
                    finished_at: parent_cell.finished_at,
                    member_runs: Vec::new(),
                });
            }
            columns.push(Column {
                id: format!("{}:{}", parent.id, slug(name)),
                label: format!("{} · {name}", parent.label),
                setting,
                higher_is_better: parent.higher_is_better,
                unit_range,
                random_baseline: parent.random_baseline,
                // Tags stay with the task column (the history averages by tag).
                categories: Vec::new(),
                n_docs_in_split: parent.n_docs_in_split,
                proportion,
                members: Vec::new(),
                parent: Some(parent.id.clone()),
            });
            added.push(index);
        }
    }
    added
}

/// A category name as part of a column id: letters and digits kept (lower
/// case), every other run of characters one `-`.
fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed = out.trim_matches('-');
    if trimmed.is_empty() {
        "category".to_string()
    } else {
        trimmed.to_string()
    }
}

/// Column ids and labels: the task name alone where it is unique on the
/// board; otherwise the parts of the setting that differ are appended.
fn column_labels<'a>(settings: impl Iterator<Item = &'a Setting>) -> Vec<(String, String)> {
    let settings: Vec<&Setting> = settings.collect();
    let mut by_task: HashMap<&str, Vec<&Setting>> = HashMap::new();
    for s in &settings {
        by_task.entry(&s.task).or_default().push(s);
    }
    settings
        .iter()
        .map(|s| {
            let siblings = &by_task[s.task.as_str()];
            if siblings.len() == 1 {
                return (s.task.clone(), s.task.clone());
            }
            let differs = |f: &dyn Fn(&Setting) -> String| siblings.iter().any(|o| f(o) != f(s));
            let mut id_parts = vec![s.task.clone()];
            let mut label_parts = Vec::new();
            if differs(&|x| x.metric.clone()) {
                id_parts.push(s.metric.replace(',', "."));
                label_parts.push(s.metric.clone());
            }
            if differs(&|x| x.n_shots.to_string()) {
                id_parts.push(format!("{}shot", s.n_shots));
                label_parts.push(format!("{}-shot", s.n_shots));
            }
            if differs(&|x| x.chat_template.to_string()) {
                id_parts.push(if s.chat_template { "chat" } else { "nochat" }.into());
                label_parts.push(
                    if s.chat_template {
                        "chat template"
                    } else {
                        "no chat template"
                    }
                    .into(),
                );
            }
            if differs(&|x| format!("{:?}", x.limit)) {
                match s.limit {
                    Some(n) => {
                        id_parts.push(format!("limit{n}"));
                        label_parts.push(format!("first {n} docs"));
                    }
                    None => {
                        id_parts.push("all".into());
                        label_parts.push("all docs".into());
                    }
                }
            }
            if differs(&|x| x.content_hash.clone()) {
                let short: String = s.content_hash.chars().take(8).collect();
                id_parts.push(short.clone());
                label_parts.push(format!("task {short}"));
            }
            (
                id_parts.join("~"),
                format!("{} ({})", s.task, label_parts.join(", ")),
            )
        })
        .collect()
}

fn short_fingerprint(fingerprint: &str) -> String {
    let tail = fingerprint
        .rsplit([':', '/', '#'])
        .next()
        .unwrap_or(fingerprint);
    tail.chars().take(12).collect()
}

/// A task's tags and group memberships from its stored configuration.
fn categories(config: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    for key in ["tag", "group"] {
        match config.get(key) {
            Some(serde_json::Value::String(s)) => out.push(s.clone()),
            Some(serde_json::Value::Array(items)) => {
                out.extend(items.iter().filter_map(|v| v.as_str().map(String::from)))
            }
            _ => {}
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Speed from `bench`, the bench results of the row's model spec.
fn speed_of(bench: &[&podium_store::BenchResult], load: &str) -> Option<Speed> {
    let result = bench
        .iter()
        .filter(|b| b.load == load)
        .max_by(|a, b| a.created_at.cmp(&b.created_at))?;
    let summary: serde_json::Value = serde_json::from_str(&result.summary_json).ok()?;
    let median = |key: &str| {
        summary
            .get(key)
            .and_then(|p| p.get("p50"))
            .and_then(|v| v.as_f64())
            .filter(|v| v.is_finite())
    };
    Some(Speed {
        load: result.load.clone(),
        output_speed: median("output_speed"),
        ttft_s: median("ttft_s"),
        measured_at: result.created_at.clone(),
    })
}

/// Cost of the model's runs on this board (METRICS.md "Cost"): catalogue prices
/// × token counts for priced models; for a local model, the hours worked ×
/// the machine price when one is given, else 0.
/// When a board run started and finished, and the time worked on it.
struct RunTimes {
    active_ms: Option<i64>,
    started_at: String,
    finished_at: String,
}

/// `totals`: token counts by run id (a run without successful samples is
/// absent); `times`: every board run's times by run id.
fn cost_of(
    row: &ModelRow,
    options: &BoardOptions,
    totals: &HashMap<i64, podium_store::TokenTotals>,
    times: &HashMap<i64, RunTimes>,
) -> Option<Cost> {
    let local = podium_core::ModelSpec::parse(&row.spec).is_ok_and(|s| s.is_local());
    let mut usd = 0.0;
    let mut samples = 0u64;
    let mut lower_bound = false;
    let run_ids: BTreeSet<i64> = row.cells.iter().flatten().map(|c| c.run_id).collect();
    for run_id in run_ids {
        let totals = totals.get(&run_id).copied().unwrap_or_default();
        samples += totals.samples;
        match (local, options.machine_price) {
            (true, Some(per_hour)) => {
                let Some(run) = times.get(&run_id) else {
                    continue;
                };
                let seconds = run.active_ms.map(|ms| ms as f64 / 1000.0).or_else(|| {
                    let start = podium_store::parse_rfc3339_utc(&run.started_at)?;
                    let end = podium_store::parse_rfc3339_utc(&run.finished_at)?;
                    Some(end - start)
                });
                match seconds {
                    Some(s) => usd += s.max(0.0) / 3600.0 * per_hour,
                    None => lower_bound = true,
                }
            }
            (true, None) => {}
            (false, _) => {
                let (Some(p_in), Some(p_out)) = (row.info.price_in, row.info.price_out) else {
                    return None;
                };
                usd += podium_stats::request_cost_usd(
                    totals.input_tokens as usize,
                    totals.output_tokens as usize,
                    p_in,
                    p_out,
                );
                lower_bound |= totals.counted < totals.samples;
            }
        }
    }
    Some(Cost {
        usd,
        per_1k_samples: (samples > 0).then(|| usd / samples as f64 * 1000.0),
        lower_bound,
        from_machine_hours: local && options.machine_price.is_some(),
    })
}

/// Open or closed, as the board filters it.
pub fn access_label(access: Option<Access>) -> &'static str {
    match access {
        Some(Access::Open) => "open",
        Some(Access::Closed) => "closed",
        None => "unknown",
    }
}

/// How a score reads in tables and pages: points (× 100) with one decimal for
/// [0, 1] metrics, four significant decimals otherwise, then "± half-width"
/// of the 95% interval where there is one.
pub fn score_text(column: &Column, cell: &Cell) -> String {
    let (scale, decimals) = if column.unit_range {
        (100.0, 1)
    } else {
        (1.0, 4)
    };
    let value = format!("{:.*}", decimals, cell.value * scale);
    match cell.ci95 {
        Some((lo, hi)) => format!("{value} ± {:.*}", decimals, (hi - lo) / 2.0 * scale),
        None => value,
    }
}

/// The average as "value ± half-width", normalized points.
pub fn average_text(average: &Average) -> String {
    match average.ci95 {
        Some((lo, hi)) => format!("{:.1} ± {:.1}", average.value, (hi - lo) / 2.0),
        None => format!("{:.1}", average.value),
    }
}

/// Parameters as people write them: 135M, 7B, 1.2T.
pub fn parameters_text(parameters: Option<u64>) -> String {
    match parameters {
        None => "unknown".into(),
        Some(n) if n >= 1_000_000_000_000 => format!("{:.1}T", n as f64 / 1e12),
        Some(n) if n >= 1_000_000_000 => trim(format!("{:.1}", n as f64 / 1e9)) + "B",
        Some(n) => format!("{}M", (n as f64 / 1e6).round()),
    }
}

fn trim(text: String) -> String {
    text.strip_suffix(".0").map(String::from).unwrap_or(text)
}
