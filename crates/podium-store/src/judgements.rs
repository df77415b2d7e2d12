//! Judge models' verdicts (`podium arena judge`): every answer of the judge,
//! stored with the battle it made, if any, in one transaction per batch.

use serde::{Deserialize, Serialize};

use crate::arena::insert_battle;
use crate::sql::{Begin, Row, params};
use crate::{BattleRow, Store, StoreError};

/// One answer of a judge model on one order of a pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgementRow {
    /// 0 when not yet stored.
    pub id: i64,
    /// The battle the pair made; `None` when a verdict of the pair did not
    /// parse (or before storing: the store sets it).
    pub battle_id: Option<i64>,
    pub judge: String,
    pub prompt_id: String,
    /// sha256 of the prompt's text: a pair is judged again only for a new text.
    pub prompt_hash: String,
    pub category: Option<String>,
    pub model_a: String,
    pub model_b: String,
    /// Whether `model_a`'s answer was shown first (as Assistant A).
    pub a_first: bool,
    /// The judge's raw output.
    pub output: String,
    /// The parsed verdict (`A>>B`, `A>B`, `A=B`, `B>A`, `B>>A`, for the
    /// answers as shown), or `None` with the reason.
    pub verdict: Option<String>,
    pub reason: Option<String>,
}

/// A judged pair as it is stored: its battle when both verdicts parsed, and
/// the judge's answers on both orders.
#[derive(Debug, Clone, PartialEq)]
pub struct JudgedPair {
    pub battle: Option<BattleRow>,
    pub judgements: Vec<JudgementRow>,
}

const JUDGEMENT_COLUMNS: &str = "id, battle_id, judge, prompt_id, prompt_hash, category,
     model_a, model_b, a_first, output, verdict, reason";

fn judgement_from_row(row: &Row) -> Result<JudgementRow, StoreError> {
    Ok(JudgementRow {
        id: row.get(0)?,
        battle_id: row.get(1)?,
        judge: row.get(2)?,
        prompt_id: row.get(3)?,
        prompt_hash: row.get(4)?,
        category: row.get(5)?,
        model_a: row.get(6)?,
        model_b: row.get(7)?,
        a_first: row.get(8)?,
        output: row.get(9)?,
        verdict: row.get(10)?,
        reason: row.get(11)?,
    })
}

impl Store {
    /// Stores judged pairs in one transaction (all or none): each pair's
    /// battle, then its judgements pointing at it. Returns the battles' ids.
    pub fn insert_judged_pairs(
        &self,
        pairs: &[JudgedPair],
    ) -> Result<Vec<Option<i64>>, StoreError> {
        self.with(|this| {
            let created_at = crate::rfc3339_utc(std::time::SystemTime::now());
            this.connection.transaction(Begin::Write, |tx| {
                let mut battle_ids = Vec::with_capacity(pairs.len());
                for pair in pairs {
                    let battle_id = pair
                        .battle
                        .as_ref()
                        .map(|battle| insert_battle(tx, battle, &created_at))
                        .transpose()?;
                    for j in &pair.judgements {
                        tx.execute(
                            "INSERT INTO judgements (battle_id, judge, prompt_id, prompt_hash,
                                 category, model_a, model_b, a_first, output, verdict, reason,
                                 created_at)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                            params![
                                battle_id,
                                &j.judge,
                                &j.prompt_id,
                                &j.prompt_hash,
                                &j.category,
                                &j.model_a,
                                &j.model_b,
                                j.a_first,
                                &j.output,
                                &j.verdict,
                                &j.reason,
                                created_at.as_str(),
                            ],
                        )?;
                    }
                    battle_ids.push(battle_id);
                }
                Ok(battle_ids)
            })
        })
    }

    /// The stored judgements, of one judge or all, in the order they were stored.
    pub fn judgements(&self, judge: Option<&str>) -> Result<Vec<JudgementRow>, StoreError> {
        self.with(|this| {
            this.connection.query_map(
                &format!(
                    "SELECT {JUDGEMENT_COLUMNS} FROM judgements
                     WHERE CAST(?1 AS TEXT) IS NULL OR judge = CAST(?1 AS TEXT) ORDER BY id"
                ),
                params![judge],
                judgement_from_row,
            )
        })
    }

    /// The pairs `judge` has judged already, as `(prompt_hash, model_a,
    /// model_b)`, so that running the same judging again adds no second copy.
    pub fn judged_pairs(&self, judge: &str) -> Result<Vec<(String, String, String)>, StoreError> {
        self.with(|this| {
            this.connection.query_map(
                "SELECT DISTINCT prompt_hash, model_a, model_b FROM judgements WHERE judge = ?1",
                params![judge],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn battle() -> BattleRow {
        BattleRow {
            id: 0,
            model_a: "x".into(),
            model_b: "y".into(),
            winner: "model_a".into(),
            category: Some("math".into()),
            judge: Some("j".into()),
            language: None,
            tstamp: 1.0,
            turns: 1,
            anonymous: true,
            conversation_a: None,
            conversation_b: None,
            style_json: None,
            judge_output: Some("{}".into()),
            source: "judge".into(),
        }
    }

    fn judgement(a_first: bool, verdict: Option<&str>) -> JudgementRow {
        JudgementRow {
            id: 0,
            battle_id: None,
            judge: "j".into(),
            prompt_id: "p1".into(),
            prompt_hash: "h1".into(),
            category: Some("math".into()),
            model_a: "x".into(),
            model_b: "y".into(),
            a_first,
            output: "raw".into(),
            verdict: verdict.map(str::to_owned),
            reason: verdict.is_none().then(|| "no verdict".to_owned()),
        }
    }

    #[test]
    fn judged_pairs_round_trip_with_their_battles() {
        let store = Store::open_in_memory().unwrap();
        let decided = JudgedPair {
            battle: Some(battle()),
            judgements: vec![judgement(true, Some("A>B")), judgement(false, Some("B>A"))],
        };
        let mut unparsed = JudgedPair {
            battle: None,
            judgements: vec![judgement(true, None), judgement(false, Some("A=B"))],
        };
        for j in &mut unparsed.judgements {
            j.prompt_hash = "h2".into();
        }
        let ids = store.insert_judged_pairs(&[decided, unparsed]).unwrap();
        assert!(ids[0].is_some() && ids[1].is_none(), "{ids:?}");
        assert_eq!(store.battle_count().unwrap(), 1);
        let stored = store.judgements(Some("j")).unwrap();
        assert_eq!(stored.len(), 4);
        assert_eq!(stored[0].battle_id, ids[0]);
        assert_eq!(stored[1].battle_id, ids[0]);
        assert_eq!(stored[2].battle_id, None);
        assert_eq!(stored[2].verdict, None);
        assert_eq!(stored[2].reason.as_deref(), Some("no verdict"));
        assert!(stored[0].a_first && !stored[1].a_first);
        assert_eq!(store.judgements(Some("other")).unwrap().len(), 0);
        assert_eq!(store.judgements(None).unwrap().len(), 4);
        let mut pairs = store.judged_pairs("j").unwrap();
        pairs.sort();
        assert_eq!(
            pairs,
            vec![
                ("h1".to_string(), "x".to_string(), "y".to_string()),
                ("h2".to_string(), "x".to_string(), "y".to_string()),
            ]
        );
    }

    #[test]
    fn a_bad_judgement_stores_nothing() {
        let store = Store::open_in_memory().unwrap();
        // A verdict outside the five labels, and a verdict with a reason.
        let mut bad_label = judgement(true, Some("A>B"));
        bad_label.verdict = Some("A>>>B".into());
        let mut both = judgement(true, Some("A>B"));
        both.reason = Some("also a reason".into());
        for bad in [bad_label, both] {
            let result = store.insert_judged_pairs(&[
                JudgedPair {
                    battle: Some(battle()),
                    judgements: vec![judgement(true, Some("A>B"))],
                },
                JudgedPair {
                    battle: Some(battle()),
                    judgements: vec![bad],
                },
            ]);
            assert!(result.is_err());
            assert_eq!(store.battle_count().unwrap(), 0);
            assert_eq!(store.judgements(None).unwrap().len(), 0);
        }
    }
}
