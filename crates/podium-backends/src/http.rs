//! What every remote backend shares: spec options for an endpoint, the API key
//! (kept out of every string we print or store), the per-endpoint concurrency
//! limit and client-side rate limits, retries with seeded backoff, error
//! classification, and response-cache keys.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::sync::{Semaphore, SemaphorePermit};

use podium_core::{BackendError, ResponseCache};

use crate::h1::{self, H1Error, H1Pool};
use crate::secrets;
pub(crate) use crate::secrets::excerpt;
use crate::sse::{SseDecoder, SseEvent};

/// Default of `max_body_bytes`: the most a response body may hold, streamed or not.
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// Default of `max_event_bytes`: the most one server-sent event (one of its lines, or
/// its `data:` lines joined) may hold.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1024 * 1024;
/// An error body is read up to this size: only its first few hundred characters
/// are shown, and a server must not make us read an endless one.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;
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
    pub(crate) fn take(&mut self, key: &str, value: &str) -> Result<bool, String> {
        fn whole<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, String> {
            value
                .parse()
                .map_err(|_| format!("`{key}` needs a whole number, got `{value}`"))
        }
        fn seconds(key: &str, value: &str) -> Result<Duration, String> {
            match value.parse::<f64>() {
                Ok(s) if s.is_finite() && s > 0.0 => Ok(Duration::from_secs_f64(s)),
                _ => Err(format!(
                    "`{key}` needs a positive number of seconds, got `{value}`"
                )),
            }
        }
        match key {
            "concurrency" => {
                self.concurrency = whole(key, value)?;
                if self.concurrency == 0 {
                    return Err("`concurrency` must be at least 1".into());
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
                    return Err("`api_key_env` needs the name of an environment variable".into());
                }
                self.api_key_env = Some(value.to_string());
            }
            "http_client" => {
                self.http_client = match value {
                    "builtin" => HttpClient::Builtin,
                    "reqwest" => HttpClient::Reqwest,
                    _ => {
                        return Err(format!(
                            "`http_client` is `builtin` or `reqwest`, got `{value}`"
                        ));
                    }
                }
            }
            "max_body_bytes" | "max_event_bytes" => {
                let bytes: usize = whole(key, value)?;
                if bytes == 0 {
                    return Err(format!("`{key}` must be at least 1"));
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

/// The spec with any value of a key-like option blanked, for error messages:
/// a user who pasted a key into the spec must not see it echoed into logs.
/// The credentials of any URL in it (`scheme://user:password@host`) are blanked too.
pub fn redact_spec(spec: &str) -> String {
    // Key-like options first, on the spec as written: blanking URL credentials first
    // could eat the `=` of an option whose value then showed whole (found by the
    // model_spec fuzz target).
    redact_url_credentials(&redact_secret_options(spec))
}

/// The spec with the value of every key-like option blanked.
fn redact_secret_options(spec: &str) -> String {
    let Some((head, query)) = spec.split_once('?') else {
        return spec.to_string();
    };
    // A malformed spec may hold a second `?` (found by the model_spec fuzz target:
    // `…?x=y?api_key=SECRET`): both `?` and `&` end a pair.
    let redact = |pair: &str| match pair.split_once('=') {
        Some((key, _)) if is_secret_option(key) => format!("{key}=***"),
        _ => pair.to_string(),
    };
    let mut out = format!("{head}?");
    let mut start = 0;
    for (at, separator) in query.match_indices(['&', '?']) {
        out.push_str(&redact(&query[start..at]));
        out.push_str(separator);
        start = at + separator.len();
    }
    out.push_str(&redact(&query[start..]));
    out
}

/// `text` with the `user:password@` part of every URL in it replaced by `***@`.
fn redact_url_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        let authority_end = after.find(['/', '?', '#', '&', ' ']).unwrap_or(after.len());
        match after[..authority_end].rfind('@') {
            Some(userinfo_end) => {
                out.push_str("***");
                rest = &after[userinfo_end..];
            }
            None => rest = after,
        }
    }
    out.push_str(rest);
    out
}

/// The credentials a base URL carries (`http://user:password@host/…`), taken out
/// of it: they travel as an `Authorization: Basic` header marked sensitive, and
/// never in the URL that is stored, shown or logged.
#[derive(Clone)]
pub(crate) struct UrlCredentials {
    user: String,
    password: String,
}

impl std::fmt::Debug for UrlCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlCredentials(***)")
    }
}

impl UrlCredentials {
    /// The header value `Basic base64(user:password)`, marked sensitive.
    fn header_value(&self) -> Result<HeaderValue, String> {
        use base64::Engine as _;
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.user, self.password));
        // A server may echo the header back in an error.
        secrets::register(&token);
        let mut value = HeaderValue::from_str(&format!("Basic {token}"))
            .map_err(|_| "the URL's credentials cannot be sent in a header".to_string())?;
        value.set_sensitive(true);
        Ok(value)
    }
}

/// Split `scheme://user:password@host/path` into the URL without its credentials
/// and the credentials (percent-decoded); a URL without them comes back unchanged.
/// Every form of the credentials is registered as a secret, to be scrubbed from
/// anything a server sends back.
pub(crate) fn take_url_credentials(url: &str) -> (String, Option<UrlCredentials>) {
    let Some(at) = url.find("://") else {
        return (url.to_string(), None);
    };
    let after = &url[at + 3..];
    let authority_end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let Some(userinfo_end) = after[..authority_end].rfind('@') else {
        return (url.to_string(), None);
    };
    let userinfo = &after[..userinfo_end];
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    for raw in [userinfo, user, password] {
        secrets::register(raw);
    }
    let credentials = UrlCredentials {
        user: percent_decode(user),
        password: percent_decode(password),
    };
    secrets::register(&credentials.user);
    secrets::register(&credentials.password);
    let bare = format!("{}{}", &url[..at + 3], &after[userinfo_end + 1..]);
    (bare, Some(credentials))
}

/// `%XX` escapes decoded (as UTF-8, lossily); anything else kept.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(Some(high)), Some(Some(low))) = (
                bytes.get(i + 1).map(|b| hex(*b)),
                bytes.get(i + 2).map(|b| hex(*b)),
            )
        {
            out.push((high * 16 + low) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Option names that look like they carry a secret rather than name one.
pub(crate) fn is_secret_option(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key != "api_key_env"
        && key != "tokenizer"
        && (key.contains("key") || key.contains("token") || key == "secret")
}

/// An API key. It has no `Display`, and its `Debug` prints nothing of it.
#[derive(Clone)]
pub(crate) struct ApiKey(String);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

impl ApiKey {
    /// Read the key from `env_name`. Errors name the variable, never its value.
    pub(crate) fn from_env(env_name: &str) -> Result<ApiKey, String> {
        match std::env::var(env_name) {
            Ok(key) if !key.trim().is_empty() => {
                secrets::register(key.trim());
                Ok(ApiKey(key.trim().to_string()))
            }
            Ok(_) => Err(format!("environment variable {env_name} is empty")),
            Err(std::env::VarError::NotPresent) => Err(format!(
                "environment variable {env_name} is not set (it should hold the API key)"
            )),
            Err(std::env::VarError::NotUnicode(_)) => Err(format!(
                "environment variable {env_name} is not valid UTF-8"
            )),
        }
    }

    /// A header value carrying the key, marked sensitive so HTTP debug output hides it.
    fn header_value(&self, prefix: &str) -> Result<HeaderValue, String> {
        let mut value = HeaderValue::from_str(&format!("{prefix}{}", self.0))
            .map_err(|_| "the API key contains characters not allowed in a header".to_string())?;
        value.set_sensitive(true);
        Ok(value)
    }
}

/// How the key travels: `Authorization: Bearer KEY` (OpenAI) or `x-api-key: KEY` (Anthropic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyHeader {
    Bearer,
    XApiKey,
}

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

/// What an attempt is told when it starts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AttemptStart {
    /// Time spent waiting for a concurrency slot and the rate limiter before this attempt.
    pub(crate) queue_s: f64,
    /// 1 for the first attempt.
    pub(crate) attempt: u32,
}

/// One logical request, for the limiter and the backoff jitter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Job {
    /// A stable number per request (from its cache key), so jitter is seeded per request.
    pub(crate) jitter_key: u64,
    /// Tokens charged to the `tpm` limit before the real count is known.
    pub(crate) estimated_tokens: u64,
}

/// A remote endpoint: its HTTP clients with the key in their headers, and the
/// limits every request to it goes through. Requests go through Podium's own
/// HTTP/1.1 client (`h1`), or through reqwest when a proxy is set in the
/// environment or `http_client=reqwest` is asked.
pub(crate) struct Endpoint {
    client: reqwest::Client,
    /// `None` when a proxy variable is set: then reqwest, which honours it, does all.
    h1: Option<H1Pool>,
    /// The key and fixed headers as `name: value\r\n` lines, for `h1` (secret).
    h1_headers: String,
    key: Option<ApiKey>,
    slots: Semaphore,
    rate: RateLimiter,
    options: EndpointOptions,
    cache: Option<Arc<dyn ResponseCache>>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("key", &self.key)
            .field("options", &self.options)
            .field("cached", &self.cache.is_some())
            .finish()
    }
}

impl Endpoint {
    pub(crate) fn new(
        options: EndpointOptions,
        key: Option<ApiKey>,
        key_header: KeyHeader,
        credentials: Option<&UrlCredentials>,
        extra_headers: &[(&'static str, &'static str)],
        cache: Option<Arc<dyn ResponseCache>>,
    ) -> Result<Endpoint, String> {
        let mut headers = HeaderMap::new();
        if let Some(credentials) = credentials {
            if key.is_some() && key_header == KeyHeader::Bearer {
                return Err("the base URL's `user:password@` and an API key would both be sent as the `Authorization` header: give only one".into());
            }
            headers.insert(reqwest::header::AUTHORIZATION, credentials.header_value()?);
        }
        if let Some(key) = &key {
            let (name, value) = match key_header {
                KeyHeader::Bearer => (reqwest::header::AUTHORIZATION, key.header_value("Bearer ")?),
                KeyHeader::XApiKey => (HeaderName::from_static("x-api-key"), key.header_value("")?),
            };
            headers.insert(name, value);
        }
        for (name, value) in extra_headers {
            headers.insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        // The same headers for h1; `header_value` above has checked they are valid.
        let h1_headers: String = headers
            .iter()
            .map(|(name, value)| {
                format!("{name}: {}\r\n", String::from_utf8_lossy(value.as_bytes()))
            })
            .collect();
        let h1 = (options.http_client == HttpClient::Builtin && !proxy_in_environment())
            .then(|| H1Pool::new(options.concurrency, options.connect_timeout));
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(options.timeout)
            .connect_timeout(options.connect_timeout)
            .pool_max_idle_per_host(options.concurrency)
            // As with the built-in client: a redirect is reported, not followed.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| format!("cannot build the HTTP client: {}", error_chain(&err)))?;
        Ok(Endpoint {
            client,
            h1,
            h1_headers,
            key,
            slots: Semaphore::new(options.concurrency),
            rate: RateLimiter::new(options.requests_per_minute, options.tokens_per_minute),
            options,
            cache,
        })
    }

    /// Remove the key from text that came from a server or the network stack
    /// (servers do echo keys back in "invalid key" errors).
    pub(crate) fn redact(&self, text: &str) -> String {
        let text = match &self.key {
            Some(ApiKey(key)) if !key.is_empty() => text.replace(key.as_str(), "***"),
            _ => text.to_string(),
        };
        secrets::redact(&text)
    }

    /// POST a JSON `body` to `url`, asking for `accept`. Returns `t0` (taken right
    /// before the request is written, or for reqwest, right before it is handed
    /// over) and the response, its head read.
    pub(crate) async fn post(
        &self,
        url: &str,
        accept: &str,
        body: String,
    ) -> Result<(Instant, Response<'_>), Failure> {
        if let Some(pool) = &self.h1
            && let Some(target) = h1::Target::of(url)
        {
            let headers = format!(
                "content-type: application/json\r\naccept: {accept}\r\n{}",
                self.h1_headers
            );
            let (t0, response) = pool
                .post(&target, &headers, body.as_bytes(), self.options.timeout)
                .await
                .map_err(|err| failure_from_h1(err, "sending the request"))?;
            return Ok((t0, self.response(Transport::H1(response))));
        }
        let request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, accept)
            .body(body);
        let t0 = Instant::now();
        let response = request
            .send()
            .await
            .map_err(|err| failure_from_reqwest(&err, "sending the request"))?;
        Ok((
            t0,
            self.response(Transport::Reqwest {
                response,
                chunk: Default::default(),
            }),
        ))
    }

    fn response<'e>(&self, transport: Transport<'e>) -> Response<'e> {
        Response {
            transport,
            max_body_bytes: self.options.max_body_bytes,
            max_event_bytes: self.options.max_event_bytes,
        }
    }

    fn cache_get(&self, key: &str) -> Option<String> {
        self.cache.as_ref()?.get(key)
    }

    /// Store `value` (serialized only when there is a cache: a streamed result holds
    /// every inter-chunk gap, and writing them out is wasted work without one).
    fn cache_put<T: serde::Serialize>(&self, key: &str, value: &T) {
        if let Some(cache) = &self.cache
            && let Ok(text) = serde_json::to_string(value)
        {
            cache.put(key, &text);
        }
    }

    /// `attempt` (with retries) through the response cache: an answer stored under
    /// `cache_key` comes back without a request, after `on_hit` (which marks it
    /// cached); a fresh one is stored. `estimated_tokens` is charged to the `tpm`
    /// limit until the real count is known.
    pub(crate) async fn cached<T, F, Fut>(
        &self,
        url: &str,
        cache_key: &str,
        estimated_tokens: usize,
        on_hit: impl FnOnce(&mut T),
        attempt: F,
    ) -> Result<T, BackendError>
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
        F: FnMut(AttemptStart) -> Fut,
        Fut: Future<Output = Result<(T, Option<u64>), Failure>>,
    {
        if let Some(mut hit) = self
            .cache_get(cache_key)
            .and_then(|text| serde_json::from_str::<T>(&text).ok())
        {
            on_hit(&mut hit);
            return Ok(hit);
        }
        let job = Job {
            jitter_key: key_number(cache_key),
            estimated_tokens: estimated_tokens as u64,
        };
        let value = self
            .with_retries(&format!("POST {url}"), job, attempt)
            .await?;
        self.cache_put(cache_key, &value);
        Ok(value)
    }

    /// Run `attempt` until it succeeds, fails for good, or the retries run out.
    /// Each attempt holds a concurrency slot; the slot is given back during
    /// backoff so other requests go on. `attempt` returns its value and the
    /// tokens it really used (for the `tpm` limit), when known.
    async fn with_retries<T, F, Fut>(
        &self,
        what: &str,
        job: Job,
        mut attempt: F,
    ) -> Result<T, BackendError>
    where
        F: FnMut(AttemptStart) -> Fut,
        Fut: Future<Output = Result<(T, Option<u64>), Failure>>,
    {
        let mut n_attempt = 0u32;
        loop {
            n_attempt += 1;
            let waiting_since = Instant::now();
            let permit = self.acquire_slot().await?;
            let ticket = self.rate.admit(job.estimated_tokens).await;
            let start = AttemptStart {
                queue_s: waiting_since.elapsed().as_secs_f64(),
                attempt: n_attempt,
            };
            let outcome = attempt(start).await;
            drop(permit);
            let failure = match outcome {
                Ok((value, used_tokens)) => {
                    if let Some(used) = used_tokens {
                        self.rate.settle(ticket, used);
                    }
                    return Ok(value);
                }
                Err(failure) => failure,
            };
            let message = self.redact(failure.message());
            match failure {
                Failure::Unsupported(_) => return Err(BackendError::Unsupported(message)),
                Failure::Permanent(_) => {
                    return Err(BackendError::Request(format!("{what}: {message}")));
                }
                Failure::Retryable { retry_after, .. } => {
                    if n_attempt > self.options.max_retries {
                        let attempts = if n_attempt == 1 {
                            String::new()
                        } else {
                            format!(" (after {n_attempt} attempts)")
                        };
                        return Err(BackendError::Request(format!(
                            "{what}: {message}{attempts}"
                        )));
                    }
                    let wait = retry_after
                        .map(|wait| wait.min(MAX_RETRY_AFTER))
                        .unwrap_or_else(|| self.backoff(job.jitter_key, n_attempt));
                    tracing::warn!(
                        "{what}: attempt {n_attempt} failed: {message}; retrying in {:.2} s",
                        wait.as_secs_f64()
                    );
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn acquire_slot(&self) -> Result<SemaphorePermit<'_>, BackendError> {
        self.slots
            .acquire()
            .await
            .map_err(|_| BackendError::Fatal("the endpoint's request queue was closed".into()))
    }

    /// Exponential backoff with seeded jitter: base · 2^(n−1), at most 30 s,
    /// times a factor in [0.5, 1) drawn from (seed, request, attempt).
    fn backoff(&self, jitter_key: u64, n_attempt: u32) -> Duration {
        let exponential = self
            .options
            .backoff_base
            .saturating_mul(1u32 << (n_attempt - 1).min(16))
            .min(MAX_BACKOFF);
        let draw = splitmix64(self.options.retry_seed ^ jitter_key ^ u64::from(n_attempt));
        let fraction = (draw >> 11) as f64 / (1u64 << 53) as f64;
        exponential.mul_f64(0.5 + 0.5 * fraction)
    }
}

const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A `Retry-After` longer than this is cut short: the run should not stall for hours.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Client-side limits over a sliding minute: requests started, and tokens
/// charged (an estimate at the start, replaced by the real count at the end).
#[derive(Debug)]
struct RateLimiter {
    requests_per_minute: Option<u32>,
    tokens_per_minute: Option<u64>,
    window: Mutex<RateWindow>,
}

#[derive(Debug, Default)]
struct RateWindow {
    next_id: u64,
    /// (id, start, tokens), oldest first.
    entries: VecDeque<(u64, Instant, u64)>,
}

#[derive(Debug, Clone, Copy)]
struct RateTicket(Option<u64>);

const RATE_WINDOW: Duration = Duration::from_secs(60);

impl RateLimiter {
    fn new(requests_per_minute: Option<u32>, tokens_per_minute: Option<u64>) -> RateLimiter {
        RateLimiter {
            requests_per_minute,
            tokens_per_minute,
            window: Mutex::new(RateWindow::default()),
        }
    }

    /// Wait until a request charged `tokens` fits in the last minute's budget.
    async fn admit(&self, tokens: u64) -> RateTicket {
        if self.requests_per_minute.is_none() && self.tokens_per_minute.is_none() {
            return RateTicket(None);
        }
        loop {
            let wait = {
                let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                while window
                    .entries
                    .front()
                    .is_some_and(|(_, start, _)| now.duration_since(*start) >= RATE_WINDOW)
                {
                    window.entries.pop_front();
                }
                // Saturating: token counts come from servers.
                let used: u64 = window
                    .entries
                    .iter()
                    .fold(0u64, |sum, (_, _, t)| sum.saturating_add(*t));
                let requests_ok = self
                    .requests_per_minute
                    .is_none_or(|rpm| window.entries.len() < rpm as usize);
                // A request bigger than the whole budget still goes, alone.
                let tokens_ok = self.tokens_per_minute.is_none_or(|tpm| {
                    window.entries.is_empty() || used.saturating_add(tokens) <= tpm
                });
                if requests_ok && tokens_ok {
                    let id = window.next_id;
                    window.next_id += 1;
                    window.entries.push_back((id, now, tokens));
                    return RateTicket(Some(id));
                }
                let oldest = window.entries.front().map(|(_, start, _)| *start);
                oldest.map_or(Duration::from_millis(10), |start| {
                    (start + RATE_WINDOW).saturating_duration_since(now) + Duration::from_millis(1)
                })
            };
            tokio::time::sleep(wait).await;
        }
    }

    fn settle(&self, ticket: RateTicket, used_tokens: u64) {
        let Some(id) = ticket.0 else { return };
        let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = window.entries.iter_mut().find(|(i, _, _)| *i == id) {
            entry.2 = used_tokens;
        }
    }
}

/// Run every request of a batch as its own task (so each one's events are
/// stamped as they arrive, not when a shared task gets around to polling),
/// and answer in order. The endpoint's semaphore bounds how many are in flight.
pub(crate) async fn run_concurrently<T, Fut>(jobs: Vec<Fut>) -> Vec<Result<T, BackendError>>
where
    T: Send + 'static,
    Fut: Future<Output = Result<T, BackendError>> + Send + 'static,
{
    let handles: Vec<_> = jobs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        out.push(handle.await.unwrap_or_else(|err| {
            Err(BackendError::Request(format!(
                "the request's task failed: {err}"
            )))
        }));
    }
    out
}

/// How an event stream ended.
#[derive(Debug)]
pub(crate) struct StreamEnd {
    pub(crate) ended: Instant,
    pub(crate) n_events: usize,
    /// The handler said the stream is complete (`[DONE]`, `message_stop`).
    pub(crate) done: bool,
}

/// Mark a generation that came from the response cache.
pub(crate) fn mark_cached(result: &mut podium_core::GenerateResult) {
    if let Some(timing) = &mut result.timing {
        timing.cached = true;
    }
}

/// Whether a proxy is set in the environment (reqwest honours these; `h1` does not).
fn proxy_in_environment() -> bool {
    [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ]
    .iter()
    .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()))
}

/// An answer from either transport, its head read, with the endpoint's limits on
/// what its body may hold.
pub(crate) struct Response<'e> {
    transport: Transport<'e>,
    max_body_bytes: usize,
    max_event_bytes: usize,
}

enum Transport<'e> {
    H1(h1::Response<'e>),
    Reqwest {
        response: reqwest::Response,
        /// The body piece last handed out.
        chunk: bytes::Bytes,
    },
}

impl Response<'_> {
    pub(crate) fn status(&self) -> u16 {
        match &self.transport {
            Transport::H1(response) => response.head.status,
            Transport::Reqwest { response, .. } => response.status().as_u16(),
        }
    }

    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status())
    }

    /// A header's value; `name` in lower case.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        match &self.transport {
            Transport::H1(response) => response.head.header(name),
            Transport::Reqwest { response, .. } => response.headers().get(name)?.to_str().ok(),
        }
    }

    /// Whether the answer is a server-sent event stream.
    pub(crate) fn is_event_stream(&self) -> bool {
        self.header("content-type")
            .is_some_and(|v| v.starts_with("text/event-stream"))
    }

    /// The next piece of the body; `None` at its end. Errors name what was being
    /// done, `during()` (only formatted when there is an error).
    async fn chunk(&mut self, during: impl FnOnce() -> String) -> Result<Option<&[u8]>, Failure> {
        match &mut self.transport {
            Transport::H1(response) => response
                .chunk()
                .await
                .map_err(|err| failure_from_h1(err, &during())),
            Transport::Reqwest { response, chunk } => {
                match response
                    .chunk()
                    .await
                    .map_err(|err| failure_from_reqwest(&err, &during()))?
                {
                    Some(bytes) => {
                        *chunk = bytes;
                        Ok(Some(chunk))
                    }
                    None => Ok(None),
                }
            }
        }
    }

    /// The failure for a body larger than `max_body_bytes`.
    fn too_large(&self) -> Failure {
        Failure::Permanent(format!(
            "the response body is larger than {} bytes (the endpoint option max_body_bytes)",
            self.max_body_bytes
        ))
    }

    /// The whole body, at most `max_body_bytes` of it (more is a failure, found
    /// before reading when the server declares its length).
    pub(crate) async fn bytes(mut self) -> Result<Vec<u8>, Failure> {
        let limit = self.max_body_bytes;
        let declared = self
            .header("content-length")
            .and_then(|n| n.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(self.too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = self.chunk(|| "reading the response".into()).await? {
            if body.len() + chunk.len() > limit {
                return Err(self.too_large());
            }
            body.extend_from_slice(chunk);
        }
        Ok(body)
    }

    /// The body as text, for error messages: whatever could be read, up to
    /// [`MAX_ERROR_BODY_BYTES`] (the rest is left unread).
    pub(crate) async fn text(mut self) -> String {
        let mut body = Vec::new();
        while body.len() < MAX_ERROR_BODY_BYTES {
            match self.chunk(String::new).await {
                Ok(Some(chunk)) => {
                    let room = MAX_ERROR_BODY_BYTES - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                Ok(None) | Err(_) => break,
            }
        }
        String::from_utf8_lossy(&body).into_owned()
    }

    /// Done with the body, perhaps before its end: a connection that can be reused
    /// goes back to its pool once the rest of the body has come (in at most 50 ms).
    async fn finish(self) {
        const WAIT: Duration = Duration::from_millis(50);
        match self.transport {
            Transport::H1(response) => response.finish(WAIT).await,
            Transport::Reqwest { mut response, .. } => {
                // hyper pools a connection once its body has been read to the end.
                let drain = async { while let Ok(Some(_)) = response.chunk().await {} };
                let _ = tokio::time::timeout(WAIT, drain).await;
            }
        }
    }
}

/// Read a server-sent event stream, stamping each chunk as it arrives and
/// handing each event to `on_event`, which returns `true` when the stream is
/// complete. A body that breaks off or ends inside an event is a (retryable)
/// failure; one that ends cleanly without completion is left to the caller.
pub(crate) async fn read_events<F>(
    mut response: Response<'_>,
    mut on_event: F,
) -> Result<StreamEnd, Failure>
where
    F: FnMut(&SseEvent) -> Result<bool, Failure>,
{
    let mut decoder = SseDecoder::new(response.max_event_bytes);
    let mut n_events = 0;
    let mut n_bytes = 0usize;
    loop {
        let during = || format!("the stream was cut after {n_events} events");
        let max_body_bytes = response.max_body_bytes;
        let Some(chunk) = response.chunk(during).await? else {
            break;
        };
        let at = Instant::now();
        n_bytes = n_bytes.saturating_add(chunk.len());
        if n_bytes > max_body_bytes {
            return Err(Failure::Permanent(format!(
                "the event stream is longer than {max_body_bytes} bytes (the endpoint option max_body_bytes), after {n_events} events"
            )));
        }
        let mut counted = |event: &SseEvent| {
            n_events += 1;
            on_event(event)
        };
        if decoder.push(chunk, at, &mut counted)? {
            let ended = Instant::now();
            response.finish().await;
            return Ok(StreamEnd {
                ended,
                n_events,
                done: true,
            });
        }
    }
    let ended = Instant::now();
    if let Err(truncated) = decoder.finish() {
        return Err(Failure::retryable(format!(
            "the stream was cut mid-event after {n_events} events (partial event: `{}`)",
            truncated.partial
        )));
    }
    Ok(StreamEnd {
        ended,
        n_events,
        done: false,
    })
}

/// A number drawn from a cache key, to seed per-request jitter.
fn key_number(cache_key: &str) -> u64 {
    u64::from_str_radix(&cache_key[..16.min(cache_key.len())], 16).unwrap_or(0)
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
fn retry_after(response: &Response<'_>) -> Option<Duration> {
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
fn failure_from_h1(err: H1Error, during: &str) -> Failure {
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

    /// Regression (issue 9): `http://user:PASS@host` went into `models.spec` and
    /// onto the board; the credentials now leave the URL (to travel as a header).
    #[test]
    fn url_credentials_are_taken_out_of_the_url() {
        let (bare, credentials) =
            take_url_credentials("http://alice:s3cr%40t-Passw0rd@127.0.0.1:8000/v1");
        assert_eq!(bare, "http://127.0.0.1:8000/v1");
        let credentials = credentials.unwrap();
        assert_eq!(credentials.user, "alice");
        assert_eq!(credentials.password, "s3cr@t-Passw0rd");
        assert_eq!(format!("{credentials:?}"), "UrlCredentials(***)");
        let header = credentials.header_value().unwrap();
        assert!(header.is_sensitive());
        // base64("alice:s3cr@t-Passw0rd")
        assert_eq!(
            header.to_str().unwrap(),
            "Basic YWxpY2U6czNjckB0LVBhc3N3MHJk"
        );
        // A URL without credentials is left exactly as it was; an `@` past the host is not one.
        for url in ["http://h:1/v1", "https://h/a@b", "http://h?x=a@b", "h"] {
            let (same, none) = take_url_credentials(url);
            assert_eq!((same.as_str(), none.is_none()), (url, true));
        }
        // Scrubbed from anything a server sends back, in every form.
        assert_eq!(secrets::redact("echo s3cr%40t-Passw0rd"), "echo ***");
        assert_eq!(secrets::redact("echo s3cr@t-Passw0rd"), "echo ***");
    }

    #[test]
    fn url_credentials_are_blanked_in_specs() {
        assert_eq!(
            redact_spec("openai-compatible:http://bob:hunter2-long@h:8/v1#m?api=chat"),
            "openai-compatible:http://***@h:8/v1#m?api=chat"
        );
        assert_eq!(
            redact_spec("anthropic:c?base_url=https://u:pw@proxy/x&api_key=sk-1"),
            "anthropic:c?base_url=https://***@proxy/x&api_key=***"
        );
        assert_eq!(redact_spec("mock:a@b"), "mock:a@b");
    }

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
    fn secrets_in_specs_are_blanked() {
        assert_eq!(
            redact_spec("openai:gpt?api_key=sk-123&api_key_env=X&concurrency=2"),
            "openai:gpt?api_key=***&api_key_env=X&concurrency=2"
        );
        assert_eq!(redact_spec("openai:gpt"), "openai:gpt");
        // A second `?` ends a pair too (a malformed spec the fuzzer wrote).
        assert_eq!(
            redact_spec("openai-compatible:http://1?=x?api_key=sk-0123456789&a=b"),
            "openai-compatible:http://1?=x?api_key=***&a=b"
        );
        assert_eq!(format!("{:?}", ApiKey("sk-123".into())), "ApiKey(***)");
    }

    #[test]
    fn backoff_is_seeded_exponential_and_capped() {
        let options = EndpointOptions {
            backoff_base: Duration::from_millis(100),
            ..EndpointOptions::default()
        };
        let endpoint = Endpoint::new(options, None, KeyHeader::Bearer, None, &[], None).unwrap();
        for n in 1..=20 {
            let wait = endpoint.backoff(7, n);
            let full = Duration::from_millis(100)
                .saturating_mul(1 << (n - 1).min(16))
                .min(MAX_BACKOFF);
            assert!(wait >= full / 2 && wait <= full, "attempt {n}: {wait:?}");
            assert_eq!(wait, endpoint.backoff(7, n));
        }
        assert_ne!(endpoint.backoff(7, 1), endpoint.backoff(8, 1));
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

    #[tokio::test]
    async fn rate_limiter_counts_requests() {
        let limiter = RateLimiter::new(Some(2), None);
        limiter.admit(1).await;
        limiter.admit(1).await;
        let third = tokio::time::timeout(Duration::from_millis(50), limiter.admit(1)).await;
        assert!(third.is_err(), "a third request within a minute must wait");
    }

    #[tokio::test]
    async fn token_limit_admits_a_lone_large_request_and_settles() {
        let limiter = RateLimiter::new(None, Some(100));
        let ticket = limiter.admit(500).await;
        let blocked = tokio::time::timeout(Duration::from_millis(30), limiter.admit(10)).await;
        assert!(blocked.is_err());
        limiter.settle(ticket, 50);
        let admitted = tokio::time::timeout(Duration::from_millis(30), limiter.admit(10)).await;
        assert!(admitted.is_ok());
    }
}
