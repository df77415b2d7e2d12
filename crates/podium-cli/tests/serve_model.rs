//! `podium serve-model` on the real SmolLM2 GGUF: a streamed chat completion,
//! a log-probs completion, and a malformed request. Runs when
//! `PODIUM_MODEL_DIR` holds the test models (scripts/test sets it).

mod common;

use common::{ServeModel, post, request};

fn start() -> Option<ServeModel> {
    let model = podium_testkit::models::test_model(podium_testkit::models::SMOLLM2)?;
    Some(common::serve_model(
        &format!("gguf:{}", model.display()),
        &["--threads", "1"],
    ))
}

#[test]
fn serves_streamed_chat_logprobs_and_rejects_bad_json() {
    let Some(server) = start() else { return };

    let chat = r#"{"messages":[{"role":"user","content":"Say hello."}],"max_tokens":8,"temperature":0,"stream":true,"stream_options":{"include_usage":true}}"#;
    let (status, body) = post(&server.addr, "/v1/chat/completions", chat);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("chat.completion.chunk"), "{body}");
    assert!(body.contains(r#""role":"assistant""#), "{body}");
    assert!(
        body.contains(r#""completion_tokens":"#),
        "usage chunk missing: {body}"
    );
    assert!(
        body.trim_end().ends_with("[DONE]") || body.contains("data: [DONE]"),
        "{body}"
    );

    let completion = r#"{"prompt":"The capital of France is","max_tokens":1,"echo":true,"logprobs":1,"temperature":0}"#;
    let (status, body) = post(&server.addr, "/v1/completions", completion);
    assert_eq!(status, 200, "{body}");
    // Chunked transfer may wrap the JSON; find the object.
    let start = body.find('{').unwrap();
    let end = body.rfind('}').unwrap();
    let json: serde_json::Value = serde_json::from_str(&body[start..=end]).unwrap();
    let logprobs = &json["choices"][0]["logprobs"];
    let tokens = logprobs["tokens"].as_array().unwrap();
    let token_logprobs = logprobs["token_logprobs"].as_array().unwrap();
    assert_eq!(tokens.len(), token_logprobs.len());
    assert!(token_logprobs[0].is_null());
    // Every scored prompt token has a finite log-prob no larger than its top-1's.
    for (lp, top) in token_logprobs
        .iter()
        .zip(logprobs["top_logprobs"].as_array().unwrap())
        .skip(1)
    {
        let lp = lp.as_f64().unwrap();
        let best = top
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap()
            .as_f64()
            .unwrap();
        assert!(
            lp.is_finite() && lp <= 0.0 && lp <= best + 1e-9,
            "{lp} vs {best}"
        );
    }
    assert!(
        json["choices"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("The capital of France is")
    );

    let (status, body) = post(&server.addr, "/v1/completions", "{not json");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid JSON body"), "{body}");
}

/// The error message of an OpenAI-shaped error body.
fn error_message(body: &str) -> String {
    let start = body
        .find('{')
        .unwrap_or_else(|| panic!("no JSON in {body:?}"));
    let end = body
        .rfind('}')
        .unwrap_or_else(|| panic!("no JSON in {body:?}"));
    let json: serde_json::Value = serde_json::from_str(&body[start..=end]).unwrap();
    for key in ["type", "param", "code"] {
        assert!(json["error"].get(key).is_some(), "no `{key}` in {body}");
    }
    json["error"]["message"].as_str().unwrap().to_string()
}

/// Regression (issue 9, class 7) on the real model: a prompt longer than the context
/// held the model for minutes, then answered 500 "no next token"; an empty prompt and
/// unknown token ids were 500s; unknown paths were 400 and over-large bodies plain
/// text. All are refused before reaching the model, as OpenAI-shaped JSON.
#[test]
fn refuses_what_the_model_cannot_do_before_running_it() {
    let Some(server) = start() else { return };
    let (status, body) = request(&server.addr, "GET", "/tokenizer_info", "");
    assert_eq!(status, 200, "{body}");
    let start = body.find('{').unwrap();
    let info: serde_json::Value =
        serde_json::from_str(&body[start..=body.rfind('}').unwrap()]).unwrap();
    let context = info["max_model_len"].as_u64().unwrap() as usize;

    // More ids than the context, for scoring and generation; the model is never run.
    let ids = vec![28_u32; context + 1];
    for body in [
        serde_json::json!({"prompt": ids, "max_tokens": 1, "echo": true, "logprobs": 1}),
        serde_json::json!({"prompt": ids, "max_tokens": 1}),
        serde_json::json!({"prompt": " hello".repeat(context + 1), "max_tokens": 0, "echo": true, "logprobs": 1}),
    ] {
        let (status, answer) = post(&server.addr, "/v1/completions", &body.to_string());
        assert_eq!(status, 400, "{answer}");
        let message = error_message(&answer);
        assert!(
            message.contains(&format!("context of {context} tokens")),
            "{message}"
        );
    }
    let (status, answer) = post(
        &server.addr,
        "/v1/completions",
        r#"{"prompt": "Hi", "max_tokens": 100000000}"#,
    );
    assert_eq!(status, 400, "{answer}");
    assert!(error_message(&answer).contains("at most"), "{answer}");

    for (body, needle) in [
        (r#"{"prompt": ""}"#.to_string(), "empty"),
        (
            r#"{"prompt": [], "echo": true, "max_tokens": 0, "logprobs": 1}"#.to_string(),
            "empty",
        ),
        (
            r#"{"prompt": [1, 4000000000], "echo": true, "max_tokens": 0, "logprobs": 1}"#
                .to_string(),
            "outside the model's vocabulary",
        ),
        (r#"{"prompt": "Hi", "n": 2}"#.to_string(), "`n` must be 1"),
        (
            r#"{"prompt": "Hi", "best_of": 2}"#.to_string(),
            "`best_of` must be 1",
        ),
    ] {
        let (status, answer) = post(&server.addr, "/v1/completions", &body);
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(error_message(&answer).contains(needle), "{body}: {answer}");
    }
    let chat = r#"{"messages":[{"role":"user","content":"Hi"}],"logprobs":true}"#;
    let (status, answer) = post(&server.addr, "/v1/chat/completions", chat);
    assert_eq!(status, 400, "{answer}");
    assert!(error_message(&answer).contains("logprobs"), "{answer}");

    // The vocabulary's last id is accepted, the next one is not.
    let vocab = 49_152;
    let last = format!(
        r#"{{"prompt": [1, {}], "echo": true, "max_tokens": 0, "logprobs": 1}}"#,
        vocab - 1
    );
    let (status, answer) = post(&server.addr, "/v1/completions", &last);
    assert_eq!(status, 200, "{answer}");
    let past =
        format!(r#"{{"prompt": [1, {vocab}], "echo": true, "max_tokens": 0, "logprobs": 1}}"#);
    let (status, answer) = post(&server.addr, "/v1/completions", &past);
    assert_eq!(status, 400, "{answer}");

    let (status, answer) = request(&server.addr, "GET", "/v2/nothing", "");
    assert_eq!(status, 404, "{answer}");
    assert!(error_message(&answer).contains("unknown path"), "{answer}");
    let (status, answer) = request(&server.addr, "PUT", "/v1/completions", "{}");
    assert_eq!(status, 405, "{answer}");
    assert!(error_message(&answer).contains("not allowed"), "{answer}");
    let huge = format!(r#"{{"prompt": "{}"}}"#, "a".repeat(5 * 1024 * 1024));
    let (status, answer) = post(&server.addr, "/v1/completions", &huge);
    assert_eq!(status, 413, "{answer}");
    assert!(
        error_message(&answer).contains("limit of 4194304 bytes"),
        "{answer}"
    );
}
