//! A battle (two models, one verdict) and the interned, columnar set of
//! battles that the rating fits run on.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::ArenaError;

/// The verdict of one battle, spelled as FastChat spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Outcome {
    #[serde(rename = "model_a")]
    A,
    #[serde(rename = "model_b")]
    B,
    #[serde(rename = "tie")]
    Tie,
    /// A tie where both answers were bad; rated as a tie.
    #[serde(rename = "tie (bothbad)")]
    BothBad,
}

impl Outcome {
    /// Every outcome, in FastChat's order.
    pub const ALL: [Outcome; 4] = [Outcome::A, Outcome::B, Outcome::Tie, Outcome::BothBad];

    /// FastChat's spelling: `model_a`, `model_b`, `tie`, `tie (bothbad)`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::A => "model_a",
            Outcome::B => "model_b",
            Outcome::Tie => "tie",
            Outcome::BothBad => "tie (bothbad)",
        }
    }

    /// Parses FastChat's spelling (exactly, as [`Outcome::as_str`] writes it).
    pub fn parse(text: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == text)
    }

    /// Model A's score: 1 for a win, 0 for a loss, ½ for either tie.
    pub fn score_a(self) -> f64 {
        match self {
            Outcome::A => 1.0,
            Outcome::B => 0.0,
            Outcome::Tie | Outcome::BothBad => 0.5,
        }
    }

    /// The same verdict with the two sides swapped.
    pub fn swapped(self) -> Outcome {
        match self {
            Outcome::A => Outcome::B,
            Outcome::B => Outcome::A,
            other => other,
        }
    }

    /// Whether either tie.
    pub fn is_tie(self) -> bool {
        matches!(self, Outcome::Tie | Outcome::BothBad)
    }
}

/// The style of one side's answers, the covariates of style control
/// (METRICS.md): answer length in tokens and the counts of Markdown headers,
/// list items and bold spans, summed over the assistant turns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct StyleCounts {
    pub tokens: f64,
    pub headers: f64,
    pub lists: f64,
    pub bold: f64,
}

/// One battle: two models answered the same prompt and a person or a judge
/// model gave a verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Battle {
    pub model_a: String,
    pub model_b: String,
    pub outcome: Outcome,
    /// The prompt's category (e.g. `coding`), for per-category boards.
    pub category: Option<String>,
    /// The judge model's name; `None` for a person's vote.
    pub judge: Option<String>,
    pub language: Option<String>,
    /// Unix seconds; online Elo takes battles in this order.
    pub tstamp: f64,
    /// The number of user turns.
    pub turns: u32,
    /// `false` when an answer revealed a model's identity: such a vote is
    /// kept but left out of the ratings by default.
    pub anonymous: bool,
    /// Each side's conversation as an OpenAI message list (JSON text), when known.
    pub conversation_a: Option<String>,
    pub conversation_b: Option<String>,
    /// Each side's style counts, when known (from the conversation or a file).
    pub style: Option<[StyleCounts; 2]>,
    /// A judge's raw output, kept for audit.
    pub judge_output: Option<String>,
}

impl Battle {
    /// A battle with only the fields the ratings need; the rest empty.
    pub fn new(model_a: &str, model_b: &str, outcome: Outcome) -> Battle {
        Battle {
            model_a: model_a.to_owned(),
            model_b: model_b.to_owned(),
            outcome,
            category: None,
            judge: None,
            language: None,
            tstamp: 0.0,
            turns: 1,
            anonymous: true,
            conversation_a: None,
            conversation_b: None,
            style: None,
            judge_output: None,
        }
    }
}

/// Battles as the fits read them: model names interned once, then three
/// parallel columns (a, b, outcome) in time order, and style counts when
/// every battle has them.
#[derive(Debug, Clone, Default)]
pub struct BattleSet {
    models: Vec<String>,
    index: HashMap<String, u32>,
    pub(crate) a: Vec<u32>,
    pub(crate) b: Vec<u32>,
    pub(crate) outcome: Vec<Outcome>,
    /// One entry per battle while every battle has style counts; emptied
    /// (and `unstyled` set) by the first battle without them.
    pub(crate) style: Vec<[StyleCounts; 2]>,
    unstyled: bool,
}

impl BattleSet {
    pub fn new() -> BattleSet {
        BattleSet::default()
    }

    /// The set of these battles, in the given order; style counts are kept
    /// only when every battle has them.
    pub fn from_battles<'a>(
        battles: impl IntoIterator<Item = &'a Battle>,
    ) -> Result<BattleSet, ArenaError> {
        let mut set = BattleSet::new();
        for battle in battles {
            if battle.model_a == battle.model_b {
                return Err(ArenaError::Input(format!(
                    "model `{}` battles itself",
                    battle.model_a
                )));
            }
            let a = set.intern(&battle.model_a);
            let b = set.intern(&battle.model_b);
            set.push_ids_styled(a, b, battle.outcome, battle.style)?;
        }
        Ok(set)
    }

    /// The id of `name`, interning it on first sight.
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.index.get(name) {
            return id;
        }
        let id = self.models.len() as u32;
        self.models.push(name.to_owned());
        self.index.insert(name.to_owned(), id);
        id
    }

    /// Adds a battle; a model cannot battle itself.
    pub fn push(
        &mut self,
        model_a: &str,
        model_b: &str,
        outcome: Outcome,
    ) -> Result<(), ArenaError> {
        if model_a == model_b {
            return Err(ArenaError::Input(format!(
                "model `{model_a}` battles itself"
            )));
        }
        let a = self.intern(model_a);
        let b = self.intern(model_b);
        self.push_ids(a, b, outcome)
    }

    /// Adds a battle by interned ids (from [`BattleSet::intern`]).
    pub fn push_ids(&mut self, a: u32, b: u32, outcome: Outcome) -> Result<(), ArenaError> {
        self.push_ids_styled(a, b, outcome, None)
    }

    /// Adds a battle by interned ids with the two sides' style counts, when known.
    pub fn push_ids_styled(
        &mut self,
        a: u32,
        b: u32,
        outcome: Outcome,
        style: Option<[StyleCounts; 2]>,
    ) -> Result<(), ArenaError> {
        let n = self.models.len() as u32;
        if a == b || a >= n || b >= n {
            return Err(ArenaError::Input(format!("bad model ids {a} and {b}")));
        }
        match style {
            Some(style) if !self.unstyled => self.style.push(style),
            _ => {
                self.unstyled = true;
                self.style = Vec::new();
            }
        }
        self.a.push(a);
        self.b.push(b);
        self.outcome.push(outcome);
        Ok(())
    }

    /// Model names by id.
    pub fn models(&self) -> &[String] {
        &self.models
    }

    pub fn len(&self) -> usize {
        self.a.len()
    }

    pub fn is_empty(&self) -> bool {
        self.a.is_empty()
    }

    /// Whether every battle carries style counts.
    pub fn has_style(&self) -> bool {
        !self.a.is_empty() && !self.unstyled
    }
}
