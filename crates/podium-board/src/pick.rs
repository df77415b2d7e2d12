//! Views over a [`Leaderboard`]: the Pareto fronts of quality against price
//! and against speed, and the fit-for-purpose pick.

use serde::{Deserialize, Serialize};

use crate::{BoardError, Leaderboard, ModelRow};

/// A model's quality in points on `column` (`None`: the average): the
/// normalized average, or the column's value × 100 for [0, 1] metrics (raw
/// otherwise), with its 95% interval in the same units.
pub fn quality_of(
    board: &Leaderboard,
    row: &ModelRow,
    column: Option<usize>,
) -> Option<(f64, Option<(f64, f64)>)> {
    match column {
        None => row.average.as_ref().map(|a| (a.value, a.ci95)),
        Some(index) => {
            let cell = row.cells.get(index)?.as_ref()?;
            let scale = if board.columns.get(index)?.unit_range {
                100.0
            } else {
                1.0
            };
            Some((
                cell.value * scale,
                cell.ci95.map(|(lo, hi)| (lo * scale, hi * scale)),
            ))
        }
    }
}

/// The second axis of a quality chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Axis {
    /// Blended price, $ per 1M tokens: lower is better.
    Price,
    /// Median output tokens per second: higher is better.
    Speed,
}

impl Axis {
    pub fn of(self, row: &ModelRow) -> Option<f64> {
        match self {
            Axis::Price => row.info.blended_price(),
            Axis::Speed => row.speed.as_ref().and_then(|s| s.output_speed),
        }
        .filter(|x| x.is_finite())
    }
}

/// The models no other model beats on both quality (higher) and the axis
/// (cheaper, or faster), as model ids in axis order (cheapest or slowest first).
pub fn pareto_front(board: &Leaderboard, column: Option<usize>, axis: Axis) -> Vec<i64> {
    let points: Vec<(i64, f64, f64)> = board
        .models
        .iter()
        .filter_map(|m| Some((m.id, quality_of(board, m, column)?.0, axis.of(m)?)))
        .filter(|(_, q, _)| q.is_finite())
        .collect();
    // `b` dominates `a`: at least as good on both, better on one.
    let better_x = |bx: f64, ax: f64| match axis {
        Axis::Price => bx < ax,
        Axis::Speed => bx > ax,
    };
    let dominates = |b: &(i64, f64, f64), a: &(i64, f64, f64)| {
        let x_ok = b.2 == a.2 || better_x(b.2, a.2);
        let q_ok = b.1 >= a.1;
        x_ok && q_ok && (b.1 > a.1 || better_x(b.2, a.2))
    };
    let mut front: Vec<(i64, f64, f64)> = points
        .iter()
        .filter(|a| !points.iter().any(|b| dominates(b, a)))
        .copied()
        .collect();
    front.sort_by(|a, b| a.2.total_cmp(&b.2).then(a.0.cmp(&b.0)));
    front.into_iter().map(|(id, _, _)| id).collect()
}

/// What the user needs: a column (or the average), a minimum score in points,
/// a maximum blended price and a minimum output speed; each optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PickRequest {
    pub column: Option<String>,
    pub min_score: Option<f64>,
    pub max_price: Option<f64>,
    pub min_speed: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The whole 95% interval is at or above the bar.
    ClearlyAbove,
    /// The interval straddles the bar: the model may be below it.
    MayBeBelow,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Qualified {
    pub model_id: i64,
    pub name: String,
    pub quality: f64,
    pub ci95: Option<(f64, f64)>,
    pub blended_price: Option<f64>,
    pub output_speed: Option<f64>,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Excluded {
    pub model_id: i64,
    pub name: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pick {
    pub request: PickRequest,
    /// What the scores are: the column's label, or "average".
    pub scored_on: String,
    /// Cheapest first; models of unknown price after the priced ones.
    pub qualified: Vec<Qualified>,
    pub excluded: Vec<Excluded>,
}

/// The fit-for-purpose pick: the models that meet every constraint, cheapest
/// first. A model qualifies on score when its interval reaches the bar; it is
/// marked "clearly above" when the whole interval is above, "may be below"
/// when the interval straddles it.
pub fn pick(board: &Leaderboard, request: &PickRequest) -> Result<Pick, BoardError> {
    let column = match request
        .column
        .as_deref()
        .filter(|c| !c.is_empty() && *c != "average")
    {
        Some(id) => {
            let index = board
                .column(id)
                .ok_or_else(|| BoardError::Options(format!("no column `{id}` on this board")))?;
            if !board.columns[index].higher_is_better {
                return Err(BoardError::Options(format!(
                    "column `{id}` is lower-is-better; the pick needs a score with a minimum"
                )));
            }
            Some(index)
        }
        None => None,
    };
    for (name, value) in [
        ("min_score", request.min_score),
        ("max_price", request.max_price),
        ("min_speed", request.min_speed),
    ] {
        if value.is_some_and(|v| !v.is_finite()) {
            return Err(BoardError::Options(format!(
                "{name} must be a finite number"
            )));
        }
    }
    let mut qualified = Vec::new();
    let mut excluded = Vec::new();
    for row in &board.models {
        let exclude = |reason: String| Excluded {
            model_id: row.id,
            name: row.name.clone(),
            reason,
        };
        let Some((quality, ci95)) = quality_of(board, row, column) else {
            excluded.push(exclude("no score on this column".into()));
            continue;
        };
        let (lo, hi) = ci95.unwrap_or((quality, quality));
        let verdict = match request.min_score {
            Some(bar) if hi < bar => {
                excluded.push(exclude(format!(
                    "score {quality:.1} (interval up to {hi:.1}) is below {bar}"
                )));
                continue;
            }
            Some(bar) if lo < bar => Verdict::MayBeBelow,
            _ => Verdict::ClearlyAbove,
        };
        let blended_price = row.info.blended_price();
        if let Some(max) = request.max_price {
            match blended_price {
                None => {
                    excluded.push(exclude("price unknown".into()));
                    continue;
                }
                Some(p) if p > max => {
                    excluded.push(exclude(format!("blended price ${p:.2} is above ${max}")));
                    continue;
                }
                _ => {}
            }
        }
        let output_speed = row.speed.as_ref().and_then(|s| s.output_speed);
        if let Some(min) = request.min_speed {
            match output_speed {
                None => {
                    excluded.push(exclude(
                        "output speed not measured (run `podium bench`)".into(),
                    ));
                    continue;
                }
                Some(s) if s < min => {
                    excluded.push(exclude(format!("output speed {s:.1} tok/s is below {min}")));
                    continue;
                }
                _ => {}
            }
        }
        qualified.push(Qualified {
            model_id: row.id,
            name: row.name.clone(),
            quality,
            ci95,
            blended_price,
            output_speed,
            verdict,
        });
    }
    qualified.sort_by(|a, b| {
        let price = |q: &Qualified| q.blended_price.unwrap_or(f64::INFINITY);
        price(a)
            .total_cmp(&price(b))
            .then(b.quality.total_cmp(&a.quality))
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(Pick {
        request: request.clone(),
        scored_on: column.map_or_else(|| "average".into(), |i| board.columns[i].label.clone()),
        qualified,
        excluded,
    })
}
