//! A lean HTTP/1.1 client for plain `http://` endpoints: the local and LAN servers
//! (vLLM, llama.cpp, TGI, Ollama, `podium serve-model`) that stream hundreds of
//! events a second. `https://` endpoints, and every endpoint when a proxy is set in
//! the environment, go through reqwest instead (see `http::Endpoint::post`).
//!
//! Why not reqwest here: hyper reads the socket in a connection task and hands
//! each HTTP chunk to the response body over a channel, so every streamed event
//! crossed a task boundary with a waker (a fifth of the client's CPU per event in
//! `bench/remote`), and the arrival of bytes was stamped only when the request's own
//! task got the frame. Here the request's task reads its socket itself: bytes are
//! stamped when `read` returns, `t0` is taken right before the request is written
//! (after the wait for a connection, as METRICS.md defines it), and a chunk of the
//! body is handed out by reference into the connection's buffer.
//!
//! Responses are parsed with `httparse`; bodies may be sized (`content-length`),
//! `chunked`, or end when the connection closes. A kept-alive connection goes back
//! to the endpoint's pool once its body has been read to the end.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Sleep;

/// A response head larger than this is refused (servers send a few hundred bytes).
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// A chunk-size line or trailer line longer than this is refused.
const MAX_LINE_BYTES: usize = 4096;
const READ_BUFFER_BYTES: usize = 16 * 1024;

/// Why a request or a body read failed: both kinds are retryable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum H1Error {
    TimedOut,
    Failed(String),
}

impl H1Error {
    fn io(err: &std::io::Error) -> H1Error {
        H1Error::Failed(err.to_string())
    }
}

/// Where a URL's requests go: the `host:port` to connect to (also the pool's key
/// and the `Host` header) and the path with its query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) authority: String,
    pub(crate) path: String,
}

impl Target {
    /// The target of an `http://` URL; `None` for any other scheme.
    pub(crate) fn of(url: &str) -> Option<Target> {
        let parsed = reqwest::Url::parse(url).ok()?;
        if parsed.scheme() != "http" {
            return None;
        }
        let host = parsed.host_str()?;
        let port = parsed.port_or_known_default()?;
        let path = match parsed.query() {
            Some(query) => format!("{}?{query}", parsed.path()),
            None => parsed.path().to_string(),
        };
        Some(Target {
            authority: format!("{host}:{port}"),
            path,
        })
    }
}

/// Kept-alive connections per `host:port`, and how to open new ones.
pub(crate) struct H1Pool {
    idle: Mutex<HashMap<String, Vec<Conn>>>,
    max_idle_per_host: usize,
    connect_timeout: Duration,
}

impl H1Pool {
    pub(crate) fn new(max_idle_per_host: usize, connect_timeout: Duration) -> H1Pool {
        H1Pool {
            idle: Mutex::new(HashMap::new()),
            max_idle_per_host,
            connect_timeout,
        }
    }

    fn checkout(&self, authority: &str) -> Option<Conn> {
        self.idle.lock().ok()?.get_mut(authority)?.pop()
    }

    fn give_back(&self, conn: Conn) {
        if let Ok(mut idle) = self.idle.lock() {
            let conns = idle.entry(conn.authority.clone()).or_default();
            if conns.len() < self.max_idle_per_host {
                conns.push(conn);
            }
        }
    }

    async fn connect(&self, authority: &str) -> Result<Conn, H1Error> {
        let stream = tokio::time::timeout(self.connect_timeout, TcpStream::connect(authority))
            .await
            .map_err(|_| H1Error::TimedOut)?
            .map_err(|err| H1Error::Failed(format!("cannot connect to {authority}: {err}")))?;
        // Best effort: the request goes out in one write anyway.
        let _ = stream.set_nodelay(true);
        Ok(Conn {
            stream,
            authority: authority.to_string(),
            buf: vec![0; READ_BUFFER_BYTES],
            start: 0,
            end: 0,
        })
    }

    /// POST `body` to `target` with `headers` (whole `name: value\r\n` lines),
    /// within `timeout` from the moment the request is written. Returns `t0`, the
    /// instant right before the request was written, and the response with its head
    /// read. A kept-alive connection that the server had closed meanwhile is replaced
    /// by a new one once, as every HTTP client does.
    pub(crate) async fn post(
        &self,
        target: &Target,
        headers: &str,
        body: &[u8],
        timeout: Duration,
    ) -> Result<(Instant, Response<'_>), H1Error> {
        let mut request = format!(
            "POST {} HTTP/1.1\r\nhost: {}\r\ncontent-length: {}\r\n{headers}\r\n",
            target.path,
            target.authority,
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        let mut pooled = self.checkout(&target.authority);
        loop {
            let reused = pooled.is_some();
            let mut conn = match pooled.take() {
                Some(conn) => conn,
                None => self.connect(&target.authority).await?,
            };
            let t0 = Instant::now();
            let mut deadline = Box::pin(tokio::time::sleep(timeout));
            if let Err(err) = conn.stream.write_all(&request).await {
                if reused {
                    continue;
                }
                return Err(H1Error::io(&err));
            }
            match read_head(&mut conn, &mut deadline).await {
                Ok(head) => {
                    let framing = head.framing();
                    let reusable = head.keep_alive && !matches!(framing, Framing::UntilClose);
                    return Ok((
                        t0,
                        Response {
                            head,
                            conn: Some(conn),
                            framing,
                            reusable,
                            deadline,
                            pool: self,
                        },
                    ));
                }
                Err(HeadError::ClosedBeforeAnswer) if reused => continue,
                Err(HeadError::ClosedBeforeAnswer) => {
                    return Err(H1Error::Failed(
                        "the server closed the connection without answering".into(),
                    ));
                }
                Err(HeadError::Other(err)) => return Err(err),
            }
        }
    }
}

/// An open connection and what has been read from it but not yet consumed
/// (`buf[start..end]`).
struct Conn {
    stream: TcpStream,
    authority: String,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Conn {
    fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// How many of the buffered bytes belong to a body part with `left` bytes to go.
    fn available(&self, left: u64) -> usize {
        (self.end - self.start).min(usize::try_from(left).unwrap_or(usize::MAX))
    }

    /// Read more bytes from the socket, making room first; `Ok(0)` at end of stream.
    /// Whatever is buffered stays buffered (moved to the front when that makes room).
    async fn fill(&mut self, deadline: &mut Pin<Box<Sleep>>) -> Result<usize, H1Error> {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        }
        // Never read into a sliver of space (that would make many tiny reads): move
        // the unconsumed bytes to the front, and grow when they fill half the buffer.
        if self.buf.len() - self.end < self.buf.len() / 2 {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                (self.start, self.end) = (0, self.end - self.start);
            }
            if self.buf.len() - self.end < self.buf.len() / 2 {
                self.buf.resize(self.buf.len() * 2, 0);
            }
        }
        let Conn {
            stream, buf, end, ..
        } = self;
        let n = tokio::select! {
            biased;
            read = stream.read(&mut buf[*end..]) => read.map_err(|err| H1Error::io(&err))?,
            () = deadline.as_mut() => return Err(H1Error::TimedOut),
        };
        *end += n;
        Ok(n)
    }
}

/// A response's status line and the headers Podium reads.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) status: u16,
    /// Header names lower-cased, in the order received.
    pub(crate) headers: Vec<(String, String)>,
    keep_alive: bool,
}

impl Head {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn framing(&self) -> Framing {
        if self.status == 204 || self.status == 304 {
            return Framing::Sized(0);
        }
        let chunked = self.header("transfer-encoding").is_some_and(|coding| {
            coding
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
        });
        if chunked {
            return Framing::Chunked(ChunkState::Size);
        }
        match self
            .header("content-length")
            .and_then(|n| n.trim().parse().ok())
        {
            Some(n) => Framing::Sized(n),
            None => Framing::UntilClose,
        }
    }
}

enum HeadError {
    /// The connection ended before any byte of an answer (a stale pooled connection).
    ClosedBeforeAnswer,
    Other(H1Error),
}

async fn read_head(conn: &mut Conn, deadline: &mut Pin<Box<Sleep>>) -> Result<Head, HeadError> {
    let mut received_any = false;
    loop {
        if conn.start < conn.end {
            received_any = true;
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut response = httparse::Response::new(&mut headers);
            match response.parse(conn.buffered()) {
                Ok(httparse::Status::Complete(len)) => {
                    let status = response.code.unwrap_or(0);
                    let version = response.version.unwrap_or(1);
                    let headers: Vec<(String, String)> = response
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_ascii_lowercase(),
                                String::from_utf8_lossy(h.value).into_owned(),
                            )
                        })
                        .collect();
                    conn.start += len;
                    if (100..200).contains(&status) {
                        continue; // 100 Continue and other interim answers
                    }
                    let connection = headers
                        .iter()
                        .find(|(n, _)| n == "connection")
                        .map(|(_, v)| v.to_ascii_lowercase());
                    let keep_alive = match connection.as_deref() {
                        Some(value) if value.contains("close") => false,
                        Some(value) if value.contains("keep-alive") => true,
                        _ => version >= 1,
                    };
                    return Ok(Head {
                        status,
                        headers,
                        keep_alive,
                    });
                }
                Ok(httparse::Status::Partial) => {
                    if conn.end - conn.start > MAX_HEAD_BYTES {
                        return Err(HeadError::Other(H1Error::Failed(format!(
                            "the response head is larger than {MAX_HEAD_BYTES} bytes"
                        ))));
                    }
                }
                Err(err) => {
                    return Err(HeadError::Other(H1Error::Failed(format!(
                        "not an HTTP/1.1 response ({err}): `{}`",
                        String::from_utf8_lossy(&conn.buffered()[..conn.buffered().len().min(80)])
                    ))));
                }
            }
        }
        match conn.fill(deadline).await {
            Ok(0) if !received_any => return Err(HeadError::ClosedBeforeAnswer),
            Ok(0) => {
                return Err(HeadError::Other(H1Error::Failed(
                    "the connection closed in the middle of the response head".into(),
                )));
            }
            Ok(_) => {}
            Err(H1Error::Failed(_)) if !received_any => return Err(HeadError::ClosedBeforeAnswer),
            Err(err) => return Err(HeadError::Other(err)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// `content-length`: this many bytes are left.
    Sized(u64),
    Chunked(ChunkState),
    /// No length and no chunking: the body ends when the server closes.
    UntilClose,
    /// The body has been read to its end.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Expecting a `SIZE[;ext]\r\n` line.
    Size,
    /// Inside a chunk, this many bytes left.
    Data(u64),
    /// Expecting the `\r\n` after a chunk's data.
    DataEnd,
    /// After the `0` chunk: trailer lines up to an empty one.
    Trailer,
}

/// A response whose head has been read; its body is read with [`Response::chunk`].
pub(crate) struct Response<'p> {
    pub(crate) head: Head,
    conn: Option<Conn>,
    framing: Framing,
    reusable: bool,
    deadline: Pin<Box<Sleep>>,
    pool: &'p H1Pool,
}

impl Response<'_> {
    /// The next piece of the body, borrowed from the connection's buffer, or `None`
    /// at its end (the connection then goes back to the pool if it can be reused).
    /// Each call reads the socket at most until some body bytes are available.
    pub(crate) async fn chunk(&mut self) -> Result<Option<&[u8]>, H1Error> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(None);
        };
        let range = loop {
            match self.framing {
                Framing::Done => break None,
                Framing::Sized(0) => self.framing = Framing::Done,
                Framing::Sized(left) => {
                    if conn.start == conn.end && conn.fill(&mut self.deadline).await? == 0 {
                        return Err(H1Error::Failed(format!(
                            "the connection closed with {left} bytes of the body unread"
                        )));
                    }
                    let n = conn.available(left);
                    self.framing = Framing::Sized(left - n as u64);
                    break Some((conn.start, conn.start + n));
                }
                Framing::UntilClose => {
                    if conn.start == conn.end && conn.fill(&mut self.deadline).await? == 0 {
                        self.framing = Framing::Done;
                        continue;
                    }
                    break Some((conn.start, conn.end));
                }
                Framing::Chunked(ChunkState::Data(left)) => {
                    if conn.start == conn.end && conn.fill(&mut self.deadline).await? == 0 {
                        return Err(cut_chunked());
                    }
                    let n = conn.available(left);
                    let left = left - n as u64;
                    self.framing = Framing::Chunked(if left == 0 {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left)
                    });
                    break Some((conn.start, conn.start + n));
                }
                Framing::Chunked(state) => {
                    let (from, to) = next_line(conn, &mut self.deadline).await?;
                    self.framing = next_chunk_state(state, &conn.buf[from..to])?;
                }
            }
        };
        let Some((from, to)) = range else {
            if let Some(conn) = self.conn.take()
                && self.reusable
                && conn.start == conn.end
            {
                self.pool.give_back(conn);
            }
            return Ok(None);
        };
        // Borrowed anew: the loop's borrow may not outlive the `take` above.
        let conn = self.conn.as_mut().expect("read from above");
        conn.start = to;
        Ok(Some(&conn.buf[from..to]))
    }

    /// Read what is left of the body for at most `wait`, so that the connection
    /// can go back to the pool: a stream is left as soon as its last event is in,
    /// and the server's closing bytes (the `0` chunk) follow at once. A server that
    /// sends more, or nothing, within `wait` loses the connection instead.
    pub(crate) async fn finish(mut self, wait: Duration) {
        let drain = async { while let Ok(Some(_)) = self.chunk().await {} };
        let _ = tokio::time::timeout(wait, drain).await;
    }
}

fn cut_chunked() -> H1Error {
    H1Error::Failed("the connection closed in the middle of a chunk of the body".into())
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Where the next line of the buffer is (without its `\r\n`), reading more as needed;
/// the buffer's start moves past it.
async fn next_line(
    conn: &mut Conn,
    deadline: &mut Pin<Box<Sleep>>,
) -> Result<(usize, usize), H1Error> {
    loop {
        if let Some(newline) = memchr::memchr(b'\n', conn.buffered()) {
            let from = conn.start;
            let line = trim_cr(&conn.buf[from..from + newline]);
            let to = from + line.len();
            conn.start = from + newline + 1;
            return Ok((from, to));
        }
        if conn.end - conn.start > MAX_LINE_BYTES {
            return Err(H1Error::Failed(format!(
                "a chunk-size line of the body is longer than {MAX_LINE_BYTES} bytes"
            )));
        }
        if conn.fill(deadline).await? == 0 {
            return Err(cut_chunked());
        }
    }
}

/// The state after one line of a chunked body (`line` without its `\r\n`).
fn next_chunk_state(state: ChunkState, line: &[u8]) -> Result<Framing, H1Error> {
    Ok(match state {
        ChunkState::Size => match parse_chunk_size(line)? {
            0 => Framing::Chunked(ChunkState::Trailer),
            size => Framing::Chunked(ChunkState::Data(size)),
        },
        ChunkState::DataEnd if line.is_empty() => Framing::Chunked(ChunkState::Size),
        ChunkState::DataEnd | ChunkState::Data(_) => {
            return Err(H1Error::Failed(
                "a chunk of the body is longer than its size said".into(),
            ));
        }
        ChunkState::Trailer if line.is_empty() => Framing::Done,
        ChunkState::Trailer => Framing::Chunked(ChunkState::Trailer),
    })
}

/// `1a2b` or `1a2b;name=value` (extensions are ignored).
fn parse_chunk_size(line: &[u8]) -> Result<u64, H1Error> {
    let text = String::from_utf8_lossy(line);
    let size = text.split(';').next().unwrap_or("").trim();
    u64::from_str_radix(size, 16).map_err(|_| {
        H1Error::Failed(format!(
            "invalid chunk size `{}` in the body",
            super::http::truncate_for_message(&text, 40)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A one-shot server: accept one connection per answer, read the request head
    /// and body, write `answer` in the given pieces, then keep the connection open
    /// (if `keep`) or close it. Returns the base URL.
    async fn serve(answers: Vec<(Vec<&'static str>, bool)>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let mut answers = answers.into_iter();
            'accept: while let Ok((mut socket, _)) = listener.accept().await {
                // Serve requests on this connection while answers say to keep it.
                for (pieces, keep) in answers.by_ref() {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    loop {
                        let n = socket.read(&mut buf).await.unwrap();
                        if n == 0 {
                            continue 'accept;
                        }
                        request.extend_from_slice(&buf[..n]);
                        let text = String::from_utf8_lossy(&request);
                        if let Some(end) = text.find("\r\n\r\n") {
                            let length: usize = text
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length: "))
                                .map_or(0, |n| n.trim().parse().unwrap());
                            if request.len() >= end + 4 + length {
                                break;
                            }
                        }
                    }
                    for piece in pieces {
                        socket.write_all(piece.as_bytes()).await.unwrap();
                        socket.flush().await.unwrap();
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    if !keep {
                        continue 'accept;
                    }
                }
            }
        });
        url
    }

    async fn fetch(pool: &H1Pool, url: &str) -> Result<(u16, Vec<Vec<u8>>), H1Error> {
        let target = Target::of(&format!("{url}/v1/x?a=1")).unwrap();
        let (_, mut response) = pool
            .post(&target, "accept: */*\r\n", b"{}", Duration::from_secs(5))
            .await?;
        let mut pieces = Vec::new();
        while let Some(piece) = response.chunk().await? {
            pieces.push(piece.to_vec());
        }
        Ok((response.head.status, pieces))
    }

    #[test]
    fn targets_are_http_urls_only() {
        assert_eq!(
            Target::of("http://localhost:8000/v1/completions?x=1"),
            Some(Target {
                authority: "localhost:8000".into(),
                path: "/v1/completions?x=1".into()
            })
        );
        assert_eq!(Target::of("http://[::1]/v1").unwrap().authority, "[::1]:80");
        assert_eq!(Target::of("https://api.openai.com/v1"), None);
    }

    #[tokio::test]
    async fn bodies_sized_chunked_and_until_close() {
        let url = serve(vec![
            (
                vec![
                    "HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\nhello",
                    " world",
                ],
                true,
            ),
            (
                vec![
                    "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nda",
                    "ta:\r\n3;ext=1\r\n x\n\r\n",
                    "0\r\ntrailer: t\r\n\r\n",
                ],
                true,
            ),
            (vec!["HTTP/1.0 200 OK\r\n\r\nuntil", " close"], false),
        ])
        .await;
        let pool = H1Pool::new(4, Duration::from_secs(5));
        let (status, pieces) = fetch(&pool, &url).await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(pieces.concat(), b"hello world");
        // The connection was kept and reused for the chunked answer.
        assert_eq!(pool.idle.lock().unwrap()[&url[7..]].len(), 1);
        let (_, pieces) = fetch(&pool, &url).await.unwrap();
        assert_eq!(pieces.concat(), b"data: x\n");
        let (_, pieces) = fetch(&pool, &url).await.unwrap();
        assert_eq!(pieces.concat(), b"until close");
        // HTTP/1.0 without keep-alive is not pooled.
        assert!(pool.idle.lock().unwrap()[&url[7..]].is_empty());
    }

    #[tokio::test]
    async fn a_stale_pooled_connection_is_replaced_once() {
        // The first connection answers once and closes behind the client's back.
        let url = serve(vec![
            (
                vec!["HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"],
                false,
            ),
            (
                vec!["HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfresh"],
                false,
            ),
        ])
        .await;
        let pool = H1Pool::new(4, Duration::from_secs(5));
        assert_eq!(fetch(&pool, &url).await.unwrap().1.concat(), b"ok");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(fetch(&pool, &url).await.unwrap().1.concat(), b"fresh");
    }

    #[tokio::test]
    async fn cut_bodies_bad_heads_and_silence_are_errors() {
        let cases: [(&'static str, &str); 4] = [
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort",
                "5 bytes of the body unread",
            ),
            (
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n9\r\nabc",
                "in the middle of a chunk",
            ),
            (
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
                "invalid chunk size `zz`",
            ),
            ("<html>not http</html>\r\n\r\n", "not an HTTP/1.1 response"),
        ];
        for (answer, expected) in cases {
            let url = serve(vec![(vec![answer], false)]).await;
            let pool = H1Pool::new(4, Duration::from_secs(5));
            match fetch(&pool, &url).await {
                Err(H1Error::Failed(message)) => {
                    assert!(message.contains(expected), "{answer:?}: {message}");
                }
                other => panic!("{answer:?}: {other:?}"),
            }
        }
        // A server that reads the request and never answers.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (_socket, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(60)).await;
        });
        let pool = H1Pool::new(4, Duration::from_secs(5));
        let target = Target::of(&url).unwrap();
        let result = pool
            .post(&target, "", b"", Duration::from_millis(100))
            .await;
        assert!(matches!(result, Err(H1Error::TimedOut)));
    }

    #[tokio::test]
    async fn finish_keeps_a_connection_whose_body_ends_soon() {
        let url = serve(vec![
            (
                vec![
                    "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\nabcd\r\n",
                    "0\r\n\r\n",
                ],
                true,
            ),
            (vec!["HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"], true),
        ])
        .await;
        let pool = H1Pool::new(4, Duration::from_secs(5));
        let target = Target::of(&url).unwrap();
        let (_, mut response) = pool
            .post(&target, "", b"", Duration::from_secs(5))
            .await
            .unwrap();
        // Read the first chunk only; the closing `0` chunk comes in a later write.
        let first = response.chunk().await.unwrap().unwrap().to_vec();
        assert_eq!(first, b"abcd");
        response.finish(Duration::from_secs(1)).await;
        assert_eq!(pool.idle.lock().unwrap()[&url[7..]].len(), 1);
        assert_eq!(fetch(&pool, &url).await.unwrap().1.concat(), b"ok");
    }
}
