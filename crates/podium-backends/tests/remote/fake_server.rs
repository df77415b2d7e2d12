//! A programmable fake HTTP server on 127.0.0.1:0 for the remote backends:
//! a handler decides each reply (SSE chunks with injected delays, a JSON
//! body, a status with headers, a stream cut short, or no answer at all).
//! Raw HTTP/1.1 over a `TcpListener`, so replies can break in ways a real
//! framework would not allow.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) path: String,
    /// Raw header block, for checking what was (and was not) sent.
    pub(crate) headers: String,
    pub(crate) body: Value,
    /// When the whole request had been read.
    pub(crate) read_at: Instant,
}

impl Seen {
    pub(crate) fn prompt(&self) -> &str {
        self.body["prompt"]
            .as_str()
            .or_else(|| self.body.pointer("/messages/0/content")?.as_str())
            .unwrap_or("")
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Reply {
    /// `text/event-stream`: write chunk k at `read_at + first_delay + k · gap` (an
    /// absolute schedule, so lateness does not add up), stamping each write, then close
    /// the connection (so chunks ending mid-event make a cut stream).
    Sse {
        first_delay: Duration,
        gap: Duration,
        chunks: Vec<String>,
        /// Write from a blocking thread that sleeps with the OS's timer (tens of µs
        /// late) instead of tokio's (1 ms resolution): for timing-accuracy reports.
        precise: bool,
        /// Send the chunks with chunked encoding and keep the connection for the
        /// next request, as real servers do, instead of closing it.
        keep_alive: bool,
    },
    /// A body with a status, content type and extra headers.
    Body {
        status: u16,
        content_type: &'static str,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Read the request and never answer.
    Hang,
}

impl Reply {
    pub(crate) fn json(status: u16, body: &Value) -> Reply {
        Reply::Body {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: body.to_string(),
        }
    }

    pub(crate) fn sse(first_delay_ms: u64, gap_ms: u64, chunks: Vec<String>) -> Reply {
        Reply::Sse {
            first_delay: Duration::from_millis(first_delay_ms),
            gap: Duration::from_millis(gap_ms),
            chunks,
            precise: false,
            keep_alive: false,
        }
    }

    /// [`Reply::sse`] on the OS timer (see `precise`).
    pub(crate) fn sse_precise(first_delay_ms: u64, gap_ms: u64, chunks: Vec<String>) -> Reply {
        Reply::Sse {
            first_delay: Duration::from_millis(first_delay_ms),
            gap: Duration::from_millis(gap_ms),
            chunks,
            precise: true,
            keep_alive: false,
        }
    }

    /// [`Reply::sse`] with chunked encoding on a connection kept for the next request.
    pub(crate) fn sse_kept_alive(chunks: Vec<String>) -> Reply {
        Reply::Sse {
            first_delay: Duration::ZERO,
            gap: Duration::ZERO,
            chunks,
            precise: false,
            keep_alive: true,
        }
    }
}

pub(crate) type Handler = Arc<dyn Fn(&Seen, usize) -> Reply + Send + Sync>;

pub(crate) struct FakeServer {
    /// `http://127.0.0.1:PORT`
    pub(crate) url: String,
    pub(crate) seen: Arc<Mutex<Vec<Seen>>>,
    /// (request index, instant right before the write) of every SSE chunk written.
    pub(crate) writes: Arc<Mutex<Vec<(usize, Instant)>>>,
    /// Connections accepted.
    pub(crate) connections: Arc<AtomicUsize>,
}

impl FakeServer {
    /// Start serving; `handler(request, index)` gets requests numbered from 0 in arrival order.
    pub(crate) async fn start(
        handler: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static,
    ) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let writes: Arc<Mutex<Vec<(usize, Instant)>>> = Arc::default();
        let handler: Handler = Arc::new(handler);
        let seen_by_server = Arc::clone(&seen);
        let writes_by_server = Arc::clone(&writes);
        let connections: Arc<AtomicUsize> = Arc::default();
        let accepted = Arc::clone(&connections);
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                accepted.fetch_add(1, Ordering::Relaxed);
                let handler = Arc::clone(&handler);
                let seen = Arc::clone(&seen_by_server);
                let writes = Arc::clone(&writes_by_server);
                tokio::spawn(async move {
                    let _ = serve_connection(socket, handler, seen, writes).await;
                });
            }
        });
        FakeServer {
            url,
            seen,
            writes,
            connections,
        }
    }

    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn serve_connection(
    mut socket: TcpStream,
    handler: Handler,
    seen: Arc<Mutex<Vec<Seen>>>,
    writes: Arc<Mutex<Vec<(usize, Instant)>>>,
) -> std::io::Result<()> {
    socket.set_nodelay(true)?;
    let mut buffer = Vec::new();
    loop {
        let Some(request) = read_request(&mut socket, &mut buffer).await? else {
            return Ok(());
        };
        let index = {
            let mut seen = seen.lock().unwrap();
            seen.push(request.clone());
            seen.len() - 1
        };
        match handler(&request, index) {
            Reply::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            Reply::Body {
                status,
                content_type,
                headers,
                body,
            } => {
                let mut head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n",
                    body.len()
                );
                for (name, value) in headers {
                    head.push_str(&format!("{name}: {value}\r\n"));
                }
                head.push_str("\r\n");
                socket.write_all(head.as_bytes()).await?;
                socket.write_all(body.as_bytes()).await?;
            }
            Reply::Sse {
                first_delay,
                gap,
                chunks,
                precise,
                keep_alive,
            } => {
                // Kept alive: chunked encoding. Otherwise no length and no chunked
                // encoding: the body ends when the connection closes.
                let (framing, frame): (&[u8], fn(&str) -> String) = if keep_alive {
                    (b"transfer-encoding: chunked", |chunk| {
                        format!("{:x}\r\n{chunk}\r\n", chunk.len())
                    })
                } else {
                    (b"connection: close", str::to_string)
                };
                let mut head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n".to_vec();
                head.extend_from_slice(framing);
                head.extend_from_slice(b"\r\n\r\n");
                socket.write_all(&head).await?;
                socket.flush().await?;
                let framed: Vec<String> = chunks.iter().map(|chunk| frame(chunk)).collect();
                let end: &[u8] = if keep_alive { b"0\r\n\r\n" } else { b"" };
                if precise {
                    let mut blocking = socket.into_std()?;
                    blocking.set_nonblocking(false)?;
                    let read_at = request.read_at;
                    let writes = Arc::clone(&writes);
                    let blocking = tokio::task::spawn_blocking(move || {
                        use std::io::Write;
                        for (i, chunk) in framed.iter().enumerate() {
                            let due = read_at + first_delay + gap * i as u32;
                            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                                std::thread::sleep(wait);
                            }
                            writes.lock().unwrap().push((index, Instant::now()));
                            blocking.write_all(chunk.as_bytes())?;
                        }
                        blocking.write_all(end)?;
                        blocking.set_nonblocking(true)?;
                        Ok::<_, std::io::Error>(blocking)
                    })
                    .await
                    .map_err(std::io::Error::other)??;
                    socket = TcpStream::from_std(blocking)?;
                } else {
                    for (i, chunk) in framed.iter().enumerate() {
                        let due = request.read_at + first_delay + gap * i as u32;
                        tokio::time::sleep_until(due.into()).await;
                        writes.lock().unwrap().push((index, Instant::now()));
                        socket.write_all(chunk.as_bytes()).await?;
                        socket.flush().await?;
                    }
                    socket.write_all(end).await?;
                }
                if keep_alive {
                    continue;
                }
            }
        }
        return socket.shutdown().await;
    }
}

/// Read one request (head and `content-length` body) from the connection; bytes
/// past it stay in `buffer` for the next. `None` when the client closed first.
async fn read_request(
    socket: &mut TcpStream,
    buffer: &mut Vec<u8>,
) -> std::io::Result<Option<Seen>> {
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..header_end]).to_string();
    let content_length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buffer.len() < header_end + content_length {
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let end = (header_end + content_length).min(buffer.len());
    let request = Seen {
        path: head
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string(),
        headers: head.clone(),
        body: serde_json::from_slice(&buffer[header_end..end]).unwrap_or(Value::Null),
        read_at: Instant::now(),
    };
    buffer.drain(..end);
    Ok(Some(request))
}

/// One `data:` event.
pub(crate) fn event(json: &Value) -> String {
    format!("data: {json}\n\n")
}

/// A completions stream: one chunk per piece, then (in the last chunk) the
/// finish reason, the usage if given, and `[DONE]`.
pub(crate) fn completion_chunks(pieces: &[String], usage: Option<(u64, u64)>) -> Vec<String> {
    let mut chunks: Vec<String> = pieces
        .iter()
        .map(|piece| {
            event(&serde_json::json!({
                "object": "text_completion",
                "choices": [{"index": 0, "text": piece, "finish_reason": null}],
            }))
        })
        .collect();
    let mut tail = event(&serde_json::json!({
        "choices": [{"index": 0, "text": "", "finish_reason": "stop"}],
    }));
    if let Some((prompt_tokens, completion_tokens)) = usage {
        tail.push_str(&event(&serde_json::json!({
            "choices": [],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        })));
    }
    tail.push_str("data: [DONE]\n\n");
    match chunks.last_mut() {
        Some(last) => last.push_str(&tail),
        None => chunks.push(tail),
    }
    chunks
}

/// A chat stream: `(reasoning, content)` deltas, then finish, usage and `[DONE]`.
pub(crate) fn chat_chunks(deltas: &[(&str, &str)], usage: Option<(u64, u64)>) -> Vec<String> {
    let mut chunks = vec![event(&serde_json::json!({
        "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": null}],
    }))];
    for (reasoning, content) in deltas {
        let mut delta = serde_json::json!({});
        if !reasoning.is_empty() {
            delta["reasoning_content"] = Value::from(*reasoning);
        }
        if !content.is_empty() {
            delta["content"] = Value::from(*content);
        }
        chunks.push(event(&serde_json::json!({
            "choices": [{"index": 0, "delta": delta, "finish_reason": null}],
        })));
    }
    let mut tail = event(&serde_json::json!({
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
    }));
    if let Some((prompt_tokens, completion_tokens)) = usage {
        tail.push_str(&event(&serde_json::json!({
            "choices": [],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
        })));
    }
    tail.push_str("data: [DONE]\n\n");
    chunks.last_mut().unwrap().push_str(&tail);
    // The role-only chunk goes out with the first delta, as servers do.
    if chunks.len() > 1 {
        let first = chunks.remove(0);
        chunks[0].insert_str(0, &first);
    }
    chunks
}
