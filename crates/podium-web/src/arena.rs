//! The arena tab: ratings from the stored battles (people's votes, a judge
//! model's verdicts, or both), their intervals, rank (UB), votes, the
//! style-controlled rank and per-category boards, as a page (`/arena`, with
//! the voting panel when `--arena` is on) and as JSON (`/api/v1/arena`).
//!
//! The ratings are podium-arena's ([`podium_arena::rate`]); this module picks
//! the battles, caches the result per data version and formats it.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use podium_arena::{BattleSet, RatingOptions, Ratings};
use podium_store::BattleFilter;
use serde::Serialize;
use serde_json::{Value, json};

use crate::params::Params;
use crate::render::{self, html};
use crate::{AppError, AppState};

/// Which battles a board is over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
pub(crate) enum Voters {
    /// People's votes only (the default).
    People,
    /// People's votes and every judge model's verdicts.
    All,
    /// One judge model's verdicts.
    Judge(String),
}

/// What an arena board shows: the battles (voters, category, whether votes
/// on answers that revealed a model count) and the fit's options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ArenaQuery {
    pub(crate) voters: Voters,
    pub(crate) category: Option<String>,
    /// Count votes marked non-anonymous too.
    pub(crate) all_votes: bool,
    /// The pairing's board: the fit alone, no intervals, no style.
    #[serde(skip)]
    pub(crate) for_pairing: bool,
}

impl ArenaQuery {
    pub(crate) fn for_pairing() -> ArenaQuery {
        ArenaQuery {
            voters: Voters::People,
            category: None,
            all_votes: false,
            for_pairing: true,
        }
    }

    fn parse(params: &Params) -> Result<ArenaQuery, AppError> {
        let voters = match params.get("voters") {
            None | Some("people") => Voters::People,
            Some("all") => Voters::All,
            Some(other) => match other.strip_prefix("judge:") {
                Some(judge) if !judge.is_empty() => Voters::Judge(judge.to_string()),
                _ => {
                    return Err(AppError::bad_request(format!(
                        "`voters` must be people, all or judge:NAME, got `{other}`"
                    )));
                }
            },
        };
        Ok(ArenaQuery {
            voters,
            category: params.get("category").map(str::to_string),
            all_votes: params.flag("all_votes")?,
            for_pairing: false,
        })
    }

    fn filter(&self) -> BattleFilter {
        BattleFilter {
            category: self.category.clone(),
            judge: match &self.voters {
                Voters::People => Some(None),
                Voters::All => None,
                Voters::Judge(judge) => Some(Some(judge.clone())),
            },
            anonymous_only: !self.all_votes,
        }
    }

    fn options(&self, style_control: bool) -> RatingOptions {
        if self.for_pairing {
            return crate::vote::pairing_options();
        }
        RatingOptions {
            style_control,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
            ..RatingOptions::default()
        }
    }

    /// The same battles over every category.
    fn overall(&self) -> ArenaQuery {
        ArenaQuery {
            category: None,
            ..self.clone()
        }
    }
}

/// Why an arena board has no ratings; the page and the API show its message.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Unrated {
    #[error("no battles yet")]
    NoBattles,
    /// The battles do not make a set, or the fit failed.
    #[error("{0}")]
    Arena(#[from] podium_arena::ArenaError),
}

impl Serialize for Unrated {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A computed arena board: the ratings, or why there are none.
#[derive(Debug, Serialize)]
pub(crate) struct ArenaBoard {
    pub(crate) n_battles: usize,
    /// `Err`: why there are no ratings (no battles, a failed fit).
    pub(crate) ratings: Result<Ratings, Unrated>,
    /// With style control; `None` unless every battle has style counts.
    pub(crate) style: Option<Result<Ratings, Unrated>>,
}

impl ArenaBoard {
    /// How many battles of this board `model` fought (0 when it has none or
    /// there are no ratings: an empty board).
    pub(crate) fn battles_of(&self, model: &str) -> u64 {
        self.ratings.as_ref().ok().map_or(0, |ratings| {
            ratings
                .models
                .iter()
                .find(|m| m.model == model)
                .map_or(0, |m| m.battles)
        })
    }

    pub(crate) fn rating_of(&self, model: &str) -> Option<f64> {
        self.ratings
            .as_ref()
            .ok()?
            .models
            .iter()
            .find(|m| m.model == model)
            .map(|m| m.rating)
    }

    fn compute(store: &podium_store::Store, query: &ArenaQuery) -> Result<ArenaBoard, AppError> {
        let battles = podium_board::arena::load_battles(store, &query.filter())?;
        let n_battles = battles.len();
        if battles.is_empty() {
            return Ok(ArenaBoard {
                n_battles,
                ratings: Err(Unrated::NoBattles),
                style: None,
            });
        }
        let set = match BattleSet::from_battles(&battles) {
            Ok(set) => set,
            Err(err) => {
                return Ok(ArenaBoard {
                    n_battles,
                    ratings: Err(Unrated::Arena(err)),
                    style: None,
                });
            }
        };
        let rate = |style: bool| -> Result<Ratings, Unrated> {
            Ok(podium_arena::rate(&set, &query.options(style))?)
        };
        let ratings = rate(false);
        let style = (!query.for_pairing && set.has_style()).then(|| rate(true));
        Ok(ArenaBoard {
            n_battles,
            ratings,
            style,
        })
    }
}

impl AppState {
    /// The arena board for `query`, computed again only when the store's
    /// data version changed since it was cached.
    pub(crate) async fn arena_board(&self, query: ArenaQuery) -> Result<Arc<ArenaBoard>, AppError> {
        let state = self.clone();
        self.with_store(move |store, _| {
            let version = store.data_version()?;
            if let Some(board) = state.cached_arena(version, &query)? {
                return Ok(board);
            }
            let board = Arc::new(ArenaBoard::compute(store, &query)?);
            state.keep_arena(version, query, Arc::clone(&board))?;
            Ok(board)
        })
        .await
    }
}

/// `GET /arena`.
pub(crate) async fn page(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    html(arena_page(&state, raw.as_deref()).await)
}

/// `GET /api/v1/arena`.
pub(crate) async fn api(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    render::json(arena_json(&state, raw.as_deref()).await)
}

/// The boards a request needs: the query's, and the overall one when the
/// query is one category's.
async fn boards(
    state: &AppState,
    params: &Params,
) -> Result<(ArenaQuery, Arc<ArenaBoard>, Option<Arc<ArenaBoard>>), AppError> {
    let query = ArenaQuery::parse(params)?;
    let board = state.arena_board(query.clone()).await?;
    let overall = match query.category {
        Some(_) => Some(state.arena_board(query.overall()).await?),
        None => None,
    };
    Ok((query, board, overall))
}

async fn facets(state: &AppState) -> Result<(Vec<String>, Vec<String>), AppError> {
    state
        .with_store(|store, _| Ok(store.battle_facets()?))
        .await
}

/// Each model's overall rank (UB) minus its rank in this category: positive
/// when the model ranks higher (a smaller number) here.
fn rank_changes(board: &ArenaBoard, overall: Option<&ArenaBoard>) -> HashMap<String, i64> {
    match (&board.ratings, overall.map(|o| &o.ratings)) {
        (Ok(category), Some(Ok(overall))) => podium_arena::rank_changes(overall, category)
            .into_iter()
            .collect(),
        _ => HashMap::new(),
    }
}

async fn arena_json(state: &AppState, raw: Option<&str>) -> Result<Value, AppError> {
    let params = Params::parse(raw)?;
    let (query, board, overall) = boards(state, &params).await?;
    let (categories, judges) = facets(state).await?;
    let changes = rank_changes(&board, overall.as_deref());
    Ok(json!({
        "query": query,
        "voting": state.arena().is_some(),
        "n_battles": board.n_battles,
        "ratings": board.ratings.as_ref().ok(),
        "unavailable": board.ratings.as_ref().err(),
        "style_control": board.style.as_ref().map(|s| json!({
            "ratings": s.as_ref().ok(),
            "unavailable": s.as_ref().err(),
        })),
        "rank_change_vs_overall": query.category.as_ref().map(|_| changes),
        "categories": categories,
        "judges": judges,
    }))
}

async fn arena_page(state: &AppState, raw: Option<&str>) -> Result<Response, AppError> {
    let params = Params::parse(raw)?;
    let (query, board, overall) = boards(state, &params).await?;
    let (categories, judges) = facets(state).await?;
    let changes = rank_changes(&board, overall.as_deref());
    let style_ranks: HashMap<String, u32> = match &board.style {
        Some(Ok(style)) => style
            .models
            .iter()
            .map(|m| (m.model.clone(), m.rank_ub))
            .collect(),
        _ => HashMap::new(),
    };
    let catalog = state.catalog();
    let rows: Vec<Value> = match &board.ratings {
        Ok(ratings) => ratings
            .models
            .iter()
            .map(|m| {
                let shared = ratings
                    .models
                    .iter()
                    .filter(|o| o.rank_ub == m.rank_ub)
                    .count()
                    > 1;
                let change = changes.get(&m.model).copied();
                json!({
                    "rank": m.rank_ub,
                    "rank_shared": shared,
                    "name": catalog.info(&m.model).display_name.unwrap_or_else(|| m.model.clone()),
                    "spec": m.model,
                    "rating": format!("{:.0}", m.rating),
                    "plus": format!("+{:.0}", (m.upper - m.rating).max(0.0)),
                    "minus": format!("−{:.0}", (m.rating - m.lower).max(0.0)),
                    "interval_title": format!("95% interval {:.1}–{:.1}", m.lower, m.upper),
                    "votes": m.battles,
                    "record": format!("{} won · {} tied · {} lost", m.wins, m.ties, m.losses),
                    "win_rate": format!("{:.0}%", m.average_win_rate * 100.0),
                    "elo": format!("{:.0}", m.elo),
                    "style_rank": style_ranks.get(&m.model),
                    "change": change.map(|c| match c {
                        0 => "=".to_string(),
                        c if c > 0 => format!("▲{c}"),
                        c => format!("▼{}", -c),
                    }),
                    "change_class": change.map(|c| match c {
                        0 => "same",
                        c if c > 0 => "up",
                        _ => "down",
                    }),
                })
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    let voters_value = match &query.voters {
        Voters::People => "people".to_string(),
        Voters::All => "all".to_string(),
        Voters::Judge(j) => format!("judge:{j}"),
    };
    let arena = state.arena();
    let ctx = json!({
        "page": "arena",
        "voting": arena.map(|a| json!({
            "contenders": a.config.source.models().len(),
            "prompts": a.config.prompts.len(),
            "votes_per_hour": a.config.votes_per_hour,
        })),
        "rows": rows,
        "n_battles": board.n_battles,
        "unavailable": board.ratings.as_ref().err(),
        "has_style": matches!(board.style, Some(Ok(_))),
        "style_unavailable": board.style.as_ref().and_then(|s| s.as_ref().err()),
        "ci": board.ratings.as_ref().ok().map(|r| match r.ci {
            podium_arena::CiMethod::Bootstrap => format!("percentile bootstrap, {} rounds", r.bootstrap_rounds),
            podium_arena::CiMethod::Sandwich => "sandwich (CLT)".to_string(),
        }),
        "category": query.category,
        "filters": {
            "voters": voters_value,
            "category": query.category.clone().unwrap_or_default(),
            "all_votes": query.all_votes,
            "categories": categories,
            "judges": judges,
        },
        "api_href": format!("/api/v1/arena{}", params.query_string()),
    });
    render::page("arena.html", ctx)
}
