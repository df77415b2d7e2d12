//! The board over time: the board as of each date runs finished, and per
//! category the best open model against the best closed one.

use std::collections::BTreeSet;

use podium_models::Access;
use podium_store::Store;
use podium_tasks::results::TaskResult;
use serde::{Deserialize, Serialize};

use crate::{BoardCatalog, BoardError, BoardOptions, Leaderboard};

/// The most points a history has: the last finish time of each day, thinned
/// evenly beyond this.
pub const MAX_HISTORY_POINTS: usize = 120;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryPoint {
    /// The board as of this time (RFC 3339).
    pub at: String,
    /// `average`, or a task tag or group.
    pub category: String,
    pub best_open: Option<(String, f64)>,
    pub best_closed: Option<(String, f64)>,
    /// best closed − best open, in normalized points.
    pub gap: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankPoint {
    pub at: String,
    pub model_id: i64,
    pub name: String,
    pub rank: usize,
    pub average: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub times: Vec<String>,
    pub categories: Vec<String>,
    pub points: Vec<CategoryPoint>,
    pub ranks: Vec<RankPoint>,
}

/// The times a history shows: the last of each day, at most
/// [`MAX_HISTORY_POINTS`], always including the newest.
fn history_times(all: Vec<String>) -> Vec<String> {
    let mut daily: Vec<String> = Vec::new();
    for t in all {
        match daily.last_mut() {
            Some(last) if last.get(..10) == t.get(..10) => *last = t,
            _ => daily.push(t),
        }
    }
    if daily.len() <= MAX_HISTORY_POINTS {
        return daily;
    }
    let n = daily.len();
    (0..MAX_HISTORY_POINTS)
        .map(|i| daily[(i * (n - 1)) / (MAX_HISTORY_POINTS - 1)].clone())
        .collect()
}

/// A category's score for one model: the mean normalized score over the
/// category's columns, when the model has all of them.
fn category_score(board: &Leaderboard, row: &crate::ModelRow, category: &str) -> Option<f64> {
    if category == "average" {
        return row.average.as_ref().map(|a| a.value);
    }
    let columns: Vec<usize> = board
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| c.random_baseline.is_some() && c.categories.iter().any(|k| k == category))
        .map(|(i, _)| i)
        .collect();
    if columns.is_empty() {
        return None;
    }
    let mut sum = 0.0;
    for i in &columns {
        sum += row.cells[*i].as_ref()?.normalized?;
    }
    Some(sum / columns.len() as f64)
}

pub fn history(
    store: &Store,
    catalog: &BoardCatalog,
    options: &BoardOptions,
) -> Result<History, BoardError> {
    let times = history_times(store.finish_times()?);
    let mut categories = BTreeSet::new();
    let mut points = Vec::new();
    let mut ranks = Vec::new();
    for at in &times {
        let runs = store.board_runs(Some(at))?;
        let inputs: Vec<_> = runs
            .into_iter()
            .filter_map(|run| {
                let result = serde_json::from_str::<TaskResult>(&run.results_json).ok()?;
                Some((run, result))
            })
            .collect();
        let mut as_of = options.clone();
        as_of.as_of = Some(at.clone());
        // A chosen column may not exist yet at an early date: fall back to
        // every column rather than failing the whole history.
        let board = match Leaderboard::from_runs(inputs.clone(), catalog, as_of.clone(), Vec::new())
        {
            Ok(board) => board,
            Err(_) => {
                as_of.average_over = None;
                Leaderboard::from_runs(inputs, catalog, as_of, Vec::new())?
            }
        };
        let mut here: BTreeSet<String> = board
            .columns
            .iter()
            .filter(|c| c.random_baseline.is_some())
            .flat_map(|c| c.categories.iter().cloned())
            .collect();
        here.insert("average".into());
        for category in &here {
            let best = |access: Access| {
                board
                    .models
                    .iter()
                    .filter(|m| m.info.access == Some(access))
                    .filter_map(|m| Some((m.name.clone(), category_score(&board, m, category)?)))
                    .max_by(|a, b| a.1.total_cmp(&b.1))
            };
            let best_open = best(Access::Open);
            let best_closed = best(Access::Closed);
            let gap = match (&best_open, &best_closed) {
                (Some(o), Some(c)) => Some(c.1 - o.1),
                _ => None,
            };
            points.push(CategoryPoint {
                at: at.clone(),
                category: category.clone(),
                best_open,
                best_closed,
                gap,
            });
        }
        categories.extend(here);
        for row in &board.models {
            if let Some(average) = &row.average {
                ranks.push(RankPoint {
                    at: at.clone(),
                    model_id: row.id,
                    name: row.name.clone(),
                    rank: average.rank,
                    average: average.value,
                });
            }
        }
    }
    Ok(History {
        times,
        categories: categories.into_iter().collect(),
        points,
        ranks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keeps_the_last_time_of_each_day() {
        let times = vec![
            "2026-01-01T10:00:00.000000Z".to_string(),
            "2026-01-01T12:00:00.000000Z".to_string(),
            "2026-01-03T09:00:00.000000Z".to_string(),
        ];
        assert_eq!(
            history_times(times),
            vec!["2026-01-01T12:00:00.000000Z", "2026-01-03T09:00:00.000000Z"]
        );
        let many: Vec<String> = (0..400)
            .map(|d| format!("2026-{:02}-{:02}T00:00:00Z", 1 + d / 28, 1 + d % 28))
            .collect();
        let thinned = history_times(many.clone());
        assert_eq!(thinned.len(), MAX_HISTORY_POINTS);
        assert_eq!(thinned.last(), many.last());
    }
}
