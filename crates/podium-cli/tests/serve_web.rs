//! `podium serve` end to end: evaluate a mock model, serve the board on a free
//! port, fetch pages over plain HTTP, stop on SIGTERM.

mod common;

use common::{podium, startup_address};

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A minimal HTTP/1.1 GET: (status line, whole response).
fn get(addr: &str, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.lines().next().unwrap_or_default().to_string();
    (status, response)
}

// SIGTERM is sent with kill(1).
#[cfg(unix)]
#[test]
fn serve_shows_the_board_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("podium.db");
    let db = db.to_str().unwrap();
    let eval = podium()
        .args([
            "--db", db, "eval", "-m", "mock:a", "-t", "arc_easy", "--limit", "3",
        ])
        .output()
        .unwrap();
    assert!(
        eval.status.success(),
        "{}",
        String::from_utf8_lossy(&eval.stderr)
    );

    let mut child = podium()
        .args(["--db", db, "serve", "--addr", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("podium serve starts");
    // "podium serve: the board of DB is at http://127.0.0.1:PORT/ (Ctrl-C to stop)"
    let (addr, _stderr) = startup_address(&mut child);

    let (status, page) = get(&addr, "/");
    assert_eq!(status, "HTTP/1.1 200 OK", "{page}");
    assert!(page.contains("mock:a") && page.contains("arc_easy"));
    assert!(
        page.to_ascii_lowercase()
            .contains("content-security-policy")
    );
    let (status, _) = get(&addr, "/api/v1/board");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let (status, _) = get(&addr, "/?sort=nonsense");
    assert_eq!(status, "HTTP/1.1 400 Bad Request");

    let terminated = Command::new("kill")
        .args(["-s", "TERM", "--", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(terminated.success());
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "serve exits 0 on SIGTERM: {status}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "serve did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A minimal HTTP/1.1 POST of JSON: (status line, whole response, chunk
/// framing included).
fn post_json(addr: &str, path: &str, body: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.lines().next().unwrap_or_default().to_string();
    (status, response)
}

/// The value of `"key":"…"` in `text` (a token or a model name: no escapes).
fn json_string(text: &str, key: &str) -> String {
    let start = text
        .find(&format!("\"{key}\":\""))
        .unwrap_or_else(|| panic!("no {key} in {text}"))
        + key.len()
        + 4;
    text[start..].split('"').next().unwrap().to_string()
}

#[cfg(unix)]
#[test]
fn serve_arena_pairs_mock_contenders_and_stores_a_vote() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("podium.db");
    let db = db.to_str().unwrap();
    let mut child = podium()
        .args([
            "--db",
            db,
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--arena",
            "--contender",
            "mock:alpha",
            "--contender",
            "mock:beta",
            "--votes-per-hour",
            "1",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .expect("podium serve starts");
    let (addr, _stderr) = startup_address(&mut child);

    let (status, page) = get(&addr, "/arena");
    assert_eq!(status, "HTTP/1.1 200 OK", "{page}");
    assert!(page.contains("A is better"));

    let (status, battle) = post_json(&addr, "/arena/battles", r#"{"prompt":"What is 2 + 2?"}"#);
    assert_eq!(status, "HTTP/1.1 200 OK", "{battle}");
    assert!(battle.contains(r#""event":"ready""#), "{battle}");
    assert!(!battle.contains("mock:"), "no model name before the vote");
    let token = json_string(&battle, "token");

    let (status, vote) = post_json(
        &addr,
        "/arena/vote",
        &format!(r#"{{"token":"{token}","winner":"b"}}"#),
    );
    assert_eq!(status, "HTTP/1.1 200 OK", "{vote}");
    let mut models = [json_string(&vote, "model_a"), json_string(&vote, "model_b")];
    models.sort();
    assert_eq!(models, ["mock:alpha".to_string(), "mock:beta".to_string()]);

    // The same token again: refused, and nothing more is stored.
    let (status, _) = post_json(
        &addr,
        "/arena/vote",
        &format!(r#"{{"token":"{token}","winner":"a"}}"#),
    );
    assert_eq!(status, "HTTP/1.1 409 Conflict");
    // A second battle's vote is over the hourly limit of 1.
    let (_, battle) = post_json(&addr, "/arena/battles", r#"{"prompt":"And 3 + 3?"}"#);
    let token = json_string(&battle, "token");
    let (status, limited) = post_json(
        &addr,
        "/arena/vote",
        &format!(r#"{{"token":"{token}","winner":"a"}}"#),
    );
    assert_eq!(status, "HTTP/1.1 429 Too Many Requests", "{limited}");
    assert!(limited.contains("at most 1 an hour"), "{limited}");

    let (status, api) = get(&addr, "/api/v1/arena");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(api.contains(r#""n_battles":1"#), "{api}");

    let terminated = Command::new("kill")
        .args(["-s", "TERM", "--", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(terminated.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");

    // The vote is a battle from the arena in the database.
    let connection = rusqlite::Connection::open(db).unwrap();
    let (source, judge, anonymous): (String, Option<String>, bool) = connection
        .query_row("SELECT source, judge, anonymous FROM battles", [], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .unwrap();
    assert_eq!((source.as_str(), judge, anonymous), ("arena", None, true));
}

#[test]
fn serve_arena_needs_two_contenders() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("podium.db");
    let output = podium()
        .args([
            "--db",
            db.to_str().unwrap(),
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--arena",
            "--contender",
            "mock:alone",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("at least two --contender"), "{stderr}");
}
