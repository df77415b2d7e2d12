//! Why an attempt failed and whether another may help: HTTP statuses, transport
//! errors and the server's own message (secrets scrubbed), `Retry-After`.

use super::*;
use std::time::Duration;

use crate::h1::H1Error;
pub(crate) use crate::secrets::excerpt;

/// Why one attempt failed, and whether another attempt may help.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Failure {
    /// Rate limits, overload, server errors, timeouts, dropped connections.
    Retryable {
        message: String,
        retry_after: Option<Duration>,
    },
    /// The server answered and the answer is wrong or refused: retrying repeats it.
    Permanent(String),
    /// The endpoint cannot do what was asked, for any request.
    Unsupported(String),
}

impl From<crate::sse::EventTooLarge> for Failure {
    fn from(err: crate::sse::EventTooLarge) -> Failure {
        Failure::Permanent(err.to_string())
    }
}

impl Failure {
    pub(crate) fn retryable(message: impl Into<String>) -> Failure {
        Failure::Retryable {
            message: message.into(),
            retry_after: None,
        }
    }

    pub(crate) fn message(&self) -> &str {
        match self {
            Failure::Retryable { message, .. } => message,
            Failure::Permanent(message) | Failure::Unsupported(message) => message,
        }
    }
}

/// Turn a non-success HTTP answer into a failure, with the server's own message.
pub(crate) async fn failure_from_status(response: Response<'_>) -> Failure {
    let code = response.status();
    let retry_after = retry_after(&response);
    // Redirects are not followed (a POST must not silently move elsewhere).
    let redirect = (300..400).contains(&code).then(|| {
        response
            .header("location")
            .unwrap_or("(no location)")
            .to_string()
    });
    let body = response.text().await;
    if let Some(location) = redirect {
        let location = excerpt(&location, 200);
        return Failure::Permanent(format!(
            "HTTP {code}: the endpoint redirects to `{location}`; put that URL in the model spec"
        ));
    }
    let message = format!("HTTP {code}: {}", server_message(&body));
    if code == 408 || code == 409 || code == 429 || code >= 500 {
        Failure::Retryable {
            message,
            retry_after,
        }
    } else {
        Failure::Permanent(message)
    }
}

/// The human part of an error body: `error.message`, `message`, or the text itself,
/// secrets scrubbed before it is cut to 500 characters.
pub(crate) fn server_message(body: &str) -> String {
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(body) {
        let candidates = [
            json.pointer("/error/message"),
            json.get("message"),
            json.get("error").filter(|e| e.is_string()),
            json.get("detail"),
        ];
        if let Some(candidate) = candidates.into_iter().flatten().next() {
            return match candidate.as_str() {
                Some(text) => excerpt(text, 500),
                None => excerpt(&candidate.to_string(), 500),
            };
        }
    }
    if body.trim().is_empty() {
        "(empty body)".to_string()
    } else {
        excerpt(body.trim(), 500)
    }
}

/// `retry-after-ms` (OpenAI) or `retry-after` in seconds.
pub(super) fn retry_after(response: &Response<'_>) -> Option<Duration> {
    let number = |name: &str| -> Option<f64> {
        response
            .header(name)?
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    number("retry-after-ms")
        .map(|ms| Duration::from_secs_f64(ms / 1000.0))
        .or_else(|| number("retry-after").map(Duration::from_secs_f64))
}

/// An `h1` error as a failure: all of them (refused, reset, timed out) may pass.
pub(super) fn failure_from_h1(err: H1Error, during: &str) -> Failure {
    match err {
        H1Error::TimedOut => Failure::retryable(format!("timed out {during}")),
        H1Error::Failed(detail) => Failure::retryable(format!("{during}: {detail}")),
    }
}

/// A transport error as a failure: all of them (refused, reset, timed out) may pass.
pub(crate) fn failure_from_reqwest(err: &reqwest::Error, during: &str) -> Failure {
    let message = if err.is_timeout() {
        format!("timed out {during}")
    } else {
        format!("{during}: {}", error_chain(err))
    };
    Failure::retryable(message)
}

/// An error and its sources, joined with `: ` (reqwest hides the cause in the chain).
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (issue 9): an error body was cut to 500 characters before the key
    /// was scrubbed, so a key straddling the cut survived in part.
    #[test]
    fn a_key_straddling_the_cut_of_an_error_body_is_scrubbed() {
        let key = "sk-straddle-0123456789abcdefghij";
        secrets::register(key);
        for offset in [480, 490, 499, 500] {
            let body = format!("{}{key} trailing text", "x".repeat(offset));
            for text in [
                body.clone(),
                serde_json::json!({"error": {"message": body}}).to_string(),
            ] {
                let message = server_message(&text);
                assert!(!message.contains("sk-straddle"), "{offset}: {message}");
                for window in key.as_bytes().windows(8) {
                    let fragment = std::str::from_utf8(window).unwrap();
                    assert!(
                        !message.contains(fragment),
                        "{offset}: `{fragment}` in {message}"
                    );
                }
            }
        }
    }

    #[test]
    fn server_messages() {
        let check = |body: &str, expected: &str| assert_eq!(server_message(body), expected);
        check(
            r#"{"error":{"message":"bad model","type":"invalid_request_error"}}"#,
            "bad model",
        );
        check(r#"{"error":"overloaded"}"#, "overloaded");
        check(r#"{"detail":"Not Found"}"#, "Not Found");
        check("", "(empty body)");
        check("plain text", "plain text");
    }
}
