//! Group columns: a benchmark made of subtasks (MMLU's 57 subjects,
//! `lite_mmlu`'s 4) gets one column of its own, aggregated as
//! lm-evaluation-harness aggregates a group, and the average counts it once
//! instead of once per subtask.

use serde::{Deserialize, Serialize};

use crate::{Cell, Column, ModelRow, Setting};

/// A group and its member tasks (from the task registry: `group:` YAMLs
/// whose members are all tasks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSpec {
    pub name: String,
    pub members: Vec<String>,
}

/// Adds one column per group and setting (shots, chat template, doc set) in
/// which some model ran every member, each member in exactly one column. A
/// model's group cell needs all of its member cells. The value is the
/// size-weighted mean of the members' values (lm-evaluation-harness's
/// `weight_by_size`), its stderr the pooled one (`pooled_sample_stderr`), its
/// interval Wilson's over all the members' docs for proportions, else
/// value ± 1.96 · stderr. Returns, per new column, the member columns it
/// covers.
pub(crate) fn add_group_columns(
    groups: &[GroupSpec],
    columns: &mut Vec<Column>,
    models: &mut [ModelRow],
) -> Vec<(usize, Vec<usize>)> {
    let mut added = Vec::new();
    for group in groups {
        if group.members.is_empty() {
            continue;
        }
        // The settings (shots, chat template, doc set) any member ran in.
        let mut keys: Vec<(u32, bool, Option<u64>)> = columns
            .iter()
            .filter(|c| group.members.contains(&c.setting.task) && c.parent.is_none())
            .map(|c| (c.setting.n_shots, c.setting.chat_template, c.setting.limit))
            .collect();
        keys.sort();
        keys.dedup();
        for (n_shots, chat_template, limit) in keys {
            // Exactly one column per member in this setting.
            let mut members = Vec::with_capacity(group.members.len());
            for task in &group.members {
                let found: Vec<usize> = columns
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| {
                        &c.setting.task == task
                            && c.parent.is_none()
                            && c.setting.n_shots == n_shots
                            && c.setting.chat_template == chat_template
                            && c.setting.limit == limit
                    })
                    .map(|(i, _)| i)
                    .collect();
                match found.as_slice() {
                    [one] => members.push(*one),
                    _ => break,
                }
            }
            if members.len() != group.members.len() {
                continue;
            }
            let of = |i: usize| &columns[i];
            let same_metric = members
                .iter()
                .all(|&i| of(i).setting.metric == of(members[0]).setting.metric);
            let baseline = of(members[0]).random_baseline;
            let same_baseline = members.iter().all(|&i| of(i).random_baseline == baseline);
            let proportion = members.iter().all(|&i| of(i).proportion);
            let unit_range = members.iter().all(|&i| of(i).unit_range);
            let higher_is_better = members.iter().all(|&i| of(i).higher_is_better);
            let hash_input: String = members
                .iter()
                .map(|&i| format!("{}={};", of(i).setting.task, of(i).setting.content_hash))
                .collect();
            let mut categories: Vec<String> = members
                .iter()
                .flat_map(|&i| of(i).categories.clone())
                .collect();
            categories.sort();
            categories.dedup();
            let column = Column {
                id: String::new(), // set with the labels below
                label: String::new(),
                setting: Setting {
                    task: group.name.clone(),
                    content_hash: podium_core::sha256_hex(hash_input.as_bytes()),
                    metric: if same_metric {
                        of(members[0]).setting.metric.clone()
                    } else {
                        "mixed".into()
                    },
                    n_shots,
                    chat_template,
                    limit,
                    category: None,
                },
                higher_is_better,
                unit_range,
                proportion,
                random_baseline: if same_baseline { baseline } else { None },
                categories,
                n_docs_in_split: members.iter().map(|&i| of(i).n_docs_in_split).sum(),
                parent: None,
                members: members
                    .iter()
                    .map(|&i| of(i).setting.task.clone())
                    .collect(),
            };
            let mut any = false;
            let new_index = columns.len();
            for model in models.iter_mut() {
                let cells: Option<Vec<&Cell>> =
                    members.iter().map(|&i| model.cells[i].as_ref()).collect();
                let cell = cells.and_then(|cells| group_cell(&column, &cells));
                any |= cell.is_some();
                model.cells.push(cell);
            }
            if !any {
                for model in models.iter_mut() {
                    model.cells.truncate(new_index);
                }
                continue;
            }
            columns.push(column);
            added.push((new_index, members));
        }
    }
    added
}

/// One model's group cell from its member cells.
fn group_cell(column: &Column, cells: &[&Cell]) -> Option<Cell> {
    let total: usize = cells.iter().map(|c| c.n).sum();
    let value = if total > 0 && cells.iter().all(|c| c.n > 0) {
        cells.iter().map(|c| c.value * c.n as f64).sum::<f64>() / total as f64
    } else {
        // Results stored before Podium kept n: an unweighted mean.
        cells.iter().map(|c| c.value).sum::<f64>() / cells.len() as f64
    };
    if !value.is_finite() {
        return None;
    }
    let stderrs: Option<Vec<f64>> = cells.iter().map(|c| c.stderr).collect();
    let sizes: Vec<usize> = cells.iter().map(|c| c.n).collect();
    let stderr = stderrs.and_then(|se| podium_stats::pooled_sample_stderr(&se, &sizes).ok());
    let ci95 = if column.proportion && total > 0 {
        podium_stats::wilson_interval(value, total)
    } else {
        stderr.map(|se| {
            let (lo, hi) = podium_stats::ci95_mean(value, se);
            if column.unit_range {
                (lo.max(0.0), hi.min(1.0))
            } else {
                (lo, hi)
            }
        })
    };
    let (normalized, normalized_stderr) = match column.random_baseline {
        Some(b) => (
            podium_stats::normalized_score(value, b).ok(),
            stderr.map(|se| 100.0 * se / (1.0 - b)),
        ),
        None => (None, None),
    };
    let low_confidence = column.unit_range
        && ci95.is_some_and(|(lo, hi)| {
            (hi - lo) / 2.0 > podium_tasks::results::LOW_CONFIDENCE_HALF_WIDTH
        });
    Some(Cell {
        run_id: cells[0].run_id,
        value,
        stderr,
        ci95,
        n: total,
        low_confidence,
        normalized,
        normalized_stderr,
        rank: 0,
        finished_at: cells
            .iter()
            .map(|c| c.finished_at.clone())
            .max()
            .unwrap_or_default(),
        member_runs: cells.iter().map(|c| c.run_id).collect(),
    })
}
