//! Templates and the formatting of numbers for them. The templates are
//! embedded in the binary and auto-escaped (their names end in `.html`);
//! nothing from the store is marked safe.

use std::sync::OnceLock;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use minijinja::{Environment, context};
use serde::Serialize;

use crate::AppError;

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("_chart.html", include_str!("../templates/_chart.html")),
    ("board.html", include_str!("../templates/board.html")),
    ("charts.html", include_str!("../templates/charts.html")),
    ("pick.html", include_str!("../templates/pick.html")),
    ("model.html", include_str!("../templates/model.html")),
    ("samples.html", include_str!("../templates/samples.html")),
    ("history.html", include_str!("../templates/history.html")),
    ("about.html", include_str!("../templates/about.html")),
    ("arena.html", include_str!("../templates/arena.html")),
    ("error.html", include_str!("../templates/error.html")),
];

fn environment() -> &'static Environment<'static> {
    static ENVIRONMENT: OnceLock<Environment<'static>> = OnceLock::new();
    ENVIRONMENT.get_or_init(|| {
        let mut env = Environment::new();
        // Every string a template prints (model names, specs, licences, prompts,
        // outputs: all untrusted) has its zero-width and bidirectional controls
        // written out as `[U+202E]` before HTML escaping, so no value can hide
        // text or reverse the rest of its line.
        env.set_formatter(|out, state, value| {
            if let Some(text) = value.as_str()
                && !value.is_safe()
            {
                let shown = minijinja::Value::from(crate::samples::reveal_invisible(text));
                return minijinja::escape_formatter(out, state, &shown);
            }
            minijinja::escape_formatter(out, state, value)
        });
        for (name, source) in TEMPLATES {
            // The templates are part of the binary and covered by the tests;
            // one that does not parse is a bug caught before release.
            if let Err(err) = env.add_template(name, source) {
                tracing::error!("template {name}: {err:#}");
            }
        }
        env
    })
}

/// Render template `name` as a 200 HTML page.
pub(crate) fn page(name: &str, ctx: impl Serialize) -> Result<Response, AppError> {
    let html = render(name, ctx)?;
    Ok(html_response(StatusCode::OK, html))
}

/// Whether `Accept-Encoding` names gzip (or `*`) with a weight above 0.
pub(crate) fn accepts_gzip(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or("").trim();
            let weight = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .map(|q| q.trim().parse::<f32>().unwrap_or(0.0))
                .next()
                .unwrap_or(1.0);
            (name.eq_ignore_ascii_case("gzip") || name == "*") && weight > 0.0
        })
}

/// `body` gzipped at the fastest level (the board's JSON and page are ~13-15 MB
/// at 1,000 models; compressed once per data version).
pub(crate) fn gzipped(body: &[u8]) -> Result<Vec<u8>, AppError> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    encoder
        .write_all(body)
        .and_then(|()| encoder.finish())
        .map_err(|err| AppError::internal(format!("compressing the board: {err}")))
}

/// `response` marked as varying with `Accept-Encoding`, and as gzipped when
/// its body is.
pub(crate) fn encoded(mut response: Response, gzip: bool) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if gzip {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

/// Render template `name` into the bytes of a page, for [`html_body`].
pub(crate) fn page_body(name: &str, ctx: impl Serialize) -> Result<Vec<u8>, AppError> {
    Ok(render(name, ctx)?.into_bytes())
}

/// A 200 HTML page from bytes rendered before (the headers of [`page`]).
pub(crate) fn html_body(body: axum::body::Bytes) -> Response {
    let mut response = (StatusCode::OK, Html(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn render(name: &str, ctx: impl Serialize) -> Result<String, AppError> {
    let template = environment()
        .get_template(name)
        .map_err(|err| AppError::internal(format!("template {name}: {err:#}")))?;
    template
        .render(ctx)
        .map_err(|err| AppError::internal(format!("rendering {name}: {err:#}")))
}

fn html_response(status: StatusCode, html: String) -> Response {
    let mut response = (status, Html(html)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

impl AppError {
    /// The error as an HTML page.
    pub(crate) fn into_html(self) -> Response {
        let status = self.status();
        let title = match status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::BAD_REQUEST => "Bad request",
            StatusCode::FORBIDDEN => "Forbidden",
            StatusCode::CONFLICT => "Conflict",
            StatusCode::GONE => "Expired",
            StatusCode::TOO_MANY_REQUESTS => "Too many requests",
            _ => "Server error",
        };
        let ctx = context! { title => title, status => status.as_u16(), message => self.message() };
        match render("error.html", ctx) {
            Ok(html) => html_response(status, html),
            Err(_) => (status, self.message().to_string()).into_response(),
        }
    }

    /// The error as JSON: `{"error": {"status": 400, "message": "…"}}`.
    pub(crate) fn into_json(self) -> Response {
        let status = self.status();
        let message = self.message().to_string();
        let body = serde_json::json!({
            "error": { "status": status.as_u16(), "message": message }
        });
        let mut response = (status, Json(body)).into_response();
        if let AppError::TooManyRequests { retry_after_s, .. } = &self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_s));
        }
        response
    }
}

/// An HTML handler's result as a response.
pub(crate) fn html(result: Result<Response, AppError>) -> Response {
    result.unwrap_or_else(AppError::into_html)
}

/// A JSON handler's result as a response.
pub(crate) fn json<T: Serialize>(result: Result<T, AppError>) -> Response {
    match result {
        Ok(value) => Json(value).into_response(),
        Err(err) => err.into_json(),
    }
}

/// A score in the column's units: points (× 100, one decimal) for [0, 1]
/// metrics, else the raw value with three decimals.
pub(crate) fn score(value: f64, unit_range: bool) -> String {
    if !value.is_finite() {
        return "—".into();
    }
    if unit_range {
        format!("{:.1}", value * 100.0)
    } else {
        format!("{value:.3}")
    }
}

/// "± half-width" of an interval, in the same units as [`score`].
pub(crate) fn half_width(ci95: Option<(f64, f64)>, unit_range: bool) -> Option<String> {
    let (lo, hi) = ci95?;
    let half = (hi - lo) / 2.0;
    if !half.is_finite() {
        return None;
    }
    Some(if unit_range {
        format!("± {:.1}", half * 100.0)
    } else {
        format!("± {half:.3}")
    })
}

/// The exact interval, for a title attribute.
pub(crate) fn interval_title(
    ci95: Option<(f64, f64)>,
    unit_range: bool,
    n: Option<usize>,
) -> String {
    let n_text = n.map(|n| format!(", n = {n}")).unwrap_or_default();
    match ci95 {
        Some((lo, hi)) if unit_range => format!(
            "95% interval {:.2}–{:.2} points{n_text}",
            lo * 100.0,
            hi * 100.0
        ),
        Some((lo, hi)) => format!("95% interval {lo:.4}–{hi:.4}{n_text}"),
        None => format!("no interval{n_text}"),
    }
}

/// A board cell's tooltip: "95%: 61.2–78.3 · n 100 · rank 2".
pub(crate) fn cell_title(
    ci95: Option<(f64, f64)>,
    unit_range: bool,
    n: usize,
    rank: usize,
) -> String {
    let interval = match ci95 {
        Some((lo, hi)) if unit_range => format!("95%: {:.1}–{:.1}", lo * 100.0, hi * 100.0),
        Some((lo, hi)) => format!("95%: {lo:.4}–{hi:.4}"),
        None => "no interval".into(),
    };
    format!("{interval} · n {n} · rank {rank}")
}

pub(crate) fn price(value: Option<f64>) -> String {
    match value {
        None => "—".into(),
        Some(0.0) => "$0".into(),
        Some(p) if p >= 1.0 => format!("${p:.2}"),
        Some(p) if p >= 0.01 => format!("${p:.3}"),
        Some(p) => format!("${p:.4}"),
    }
}

pub(crate) fn parameters(value: Option<u64>) -> String {
    match value {
        None => "unknown".into(),
        Some(p) if p >= 1_000_000_000 => {
            let b = format!("{:.1}", p as f64 / 1e9);
            format!("{}B", b.strip_suffix(".0").unwrap_or(&b))
        }
        Some(p) => format!("{:.0}M", p as f64 / 1e6),
    }
}

pub(crate) fn speed(value: Option<f64>) -> String {
    value.map_or_else(|| "—".into(), |s| format!("{s:.1}"))
}

pub(crate) fn seconds(value: Option<f64>) -> String {
    value.map_or_else(|| "—".into(), |s| format!("{s:.2} s"))
}

/// The date part of an RFC 3339 time.
pub(crate) fn date(value: &str) -> String {
    if value.is_empty() {
        return "—".into();
    }
    value.get(..10).unwrap_or(value).to_string()
}

pub(crate) fn or_unknown(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "unknown".into())
}
