//! A lean HTTP/1.1 client for `http://` and `https://` endpoints: local and LAN
//! servers (vLLM, llama.cpp, TGI, Ollama, `podium serve-model`) that stream hundreds
//! of events a second, and hosted APIs. Every endpoint goes through reqwest instead
//! when a proxy is set in the environment, or with `http_client=reqwest` (see
//! `http::Endpoint::post`).
//!
//! Why not reqwest: hyper reads the socket in a connection task and hands
//! each HTTP chunk to the response body over a channel, so every streamed event
//! crossed a task boundary with a waker (a fifth of the client's CPU per event in
//! `bench/remote`), and the arrival of bytes was stamped only when the request's own
//! task got the frame. Here the request's task reads its socket itself: bytes are
//! stamped when `read` returns, `t0` is taken right before the request is written
//! (after the wait for a connection, TCP and TLS set-up included, as METRICS.md
//! defines it), and a chunk of the body is handed out by reference into the
//! connection's buffer. TLS is rustls with the Mozilla roots, as reqwest's.
//!
//! Responses are parsed with `httparse`; bodies may be sized (`content-length`),
//! `chunked`, or end when the connection closes. A kept-alive connection goes back
//! to the endpoint's pool once its body has been read to the end.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Sleep;

/// A response head larger than this is refused (servers send a few hundred bytes).
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// A chunk-size line or trailer line longer than this is refused.
const MAX_LINE_BYTES: usize = 4096;
/// More trailer lines than this after the last chunk are refused (a response head
/// may hold as many headers).
const MAX_TRAILER_LINES: u16 = 64;
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

/// Where a URL's requests go: the `host:port` to connect to, the `Host` header,
/// the path with its query, and for `https://` the name the server's certificate
/// must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) authority: String,
    /// The `Host` header: the host, with the port only where the URL gives a
    /// non-default one (as browsers and reqwest send it).
    pub(crate) host: String,
    pub(crate) path: String,
    pub(crate) tls_name: Option<String>,
}

impl Target {
    /// The target of an `http://` or `https://` URL; `None` for any other scheme.
    pub(crate) fn of(url: &str) -> Option<Target> {
        let parsed = reqwest::Url::parse(url).ok()?;
        let tls = match parsed.scheme() {
            "http" => false,
            "https" => true,
            _ => return None,
        };
        let host = parsed.host_str()?;
        let port = parsed.port_or_known_default()?;
        let path = match parsed.query() {
            Some(query) => format!("{}?{query}", parsed.path()),
            None => parsed.path().to_string(),
        };
        Some(Target {
            authority: format!("{host}:{port}"),
            host: match parsed.port() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_string(),
            },
            path,
            // An IPv6 literal is written in brackets in URLs, bare in certificates.
            tls_name: tls.then(|| {
                host.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string()
            }),
        })
    }

    /// The pool's key: connections are shared per scheme and authority.
    fn key(&self) -> String {
        let scheme = if self.tls_name.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.authority)
    }
}

/// TLS settings for `https://`: rustls with the Mozilla roots (as reqwest uses),
/// offering only HTTP/1.1. Built once per process.
fn default_tls() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            tls_config(roots)
        })
        .clone()
}

/// A client configuration trusting `roots`, offering HTTP/1.1 by ALPN.
pub(crate) fn tls_config(roots: rustls::RootCertStore) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Kept-alive connections per scheme and `host:port`, and how to open new ones.
pub(crate) struct H1Pool {
    idle: Mutex<HashMap<String, Vec<Conn>>>,
    max_idle_per_host: usize,
    connect_timeout: Duration,
    /// `None` until the first `https://` connection (then the default roots).
    tls: OnceLock<Arc<rustls::ClientConfig>>,
}

impl H1Pool {
    pub(crate) fn new(max_idle_per_host: usize, connect_timeout: Duration) -> H1Pool {
        H1Pool {
            idle: Mutex::new(HashMap::new()),
            max_idle_per_host,
            connect_timeout,
            tls: OnceLock::new(),
        }
    }

    /// A pool whose `https://` connections trust `tls`'s roots instead of the default ones.
    #[cfg(test)]
    fn with_tls(
        max_idle_per_host: usize,
        connect_timeout: Duration,
        tls: Arc<rustls::ClientConfig>,
    ) -> H1Pool {
        let pool = H1Pool::new(max_idle_per_host, connect_timeout);
        let _ = pool.tls.set(tls);
        pool
    }

    fn checkout(&self, key: &str) -> Option<Conn> {
        self.idle.lock().ok()?.get_mut(key)?.pop()
    }

    fn give_back(&self, conn: Conn) {
        if let Ok(mut idle) = self.idle.lock() {
            let conns = idle.entry(conn.key.clone()).or_default();
            if conns.len() < self.max_idle_per_host {
                conns.push(conn);
            }
        }
    }

    /// A new connection, TLS handshake included, within the connect timeout.
    async fn connect(&self, target: &Target) -> Result<Conn, H1Error> {
        let authority = &target.authority;
        let open = async {
            let tcp = TcpStream::connect(authority)
                .await
                .map_err(|err| H1Error::Failed(format!("cannot connect to {authority}: {err}")))?;
            // Best effort: the request goes out in one write anyway.
            let _ = tcp.set_nodelay(true);
            let Some(name) = &target.tls_name else {
                return Ok(Stream::Plain(tcp));
            };
            let server_name =
                rustls::pki_types::ServerName::try_from(name.clone()).map_err(|err| {
                    H1Error::Failed(format!("`{name}` is not a TLS server name: {err}"))
                })?;
            let config = self.tls.get_or_init(default_tls).clone();
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(server_name, tcp)
                .await
                .map_err(|err| {
                    H1Error::Failed(format!("TLS handshake with {authority} failed: {err}"))
                })?;
            Ok(Stream::Tls(Box::new(tls)))
        };
        let stream = tokio::time::timeout(self.connect_timeout, open)
            .await
            .map_err(|_| H1Error::TimedOut)??;
        Ok(Conn {
            stream,
            key: target.key(),
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
            target.host,
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        let mut pooled = self.checkout(&target.key());
        loop {
            let reused = pooled.is_some();
            let mut conn = match pooled.take() {
                Some(conn) => conn,
                None => self.connect(target).await?,
            };
            let t0 = Instant::now();
            let mut deadline = Box::pin(tokio::time::sleep(timeout));
            let written = tokio::select! {
                biased;
                written = conn.stream.write_all(&request) => written,
                () = deadline.as_mut() => return Err(H1Error::TimedOut),
            };
            if let Err(err) = written {
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

/// A connection's byte stream: plain TCP, or TLS over it (or, for the fuzz
/// harness, bytes in memory).
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    Memory(MemoryStream),
}

/// A response held in memory, read back in pieces of a given size.
pub(crate) struct MemoryStream {
    data: Vec<u8>,
    position: usize,
    piece: usize,
}

impl Stream {
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(tcp) => tcp.read(buf).await,
            // A server that closes without TLS's close_notify has still closed.
            Stream::Tls(tls) => match tls.read(buf).await {
                Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => Ok(0),
                read => read,
            },
            Stream::Memory(memory) => {
                let left = &memory.data[memory.position..];
                let n = left.len().min(memory.piece).min(buf.len());
                buf[..n].copy_from_slice(&left[..n]);
                memory.position += n;
                Ok(n)
            }
        }
    }

    async fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Stream::Plain(tcp) => tcp.write_all(data).await,
            Stream::Tls(tls) => {
                tls.write_all(data).await?;
                tls.flush().await
            }
            Stream::Memory(_) => Ok(()),
        }
    }
}

/// An open connection and what has been read from it but not yet consumed
/// (`buf[start..end]`).
struct Conn {
    stream: Stream,
    /// The pool's key ([`Target::key`]).
    key: String,
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

fn head_too_large() -> HeadError {
    HeadError::Other(H1Error::Failed(format!(
        "the response head is larger than {MAX_HEAD_BYTES} bytes"
    )))
}

async fn read_head(conn: &mut Conn, deadline: &mut Pin<Box<Sleep>>) -> Result<Head, HeadError> {
    let mut received_any = false;
    loop {
        if conn.start < conn.end {
            received_any = true;
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut response = httparse::Response::new(&mut headers);
            match response.parse(conn.buffered()) {
                Ok(httparse::Status::Complete(len)) if len > MAX_HEAD_BYTES => {
                    // Refused whatever the read sizes were: a head that arrives
                    // whole in one read is held to the same bound as one in pieces.
                    return Err(head_too_large());
                }
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
                        return Err(head_too_large());
                    }
                }
                Err(err) => {
                    let start = &conn.buffered()[..conn.buffered().len().min(1024)];
                    return Err(HeadError::Other(H1Error::Failed(format!(
                        "not an HTTP/1.1 response ({err}): `{}`",
                        crate::secrets::excerpt(&String::from_utf8_lossy(start), 80)
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
    /// After the `0` chunk: trailer lines up to an empty one; this many read so far.
    Trailer(u16),
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

/// Read a response from `data`, as if a server had sent it in pieces of `piece`
/// bytes: the head, then the body by its framing. Returns the status and the body
/// bytes, or the error a real connection would give. For the fuzz harness.
pub(crate) async fn read_response_from(
    data: Vec<u8>,
    piece: usize,
) -> Result<(u16, Vec<u8>), H1Error> {
    let pool = H1Pool::new(1, Duration::from_secs(1));
    let mut conn = Conn {
        stream: Stream::Memory(MemoryStream {
            data,
            position: 0,
            piece: piece.max(1),
        }),
        key: "memory".into(),
        buf: vec![0; READ_BUFFER_BYTES],
        start: 0,
        end: 0,
    };
    let mut deadline = Box::pin(tokio::time::sleep(Duration::from_secs(3600)));
    let head = match read_head(&mut conn, &mut deadline).await {
        Ok(head) => head,
        Err(HeadError::ClosedBeforeAnswer) => {
            return Err(H1Error::Failed("closed before answering".into()));
        }
        Err(HeadError::Other(err)) => return Err(err),
    };
    let framing = head.framing();
    let mut response = Response {
        reusable: head.keep_alive && !matches!(framing, Framing::UntilClose),
        head,
        conn: Some(conn),
        framing,
        deadline,
        pool: &pool,
    };
    let mut body = Vec::new();
    while let Some(piece) = response.chunk().await? {
        body.extend_from_slice(piece);
    }
    Ok((response.head.status, body))
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
            if line.len() > MAX_LINE_BYTES {
                return Err(long_line());
            }
            let to = from + line.len();
            conn.start = from + newline + 1;
            return Ok((from, to));
        }
        if conn.end - conn.start > MAX_LINE_BYTES {
            return Err(long_line());
        }
        if conn.fill(deadline).await? == 0 {
            return Err(cut_chunked());
        }
    }
}

fn long_line() -> H1Error {
    H1Error::Failed(format!(
        "a chunk-size or trailer line of the body is longer than {MAX_LINE_BYTES} bytes"
    ))
}

/// The state after one line of a chunked body (`line` without its `\r\n`).
fn next_chunk_state(state: ChunkState, line: &[u8]) -> Result<Framing, H1Error> {
    Ok(match state {
        ChunkState::Size => match parse_chunk_size(line)? {
            0 => Framing::Chunked(ChunkState::Trailer(0)),
            size => Framing::Chunked(ChunkState::Data(size)),
        },
        ChunkState::DataEnd if line.is_empty() => Framing::Chunked(ChunkState::Size),
        ChunkState::DataEnd | ChunkState::Data(_) => {
            return Err(H1Error::Failed(
                "a chunk of the body is longer than its size said".into(),
            ));
        }
        ChunkState::Trailer(_) if line.is_empty() => Framing::Done,
        ChunkState::Trailer(lines) if lines >= MAX_TRAILER_LINES => {
            return Err(H1Error::Failed(format!(
                "the body's trailer has more than {MAX_TRAILER_LINES} lines"
            )));
        }
        ChunkState::Trailer(lines) => Framing::Chunked(ChunkState::Trailer(lines + 1)),
    })
}

/// `1a2b` or `1a2b;name=value` (extensions are ignored).
fn parse_chunk_size(line: &[u8]) -> Result<u64, H1Error> {
    let text = String::from_utf8_lossy(line);
    let size = text.split(';').next().unwrap_or("").trim();
    u64::from_str_radix(size, 16).map_err(|_| {
        H1Error::Failed(format!(
            "invalid chunk size `{}` in the body",
            crate::secrets::excerpt(&text, 40)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    type Answers = Vec<(Vec<&'static str>, bool)>;

    /// A scripted server: for each request, in order, write the answer's pieces,
    /// then keep the connection for the next request (if its flag says so) or
    /// close it and take the next connection. Returns the base URL.
    async fn serve(answers: Answers) -> String {
        serve_with(answers, None).await
    }

    /// [`serve`], over TLS when an acceptor is given (the URL is then `https://localhost:PORT`).
    async fn serve_with(answers: Answers, tls: Option<tokio_rustls::TlsAcceptor>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let url = match tls {
            Some(_) => format!("https://localhost:{}", address.port()),
            None => format!("http://{address}"),
        };
        tokio::spawn(async move {
            let mut answers = answers.into_iter();
            while let Ok((socket, _)) = listener.accept().await {
                match &tls {
                    Some(acceptor) => {
                        let Ok(mut socket) = acceptor.accept(socket).await else {
                            continue;
                        };
                        answer_on(&mut socket, &mut answers).await;
                    }
                    None => answer_on(&mut { socket }, &mut answers).await,
                }
            }
        });
        url
    }

    /// Answer requests on one connection while the answers say to keep it.
    async fn answer_on<S>(
        socket: &mut S,
        answers: &mut impl Iterator<Item = (Vec<&'static str>, bool)>,
    ) where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        for (pieces, keep) in answers.by_ref() {
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = socket.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    return;
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
                let _ = socket.shutdown().await;
                return;
            }
        }
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
    fn targets_are_http_and_https_urls() {
        assert_eq!(
            Target::of("http://localhost:8000/v1/completions?x=1"),
            Some(Target {
                authority: "localhost:8000".into(),
                host: "localhost:8000".into(),
                path: "/v1/completions?x=1".into(),
                tls_name: None,
            })
        );
        assert_eq!(Target::of("http://[::1]/v1").unwrap().authority, "[::1]:80");
        let https = Target::of("https://api.openai.com/v1").unwrap();
        assert_eq!(https.authority, "api.openai.com:443");
        assert_eq!(https.host, "api.openai.com");
        assert_eq!(https.tls_name.as_deref(), Some("api.openai.com"));
        assert_eq!(
            Target::of("https://[::1]:8443/")
                .unwrap()
                .tls_name
                .as_deref(),
            Some("::1")
        );
        assert_eq!(Target::of("ftp://host/x"), None);
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
        assert_eq!(pool.idle.lock().unwrap()[url.as_str()].len(), 1);
        let (_, pieces) = fetch(&pool, &url).await.unwrap();
        assert_eq!(pieces.concat(), b"data: x\n");
        let (_, pieces) = fetch(&pool, &url).await.unwrap();
        assert_eq!(pieces.concat(), b"until close");
        // HTTP/1.0 without keep-alive is not pooled.
        assert!(pool.idle.lock().unwrap()[url.as_str()].is_empty());
    }

    /// The bounds on heads, chunk-size lines and trailers hold whatever the read
    /// sizes: a whole response in one read, or a byte at a time.
    #[tokio::test]
    async fn head_line_and_trailer_bounds_do_not_depend_on_read_sizes() {
        let big_head = format!(
            "HTTP/1.1 200 OK\r\nx-big: {}\r\ncontent-length: 2\r\n\r\nok",
            "a".repeat(MAX_HEAD_BYTES)
        );
        let long_size_line = format!(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2;{}\r\nok\r\n0\r\n\r\n",
            "e".repeat(MAX_LINE_BYTES)
        );
        let trailer = |lines: usize| {
            format!(
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n{}\r\n",
                "t: x\r\n".repeat(lines)
            )
        };
        for piece in [1, 7, 1 << 20] {
            let refused = |response: String| async move {
                read_response_from(response.into_bytes(), piece).await
            };
            let err = refused(big_head.clone()).await.unwrap_err();
            assert!(
                format!("{err:?}").contains("head is larger"),
                "{piece}: {err:?}"
            );
            let err = refused(long_size_line.clone()).await.unwrap_err();
            assert!(
                format!("{err:?}").contains("longer than"),
                "{piece}: {err:?}"
            );
            let err = refused(trailer(MAX_TRAILER_LINES as usize + 1))
                .await
                .unwrap_err();
            assert!(
                format!("{err:?}").contains("trailer has more"),
                "{piece}: {err:?}"
            );
            let (status, body) =
                read_response_from(trailer(MAX_TRAILER_LINES as usize).into_bytes(), piece)
                    .await
                    .unwrap();
            assert_eq!((status, body.as_slice()), (200, b"ok".as_slice()));
        }
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
        assert_eq!(pool.idle.lock().unwrap()[url.as_str()].len(), 1);
        assert_eq!(fetch(&pool, &url).await.unwrap().1.concat(), b"ok");
    }

    #[tokio::test]
    async fn https_with_a_trusted_certificate_and_a_refused_one() {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let cert = certified.cert.der().clone();
        let key =
            rustls::pki_types::PrivateKeyDer::Pkcs8(certified.key_pair.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let answers = vec![
            (
                vec![
                    "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
                    "6\r\nsecure\r\n",
                    "0\r\n\r\n",
                ],
                true,
            ),
            (
                vec!["HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nagain"],
                true,
            ),
        ];
        let url = serve_with(answers, Some(acceptor.clone())).await;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).unwrap();
        let pool = H1Pool::with_tls(4, Duration::from_secs(5), tls_config(roots));
        assert_eq!(fetch(&pool, &url).await.unwrap().1.concat(), b"secure");
        // The second request goes over the same TLS connection.
        assert_eq!(pool.idle.lock().unwrap()[url.as_str()].len(), 1);
        assert_eq!(fetch(&pool, &url).await.unwrap().1.concat(), b"again");

        // With the default (Mozilla) roots the self-signed certificate is refused.
        let url = serve_with(
            vec![(vec!["HTTP/1.1 204 X\r\n\r\n"], false)],
            Some(acceptor),
        )
        .await;
        let pool = H1Pool::new(4, Duration::from_secs(5));
        match fetch(&pool, &url).await {
            Err(H1Error::Failed(message)) => {
                assert!(
                    message.contains("TLS handshake with localhost:"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
