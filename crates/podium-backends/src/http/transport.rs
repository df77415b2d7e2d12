//! One answer from either HTTP client (`h1` or reqwest) with the endpoint's limits on
//! its body, and reading a server-sent event stream as it arrives.

use super::*;
use std::time::{Duration, Instant};

use crate::h1::{self};
use crate::sse::{SseDecoder, SseEvent};

/// How an event stream ended.
#[derive(Debug)]
pub(crate) struct StreamEnd {
    pub(crate) ended: Instant,
    pub(crate) n_events: usize,
    /// The handler said the stream is complete (`[DONE]`, `message_stop`).
    pub(crate) done: bool,
}

/// Whether a proxy is set in the environment (reqwest honours these; `h1` does not).
pub(super) fn proxy_in_environment() -> bool {
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
    pub(super) transport: Transport<'e>,
    pub(super) max_body_bytes: usize,
    pub(super) max_event_bytes: usize,
}

pub(super) enum Transport<'e> {
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
    pub(super) async fn chunk(
        &mut self,
        during: impl FnOnce() -> String,
    ) -> Result<Option<&[u8]>, Failure> {
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
    pub(super) fn too_large(&self) -> Failure {
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
    pub(super) async fn finish(self) {
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
