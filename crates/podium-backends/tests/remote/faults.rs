//! Fault injection at the endpoint boundary (issue 9): endless bodies, endless
//! lines and event streams, stalls, resets mid-stream, lying `Content-Length`s and
//! absurd `usage` counts. Each must fail its own request with a clear message,
//! through both HTTP clients, and never panic, hang or take unbounded memory.

use serde_json::{Value, json};

use podium_backends::{AnthropicBackend, OpenAiBackend};
use podium_core::{Backend, BackendError, LoglikelihoodRequest};

use crate::fake_server::{End, FakeServer, Reply, completion_chunks, event};
use crate::{generate_request, set_fake_key};

/// Small limits, so that the endless cases end fast.
const LIMITS: &str = "&max_body_bytes=1000000&max_event_bytes=65536";

fn head(status: u16, content_type: &str, framing: &str) -> String {
    format!("HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\n{framing}\r\n\r\n")
}

fn raw(head: String, body: &str, end: End) -> Reply {
    Reply::Raw {
        bytes: format!("{head}{body}").into_bytes(),
        end,
    }
}

fn usage_event(usage: Value) -> String {
    let mut chunks = completion_chunks(&[" ok".into()], None);
    chunks.insert(0, event(&json!({"choices": [], "usage": usage})));
    chunks.concat()
}

/// The hostile (or broken) reply for each prompt; "ok" is a good one.
fn openai_reply(prompt: &str) -> Reply {
    let sse = "text/event-stream";
    let good_json = json!({"choices": [{"text": " ok", "finish_reason": "stop"}]}).to_string();
    match prompt {
        "endless-error-body" => Reply::Endless {
            head: head(500, "text/plain", "connection: close"),
            repeat: "error ".into(),
        },
        "endless-json-body" => Reply::Endless {
            head: head(200, "application/json", "connection: close"),
            repeat: "[1,".into(),
        },
        "endless-chunked-json-body" => Reply::Endless {
            head: head(200, "application/json", "transfer-encoding: chunked"),
            repeat: "4\r\n[1,2\r\n".into(),
        },
        "declared-huge-body" => raw(
            head(200, "application/json", "content-length: 1000000000000"),
            "{",
            End::Stall,
        ),
        "endless-line" => Reply::Endless {
            head: head(200, sse, "connection: close"),
            repeat: "data: aaaaaaaa".into(),
        },
        "endless-event" => Reply::Endless {
            head: head(200, sse, "connection: close"),
            repeat: "data: {}\n".into(),
        },
        "endless-events" => Reply::Endless {
            head: head(200, sse, "connection: close"),
            repeat: event(&json!({"choices": [{"text": "a"}]})),
        },
        "stall-in-head" => Reply::Raw {
            bytes: b"HTTP/1.1 200 OK\r\ncontent-".to_vec(),
            end: End::Stall,
        },
        "stall-in-stream" => raw(
            head(200, sse, "connection: close"),
            &event(&json!({"choices": [{"text": "a"}]})),
            End::Stall,
        ),
        "reset-in-stream" => raw(
            head(200, sse, "connection: close"),
            &event(&json!({"choices": [{"text": "a"}]})),
            End::Reset,
        ),
        "length-longer-than-body" => raw(
            head(200, "application/json", "content-length: 500"),
            &good_json,
            End::Close,
        ),
        "length-shorter-than-body" => raw(
            head(200, "application/json", "content-length: 10"),
            &good_json,
            End::Close,
        ),
        "length-shorter-than-stream" => raw(
            head(200, sse, "content-length: 30"),
            &completion_chunks(&[" ok".into()], None).concat(),
            End::Close,
        ),
        "usage-u64-max" => Reply::sse(
            0,
            0,
            vec![usage_event(
                json!({"prompt_tokens": u64::MAX, "completion_tokens": 1}),
            )],
        ),
        "usage-9e18" => Reply::sse(
            0,
            0,
            vec![usage_event(
                json!({"prompt_tokens": 1, "completion_tokens": 9_000_000_000_000_000_000u64}),
            )],
        ),
        "usage-1e30" => Reply::sse(
            0,
            0,
            vec![usage_event(
                json!({"prompt_tokens": 1e30, "completion_tokens": 1}),
            )],
        ),
        "usage-negative" => Reply::sse(
            0,
            0,
            vec![usage_event(
                json!({"prompt_tokens": -5, "completion_tokens": -1}),
            )],
        ),
        "usage-in-whole-body" => Reply::json(
            200,
            &json!({"choices": [{"text": " ok", "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": u64::MAX}}),
        ),
        _ => Reply::sse(0, 0, completion_chunks(&[" ok".into()], Some((3, 1)))),
    }
}

/// (prompt, what the failure says: any one of these; empty for success).
const OPENAI_CASES: &[(&str, &[&str])] = &[
    ("ok", &[]),
    ("endless-error-body", &["HTTP 500: error error error"]),
    (
        "endless-json-body",
        &["larger than 1000000 bytes (the endpoint option max_body_bytes)"],
    ),
    ("endless-chunked-json-body", &["larger than 1000000 bytes"]),
    ("declared-huge-body", &["larger than 1000000 bytes"]),
    (
        "endless-line",
        &["larger than 65536 bytes (the endpoint option max_event_bytes)"],
    ),
    ("endless-event", &["larger than 65536 bytes"]),
    (
        "endless-events",
        &["longer than 1000000 bytes (the endpoint option max_body_bytes)"],
    ),
    ("stall-in-head", &["timed out"]),
    ("stall-in-stream", &["timed out"]),
    (
        "reset-in-stream",
        &["the stream was cut after", "reset", "without answering"],
    ),
    (
        "length-longer-than-body",
        &["bytes of the body unread", "reading the response"],
    ),
    ("length-shorter-than-body", &["invalid JSON body"]),
    (
        "length-shorter-than-stream",
        &["cut mid-event", "without a finish reason"],
    ),
    (
        "usage-u64-max",
        &[
            "reported 18446744073709551615 input tokens",
            "cannot be right",
        ],
    ),
    (
        "usage-9e18",
        &["reported 9000000000000000000 output tokens"],
    ),
    ("usage-1e30", &["cannot be right"]),
    // Not whole numbers: read as absent, and the output is counted by events.
    ("usage-negative", &[]),
    ("usage-in-whole-body", &["cannot be right"]),
    ("ok", &[]),
];

fn check_outcome(
    what: &str,
    prompt: &str,
    expected: &[&str],
    outcome: &Result<String, BackendError>,
) {
    match outcome {
        Ok(text) => {
            assert!(
                expected.is_empty(),
                "{what}: {prompt}: should fail, got {text:?}"
            );
        }
        Err(BackendError::Request(message)) => {
            assert!(!expected.is_empty(), "{what}: {prompt}: failed: {message}");
            assert!(
                expected.iter().any(|e| message.contains(e)),
                "{what}: {prompt}: {message}"
            );
        }
        Err(other) => panic!("{what}: {prompt}: not a per-request failure: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_openai_endpoints_fail_each_request_clearly() {
    let server = FakeServer::start(|seen, _| openai_reply(seen.prompt())).await;
    for http_client in ["builtin", "reqwest"] {
        let spec = format!(
            "openai-compatible:{}/v1#m?retries=0&timeout_s=2&concurrency=32&http_client={http_client}{LIMITS}",
            server.url
        );
        let backend = OpenAiBackend::open(&spec, None).unwrap();
        let requests: Vec<_> = OPENAI_CASES
            .iter()
            .map(|(prompt, _)| generate_request(prompt))
            .collect();
        let results = backend.generate_until(&requests).await.unwrap();
        for ((prompt, expected), result) in OPENAI_CASES.iter().zip(results) {
            let outcome = result.map(|r| r.text);
            check_outcome(http_client, prompt, expected, &outcome);
        }
    }
}

/// The log-likelihood path reads whole JSON bodies: capped the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_logprob_bodies_fail_their_request() {
    let server = FakeServer::start(|seen, _| openai_reply(seen.prompt())).await;
    for http_client in ["builtin", "reqwest"] {
        let spec = format!(
            "openai-compatible:{}/v1#m?retries=0&timeout_s=2&http_client={http_client}{LIMITS}",
            server.url
        );
        let backend = OpenAiBackend::open(&spec, None).unwrap();
        let cases: [(&str, &[&str]); 4] = [
            ("endless-json-body", &["larger than 1000000 bytes"]),
            ("endless-error-body", &["HTTP 500: error error"]),
            ("declared-huge-body", &["larger than 1000000 bytes"]),
            ("stall-in-head", &["timed out"]),
        ];
        for (prompt, expected) in cases {
            let request = LoglikelihoodRequest {
                context: String::new(),
                continuations: vec![prompt.to_string()],
            };
            let result = backend.loglikelihood(&[request]).await.unwrap();
            let outcome = result.into_iter().next().unwrap().map(|_| String::new());
            check_outcome(http_client, prompt, expected, &outcome);
        }
    }
}

fn named(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

fn anthropic_reply(prompt: &str) -> Reply {
    let sse = "text/event-stream";
    let stream = |output_tokens: Value| {
        vec![
            named(
                "message_start",
                json!({"type": "message_start", "message": {"usage": {"input_tokens": 3}}}),
            ) + &named(
                "content_block_delta",
                json!({"type": "content_block_delta", "delta": {"type": "text_delta", "text": " ok"}}),
            ) + &named(
                "message_delta",
                json!({"type": "message_delta", "usage": {"output_tokens": output_tokens}}),
            ) + &named("message_stop", json!({"type": "message_stop"})),
        ]
    };
    match prompt {
        "endless-error-body" => Reply::Endless {
            head: head(529, "application/json", "connection: close"),
            repeat: "{\"overloaded\": ".into(),
        },
        "endless-line" => Reply::Endless {
            head: head(200, sse, "connection: close"),
            repeat: "event: ping".into(),
        },
        "endless-events" => Reply::Endless {
            head: head(200, sse, "connection: close"),
            repeat: named("ping", json!({"type": "ping"})),
        },
        "endless-json-body" => Reply::Endless {
            head: head(200, "application/json", "connection: close"),
            repeat: "[1,".into(),
        },
        "stall-in-stream" => raw(head(200, sse, "connection: close"), "", End::Stall),
        "usage-u64-max" => Reply::sse(0, 0, stream(json!(u64::MAX))),
        "usage-input-sum-overflows" => Reply::sse(
            0,
            0,
            vec![
                named(
                    "message_start",
                    json!({"type": "message_start", "message": {"usage": {
                        "input_tokens": u64::MAX, "cache_read_input_tokens": u64::MAX}}}),
                ) + &named("message_stop", json!({"type": "message_stop"})),
            ],
        ),
        _ => Reply::sse(0, 0, stream(json!(1))),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_anthropic_endpoints_fail_each_request_clearly() {
    let server = FakeServer::start(|seen, _| anthropic_reply(seen.prompt())).await;
    set_fake_key(
        "PODIUM_TEST_FAULTS_ANTHROPIC_KEY",
        "sk-ant-faults-0123456789",
    );
    let cases: &[(&str, &[&str])] = &[
        ("ok", &[]),
        ("endless-error-body", &["HTTP 529: {\"overloaded\""]),
        (
            "endless-line",
            &["larger than 65536 bytes (the endpoint option max_event_bytes)"],
        ),
        ("endless-events", &["longer than 1000000 bytes"]),
        // Read as an error body: only its start, never the endless rest.
        ("endless-json-body", &["invalid JSON body"]),
        ("stall-in-stream", &["timed out"]),
        ("usage-u64-max", &["cannot be right"]),
        ("usage-input-sum-overflows", &["cannot be right"]),
        ("ok", &[]),
    ];
    for http_client in ["builtin", "reqwest"] {
        let spec = format!(
            "anthropic:claude-test?base_url={}&api_key_env=PODIUM_TEST_FAULTS_ANTHROPIC_KEY&retries=0&timeout_s=2&concurrency=16&http_client={http_client}{LIMITS}",
            server.url
        );
        let backend = AnthropicBackend::open(&spec, None).unwrap();
        let requests: Vec<_> = cases.iter().map(|(p, _)| generate_request(p)).collect();
        let results = backend.generate_until(&requests).await.unwrap();
        for ((prompt, expected), result) in cases.iter().zip(results) {
            check_outcome(http_client, prompt, expected, &result.map(|r| r.text));
        }
    }
}

/// The peak resident memory of this process (`VmHWM`), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Against endless bodies, lines and event streams, with the default limits and
/// eight requests of each kind at once through each client, the process stays far
/// from the 200 MB the issue allows (it was 2.8 GB for one endless error body and
/// 4.4 GB for one endless line). Nextest runs each test in its own process, so
/// `VmHWM` is this test's own peak. The figure is printed for docs/BENCHMARKS.md.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peak_memory_against_endless_replies_stays_bounded() {
    let server = FakeServer::start(|seen, _| openai_reply(seen.prompt())).await;
    let kinds = [
        "endless-error-body",
        "endless-json-body",
        "endless-line",
        "endless-event",
        "endless-events",
    ];
    for http_client in ["builtin", "reqwest"] {
        let spec = format!(
            "openai-compatible:{}/v1#m?retries=0&timeout_s=60&concurrency=8&http_client={http_client}",
            server.url
        );
        let backend = OpenAiBackend::open(&spec, None).unwrap();
        let requests: Vec<_> = kinds
            .iter()
            .flat_map(|kind| std::iter::repeat_n(generate_request(kind), 8))
            .collect();
        let results = backend.generate_until(&requests).await.unwrap();
        for (request, result) in requests.iter().zip(results) {
            let Err(BackendError::Request(message)) = result else {
                panic!("{http_client}: {}: {result:?}", request.context);
            };
            assert!(
                !message.contains("timed out"),
                "{http_client}: {}: the limits, not the timeout, must end it: {message}",
                request.context
            );
        }
    }
    if let Some(peak) = peak_rss_mib() {
        eprintln!("peak resident memory (VmHWM): {peak:.1} MiB");
        assert!(peak < 200.0, "peak resident memory {peak:.1} MiB");
    }
}
