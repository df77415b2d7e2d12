//! The one mapping from what went wrong to a status code. A client sees what
//! it did wrong (a bad parameter, an unknown id) in full, and of a server-side
//! failure only that it happened; the details go to the log.

use std::net::SocketAddr;

use axum::http::StatusCode;
use podium_board::BoardError;
use podium_store::StoreError;

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the server failed")]
    Serve(#[source] std::io::Error),
}

/// Why one request failed.
#[derive(Debug)]
pub(crate) enum AppError {
    /// 404, with what was not found.
    NotFound(String),
    /// 400, with what is wrong with the request.
    BadRequest(String),
    /// 403: an arena token that the server did not sign.
    Forbidden(String),
    /// 409: the request conflicts with what happened before (a second vote
    /// on one battle, a vote before the answers are in).
    Conflict(String),
    /// 410: an arena battle that expired (or was issued by an earlier run
    /// of the server).
    Gone(String),
    /// 429, with the limit that was reached and when to try again.
    TooManyRequests { message: String, retry_after_s: u64 },
    /// 500; the message was logged and is never shown.
    Internal,
}

impl AppError {
    pub(crate) fn not_found(message: impl Into<String>) -> AppError {
        AppError::NotFound(message.into())
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> AppError {
        AppError::BadRequest(message.into())
    }

    /// Log `message` and answer a generic 500.
    pub(crate) fn internal(message: impl std::fmt::Display) -> AppError {
        tracing::error!("request failed: {message}");
        AppError::Internal
    }

    pub(crate) fn status(&self) -> StatusCode {
        match self {
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Gone(_) => StatusCode::GONE,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the client is told.
    pub(crate) fn message(&self) -> &str {
        match self {
            AppError::NotFound(m)
            | AppError::BadRequest(m)
            | AppError::Forbidden(m)
            | AppError::Conflict(m)
            | AppError::Gone(m)
            | AppError::TooManyRequests { message: m, .. } => m,
            AppError::Internal => {
                "the server failed to answer this request; the details are in its log"
            }
        }
    }
}

/// An error and its causes on one line, for the log.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl From<StoreError> for AppError {
    fn from(err: StoreError) -> AppError {
        AppError::internal(chain(&err))
    }
}

impl From<BoardError> for AppError {
    fn from(err: BoardError) -> AppError {
        match err {
            BoardError::Options(message) => AppError::BadRequest(message),
            other => AppError::internal(chain(&other)),
        }
    }
}
