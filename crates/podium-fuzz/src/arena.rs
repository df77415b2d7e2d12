//! Fuzz targets of the arena's inputs (`podium-arena`): battle files in both
//! layouts, judge models' outputs, and prompt sets.

use podium_arena::formats::{BattleFormat, write_jsonl};
use podium_arena::{BattleSet, RatingOptions};

use crate::Target;

pub const TARGETS: &[Target] = &[
    Target {
        name: "battle_file",
        run: battle_file,
    },
    Target {
        name: "judge_verdict",
        run: judge_verdict,
    },
];

/// Reads the bytes as a battle file in both layouts: an error or battles,
/// never a panic. Battles read are written back as JSONL and read again to
/// the same values (the export round-trips), and a few of them are rated.
pub fn battle_file(data: &[u8]) {
    for format in [BattleFormat::Jsonl, BattleFormat::Csv] {
        let limits = podium_arena::ReadLimits::default();
        let Ok(battles) = podium_arena::formats::read_battles(data, format, &limits) else {
            continue;
        };
        let mut text = Vec::new();
        write_jsonl(&mut text, &battles).expect("writing to memory");
        let again = podium_arena::formats::read_battles(&text[..], BattleFormat::Jsonl, &limits)
            .expect("an exported file reads back");
        assert_eq!(again.len(), battles.len());
        for (a, b) in again.iter().zip(&battles) {
            assert_eq!(
                (&a.model_a, &a.model_b, a.outcome),
                (&b.model_a, &b.model_b, b.outcome)
            );
        }
        if let Ok(set) = BattleSet::from_battles(battles.iter().take(64)) {
            let options = RatingOptions {
                bootstrap_rounds: 4,
                ..RatingOptions::default()
            };
            if let Ok(ratings) = podium_arena::rate(&set, &options) {
                assert!(ratings.models.iter().all(|m| m.rating.is_finite()));
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = podium_arena::parse_prompts(text);
    }
}

/// Parses the text as a judge's output: a verdict or a reason, never a
/// panic, and the same answer for the text as for its bounded tail.
pub fn judge_verdict(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let verdict = podium_arena::judge::parse_verdict(&text);
    let bounded = podium_arena::judge::parse_verdict(podium_arena::judge::bounded_output(&text));
    assert_eq!(verdict.is_ok(), bounded.is_ok());
    let _ = podium_arena::formats::style_counts(&text);
    let _ = podium_arena::answer::parse_identity_words(&text);
}
