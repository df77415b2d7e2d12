//! The JSON API (`/api/v1/…`, described by `/api/v1/openapi.json`) and the
//! CSV export. Each endpoint takes the same query parameters as its page and
//! returns the values the page shows, unformatted.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use podium_board::access_label;
use serde_json::{Value, json};

use crate::pages::{self, board_and_view};
use crate::params::{Params, parse_id};
use crate::render::{self, json};
use crate::view;
use crate::{AppError, AppState};

const OPENAPI: &str = include_str!("../static/openapi.json");

/// The board's JSON, serialized (and gzipped, for a client that accepts it)
/// once per data version and query string.
pub(crate) async fn board(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let gzip = render::accepts_gzip(&headers);
    let key = format!("/api/v1/board?{}", raw.as_deref().unwrap_or(""));
    let body = state
        .cached(&key, gzip, || async {
            let params = Params::parse(raw.as_deref())?;
            let (board, _, view) = board_and_view(&state, &params).await?;
            serde_json::to_vec(&view::restrict(&board, &view))
                .map_err(|err| AppError::internal(format!("serializing the board: {err}")))
        })
        .await;
    match body {
        Ok(body) => {
            let mut response = body.into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            render::encoded(response, gzip)
        }
        Err(err) => err.into_json(),
    }
}

pub(crate) async fn model(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    json(
        async {
            let id = parse_id("model id", &id)?;
            pages::model_data(&state, id).await
        }
        .await,
    )
}

fn parsed(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

fn sample_json(sample: &podium_store::SampleRecord) -> Value {
    json!({
        "doc_id": sample.doc_id,
        "prompt_hash": sample.prompt_hash,
        "status": sample.status.as_str(),
        "error": sample.error,
        "request": parsed(&sample.requests_json),
        "response": parsed(&sample.responses_json),
        "metrics": parsed(&sample.metrics_json),
        "n_input_tokens": sample.n_input_tokens,
        "n_output_tokens": sample.n_output_tokens,
    })
}

pub(crate) async fn samples(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    json(
        async {
            let params = Params::parse(raw.as_deref())?;
            let data = pages::samples_data(&state, &id, &params).await?;
            Ok(json!({
                "run": data.run,
                "vs": data.vs,
                "differ": data.differ,
                "total": data.total,
                "page": data.page,
                "per_page": data.per_page,
                "samples": data.samples.iter().map(|(mine, theirs)| {
                    let mut value = sample_json(mine);
                    if data.vs.is_some() {
                        value["vs"] = theirs.as_ref().map_or(Value::Null, sample_json);
                    }
                    value
                }).collect::<Vec<_>>(),
            }))
        }
        .await,
    )
}

pub(crate) async fn pick(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    json(
        async {
            let params = Params::parse(raw.as_deref())?;
            Ok(pages::pick_data(&state, &params).await?.1)
        }
        .await,
    )
}

pub(crate) async fn history(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    json(
        async {
            let params = Params::parse(raw.as_deref())?;
            let history = pages::history_data(&state, &params).await?;
            Ok(podium_board::History::clone(&history))
        }
        .await,
    )
}

pub(crate) async fn charts(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    json(
        async {
            let params = Params::parse(raw.as_deref())?;
            let (_, price, speed) = pages::charts_data(&state, &params).await?;
            Ok(json!({ "price": price, "speed": speed }))
        }
        .await,
    )
}

pub(crate) async fn openapi() -> Response {
    let mut response = OPENAPI.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The board as CSV: one row per shown model, each column's value, interval
/// and n, then the average, speed and price. Unknown values are empty cells.
pub(crate) async fn board_csv(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    let result = async {
        let params = Params::parse(raw.as_deref())?;
        let (board, _, view) = board_and_view(&state, &params).await?;
        let board = view::restrict(&board, &view);
        let mut writer = csv::Writer::from_writer(Vec::new());
        let mut header: Vec<String> = [
            "rank",
            "model_id",
            "model",
            "spec",
            "access",
            "licence",
            "parameters",
            "provider",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for column in &board.columns {
            for suffix in ["", "_ci_low", "_ci_high", "_n"] {
                header.push(format!("{}{suffix}", column.id));
            }
        }
        header.extend(
            [
                "average",
                "average_ci_low",
                "average_ci_high",
                "output_speed",
                "ttft_s",
                "blended_price",
                "last_run",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        let csv_error = |err: csv::Error| AppError::internal(format!("writing CSV: {err}"));
        writer.write_record(&header).map_err(csv_error)?;
        let number = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
        for row in &board.models {
            let mut record = vec![
                row.average
                    .as_ref()
                    .map(|a| a.rank.to_string())
                    .unwrap_or_default(),
                row.id.to_string(),
                row.name.clone(),
                row.spec.clone(),
                access_label(row.info.access).to_string(),
                row.info.licence.clone().unwrap_or_default(),
                row.info
                    .parameters
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
                row.info.provider.clone().unwrap_or_default(),
            ];
            for cell in &row.cells {
                record.push(number(cell.as_ref().map(|c| c.value)));
                record.push(number(cell.as_ref().and_then(|c| c.ci95).map(|c| c.0)));
                record.push(number(cell.as_ref().and_then(|c| c.ci95).map(|c| c.1)));
                record.push(cell.as_ref().map(|c| c.n.to_string()).unwrap_or_default());
            }
            let average = row.average.as_ref();
            record.push(number(average.map(|a| a.value)));
            record.push(number(average.and_then(|a| a.ci95).map(|c| c.0)));
            record.push(number(average.and_then(|a| a.ci95).map(|c| c.1)));
            record.push(number(row.speed.as_ref().and_then(|s| s.output_speed)));
            record.push(number(row.speed.as_ref().and_then(|s| s.ttft_s)));
            record.push(number(row.info.blended_price()));
            record.push(row.last_run.clone());
            writer.write_record(&record).map_err(csv_error)?;
        }
        writer
            .into_inner()
            .map_err(|err| AppError::internal(format!("writing CSV: {err}")))
    }
    .await;
    match result {
        Ok(bytes) => {
            let mut response = (StatusCode::OK, bytes).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            );
            headers.insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"podium-board.csv\""),
            );
            response
        }
        Err(err) => err.into_html(),
    }
}
