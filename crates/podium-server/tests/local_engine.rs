//! `serve-model`'s path for a local model: the worker's thread is the one thread that
//! runs the model, and its queue the one queue in front of it. A tiny random-weight
//! GGUF (podium-local's fuzz seed) keeps the test hermetic; a tokenizer that waits at a
//! gate holds the model thread while the queue fills.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value as Json, json};
use tokio::sync::mpsc;
use tower::ServiceExt;

use podium_local::{
    GgufTokenizer, LocalModel, LocalOptions, TextTokenizer, TokenizerError, fuzzing,
};
use podium_server::{LocalEngine, Worker, app};

/// The GGUF file's own tokenizer, except that `decode` (which the model thread calls
/// for every scored or generated token) reports the calling thread's name, then waits
/// until the gate is free.
struct GatedTokenizer {
    inner: GgufTokenizer,
    gate: Arc<Mutex<()>>,
    entered: mpsc::UnboundedSender<Option<String>>,
}

impl TextTokenizer for GatedTokenizer {
    fn encode(&self, text: &str, add_special: bool) -> Result<Vec<u32>, TokenizerError> {
        self.inner.encode(text, add_special)
    }

    fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        let _ = self
            .entered
            .send(std::thread::current().name().map(str::to_string));
        let _open = self.gate.lock().unwrap_or_else(|e| e.into_inner());
        self.inner.decode(ids)
    }

    fn bos_id(&self) -> Option<u32> {
        self.inner.bos_id()
    }

    fn eos_id(&self) -> Option<u32> {
        self.inner.eos_id()
    }

    fn token_text(&self, id: u32) -> Option<String> {
        self.inner.token_text(id)
    }

    fn end_of_generation_ids(&self) -> Vec<u32> {
        self.inner.end_of_generation_ids()
    }
}

fn post(path: &str, body: &Json) -> Request<Body> {
    Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

async fn call(router: axum::Router, body: Json) -> (StatusCode, String) {
    let response = router
        .oneshot(post("/v1/completions", &body))
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// The std lock is held on purpose: it blocks the model thread, not the runtime.
#[allow(clippy::await_holding_lock)]
async fn one_model_thread_behind_one_bounded_queue() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny-llama.gguf");
    std::fs::write(&path, fuzzing::tiny_gguf("llama", "gpt2").unwrap()).unwrap();
    let gate = Arc::new(Mutex::new(()));
    let held = gate.lock().unwrap();
    let (entered_tx, mut entered) = mpsc::unbounded_channel();
    let tokenizer = GatedTokenizer {
        inner: GgufTokenizer::from_file(&path).unwrap(),
        gate: gate.clone(),
        entered: entered_tx,
    };
    let model =
        LocalModel::load_with_tokenizer(&path, LocalOptions::new("gguf:tiny"), Arc::new(tokenizer))
            .unwrap();
    // One waiting request beyond the one running.
    let worker = Worker::start(Arc::new(LocalEngine::new(model, "tiny".into())), 1);

    // A scoring request reaches the model, which stops at the gate in the middle of it.
    let scoring = tokio::spawn(call(
        app(worker.clone()),
        json!({"prompt": "ab ab", "max_tokens": 0, "echo": true, "logprobs": 1}),
    ));
    let thread = entered.recv().await.expect("the model decodes a token");
    // The model computes on the worker's own thread, not on one behind it.
    assert_eq!(thread.as_deref(), Some("podium-model"));

    // A streamed generation is accepted (its headers come at once) into the one slot...
    let generation = json!({"prompt": "ab", "max_tokens": 2, "temperature": 0, "stream": true});
    let queued = app(worker.clone())
        .oneshot(post("/v1/completions", &generation))
        .await
        .unwrap();
    assert_eq!(queued.status(), StatusCode::OK);
    // ...and with the model busy and that slot taken, the next request is refused at
    // once, whatever its kind: nothing else holds requests for the model.
    for body in [
        json!({"prompt": "ab", "max_tokens": 2}),
        json!({"prompt": "b", "max_tokens": 0, "echo": true, "logprobs": 1}),
    ] {
        let (status, text) = call(app(worker.clone()), body).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{text}");
        let error: Json = serde_json::from_str(&text).unwrap();
        assert_eq!(
            error["error"]["message"],
            "the request queue is full; retry later"
        );
    }

    drop(held);
    let (status, text) = scoring.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{text}");
    let scored: Json = serde_json::from_str(&text).unwrap();
    assert_eq!(scored["choices"][0]["text"], "ab ab");
    let streamed = queued.into_body().collect().await.unwrap().to_bytes();
    let streamed = String::from_utf8(streamed.to_vec()).unwrap();
    assert!(streamed.trim_end().ends_with("data: [DONE]"), "{streamed}");
    // The queue has room again.
    let (status, text) = call(
        app(worker.clone()),
        json!({"prompt": "ab", "max_tokens": 2}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
}
