//! The Anthropic backend against the fake server.

use serde_json::json;

use podium_backends::AnthropicBackend;
use podium_core::{Backend, BackendError, LoglikelihoodRequest, TokenCountSource};

use crate::fake_server::{FakeServer, Reply};
use crate::{assert_near, generate_request, set_fake_key};

const KEY_ENV: &str = "PODIUM_TEST_ANTHROPIC_KEY";
const KEY: &str = "sk-ant-test-0123456789";

fn named(event: &str, data: serde_json::Value) -> String {
    format!("event: {event}\ndata: {data}\n\n")
}

fn open(server: &FakeServer, options: &str) -> AnthropicBackend {
    set_fake_key(KEY_ENV, KEY);
    let spec = format!(
        "anthropic:claude-test?base_url={}&api_key_env={KEY_ENV}{options}",
        server.url
    );
    AnthropicBackend::open(&spec, None).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_thinking_and_text_with_usage() {
    let server = FakeServer::start(|_, _| {
        Reply::sse(
            100,
            40,
            vec![
                named("message_start", json!({"type": "message_start", "message": {"id": "msg_1", "role": "assistant", "content": [], "usage": {"input_tokens": 12, "cache_read_input_tokens": 3, "output_tokens": 1}}}))
                    + &named("content_block_start", json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}))
                    + &named("ping", json!({"type": "ping"})),
                named("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "2+2 is 4."}}))
                    + &named("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "abc"}}))
                    + &named("content_block_stop", json!({"type": "content_block_stop", "index": 0})),
                named("content_block_start", json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}))
                    + &named("content_block_delta", json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "The answer"}})),
                named("content_block_delta", json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": " is 4.\n\nQ: more"}}))
                    + &named("content_block_stop", json!({"type": "content_block_stop", "index": 1}))
                    + &named("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 15}}))
                    + &named("message_stop", json!({"type": "message_stop"})),
            ],
        )
    })
    .await;
    let backend = open(&server, "&thinking=1024");
    assert_eq!(
        backend.identity().spec,
        format!(
            "anthropic:claude-test?thinking=1024&base_url={}",
            server.url
        )
    );
    let results = backend
        .generate_until(&[generate_request("What is 2+2?")])
        .await
        .unwrap();
    let result = results[0].as_ref().unwrap();
    assert_eq!(result.text, "The answer is 4.");
    assert_eq!(result.reasoning.as_deref(), Some("2+2 is 4."));
    assert_eq!(result.n_input_tokens, Some(15));
    assert_eq!(result.n_output_tokens, Some(15));
    assert_eq!(result.token_count_source, TokenCountSource::Server);
    let timing = result.timing.as_ref().unwrap();
    assert_near("TTFT", timing.ttft_s.unwrap(), 0.14, 0.03);
    assert_near("TTFAT", timing.ttfat_s.unwrap(), 0.18, 0.03);
    assert_near("E2E", timing.e2e_s, 0.22, 0.03);

    let seen = &server.seen()[0];
    assert_eq!(seen.path, "/v1/messages");
    let headers = seen.headers.to_ascii_lowercase();
    assert!(headers.contains(&format!("x-api-key: {}", KEY.to_ascii_lowercase())));
    assert!(headers.contains("anthropic-version: 2023-06-01"));
    assert_eq!(seen.body["thinking"]["budget_tokens"], 1024);
    assert_eq!(seen.body["stream"], true);
    assert_eq!(seen.body["stop_sequences"], json!(["\n\nQ:"]));
}

#[tokio::test]
async fn error_events_and_http_errors_fail_the_request() {
    let server = FakeServer::start(|seen, _| match seen.prompt() {
        "event" => Reply::sse(
            0,
            0,
            vec![named(
                "error",
                json!({"type": "error", "error": {"type": "invalid_request_error", "message": "prompt is too long"}}),
            )],
        ),
        _ => Reply::json(
            401,
            &json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}),
        ),
    })
    .await;
    let backend = open(&server, "&retries=0");
    let results = backend
        .generate_until(&[generate_request("event"), generate_request("auth")])
        .await
        .unwrap();
    let messages: Vec<String> = results
        .iter()
        .map(|r| match r {
            Err(BackendError::Request(message)) => message.clone(),
            other => panic!("expected a request error, got {other:?}"),
        })
        .collect();
    assert!(
        messages[0].contains("error event: prompt is too long"),
        "{}",
        messages[0]
    );
    assert!(
        messages[1].contains("HTTP 401: invalid x-api-key"),
        "{}",
        messages[1]
    );
}

#[tokio::test]
async fn loglikelihood_is_unsupported_with_a_clear_message() {
    let server = FakeServer::start(|_, _| Reply::Hang).await;
    let backend = open(&server, "");
    let err = backend
        .loglikelihood(&[LoglikelihoodRequest {
            context: "Q".into(),
            continuations: vec![" a".into()],
        }])
        .await
        .unwrap_err();
    let BackendError::Unsupported(message) = err else {
        panic!("expected Unsupported, got {err:?}");
    };
    assert!(message.contains("gives no log-probs"), "{message}");
    assert!(server.seen().is_empty());
}
