//! What every remote backend shares: an [`Endpoint`] (its HTTP clients with the key
//! in their headers, the concurrency limit, retries, the response cache), built from
//! parts that each do one job:
//!
//! - `options`: the spec's `?key=value&…` options and their limits;
//! - `credentials`: the API key and URL credentials, kept out of every string we
//!   print or store;
//! - `limits`: seeded backoff bounds and the sliding-minute rate limiter;
//! - `failure`: why an attempt failed and whether another may help;
//! - `transport`: one answer from either HTTP client, and event streams.

mod credentials;
mod failure;
mod limits;
mod options;
mod transport;

pub use credentials::redact_spec;
pub(crate) use credentials::*;
pub(crate) use failure::*;
use limits::*;
pub use options::*;
pub(crate) use transport::*;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::sync::{Semaphore, SemaphorePermit};

use podium_core::{BackendError, ResponseCache, SharedLimits};

use crate::h1::{self, H1Pool};
use crate::secrets;
pub(crate) use crate::secrets::excerpt;

/// Why an endpoint cannot be set up from its spec: an option's value, the API key's
/// variable, credentials that cannot travel in a header, the HTTP client. The message
/// names the option or variable, never a secret; backends wrap it in
/// `OpenError::Invalid` with the (redacted) spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum EndpointError {
    #[error("`{key}` needs a whole number, got `{value}`")]
    NotWhole { key: String, value: String },
    #[error("`{key}` needs a positive number of seconds, got `{value}`")]
    NotSeconds { key: String, value: String },
    #[error("`{0}` must be at least 1")]
    Zero(String),
    #[error("`api_key_env` needs the name of an environment variable")]
    NoKeyVariable,
    #[error("`http_client` is `builtin` or `reqwest`, got `{0}`")]
    HttpClient(String),
    #[error("environment variable {0} is empty")]
    KeyEmpty(String),
    #[error("environment variable {0} is not set (it should hold the API key)")]
    KeyNotSet(String),
    #[error("environment variable {0} is not valid UTF-8")]
    KeyNotUnicode(String),
    #[error("the API key contains characters not allowed in a header")]
    KeyNotAHeader,
    #[error("the URL's credentials cannot be sent in a header")]
    CredentialsNotAHeader,
    #[error(
        "the base URL's `user:password@` and an API key would both be sent as the `Authorization` header: give only one"
    )]
    TwoAuthorizations,
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
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
    /// The limits shared with other processes, and this endpoint's name in them
    /// (its base URL and served model).
    shared: Option<(Arc<dyn SharedLimits>, String)>,
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
        shared: podium_core::Shared,
        limits_key: String,
    ) -> Result<Endpoint, EndpointError> {
        let podium_core::Shared { cache, limits } = shared;
        let mut headers = HeaderMap::new();
        if let Some(credentials) = credentials {
            if key.is_some() && key_header == KeyHeader::Bearer {
                return Err(EndpointError::TwoAuthorizations);
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
            .map_err(|err| EndpointError::Client(error_chain(&err)))?;
        Ok(Endpoint {
            client,
            h1,
            h1_headers,
            key,
            slots: Semaphore::new(options.concurrency),
            rate: RateLimiter::new(options.requests_per_minute, options.tokens_per_minute),
            options,
            cache,
            shared: limits.map(|limits| (limits, limits_key)),
        })
    }

    /// Remove the key from text that came from a server or the network stack
    /// (servers do echo keys back in "invalid key" errors).
    pub(crate) fn redact(&self, text: &str) -> String {
        let text = match &self.key {
            Some(key) if !key.as_str().is_empty() => text.replace(key.as_str(), "***"),
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

    /// A streamed generation through the response cache: the key from the URL, model
    /// and body; the rate limiter charged an estimate of the request's tokens (a
    /// quarter of the context's characters plus the most it may generate) until the
    /// attempt reports what it used; a cached answer marked as such.
    pub(crate) async fn generation<F, Fut>(
        &self,
        url: &str,
        model: &str,
        body: &str,
        request: &podium_core::GenerateRequest,
        attempt: F,
    ) -> Result<podium_core::GenerateResult, BackendError>
    where
        F: FnMut(AttemptStart) -> Fut,
        Fut: Future<Output = Result<(podium_core::GenerateResult, Option<u64>), Failure>>,
    {
        let cache_key = podium_core::cache_key(url, model, body);
        let estimated_tokens = request.context.len() / 4 + request.max_tokens;
        self.cached(url, &cache_key, estimated_tokens, mark_cached, attempt)
            .await
    }

    /// POST `body` asking for an event stream; a non-success status is the attempt's
    /// failure, with the server's own message.
    pub(crate) async fn post_stream(
        &self,
        url: &str,
        body: &str,
    ) -> Result<(Instant, Response<'_>), Failure> {
        let (t0, response) = self
            .post(url, "text/event-stream", body.to_string())
            .await?;
        if !response.is_success() {
            return Err(failure_from_status(response).await);
        }
        Ok((t0, response))
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
            let shared_slot = self.shared_admit(job).await?;
            let start = AttemptStart {
                queue_s: waiting_since.elapsed().as_secs_f64(),
                attempt: n_attempt,
            };
            let outcome = attempt(start).await;
            drop(shared_slot);
            drop(permit);
            let failure = match outcome {
                Ok((value, used_tokens)) => {
                    if let Some(used) = used_tokens {
                        self.rate.settle(ticket, used);
                        self.shared_settle(job, used).await;
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

    /// With limits shared with other processes: waits for one of the
    /// endpoint's `concurrency` slots of the whole fleet, then for the shared
    /// `rpm` and `tpm` pacing clocks. The slot is given back when the returned
    /// guard drops.
    async fn shared_admit(&self, job: Job) -> Result<Option<SharedSlot>, BackendError> {
        let Some((limits, key)) = &self.shared else {
            return Ok(None);
        };
        let shared_error =
            |message: String| BackendError::Request(format!("shared limits: {message}"));
        // A slot is held for one attempt, which the request timeout bounds; a
        // worker that dies holding one frees it when the hold lapses.
        let hold = self.options.timeout + SLOT_HOLD_MARGIN;
        let slot_key = format!("concurrency {key}");
        let cap = self.options.concurrency;
        let slot = loop {
            let (limits2, slot_key2) = (limits.clone(), slot_key.clone());
            let taken = blocking(move || limits2.try_slot(&slot_key2, cap, hold))
                .await
                .map_err(shared_error)?;
            match taken {
                Some(slot) => {
                    break SharedSlot {
                        limits: limits.clone(),
                        key: slot_key,
                        slot,
                    };
                }
                None => tokio::time::sleep(SLOT_POLL).await,
            }
        };
        let mut wait = Duration::ZERO;
        if let Some(rpm) = self.options.requests_per_minute {
            let (limits, key) = (limits.clone(), format!("rpm {key}"));
            let cost = 60.0 / f64::from(rpm) * SHARED_PACE_MARGIN;
            wait = wait.max(
                blocking(move || limits.pace(&key, cost))
                    .await
                    .map_err(shared_error)?,
            );
        }
        if let Some(tpm) = self.options.tokens_per_minute {
            let (limits, key) = (limits.clone(), format!("tpm {key}"));
            let cost = job.estimated_tokens as f64 * 60.0 / tpm as f64;
            wait = wait.max(
                blocking(move || limits.pace(&key, cost))
                    .await
                    .map_err(shared_error)?,
            );
        }
        tokio::time::sleep(wait).await;
        Ok(Some(slot))
    }

    /// Corrects the shared `tpm` clock by the tokens a request really used.
    async fn shared_settle(&self, job: Job, used_tokens: u64) {
        if let (Some((limits, key)), Some(tpm)) = (&self.shared, self.options.tokens_per_minute) {
            let delta = (used_tokens as f64 - job.estimated_tokens as f64) * 60.0 / tpm as f64;
            let (limits, key) = (limits.clone(), format!("tpm {key}"));
            let _ = blocking(move || {
                limits.pace_adjust(&key, delta);
                Ok(())
            })
            .await;
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

/// How much longer than the request timeout a shared concurrency slot is held
/// before another worker may take it (its holder died).
const SLOT_HOLD_MARGIN: Duration = Duration::from_secs(30);
/// How often a request waiting for a shared concurrency slot asks again.
const SLOT_POLL: Duration = Duration::from_millis(20);
/// Shared `rpm` pacing runs 2 % under the limit: a request sends a little after
/// its reserved start (scheduling, the connection), and without a margin two
/// such delays could put one request more than the limit allows into a window.
const SHARED_PACE_MARGIN: f64 = 1.02;

/// Runs a blocking call to the shared limits (the database) off the async
/// threads.
async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(call)
        .await
        .map_err(|err| format!("the call to the shared limits failed: {err}"))?
}

/// A shared concurrency slot, given back when dropped.
struct SharedSlot {
    limits: Arc<dyn SharedLimits>,
    key: String,
    slot: podium_core::SlotHold,
}

impl Drop for SharedSlot {
    fn drop(&mut self) {
        // Off the async threads when there are some; a release that fails
        // leaves the slot to lapse at the end of its hold.
        let (limits, key, slot) = (
            self.limits.clone(),
            std::mem::take(&mut self.key),
            self.slot.clone(),
        );
        let release = move || limits.release_slot(&key, &slot);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(release)),
            Err(_) => release(),
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

/// [`run_concurrently`] over `requests`: `one` gets the backend's shared state and its
/// own copy of a request (what every remote backend's `generate_until` does).
pub(crate) async fn each_concurrently<S, R, T, Fut>(
    shared: &Arc<S>,
    requests: &[R],
    one: impl Fn(Arc<S>, R) -> Fut,
) -> Vec<Result<T, BackendError>>
where
    S: Send + Sync + 'static,
    R: Clone,
    T: Send + 'static,
    Fut: Future<Output = Result<T, BackendError>> + Send + 'static,
{
    let jobs = requests
        .iter()
        .map(|request| one(Arc::clone(shared), request.clone()));
    run_concurrently(jobs.collect()).await
}

/// Mark a generation that came from the response cache.
pub(crate) fn mark_cached(result: &mut podium_core::GenerateResult) {
    if let Some(timing) = &mut result.timing {
        timing.cached = true;
    }
}

/// A number drawn from a cache key, to seed per-request jitter.
fn key_number(cache_key: &str) -> u64 {
    u64::from_str_radix(&cache_key[..16.min(cache_key.len())], 16).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_seeded_exponential_and_capped() {
        let options = EndpointOptions {
            backoff_base: Duration::from_millis(100),
            ..EndpointOptions::default()
        };
        let endpoint = Endpoint::new(
            options,
            None,
            KeyHeader::Bearer,
            None,
            &[],
            podium_core::Shared::default(),
            String::new(),
        )
        .unwrap();
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
}
