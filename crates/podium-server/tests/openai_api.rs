//! The OpenAI-compatible API over a fake engine: formats, streaming, echo
//! log-probs, stop strings, and the error paths.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value as Json, json};
use tower::ServiceExt;

use podium_core::ChatMessage;
use podium_server::{
    Engine, EngineError, FinishReason, GenerateOutcome, GenerateParams, Prompt, PromptScores,
    TokenLogprob, TokenizerInfo, Worker, app,
};

/// Emits "w0 w1 w2 …" one word per token; each prompt character is a token
/// with log-prob −(index+1)/10, and the top alternative is always "x".
struct FakeEngine {
    /// When set, generation waits until the lock can be taken (to fill the queue).
    gate: Option<Arc<Mutex<()>>>,
    /// The size of every scoring batch the worker ran.
    batches: Arc<Mutex<Vec<usize>>>,
}

impl Engine for FakeEngine {
    fn model_id(&self) -> String {
        "fake-model".into()
    }

    fn chat_prompt(&self, messages: &[ChatMessage]) -> Result<String, EngineError> {
        Ok(messages
            .iter()
            .map(|m| format!("<{}>{}", m.role, m.content))
            .collect::<String>()
            + "<assistant>")
    }

    fn generate(
        &self,
        prompt: &str,
        params: &GenerateParams,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<GenerateOutcome, EngineError> {
        assert!(prompt != "PANIC", "the fake model met PANIC");
        let _guard = self.gate.as_ref().map(|g| g.lock().unwrap());
        let mut n = 0;
        for i in 0..params.max_tokens {
            n += 1;
            if !on_text(&format!(" w{i}")) {
                return Ok(GenerateOutcome {
                    prompt_tokens: prompt.chars().count(),
                    completion_tokens: n,
                    finish_reason: FinishReason::Stop,
                });
            }
        }
        Ok(GenerateOutcome {
            prompt_tokens: prompt.chars().count(),
            completion_tokens: n,
            finish_reason: FinishReason::Length,
        })
    }

    fn prompt_logprobs(&self, prompt: &Prompt) -> Result<PromptScores, EngineError> {
        let prompt = match prompt {
            Prompt::Text(text) => text.clone(),
            Prompt::Ids(ids) => self.detokenize(ids)?,
        };
        let tokens = prompt
            .char_indices()
            .enumerate()
            .map(|(i, (offset, c))| TokenLogprob {
                token: c.to_string(),
                logprob: (i > 0).then(|| -(i as f64 + 1.0) / 10.0),
                top: (i > 0).then(|| ("x".to_string(), -0.01)),
                offset,
            })
            .collect();
        Ok(PromptScores {
            tokens,
            next: TokenLogprob {
                token: "!".into(),
                logprob: Some(-0.5),
                top: Some(("!".into(), -0.5)),
                offset: prompt.len(),
            },
        })
    }

    fn prompt_logprobs_batch(&self, prompts: &[Prompt]) -> Vec<Result<PromptScores, EngineError>> {
        self.batches.lock().unwrap().push(prompts.len());
        assert!(
            !prompts.contains(&Prompt::Text("PANIC".into())),
            "the fake model met PANIC"
        );
        prompts.iter().map(|p| self.prompt_logprobs(p)).collect()
    }

    /// One token per character: its code point.
    fn tokenize(&self, text: &str, _add_special: bool) -> Result<Vec<u32>, EngineError> {
        Ok(text.chars().map(u32::from).collect())
    }

    fn detokenize(&self, ids: &[u32]) -> Result<String, EngineError> {
        ids.iter()
            .map(|&id| char::from_u32(id).ok_or(EngineError::Invalid(format!("no token {id}"))))
            .collect()
    }

    fn tokenizer_info(&self) -> TokenizerInfo {
        TokenizerInfo {
            eos_token: Some("$".into()),
            max_model_len: CONTEXT,
            ..TokenizerInfo::default()
        }
    }

    /// Every Unicode scalar value is a token.
    fn vocab_size(&self) -> usize {
        VOCAB
    }
}

/// The fake model's context, in tokens (characters).
const CONTEXT: usize = 2048;
const VOCAB: usize = 0x11_0000;

fn worker(queue: usize, gate: Option<Arc<Mutex<()>>>) -> Worker {
    worker_with_batches(queue, gate, Arc::default())
}

fn worker_with_batches(
    queue: usize,
    gate: Option<Arc<Mutex<()>>>,
    batches: Arc<Mutex<Vec<usize>>>,
) -> Worker {
    Worker::start(Arc::new(FakeEngine { gate, batches }), queue)
}

async fn call(router: axum::Router, method: &str, path: &str, body: &str) -> (StatusCode, String) {
    call_owned(
        router,
        method.to_string(),
        path.to_string(),
        body.to_string(),
    )
    .await
}

async fn call_owned(
    router: axum::Router,
    method: String,
    path: String,
    body: String,
) -> (StatusCode, String) {
    let request = Request::builder()
        .method(method.as_str())
        .uri(path)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let response = router.oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

fn sse_data(body: &str) -> Vec<String> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn lists_the_model() {
    let (status, body) = call(app(worker(4, None)), "GET", "/v1/models", "").await;
    assert_eq!(status, StatusCode::OK);
    let json: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(json["data"][0]["id"], "fake-model");
}

#[tokio::test]
async fn completion_cuts_at_stop_and_reports_usage() {
    let body =
        json!({"prompt": "abc", "max_tokens": 5, "stop": [" w3"], "temperature": 0}).to_string();
    let (status, body) = call(app(worker(4, None)), "POST", "/v1/completions", &body).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let json: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(json["choices"][0]["text"], " w0 w1 w2");
    assert_eq!(json["choices"][0]["finish_reason"], "stop");
    assert_eq!(json["usage"]["prompt_tokens"], 3);
    assert_eq!(json["usage"]["completion_tokens"], 4);
}

#[tokio::test]
async fn streamed_chat_completion_with_usage() {
    let body = json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3, "stream": true, "stream_options": {"include_usage": true}}).to_string();
    let (status, body) = call(app(worker(4, None)), "POST", "/v1/chat/completions", &body).await;
    assert_eq!(status, StatusCode::OK);
    let events = sse_data(&body);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Json> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, " w0 w1 w2");
    let finish = chunks
        .iter()
        .find_map(|c| c["choices"][0]["finish_reason"].as_str());
    assert_eq!(finish, Some("length"));
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 3);
    assert_eq!(usage["usage"]["prompt_tokens"], "<user>hi<assistant>".len());
}

#[tokio::test]
async fn echo_logprobs_for_max_tokens_zero_and_one() {
    let body = json!({"prompt": "abc", "max_tokens": 0, "echo": true, "logprobs": 1}).to_string();
    let (status, body) = call(app(worker(4, None)), "POST", "/v1/completions", &body).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let json: Json = serde_json::from_str(&body).unwrap();
    let lp = &json["choices"][0]["logprobs"];
    assert_eq!(json["choices"][0]["text"], "abc");
    assert_eq!(lp["tokens"], json!(["a", "b", "c"]));
    assert_eq!(lp["token_logprobs"], json!([null, -0.2, -0.3]));
    assert_eq!(lp["top_logprobs"][1], json!({"x": -0.01}));
    assert_eq!(lp["text_offset"], json!([0, 1, 2]));
    let body =
        json!({"prompt": "abc", "max_tokens": 1, "echo": true, "logprobs": 1, "temperature": 0})
            .to_string();
    let (_, body) = call(app(worker(4, None)), "POST", "/v1/completions", &body).await;
    let json: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(json["choices"][0]["text"], "abc!");
    assert_eq!(
        json["choices"][0]["logprobs"]["token_logprobs"],
        json!([null, -0.2, -0.3, -0.5])
    );
}

#[tokio::test]
async fn token_id_prompts_and_vllm_tokenizer_endpoints() {
    // What lm-evaluation-harness's local-completions with `tokenizer_backend=remote` does:
    // read /tokenizer_info, tokenize through /tokenize, send token ids with echo.
    let (status, body) = call(app(worker(4, None)), "GET", "/tokenizer_info", "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let info: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(info["eos_token"], "$");
    assert_eq!(info["max_model_len"], 2048);

    let body = json!({"prompt": "ab", "add_special_tokens": false}).to_string();
    let (status, body) = call(app(worker(4, None)), "POST", "/tokenize", &body).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let tokens: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(tokens["tokens"], json!([97, 98]));
    assert_eq!(tokens["count"], 2);

    let body = json!({"tokens": [97, 98, 99]}).to_string();
    let (_, body) = call(app(worker(4, None)), "POST", "/detokenize", &body).await;
    assert_eq!(
        serde_json::from_str::<Json>(&body).unwrap()["prompt"],
        "abc"
    );

    for prompt in [json!([97, 98, 99]), json!([[97, 98, 99]])] {
        let body = json!({"prompt": prompt, "max_tokens": 1, "echo": true, "logprobs": 1, "temperature": 0})
            .to_string();
        let (status, body) = call(app(worker(4, None)), "POST", "/v1/completions", &body).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let json: Json = serde_json::from_str(&body).unwrap();
        assert_eq!(json["choices"][0]["text"], "abc!");
        assert_eq!(
            json["choices"][0]["logprobs"]["token_logprobs"],
            json!([null, -0.2, -0.3, -0.5])
        );
    }
    // Generation from ids goes through the text they stand for.
    let body = json!({"prompt": [104, 105], "max_tokens": 2}).to_string();
    let (status, body) = call(app(worker(4, None)), "POST", "/v1/completions", &body).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        serde_json::from_str::<Json>(&body).unwrap()["choices"][0]["text"],
        " w0 w1"
    );
    // An id the tokenizer does not know is the client's error.
    let body = json!({"tokens": [4294967295u32]}).to_string();
    let (status, _) = call(app(worker(4, None)), "POST", "/detokenize", &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn bad_requests_get_json_errors() {
    for (path, body, needle) in [
        ("/v1/completions", "{not json", "invalid JSON body"),
        (
            "/v1/completions",
            r#"{"max_tokens": 3}"#,
            "invalid JSON body",
        ),
        (
            "/v1/completions",
            r#"{"prompt": "a", "temperature": 9}"#,
            "temperature",
        ),
        (
            "/v1/completions",
            r#"{"prompt": "a", "echo": true, "max_tokens": 5}"#,
            "max_tokens",
        ),
        ("/v1/chat/completions", r#"{"messages": []}"#, "empty"),
        (
            "/tokenize",
            r#"{"prompt": "a", "messages": []}"#,
            "unknown field `messages`",
        ),
        (
            "/detokenize",
            r#"{"tokens": [97], "skip_special_tokens": false}"#,
            "unknown field",
        ),
    ] {
        let (status, text) = call(app(worker(4, None)), "POST", path, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {text}");
        let json: Json = serde_json::from_str(&text).unwrap();
        let message = json["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{body}: {message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// The std lock is held on purpose: it blocks the model thread, not the runtime.
#[allow(clippy::await_holding_lock)]
async fn queued_scoring_requests_run_as_one_batch() {
    let gate = Arc::new(Mutex::new(()));
    let held = gate.lock().unwrap();
    let batches = Arc::new(Mutex::new(Vec::new()));
    let worker = worker_with_batches(16, Some(gate.clone()), batches.clone());
    // A generation holds the model thread while five scoring requests queue up.
    let generation = tokio::spawn(call_owned(
        app(worker.clone()),
        "POST".into(),
        "/v1/completions".into(),
        json!({"prompt": "a", "max_tokens": 1}).to_string(),
    ));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let mut scores = Vec::new();
    for prompt in ["ab", "abc", "abcd", "abcde", "abcdef"] {
        let body = json!({"prompt": prompt, "max_tokens": 0, "echo": true, "logprobs": 1});
        scores.push(tokio::spawn(call_owned(
            app(worker.clone()),
            "POST".into(),
            "/v1/completions".into(),
            body.to_string(),
        )));
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    drop(held);
    assert_eq!(generation.await.unwrap().0, StatusCode::OK);
    for (k, score) in scores.into_iter().enumerate() {
        let (status, body) = score.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        // Each answer is its own prompt's, in spite of the batching.
        let json: Json = serde_json::from_str(&body).unwrap();
        assert_eq!(json["choices"][0]["text"].as_str().unwrap().len(), k + 2);
    }
    assert_eq!(*batches.lock().unwrap(), [5]);
}

#[tokio::test]
// The std lock is held on purpose: it blocks the model thread, not the runtime.
#[allow(clippy::await_holding_lock)]
async fn full_queue_answers_429() {
    let gate = Arc::new(Mutex::new(()));
    let held = gate.lock().unwrap();
    let worker = worker(1, Some(gate.clone()));
    let body = json!({"prompt": "a", "max_tokens": 1}).to_string();
    // The first request occupies the model thread, the second waits in the
    // one-slot queue, the third finds the queue full.
    let first = tokio::spawn(call_owned(
        app(worker.clone()),
        "POST".into(),
        "/v1/completions".into(),
        body.clone(),
    ));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let second = tokio::spawn(call_owned(
        app(worker.clone()),
        "POST".into(),
        "/v1/completions".into(),
        body.clone(),
    ));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let (status, text) = call(app(worker.clone()), "POST", "/v1/completions", &body).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{text}");
    drop(held);
    assert_eq!(first.await.unwrap().0, StatusCode::OK);
    assert_eq!(second.await.unwrap().0, StatusCode::OK);
}

/// Regression guard for the one model thread: a panic while it runs a request fails
/// that request (500, saying so), and the thread goes on serving the next ones.
#[tokio::test]
async fn a_panic_on_the_model_thread_fails_only_its_request() {
    let worker = worker(4, None);
    let post = |body: &Json| {
        call_owned(
            app(worker.clone()),
            "POST".into(),
            "/v1/completions".into(),
            body.to_string(),
        )
    };
    for (failing, fine) in [
        (
            json!({"prompt": "PANIC", "max_tokens": 2}),
            json!({"prompt": "ab", "max_tokens": 2}),
        ),
        (
            json!({"prompt": "PANIC", "max_tokens": 2, "stream": true}),
            json!({"prompt": "ab", "max_tokens": 2, "stream": true}),
        ),
        (
            json!({"prompt": "PANIC", "max_tokens": 0, "echo": true, "logprobs": 1}),
            json!({"prompt": "ab", "max_tokens": 0, "echo": true, "logprobs": 1}),
        ),
    ] {
        let (status, body) = post(&failing).await;
        // A stream has sent its 200 before the model ran: the error is its last event.
        let error = if failing["stream"] == true {
            assert_eq!(status, StatusCode::OK, "{body}");
            let events = sse_data(&body);
            assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
            serde_json::from_str::<Json>(&events[events.len() - 2]).unwrap()
        } else {
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
            serde_json::from_str::<Json>(&body).unwrap()
        };
        assert_eq!(
            error["error"]["message"], "the model thread panicked: the fake model met PANIC",
            "{failing}"
        );
        let (status, body) = post(&fine).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(!body.contains("panicked"), "{body}");
    }
}

/// Podium's own OpenAI-compatible backend against this server on a real socket,
/// through both HTTP clients: streamed generations (axum sends chunked SSE on
/// kept-alive connections) and echo log-probs (a sized JSON body), several at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podiums_own_client_round_trips_through_both_http_clients() {
    use podium_core::{Backend, GenerateRequest, LoglikelihoodRequest};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(podium_server::serve(
        listener,
        worker(64, None),
        podium_server::Limits::default(),
        std::future::pending(),
    ));
    for http_client in ["builtin", "reqwest"] {
        let spec = format!(
            "openai-compatible:http://{addr}/v1#fake-model?concurrency=4&http_client={http_client}"
        );
        let backend = podium_backends::OpenAiBackend::open(&spec, None).unwrap();
        let requests: Vec<GenerateRequest> = (1..=8)
            .map(|n| GenerateRequest {
                messages: None,
                context: format!("Q{n}"),
                until: Vec::new(),
                max_tokens: n,
                temperature: 0.0,
                top_p: 1.0,
                do_sample: false,
                seed: 1,
            })
            .collect();
        let results = backend.generate_until(&requests).await.unwrap();
        for (n, result) in (1..=8).zip(results) {
            let result = result.unwrap_or_else(|err| panic!("{http_client}: {err}"));
            let words: String = (0..n).map(|i| format!(" w{i}")).collect();
            assert_eq!(result.text, words, "{http_client}");
            assert_eq!(result.n_output_tokens, Some(n), "{http_client}");
            assert!(result.timing.unwrap().ttft_s.is_some(), "{http_client}");
        }
        let scores = backend
            .loglikelihood(&[LoglikelihoodRequest {
                context: "ab".into(),
                continuations: vec!["cd".into(), "c".into()],
            }])
            .await
            .unwrap();
        let scores = scores[0].as_ref().unwrap();
        // Characters 2 and 3 of "abcd": -0.3 and -0.4; the top token is always "x".
        assert!(
            (scores[0].logprob + 0.7).abs() < 1e-9,
            "{http_client}: {scores:?}"
        );
        assert_eq!((scores[0].n_tokens, scores[0].is_greedy), (2, false));
        assert!(
            (scores[1].logprob + 0.3).abs() < 1e-9,
            "{http_client}: {scores:?}"
        );
    }
}

/// Checks that `body` on `path` is refused with `status`, an OpenAI-shaped error
/// body (`message`, `type`, `param`, `code`) and a message containing `needle`.
async fn check_refused(
    router: axum::Router,
    path: &str,
    body: &str,
    status: StatusCode,
    needle: &str,
) {
    let (got, text) = call(router, "POST", path, body).await;
    let shown = &body[..body.len().min(200)];
    assert_eq!(got, status, "{path} {shown}: {text}");
    let json: Json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{shown}: {e}: {text}"));
    let error = json["error"]
        .as_object()
        .unwrap_or_else(|| panic!("{text}"));
    for key in ["message", "type", "param", "code"] {
        assert!(error.contains_key(key), "{shown}: no `{key}` in {text}");
    }
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains(needle),
        "{shown}: {message:?} lacks {needle:?}"
    );
}

/// Regression (issue 9, class 7): a prompt longer than the context used to be queued
/// and held the model for minutes before a 500; it is refused before it reaches the
/// worker, naming the limit and the prompt's size, and `max_tokens` must fit too.
#[tokio::test]
async fn prompts_and_max_tokens_beyond_the_context_are_refused_at_once() {
    let long = "a".repeat(CONTEXT + 1);
    let ids: Vec<u32> = vec![97; CONTEXT + 1];
    for (path, body, needle) in [
        (
            "/v1/completions",
            json!({"prompt": long, "max_tokens": 1}),
            "2049 tokens",
        ),
        (
            "/v1/completions",
            json!({"prompt": long, "max_tokens": 0, "echo": true, "logprobs": 1}),
            "context of 2048 tokens",
        ),
        (
            "/v1/completions",
            json!({"prompt": ids, "max_tokens": 1, "echo": true, "logprobs": 1}),
            "2049 tokens",
        ),
        (
            "/v1/chat/completions",
            json!({"messages": [{"role": "user", "content": long}]}),
            "context of 2048 tokens",
        ),
        (
            "/v1/completions",
            json!({"prompt": "abc", "max_tokens": CONTEXT}),
            "at most 2045 can be generated",
        ),
        (
            "/v1/completions",
            json!({"prompt": "abc", "max_tokens": u64::MAX}),
            "at most 2045 can be generated",
        ),
    ] {
        check_refused(
            app(worker(4, None)),
            path,
            &body.to_string(),
            StatusCode::BAD_REQUEST,
            needle,
        )
        .await;
    }
    // A prompt that exactly fills the context can still be scored.
    let full = "a".repeat(CONTEXT);
    let body = json!({"prompt": full, "max_tokens": 1, "echo": true, "logprobs": 1});
    let (status, text) = call(
        app(worker(4, None)),
        "POST",
        "/v1/completions",
        &body.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    // Without `max_tokens`, generation takes what the context leaves (16 at most).
    let body = json!({"prompt": "a".repeat(CONTEXT - 2)});
    let (status, text) = call(
        app(worker(4, None)),
        "POST",
        "/v1/completions",
        &body.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let json: Json = serde_json::from_str(&text).unwrap();
    assert_eq!(json["usage"]["completion_tokens"], 2);
}

/// Regression (issue 9, class 7): an empty prompt and token ids outside the
/// vocabulary are the client's errors (400), not the model's (500).
#[tokio::test]
async fn empty_prompts_and_unknown_token_ids_are_client_errors() {
    for (body, needle) in [
        (json!({"prompt": ""}), "empty"),
        (json!({"prompt": []}), "empty"),
        (
            json!({"prompt": "", "echo": true, "max_tokens": 0, "logprobs": 1}),
            "empty",
        ),
        (
            json!({"prompt": [97, VOCAB], "echo": true, "max_tokens": 0, "logprobs": 1}),
            "token id 1114112 at position 1 is outside the model's vocabulary",
        ),
        (
            json!({"prompt": [[VOCAB]], "max_tokens": 1}),
            "outside the model's vocabulary",
        ),
    ] {
        check_refused(
            app(worker(4, None)),
            "/v1/completions",
            &body.to_string(),
            StatusCode::BAD_REQUEST,
            needle,
        )
        .await;
    }
}

/// Regression (issue 9, class 7): fields the server does not implement used to be
/// ignored silently (`n: 3` returned one choice); they are refused, naming the field,
/// unless at their neutral value. `model` and `user` are harmless and accepted.
#[tokio::test]
async fn unsupported_and_unknown_fields_are_refused() {
    let completion = |extra: Json| {
        let mut body = json!({"prompt": "ab", "max_tokens": 1});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body.to_string()
    };
    let chat = |extra: Json| {
        let mut body = json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body.to_string()
    };
    for (path, body, needle) in [
        (
            "/v1/completions",
            completion(json!({"n": 2})),
            "`n` must be 1",
        ),
        (
            "/v1/completions",
            completion(json!({"best_of": 3})),
            "`best_of` must be 1",
        ),
        (
            "/v1/completions",
            completion(json!({"suffix": "z"})),
            "suffix",
        ),
        (
            "/v1/completions",
            completion(json!({"presence_penalty": 0.5})),
            "presence_penalty",
        ),
        (
            "/v1/completions",
            completion(json!({"frequency_penalty": 1})),
            "frequency_penalty",
        ),
        (
            "/v1/completions",
            completion(json!({"logit_bias": {"50256": -100}})),
            "logit_bias",
        ),
        (
            "/v1/completions",
            completion(json!({"top_k": 40})),
            "unknown field `top_k`",
        ),
        (
            "/v1/completions",
            completion(json!({"stream_options": {"include_usage": true}})),
            "stream_options",
        ),
        (
            "/v1/chat/completions",
            chat(json!({"n": 2})),
            "`n` must be 1",
        ),
        (
            "/v1/chat/completions",
            chat(json!({"logprobs": true})),
            "logprobs",
        ),
        (
            "/v1/chat/completions",
            chat(json!({"top_logprobs": 2})),
            "top_logprobs",
        ),
        (
            "/v1/chat/completions",
            chat(json!({"tools": [{"type": "function"}]})),
            "tools",
        ),
        (
            "/v1/chat/completions",
            chat(json!({"tool_choice": "auto"})),
            "tool_choice",
        ),
        (
            "/v1/chat/completions",
            chat(json!({"response_format": {"type": "json_object"}})),
            "response_format",
        ),
        (
            "/v1/chat/completions",
            chat(json!({"reasoning_effort": "high"})),
            "unknown field",
        ),
        (
            "/v1/chat/completions",
            json!({"messages": [{"role": "user", "content": "hi", "name": "bob"}]}).to_string(),
            "unknown field `name`",
        ),
    ] {
        check_refused(
            app(worker(4, None)),
            path,
            &body,
            StatusCode::BAD_REQUEST,
            needle,
        )
        .await;
    }
    for (path, body) in [
        (
            "/v1/completions",
            completion(
                json!({"model": "x", "user": "u", "n": 1, "best_of": 1, "presence_penalty": 0,
                "frequency_penalty": 0.0, "logit_bias": {}, "suffix": null}),
            ),
        ),
        (
            "/v1/chat/completions",
            chat(
                json!({"model": "x", "user": "u", "n": 1, "logprobs": false, "top_logprobs": 0,
                "tools": [], "tool_choice": "none", "response_format": {"type": "text"},
                "stream": false}),
            ),
        ),
        (
            "/v1/chat/completions",
            json!({"messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 2})
                .to_string(),
        ),
    ] {
        let (status, text) = call(app(worker(4, None)), "POST", path, &body).await;
        assert_eq!(status, StatusCode::OK, "{body}: {text}");
    }
}

/// Regression (issue 9, class 7): the work one request may ask for is bounded, and
/// the error says which limit was hit; a body over the size limit gets 413 as JSON.
#[tokio::test]
async fn each_request_is_bounded_by_the_documented_limits() {
    let limits = podium_server::Limits::default();
    let message = json!({"role": "user", "content": "x"});
    let messages = vec![message; limits.max_messages + 1];
    let stops: Vec<String> = (0..=limits.max_stop_strings)
        .map(|i| format!("s{i}"))
        .collect();
    let long_stop = "s".repeat(limits.max_stop_bytes + 1);
    for (path, body, needle) in [
        (
            "/v1/chat/completions",
            json!({"messages": messages, "max_tokens": 1}),
            "1025 messages, more than the limit of 1024",
        ),
        (
            "/v1/completions",
            json!({"prompt": "a", "stop": stops}),
            "17 stop strings, more than the limit of 16",
        ),
        (
            "/v1/completions",
            json!({"prompt": "a", "stop": long_stop}),
            "longer than the limit of 256 bytes",
        ),
        (
            "/v1/completions",
            json!({"prompt": "a", "echo": true, "max_tokens": 0, "logprobs": 5}),
            "at most 1 is supported",
        ),
    ] {
        check_refused(
            app(worker(4, None)),
            path,
            &body.to_string(),
            StatusCode::BAD_REQUEST,
            needle,
        )
        .await;
    }
    let huge = json!({"prompt": "a".repeat(limits.max_body_bytes)}).to_string();
    for path in [
        "/v1/completions",
        "/v1/chat/completions",
        "/tokenize",
        "/detokenize",
    ] {
        check_refused(
            app(worker(4, None)),
            path,
            &huge,
            StatusCode::PAYLOAD_TOO_LARGE,
            "larger than the limit of 4194304 bytes",
        )
        .await;
    }
    // The limits can be changed.
    let small = podium_server::Limits {
        max_body_bytes: 64,
        ..podium_server::Limits::default()
    };
    let body = json!({"prompt": "a".repeat(64)}).to_string();
    let router = podium_server::app_with_limits(worker(4, None), small);
    check_refused(
        router,
        "/v1/completions",
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "limit of 64 bytes",
    )
    .await;
}

/// Regression (issue 9, class 7): an unknown path was a 400 and a wrong method an
/// empty 405; both answer OpenAI-shaped JSON with 404 and 405.
#[tokio::test]
async fn unknown_paths_and_methods_answer_openai_json() {
    for (method, path, status, needle) in [
        (
            "POST",
            "/v2/nothing",
            StatusCode::NOT_FOUND,
            "unknown path /v2/nothing",
        ),
        ("GET", "/", StatusCode::NOT_FOUND, "unknown path /"),
        (
            "GET",
            "/v1/completions",
            StatusCode::METHOD_NOT_ALLOWED,
            "GET is not allowed on /v1/completions",
        ),
        (
            "DELETE",
            "/v1/models",
            StatusCode::METHOD_NOT_ALLOWED,
            "DELETE is not allowed",
        ),
    ] {
        let (got, text) = call(app(worker(4, None)), method, path, "{}").await;
        assert_eq!(got, status, "{method} {path}: {text}");
        let json: Json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text:?}"));
        assert!(
            json["error"]["message"].as_str().unwrap().contains(needle),
            "{text}"
        );
        for key in ["type", "param", "code"] {
            assert!(
                json["error"].as_object().unwrap().contains_key(key),
                "{text}"
            );
        }
    }
}
