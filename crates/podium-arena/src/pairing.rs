//! Which two models answer the next arena prompt. Pure and seeded: the same
//! candidates and seed give the same pair.
//!
//! A pair is drawn with probability proportional to its weight
//! `1/√(1 + n_a) · 1/√(1 + n_b) · closeness`, where `n` is a model's battle
//! count and `closeness = exp(−|R_a − R_b| / 200)` when both models are
//! rated (1 otherwise). Models with few battles come up more often (their
//! intervals are the widest), and among rated models close ones meet more
//! often (their order is the least certain); every pair keeps a chance.
//! The drawn pair's sides are then swapped with probability ½, so position
//! says nothing about a model.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A model that can be paired: its battle count and rating so far.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub model: String,
    pub battles: u64,
    /// The Bradley–Terry rating, when the model has one.
    pub rating: Option<f64>,
}

/// Ratings this far apart make a pair `e` times less likely than equal ones.
pub const CLOSENESS_SCALE: f64 = 200.0;

/// The weight of pairing `a` with `b` (see the module's documentation).
pub fn pair_weight(a: &Candidate, b: &Candidate) -> f64 {
    let few = 1.0 / ((1.0 + a.battles as f64) * (1.0 + b.battles as f64)).sqrt();
    let closeness = match (a.rating, b.rating) {
        (Some(ra), Some(rb)) if ra.is_finite() && rb.is_finite() => {
            (-(ra - rb).abs() / CLOSENESS_SCALE).exp()
        }
        _ => 1.0,
    };
    few * closeness
}

/// Draws the indices `(a, b)` of two distinct candidates, `a` shown on the
/// left; `None` with fewer than two candidates.
pub fn pick_pair(candidates: &[Candidate], seed: u64) -> Option<(usize, usize)> {
    if candidates.len() < 2 {
        return None;
    }
    let mut pairs = Vec::with_capacity(candidates.len() * (candidates.len() - 1) / 2);
    let mut total = 0.0;
    for i in 0..candidates.len() {
        for j in i + 1..candidates.len() {
            let weight = pair_weight(&candidates[i], &candidates[j]);
            // A weight that underflowed still keeps the pair possible.
            let weight = if weight.is_finite() && weight > 0.0 {
                weight
            } else {
                f64::MIN_POSITIVE
            };
            total += weight;
            pairs.push((i, j, total));
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let target = rng.random::<f64>() * total;
    let index = pairs.partition_point(|&(_, _, cumulative)| cumulative <= target);
    let (i, j, _) = pairs[index.min(pairs.len() - 1)];
    Some(if rng.random::<bool>() { (j, i) } else { (i, j) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(model: &str, battles: u64, rating: Option<f64>) -> Candidate {
        Candidate {
            model: model.into(),
            battles,
            rating,
        }
    }

    /// How often each unordered pair comes up over `rounds` seeds.
    fn counts(candidates: &[Candidate], rounds: u64) -> Vec<Vec<u64>> {
        let n = candidates.len();
        let mut counts = vec![vec![0; n]; n];
        for seed in 0..rounds {
            let (a, b) = pick_pair(candidates, seed).unwrap();
            assert_ne!(a, b);
            counts[a.min(b)][a.max(b)] += 1;
        }
        counts
    }

    #[test]
    fn fewer_than_two_models_give_no_pair() {
        assert_eq!(pick_pair(&[], 1), None);
        assert_eq!(pick_pair(&[candidate("x", 0, None)], 1), None);
    }

    #[test]
    fn the_same_seed_gives_the_same_pair() {
        let models: Vec<_> = (0..5)
            .map(|i| candidate(&format!("m{i}"), i * 10, None))
            .collect();
        for seed in 0..50 {
            assert_eq!(pick_pair(&models, seed), pick_pair(&models, seed));
        }
    }

    #[test]
    fn both_sides_are_equally_likely() {
        let models = [candidate("x", 0, None), candidate("y", 0, None)];
        let left_x = (0..4000)
            .filter(|&seed| pick_pair(&models, seed) == Some((0, 1)))
            .count();
        assert!((1800..2200).contains(&left_x), "{left_x}");
    }

    #[test]
    fn models_with_few_battles_come_up_more_often() {
        let models = [
            candidate("new", 0, None),
            candidate("old1", 400, None),
            candidate("old2", 400, None),
        ];
        let c = counts(&models, 6000);
        let with_new = c[0][1] + c[0][2];
        let without = c[1][2];
        assert!(with_new > 20 * without.max(1), "{c:?}");
    }

    #[test]
    fn close_ratings_meet_more_often() {
        let models = [
            candidate("a", 100, Some(1000.0)),
            candidate("b", 100, Some(1010.0)),
            candidate("c", 100, Some(1600.0)),
        ];
        let c = counts(&models, 6000);
        assert!(c[0][1] > 5 * (c[0][2] + c[1][2]), "{c:?}");
        assert!(c[0][2] > 0 || c[1][2] > 0, "far pairs keep a chance: {c:?}");
    }

    #[test]
    fn weights_follow_the_documented_formula() {
        let a = candidate("a", 3, Some(1000.0));
        let b = candidate("b", 8, Some(1200.0));
        let expected = 1.0 / (4.0f64 * 9.0).sqrt() * (-1.0f64).exp();
        assert!((pair_weight(&a, &b) - expected).abs() < 1e-12);
        let unrated = candidate("c", 0, None);
        assert!((pair_weight(&a, &unrated) - 0.5).abs() < 1e-12);
    }
}
