//! An OpenAI-compatible API over an `Engine`: `GET /v1/models`,
//! `POST /v1/completions` and `POST /v1/chat/completions`, streamed (SSE) or
//! not, with prompt log-probs (`echo` + `logprobs`) on completions — what
//! lm-evaluation-harness's `local-completions` needs.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use serde_json::{Value as Json, json};
use tokio::sync::{mpsc, oneshot};

use podium_core::ChatMessage;

use crate::engine::{
    Engine, GenerateOutcome, GenerateParams, Job, Piece, Prompt, PromptScores, TokenLogprob, Worker,
};

/// Every error the API answers, with its status; never echoes internals.
#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    Busy,
    Model(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind, message) = match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, "invalid_request_error", m),
            ApiError::Busy => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "the request queue is full; retry later".to_string(),
            ),
            ApiError::Model(m) => (StatusCode::INTERNAL_SERVER_ERROR, "server_error", m),
        };
        (
            status,
            axum::Json(
                json!({"error": {"message": message, "type": kind, "code": status.as_u16()}}),
            ),
        )
            .into_response()
    }
}

struct AppState {
    worker: Worker,
    next_id: AtomicU64,
}

/// The router; tests call it with `oneshot`, `serve` binds it.
pub fn app(worker: Worker) -> Router {
    let state = std::sync::Arc::new(AppState {
        worker,
        next_id: AtomicU64::new(1),
    });
    Router::new()
        .route("/v1/models", get(models))
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat_completions))
        // vLLM's tokenizer endpoints (lm-evaluation-harness's `tokenizer_backend=remote`).
        .route("/tokenize", post(tokenize))
        .route("/detokenize", post(detokenize))
        .route("/tokenizer_info", get(tokenizer_info))
        .fallback(|| async {
            ApiError::BadRequest(
                "unknown path: Podium serves /v1/models, /v1/completions, /v1/chat/completions, \
                 /tokenize, /detokenize and /tokenizer_info"
                    .into(),
            )
        })
        .with_state(state)
}

/// Serve on an already-bound listener until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    worker: Worker,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(worker))
        .with_graceful_shutdown(shutdown)
        .await
}

type Shared = State<std::sync::Arc<AppState>>;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn models(State(state): Shared) -> axum::Json<Json> {
    axum::Json(json!({
        "object": "list",
        "data": [{"id": state.worker.model_id, "object": "model", "created": 0, "owned_by": "podium"}],
    }))
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum StopField {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum PromptField {
    One(String),
    Many(Vec<String>),
    /// Token ids, as lm-evaluation-harness sends them when it tokenizes itself.
    Ids(Vec<u32>),
    ManyIds(Vec<Vec<u32>>),
}

#[derive(Debug, Deserialize)]
struct CompletionRequest {
    prompt: PromptField,
    #[serde(flatten)]
    sampling: Sampling,
    #[serde(default)]
    logprobs: Option<u32>,
    #[serde(default)]
    echo: bool,
}

#[derive(Debug, Deserialize)]
struct ChatRequest {
    messages: Vec<ChatMessage>,
    #[serde(flatten)]
    sampling: Sampling,
}

/// The generation fields that completions and chat completions share.
#[derive(Debug, Deserialize)]
struct Sampling {
    #[serde(default, alias = "max_completion_tokens")]
    max_tokens: Option<usize>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    stop: Option<StopField>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
}

impl Sampling {
    /// The engine's parameters, with OpenAI's defaults and ranges.
    fn params(&self) -> Result<GenerateParams, ApiError> {
        let temperature = self.temperature.unwrap_or(1.0);
        if !(0.0..=2.0).contains(&temperature) {
            return Err(ApiError::BadRequest(format!(
                "temperature must be between 0 and 2, got {temperature}"
            )));
        }
        let top_p = self.top_p.unwrap_or(1.0);
        if !(top_p > 0.0 && top_p <= 1.0) {
            return Err(ApiError::BadRequest(format!(
                "top_p must be in (0, 1], got {top_p}"
            )));
        }
        Ok(GenerateParams {
            max_tokens: self.max_tokens.unwrap_or(16),
            temperature,
            top_p,
            seed: self.seed.unwrap_or(0),
        })
    }

    fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .is_some_and(|o| o.include_usage)
    }

    fn stops(self) -> Vec<String> {
        match self.stop {
            None => Vec::new(),
            Some(StopField::One(s)) => vec![s],
            Some(StopField::Many(v)) => v,
        }
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|err| ApiError::BadRequest(format!("invalid JSON body: {err}")))
}

async fn completions(State(state): Shared, body: Bytes) -> Result<Response, ApiError> {
    let request: CompletionRequest = parse(&body)?;
    let prompt = match request.prompt {
        PromptField::One(p) => Prompt::Text(p),
        PromptField::Many(mut v) if v.len() == 1 => Prompt::Text(v.remove(0)),
        PromptField::Ids(ids) => Prompt::Ids(ids),
        PromptField::ManyIds(mut v) if v.len() == 1 => Prompt::Ids(v.remove(0)),
        PromptField::Many(_) | PromptField::ManyIds(_) => {
            return Err(ApiError::BadRequest("send one prompt per request".into()));
        }
    };
    let params = request.sampling.params()?;
    let stream = request.sampling.stream;
    let id = format!("cmpl-{}", state.next_id.fetch_add(1, Ordering::Relaxed));
    let model = state.worker.model_id.clone();

    if request.echo {
        if stream {
            return Err(ApiError::BadRequest("`echo` cannot be streamed".into()));
        }
        if params.max_tokens > 1 {
            return Err(ApiError::BadRequest(
                "with `echo`, `max_tokens` must be 0 or 1".into(),
            ));
        }
        let scores = score(&state.worker, prompt.clone()).await?;
        let mut tokens: Vec<&TokenLogprob> = scores.tokens.iter().collect();
        let mut text = match &prompt {
            Prompt::Text(text) => text.clone(),
            Prompt::Ids(_) => scores.tokens.iter().map(|t| t.token.as_str()).collect(),
        };
        if params.max_tokens == 1 {
            tokens.push(&scores.next);
            text.push_str(&scores.next.token);
        }
        let n_prompt = scores.tokens.len();
        let logprobs = request.logprobs.map(|_| {
            json!({
                "tokens": tokens.iter().map(|t| &t.token).collect::<Vec<_>>(),
                "token_logprobs": tokens.iter().map(|t| t.logprob).collect::<Vec<_>>(),
                "top_logprobs": tokens.iter().map(|t| match &t.top {
                    Some((tok, lp)) => json!({tok.clone(): lp}),
                    None => Json::Null,
                }).collect::<Vec<_>>(),
                "text_offset": tokens.iter().map(|t| t.offset).collect::<Vec<_>>(),
            })
        });
        return Ok(axum::Json(json!({
            "id": id, "object": "text_completion", "created": now(), "model": model,
            "choices": [{"index": 0, "text": text, "logprobs": logprobs, "finish_reason": "length"}],
            "usage": {"prompt_tokens": n_prompt, "completion_tokens": params.max_tokens, "total_tokens": n_prompt + params.max_tokens},
        }))
        .into_response());
    }
    if request.logprobs.is_some() {
        return Err(ApiError::BadRequest(
            "`logprobs` is supported with `echo: true` (prompt log-probs) only".into(),
        ));
    }
    let include_usage = request.sampling.include_usage();
    let prompt = match prompt {
        Prompt::Text(text) => text,
        // The engine generates from text; ids are turned back into it.
        Prompt::Ids(ids) => blocking(&state, move |engine| engine.detokenize(&ids)).await?,
    };
    let pieces = start_generation(&state.worker, prompt, params, request.sampling.stops())?;
    if stream {
        Ok(stream_response(pieces, id, model, false, include_usage).into_response())
    } else {
        let (text, outcome) = collect(pieces).await?;
        Ok(axum::Json(json!({
            "id": id, "object": "text_completion", "created": now(), "model": model,
            "choices": [{"index": 0, "text": text, "logprobs": null, "finish_reason": outcome.finish_reason.as_str()}],
            "usage": usage(&outcome),
        }))
        .into_response())
    }
}

async fn chat_completions(State(state): Shared, body: Bytes) -> Result<Response, ApiError> {
    let request: ChatRequest = parse(&body)?;
    if request.messages.is_empty() {
        return Err(ApiError::BadRequest("`messages` is empty".into()));
    }
    let params = request.sampling.params()?;
    let prompt = state
        .worker
        .engine
        .chat_prompt(&request.messages)
        .map_err(ApiError::BadRequest)?;
    let id = format!("chatcmpl-{}", state.next_id.fetch_add(1, Ordering::Relaxed));
    let model = state.worker.model_id.clone();
    let (stream, include_usage) = (request.sampling.stream, request.sampling.include_usage());
    let pieces = start_generation(&state.worker, prompt, params, request.sampling.stops())?;
    if stream {
        Ok(stream_response(pieces, id, model, true, include_usage).into_response())
    } else {
        let (text, outcome) = collect(pieces).await?;
        Ok(axum::Json(json!({
            "id": id, "object": "chat.completion", "created": now(), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": outcome.finish_reason.as_str()}],
            "usage": usage(&outcome),
        }))
        .into_response())
    }
}

fn usage(outcome: &GenerateOutcome) -> Json {
    json!({
        "prompt_tokens": outcome.prompt_tokens,
        "completion_tokens": outcome.completion_tokens,
        "total_tokens": outcome.prompt_tokens + outcome.completion_tokens,
    })
}

/// Runs a (fast, blocking) engine call such as tokenization on the blocking pool.
async fn blocking<T: Send + 'static>(
    state: &AppState,
    call: impl FnOnce(&dyn Engine) -> Result<T, String> + Send + 'static,
) -> Result<T, ApiError> {
    let engine = state.worker.engine.clone();
    tokio::task::spawn_blocking(move || call(engine.as_ref()))
        .await
        .map_err(|e| ApiError::Model(format!("tokenizer task failed: {e}")))?
        .map_err(ApiError::BadRequest)
}

#[derive(Debug, Deserialize)]
struct TokenizeRequest {
    prompt: String,
    #[serde(default = "yes")]
    add_special_tokens: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
struct DetokenizeRequest {
    tokens: Vec<u32>,
}

/// vLLM's `POST /tokenize`: `{"prompt", "add_special_tokens"}` -> `{"tokens", "count",
/// "max_model_len"}`.
async fn tokenize(State(state): Shared, body: Bytes) -> Result<Response, ApiError> {
    let request: TokenizeRequest = parse(&body)?;
    let max_model_len = state.worker.engine.tokenizer_info().max_model_len;
    let tokens = blocking(&state, move |engine| {
        engine.tokenize(&request.prompt, request.add_special_tokens)
    })
    .await?;
    Ok(axum::Json(json!({
        "tokens": tokens, "count": tokens.len(), "max_model_len": max_model_len,
    }))
    .into_response())
}

/// vLLM's `POST /detokenize`: `{"tokens"}` -> `{"prompt"}`.
async fn detokenize(State(state): Shared, body: Bytes) -> Result<Response, ApiError> {
    let request: DetokenizeRequest = parse(&body)?;
    let prompt = blocking(&state, move |engine| engine.detokenize(&request.tokens)).await?;
    Ok(axum::Json(json!({ "prompt": prompt })).into_response())
}

/// vLLM's `GET /tokenizer_info`, which lm-evaluation-harness's `remote` tokenizer reads.
async fn tokenizer_info(State(state): Shared) -> Response {
    let info = state.worker.engine.tokenizer_info();
    axum::Json(json!({
        "bos_token": info.bos_token, "eos_token": info.eos_token, "pad_token": info.pad_token,
        "chat_template": info.chat_template, "model_max_length": info.max_model_len,
        "max_model_len": info.max_model_len,
    }))
    .into_response()
}

async fn score(worker: &Worker, prompt: Prompt) -> Result<PromptScores, ApiError> {
    let (reply, receiver) = oneshot::channel();
    worker
        .jobs
        .try_send(Job::Score { prompt, reply })
        .map_err(|_| ApiError::Busy)?;
    receiver
        .await
        .map_err(|_| ApiError::Model("the model thread stopped".into()))?
        .map_err(ApiError::Model)
}

fn start_generation(
    worker: &Worker,
    prompt: String,
    params: GenerateParams,
    stop: Vec<String>,
) -> Result<mpsc::UnboundedReceiver<Piece>, ApiError> {
    let (pieces, receiver) = mpsc::unbounded_channel();
    worker
        .jobs
        .try_send(Job::Generate {
            prompt,
            params,
            stop,
            pieces,
        })
        .map_err(|_| ApiError::Busy)?;
    Ok(receiver)
}

async fn collect(
    mut pieces: mpsc::UnboundedReceiver<Piece>,
) -> Result<(String, GenerateOutcome), ApiError> {
    let mut text = String::new();
    while let Some(piece) = pieces.recv().await {
        match piece {
            Piece::Text(t) => text.push_str(&t),
            Piece::Done(outcome) => return outcome.map(|o| (text, o)).map_err(ApiError::Model),
        }
    }
    Err(ApiError::Model("the model thread stopped".into()))
}

fn stream_response(
    pieces: mpsc::UnboundedReceiver<Piece>,
    id: String,
    model: String,
    chat: bool,
    include_usage: bool,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let object = if chat {
        "chat.completion.chunk"
    } else {
        "text_completion"
    };
    let created = now();
    let chunk = move |choices: Json, usage: Option<Json>| {
        let mut body = json!({"id": id, "object": object, "created": created, "model": model, "choices": choices});
        if let Some(usage) = usage {
            body["usage"] = usage;
        }
        Event::default().data(body.to_string())
    };
    let delta = move |text: Option<&str>, finish: Option<&str>, first: bool| -> Json {
        if chat {
            let mut d = serde_json::Map::new();
            if first {
                d.insert("role".into(), json!("assistant"));
            }
            if let Some(t) = text {
                d.insert("content".into(), json!(t));
            }
            json!([{"index": 0, "delta": d, "finish_reason": finish}])
        } else {
            json!([{"index": 0, "text": text.unwrap_or(""), "logprobs": null, "finish_reason": finish}])
        }
    };
    enum Phase {
        Start,
        Streaming,
        Usage(Json),
        Done,
        End,
    }
    let state = (pieces, Phase::Start);
    let events = stream::unfold(state, move |(mut pieces, phase)| {
        let chunk = chunk.clone();
        async move {
            match phase {
                Phase::Start if chat => {
                    let event = chunk(delta(None, None, true), None);
                    Some((Ok(event), (pieces, Phase::Streaming)))
                }
                Phase::Start | Phase::Streaming => match pieces.recv().await {
                    Some(Piece::Text(text)) => Some((
                        Ok(chunk(delta(Some(&text), None, false), None)),
                        (pieces, Phase::Streaming),
                    )),
                    Some(Piece::Done(Ok(outcome))) => {
                        let event = chunk(
                            delta(None, Some(outcome.finish_reason.as_str()), false),
                            None,
                        );
                        let next = if include_usage {
                            Phase::Usage(usage(&outcome))
                        } else {
                            Phase::Done
                        };
                        Some((Ok(event), (pieces, next)))
                    }
                    Some(Piece::Done(Err(message))) => {
                        let event = Event::default().data(
                            json!({"error": {"message": message, "type": "server_error"}})
                                .to_string(),
                        );
                        Some((Ok(event), (pieces, Phase::Done)))
                    }
                    None => None,
                },
                Phase::Usage(u) => Some((Ok(chunk(json!([]), Some(u))), (pieces, Phase::Done))),
                Phase::Done => Some((Ok(Event::default().data("[DONE]")), (pieces, Phase::End))),
                Phase::End => None,
            }
        }
    });
    Sse::new(events)
}
