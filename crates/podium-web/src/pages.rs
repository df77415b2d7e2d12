//! The HTML pages, and the data behind them that the JSON API shares: the
//! board, the charts, the pick, a model, a run's samples, the history and the
//! definitions.

use std::collections::BTreeSet;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use podium_board::{
    Axis, Leaderboard, ModelInfo, ModelRow, PickRequest, access_label, metric_choice,
};
use podium_store::{RunRecord, SampleQuery, SampleRecord};
use podium_tasks::results::TaskResult;
use serde::Serialize;
use serde_json::{Value, json};

use crate::charts::{self, ChartData};
use crate::params::{Params, parse_id};
use crate::render::{self, html};
use crate::samples::{SampleView, sample_view};
use crate::view::{self, BoardQuery, BoardView, Direction};
use crate::{AppError, AppState};

const STYLE_CSS: &str = include_str!("../static/style.css");
const BOARD_JS: &str = include_str!("../static/board.js");
const ARENA_JS: &str = include_str!("../static/arena.js");

pub(crate) async fn style_css() -> Response {
    static_file(STYLE_CSS, "text/css; charset=utf-8")
}

pub(crate) async fn board_js() -> Response {
    static_file(BOARD_JS, "text/javascript; charset=utf-8")
}

pub(crate) async fn arena_js() -> Response {
    static_file(ARENA_JS, "text/javascript; charset=utf-8")
}

fn static_file(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

/// 404: JSON below `/api/`, a page elsewhere.
pub(crate) async fn not_found(uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") {
        AppError::not_found("no such endpoint (see /api/v1/openapi.json)").into_json()
    } else {
        AppError::not_found("there is no page at this address").into_html()
    }
}

// ---------------------------------------------------------------- the board

/// The board a request asks for, and the view of it.
pub(crate) async fn board_and_view(
    state: &AppState,
    params: &Params,
) -> Result<(std::sync::Arc<Leaderboard>, BoardQuery, BoardView), AppError> {
    let query = BoardQuery::parse(params, state.default_options())?;
    let board = state.board(query.options.clone()).await?;
    let view = view::view(&board, &query)?;
    Ok((board, query, view))
}

pub(crate) async fn board(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let gzip = render::accepts_gzip(&headers);
    html(board_page(&state, raw.as_deref(), gzip).await)
}

/// The board page, rendered (and gzipped, for a client that accepts it) once
/// per data version and query string.
/// Rows the board page shows at a time (`rows=` changes it, up to the max).
const BOARD_ROWS_PER_PAGE: u64 = 25;
const MAX_BOARD_ROWS_PER_PAGE: u64 = 1000;

async fn board_page(state: &AppState, raw: Option<&str>, gzip: bool) -> Result<Response, AppError> {
    let key = format!("/?{}", raw.unwrap_or(""));
    let body = state
        .cached(&key, gzip, || render_board_page(state, raw))
        .await?;
    Ok(render::encoded(render::html_body(body), gzip))
}

async fn render_board_page(state: &AppState, raw: Option<&str>) -> Result<Vec<u8>, AppError> {
    let params = Params::parse(raw)?;
    let (board, query, view) = board_and_view(state, &params).await?;
    // One page of rows (the JSON API and the CSV keep them all): a board of
    // 1,000 models × 50 columns is ~15 MB of HTML otherwise.
    let per_page = params.u64("rows")?.unwrap_or(BOARD_ROWS_PER_PAGE);
    if !(1..=MAX_BOARD_ROWS_PER_PAGE).contains(&per_page) {
        return Err(AppError::bad_request(format!(
            "`rows` must be 1 to {MAX_BOARD_ROWS_PER_PAGE}"
        )));
    }
    let n_pages = (view.rows.len() as u64).div_ceil(per_page).max(1);
    let page = params.u64("page")?.unwrap_or(1);
    if page == 0 || page > n_pages {
        return Err(AppError::bad_request(format!(
            "`page` must be 1 to {n_pages}"
        )));
    }
    let first = ((page - 1) * per_page) as usize;
    let mut view = view;
    let shown_total = view.rows.len();
    view.all_rows = view.rows.clone();
    view.rows = view
        .rows
        .iter()
        .copied()
        .skip(first)
        .take(per_page as usize)
        .collect();
    let pager = json!({
        "page": page,
        "pages": n_pages,
        "from": if shown_total == 0 { 0 } else { first + 1 },
        "to": first + view.rows.len(),
        "matching": shown_total,
        "prev": (page > 1).then(|| format!("/{}", params.with("page", Some(&(page - 1).to_string()), &[]))),
        "next": (page < n_pages).then(|| format!("/{}", params.with("page", Some(&(page + 1).to_string()), &[]))),
    });
    let (price, speed) = view_charts(&board, &view, &params)?;
    let price = charts::scatter(price, "Quality against blended price");
    let speed = charts::scatter(speed, "Quality against output speed");
    let ctx = json!({
        "page": "board",
        "board": board_table(&board, &view, &params, &query),
        "pager": pager,
        "filters": filters(&board, &params),
        "price_chart": price,
        "speed_chart": speed,
        "csv_href": format!("/board.csv{}", params.query_string()),
        "api_href": format!("/api/v1/board{}", params.query_string()),
        "skipped": board.skipped,
    });
    render::page_body("board.html", ctx)
}

/// The board's URL sorted by `key`: the natural direction first, flipped
/// when it is already sorted by `key`.
fn sort_href(params: &Params, key: &str, view: &BoardView) -> String {
    let base = params.with("sort", Some(key), &["dir"]);
    if view.sort.as_deref() != Some(key) {
        return base;
    }
    let flipped = match view.dir {
        Direction::Ascending => "desc",
        Direction::Descending => "asc",
    };
    format!("{base}&dir={flipped}")
}

fn header_cell(params: &Params, view: &BoardView, key: &str, label: &str, about: &str) -> Value {
    let sorted = (view.sort.as_deref() == Some(key)).then(|| view.dir.as_str());
    json!({
        "key": key,
        "label": label,
        "href": format!("/{}", sort_href(params, key, view)),
        "about": format!("/about#{about}"),
        "sorted": sorted,
    })
}

fn board_table(
    board: &Leaderboard,
    view: &BoardView,
    params: &Params,
    query: &BoardQuery,
) -> Value {
    let columns: Vec<Value> = view
        .columns
        .iter()
        .map(|&i| {
            let column = &board.columns[i];
            let mut header = header_cell(params, view, &column.id, &column.label, "score");
            let setting = &column.setting;
            header["title"] = json!(format!(
                "{}: metric {}, {} shots, chat template {}, {}; task hash {}",
                setting.task,
                setting.metric,
                setting.n_shots,
                if setting.chat_template { "on" } else { "off" },
                setting
                    .limit
                    .map_or_else(|| "all docs".to_string(), |n| format!("first {n} docs")),
                setting.content_hash.chars().take(16).collect::<String>(),
            ));
            header["in_average"] = json!(board.average_columns.contains(&i));
            // A category's sub-column: headed by the category under its task's name.
            if let (Some(parent), Some(category)) = (&column.parent, &setting.category) {
                header["sub"] = json!(true);
                header["label"] = json!(format!("{parent} › {category}"));
                header["title"] = json!(format!(
                    "category `{category}` of {}",
                    header["title"].as_str().unwrap_or_default()
                ));
            }
            header
        })
        .collect();
    let fixed = |key: &str, label: &str, about: &str| header_cell(params, view, key, label, about);
    // Which average ranks are shared among the rows the filters keep (on any page).
    let ranks: Vec<usize> = view
        .all_rows
        .iter()
        .filter_map(|&r| board.models[r].average.as_ref().map(|a| a.rank))
        .collect();
    let rows: Vec<Value> = view
        .rows
        .iter()
        .map(|&r| {
            let row = &board.models[r];
            let cells: Vec<Value> = view
                .columns
                .iter()
                .map(|&i| {
                    let unit = board.columns[i].unit_range;
                    match &row.cells[i] {
                        None => json!(null),
                        Some(cell) => json!({
                            "text": render::score(cell.value, unit),
                            "half": render::half_width(cell.ci95, unit),
                            // Short: a board page holds rows × columns of these
                            // (the note under the table says what they are).
                            "title": render::cell_title(cell.ci95, unit, cell.n, cell.rank),
                            "low": cell.low_confidence,
                            // A group cell aggregates several runs: its model's page lists them.
                            // Built from ids only: nothing to escape, so not
                            // escaped (minijinja would write each `/` as `&#x2f;`).
                            "href": minijinja::Value::from_safe_string(if cell.member_runs.is_empty() {
                                format!("/runs/{}/samples", cell.run_id)
                            } else {
                                format!("/models/{}", row.id)
                            }),
                        }),
                    }
                })
                .collect();
            let average = row.average.as_ref().map(|a| {
                json!({
                    "text": format!("{:.1}", a.value),
                    "half": a.ci95.map(|(lo, hi)| format!("± {:.1}", (hi - lo) / 2.0)),
                    "title": match a.ci95 {
                        Some((lo, hi)) => format!("95% interval {lo:.2}–{hi:.2} points over {} columns", board.average_columns.len()),
                        None => "no interval".to_string(),
                    },
                })
            });
            let missing = view::missing_average_columns(board, row);
            let rank = row.average.as_ref().map(|a| a.rank);
            let shared = rank.is_some_and(|k| ranks.iter().filter(|&&x| x == k).count() > 1);
            json!({
                "id": row.id,
                "name": row.name,
                "spec": row.spec,
                "href": format!("/models/{}", row.id),
                "pinned": query.pins.contains(&row.id),
                "rank": rank.map_or_else(|| "—".to_string(), |k| k.to_string()),
                "rank_shared": shared,
                "access": access_label(row.info.access),
                "licence": render::or_unknown(&row.info.licence),
                "parameters": render::parameters(row.info.parameters),
                "provider": render::or_unknown(&row.info.provider),
                "cells": cells,
                "average": average,
                "no_average": if board.average_columns.is_empty() {
                    "no average (no column has a normalized score)".to_string()
                } else {
                    format!("no average (missing: {})", missing.join(", "))
                },
                "speed": render::speed(row.speed.as_ref().and_then(|s| s.output_speed)),
                "ttft": render::seconds(row.speed.as_ref().and_then(|s| s.ttft_s)),
                "price": render::price(row.info.blended_price()),
                "last_run": render::date(&row.last_run),
            })
        })
        .collect();
    json!({
        "columns": columns,
        "rank": fixed("average", "Rank", "rank-ub"),
        "name": fixed("name", "Model", "model"),
        "average": fixed("average", "Average", "average"),
        "speed": fixed("speed", "Output speed (tok/s)", "output-speed"),
        "ttft": fixed("ttft", "TTFT", "ttft"),
        "price": fixed("price", "Blended $/1M", "blended-price"),
        "rows": rows,
        "hidden": view.hidden,
        "total": board.models.len(),
        "average_over": board.average_columns.iter().map(|&i| board.columns[i].label.clone()).collect::<Vec<_>>(),
        "as_of": board.options.as_of,
        "bench_load": board.options.bench_load,
    })
}

/// The filter form's current values and choices.
fn filters(board: &Leaderboard, params: &Params) -> Value {
    let distinct = |f: &dyn Fn(&ModelInfo) -> Option<String>| {
        board
            .models
            .iter()
            .filter_map(|m| f(&m.info))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    };
    let value = |key: &str| params.get(key).unwrap_or("").to_string();
    let avg = params.list("avg");
    json!({
        "access": value("access"),
        "licence": value("licence"),
        "provider": value("provider"),
        "min_params": value("min_params"),
        "max_params": value("max_params"),
        "category": value("category"),
        "q": value("q"),
        "pin": value("pin"),
        "as_of": value("as_of"),
        "sort": value("sort"),
        "dir": value("dir"),
        "col": value("col"),
        "licences": distinct(&|i| i.licence.clone()),
        "providers": distinct(&|i| i.provider.clone()),
        "categories": view::categories(board),
        // Checked: the columns the average is over now (all by default).
        "avg_columns": board.columns.iter().enumerate().filter(|(_, c)| c.random_baseline.is_some()).map(|(i, c)| json!({
            "id": c.id, "label": c.label,
            "checked": avg.contains(&c.id) || board.average_columns.contains(&i),
        })).collect::<Vec<_>>(),
    })
}

// ---------------------------------------------------------------- charts

/// `col=`: a column id (higher is better) or `average`/absent.
pub(crate) fn chart_column(
    board: &Leaderboard,
    params: &Params,
) -> Result<Option<usize>, AppError> {
    match params.get("col").filter(|c| *c != "average") {
        None => Ok(None),
        Some(id) => {
            let index = board.column(id).ok_or_else(|| {
                AppError::bad_request(format!(
                    "no column `{id}` on this board (columns: {})",
                    board
                        .columns
                        .iter()
                        .map(|c| c.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
            if !board.columns[index].higher_is_better {
                return Err(AppError::bad_request(format!(
                    "column `{id}` is lower-is-better; the charts plot quality, where higher is better"
                )));
            }
            Ok(Some(index))
        }
    }
}

/// Both charts' data, for `/charts` and `/api/v1/charts`.
pub(crate) async fn charts_data(
    state: &AppState,
    params: &Params,
) -> Result<(std::sync::Arc<Leaderboard>, ChartData, ChartData), AppError> {
    let (board, _, view) = board_and_view(state, params).await?;
    let (price, speed) = view_charts(&board, &view, params)?;
    Ok((board, price, speed))
}

/// Both charts over the rows a view shows (`col=` may name any column).
fn view_charts(
    board: &Leaderboard,
    view: &BoardView,
    params: &Params,
) -> Result<(ChartData, ChartData), AppError> {
    let shown = Leaderboard {
        columns: board.columns.clone(),
        average_columns: board.average_columns.clone(),
        models: view.rows.iter().map(|&r| board.models[r].clone()).collect(),
        options: board.options.clone(),
        skipped: Vec::new(),
    };
    let column = chart_column(&shown, params)?;
    Ok((
        charts::chart_data(&shown, column, Axis::Price),
        charts::chart_data(&shown, column, Axis::Speed),
    ))
}

pub(crate) async fn charts(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    html(charts_page(&state, raw.as_deref()).await)
}

async fn charts_page(state: &AppState, raw: Option<&str>) -> Result<Response, AppError> {
    let params = Params::parse(raw)?;
    let (board, price, speed) = charts_data(state, &params).await?;
    let ctx = json!({
        "page": "charts",
        "price_chart": charts::scatter(price, "Quality against blended price"),
        "speed_chart": charts::scatter(speed, "Quality against output speed"),
        "filters": filters(&board, &params),
        "columns": board.columns.iter().filter(|c| c.higher_is_better).map(|c| json!({"id": c.id, "label": c.label})).collect::<Vec<_>>(),
        "api_href": format!("/api/v1/charts{}", params.query_string()),
    });
    render::page("charts.html", ctx)
}

// ---------------------------------------------------------------- the pick

pub(crate) async fn pick_data(
    state: &AppState,
    params: &Params,
) -> Result<(std::sync::Arc<Leaderboard>, podium_board::Pick), AppError> {
    let request = PickRequest {
        column: params.get("col").map(String::from),
        min_score: params.f64("min_score")?,
        max_price: params.f64("max_price")?,
        min_speed: params.f64("min_speed")?,
    };
    let query = BoardQuery::parse(params, state.default_options())?;
    let board = state.board(query.options).await?;
    let pick = podium_board::pick(&board, &request)?;
    Ok((board, pick))
}

pub(crate) async fn pick(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    html(pick_page(&state, raw.as_deref()).await)
}

async fn pick_page(state: &AppState, raw: Option<&str>) -> Result<Response, AppError> {
    let params = Params::parse(raw)?;
    let (board, pick) = pick_data(state, &params).await?;
    let qualified: Vec<Value> = pick
        .qualified
        .iter()
        .map(|q| {
            json!({
                "href": format!("/models/{}", q.model_id),
                "name": q.name,
                "quality": format!("{:.1}", q.quality),
                "half": q.ci95.map(|(lo, hi)| format!("± {:.1}", (hi - lo) / 2.0)),
                "title": q.ci95.map(|(lo, hi)| format!("95% interval {lo:.2}–{hi:.2}")).unwrap_or_default(),
                "price": render::price(q.blended_price),
                "speed": render::speed(q.output_speed),
                "clearly": q.verdict == podium_board::Verdict::ClearlyAbove,
            })
        })
        .collect();
    let value = |key: &str| params.get(key).unwrap_or("").to_string();
    let ctx = json!({
        "page": "pick",
        "scored_on": pick.scored_on,
        "qualified": qualified,
        "excluded": pick.excluded.iter().map(|e| json!({
            "href": format!("/models/{}", e.model_id), "name": e.name, "reason": e.reason,
        })).collect::<Vec<_>>(),
        "columns": board.columns.iter().filter(|c| c.higher_is_better).map(|c| json!({
            "id": c.id, "label": c.label, "selected": params.get("col") == Some(c.id.as_str()),
        })).collect::<Vec<_>>(),
        "form": { "min_score": value("min_score"), "max_price": value("max_price"), "min_speed": value("min_speed") },
        "api_href": format!("/api/v1/pick{}", params.query_string()),
    });
    render::page("pick.html", ctx)
}

// ---------------------------------------------------------------- a model

/// One run on a model's page.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RunView {
    pub(crate) run_id: i64,
    pub(crate) task: String,
    pub(crate) task_hash: String,
    /// The hash's first characters, for tables.
    pub(crate) task_hash_short: String,
    pub(crate) n_shots: u32,
    pub(crate) chat_template: bool,
    pub(crate) limit: Option<u64>,
    pub(crate) seed: u64,
    pub(crate) podium_version: String,
    pub(crate) status: &'static str,
    pub(crate) error: Option<String>,
    pub(crate) started_at: String,
    pub(crate) finished_at: Option<String>,
    /// The manifest's plain fields, those named like credentials left out.
    pub(crate) manifest: Vec<(String, String)>,
    pub(crate) samples_href: String,
}

/// A run's board-metric score, for the model's scores over time.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ScorePoint {
    pub(crate) run_id: i64,
    pub(crate) task: String,
    pub(crate) metric: String,
    pub(crate) value: f64,
    pub(crate) ci95: Option<(f64, f64)>,
    pub(crate) n: usize,
    pub(crate) unit_range: bool,
    pub(crate) finished_at: String,
}

/// One load level of the model's latest bench: percentiles per metric.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct BenchLevel {
    pub(crate) load: String,
    pub(crate) measured_at: String,
    /// (metric, [p5, p25, p50, p75, p90, p95, p99]); `None` where absent.
    pub(crate) metrics: Vec<(String, Vec<Option<f64>>)>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ModelData {
    pub(crate) id: i64,
    pub(crate) spec: String,
    pub(crate) fingerprint: String,
    pub(crate) name: String,
    pub(crate) info: ModelInfo,
    pub(crate) board_row: Option<ModelRow>,
    pub(crate) runs: Vec<RunView>,
    pub(crate) scores: Vec<ScorePoint>,
    pub(crate) bench: Vec<BenchLevel>,
}

pub(crate) const PERCENTILES: &[&str] = &["p5", "p25", "p50", "p75", "p90", "p95", "p99"];

/// A manifest key that might hold a credential.
fn secret_like(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "key",
        "token",
        "secret",
        "password",
        "passwd",
        "auth",
        "credential",
        "cookie",
    ]
    .iter()
    .any(|s| key.contains(s))
}

fn manifest_fields(manifest_json: &str) -> Vec<(String, String)> {
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(manifest_json) else {
        return Vec::new();
    };
    map.iter()
        .filter(|(k, _)| !secret_like(k))
        .filter_map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            Some((k.clone(), text))
        })
        .collect()
}

fn run_view(run: &RunRecord) -> RunView {
    RunView {
        run_id: run.run_id,
        task: run.task_name.clone(),
        task_hash: run.content_hash.clone(),
        task_hash_short: run.content_hash.chars().take(15).collect(),
        n_shots: run.n_shots,
        chat_template: run.chat_template,
        limit: run.limit,
        seed: run.seed,
        podium_version: run.podium_version.clone(),
        status: match run.status {
            podium_store::RunStatus::Running => "running",
            podium_store::RunStatus::Finished => "finished",
            podium_store::RunStatus::Failed => "failed",
        },
        error: run.error.clone(),
        started_at: run.started_at.clone(),
        finished_at: run.finished_at.clone(),
        manifest: manifest_fields(&run.manifest_json),
        samples_href: format!("/runs/{}/samples", run.run_id),
    }
}

/// The board metric of a run's stored results.
fn board_metric_of(results_json: Option<&str>) -> Option<podium_tasks::results::MetricResult> {
    let result: TaskResult = serde_json::from_str(results_json?).ok()?;
    metric_choice::board_metric(&result).cloned()
}

pub(crate) async fn model_data(state: &AppState, id: i64) -> Result<ModelData, AppError> {
    let board = state.board(state.default_options().clone()).await?;
    let (runs, bench) = state
        .with_store(move |store, _| Ok((store.model_runs(id)?, store.latest_bench_results()?)))
        .await?;
    let Some(first) = runs.first() else {
        return Err(AppError::not_found(format!("no model with id {id}")));
    };
    let spec = first.model_spec.clone();
    let board_row = board.model(id).cloned();
    let info = match &board_row {
        Some(row) => row.info.clone(),
        None => {
            let spec = spec.clone();
            state
                .with_store(move |_, catalog| Ok(catalog.info(&spec)))
                .await?
        }
    };
    let mut scores: Vec<ScorePoint> = runs
        .iter()
        .filter_map(|run| {
            let metric = board_metric_of(run.results_json.as_deref())?;
            Some(ScorePoint {
                run_id: run.run_id,
                task: run.task_name.clone(),
                metric: metric.key.clone(),
                value: metric.value,
                ci95: metric.ci95(),
                n: metric.n,
                unit_range: metric.unit_range || metric.proportion,
                finished_at: run.finished_at.clone()?,
            })
        })
        .collect();
    scores.sort_by(|a, b| a.task.cmp(&b.task).then(a.finished_at.cmp(&b.finished_at)));
    let bench = bench
        .iter()
        .filter(|b| b.model_spec == spec)
        .map(|b| {
            let summary: Value = serde_json::from_str(&b.summary_json).unwrap_or(Value::Null);
            BenchLevel {
                load: b.load.clone(),
                measured_at: b.created_at.clone(),
                metrics: ["output_speed", "ttft_s", "tpot_s"]
                    .iter()
                    .map(|key| {
                        let values = PERCENTILES
                            .iter()
                            .map(|p| {
                                summary
                                    .get(key)
                                    .and_then(|m| m.get(p))
                                    .and_then(Value::as_f64)
                            })
                            .collect();
                        (key.to_string(), values)
                    })
                    .collect(),
            }
        })
        .collect();
    Ok(ModelData {
        id,
        name: board_row
            .as_ref()
            .map(|r| r.name.clone())
            .or_else(|| info.display_name.clone())
            .unwrap_or_else(|| spec.clone()),
        spec,
        fingerprint: first.fingerprint.clone(),
        info,
        board_row,
        runs: runs.iter().map(run_view).collect(),
        scores,
        bench,
    })
}

pub(crate) async fn model(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    html(model_page(&state, &id).await)
}

async fn model_page(state: &AppState, id: &str) -> Result<Response, AppError> {
    let id = parse_id("model id", id)?;
    let data = model_data(state, id).await?;
    let info = &data.info;
    let facts = vec![
        ("Spec", data.spec.clone()),
        ("Fingerprint", data.fingerprint.clone()),
        ("Catalogue name", render::or_unknown(&info.catalog_name)),
        ("Provider", render::or_unknown(&info.provider)),
        ("Access", access_label(info.access).to_string()),
        ("Licence", render::or_unknown(&info.licence)),
        ("Parameters", render::parameters(info.parameters)),
        (
            "Context length",
            info.context_length
                .map_or_else(|| "unknown".into(), |c| format!("{c} tokens")),
        ),
        (
            "Price in / out",
            match (info.price_in, info.price_out) {
                (Some(i), Some(o)) => format!("${i} / ${o} per 1M tokens"),
                _ => "unknown".into(),
            },
        ),
        ("Blended price", render::price(info.blended_price())),
    ];
    let scores: Vec<Value> = data
        .scores
        .iter()
        .map(|s| {
            json!({
                "task": s.task, "metric": s.metric,
                "text": render::score(s.value, s.unit_range),
                "half": render::half_width(s.ci95, s.unit_range),
                "title": render::interval_title(s.ci95, s.unit_range, Some(s.n)),
                "finished": s.finished_at,
                "href": format!("/runs/{}/samples", s.run_id),
            })
        })
        .collect();
    let bench: Vec<Value> = data
        .bench
        .iter()
        .map(|level| {
            json!({
                "load": level.load,
                "measured_at": level.measured_at,
                "metrics": level.metrics.iter().map(|(key, values)| json!({
                    "name": match key.as_str() {
                        "output_speed" => "output speed (tok/s)",
                        "ttft_s" => "TTFT (s)",
                        _ => "TPOT (s)",
                    },
                    "values": values.iter().map(|v| v.map_or_else(|| "—".to_string(), |x| format!("{x:.3}"))).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let ctx = json!({
        "page": "model",
        "name": data.name,
        "id": data.id,
        "facts": facts,
        "runs": data.runs,
        "scores": scores,
        "bench": bench,
        "percentiles": PERCENTILES,
        "on_board": data.board_row.is_some(),
        "api_href": format!("/api/v1/models/{}", data.id),
    });
    render::page("model.html", ctx)
}

// ---------------------------------------------------------------- samples

/// The run a samples page shows, and its board metric.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RunHeader {
    pub(crate) run: RunView,
    pub(crate) model_id: i64,
    pub(crate) model_spec: String,
    pub(crate) metric: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct SamplesData {
    pub(crate) run: RunHeader,
    pub(crate) vs: Option<RunHeader>,
    pub(crate) differ: bool,
    pub(crate) total: u64,
    pub(crate) page: u64,
    pub(crate) per_page: u64,
    /// Each sample, with the other run's sample of the same doc in `vs` mode.
    pub(crate) samples: Vec<(SampleRecord, Option<SampleRecord>)>,
}

pub(crate) const DEFAULT_PER_PAGE: u64 = 20;
pub(crate) const MAX_PER_PAGE: u64 = 100;

fn run_header(run: &RunRecord) -> RunHeader {
    RunHeader {
        run: run_view(run),
        model_id: run.model_id,
        model_spec: run.model_spec.clone(),
        metric: board_metric_of(run.results_json.as_deref()).map(|m| m.key),
    }
}

pub(crate) async fn samples_data(
    state: &AppState,
    id: &str,
    params: &Params,
) -> Result<SamplesData, AppError> {
    let run_id = parse_id("run id", id)?;
    let page = params.u64("page")?.unwrap_or(1);
    if page == 0 {
        return Err(AppError::bad_request("query parameter `page` starts at 1"));
    }
    let per_page = params.u64("per_page")?.unwrap_or(DEFAULT_PER_PAGE);
    if !(1..=MAX_PER_PAGE).contains(&per_page) {
        return Err(AppError::bad_request(format!(
            "query parameter `per_page` must be 1 to {MAX_PER_PAGE}, got {per_page}"
        )));
    }
    let outcome = match params.get("outcome") {
        None => None,
        Some(o @ ("correct" | "wrong" | "failed")) => Some(o.to_string()),
        Some(other) => {
            return Err(AppError::bad_request(format!(
                "query parameter `outcome` must be correct, wrong or failed, got `{other}`"
            )));
        }
    };
    let vs_id = params.i64("vs")?;
    let differ = params.flag("differ")?;
    if differ && vs_id.is_none() {
        return Err(AppError::bad_request(
            "`differ=1` compares two runs: give `vs=` too",
        ));
    }
    let text = params.get("q").map(String::from);
    state
        .with_store(move |store, _| {
            let run = store
                .run(run_id)?
                .ok_or_else(|| AppError::not_found(format!("no run with id {run_id}")))?;
            let header = run_header(&run);
            let vs = match vs_id {
                None => None,
                Some(other) => {
                    let other_run = store.run(other)?.ok_or_else(|| {
                        AppError::not_found(format!("no run with id {other} (the `vs` run)"))
                    })?;
                    if other_run.task_name != run.task_name {
                        return Err(AppError::bad_request(format!(
                            "run {other} is of task `{}` and run {run_id} of task `{}`: side by side needs runs of the same task",
                            other_run.task_name, run.task_name
                        )));
                    }
                    Some(run_header(&other_run))
                }
            };
            let correct = match outcome.as_deref() {
                Some(o @ ("correct" | "wrong")) => {
                    let metric = header.metric.clone().ok_or_else(|| {
                        AppError::bad_request(format!(
                            "run {run_id} has no board metric (it has not finished), so samples cannot be filtered by outcome"
                        ))
                    })?;
                    Some((metric, o == "correct"))
                }
                _ => None,
            };
            // Side by side: only the docs both runs have, and with `differ`
            // only those whose board-metric outcome differs.
            let doc_ids = match &vs {
                None => None,
                Some(other) => {
                    let metric = header.metric.clone().or_else(|| other.metric.clone()).unwrap_or_default();
                    let mine = store.sample_outcomes(run_id, &metric)?;
                    let theirs: std::collections::HashMap<u64, bool> =
                        store.sample_outcomes(other.run.run_id, &metric)?.into_iter().collect();
                    Some(
                        mine.into_iter()
                            .filter(|(doc, ok)| match theirs.get(doc) {
                                None => false,
                                Some(other_ok) => !differ || other_ok != ok,
                            })
                            .map(|(doc, _)| doc)
                            .collect::<Vec<u64>>(),
                    )
                }
            };
            let query = SampleQuery {
                correct,
                failed_only: outcome.as_deref() == Some("failed"),
                text,
                doc_ids,
                offset: (page - 1).saturating_mul(per_page),
                limit: per_page,
            };
            let (samples, total) = store.samples_page(run_id, &query)?;
            let paired = match &vs {
                None => samples.into_iter().map(|s| (s, None)).collect(),
                Some(other) => {
                    let ids: Vec<u64> = samples.iter().map(|s| s.doc_id).collect();
                    let (theirs, _) = store.samples_page(
                        other.run.run_id,
                        &SampleQuery {
                            doc_ids: Some(ids),
                            limit: per_page,
                            ..SampleQuery::default()
                        },
                    )?;
                    samples
                        .into_iter()
                        .map(|s| {
                            let other = theirs.iter().find(|t| t.doc_id == s.doc_id).cloned();
                            (s, other)
                        })
                        .collect()
                }
            };
            Ok(SamplesData {
                run: header,
                vs,
                differ,
                total,
                page,
                per_page,
                samples: paired,
            })
        })
        .await
}

pub(crate) async fn samples(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    html(samples_page(&state, &id, raw.as_deref()).await)
}

async fn samples_page(state: &AppState, id: &str, raw: Option<&str>) -> Result<Response, AppError> {
    let params = Params::parse(raw)?;
    let data = samples_data(state, id, &params).await?;
    let metric = data.run.metric.as_deref();
    let other_metric = data
        .vs
        .as_ref()
        .and_then(|v| v.metric.as_deref())
        .or(metric);
    let rows: Vec<(SampleView, Option<SampleView>)> = data
        .samples
        .iter()
        .map(|(mine, theirs)| {
            (
                sample_view(mine, metric),
                theirs.as_ref().map(|t| sample_view(t, other_metric)),
            )
        })
        .collect();
    let pages = data.total.div_ceil(data.per_page).max(1);
    let base = format!("/runs/{}/samples", data.run.run.run_id);
    let page_href = |page: u64| {
        format!(
            "{base}{}",
            params.with("page", Some(&page.to_string()), &[])
        )
    };
    let value = |key: &str| params.get(key).unwrap_or("").to_string();
    // Other models' runs in this run's board column: one click to compare.
    let board = state.board(state.default_options().clone()).await?;
    let run_id = data.run.run.run_id;
    let compare: Vec<Value> = board
        .columns
        .iter()
        .enumerate()
        .find(|(i, _)| {
            board
                .models
                .iter()
                .any(|m| m.cells[*i].as_ref().is_some_and(|c| c.run_id == run_id))
        })
        .map(|(i, _)| {
            board
                .models
                .iter()
                .filter_map(|m| Some((m, m.cells[i].as_ref()?)))
                .filter(|(_, c)| c.run_id != run_id)
                .map(|(m, c)| {
                    json!({
                        "name": m.name,
                        "href": format!("{base}?vs={}&differ=1", c.run_id),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let ctx = json!({
        "page": "samples",
        "compare": compare,
        "run": data.run,
        "vs": data.vs,
        "differ": data.differ,
        "rows": rows,
        "total": data.total,
        "page_number": data.page,
        "pages": pages,
        "per_page": data.per_page,
        "prev_href": (data.page > 1).then(|| page_href(data.page - 1)),
        "next_href": (data.page < pages).then(|| page_href(data.page + 1)),
        "form": { "outcome": value("outcome"), "q": value("q"), "vs": value("vs"), "per_page": value("per_page") },
        "base": base,
        "api_href": format!("/api/v1/runs/{}/samples{}", data.run.run.run_id, params.query_string()),
    });
    render::page("samples.html", ctx)
}

// ---------------------------------------------------------------- history

pub(crate) async fn history_data(
    state: &AppState,
    params: &Params,
) -> Result<std::sync::Arc<podium_board::History>, AppError> {
    let query = BoardQuery::parse(params, state.default_options())?;
    state.history(query.options).await
}

pub(crate) async fn history(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    html(history_page(&state, raw.as_deref()).await)
}

async fn history_page(state: &AppState, raw: Option<&str>) -> Result<Response, AppError> {
    let params = Params::parse(raw)?;
    let history = history_data(state, &params).await?;
    let gap_of = |at: &str, category: &str| {
        history
            .points
            .iter()
            .find(|p| p.at == at && p.category == category)
    };
    let series: Vec<(String, Vec<Option<f64>>)> = history
        .categories
        .iter()
        .map(|c| {
            let values = history
                .times
                .iter()
                .map(|t| gap_of(t, c).and_then(|p| p.gap))
                .collect();
            (c.clone(), values)
        })
        .collect();
    let chart = charts::lines(
        "Gap: best closed − best open (normalized points)",
        "closed − open (points)",
        &history.times,
        &series,
    );
    let table: Vec<Value> = history
        .times
        .iter()
        .rev()
        .map(|t| {
            json!({
                "at": render::date(t),
                "cells": history.categories.iter().map(|c| {
                    match gap_of(t, c) {
                        None => json!({"gap": "—", "title": "no model in this category yet"}),
                        Some(p) => json!({
                            "gap": p.gap.map_or_else(|| "—".to_string(), |g| format!("{g:+.1}")),
                            "title": format!(
                                "best open: {}; best closed: {}",
                                p.best_open.as_ref().map_or_else(|| "none".to_string(), |(n, s)| format!("{n} {s:.1}")),
                                p.best_closed.as_ref().map_or_else(|| "none".to_string(), |(n, s)| format!("{n} {s:.1}")),
                            ),
                        }),
                    }
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    // Rank changes: each model's first and latest average rank.
    let mut models: Vec<(i64, String)> = history
        .ranks
        .iter()
        .map(|r| (r.model_id, r.name.clone()))
        .collect();
    models.sort();
    models.dedup_by_key(|m| m.0);
    let ranks: Vec<Value> = models
        .iter()
        .map(|(id, name)| {
            let points: Vec<_> = history.ranks.iter().filter(|r| r.model_id == *id).collect();
            let first = points.first();
            let last = points.last();
            let change = match (first, last) {
                (Some(f), Some(l)) => l.rank as i64 - f.rank as i64,
                _ => 0,
            };
            json!({
                "href": format!("/models/{id}"),
                "name": name,
                "first": first.map(|p| format!("{} ({})", p.rank, render::date(&p.at))),
                "latest": last.map(|p| format!("{} ({})", p.rank, render::date(&p.at))),
                "average": last.map(|p| format!("{:.1}", p.average)),
                "change": match change {
                    0 => "unchanged".to_string(),
                    c if c < 0 => format!("up {}", -c),
                    c => format!("down {c}"),
                },
            })
        })
        .collect();
    let ctx = json!({
        "page": "history",
        "gap_chart": chart,
        "categories": history.categories,
        "table": table,
        "ranks": ranks,
        "api_href": format!("/api/v1/history{}", params.query_string()),
    });
    render::page("history.html", ctx)
}

// ---------------------------------------------------------------- about

pub(crate) async fn about() -> Response {
    html(render::page("about.html", json!({ "page": "about" })))
}
