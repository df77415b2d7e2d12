//! Times `rate` alone (no file reading) on seeded synthetic battles:
//! `cargo run --release -p podium-arena --example rate_speed -- [BATTLES] [MODELS] [ROUNDS] [THREADS]`.
//! The end-to-end figure (file included) is `bench/arena/run.sh`.

use std::time::Instant;

use podium_arena::{BattleSet, CiMethod, Outcome, RatingOptions, rate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let battles = args.first().copied().unwrap_or(1_000_000);
    let models = args.get(1).copied().unwrap_or(50).max(2);
    let rounds = args.get(2).copied().unwrap_or(100);
    let threads = args.get(3).copied().unwrap_or(2);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let truth: Vec<f64> = (0..models)
        .map(|_| rng.random_range(600.0..1400.0))
        .collect();
    let mut set = BattleSet::new();
    let ids: Vec<u32> = (0..models)
        .map(|k| set.intern(&format!("model-{k}")))
        .collect();
    for _ in 0..battles {
        let a = rng.random_range(0..models);
        let b = (a + rng.random_range(1..models)) % models;
        let p = 1.0 / (1.0 + 10f64.powf((truth[b] - truth[a]) / 400.0));
        let u: f64 = rng.random();
        let outcome = if u < 0.1 {
            Outcome::Tie
        } else if u < 0.1 + 0.9 * p {
            Outcome::A
        } else {
            Outcome::B
        };
        set.push_ids(ids[a], ids[b], outcome).expect("distinct ids");
    }
    for ci in [CiMethod::Bootstrap, CiMethod::Sandwich] {
        let start = Instant::now();
        let ratings = rate(
            &set,
            &RatingOptions {
                ci,
                bootstrap_rounds: rounds,
                threads,
                ..RatingOptions::default()
            },
        )
        .expect("rate");
        println!(
            "{battles} battles, {models} models, {ci:?} ({} rounds), {threads} threads: {:.3} s (best {} at {:.1})",
            ratings.bootstrap_rounds,
            start.elapsed().as_secs_f64(),
            ratings.models[0].model,
            ratings.models[0].rating
        );
    }
}
