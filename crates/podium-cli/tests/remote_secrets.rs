//! The `podium` binary against a hostile fake endpoint on 127.0.0.1 (issue 9): an
//! API key and a base URL's password are used for the requests but no part of them
//! reaches the database, the `--output` files, stdout or stderr, even when the
//! server echoes them back in long error bodies; and the board survives any token
//! count stored in the database.

mod common;

use common::podium;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

const KEY_ENV: &str = "PODIUM_E2E_SECRET_KEY";
const KEY: &str = "sk-ant-e2e-Wq4nB8xT2vL6pR9sK3mZ";
const USER: &str = "alice-e2e";
const PASSWORD: &str = "Pw-e2e-Kq7Zr4Xv9Lm2";
/// base64("alice-e2e:Pw-e2e-Kq7Zr4Xv9Lm2"): what the `Authorization: Basic` header carries.
const BASIC: &str = "YWxpY2UtZTJlOlB3LWUyZS1LcTdacjRYdjlMbTI=";

const TASK_YAML: &str = r#"task: tiny_qa
dataset_path: json
dataset_kwargs:
  data_files:
    test: data.jsonl
test_split: test
output_type: generate_until
doc_to_text: "Q: {{question}}\nA:"
doc_to_target: "{{answer}}"
generation_kwargs:
  until:
    - "\n"
  max_gen_toks: 8
  do_sample: false
metric_list:
  - metric: exact_match
"#;

/// Run `command`; its exit code, stdout and stderr.
fn run(command: &mut Command) -> (i32, String, String) {
    let output = command.output().expect("podium runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "podium panicked:\n{stderr}");
    (
        output.status.code().expect("podium exits, not killed"),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr,
    )
}

/// One request from `stream`: its lower-cased header block and its JSON body.
fn read_request(stream: &mut BufReader<TcpStream>) -> Option<(String, Value)> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        head.push_str(&line.to_ascii_lowercase());
    }
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    stream.read_exact(&mut body).ok()?;
    Some((head, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

fn sse_event(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

/// Answer one connection as an Anthropic endpoint behind basic auth that echoes
/// the credentials back in its errors, with the key straddling the 500-character
/// cut of error messages.
fn answer(stream: TcpStream) {
    let mut reader = BufReader::new(stream);
    let Some((head, body)) = read_request(&mut reader) else {
        return;
    };
    let mut stream = reader.into_inner();
    let authorized = head.contains(&format!("x-api-key: {}", KEY.to_ascii_lowercase()))
        && head.contains(&format!(
            "authorization: basic {}",
            BASIC.to_ascii_lowercase()
        ));
    let prompt = body
        .pointer("/messages/0/content")
        .and_then(Value::as_str)
        .unwrap_or("");
    let (status, content_type, payload) = if !authorized {
        (
            401,
            "application/json",
            json!({"error": {"message": "unauthorized"}}).to_string(),
        )
    } else if prompt.contains("fail") {
        let message = format!(
            "{}{KEY} is not valid here; you sent {USER}:{PASSWORD} as `Basic {BASIC}`",
            "x".repeat(490)
        );
        (
            500,
            "application/json",
            json!({"error": {"message": message}}).to_string(),
        )
    } else {
        let events = [
            sse_event(
                "message_start",
                json!({"type": "message_start", "message": {"usage": {"input_tokens": 5}}}),
            ),
            sse_event(
                "content_block_delta",
                json!({"type": "content_block_delta", "delta": {"type": "text_delta", "text": " 4"}}),
            ),
            sse_event(
                "message_delta",
                json!({"type": "message_delta", "usage": {"output_tokens": 1}}),
            ),
            sse_event("message_stop", json!({"type": "message_stop"})),
        ];
        (200, "text/event-stream", events.concat())
    };
    let reply = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{payload}",
        payload.len()
    );
    let _ = stream.write_all(reply.as_bytes());
}

/// Every file under `dir`, concatenated (the database with its WAL, the outputs).
fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            bytes.extend(all_bytes(&path));
        } else {
            bytes.extend(std::fs::read(&path).unwrap());
        }
    }
    bytes
}

/// The first 8-byte window of any secret found in `haystack`.
fn leaked_fragment(haystack: &[u8]) -> Option<String> {
    for secret in [KEY, PASSWORD, BASIC] {
        for window in secret.as_bytes().windows(8) {
            if haystack.windows(8).any(|w| w == window) {
                return Some(String::from_utf8_lossy(window).into_owned());
            }
        }
    }
    None
}

/// Regression (issue 9): a key straddling the 500-character cut of an error body
/// survived in part into `samples.error`, stderr and the `--output` JSONL, and a URL
/// password went into `models.spec` and onto the board.
#[test]
fn no_part_of_a_key_or_url_password_leaves_the_process() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || answer(stream));
        }
    });

    let dir = tempfile::tempdir().unwrap();
    let tasks = dir.path().join("tasks");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&tasks).unwrap();
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(tasks.join("tiny.yaml"), TASK_YAML).unwrap();
    std::fs::write(
        tasks.join("data.jsonl"),
        "{\"question\": \"2+2?\", \"answer\": \"4\"}\n\
         {\"question\": \"fail please\", \"answer\": \"4\"}\n\
         {\"question\": \"3+1?\", \"answer\": \"4\"}\n",
    )
    .unwrap();
    let db = state.join("podium.db");
    let out = state.join("out");
    let spec = format!(
        "anthropic:claude-test?base_url=http://{USER}:{PASSWORD}@127.0.0.1:{port}&api_key_env={KEY_ENV}&retries=1&backoff_ms=1"
    );
    let mut printed = Vec::new();
    for http_client in ["builtin", "reqwest"] {
        let (code, stdout, stderr) = run(podium()
            .env(KEY_ENV, KEY)
            .env("RUST_LOG", "trace")
            // Everything the CLI logs reaches stderr, which is checked for secrets.
            .env("PODIUM_LOG", "trace")
            .arg("--db")
            .arg(&db)
            .arg("--tasks-dir")
            .arg(&tasks)
            .args([
                "eval",
                "-m",
                &format!("{spec}&http_client={http_client}"),
                "-t",
                "tiny_qa",
            ])
            .arg("--output")
            .arg(&out));
        // Two docs answered (so the credentials were sent), one failed, and said so.
        assert_eq!(code, 1, "{http_client}: {stdout}\n{stderr}");
        assert!(stderr.contains("1 samples failed"), "{stderr}");
        assert!(stderr.contains("HTTP 500: xxx"), "{stderr}");
        // The retry was logged to stderr (issue 9: warnings never reached it).
        assert!(stderr.contains("retrying in"), "{stderr}");
        assert!(stdout.contains("exact_match"), "{stdout}");
        printed.extend([stdout, stderr]);
    }
    for args in [&["board"][..], &["board", "--format", "json"], &["runs"]] {
        let (code, stdout, stderr) = run(podium().arg("--db").arg(&db).args(args));
        assert_eq!(code, 0, "{args:?}: {stderr}");
        // The board lists finished runs only (this one has a failed sample); `runs` all.
        if args == ["runs"] {
            assert!(
                stdout.contains(&format!("base_url=http://127.0.0.1:{port}")),
                "{stdout}"
            );
        }
        printed.extend([stdout, stderr]);
    }
    // An error while opening the model shows the spec with its credentials blanked.
    let (code, _, stderr) = run(podium()
        .arg("--db")
        .arg(&db)
        .arg("--tasks-dir")
        .arg(&tasks)
        .args(["eval", "-m", &format!("{spec}&bogus=1"), "-t", "tiny_qa"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("http://***@127.0.0.1"), "{stderr}");
    printed.push(stderr);

    let stored = all_bytes(&state);
    assert!(stored.len() > 10_000, "the database and outputs were read");
    assert!(
        String::from_utf8_lossy(&stored).contains("HTTP 500: xxxxxxxxxx"),
        "the echoed error was stored (scrubbed)"
    );
    if let Some(fragment) = leaked_fragment(&stored) {
        panic!("`{fragment}` of a secret is in the database or the output files");
    }
    if let Some(fragment) = leaked_fragment(printed.concat().as_bytes()) {
        panic!(
            "`{fragment}` of a secret was printed:\n{}",
            printed.concat()
        );
    }
}

/// Regression (issue 9): one sample's stored token count near 2^63 (a hostile
/// server's, stored before counts were checked) made `podium board` fail with an
/// integer overflow for the whole database.
#[test]
fn the_board_survives_absurd_stored_token_counts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("podium.db");
    let (code, _, stderr) = run(podium()
        .arg("--db")
        .arg(&db)
        .args(["eval", "-m", "mock:a", "-t", "arc_easy", "--limit", "3"]));
    assert_eq!(code, 0, "{stderr}");
    // A priced model, so that the board computes a cost from the counts.
    let raw = rusqlite::Connection::open(&db).unwrap();
    raw.execute_batch(
        "UPDATE models SET spec = 'openai:gpt-4o-mini';
         UPDATE samples SET n_input_tokens = 9000000000000000000,
                            n_output_tokens = 9223372036854775807;",
    )
    .unwrap();
    drop(raw);
    for format in ["table", "json", "csv"] {
        let (code, stdout, stderr) = run(podium()
            .arg("--db")
            .arg(&db)
            .args(["board", "--format", format]));
        assert_eq!(code, 0, "{format}: {stderr}");
        // The table shows the catalogue's display name; JSON and CSV the spec too.
        assert!(stdout.contains("GPT-4o mini"), "{stdout}");
    }
}
