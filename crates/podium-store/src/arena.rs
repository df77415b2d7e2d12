//! Arena battles: written in one transaction per batch (an import is all or
//! nothing), read back in time order.

use serde::{Deserialize, Serialize};

use crate::sql::{Begin, Connection, Param, Row, params};
use crate::{Store, StoreError};

/// One stored battle, as plain columns (podium-arena's `Battle` is converted
/// to and from this by podium-board, so the store needs no arena types).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BattleRow {
    /// 0 when not yet stored.
    pub id: i64,
    pub model_a: String,
    pub model_b: String,
    /// `model_a`, `model_b`, `tie` or `tie (bothbad)`.
    pub winner: String,
    pub category: Option<String>,
    /// The judge model; `None` for a person's vote.
    pub judge: Option<String>,
    pub language: Option<String>,
    /// Unix seconds.
    pub tstamp: f64,
    pub turns: u32,
    pub anonymous: bool,
    /// OpenAI message lists as JSON text.
    pub conversation_a: Option<String>,
    pub conversation_b: Option<String>,
    /// Both sides' style counts as JSON text.
    pub style_json: Option<String>,
    pub judge_output: Option<String>,
    /// Where the battle came from: `arena` (a vote on the board), `judge`, or
    /// `import:FILE`.
    pub source: String,
}

/// Which battles to read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BattleFilter {
    /// Only this category.
    pub category: Option<String>,
    /// `Some(None)`: only people's votes; `Some(Some(j))`: only judge `j`'s.
    pub judge: Option<Option<String>>,
    /// Leave out votes marked non-anonymous.
    pub anonymous_only: bool,
}

const BATTLE_COLUMNS: &str =
    "id, model_a, model_b, winner, category, judge, language, tstamp, turns,
     anonymous, conversation_a, conversation_b, style_json, judge_output, source";

fn battle_from_row(row: &Row) -> Result<BattleRow, StoreError> {
    Ok(BattleRow {
        id: row.get(0)?,
        model_a: row.get(1)?,
        model_b: row.get(2)?,
        winner: row.get(3)?,
        category: row.get(4)?,
        judge: row.get(5)?,
        language: row.get(6)?,
        tstamp: row.get(7)?,
        turns: row.get(8)?,
        anonymous: row.get(9)?,
        conversation_a: row.get(10)?,
        conversation_b: row.get(11)?,
        style_json: row.get(12)?,
        judge_output: row.get(13)?,
        source: row.get(14)?,
    })
}

/// Inserts one battle inside the caller's transaction; returns its id.
pub(crate) fn insert_battle(
    transaction: &Connection,
    b: &BattleRow,
    created_at: &str,
) -> Result<i64, StoreError> {
    transaction
        .query_one(
            "INSERT INTO battles (model_a, model_b, winner, category, judge, language,
                 tstamp, turns, anonymous, conversation_a, conversation_b, style_json,
                 judge_output, source, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
             RETURNING id",
            params![
                &b.model_a,
                &b.model_b,
                &b.winner,
                &b.category,
                &b.judge,
                &b.language,
                b.tstamp,
                b.turns,
                b.anonymous,
                &b.conversation_a,
                &b.conversation_b,
                &b.style_json,
                &b.judge_output,
                &b.source,
                created_at,
            ],
        )?
        .get(0)
}

impl Store {
    /// Stores `battles` in one transaction (all or none) and returns their ids.
    pub fn insert_battles(&self, battles: &[BattleRow]) -> Result<Vec<i64>, StoreError> {
        self.with(|this| {
            let created_at = crate::rfc3339_utc(std::time::SystemTime::now());
            this.connection.transaction(Begin::Write, |tx| {
                battles
                    .iter()
                    .map(|battle| insert_battle(tx, battle, &created_at))
                    .collect()
            })
        })
    }

    /// The battles `filter` selects, in time order (then insertion order).
    pub fn battles(&self, filter: &BattleFilter) -> Result<Vec<BattleRow>, StoreError> {
        self.with(|this| {
            let mut sql = format!("SELECT {BATTLE_COLUMNS} FROM battles WHERE TRUE");
            let mut args: Vec<&str> = Vec::new();
            if let Some(category) = &filter.category {
                args.push(category);
                sql.push_str(&format!(" AND category = ?{}", args.len()));
            }
            match &filter.judge {
                None => {}
                Some(None) => sql.push_str(" AND judge IS NULL"),
                Some(Some(judge)) => {
                    args.push(judge);
                    sql.push_str(&format!(" AND judge = ?{}", args.len()));
                }
            }
            if filter.anonymous_only {
                sql.push_str(" AND anonymous = 1");
            }
            sql.push_str(" ORDER BY tstamp, id");
            let args: Vec<Param<'_>> = args.into_iter().map(Param::Text).collect();
            this.connection.query_map(&sql, &args, battle_from_row)
        })
    }

    /// How many battles are stored.
    pub fn battle_count(&self) -> Result<u64, StoreError> {
        self.with(|this| {
            let n: i64 = this
                .connection
                .query_one("SELECT count(*) FROM battles", &[])?
                .get(0)?;
            Ok(n.max(0) as u64)
        })
    }

    /// The distinct categories and judges of the stored battles, for the
    /// board's filters: `(categories, judges)`, each sorted.
    pub fn battle_facets(&self) -> Result<(Vec<String>, Vec<String>), StoreError> {
        self.with(|this| {
            let column = |sql: &str| -> Result<Vec<String>, StoreError> {
                this.connection.query_map(sql, &[], |row| row.get(0))
            };
            Ok((
                column(
                    "SELECT DISTINCT category FROM battles WHERE category IS NOT NULL ORDER BY 1",
                )?,
                column("SELECT DISTINCT judge FROM battles WHERE judge IS NOT NULL ORDER BY 1")?,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(a: &str, b: &str, winner: &str) -> BattleRow {
        BattleRow {
            id: 0,
            model_a: a.into(),
            model_b: b.into(),
            winner: winner.into(),
            category: None,
            judge: None,
            language: None,
            tstamp: 1.0,
            turns: 1,
            anonymous: true,
            conversation_a: None,
            conversation_b: None,
            style_json: None,
            judge_output: None,
            source: "test".into(),
        }
    }

    #[test]
    fn battles_round_trip_and_filter() {
        let store = Store::open_in_memory().unwrap();
        let mut judged = row("x", "y", "tie");
        judged.judge = Some("j".into());
        judged.category = Some("coding".into());
        judged.tstamp = 0.5;
        let mut outed = row("y", "x", "model_a");
        outed.anonymous = false;
        let ids = store
            .insert_battles(&[row("x", "y", "model_b"), judged, outed])
            .unwrap();
        assert_eq!(ids.len(), 3);
        let all = store.battles(&BattleFilter::default()).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].judge.as_deref(), Some("j"), "time order first");
        let people = store
            .battles(&BattleFilter {
                judge: Some(None),
                anonymous_only: true,
                ..BattleFilter::default()
            })
            .unwrap();
        assert_eq!(people.len(), 1);
        assert_eq!(people[0].winner, "model_b");
        let coding = store
            .battles(&BattleFilter {
                category: Some("coding".into()),
                ..BattleFilter::default()
            })
            .unwrap();
        assert_eq!(coding.len(), 1);
        assert_eq!(
            store.battle_facets().unwrap(),
            (vec!["coding".to_string()], vec!["j".to_string()])
        );
    }

    #[test]
    fn a_bad_row_stores_nothing() {
        let store = Store::open_in_memory().unwrap();
        let result = store.insert_battles(&[row("x", "y", "tie"), row("x", "y", "draw")]);
        assert!(result.is_err());
        assert_eq!(store.battle_count().unwrap(), 0);
    }
}
