//! An OpenAI-compatible API over an `Engine`: `GET /v1/models`,
//! `POST /v1/completions` and `POST /v1/chat/completions`, streamed (SSE) or
//! not, with prompt log-probs (`echo` + `logprobs`) on completions — what
//! lm-evaluation-harness's `local-completions` needs.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use serde_json::{Value as Json, json};
use tokio::sync::{mpsc, oneshot};

use crate::engine::{
    Engine, EngineError, GenerateOutcome, GenerateParams, Job, Piece, Prompt, PromptScores,
    TokenLogprob, Worker,
};
pub use crate::error::ApiError;
use crate::request::{self, Limits, ModelShape};

struct AppState {
    worker: Worker,
    next_id: AtomicU64,
    limits: Limits,
    model: ModelShape,
}

const ROUTES: &str = "Podium serves GET /v1/models, POST /v1/completions, POST \
                      /v1/chat/completions, POST /tokenize, POST /detokenize and GET \
                      /tokenizer_info";

/// The router with the default [`Limits`]; tests call it with `oneshot`, `serve`
/// binds it.
pub fn app(worker: Worker) -> Router {
    app_with_limits(worker, Limits::default())
}

/// The router with the given bounds on what one request may ask for.
pub fn app_with_limits(worker: Worker, limits: Limits) -> Router {
    let model = ModelShape {
        context: worker.engine.tokenizer_info().max_model_len,
        vocab_size: worker.engine.vocab_size(),
    };
    let body_limit = limits.max_body_bytes;
    let state = std::sync::Arc::new(AppState {
        worker,
        next_id: AtomicU64::new(1),
        limits,
        model,
    });
    Router::new()
        .route("/v1/models", get(models))
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat_completions))
        // vLLM's tokenizer endpoints (lm-evaluation-harness's `tokenizer_backend=remote`).
        .route("/tokenize", post(tokenize))
        .route("/detokenize", post(detokenize))
        .route("/tokenizer_info", get(tokenizer_info))
        .fallback(|uri: Uri| async move {
            ApiError::not_found(format!("unknown path {}: {ROUTES}", uri.path()))
        })
        .method_not_allowed_fallback(|method: Method, uri: Uri| async move {
            ApiError::method_not_allowed(format!(
                "{method} is not allowed on {}: {ROUTES}",
                uri.path()
            ))
        })
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// Serve on an already-bound listener until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    worker: Worker,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app_with_limits(worker, limits))
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

/// The body, or 413 when it is over the limit (axum's own answer is plain text).
fn body(body: Result<Bytes, BytesRejection>, limits: &Limits) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(limits.max_body_bytes)
        } else {
            ApiError::bad_request(format!(
                "cannot read the request body: {}",
                rejection.body_text()
            ))
        }
    })
}

fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|err| ApiError::bad_request(format!("invalid JSON body: {err}")))
}

/// Tokens of a text prompt as the engine will run it (special tokens added).
async fn count_tokens(state: &AppState, text: String) -> Result<usize, ApiError> {
    blocking(state, move |engine| {
        engine.tokenize(&text, true).map(|t| t.len())
    })
    .await
}

async fn completions(
    State(state): Shared,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let raw = body(raw, &state.limits)?;
    let request = request::decode_completion(&raw, &state.limits, &state.model)?;
    let id = format!("cmpl-{}", state.next_id.fetch_add(1, Ordering::Relaxed));
    let model = state.worker.model_id.clone();
    let sampling = request.sampling;

    if request.echo {
        let prompt = request.prompt;
        // Scoring runs the prompt alone; the greedy next token comes from its last
        // position, so a prompt that fills the context can still be scored.
        let n_tokens = match &prompt {
            Prompt::Text(text) => count_tokens(&state, text.clone()).await?,
            Prompt::Ids(ids) => ids.len(),
        };
        request::check_prompt_tokens(n_tokens, &state.model)?;
        let max_tokens = sampling.max_tokens.unwrap_or(0);
        let scores = score(&state.worker, prompt.clone()).await?;
        let mut tokens: Vec<&TokenLogprob> = scores.tokens.iter().collect();
        let mut text = match &prompt {
            Prompt::Text(text) => text.clone(),
            Prompt::Ids(_) => scores.tokens.iter().map(|t| t.token.as_str()).collect(),
        };
        if max_tokens == 1 {
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
            "usage": {"prompt_tokens": n_prompt, "completion_tokens": max_tokens, "total_tokens": n_prompt + max_tokens},
        }))
        .into_response());
    }
    let prompt = match request.prompt {
        Prompt::Text(text) => text,
        // The engine generates from text; ids are turned back into it.
        Prompt::Ids(ids) => blocking(&state, move |engine| engine.detokenize(&ids)).await?,
    };
    let n_tokens = count_tokens(&state, prompt.clone()).await?;
    let params = sampling.params(n_tokens, &state.model)?;
    let (stream, include_usage) = (sampling.stream, sampling.include_usage);
    let pieces = start_generation(&state.worker, prompt, params, sampling.stops)?;
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

async fn chat_completions(
    State(state): Shared,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let raw = body(raw, &state.limits)?;
    let request = request::decode_chat(&raw, &state.limits)?;
    let messages = request.messages;
    let prompt = blocking(&state, move |engine| engine.chat_prompt(&messages)).await?;
    let n_tokens = count_tokens(&state, prompt.clone()).await?;
    let sampling = request.sampling;
    let params = sampling.params(n_tokens, &state.model)?;
    let id = format!("chatcmpl-{}", state.next_id.fetch_add(1, Ordering::Relaxed));
    let model = state.worker.model_id.clone();
    let (stream, include_usage) = (sampling.stream, sampling.include_usage);
    let pieces = start_generation(&state.worker, prompt, params, sampling.stops)?;
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
    call: impl FnOnce(&dyn Engine) -> Result<T, EngineError> + Send + 'static,
) -> Result<T, ApiError> {
    let engine = state.worker.engine.clone();
    tokio::task::spawn_blocking(move || call(engine.as_ref()))
        .await
        .map_err(|e| ApiError::internal(format!("tokenizer task failed: {e}")))?
        .map_err(ApiError::from)
}

/// vLLM's fields; `model` is accepted and ignored (one model is served), any other
/// field is refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenizeRequest {
    #[serde(rename = "model")]
    _model: Option<Json>,
    prompt: String,
    #[serde(default = "yes")]
    add_special_tokens: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DetokenizeRequest {
    #[serde(rename = "model")]
    _model: Option<Json>,
    tokens: Vec<u32>,
}

/// vLLM's `POST /tokenize`: `{"prompt", "add_special_tokens"}` -> `{"tokens", "count",
/// "max_model_len"}`.
async fn tokenize(
    State(state): Shared,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let request: TokenizeRequest = parse(&body(raw, &state.limits)?)?;
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
async fn detokenize(
    State(state): Shared,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let request: DetokenizeRequest = parse(&body(raw, &state.limits)?)?;
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
        .map_err(|_| ApiError::busy())?;
    receiver
        .await
        .map_err(|_| ApiError::internal("the model thread stopped"))?
        .map_err(ApiError::from)
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
        .map_err(|_| ApiError::busy())?;
    Ok(receiver)
}

async fn collect(
    mut pieces: mpsc::UnboundedReceiver<Piece>,
) -> Result<(String, GenerateOutcome), ApiError> {
    let mut text = String::new();
    while let Some(piece) = pieces.recv().await {
        match piece {
            Piece::Text(t) => text.push_str(&t),
            Piece::Done(outcome) => return outcome.map(|o| (text, o)).map_err(ApiError::from),
        }
    }
    Err(ApiError::internal("the model thread stopped"))
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
                    Some(Piece::Done(Err(err))) => {
                        let event =
                            Event::default().data(ApiError::from(err).to_json().to_string());
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
