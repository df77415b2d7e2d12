//! The board as a request asks to see it: the options that change the board
//! itself (`avg=`, `as_of=`), then the filters, sort order and pins that only
//! choose and order its rows and columns. Shared by the page, the JSON API and
//! the CSV export, so all three show the same rows in the same order.

use std::cmp::Ordering;

use podium_board::{BoardOptions, Leaderboard, ModelRow, access_label};

use crate::AppError;
use crate::params::Params;

/// What `sort=` accepts besides a column id.
pub(crate) const SORT_KEYS: &[&str] = &["average", "name", "price", "speed", "ttft"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Ascending,
    Descending,
}

impl Direction {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Direction::Ascending => "asc",
            Direction::Descending => "desc",
        }
    }
}

/// Everything a board URL asks for.
#[derive(Debug, Clone, Default)]
pub(crate) struct BoardQuery {
    pub(crate) options: BoardOptions,
    pub(crate) sort: Option<String>,
    pub(crate) dir: Option<Direction>,
    pub(crate) access: Option<String>,
    pub(crate) licence: Option<String>,
    pub(crate) provider: Option<String>,
    /// Billions of parameters.
    pub(crate) min_params: Option<f64>,
    pub(crate) max_params: Option<f64>,
    pub(crate) category: Option<String>,
    pub(crate) text: Option<String>,
    pub(crate) pins: Vec<i64>,
}

impl BoardQuery {
    pub(crate) fn parse(params: &Params, defaults: &BoardOptions) -> Result<BoardQuery, AppError> {
        let mut options = defaults.clone();
        let avg = params.list("avg");
        if !avg.is_empty() {
            options.average_over = Some(avg);
        }
        if let Some(as_of) = params.get("as_of") {
            options.as_of = Some(parse_as_of(as_of)?);
        }
        let dir = match params.get("dir") {
            None => None,
            Some("asc") => Some(Direction::Ascending),
            Some("desc") => Some(Direction::Descending),
            Some(other) => {
                return Err(AppError::bad_request(format!(
                    "query parameter `dir` must be asc or desc, got `{other}`"
                )));
            }
        };
        let access = match params.get("access") {
            None => None,
            Some(a @ ("open" | "closed" | "unknown")) => Some(a.to_string()),
            Some(other) => {
                return Err(AppError::bad_request(format!(
                    "query parameter `access` must be open, closed or unknown, got `{other}`"
                )));
            }
        };
        Ok(BoardQuery {
            options,
            sort: params.get("sort").map(String::from),
            dir,
            access,
            licence: params.get("licence").map(String::from),
            provider: params.get("provider").map(String::from),
            min_params: params.f64("min_params")?,
            max_params: params.f64("max_params")?,
            category: params.get("category").map(String::from),
            text: params.get("q").map(str::to_lowercase),
            pins: params.id_list("pin")?,
        })
    }
}

/// `as_of=`: a date (the end of that day, UTC) or a UTC time
/// `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`, in the store's text form (text order is
/// time order there).
fn parse_as_of(value: &str) -> Result<String, AppError> {
    let bad = || {
        AppError::bad_request(format!(
            "query parameter `as_of` must be a date (2026-01-31) or a UTC time (2026-01-31T12:00:00Z), got `{value}`"
        ))
    };
    let time = if value.len() == 10 {
        format!("{value}T23:59:59.999999Z")
    } else {
        let body = value.strip_suffix('Z').ok_or_else(bad)?;
        let (whole, fraction) = body.split_once('.').unwrap_or((body, ""));
        if fraction.len() > 6 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        format!("{whole}.{fraction:0<6}Z")
    };
    podium_store::parse_rfc3339_utc(&time).ok_or_else(bad)?;
    Ok(time)
}

/// The rows and columns a request sees, in its order.
#[derive(Debug, Clone)]
pub(crate) struct BoardView {
    /// Indexes into `board.columns`.
    pub(crate) columns: Vec<usize>,
    /// Indexes into `board.models`, pinned ones first (one page of them on
    /// the board page).
    pub(crate) rows: Vec<usize>,
    /// Every row the filters keep, on any page.
    pub(crate) all_rows: Vec<usize>,
    pub(crate) hidden: usize,
    pub(crate) sort: Option<String>,
    pub(crate) dir: Direction,
}

pub(crate) fn view(board: &Leaderboard, query: &BoardQuery) -> Result<BoardView, AppError> {
    let columns: Vec<usize> = match &query.category {
        None => (0..board.columns.len()).collect(),
        Some(category) => {
            let chosen: Vec<usize> = (0..board.columns.len())
                .filter(|&i| board.columns[i].categories.iter().any(|c| c == category))
                .collect();
            if chosen.is_empty() {
                return Err(AppError::bad_request(format!(
                    "no column has category `{category}` (categories: {})",
                    categories(board).join(", ")
                )));
            }
            chosen
        }
    };
    let mut rows: Vec<usize> = (0..board.models.len())
        .filter(|&i| keeps(&board.models[i], query))
        .collect();
    let hidden = board.models.len() - rows.len();

    let (sort, dir) = match query.sort.as_deref() {
        None => (None, query.dir.unwrap_or(Direction::Ascending)),
        Some(key) => {
            let column = board.column(key);
            if column.is_none() && !SORT_KEYS.contains(&key) {
                return Err(AppError::bad_request(format!(
                    "cannot sort by `{key}`: sort takes a column id ({}) or one of {}",
                    board
                        .columns
                        .iter()
                        .map(|c| c.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    SORT_KEYS.join(", ")
                )));
            }
            let natural = match (key, column) {
                (_, Some(i)) if !board.columns[i].higher_is_better => Direction::Ascending,
                (_, Some(_)) | ("average" | "speed", None) => Direction::Descending,
                _ => Direction::Ascending,
            };
            let dir = query.dir.unwrap_or(natural);
            if key == "name" {
                rows.sort_by(|&a, &b| {
                    let order = board.models[a]
                        .name
                        .to_lowercase()
                        .cmp(&board.models[b].name.to_lowercase());
                    if dir == Direction::Descending {
                        order.reverse()
                    } else {
                        order
                    }
                });
            } else {
                let value = |row: &ModelRow| -> Option<f64> {
                    match (key, column) {
                        (_, Some(i)) => row.cells[i].as_ref().map(|c| c.value),
                        ("average", _) => row.average.as_ref().map(|a| a.value),
                        ("price", _) => row.info.blended_price(),
                        ("speed", _) => row.speed.as_ref().and_then(|s| s.output_speed),
                        ("ttft", _) => row.speed.as_ref().and_then(|s| s.ttft_s),
                        _ => None,
                    }
                    .filter(|v| v.is_finite())
                };
                // Unknown values last in either direction: never ranked as 0.
                rows.sort_by(
                    |&a, &b| match (value(&board.models[a]), value(&board.models[b])) {
                        (Some(x), Some(y)) => {
                            let order = x.total_cmp(&y);
                            if dir == Direction::Descending {
                                order.reverse()
                            } else {
                                order
                            }
                        }
                        (Some(_), None) => Ordering::Less,
                        (None, Some(_)) => Ordering::Greater,
                        (None, None) => Ordering::Equal,
                    },
                );
            }
            (Some(key.to_string()), dir)
        }
    };
    // Pinned models first, in the order they were pinned.
    let pin_position = |i: usize| query.pins.iter().position(|&p| p == board.models[i].id);
    rows.sort_by_key(|&i| pin_position(i).unwrap_or(usize::MAX));
    Ok(BoardView {
        columns,
        all_rows: rows.clone(),
        rows,
        hidden,
        sort,
        dir,
    })
}

/// Whether a model passes the filters. A filter on a fact the catalogue does
/// not know (a licence, a parameter count) hides the model: it is not known to
/// pass.
fn keeps(row: &ModelRow, query: &BoardQuery) -> bool {
    if let Some(access) = &query.access
        && access_label(row.info.access) != access
    {
        return false;
    }
    let same = |wanted: &Option<String>, have: &Option<String>| match wanted {
        None => true,
        Some(w) => have.as_deref().is_some_and(|h| h.eq_ignore_ascii_case(w)),
    };
    if !same(&query.licence, &row.info.licence) || !same(&query.provider, &row.info.provider) {
        return false;
    }
    let billions = row.info.parameters.map(|p| p as f64 / 1e9);
    if let Some(min) = query.min_params
        && !billions.is_some_and(|b| b >= min)
    {
        return false;
    }
    if let Some(max) = query.max_params
        && !billions.is_some_and(|b| b <= max)
    {
        return false;
    }
    if let Some(text) = &query.text
        && !row.name.to_lowercase().contains(text)
        && !row.spec.to_lowercase().contains(text)
    {
        return false;
    }
    true
}

/// Every category of the board's columns, sorted.
pub(crate) fn categories(board: &Leaderboard) -> Vec<String> {
    let mut all: Vec<String> = board
        .columns
        .iter()
        .flat_map(|c| c.categories.iter().cloned())
        .collect();
    all.sort();
    all.dedup();
    all
}

/// The board restricted to a view: its rows in the view's order and its
/// columns (cells and the average's column indexes follow).
pub(crate) fn restrict(board: &Leaderboard, view: &BoardView) -> Leaderboard {
    let columns = view
        .columns
        .iter()
        .map(|&i| board.columns[i].clone())
        .collect();
    let average_columns = board
        .average_columns
        .iter()
        .filter_map(|a| view.columns.iter().position(|c| c == a))
        .collect();
    let models = view
        .rows
        .iter()
        .map(|&r| {
            let mut row = board.models[r].clone();
            row.cells = view.columns.iter().map(|&i| row.cells[i].clone()).collect();
            row
        })
        .collect();
    Leaderboard {
        columns,
        average_columns,
        models,
        options: board.options.clone(),
        skipped: board.skipped.clone(),
    }
}

/// The labels of the average's columns a model lacks.
pub(crate) fn missing_average_columns(board: &Leaderboard, row: &ModelRow) -> Vec<String> {
    board
        .average_columns
        .iter()
        .filter(|&&i| row.cells[i].as_ref().and_then(|c| c.normalized).is_none())
        .map(|&i| board.columns[i].label.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_of_takes_a_date_or_a_time() {
        assert_eq!(
            parse_as_of("2026-01-31").unwrap(),
            "2026-01-31T23:59:59.999999Z"
        );
        assert_eq!(
            parse_as_of("2026-01-31T10:00:00Z").unwrap(),
            "2026-01-31T10:00:00.000000Z"
        );
        assert!(parse_as_of("yesterday").is_err());
        assert!(parse_as_of("2026-13-45").is_err());
    }
}
