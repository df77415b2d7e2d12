//! An endpoint's operational options, from the spec's `?key=value&…` part, and the
//! limits they default to.

use std::time::Duration;

use super::EndpointError;

/// Default of `max_body_bytes`: the most a response body may hold, streamed or not.
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// Default of `max_event_bytes`: the most one server-sent event (one of its lines, or
/// its `data:` lines joined) may hold.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1024 * 1024;
/// An error body is read up to this size: only its first few hundred characters
/// are shown, and a server must not make us read an endless one.
pub(super) const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;
/// A token count a server reports above this is taken for a broken or hostile
/// server, and the request fails (no request holds a billion tokens; a count this
/// size would overflow sums and costs).
pub const MAX_TOKEN_COUNT: u64 = 1_000_000_000;

/// Operational options of an endpoint, from the spec's `?key=value&…` part.
/// None of them changes what a model answers, so none is part of a run's identity.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointOptions {
    /// Requests in flight at once (`concurrency=N`, default 8).
    pub concurrency: usize,
    /// Requests started per minute, client-side (`rpm=N`).
    pub requests_per_minute: Option<u32>,
    /// Tokens (prompt estimate + `max_tokens`) per minute, client-side (`tpm=N`).
    pub tokens_per_minute: Option<u64>,
    /// Whole-request limit including the streamed body (`timeout_s=X`, default 600).
    pub timeout: Duration,
    /// TCP/TLS connect limit (`connect_timeout_s=X`, default 10).
    pub connect_timeout: Duration,
    /// Retries after the first attempt (`retries=N`, default 3).
    pub max_retries: u32,
    /// First backoff; doubles per retry up to 30 s (`backoff_ms=N`, default 500).
    pub backoff_base: Duration,
    /// Seed of the backoff jitter (`retry_seed=N`, default 0).
    pub retry_seed: u64,
    /// The environment variable holding the API key (`api_key_env=NAME`).
    pub api_key_env: Option<String>,
    /// The HTTP client (`http_client=builtin|reqwest`).
    pub http_client: HttpClient,
    /// The most bytes a response body may hold, streamed or not
    /// (`max_body_bytes=N`, default 8 MiB); a larger one fails its request.
    pub max_body_bytes: usize,
    /// The most bytes one server-sent event may hold, any of its lines or its
    /// `data:` joined (`max_event_bytes=N`, default 1 MiB); a larger one fails its request.
    pub max_event_bytes: usize,
}

/// Which HTTP client serves an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpClient {
    /// Podium's own HTTP/1.1 client (TLS by rustls): reads the socket in the
    /// request's own task, stamps bytes as they arrive, and takes `t0` after the
    /// connection is set up. Not used when a proxy is set in the environment.
    #[default]
    Builtin,
    /// reqwest (hyper), which honours proxies and speaks HTTP/2.
    Reqwest,
}

impl Default for EndpointOptions {
    fn default() -> Self {
        EndpointOptions {
            concurrency: 8,
            requests_per_minute: None,
            tokens_per_minute: None,
            timeout: Duration::from_secs(600),
            connect_timeout: Duration::from_secs(10),
            max_retries: 3,
            backoff_base: Duration::from_millis(500),
            retry_seed: 0,
            api_key_env: None,
            http_client: HttpClient::Builtin,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
        }
    }
}

/// The option names [`EndpointOptions::take`] understands.
pub(crate) const ENDPOINT_OPTION_NAMES: &[&str] = &[
    "concurrency",
    "rpm",
    "tpm",
    "timeout_s",
    "connect_timeout_s",
    "retries",
    "backoff_ms",
    "retry_seed",
    "api_key_env",
    "http_client",
    "max_body_bytes",
    "max_event_bytes",
];

impl EndpointOptions {
    /// Apply one `key=value` option. `Ok(false)` when the key is not an endpoint option.
    pub(crate) fn take(&mut self, key: &str, value: &str) -> Result<bool, EndpointError> {
        fn whole<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, EndpointError> {
            value.parse().map_err(|_| EndpointError::NotWhole {
                key: key.to_string(),
                value: value.to_string(),
            })
        }
        fn seconds(key: &str, value: &str) -> Result<Duration, EndpointError> {
            match value.parse::<f64>() {
                Ok(s) if s.is_finite() && s > 0.0 => Ok(Duration::from_secs_f64(s)),
                _ => Err(EndpointError::NotSeconds {
                    key: key.to_string(),
                    value: value.to_string(),
                }),
            }
        }
        match key {
            "concurrency" => {
                self.concurrency = whole(key, value)?;
                if self.concurrency == 0 {
                    return Err(EndpointError::Zero(key.to_string()));
                }
            }
            "rpm" => self.requests_per_minute = Some(whole(key, value)?).filter(|&n| n > 0),
            "tpm" => self.tokens_per_minute = Some(whole(key, value)?).filter(|&n| n > 0),
            "timeout_s" => self.timeout = seconds(key, value)?,
            "connect_timeout_s" => self.connect_timeout = seconds(key, value)?,
            "retries" => self.max_retries = whole(key, value)?,
            "backoff_ms" => self.backoff_base = Duration::from_millis(whole(key, value)?),
            "retry_seed" => self.retry_seed = whole(key, value)?,
            "api_key_env" => {
                if value.is_empty() {
                    return Err(EndpointError::NoKeyVariable);
                }
                self.api_key_env = Some(value.to_string());
            }
            "http_client" => {
                self.http_client = match value {
                    "builtin" => HttpClient::Builtin,
                    "reqwest" => HttpClient::Reqwest,
                    _ => return Err(EndpointError::HttpClient(value.to_string())),
                }
            }
            "max_body_bytes" | "max_event_bytes" => {
                let bytes: usize = whole(key, value)?;
                if bytes == 0 {
                    return Err(EndpointError::Zero(key.to_string()));
                }
                if key == "max_body_bytes" {
                    self.max_body_bytes = bytes;
                } else {
                    self.max_event_bytes = bytes;
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// Split `a=1&b=2` into pairs; a key without `=` gets an empty value.
pub(crate) fn query_pairs(query: &str) -> Vec<(&str, &str)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse() {
        let mut options = EndpointOptions::default();
        let query = "concurrency=2&rpm=60&timeout_s=0.5&api_key_env=MY_KEY&http_client=reqwest";
        for (key, value) in query_pairs(query) {
            assert_eq!(options.take(key, value), Ok(true), "{key}");
        }
        assert_eq!(options.concurrency, 2);
        assert_eq!(options.requests_per_minute, Some(60));
        assert_eq!(options.timeout, Duration::from_millis(500));
        assert_eq!(options.api_key_env.as_deref(), Some("MY_KEY"));
        assert_eq!(options.http_client, HttpClient::Reqwest);
        assert_eq!(options.take("api", "chat"), Ok(false));
        assert!(options.take("http_client", "curl").is_err());
        assert!(options.take("concurrency", "0").is_err());
        assert!(options.take("timeout_s", "-1").is_err());
        assert_eq!(options.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert_eq!(options.take("max_body_bytes", "1000"), Ok(true));
        assert_eq!(options.take("max_event_bytes", "100"), Ok(true));
        assert_eq!(
            (options.max_body_bytes, options.max_event_bytes),
            (1000, 100)
        );
        assert!(options.take("max_body_bytes", "0").is_err());
        assert!(options.take("max_event_bytes", "lots").is_err());
    }
}
