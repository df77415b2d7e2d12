//! A programmable fake HTTP server on 127.0.0.1:0 for the remote backends:
//! a handler decides each reply (SSE chunks with injected delays, a JSON
//! body, a status with headers, a stream cut short, or no answer at all).
//! Raw HTTP/1.1 over a `TcpListener`, so replies can break in ways a real
//! framework would not allow.

use std::io::IoSliceMut;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg, setsockopt, sockopt};
use nix::sys::time::TimeSpec;
use serde_json::Value;
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::{TcpListener, TcpStream};

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) path: String,
    /// Raw header block, for checking what was (and was not) sent.
    pub(crate) headers: String,
    pub(crate) body: Value,
    /// When its last bytes arrived, as the kernel stamped them (`SO_TIMESTAMPNS`);
    /// where no stamp came, when the server had read it. Replies are scheduled from
    /// this instant, so that the server's own lateness in reading does not count.
    pub(crate) arrived_at: Instant,
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
    /// `text/event-stream`: write chunk k at `arrived_at + first_delay + k · gap` (an
    /// absolute schedule, so lateness does not add up), stamping each write, then close
    /// the connection (so chunks ending mid-event make a cut stream).
    Sse {
        first_delay: Duration,
        gap: Duration,
        chunks: Vec<String>,
        /// Written by the server's precise writer, a thread that sleeps with the OS's
        /// timer (tens of µs late) instead of tokio's (1 ms resolution): for
        /// timing-accuracy reports.
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
    /// Raw bytes as they are (a head that may lie about the body), then `end`.
    Raw { bytes: Vec<u8>, end: End },
    /// `head` (whole, with its blank line), then `repeat` written over and over
    /// until the client goes away: an endless body, line or stream.
    Endless { head: String, repeat: String },
}

/// How a [`Reply::Raw`] connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// Closed cleanly.
    Close,
    /// Reset (RST): the client's next read fails.
    Reset,
    /// Kept open and silent: the client must give up by its own deadline.
    Stall,
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
    #[allow(dead_code)] // used by examples/timing_accuracy.rs, which includes this file
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
        let precise_writer = start_precise_writer(Arc::clone(&writes));
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                // Best effort: without stamps, `arrived_at` is when the request was read.
                let _ = setsockopt(&socket, sockopt::ReceiveTimestampns, &true);
                accepted.fetch_add(1, Ordering::Relaxed);
                let handler = Arc::clone(&handler);
                let seen = Arc::clone(&seen_by_server);
                let writes = Arc::clone(&writes_by_server);
                let precise_writer = precise_writer.clone();
                tokio::spawn(async move {
                    let _ = serve_connection(socket, handler, seen, writes, precise_writer).await;
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

    /// The request whose prompt is `prompt`, and the instants its SSE chunks were
    /// written, in order.
    pub(crate) fn served(&self, prompt: &str) -> (Seen, Vec<Instant>) {
        let seen = self.seen.lock().unwrap();
        let index = seen
            .iter()
            .position(|s| s.prompt() == prompt)
            .unwrap_or_else(|| panic!("no request with prompt {prompt:?}"));
        let writes = self.writes.lock().unwrap();
        let stamps = writes
            .iter()
            .filter(|(i, _)| *i == index)
            .map(|(_, at)| *at)
            .collect();
        (seen[index].clone(), stamps)
    }
}

async fn serve_connection(
    mut socket: TcpStream,
    handler: Handler,
    seen: Arc<Mutex<Vec<Seen>>>,
    writes: Arc<Mutex<Vec<(usize, Instant)>>>,
    precise_writer: mpsc::Sender<PreciseStream>,
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
            Reply::Raw { bytes, end } => {
                socket.write_all(&bytes).await?;
                socket.flush().await?;
                match end {
                    End::Close => {}
                    End::Reset => {
                        // Give the client the bytes before the reset discards them.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        socket.set_zero_linger()?;
                        return Ok(());
                    }
                    End::Stall => {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                }
            }
            Reply::Endless { head, repeat } => {
                socket.write_all(head.as_bytes()).await?;
                let block = repeat.repeat((64 * 1024 / repeat.len().max(1)).max(1));
                // Until the client stops reading and closes: then the write fails.
                loop {
                    socket.write_all(block.as_bytes()).await?;
                }
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
                let mut framed: Vec<String> = chunks.iter().map(|chunk| frame(chunk)).collect();
                // The closing chunk goes with the last one, so whether a client has it
                // when the stream's last event is read does not depend on timing.
                if keep_alive && let Some(last) = framed.last_mut() {
                    last.push_str("0\r\n\r\n");
                }
                if precise {
                    let blocking = socket.into_std()?;
                    blocking.set_nonblocking(false)?;
                    let (done, finished) = tokio::sync::oneshot::channel();
                    let stream = PreciseStream {
                        socket: blocking,
                        index,
                        due: (0..framed.len())
                            .map(|i| request.arrived_at + first_delay + gap * i as u32)
                            .collect(),
                        chunks: framed,
                        next: 0,
                        done,
                    };
                    precise_writer
                        .send(stream)
                        .map_err(|_| std::io::Error::other("the precise writer stopped"))?;
                    let blocking = finished.await.map_err(std::io::Error::other)??;
                    blocking.set_nonblocking(true)?;
                    socket = TcpStream::from_std(blocking)?;
                } else {
                    for (i, chunk) in framed.iter().enumerate() {
                        let due = request.arrived_at + first_delay + gap * i as u32;
                        tokio::time::sleep_until(due.into()).await;
                        writes.lock().unwrap().push((index, Instant::now()));
                        socket.write_all(chunk.as_bytes()).await?;
                        socket.flush().await?;
                    }
                }
                if keep_alive {
                    continue;
                }
            }
        }
        return socket.shutdown().await;
    }
}

/// A stream for the precise writer: chunk k goes out at `due[k]`; the socket comes
/// back through `done` (to be kept alive or closed).
struct PreciseStream {
    socket: std::net::TcpStream,
    index: usize,
    due: Vec<Instant>,
    chunks: Vec<String>,
    next: usize,
    done: tokio::sync::oneshot::Sender<std::io::Result<std::net::TcpStream>>,
}

/// One thread writes every precise stream, sleeping on the OS timer until the next
/// chunk is due: 64 streams due at the same instant are one thread's work, not 64
/// threads waking at once on a 2-core machine (which delayed the client by
/// milliseconds, and so the measurement under test).
fn start_precise_writer(writes: Arc<Mutex<Vec<(usize, Instant)>>>) -> mpsc::Sender<PreciseStream> {
    use std::io::Write;
    let (sender, receiver) = mpsc::channel::<PreciseStream>();
    std::thread::spawn(move || {
        let mut streams: Vec<PreciseStream> = Vec::new();
        let mut open = true;
        loop {
            let next_due = streams.iter().map(|s| s.due[s.next]).min();
            let wait = next_due.map(|due| due.saturating_duration_since(Instant::now()));
            match (open, wait) {
                (false, None) => return,
                (true, None) => match receiver.recv() {
                    Ok(stream) => streams.push(stream),
                    Err(_) => open = false,
                },
                (true, Some(wait)) if !wait.is_zero() => match receiver.recv_timeout(wait) {
                    Ok(stream) => streams.push(stream),
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => open = false,
                },
                (false, Some(wait)) => std::thread::sleep(wait),
                (true, Some(_)) => {}
            }
            let now = Instant::now();
            let mut k = 0;
            while k < streams.len() {
                let stream = &mut streams[k];
                if stream.due[stream.next] > now {
                    k += 1;
                    continue;
                }
                writes.lock().unwrap().push((stream.index, Instant::now()));
                let written = stream
                    .socket
                    .write_all(stream.chunks[stream.next].as_bytes());
                stream.next += 1;
                if written.is_ok() && stream.next < stream.chunks.len() {
                    k += 1;
                    continue;
                }
                let stream = streams.swap_remove(k);
                let _ = stream.done.send(written.map(|()| stream.socket));
            }
        }
    });
    sender
}

/// Read one request (head and `content-length` body) from the connection; bytes
/// past it stay in `buffer` for the next. `None` when the client closed first.
async fn read_request(
    socket: &mut TcpStream,
    buffer: &mut Vec<u8>,
) -> std::io::Result<Option<Seen>> {
    let mut chunk = [0u8; 4096];
    let mut arrived = None;
    let header_end = loop {
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let (n, stamp) = read_stamped(socket, &mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        arrived = stamp;
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
        let (n, stamp) = read_stamped(socket, &mut chunk).await?;
        if n == 0 {
            break;
        }
        arrived = stamp;
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
        arrived_at: arrived.unwrap_or_else(Instant::now),
    };
    buffer.drain(..end);
    Ok(Some(request))
}

/// Read what the socket has, with the instant the kernel received the last of it
/// (the `SO_TIMESTAMPNS` stamp, on the realtime clock, carried over to `Instant`).
async fn read_stamped(
    socket: &TcpStream,
    chunk: &mut [u8],
) -> std::io::Result<(usize, Option<Instant>)> {
    loop {
        socket.readable().await?;
        let read = socket.try_io(Interest::READABLE, || {
            let mut iov = [IoSliceMut::new(&mut *chunk)];
            let mut space = nix::cmsg_space!(TimeSpec);
            let message = recvmsg::<()>(
                socket.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::empty(),
            )?;
            let stamp = message.cmsgs()?.find_map(|cmsg| match cmsg {
                ControlMessageOwned::ScmTimestampns(stamp) => Some(stamp),
                _ => None,
            });
            Ok((message.bytes, stamp))
        });
        match read {
            Ok((n, stamp)) => return Ok((n, stamp.and_then(realtime_to_instant))),
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(err) => return Err(err),
        }
    }
}

/// A `CLOCK_REALTIME` stamp as an `Instant`, by its age on the realtime clock now.
fn realtime_to_instant(stamp: TimeSpec) -> Option<Instant> {
    let (now_real, now) = (SystemTime::now(), Instant::now());
    let at = UNIX_EPOCH + Duration::new(stamp.tv_sec() as u64, stamp.tv_nsec() as u32);
    now.checked_sub(now_real.duration_since(at).unwrap_or(Duration::ZERO))
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
