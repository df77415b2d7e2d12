//! The charts, drawn on the server as inline SVG: quality against blended
//! price (log axis) and against output speed, with each model's 95% interval
//! as a vertical bar and the Pareto front as a line; and the history's lines.
//! This module computes the data and the geometry; `templates/_chart.html`
//! writes the SVG elements, so every label passes minijinja's escaping.

use podium_board::{Axis, Leaderboard, access_label, pareto_front, quality_of};
use serde::Serialize;

/// One model on a chart.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ChartPoint {
    pub(crate) model_id: i64,
    pub(crate) name: String,
    pub(crate) access: &'static str,
    pub(crate) quality: f64,
    pub(crate) ci95: Option<(f64, f64)>,
    /// Blended price ($ per 1M tokens) or output speed (tokens per second).
    pub(crate) x: f64,
    pub(crate) on_front: bool,
}

/// A model left off a chart, and why.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct NotPlotted {
    pub(crate) model_id: i64,
    pub(crate) name: String,
    pub(crate) reason: String,
}

/// A chart's data (what `/api/v1/charts` returns).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ChartData {
    pub(crate) axis: Axis,
    /// "average" or the column's label.
    pub(crate) scored_on: String,
    pub(crate) points: Vec<ChartPoint>,
    /// Model ids on the Pareto front, in axis order.
    pub(crate) front: Vec<i64>,
    pub(crate) not_plotted: Vec<NotPlotted>,
}

pub(crate) fn chart_data(board: &Leaderboard, column: Option<usize>, axis: Axis) -> ChartData {
    let front = pareto_front(board, column, axis);
    let mut points = Vec::new();
    let mut not_plotted = Vec::new();
    for row in &board.models {
        let skip = |reason: &str| NotPlotted {
            model_id: row.id,
            name: row.name.clone(),
            reason: reason.to_string(),
        };
        let Some((quality, ci95)) = quality_of(board, row, column).filter(|(q, _)| q.is_finite())
        else {
            not_plotted.push(skip(if column.is_none() {
                "no average"
            } else {
                "no score in this column"
            }));
            continue;
        };
        let Some(x) = axis.of(row) else {
            not_plotted.push(skip(match axis {
                Axis::Price => "price unknown",
                Axis::Speed => "output speed not measured",
            }));
            continue;
        };
        points.push(ChartPoint {
            model_id: row.id,
            name: row.name.clone(),
            access: access_label(row.info.access),
            quality,
            ci95,
            x,
            on_front: front.contains(&row.id),
        });
    }
    ChartData {
        axis,
        scored_on: column.map_or_else(|| "average".to_string(), |i| board.columns[i].label.clone()),
        points,
        front,
        not_plotted,
    }
}

/// The drawing area of every chart, in SVG user units.
const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 400.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 620.0;
const TOP: f64 = 20.0;
const BOTTOM: f64 = 350.0;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Tick {
    pub(crate) at: f64,
    pub(crate) label: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct SvgPoint {
    pub(crate) cx: f64,
    pub(crate) cy: f64,
    /// The interval's bar, top and bottom (equal to `cy` without one).
    pub(crate) y_hi: f64,
    pub(crate) y_lo: f64,
    pub(crate) access: &'static str,
    pub(crate) label: String,
    /// Where the label goes (see [`place_labels`]); an empty label is hidden
    /// (no free place), the name stays in the tooltip.
    pub(crate) label_x: f64,
    pub(crate) label_y: f64,
    /// `start` (right of the point) or `end` (left of it, near the right edge).
    pub(crate) label_anchor: &'static str,
    /// The tooltip: name, score, interval and x value.
    pub(crate) title: String,
    pub(crate) href: String,
    pub(crate) on_front: bool,
}

/// A scatter chart ready to draw.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Scatter {
    pub(crate) width: f64,
    pub(crate) height: f64,
    pub(crate) left: f64,
    pub(crate) right: f64,
    pub(crate) top: f64,
    pub(crate) bottom: f64,
    pub(crate) title: String,
    pub(crate) x_label: String,
    pub(crate) y_label: String,
    pub(crate) x_ticks: Vec<Tick>,
    pub(crate) y_ticks: Vec<Tick>,
    pub(crate) points: Vec<SvgPoint>,
    /// `x,y x,y …` of the front, in axis order.
    pub(crate) front_line: String,
    pub(crate) data: ChartData,
}

/// Labels longer than this are cut with "…" (the tooltip has the whole name).
const LABEL_CHARS: usize = 26;
/// Estimated width of one label character at the chart's 11 px font.
const LABEL_CHAR_WIDTH: f64 = 6.0;
const LABEL_HEIGHT: f64 = 12.0;

fn short_label(name: &str) -> String {
    if name.chars().count() <= LABEL_CHARS {
        name.to_string()
    } else {
        name.chars().take(LABEL_CHARS - 1).collect::<String>() + "…"
    }
}

/// Places each point's label beside it without overlapping labels placed
/// before it (points taken top to bottom): above-right by default, left of the
/// point near the right edge, then lower positions; a label with no free place
/// is hidden.
fn place_labels(mut points: Vec<SvgPoint>) -> Vec<SvgPoint> {
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by(|&a, &b| points[a].cy.total_cmp(&points[b].cy));
    let mut placed: Vec<(f64, f64, f64, f64)> = Vec::new(); // x0, y0, x1, y1
    for i in order {
        let p = &mut points[i];
        let width = p.label.chars().count() as f64 * LABEL_CHAR_WIDTH;
        let to_left = p.cx + 8.0 + width > WIDTH - 4.0;
        let (x, anchor) = if to_left {
            (p.cx - 8.0, "end")
        } else {
            (p.cx + 8.0, "start")
        };
        let (x0, x1) = if to_left {
            (x - width, x)
        } else {
            (x, x + width)
        };
        let free = [-7.0, 14.0, -19.0, 26.0, -31.0]
            .into_iter()
            .map(|dy| p.cy + dy)
            .filter(|y| *y - LABEL_HEIGHT >= 0.0 && *y <= HEIGHT)
            .find(|&y| {
                let (y0, y1) = (y - LABEL_HEIGHT + 2.0, y + 2.0);
                placed
                    .iter()
                    .all(|&(a0, b0, a1, b1)| x1 <= a0 || x0 >= a1 || y1 <= b0 || y0 >= b1)
            });
        match free {
            Some(y) => {
                placed.push((x0, y - LABEL_HEIGHT + 2.0, x1, y + 2.0));
                p.label_x = round1(x);
                p.label_y = round1(y);
                p.label_anchor = anchor;
            }
            None => p.label.clear(),
        }
    }
    points
}

/// A linear scale from `domain` to `range`.
fn scale(value: f64, domain: (f64, f64), range: (f64, f64)) -> f64 {
    let span = domain.1 - domain.0;
    if span.abs() < f64::EPSILON {
        return (range.0 + range.1) / 2.0;
    }
    range.0 + (value - domain.0) / span * (range.1 - range.0)
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// Ticks at round steps covering `domain`.
fn linear_ticks(domain: (f64, f64), count: usize) -> Vec<f64> {
    let span = (domain.1 - domain.0).max(f64::EPSILON);
    let raw = span / count.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(raw);
    let mut ticks = Vec::new();
    let mut t = (domain.0 / step).ceil() * step;
    while t <= domain.1 + step * 1e-9 && ticks.len() < 50 {
        ticks.push(t);
        t += step;
    }
    ticks
}

fn number_label(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        let s = format!("{v:.1}");
        s.strip_suffix(".0").map(String::from).unwrap_or(s)
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').to_string()
    }
}

pub(crate) fn scatter(data: ChartData, title: &str) -> Scatter {
    let (x_label, log) = match data.axis {
        Axis::Price => (
            "Blended price, $ per 1M tokens (log scale; free models at the left edge)",
            true,
        ),
        Axis::Speed => ("Output speed, tokens per second (median)", false),
    };
    // The quality axis: 0–100 points unless a value falls outside.
    let lows = data
        .points
        .iter()
        .map(|p| p.ci95.map_or(p.quality, |c| c.0.min(p.quality)));
    let highs = data
        .points
        .iter()
        .map(|p| p.ci95.map_or(p.quality, |c| c.1.max(p.quality)));
    let y_domain = (lows.fold(0.0f64, f64::min), highs.fold(100.0f64, f64::max));
    // The x axis: log10 of positive prices, with zero at the left edge.
    let xs: Vec<f64> = data.points.iter().map(|p| p.x).collect();
    let x_domain = if log {
        let positive: Vec<f64> = xs.iter().copied().filter(|x| *x > 0.0).collect();
        let lo = positive.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = positive.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if lo.is_finite() {
            (
                lo.log10().floor(),
                hi.log10().ceil().max(lo.log10().floor() + 1.0),
            )
        } else {
            (-1.0, 1.0)
        }
    } else {
        let hi = xs.iter().copied().fold(0.0f64, f64::max);
        (0.0, if hi > 0.0 { hi * 1.1 } else { 1.0 })
    };
    // Free models sit on the left edge; positive prices start a little right of it.
    let free_gap = if log && xs.iter().any(|x| *x <= 0.0) {
        30.0
    } else {
        0.0
    };
    let x_of = |x: f64| -> f64 {
        if log {
            if x <= 0.0 {
                LEFT + 8.0
            } else {
                scale(x.log10(), x_domain, (LEFT + 8.0 + free_gap, RIGHT - 10.0))
            }
        } else {
            scale(x, x_domain, (LEFT + 8.0, RIGHT - 10.0))
        }
    };
    let y_of = |y: f64| scale(y, y_domain, (BOTTOM, TOP));
    let x_ticks: Vec<Tick> = if log {
        let mut ticks: Vec<Tick> = ((x_domain.0 as i32)..=(x_domain.1 as i32))
            .map(|e| {
                let v = 10f64.powi(e);
                Tick {
                    at: round1(x_of(v)),
                    label: format!("${}", number_label(v)),
                }
            })
            .collect();
        if free_gap > 0.0 {
            ticks.insert(
                0,
                Tick {
                    at: round1(x_of(0.0)),
                    label: "free".into(),
                },
            );
        }
        ticks
    } else {
        linear_ticks(x_domain, 6)
            .into_iter()
            .map(|v| Tick {
                at: round1(x_of(v)),
                label: number_label(v),
            })
            .collect()
    };
    let y_ticks = linear_ticks(y_domain, 5)
        .into_iter()
        .map(|v| Tick {
            at: round1(y_of(v)),
            label: number_label(v),
        })
        .collect();
    let points = data
        .points
        .iter()
        .map(|p| {
            let (lo, hi) = p.ci95.unwrap_or((p.quality, p.quality));
            let x_text = match data.axis {
                Axis::Price => format!("${:.3} per 1M tokens", p.x),
                Axis::Speed => format!("{:.1} tokens/s", p.x),
            };
            let interval = p
                .ci95
                .map(|(lo, hi)| format!(" (95% interval {lo:.1}–{hi:.1})"))
                .unwrap_or_default();
            SvgPoint {
                cx: round1(x_of(p.x)),
                cy: round1(y_of(p.quality)),
                y_hi: round1(y_of(hi)),
                y_lo: round1(y_of(lo)),
                access: p.access,
                label: short_label(&p.name),
                label_x: 0.0,
                label_y: 0.0,
                label_anchor: "start",
                title: format!(
                    "{} ({}): {:.1}{interval}, {x_text}",
                    p.name, p.access, p.quality
                ),
                href: format!("/models/{}", p.model_id),
                on_front: p.on_front,
            }
        })
        .collect::<Vec<SvgPoint>>();
    let points = place_labels(points);
    let front_line = data
        .front
        .iter()
        .filter_map(|id| data.points.iter().find(|p| p.model_id == *id))
        .map(|p| format!("{},{}", round1(x_of(p.x)), round1(y_of(p.quality))))
        .collect::<Vec<_>>()
        .join(" ");
    Scatter {
        width: WIDTH,
        height: HEIGHT,
        left: LEFT,
        right: RIGHT,
        top: TOP,
        bottom: BOTTOM,
        title: title.to_string(),
        x_label: x_label.to_string(),
        y_label: format!("Quality: {} (points)", data.scored_on),
        x_ticks,
        y_ticks,
        points,
        front_line,
        data,
    }
}

/// A line chart over time (the history).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Lines {
    pub(crate) width: f64,
    pub(crate) height: f64,
    pub(crate) left: f64,
    pub(crate) right: f64,
    pub(crate) top: f64,
    pub(crate) bottom: f64,
    pub(crate) title: String,
    pub(crate) y_label: String,
    pub(crate) x_ticks: Vec<Tick>,
    pub(crate) y_ticks: Vec<Tick>,
    pub(crate) zero: Option<f64>,
    pub(crate) series: Vec<LineSeries>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct LineSeries {
    pub(crate) name: String,
    /// Index into the chart palette (CSS classes `series-0` …).
    pub(crate) index: usize,
    pub(crate) points: String,
    pub(crate) dots: Vec<(f64, f64)>,
}

/// `series`: a name and one value (or gap) per entry of `x_labels`.
pub(crate) fn lines(
    title: &str,
    y_label: &str,
    x_labels: &[String],
    series: &[(String, Vec<Option<f64>>)],
) -> Lines {
    let values = series.iter().flat_map(|(_, v)| v.iter().flatten().copied());
    let (mut lo, mut hi) = values.fold((0.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if (hi - lo).abs() < 1.0 {
        lo -= 1.0;
        hi += 1.0;
    }
    // A margin, so the highest and lowest points sit inside the plot.
    let pad = (hi - lo) * 0.08;
    let (lo, hi) = (lo - pad, hi + pad);
    let n = x_labels.len();
    let x_of = |i: usize| {
        if n <= 1 {
            (LEFT + RIGHT) / 2.0
        } else {
            scale(i as f64, (0.0, (n - 1) as f64), (LEFT + 10.0, RIGHT - 10.0))
        }
    };
    let y_of = |v: f64| scale(v, (lo, hi), (BOTTOM, TOP));
    let every = n.div_ceil(6).max(1);
    let x_ticks = x_labels
        .iter()
        .enumerate()
        .filter(|(i, _)| i % every == 0 || *i + 1 == n)
        .map(|(i, label)| Tick {
            at: round1(x_of(i)),
            label: label.get(..10).unwrap_or(label).to_string(),
        })
        .collect();
    let y_ticks = linear_ticks((lo, hi), 5)
        .into_iter()
        .map(|v| Tick {
            at: round1(y_of(v)),
            label: number_label(v),
        })
        .collect();
    let series = series
        .iter()
        .enumerate()
        .map(|(index, (name, values))| {
            let dots: Vec<(f64, f64)> = values
                .iter()
                .enumerate()
                .filter_map(|(i, v)| Some((round1(x_of(i)), round1(y_of((*v)?)))))
                .collect();
            LineSeries {
                name: name.clone(),
                index: index % 8,
                points: dots
                    .iter()
                    .map(|(x, y)| format!("{x},{y}"))
                    .collect::<Vec<_>>()
                    .join(" "),
                dots,
            }
        })
        .collect();
    Lines {
        width: WIDTH,
        height: HEIGHT,
        left: LEFT,
        right: RIGHT,
        top: TOP,
        bottom: BOTTOM,
        title: title.to_string(),
        y_label: y_label.to_string(),
        x_ticks,
        y_ticks,
        zero: (lo < 0.0 && hi > 0.0).then(|| round1(y_of(0.0))),
        series,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_domain() {
        assert_eq!(
            linear_ticks((0.0, 100.0), 5),
            vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]
        );
        assert_eq!(number_label(0.25), "0.25");
        assert_eq!(number_label(10.0), "10");
        assert_eq!(scale(5.0, (0.0, 10.0), (100.0, 0.0)), 50.0);
    }
}
