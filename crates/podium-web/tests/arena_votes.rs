//! The arena's voting over HTTP (the router, no socket): a battle streams two
//! anonymous answers and a signed token; one vote per battle; replayed,
//! forged and foreign tokens are refused; per-client limits answer 429; a
//! vote on answers that name a model is kept but marked non-anonymous; and
//! without `--arena` the board stays read-only.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use futures_util::StreamExt;
use http_body_util::BodyExt;
use podium_board::{BoardCatalog, BoardOptions};
use podium_store::{BattleFilter, Store};
use podium_web::{AnswerChunk, AnswerSource, AnswerStream, AppState, ArenaConfig};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tower::ServiceExt;

use common::Reply;

const HOSTILE: &str = "<script>window.__podium_xss = 1</script>\"><img src=x onerror=alert(1)>";

/// Answers by model, in word-sized chunks; a gate, when set, holds each
/// answer back until it gives a permit.
struct FakeSource {
    answers: HashMap<String, String>,
    gate: Option<Arc<Semaphore>>,
}

impl FakeSource {
    fn new(answers: &[(&str, &str)]) -> FakeSource {
        FakeSource {
            answers: answers
                .iter()
                .map(|(m, a)| ((*m).to_string(), (*a).to_string()))
                .collect(),
            gate: None,
        }
    }
}

impl AnswerSource for FakeSource {
    fn models(&self) -> Vec<String> {
        let mut models: Vec<String> = self.answers.keys().cloned().collect();
        models.sort();
        models
    }

    fn answer(&self, model: &str, _prompt: &str) -> AnswerStream {
        let text = self.answers.get(model).cloned().unwrap_or_default();
        let gate = self.gate.clone();
        let words: Vec<String> = text.split_inclusive(' ').map(str::to_string).collect();
        let n = words.len();
        futures_util::stream::once(async move {
            if let Some(gate) = gate {
                gate.acquire().await.unwrap().forget();
            }
        })
        .flat_map(move |()| {
            futures_util::stream::iter(words.clone().into_iter().enumerate().map(
                move |(i, word)| {
                    Ok(AnswerChunk {
                        text: word,
                        output_tokens: (i + 1 == n).then_some(n),
                    })
                },
            ))
        })
        .boxed()
    }
}

fn config(source: FakeSource, per_hour: u32, per_day: u32) -> ArenaConfig {
    ArenaConfig {
        source: Arc::new(source),
        prompts: podium_arena::prompts::bundled(),
        identity_words: podium_arena::answer::DEFAULT_IDENTITY_WORDS
            .iter()
            .map(|w| (*w).to_string())
            .collect(),
        votes_per_hour: per_hour,
        votes_per_day: per_day,
    }
}

fn plain_source() -> FakeSource {
    FakeSource::new(&[
        ("mock:x", "Paris is the capital of France."),
        ("mock:y", HOSTILE),
    ])
}

fn arena_state(source: FakeSource, per_hour: u32, per_day: u32) -> AppState {
    let store = Store::open_in_memory().unwrap();
    AppState::new(store, BoardCatalog::builtin(), BoardOptions::default())
        .with_arena(config(source, per_hour, per_day))
}

/// A request from `client` (its address, as the server sees the peer).
async fn send(
    state: &AppState,
    method: &str,
    uri: &str,
    body: Option<Value>,
    client: [u8; 4],
) -> Reply {
    let mut request = Request::builder().method(method).uri(uri);
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let mut request = request
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((client, 40000))));
    let response = podium_web::app(state.clone())
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = tokio::time::timeout(Duration::from_secs(20), response.into_body().collect())
        .await
        .expect("the body completes")
        .unwrap()
        .to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

const ME: [u8; 4] = [10, 0, 0, 1];
const OTHER: [u8; 4] = [10, 0, 0, 2];

/// A battle's events, and its token.
async fn battle(state: &AppState, client: [u8; 4]) -> (Vec<Value>, String) {
    let reply = send(
        state,
        "POST",
        "/arena/battles",
        Some(json!({"prompt": "What is the capital of France?"})),
        client,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(
        reply.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/x-ndjson")
    );
    let events: Vec<Value> = reply
        .body
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let token = events[0]["token"].as_str().unwrap().to_string();
    (events, token)
}

async fn vote(state: &AppState, token: &str, winner: &str, client: [u8; 4]) -> Reply {
    send(
        state,
        "POST",
        "/arena/vote",
        Some(json!({"token": token, "winner": winner})),
        client,
    )
    .await
}

fn stored(state_store_battles: &[podium_store::BattleRow]) -> &podium_store::BattleRow {
    assert_eq!(state_store_battles.len(), 1);
    &state_store_battles[0]
}

#[tokio::test]
async fn a_vote_is_stored_as_an_arena_battle_and_reveals_the_models() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("podium.db");
    let state = AppState::new(
        Store::open(&db).unwrap(),
        BoardCatalog::builtin(),
        BoardOptions::default(),
    )
    .with_arena(config(plain_source(), 10, 10));
    let (events, token) = battle(&state, ME).await;

    // The stream: the battle's token first, both answers' chunks, done, ready;
    // no model name anywhere before the vote.
    assert_eq!(events[0]["event"], "battle");
    assert_eq!(events.last().unwrap()["event"], "ready");
    let text_of = |side: &str| -> String {
        events
            .iter()
            .filter(|e| e["event"] == "chunk" && e["side"] == side)
            .map(|e| e["text"].as_str().unwrap())
            .collect()
    };
    let mut answers = [text_of("a"), text_of("b")];
    answers.sort();
    let mut expected = [
        "Paris is the capital of France.".to_string(),
        HOSTILE.to_string(),
    ];
    expected.sort();
    assert_eq!(answers, expected);
    for event in &events {
        let line = event.to_string();
        assert!(!line.contains("mock:"), "a model name leaked: {line}");
    }

    let reply = vote(&state, &token, "a", ME).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let revealed = reply.json();
    let (model_a, model_b) = (
        revealed["model_a"].as_str().unwrap().to_string(),
        revealed["model_b"].as_str().unwrap().to_string(),
    );
    let mut pair = [model_a.clone(), model_b.clone()];
    pair.sort();
    assert_eq!(pair, ["mock:x".to_string(), "mock:y".to_string()]);
    assert_eq!(revealed["winner"], "model_a");
    assert_eq!(revealed["anonymous"], true);

    let rows = Store::open(&db)
        .unwrap()
        .battles(&BattleFilter::default())
        .unwrap();
    let row = stored(&rows);
    assert_eq!(
        (row.model_a.as_str(), row.model_b.as_str()),
        (model_a.as_str(), model_b.as_str())
    );
    assert_eq!(row.winner, "model_a");
    assert_eq!(row.source, "arena");
    assert_eq!(row.judge, None);
    assert!(row.anonymous);
    assert!(row.tstamp > 1.0e9);
    let conversation: Value = serde_json::from_str(row.conversation_a.as_deref().unwrap()).unwrap();
    assert_eq!(conversation[0]["role"], "user");
    assert_eq!(conversation[0]["content"], "What is the capital of France?");
    assert_eq!(conversation[1]["role"], "assistant");
    let answer_a = if model_a == "mock:x" {
        "Paris is the capital of France."
    } else {
        HOSTILE
    };
    assert_eq!(conversation[1]["content"], answer_a);
    let style: Value = serde_json::from_str(row.style_json.as_deref().unwrap()).unwrap();
    assert!(style[0]["tokens"].as_f64().unwrap() > 0.0, "{style}");
}

#[tokio::test]
async fn one_vote_per_battle_replays_and_forgeries_are_refused() {
    let state = arena_state(plain_source(), 100, 100);
    let (_, token) = battle(&state, ME).await;
    assert_eq!(vote(&state, &token, "tie", ME).await.status, StatusCode::OK);

    // The same token again, from the same or another client: a replay.
    for client in [ME, OTHER] {
        let replay = vote(&state, &token, "b", client).await;
        assert_eq!(replay.status, StatusCode::CONFLICT, "{}", replay.body);
        assert!(
            replay.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains("one vote per battle")
        );
    }

    // A token with one digit of its id changed, a made-up one, garbage.
    let (id, tag) = token.split_once('.').unwrap();
    let flipped: String = id
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i == 0 {
                if c == 'a' { 'b' } else { 'a' }
            } else {
                c
            }
        })
        .collect();
    for forged in [
        format!("{flipped}.{tag}"),
        format!("{id}.{}", "0".repeat(64)),
        "0123456789abcdef0123456789abcdef.00".to_string(),
        "not a token".to_string(),
        String::new(),
    ] {
        let reply = vote(&state, &forged, "a", ME).await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{forged}: {}",
            reply.body
        );
        assert!(
            reply.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains("not valid")
        );
    }

    // A token another server (another key) signed.
    let other_server = arena_state(plain_source(), 100, 100);
    let (_, foreign) = battle(&other_server, ME).await;
    assert_eq!(
        vote(&state, &foreign, "a", ME).await.status,
        StatusCode::FORBIDDEN
    );

    // Only the first vote was stored.
    let n = state_battles(&state).await;
    assert_eq!(n, 1);
}

/// How many battles the store holds (read through the arena's JSON).
async fn state_battles(state: &AppState) -> u64 {
    let reply = common::get(state, "/api/v1/arena?voters=all&all_votes=1").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.json()["n_battles"].as_u64().unwrap()
}

#[tokio::test]
async fn a_vote_before_both_answers_are_in_is_refused() {
    let gate = Arc::new(Semaphore::new(0));
    let mut source = plain_source();
    source.gate = Some(Arc::clone(&gate));
    let state = arena_state(source, 100, 100);
    let app = podium_web::app(state.clone());
    let mut request = Request::builder()
        .method("POST")
        .uri("/arena/battles")
        .header("content-type", "application/json")
        .body(Body::from(json!({"prompt": "Hello?"}).to_string()))
        .unwrap();
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((ME, 1))));
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body().into_data_stream();
    let first = body.next().await.unwrap().unwrap();
    let first: Value = serde_json::from_slice(&first).unwrap();
    let token = first["token"].as_str().unwrap().to_string();

    let early = vote(&state, &token, "a", ME).await;
    assert_eq!(early.status, StatusCode::CONFLICT, "{}", early.body);
    assert!(early.body.contains("still coming"));

    gate.add_permits(2);
    while body.next().await.is_some() {}
    let on_time = vote(&state, &token, "a", ME).await;
    assert_eq!(on_time.status, StatusCode::OK, "{}", on_time.body);
}

#[tokio::test]
async fn votes_over_the_hourly_limit_answer_429_per_client() {
    let state = arena_state(plain_source(), 2, 100);
    let mut tokens = Vec::new();
    for _ in 0..3 {
        tokens.push(battle(&state, ME).await.1);
    }
    assert_eq!(
        vote(&state, &tokens[0], "a", ME).await.status,
        StatusCode::OK
    );
    assert_eq!(
        vote(&state, &tokens[1], "b", ME).await.status,
        StatusCode::OK
    );
    let refused = vote(&state, &tokens[2], "a", ME).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    let message = refused.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("at most 2 an hour") && message.contains("try again in"),
        "{message}"
    );
    let retry: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((3000..=3601).contains(&retry), "{retry}");
    // The refused vote did not spend the battle: another client may vote on it.
    assert_eq!(
        vote(&state, &tokens[2], "a", OTHER).await.status,
        StatusCode::OK
    );
    // New battles are capped too, at twice the votes (2 × 2 an hour).
    let more = battle(&state, ME).await;
    assert!(!more.1.is_empty());
    let over = send(
        &state,
        "POST",
        "/arena/battles",
        Some(json!({"prompt": "again"})),
        ME,
    )
    .await;
    assert_eq!(over.status, StatusCode::TOO_MANY_REQUESTS, "{}", over.body);
    assert!(over.body.contains("new battles"), "{}", over.body);
}

#[tokio::test]
async fn the_daily_cap_answers_429_saying_so() {
    let state = arena_state(plain_source(), 100, 1);
    let (_, first) = battle(&state, ME).await;
    let (_, second) = battle(&state, ME).await;
    assert_eq!(vote(&state, &first, "a", ME).await.status, StatusCode::OK);
    let refused = vote(&state, &second, "a", ME).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        refused
            .body
            .contains("daily cap reached: at most 1 votes a day"),
        "{}",
        refused.body
    );
}

#[tokio::test]
async fn a_vote_on_answers_that_name_a_model_is_kept_but_not_anonymous() {
    let source = FakeSource::new(&[
        ("mock:x", "As an AI developed by OpenAI, I think Paris."),
        ("mock:y", "Paris."),
    ]);
    let state = arena_state(source, 100, 100);
    let (_, token) = battle(&state, ME).await;
    let reply = vote(&state, &token, "b", ME).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json()["anonymous"], false);
    assert_eq!(reply.json()["identity_word"], "OpenAI");

    // Kept, but the default board leaves it out.
    let default = common::get(&state, "/api/v1/arena").await.json();
    assert_eq!(default["n_battles"], 0, "{default}");
    let all = common::get(&state, "/api/v1/arena?all_votes=1")
        .await
        .json();
    assert_eq!(all["n_battles"], 1, "{all}");
}

#[tokio::test]
async fn identity_words_are_configurable() {
    let source = FakeSource::new(&[("mock:x", "I am AcmeBot."), ("mock:y", "OpenAI made me.")]);
    let mut config = config(source, 100, 100);
    config.identity_words = vec!["AcmeBot".into()];
    let state = AppState::new(
        Store::open_in_memory().unwrap(),
        BoardCatalog::builtin(),
        BoardOptions::default(),
    )
    .with_arena(config);
    let (_, token) = battle(&state, ME).await;
    let reply = vote(&state, &token, "tie", ME).await.json();
    assert_eq!(reply["identity_word"], "AcmeBot", "{reply}");
}

#[tokio::test]
async fn bad_requests_name_what_is_wrong() {
    let state = arena_state(plain_source(), 100, 100);
    let check = |body: Option<Value>, content_type: &'static str, uri: &'static str| {
        let state = state.clone();
        async move {
            let mut request = Request::builder()
                .method("POST")
                .uri(uri)
                .header("content-type", content_type)
                .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
                .unwrap();
            request
                .extensions_mut()
                .insert(ConnectInfo(SocketAddr::from((ME, 1))));
            let response = podium_web::app(state).oneshot(request).await.unwrap();
            let status = response.status();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
    };
    // A form post (what a cross-site page can send without asking) is refused.
    let (status, body) = check(None, "application/x-www-form-urlencoded", "/arena/battles").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("application/json"), "{body}");
    let (status, body) = check(
        Some(json!({"prompt": "   "})),
        "application/json",
        "/arena/battles",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("prompt is empty"), "{body}");
    let long = "x".repeat(podium_web::MAX_TYPED_PROMPT_BYTES + 1);
    let (status, _) = check(
        Some(json!({"prompt": long})),
        "application/json",
        "/arena/battles",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = check(
        Some(json!({"token": "x.y", "winner": "c"})),
        "application/json",
        "/arena/vote",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("a, b, tie or bothbad"), "{body}");
}

#[tokio::test]
async fn a_drawn_prompt_comes_from_the_set_and_keeps_its_category() {
    let state = arena_state(plain_source(), 100, 100);
    let drawn = send(&state, "GET", "/arena/prompt", None, ME).await.json();
    let prompts = podium_arena::prompts::bundled();
    let set = prompts
        .iter()
        .find(|p| p.id == drawn["id"].as_str().unwrap())
        .expect("a prompt of the bundled set");
    let reply = send(
        &state,
        "POST",
        "/arena/battles",
        Some(json!({"prompt": set.prompt, "prompt_id": set.id})),
        ME,
    )
    .await;
    let first: Value = serde_json::from_str(reply.body.lines().next().unwrap()).unwrap();
    assert_eq!(first["category"].as_str(), set.category.as_deref());
    let token = first["token"].as_str().unwrap();
    assert_eq!(vote(&state, token, "a", ME).await.status, StatusCode::OK);
    let api = common::get(&state, "/api/v1/arena").await.json();
    assert_eq!(
        api["categories"].as_array().unwrap().len(),
        usize::from(set.category.is_some())
    );
}

#[tokio::test]
async fn without_arena_the_board_stays_read_only() {
    let (state, _) = common::state();
    let page = common::get(&state, "/arena").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Voting is off"), "{}", page.body);
    assert!(!page.body.contains("arena-form"));
    for uri in ["/arena/battles", "/arena/vote"] {
        let reply = send(&state, "POST", uri, Some(json!({"prompt": "hi"})), ME).await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{uri}");
    }
    let drawn = common::get(&state, "/arena/prompt").await;
    assert_eq!(drawn.status, StatusCode::NOT_FOUND);
    assert!(drawn.body.contains("--arena"), "{}", drawn.body);
    // The arena's JSON works read-only too.
    let api = common::get(&state, "/api/v1/arena").await;
    assert_eq!(api.status, StatusCode::OK, "{}", api.body);
    assert_eq!(api.json()["voting"], false);
}

#[tokio::test]
async fn the_arena_page_has_the_voting_panel_and_its_script_fits_the_csp() {
    let state = arena_state(plain_source(), 100, 100);
    let page = common::get(&state, "/arena").await;
    assert_eq!(page.status, StatusCode::OK);
    for needle in [
        "id=\"arena-form\"",
        "A is better",
        "B is better",
        "Tie",
        "Both bad",
        "/static/arena.js",
        "href=\"/arena\" aria-current=\"page\"",
    ] {
        assert!(page.body.contains(needle), "{needle}");
    }
    assert!(!page.body.contains("<script>"), "no inline script");
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"));
    let script = common::get(&state, "/static/arena.js").await;
    assert_eq!(script.status, StatusCode::OK);
    assert!(script.body.contains("textContent"));
    assert!(!script.body.contains("innerHTML"), "answers are never HTML");
    // The board's nav links the arena on every page.
    assert!(
        common::get(&state, "/")
            .await
            .body
            .contains("href=\"/arena\"")
    );
}

#[tokio::test]
async fn the_arena_api_is_in_the_openapi_document_and_takes_filters() {
    let state = arena_state(plain_source(), 100, 100);
    let openapi = common::get(&state, "/api/v1/openapi.json").await.json();
    assert!(openapi["paths"]["/api/v1/arena"]["get"].is_object());
    let bad = common::get(&state, "/api/v1/arena?voters=robots").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("people, all or judge:NAME"));
    let judged = common::get(&state, "/api/v1/arena?voters=judge:gpt&category=coding").await;
    assert_eq!(judged.status, StatusCode::OK, "{}", judged.body);
    let judged = judged.json();
    assert_eq!(judged["query"]["voters"]["kind"], "judge");
    assert_eq!(judged["query"]["category"], "coding");
    assert_eq!(judged["n_battles"], 0);
    assert!(judged["unavailable"].is_string());
}
