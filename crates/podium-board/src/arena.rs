//! The arena's battles between podium-arena's values and the store's rows,
//! and the arena board computed from the store. The one place that converts,
//! so the CLI (import, judge) and the web arena (votes) store battles alike.

use podium_arena::{ArenaError, Battle, BattleSet, Outcome, RatingOptions, Ratings, StyleCounts};
use podium_store::{BattleFilter, BattleRow, Store};

use crate::BoardError;

/// The store's row for `battle`, marked as coming from `source`.
pub fn battle_row(battle: &Battle, source: &str) -> BattleRow {
    BattleRow {
        id: 0,
        model_a: battle.model_a.clone(),
        model_b: battle.model_b.clone(),
        winner: battle.outcome.as_str().to_owned(),
        category: battle.category.clone(),
        judge: battle.judge.clone(),
        language: battle.language.clone(),
        tstamp: battle.tstamp,
        turns: battle.turns,
        anonymous: battle.anonymous,
        conversation_a: battle.conversation_a.clone(),
        conversation_b: battle.conversation_b.clone(),
        style_json: battle
            .style
            .as_ref()
            .and_then(|style| serde_json::to_string(style).ok()),
        judge_output: battle.judge_output.clone(),
        source: source.to_owned(),
    }
}

/// The battle a stored row holds. The store's CHECK constraints keep the
/// winner valid; a style that no longer parses is dropped, not fatal.
pub fn battle_of_row(row: BattleRow) -> Result<Battle, BoardError> {
    let outcome = Outcome::parse(&row.winner).ok_or_else(|| {
        BoardError::Options(format!(
            "battle {}: unknown winner `{}` in the store",
            row.id, row.winner
        ))
    })?;
    let style = row
        .style_json
        .as_deref()
        .and_then(|text| serde_json::from_str::<[StyleCounts; 2]>(text).ok());
    Ok(Battle {
        model_a: row.model_a,
        model_b: row.model_b,
        outcome,
        category: row.category,
        judge: row.judge,
        language: row.language,
        tstamp: row.tstamp,
        turns: row.turns,
        anonymous: row.anonymous,
        conversation_a: row.conversation_a,
        conversation_b: row.conversation_b,
        style,
        judge_output: row.judge_output,
    })
}

/// Stores `battles` in one transaction; returns their ids.
pub fn save_battles(
    store: &Store,
    battles: &[Battle],
    source: &str,
) -> Result<Vec<i64>, BoardError> {
    let rows: Vec<BattleRow> = battles.iter().map(|b| battle_row(b, source)).collect();
    Ok(store.insert_battles(&rows)?)
}

/// The stored battles `filter` selects, in time order.
pub fn load_battles(store: &Store, filter: &BattleFilter) -> Result<Vec<Battle>, BoardError> {
    store
        .battles(filter)?
        .into_iter()
        .map(battle_of_row)
        .collect()
}

/// The arena board of the stored battles `filter` selects.
pub fn arena_ratings(
    store: &Store,
    filter: &BattleFilter,
    options: &RatingOptions,
) -> Result<Ratings, BoardError> {
    let battles = load_battles(store, filter)?;
    let set = BattleSet::from_battles(&battles).map_err(arena_error)?;
    podium_arena::rate(&set, options).map_err(arena_error)
}

fn arena_error(error: ArenaError) -> BoardError {
    BoardError::Options(error.to_string())
}
