//! `podium serve`: the leaderboard of [`podium_board`] as web pages (the
//! board, charts, the pick, model and sample pages, history, definitions),
//! a JSON API and a CSV export, and the arena's ratings. Read-only over the
//! store (GET and HEAD only), except the arena's votes when voting is on
//! (`podium serve --arena`): then `POST /arena/battles` and `POST
//! /arena/vote` are answered too, and a vote is the one thing it writes.
//!
//! *Architecture Invariant:* every number shown comes from a
//! [`Leaderboard`] (or the store's rows as they are); this crate formats,
//! filters and sorts, it never computes a score. Every text from the store
//! reaches HTML through minijinja's auto-escaping; no template marks data safe.

mod api;
mod arena;
mod charts;
mod error;
mod pages;
mod params;
mod render;
mod samples;
mod view;
mod vote;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use podium_board::{BoardCatalog, BoardOptions, History, Leaderboard};
use podium_store::Store;

pub(crate) use error::AppError;
pub use error::WebError;
pub use vote::{
    ANSWER_IDLE_TIMEOUT, AnswerChunk, AnswerSource, AnswerStream, ArenaConfig, BATTLE_LIFETIME,
    MAX_ANSWER_BYTES, MAX_PENDING_BATTLES, MAX_TYPED_PROMPT_BYTES, MAX_VOTED_IDS,
};

/// The Content-Security-Policy every response carries: no inline script or
/// style, nothing from elsewhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Boards kept per data version (one per distinct set of board options).
const CACHED_BOARDS: usize = 16;

/// Arena boards kept per data version (one per set of battles and options).
const CACHED_ARENA_BOARDS: usize = 16;

/// Response bodies kept per data version (one per route and query string;
/// a board's JSON or page at 1,000 models is ~15 MB).
const CACHED_BODIES: usize = 8;

/// What every handler shares: the store (behind a mutex, used on blocking
/// threads), the catalogue, the server's board options and the board cache.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Mutex<Store>,
    catalog: BoardCatalog,
    options: BoardOptions,
    cache: Mutex<BoardCache>,
    /// Set when voting is on (`podium serve --arena`).
    arena: OnceLock<Arc<vote::Arena>>,
}

/// Boards computed at one data version; emptied when the data changes.
#[derive(Default)]
struct BoardCache {
    version: Option<(i64, u64)>,
    boards: Vec<(BoardOptions, Arc<Leaderboard>)>,
    /// The history (a board per day: the costliest view) for one set of options.
    history: Option<(BoardOptions, Arc<History>)>,
    /// Finished response bodies (the board's JSON and page), by route and query
    /// string: a repeated request is answered with these bytes, not serialized
    /// or rendered again.
    bodies: Vec<(String, axum::body::Bytes)>,
    /// Arena boards, by query.
    arena: Vec<(arena::ArenaQuery, Arc<arena::ArenaBoard>)>,
}

impl BoardCache {
    /// Empty the cache when the data changed since it was filled.
    fn at_version(&mut self, version: (i64, u64)) {
        if self.version != Some(version) {
            self.version = Some(version);
            self.boards.clear();
            self.history = None;
            self.bodies.clear();
            self.arena.clear();
        }
    }
}

impl AppState {
    /// `options` are the server's defaults (bench load, machine price); a
    /// request's `avg=` and `as_of=` override its fields for that request.
    pub fn new(store: Store, catalog: BoardCatalog, options: BoardOptions) -> AppState {
        AppState {
            inner: Arc::new(Inner {
                store: Mutex::new(store),
                catalog,
                options,
                cache: Mutex::new(BoardCache::default()),
                arena: OnceLock::new(),
            }),
        }
    }

    /// This state with voting on: `/arena` shows the voting panel and
    /// answers `POST /arena/battles` and `POST /arena/vote`. Call it once,
    /// before serving; a second call changes nothing.
    pub fn with_arena(self, config: ArenaConfig) -> AppState {
        let _ = self.inner.arena.set(Arc::new(vote::Arena::new(config)));
        self
    }

    /// The arena's voting state, when voting is on.
    pub(crate) fn arena(&self) -> Option<&Arc<vote::Arena>> {
        self.inner.arena.get()
    }

    pub(crate) fn catalog(&self) -> &BoardCatalog {
        &self.inner.catalog
    }

    /// The arena board cached for `query` at `version`, if any.
    fn cached_arena(
        &self,
        version: (i64, u64),
        query: &arena::ArenaQuery,
    ) -> Result<Option<Arc<arena::ArenaBoard>>, AppError> {
        let mut cache = self
            .inner
            .cache
            .lock()
            .map_err(|_| AppError::internal("the board cache lock is poisoned"))?;
        cache.at_version(version);
        Ok(cache
            .arena
            .iter()
            .find(|(q, _)| q == query)
            .map(|(_, board)| Arc::clone(board)))
    }

    /// Keep `board` for `query`, unless the data changed since `version`.
    fn keep_arena(
        &self,
        version: (i64, u64),
        query: arena::ArenaQuery,
        board: Arc<arena::ArenaBoard>,
    ) -> Result<(), AppError> {
        let mut cache = self
            .inner
            .cache
            .lock()
            .map_err(|_| AppError::internal("the board cache lock is poisoned"))?;
        if cache.version == Some(version) {
            if cache.arena.len() >= CACHED_ARENA_BOARDS {
                cache.arena.remove(0);
            }
            cache.arena.push((query, board));
        }
        Ok(())
    }

    pub(crate) fn default_options(&self) -> &BoardOptions {
        &self.inner.options
    }

    /// Run `work` with the store and catalogue on a blocking thread.
    pub(crate) async fn with_store<T, F>(&self, work: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&Store, &BoardCatalog) -> Result<T, AppError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let store = inner
                .store
                .lock()
                .map_err(|_| AppError::internal("the store lock is poisoned"))?;
            work(&store, &inner.catalog)
        })
        .await
        .map_err(|err| AppError::internal(format!("a blocking task failed: {err}")))?
    }

    /// The board for `options`, computed again only when the store's data
    /// version changed since it was cached.
    pub(crate) async fn board(&self, options: BoardOptions) -> Result<Arc<Leaderboard>, AppError> {
        let inner = Arc::clone(&self.inner);
        self.with_store(move |store, catalog| {
            let version = store.data_version()?;
            {
                let mut cache = inner
                    .cache
                    .lock()
                    .map_err(|_| AppError::internal("the board cache lock is poisoned"))?;
                cache.at_version(version);
                if let Some((_, board)) = cache.boards.iter().find(|(o, _)| *o == options) {
                    return Ok(Arc::clone(board));
                }
            }
            let board = Arc::new(Leaderboard::build(store, catalog, options.clone())?);
            let mut cache = inner
                .cache
                .lock()
                .map_err(|_| AppError::internal("the board cache lock is poisoned"))?;
            if cache.version == Some(version) {
                if cache.boards.len() >= CACHED_BOARDS {
                    cache.boards.remove(0);
                }
                cache.boards.push((options, Arc::clone(&board)));
            }
            Ok(board)
        })
        .await
    }

    /// The history for `options`, cached like the board.
    pub(crate) async fn history(&self, options: BoardOptions) -> Result<Arc<History>, AppError> {
        let inner = Arc::clone(&self.inner);
        self.with_store(move |store, catalog| {
            let version = store.data_version()?;
            {
                let mut cache = inner
                    .cache
                    .lock()
                    .map_err(|_| AppError::internal("the board cache lock is poisoned"))?;
                cache.at_version(version);
                if let Some((cached, history)) = &cache.history
                    && *cached == options
                {
                    return Ok(Arc::clone(history));
                }
            }
            let history = Arc::new(podium_board::history(store, catalog, &options)?);
            let mut cache = inner
                .cache
                .lock()
                .map_err(|_| AppError::internal("the board cache lock is poisoned"))?;
            if cache.version == Some(version) {
                cache.history = Some((options, Arc::clone(&history)));
            }
            Ok(history)
        })
        .await
    }

    /// The store's data version (see [`Store::data_version`]), and the body
    /// cached for `key` at that version, if any.
    pub(crate) async fn cached_body(
        &self,
        key: &str,
    ) -> Result<((i64, u64), Option<axum::body::Bytes>), AppError> {
        let inner = Arc::clone(&self.inner);
        let key = key.to_string();
        self.with_store(move |store, _| {
            let version = store.data_version()?;
            let mut cache = inner
                .cache
                .lock()
                .map_err(|_| AppError::internal("the board cache lock is poisoned"))?;
            cache.at_version(version);
            let body = cache
                .bodies
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, body)| body.clone());
            Ok((version, body))
        })
        .await
    }

    /// The body for `key` (a route and query string) at the store's data
    /// version: cached, else made by `make` (gzipped when `gzip`) and kept.
    pub(crate) async fn cached<F, Fut>(
        &self,
        key: &str,
        gzip: bool,
        make: F,
    ) -> Result<axum::body::Bytes, AppError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<u8>, AppError>>,
    {
        let key = if gzip {
            format!("{key}#gzip")
        } else {
            key.to_string()
        };
        let (version, cached) = self.cached_body(&key).await?;
        if let Some(body) = cached {
            return Ok(body);
        }
        let mut body = make().await?;
        if gzip {
            body = render::gzipped(&body)?;
        }
        let body = axum::body::Bytes::from(body);
        self.keep_body(version, &key, body.clone());
        Ok(body)
    }

    /// Keep `body` for `key`, unless the data changed since `version` was read.
    pub(crate) fn keep_body(&self, version: (i64, u64), key: &str, body: axum::body::Bytes) {
        if let Ok(mut cache) = self.inner.cache.lock()
            && cache.version == Some(version)
            && !cache.bodies.iter().any(|(k, _)| k == key)
        {
            if cache.bodies.len() >= CACHED_BODIES {
                cache.bodies.remove(0);
            }
            cache.bodies.push((key.to_string(), body));
        }
    }

    /// How many boards the cache holds (for tests of the cache).
    #[doc(hidden)]
    pub fn cached_boards(&self) -> usize {
        self.inner.cache.lock().map(|c| c.boards.len()).unwrap_or(0)
    }
}

/// Every route of the site and the API.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(pages::board))
        .route("/charts", get(pages::charts))
        .route("/pick", get(pages::pick))
        .route("/models/{id}", get(pages::model))
        .route("/runs/{id}/samples", get(pages::samples))
        .route("/history", get(pages::history))
        .route("/about", get(pages::about))
        .route("/arena", get(arena::page))
        .route("/arena/prompt", get(vote::draw_prompt))
        .route("/arena/battles", post(vote::start_battle))
        .route("/arena/vote", post(vote::vote))
        .route("/api/v1/arena", get(arena::api))
        .route("/board.csv", get(api::board_csv))
        .route("/api/v1/board", get(api::board))
        .route("/api/v1/models/{id}", get(api::model))
        .route("/api/v1/runs/{id}/samples", get(api::samples))
        .route("/api/v1/pick", get(api::pick))
        .route("/api/v1/history", get(api::history))
        .route("/api/v1/charts", get(api::charts))
        .route("/api/v1/openapi.json", get(api::openapi))
        .route("/static/style.css", get(pages::style_css))
        .route("/static/board.js", get(pages::board_js))
        .route("/static/arena.js", get(pages::arena_js))
        .fallback(pages::not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            read_only_and_headers,
        ))
        .with_state(state)
}

/// The routes that take a POST, when voting is on.
const VOTING_ROUTES: [&str; 2] = ["/arena/battles", "/arena/vote"];

/// Refuse anything but GET and HEAD (the server is read-only) except the
/// arena's POSTs when voting is on, and put the security headers on every
/// response.
async fn read_only_and_headers(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method();
    let voting_post = method == Method::POST
        && state.arena().is_some()
        && VOTING_ROUTES.contains(&request.uri().path());
    let mut response = if method == Method::GET || method == Method::HEAD || voting_post {
        next.run(request).await
    } else {
        let mut response = (
            StatusCode::METHOD_NOT_ALLOWED,
            "405 Method Not Allowed: this server is read-only (GET and HEAD only)\n",
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        response
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// Bind `addr` (port 0 picks a free port; the listener tells which).
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, WebError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| WebError::Bind { addr, source })
}

/// Serve `state` on an already-bound listener until `shutdown` completes;
/// requests in flight are finished first.
pub async fn serve_listener(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), WebError> {
    // The peer's address is each client's key for the arena's vote limits.
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .map_err(WebError::Serve)
}

/// Open the database at `db` (an SQLite file or a PostgreSQL URL), bind
/// `addr` and serve until `shutdown`.
pub async fn serve(
    addr: SocketAddr,
    db: &podium_store::Location,
    catalog: BoardCatalog,
    options: BoardOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), WebError> {
    let store = Store::open_location(db)?;
    let listener = bind(addr).await?;
    let local = listener.local_addr().map_err(WebError::Serve)?;
    tracing::info!("serving the board at http://{local}/");
    serve_listener(listener, AppState::new(store, catalog, options), shutdown).await
}
