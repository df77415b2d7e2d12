//! Podium's ratings against references: evalica's golden scores on the
//! LLMFAO battles (tests/data/SOURCE.md), and recovery of known strengths on
//! seeded synthetic battles.

use std::collections::HashMap;

use podium_arena::{BattleSet, CiMethod, Outcome, RatingOptions, Ratings, rate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn llmfao() -> BattleSet {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/llmfao.csv");
    let mut reader = csv::Reader::from_path(path).unwrap();
    let headers = reader.headers().unwrap().clone();
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (left, right, winner) = (column("left"), column("right"), column("winner"));
    let mut set = BattleSet::new();
    for record in reader.records() {
        let record = record.unwrap();
        let outcome = match &record[winner] {
            "left" => Outcome::A,
            "right" => Outcome::B,
            "tie" => Outcome::Tie,
            other => panic!("winner {other}"),
        };
        set.push(&record[left], &record[right], outcome).unwrap();
    }
    set
}

fn golden(algorithm: &str) -> HashMap<String, f64> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/llmfao-golden.csv");
    let mut reader = csv::Reader::from_path(path).unwrap();
    reader
        .records()
        .map(|r| r.unwrap())
        .filter(|r| &r[0] == algorithm)
        .map(|r| (r[1].to_string(), r[2].parse::<f64>().unwrap()))
        .collect()
}

fn by_model(
    ratings: &Ratings,
    value: impl Fn(&podium_arena::ModelRating) -> f64,
) -> HashMap<String, f64> {
    ratings
        .models
        .iter()
        .map(|m| (m.model.clone(), value(m)))
        .collect()
}

#[test]
fn bradley_terry_elo_and_win_rate_match_evalica_on_llmfao() {
    let set = llmfao();
    assert_eq!(set.len(), 8931);
    let options = RatingOptions {
        bootstrap_rounds: 0,
        ..RatingOptions::default()
    };
    let ratings = rate(&set, &options).unwrap();
    assert_eq!(ratings.models.len(), 59);

    // evalica's scores are strengths normalized to sum 1: 400·log10, centred.
    let bt = golden("bradley_terry");
    let points: HashMap<String, f64> = bt
        .iter()
        .map(|(k, v)| (k.clone(), 400.0 * v.log10()))
        .collect();
    let mean = points.values().sum::<f64>() / points.len() as f64;
    let ours = by_model(&ratings, |m| m.rating - 1000.0);
    let mut worst: f64 = 0.0;
    for (model, expected) in &points {
        worst = worst.max((ours[model] - (expected - mean)).abs());
    }
    assert!(
        worst < 0.1,
        "BT differs from evalica by up to {worst} points"
    );
    eprintln!("BT: largest difference to evalica {worst:.4} points");

    let elo = golden("elo");
    let ours = by_model(&ratings, |m| m.elo);
    let worst = elo
        .iter()
        .map(|(k, v)| (ours[k] - v).abs())
        .fold(0.0, f64::max);
    eprintln!("Elo: largest difference to evalica {worst:e}");
    assert!(worst < 1e-6, "Elo differs from evalica by up to {worst}");

    let awr = golden("average_win_rate");
    let ours = by_model(&ratings, |m| m.average_win_rate);
    let worst = awr
        .iter()
        .map(|(k, v)| (ours[k] - v).abs())
        .fold(0.0, f64::max);
    assert!(
        worst < 1e-9,
        "average win rate differs from evalica by up to {worst}"
    );
}

/// Seeded battles among `models` with true ratings spread evenly over
/// ±`spread` around 1000. Ties keep each side's expected score at its
/// Bradley–Terry probability `p` (a tie with probability `0.4 · min(p, 1 − p)`,
/// each win with its probability less half of that), which is what rating
/// a tie as half a win assumes.
fn synthetic(models: usize, battles: usize, spread: f64, seed: u64) -> (BattleSet, Vec<f64>) {
    let truth: Vec<f64> = (0..models)
        .map(|k| 1000.0 - spread + 2.0 * spread * k as f64 / (models - 1) as f64)
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut set = BattleSet::new();
    let ids: Vec<u32> = (0..models)
        .map(|k| set.intern(&format!("model-{k:02}")))
        .collect();
    for _ in 0..battles {
        let a = rng.random_range(0..models);
        let mut b = rng.random_range(0..models - 1);
        if b >= a {
            b += 1;
        }
        let p = 1.0 / (1.0 + 10f64.powf((truth[b] - truth[a]) / 400.0));
        let tie = 0.4 * p.min(1.0 - p);
        let u = rng.random::<f64>();
        let outcome = if u < p - tie / 2.0 {
            Outcome::A
        } else if u < p + tie / 2.0 {
            Outcome::Tie
        } else {
            Outcome::B
        };
        set.push_ids(ids[a], ids[b], outcome).unwrap();
    }
    (set, truth)
}

fn truth_of(ratings: &Ratings, truth: &[f64], name: &str) -> f64 {
    let _ = ratings;
    let k: usize = name.trim_start_matches("model-").parse().unwrap();
    truth[k]
}

#[test]
fn recovers_known_strengths_from_a_million_battles() {
    let (set, truth) = synthetic(20, 1_000_000, 300.0, 7);
    let ratings = rate(
        &set,
        &RatingOptions {
            bootstrap_rounds: 0,
            ..RatingOptions::default()
        },
    )
    .unwrap();
    let mse = ratings
        .models
        .iter()
        .map(|m| (m.rating - truth_of(&ratings, &truth, &m.model)).powi(2))
        .sum::<f64>()
        / ratings.models.len() as f64;
    eprintln!("recovery: RMSE {:.3} points", mse.sqrt());
    assert!(mse.sqrt() < 3.0, "RMSE {} points", mse.sqrt());
}

#[test]
fn intervals_cover_the_truth_for_most_models_over_seeds() {
    for ci in [CiMethod::Bootstrap, CiMethod::Sandwich] {
        let mut covered = 0;
        let mut total = 0;
        for seed in 0..10u64 {
            // No ties: with random ties the model is misspecified and the
            // truth is the shrunken gap; here it is exactly Bradley–Terry.
            let (set, truth) = synthetic_decided(10, 4000, 200.0, 100 + seed);
            let ratings = rate(
                &set,
                &RatingOptions {
                    ci,
                    bootstrap_rounds: 200,
                    seed,
                    threads: 2,
                    ..RatingOptions::default()
                },
            )
            .unwrap();
            for m in &ratings.models {
                let t = truth_of(&ratings, &truth, &m.model);
                total += 1;
                if m.lower <= t && t <= m.upper {
                    covered += 1;
                }
            }
        }
        let share = f64::from(covered) / f64::from(total);
        eprintln!("{ci:?}: 95% intervals covered the truth for {share:.3} of {total}");
        assert!(
            share >= 0.9,
            "{ci:?}: the 95% intervals covered the truth for {share:.3}"
        );
    }
}

fn synthetic_decided(
    models: usize,
    battles: usize,
    spread: f64,
    seed: u64,
) -> (BattleSet, Vec<f64>) {
    let truth: Vec<f64> = (0..models)
        .map(|k| 1000.0 - spread + 2.0 * spread * k as f64 / (models - 1) as f64)
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut set = BattleSet::new();
    let ids: Vec<u32> = (0..models)
        .map(|k| set.intern(&format!("model-{k:02}")))
        .collect();
    for _ in 0..battles {
        let a = rng.random_range(0..models);
        let mut b = rng.random_range(0..models - 1);
        if b >= a {
            b += 1;
        }
        let p = 1.0 / (1.0 + 10f64.powf((truth[b] - truth[a]) / 400.0));
        let outcome = if rng.random::<f64>() < p {
            Outcome::A
        } else {
            Outcome::B
        };
        set.push_ids(ids[a], ids[b], outcome).unwrap();
    }
    (set, truth)
}
