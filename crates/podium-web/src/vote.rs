//! People's votes in the arena (`podium serve --arena`): a battle is two
//! anonymous answers to one prompt, streamed side by side; a vote on it is
//! stored as a battle with source `arena`.
//!
//! Integrity, as FastChat keeps it:
//! - each battle has a token `ID.MAC`: a random 128-bit id and its
//!   HMAC-SHA256 under a key drawn at start-up, so a token cannot be guessed
//!   or forged, and tokens of an earlier run of the server are void;
//! - one vote per battle: a voted id is remembered (in memory), and a second
//!   vote on it is refused;
//! - per client address, votes are capped per hour and per day (new battles
//!   at twice those caps), answered with 429 and when to try again;
//! - a vote on answers containing an identity word (a model's or maker's
//!   name) is kept but marked non-anonymous, and the ratings leave it out by
//!   default.
//!
//! *Architecture Invariant:* this crate generates nothing itself: the
//! answers come from an [`AnswerSource`] the binary hands over, so the web
//! crate needs no model engine.

use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};
use hmac::{Hmac, Mac};
use podium_arena::answer::revealed_identity;
use podium_arena::pairing::{Candidate, pick_pair};
use podium_arena::{ArenaPrompt, Battle, Outcome, RatingOptions};
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Sha256;
use tokio::sync::mpsc;

use crate::{AppError, AppState};

/// One piece of an answer as it is generated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnswerChunk {
    pub text: String,
    /// The answer's length in tokens, when the backend counted it (usually
    /// on the last chunk).
    pub output_tokens: Option<usize>,
}

/// An answer's chunks in order; an `Err` ends it (its text is logged, never
/// shown: it may name the model).
pub type AnswerStream =
    Pin<Box<dyn Stream<Item = Result<AnswerChunk, podium_core::BackendError>> + Send>>;

/// Where the arena's answers come from: the contenders, and a stream of one
/// contender's answer to a prompt. `podium serve` implements it over model
/// backends; tests over anything.
pub trait AnswerSource: Send + Sync {
    /// The contenders, by the names battles record (their specs).
    fn models(&self) -> Vec<String>;
    /// `model`'s answer to `prompt` (one user turn).
    fn answer(&self, model: &str, prompt: &str) -> AnswerStream;
}

/// How the arena votes (`podium serve --arena …`).
pub struct ArenaConfig {
    pub source: Arc<dyn AnswerSource>,
    /// The prompt set "Draw a prompt" draws from.
    pub prompts: Vec<ArenaPrompt>,
    /// An answer containing one of these words marks its vote non-anonymous.
    pub identity_words: Vec<String>,
    /// Votes per client address per rolling hour and per rolling day.
    pub votes_per_hour: u32,
    pub votes_per_day: u32,
}

/// The longest prompt a person may type, in bytes.
pub const MAX_TYPED_PROMPT_BYTES: usize = 8 * 1024;
/// The longest answer kept per side, in bytes; the rest is cut.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// How long one answer may go without a new chunk before it counts as failed.
pub const ANSWER_IDLE_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a battle waits for its vote.
pub const BATTLE_LIFETIME: Duration = Duration::from_secs(2 * 60 * 60);
/// Battles awaiting a vote, at most (the oldest is dropped beyond).
pub const MAX_PENDING_BATTLES: usize = 10_000;
/// Voted battle ids remembered, at most (older ones are void anyway: their
/// battles expired).
pub const MAX_VOTED_IDS: usize = 1_000_000;

const HOUR: Duration = Duration::from_secs(60 * 60);
const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// The arena's live state: the signing key, battles awaiting a vote, voted
/// ids and the per-client counters.
pub(crate) struct Arena {
    pub(crate) config: ArenaConfig,
    key: [u8; 32],
    book: Mutex<Book>,
}

#[derive(Default)]
struct Book {
    pending: HashMap<String, PendingBattle>,
    /// Pending ids, oldest first (for expiry and the bound).
    order: VecDeque<String>,
    voted: HashSet<String>,
    voted_order: VecDeque<String>,
    battles_by_client: Limiter,
    votes_by_client: Limiter,
}

struct PendingBattle {
    created: Instant,
    model_a: String,
    model_b: String,
    prompt: String,
    category: Option<String>,
    answers: [Option<FinishedAnswer>; 2],
    failed: bool,
}

#[derive(Clone)]
struct FinishedAnswer {
    text: String,
    output_tokens: Option<usize>,
}

/// Per-client event times in a rolling day.
#[derive(Default)]
struct Limiter {
    events: HashMap<IpAddr, VecDeque<Instant>>,
}

impl Limiter {
    /// Ok when `client` is under both caps at `now` (and counts the event),
    /// else what was reached and how many seconds until it is not.
    fn try_take(
        &mut self,
        client: IpAddr,
        now: Instant,
        per_hour: u32,
        per_day: u32,
        what: &str,
    ) -> Result<(), AppError> {
        if self.events.len() > 100_000 {
            self.events
                .retain(|_, times| times.back().is_some_and(|t| now.duration_since(*t) < DAY));
        }
        let times = self.events.entry(client).or_default();
        while times.front().is_some_and(|t| now.duration_since(*t) >= DAY) {
            times.pop_front();
        }
        let in_hour = times
            .iter()
            .filter(|t| now.duration_since(**t) < HOUR)
            .count();
        let wait = |since: Instant, window: Duration| {
            window.saturating_sub(now.duration_since(since)).as_secs() + 1
        };
        if times.len() >= per_day as usize {
            let oldest = times[times.len() - per_day as usize];
            let retry_after_s = wait(oldest, DAY);
            return Err(AppError::TooManyRequests {
                message: format!(
                    "daily cap reached: at most {per_day} {what} a day from one address; try again in {}",
                    duration_words(retry_after_s)
                ),
                retry_after_s,
            });
        }
        if in_hour >= per_hour as usize {
            let oldest = times[times.len() - per_hour as usize];
            let retry_after_s = wait(oldest, HOUR);
            return Err(AppError::TooManyRequests {
                message: format!(
                    "too many {what}: at most {per_hour} an hour from one address; try again in {}",
                    duration_words(retry_after_s)
                ),
                retry_after_s,
            });
        }
        times.push_back(now);
        Ok(())
    }

    /// Forget the latest event of `client` (its action failed on our side).
    fn give_back(&mut self, client: IpAddr) {
        if let Some(times) = self.events.get_mut(&client) {
            times.pop_back();
        }
    }
}

fn duration_words(seconds: u64) -> String {
    match seconds {
        0..=90 => format!("{seconds} seconds"),
        91..=5400 => format!("{} minutes", seconds.div_ceil(60)),
        _ => format!("{} hours", seconds.div_ceil(3600)),
    }
}

type HmacSha256 = Hmac<Sha256>;

impl Arena {
    pub(crate) fn new(config: ArenaConfig) -> Arena {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Arena {
            config,
            key,
            book: Mutex::new(Book::default()),
        }
    }

    fn mac(&self, id: &str) -> HmacSha256 {
        // HMAC takes a key of any length; 32 bytes cannot fail.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(b"podium-arena-battle:");
        mac.update(id.as_bytes());
        mac
    }

    /// A fresh id and its token `ID.MAC`.
    fn issue(&self) -> (String, String) {
        let mut id = [0u8; 16];
        rand::rng().fill_bytes(&mut id);
        let id = podium_hex(&id);
        let tag = podium_hex(&self.mac(&id).finalize().into_bytes());
        let token = format!("{id}.{tag}");
        (id, token)
    }

    /// The id of a token this server signed; 403 for anything else.
    fn verify(&self, token: &str) -> Result<String, AppError> {
        let forged = || {
            AppError::Forbidden(
                "this battle token is not valid: it was not issued by this server".into(),
            )
        };
        let (id, tag) = token.split_once('.').ok_or_else(forged)?;
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(forged());
        }
        let tag = unhex(tag).ok_or_else(forged)?;
        self.mac(id).verify_slice(&tag).map_err(|_| forged())?;
        Ok(id.to_string())
    }

    fn book(&self) -> Result<std::sync::MutexGuard<'_, Book>, AppError> {
        self.book
            .lock()
            .map_err(|_| AppError::internal("the arena lock is poisoned"))
    }
}

fn podium_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.len() > 128 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

impl Book {
    fn expire(&mut self, now: Instant) {
        while let Some(id) = self.order.front() {
            let stale = self
                .pending
                .get(id)
                .is_none_or(|b| now.duration_since(b.created) >= BATTLE_LIFETIME);
            if stale || self.pending.len() > MAX_PENDING_BATTLES {
                if let Some(id) = self.order.pop_front() {
                    self.pending.remove(&id);
                }
            } else {
                break;
            }
        }
    }

    fn remember_vote(&mut self, id: String) {
        if self.voted_order.len() >= MAX_VOTED_IDS
            && let Some(old) = self.voted_order.pop_front()
        {
            self.voted.remove(&old);
        }
        self.voted.insert(id.clone());
        self.voted_order.push_back(id);
    }
}

/// The client's address: the connection's peer (a reverse proxy in front
/// makes every client one address).
pub(crate) struct ClientAddr(pub(crate) IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip()),
        ))
    }
}

fn arena_of(state: &AppState) -> Result<&Arc<Arena>, AppError> {
    state.arena().ok_or_else(|| {
        AppError::not_found(
            "voting is off on this board (start `podium serve` with --arena to turn it on)",
        )
    })
}

// ---------------------------------------------------------------- prompts

/// `GET /arena/prompt`: a prompt drawn from the configured set.
pub(crate) async fn draw_prompt(State(state): State<AppState>) -> Response {
    crate::render::json(draw(&state))
}

fn draw(state: &AppState) -> Result<serde_json::Value, AppError> {
    let arena = arena_of(state)?;
    let prompts = &arena.config.prompts;
    if prompts.is_empty() {
        return Err(AppError::not_found("the arena's prompt set is empty"));
    }
    let prompt = &prompts[rand::rng().random_range(0..prompts.len())];
    Ok(json!({ "id": prompt.id, "category": prompt.category, "prompt": prompt.prompt }))
}

// ---------------------------------------------------------------- battles

/// The body of `POST /arena/battles`.
#[derive(Debug, Deserialize)]
pub(crate) struct BattleRequest {
    prompt: String,
    /// The id of a drawn prompt; its category is kept when the text is the
    /// set's text unchanged.
    #[serde(default)]
    prompt_id: Option<String>,
}

/// One line of a battle's stream (`application/x-ndjson`).
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum BattleEvent<'a> {
    /// First: the battle's token and prompt.
    Battle {
        token: &'a str,
        category: Option<&'a str>,
    },
    /// More text of one side's answer.
    Chunk { side: &'a str, text: &'a str },
    /// One side's answer is complete.
    Done { side: &'a str, cut: bool },
    /// One side failed; the battle cannot be voted on.
    Error { side: &'a str, message: &'a str },
    /// Last: both answers are in and the vote is open.
    Ready,
}

fn line(event: &BattleEvent<'_>) -> Bytes {
    let mut text = serde_json::to_string(event).unwrap_or_else(|_| "{}".into());
    text.push('\n');
    Bytes::from(text)
}

/// `POST /arena/battles`: pair two contenders, answer the prompt with both,
/// and stream the answers as JSON lines (no model names in them).
pub(crate) async fn start_battle(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    body: Result<Json<BattleRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    match begin(&state, client, body).await {
        Ok(response) => response,
        Err(err) => err.into_json(),
    }
}

async fn begin(
    state: &AppState,
    client: IpAddr,
    body: Result<Json<BattleRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, AppError> {
    let arena = Arc::clone(arena_of(state)?);
    let Json(request) = body.map_err(|err| {
        AppError::bad_request(format!(
            "the body must be JSON {{\"prompt\": \"…\"}} sent as application/json: {}",
            err.body_text()
        ))
    })?;
    let prompt = request.prompt.trim().to_string();
    if prompt.is_empty() {
        return Err(AppError::bad_request("the prompt is empty"));
    }
    if prompt.len() > MAX_TYPED_PROMPT_BYTES {
        return Err(AppError::bad_request(format!(
            "the prompt is longer than {MAX_TYPED_PROMPT_BYTES} bytes"
        )));
    }
    let category = request.prompt_id.as_deref().and_then(|id| {
        arena
            .config
            .prompts
            .iter()
            .find(|p| p.id == id && p.prompt.trim() == prompt)
            .and_then(|p| p.category.clone())
    });
    let (per_hour, per_day) = (arena.config.votes_per_hour, arena.config.votes_per_day);
    arena.book()?.battles_by_client.try_take(
        client,
        Instant::now(),
        per_hour.saturating_mul(2),
        per_day.saturating_mul(2),
        "new battles",
    )?;
    let contenders = arena.config.source.models();
    let candidates = state.pairing_candidates(&contenders).await?;
    let seed = rand::rng().next_u64();
    let Some((a, b)) = pick_pair(&candidates, seed) else {
        arena.book()?.battles_by_client.give_back(client);
        return Err(AppError::internal(
            "the arena needs at least two contenders (--contender)",
        ));
    };
    let (model_a, model_b) = (candidates[a].model.clone(), candidates[b].model.clone());
    let (id, token) = arena.issue();
    {
        let mut book = arena.book()?;
        book.expire(Instant::now());
        book.pending.insert(
            id.clone(),
            PendingBattle {
                created: Instant::now(),
                model_a: model_a.clone(),
                model_b: model_b.clone(),
                prompt: prompt.clone(),
                category: category.clone(),
                answers: [None, None],
                failed: false,
            },
        );
        book.order.push_back(id.clone());
    }

    let (sender, receiver) = mpsc::channel::<Bytes>(64);
    let first = line(&BattleEvent::Battle {
        token: &token,
        category: category.as_deref(),
    });
    // The receiver is still here, so this send cannot fail.
    let _ = sender.try_send(first);
    let source = Arc::clone(&arena.config.source);
    tokio::spawn(run_battle(
        arena, source, id, model_a, model_b, prompt, sender,
    ));
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver
            .recv()
            .await
            .map(|bytes| (Ok::<_, Infallible>(bytes), receiver))
    });
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Both answers, chunk by chunk, into `sender`; the finished answers into
/// the pending battle.
async fn run_battle(
    arena: Arc<Arena>,
    source: Arc<dyn AnswerSource>,
    id: String,
    model_a: String,
    model_b: String,
    prompt: String,
    sender: mpsc::Sender<Bytes>,
) {
    const SIDES: [&str; 2] = ["a", "b"];
    let streams = [
        source
            .answer(&model_a, &prompt)
            .map(|item| (0usize, item))
            .boxed(),
        source
            .answer(&model_b, &prompt)
            .map(|item| (1usize, item))
            .boxed(),
    ];
    let [first, second] = streams;
    let mut merged = futures_util::stream::select(first, second);
    let mut texts = [String::new(), String::new()];
    let mut tokens: [Option<usize>; 2] = [None, None];
    let mut cut = [false, false];
    let mut failed = false;
    // A side's stream ends (None from its half of `select`) when it is done;
    // `select` yields None once both are.
    loop {
        let next = tokio::time::timeout(ANSWER_IDLE_TIMEOUT, merged.next()).await;
        let (side, item) = match next {
            Ok(Some(pair)) => pair,
            Ok(None) => break,
            Err(_) => {
                tracing::warn!("arena battle: an answer sent nothing for {ANSWER_IDLE_TIMEOUT:?}");
                failed = true;
                let _ = sender
                    .send(line(&BattleEvent::Error {
                        side: "both",
                        message: "an answer took too long",
                    }))
                    .await;
                break;
            }
        };
        match item {
            Ok(chunk) => {
                if chunk.output_tokens.is_some() {
                    tokens[side] = chunk.output_tokens;
                }
                if cut[side] || chunk.text.is_empty() {
                    continue;
                }
                let room = MAX_ANSWER_BYTES.saturating_sub(texts[side].len());
                let mut piece = chunk.text.as_str();
                if piece.len() > room {
                    let mut end = room;
                    while !piece.is_char_boundary(end) {
                        end -= 1;
                    }
                    piece = &piece[..end];
                    cut[side] = true;
                }
                texts[side].push_str(piece);
                if !piece.is_empty()
                    && sender
                        .send(line(&BattleEvent::Chunk {
                            side: SIDES[side],
                            text: piece,
                        }))
                        .await
                        .is_err()
                {
                    // The page went away; finish quietly, the battle stays unvoted.
                    failed = true;
                    break;
                }
            }
            Err(message) => {
                let model = if side == 0 { &model_a } else { &model_b };
                tracing::warn!("arena battle: `{model}` failed to answer: {message}");
                failed = true;
                let _ = sender
                    .send(line(&BattleEvent::Error {
                        side: SIDES[side],
                        message: if side == 0 {
                            "model A failed to answer; start a new battle"
                        } else {
                            "model B failed to answer; start a new battle"
                        },
                    }))
                    .await;
                break;
            }
        }
    }
    if !failed {
        for side in 0..2 {
            let _ = sender
                .send(line(&BattleEvent::Done {
                    side: SIDES[side],
                    cut: cut[side],
                }))
                .await;
        }
    }
    let ready = match arena.book.lock() {
        Ok(mut book) => match book.pending.get_mut(&id) {
            Some(battle) if !failed => {
                for side in 0..2 {
                    battle.answers[side] = Some(FinishedAnswer {
                        text: std::mem::take(&mut texts[side]),
                        output_tokens: tokens[side],
                    });
                }
                true
            }
            Some(battle) => {
                battle.failed = true;
                false
            }
            None => false,
        },
        Err(_) => false,
    };
    if ready {
        let _ = sender.send(line(&BattleEvent::Ready)).await;
    }
}

// ---------------------------------------------------------------- votes

/// The body of `POST /arena/vote`.
#[derive(Debug, Deserialize)]
pub(crate) struct VoteRequest {
    token: String,
    /// `a`, `b`, `tie` or `bothbad`.
    winner: String,
}

/// What a vote reveals.
#[derive(Debug, Serialize)]
struct VoteReply {
    model_a: String,
    model_b: String,
    /// The catalogue's display names, when it has them.
    name_a: String,
    name_b: String,
    winner: &'static str,
    /// `false` when an answer named a model or its maker: the vote is kept
    /// but left out of the ratings by default.
    anonymous: bool,
    identity_word: Option<String>,
}

/// `POST /arena/vote`: one vote on a battle whose answers are in.
pub(crate) async fn vote(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    body: Result<Json<VoteRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    crate::render::json(cast(&state, client, body).await)
}

async fn cast(
    state: &AppState,
    client: IpAddr,
    body: Result<Json<VoteRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<VoteReply, AppError> {
    let arena = Arc::clone(arena_of(state)?);
    let Json(request) = body.map_err(|err| {
        AppError::bad_request(format!(
            "the body must be JSON {{\"token\": \"…\", \"winner\": \"a|b|tie|bothbad\"}} sent as application/json: {}",
            err.body_text()
        ))
    })?;
    let outcome = match request.winner.as_str() {
        "a" => Outcome::A,
        "b" => Outcome::B,
        "tie" => Outcome::Tie,
        "bothbad" => Outcome::BothBad,
        other => {
            return Err(AppError::bad_request(format!(
                "`winner` must be a, b, tie or bothbad, got `{}`",
                other.chars().take(40).collect::<String>()
            )));
        }
    };
    let id = arena.verify(&request.token)?;
    let (per_hour, per_day) = (arena.config.votes_per_hour, arena.config.votes_per_day);
    // Take the battle out under the lock, so two votes on it cannot both pass.
    let battle = {
        let mut book = arena.book()?;
        if book.voted.contains(&id) {
            return Err(AppError::Conflict(
                "this battle already has its vote: one vote per battle".into(),
            ));
        }
        let Some(pending) = book.pending.get(&id) else {
            return Err(AppError::Gone(
                "this battle expired (or the server restarted since it began); start a new one"
                    .into(),
            ));
        };
        if pending.failed {
            return Err(AppError::Conflict(
                "an answer of this battle failed, so it takes no vote; start a new one".into(),
            ));
        }
        if pending.answers.iter().any(Option::is_none) {
            return Err(AppError::Conflict(
                "the answers are still coming: vote when both are complete".into(),
            ));
        }
        book.votes_by_client
            .try_take(client, Instant::now(), per_hour, per_day, "votes")?;
        book.remember_vote(id.clone());
        book.pending
            .remove(&id)
            .ok_or_else(|| AppError::internal("battle vanished"))?
    };
    let [Some(answer_a), Some(answer_b)] = battle.answers.clone() else {
        return Err(AppError::internal("a battle without its answers"));
    };
    let words = &arena.config.identity_words;
    let identity_word = revealed_identity(&answer_a.text, words)
        .or_else(|| revealed_identity(&answer_b.text, words))
        .map(str::to_owned);
    let conversation = |answer: &str| {
        json!([
            {"role": "user", "content": battle.prompt},
            {"role": "assistant", "content": answer},
        ])
        .to_string()
    };
    // FastChat's style counts; the length in tokens as the backend counted
    // them, else podium-arena's estimate (style control compares the two
    // sides' lengths, so an estimate on both sides still compares).
    let style = |answer: &FinishedAnswer| {
        let mut counts = podium_arena::formats::style_counts(&answer.text);
        if let Some(tokens) = answer.output_tokens {
            counts.tokens = tokens as f64;
        }
        counts
    };
    let stored = Battle {
        model_a: battle.model_a.clone(),
        model_b: battle.model_b.clone(),
        outcome,
        category: battle.category.clone(),
        judge: None,
        language: None,
        tstamp: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
        turns: 1,
        anonymous: identity_word.is_none(),
        conversation_a: Some(conversation(&answer_a.text)),
        conversation_b: Some(conversation(&answer_b.text)),
        style: Some([style(&answer_a), style(&answer_b)]),
        judge_output: None,
    };
    let saved = state
        .with_store(move |store, _| {
            podium_board::arena::save_battles(store, &[stored], "arena")?;
            Ok(())
        })
        .await;
    if let Err(err) = saved {
        // Not counted: the vote can be cast again.
        if let Ok(mut book) = arena.book() {
            book.voted.remove(&id);
            book.voted_order.retain(|v| *v != id);
            book.votes_by_client.give_back(client);
            book.order.push_back(id.clone());
            book.pending.insert(id, battle);
        }
        return Err(err);
    }
    let name = |spec: &str| {
        state
            .catalog()
            .info(spec)
            .display_name
            .unwrap_or_else(|| spec.to_string())
    };
    Ok(VoteReply {
        name_a: name(&battle.model_a),
        name_b: name(&battle.model_b),
        model_a: battle.model_a,
        model_b: battle.model_b,
        winner: outcome.as_str(),
        anonymous: identity_word.is_none(),
        identity_word,
    })
}

// ---------------------------------------------------------------- pairing

impl AppState {
    /// The contenders with their battle counts and ratings among people's
    /// anonymous votes, for [`pick_pair`]: both from the arena board, which
    /// is computed once per data version (not from the battles again per
    /// new battle).
    async fn pairing_candidates(&self, contenders: &[String]) -> Result<Vec<Candidate>, AppError> {
        let board = self
            .arena_board(crate::arena::ArenaQuery::for_pairing())
            .await?;
        Ok(contenders
            .iter()
            .map(|model| Candidate {
                battles: board.battles_of(model),
                rating: board.rating_of(model),
                model: model.clone(),
            })
            .collect())
    }
}

/// The rating options the pairing uses: the fit alone, no interval.
pub(crate) fn pairing_options() -> RatingOptions {
    RatingOptions {
        bootstrap_rounds: 0,
        ..RatingOptions::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_caps_per_hour_then_per_day() {
        let mut limiter = Limiter::default();
        let client = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let start = Instant::now();
        for i in 0..2 {
            assert!(
                limiter
                    .try_take(client, start + Duration::from_secs(i), 2, 3, "votes")
                    .is_ok()
            );
        }
        let Err(AppError::TooManyRequests {
            message,
            retry_after_s,
        }) = limiter.try_take(client, start + Duration::from_secs(2), 2, 3, "votes")
        else {
            panic!("the third vote in an hour is refused");
        };
        assert!(message.contains("at most 2 an hour"), "{message}");
        assert!((3590..=3600).contains(&retry_after_s), "{retry_after_s}");
        // Another client is not affected.
        assert!(
            limiter
                .try_take(IpAddr::V4(Ipv4Addr::BROADCAST), start, 2, 3, "votes")
                .is_ok()
        );
        // An hour later the hourly cap is free again, but the daily one binds.
        let later = start + HOUR + Duration::from_secs(5);
        assert!(limiter.try_take(client, later, 2, 3, "votes").is_ok());
        let Err(AppError::TooManyRequests { message, .. }) =
            limiter.try_take(client, later, 2, 3, "votes")
        else {
            panic!("the fourth vote in a day is refused");
        };
        assert!(message.starts_with("daily cap reached"), "{message}");
        assert!(
            limiter
                .try_take(client, start + DAY + Duration::from_secs(1), 2, 3, "votes")
                .is_ok()
        );
    }

    #[test]
    fn tokens_verify_only_when_signed_by_this_server() {
        struct Nothing;
        impl AnswerSource for Nothing {
            fn models(&self) -> Vec<String> {
                Vec::new()
            }
            fn answer(&self, _: &str, _: &str) -> AnswerStream {
                futures_util::stream::empty().boxed()
            }
        }
        let config = || ArenaConfig {
            source: Arc::new(Nothing),
            prompts: Vec::new(),
            identity_words: Vec::new(),
            votes_per_hour: 1,
            votes_per_day: 1,
        };
        let arena = Arena::new(config());
        let (id, token) = arena.issue();
        assert_eq!(arena.verify(&token).unwrap(), id);
        let other = Arena::new(config());
        assert!(matches!(other.verify(&token), Err(AppError::Forbidden(_))));
        let (_, tag) = token.split_once('.').unwrap();
        let mut forged_id = id.clone().into_bytes();
        forged_id[0] = if forged_id[0] == b'0' { b'1' } else { b'0' };
        let forged = format!("{}.{tag}", String::from_utf8(forged_id).unwrap());
        for bad in [
            forged.as_str(),
            "",
            ".",
            "zz.zz",
            &id,
            &format!("{id}.{}", "0".repeat(64)),
        ] {
            assert!(
                matches!(arena.verify(bad), Err(AppError::Forbidden(_))),
                "{bad}"
            );
        }
    }
}
