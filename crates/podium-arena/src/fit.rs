//! Bradley–Terry by maximum likelihood on battles reduced to their unique
//! rows: for each unordered pair of models, how often the first won, the
//! second won, or they tied. The likelihood depends on nothing else, so a
//! million battles among fifty models become at most 3 · 1,225 numbers, and
//! a bootstrap round only redraws those counts.
//!
//! Parameters are natural-log strengths θ (`P(i beats j) = σ(θᵢ − θⱼ)`); a
//! rating is `1000 + θ · 400 / ln 10` after centring. The fit is Newton's
//! method with a backtracking line search on the log-likelihood plus a weak
//! ridge `λ/2 · Σθ²` (λ = 10⁻⁶): negligible whenever the maximum-likelihood
//! estimate exists, and it keeps ratings finite when it does not (a model
//! that won or lost every battle, or groups of models that never met).

use std::collections::HashMap;

use crate::BattleSet;
use crate::battle::Outcome;
use crate::linalg::{cholesky, cholesky_inverse, cholesky_solve, matmul};

/// The weak ridge on natural-log strengths.
pub(crate) const RIDGE: f64 = 1e-6;
/// Newton stops when no strength moves by more than this, relative to the
/// largest strength (and at least absolutely).
pub(crate) const TOLERANCE: f64 = 1e-10;
const MAX_ITERATIONS: usize = 200;

/// A row kind of the table: the pair's first model won, the second won, or a tie.
pub(crate) const FIRST: usize = 0;
pub(crate) const SECOND: usize = 1;
pub(crate) const TIE: usize = 2;

/// Battles as counts per (unordered pair, row kind).
#[derive(Debug, Clone)]
pub(crate) struct Table {
    pub(crate) models: usize,
    /// Pairs `(i, j)` with `i < j`, in order of first appearance.
    pub(crate) pairs: Vec<(u32, u32)>,
    /// `counts[3 · pair + kind]`.
    pub(crate) counts: Vec<f64>,
}

impl Table {
    pub(crate) fn of(set: &BattleSet) -> Table {
        let models = set.models().len();
        let mut pairs: Vec<(u32, u32)> = Vec::new();
        let mut counts: Vec<f64> = Vec::new();
        // A dense index for the usual few hundred models, a map beyond.
        let dense = models <= 2048;
        let mut dense_index: Vec<u32> = if dense {
            vec![u32::MAX; models * models]
        } else {
            Vec::new()
        };
        let mut map_index: HashMap<(u32, u32), u32> = HashMap::new();
        for ((&a, &b), &outcome) in set.a.iter().zip(&set.b).zip(&set.outcome) {
            let (i, j, kind) = canonical(a, b, outcome);
            let slot = if dense {
                &mut dense_index[i as usize * models + j as usize]
            } else {
                map_index.entry((i, j)).or_insert(u32::MAX)
            };
            if *slot == u32::MAX {
                *slot = pairs.len() as u32;
                pairs.push((i, j));
                counts.extend([0.0; 3]);
            }
            counts[*slot as usize * 3 + kind] += 1.0;
        }
        Table {
            models,
            pairs,
            counts,
        }
    }

    /// Battles per pair.
    pub(crate) fn pair_totals(&self, counts: &[f64]) -> Vec<f64> {
        counts.chunks_exact(3).map(|c| c[0] + c[1] + c[2]).collect()
    }
}

/// The pair `(min, max)` and the row kind of a battle.
pub(crate) fn canonical(a: u32, b: u32, outcome: Outcome) -> (u32, u32, usize) {
    let (i, j, swapped) = if a < b { (a, b, false) } else { (b, a, true) };
    let kind = match (outcome, swapped) {
        (Outcome::A, false) | (Outcome::B, true) => FIRST,
        (Outcome::B, false) | (Outcome::A, true) => SECOND,
        (Outcome::Tie | Outcome::BothBad, _) => TIE,
    };
    (i, j, kind)
}

/// Per-pair weights: 1, or LMArena's `1 / max(pair count, 50)`.
pub(crate) fn pair_weights(totals: &[f64], reweight: bool) -> Vec<f64> {
    totals
        .iter()
        .map(|&n| if reweight { 1.0 / n.max(50.0) } else { 1.0 })
        .collect()
}

/// The pair sums the likelihood needs: the first model's score (wins plus
/// half the ties) and the battles, both weighted.
pub(crate) fn pair_sums(counts: &[f64], weights: &[f64]) -> (Vec<f64>, Vec<f64>) {
    counts
        .chunks_exact(3)
        .zip(weights)
        .map(|(c, &w)| (w * (c[FIRST] + 0.5 * c[TIE]), w * (c[0] + c[1] + c[2])))
        .unzip()
}

/// `ln σ(x)`, stable for large |x|.
pub(crate) fn ln_sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        -(-x).exp().ln_1p()
    } else {
        x - x.exp().ln_1p()
    }
}

/// `σ(x) = 1 / (1 + e^(−x))`, without overflow for large |x|.
pub(crate) fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// The penalized negative log-likelihood.
fn objective(pairs: &[(u32, u32)], score: &[f64], total: &[f64], theta: &[f64]) -> f64 {
    let mut f = 0.5 * RIDGE * theta.iter().map(|t| t * t).sum::<f64>();
    for ((&(i, j), &s), &n) in pairs.iter().zip(score).zip(total) {
        if n == 0.0 {
            continue;
        }
        let d = theta[i as usize] - theta[j as usize];
        f -= s * ln_sigmoid(d) + (n - s) * ln_sigmoid(-d);
    }
    f
}

/// The curvature matrix `A = −∇² log L + λI` at θ (row-major, `m × m`) and
/// the gradient of the objective.
fn curvature(
    m: usize,
    pairs: &[(u32, u32)],
    score: &[f64],
    total: &[f64],
    theta: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    let mut a = vec![0.0; m * m];
    let mut gradient: Vec<f64> = theta.iter().map(|t| RIDGE * t).collect();
    for ((&(i, j), &s), &n) in pairs.iter().zip(score).zip(total) {
        if n == 0.0 {
            continue;
        }
        let (i, j) = (i as usize, j as usize);
        let p = sigmoid(theta[i] - theta[j]);
        let residual = s - n * p;
        gradient[i] -= residual;
        gradient[j] += residual;
        let h = n * p * (1.0 - p);
        a[i * m + i] += h;
        a[j * m + j] += h;
        a[i * m + j] -= h;
        a[j * m + i] -= h;
    }
    for i in 0..m {
        a[i * m + i] += RIDGE;
    }
    (a, gradient)
}

/// Adds `c · 11ᵀ` with `c` the mean diagonal: the likelihood ignores a
/// common shift of all strengths, so `A` alone is nearly singular along `1`;
/// the sum is well conditioned and, as the gradient sums to ~0 at centred θ,
/// gives the same step up to a shift that is projected away.
fn pin_shift(a: &mut [f64], m: usize) {
    let c = (0..m).map(|i| a[i * m + i]).sum::<f64>() / m as f64;
    let c = if c > 0.0 { c } else { 1.0 };
    a.iter_mut().for_each(|x| *x += c);
}

fn centre(theta: &mut [f64]) {
    let mean = theta.iter().sum::<f64>() / theta.len().max(1) as f64;
    theta.iter_mut().for_each(|t| *t -= mean);
}

/// The fitted strengths (centred) and the Newton iterations used.
pub(crate) fn fit(
    m: usize,
    pairs: &[(u32, u32)],
    score: &[f64],
    total: &[f64],
    start: Option<&[f64]>,
) -> (Vec<f64>, usize) {
    let mut theta = start.map_or_else(|| vec![0.0; m], <[f64]>::to_vec);
    centre(&mut theta);
    let mut f = objective(pairs, score, total, &theta);
    for iteration in 1..=MAX_ITERATIONS {
        let (mut a, gradient) = curvature(m, pairs, score, total, &theta);
        pin_shift(&mut a, m);
        if !cholesky(&mut a, m) {
            return (theta, iteration);
        }
        let mut step: Vec<f64> = gradient.iter().map(|g| -g).collect();
        cholesky_solve(&a, m, &mut step);
        centre(&mut step);
        let slope: f64 = step.iter().zip(&gradient).map(|(s, g)| s * g).sum();
        let mut t = 1.0;
        let mut next = theta.clone();
        let mut accepted = false;
        for _ in 0..60 {
            for ((n, &th), &s) in next.iter_mut().zip(&theta).zip(&step) {
                *n = th + t * s;
            }
            let f_next = objective(pairs, score, total, &next);
            if f_next <= f + 1e-4 * t * slope || (f_next - f).abs() <= 1e-15 * f.abs().max(1.0) {
                f = f_next;
                accepted = true;
                break;
            }
            t *= 0.5;
        }
        if !accepted {
            return (theta, iteration);
        }
        let largest = theta.iter().fold(0.0_f64, |acc, x| acc.max(x.abs()));
        let moved = step.iter().fold(0.0_f64, |acc, x| acc.max((t * x).abs()));
        theta = next;
        if moved <= TOLERANCE * largest.max(1.0) {
            return (theta, iteration);
        }
    }
    (theta, MAX_ITERATIONS)
}

/// `round(r)` for every bootstrap round `r` in `0..rounds`, spread over up to
/// `threads` threads in contiguous chunks, results in round order. Each round
/// seeds its own generator from its index, so the results do not depend on
/// the thread count.
pub(crate) fn run_rounds<T: Send>(
    rounds: usize,
    threads: usize,
    round: impl Fn(usize) -> T + Sync,
) -> Vec<T> {
    if rounds == 0 {
        return Vec::new();
    }
    let threads = threads.clamp(1, rounds);
    if threads == 1 {
        return (0..rounds).map(&round).collect();
    }
    let chunk = rounds.div_ceil(threads);
    let round = &round;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let range = (t * chunk).min(rounds)..((t + 1) * chunk).min(rounds);
                scope.spawn(move || range.map(round).collect::<Vec<T>>())
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// The sandwich covariance `A⁻¹ G A⁻¹` of the centred strengths, with `G`
/// the sum over battles of the outer products of each battle's score
/// (gradient) and `A` the curvature. Row-major `m × m`.
pub(crate) fn sandwich(table: &Table, weights: &[f64], theta: &[f64]) -> Vec<f64> {
    let m = table.models;
    let (score, total) = pair_sums(&table.counts, weights);
    let (mut a, _) = curvature(m, &table.pairs, &score, &total, theta);
    pin_shift(&mut a, m);
    let mut g = vec![0.0; m * m];
    for ((&(i, j), counts), &w) in table
        .pairs
        .iter()
        .zip(table.counts.chunks_exact(3))
        .zip(weights)
    {
        let (i, j) = (i as usize, j as usize);
        let p = sigmoid(theta[i] - theta[j]);
        let spread = w
            * w
            * (counts[FIRST] * (1.0 - p).powi(2)
                + counts[SECOND] * p.powi(2)
                + counts[TIE] * (0.5 - p).powi(2));
        g[i * m + i] += spread;
        g[j * m + j] += spread;
        g[i * m + j] -= spread;
        g[j * m + i] -= spread;
    }
    if !cholesky(&mut a, m) {
        return vec![f64::NAN; m * m];
    }
    let inverse = cholesky_inverse(&a, m);
    let covariance = matmul(&matmul(&inverse, &g, m), &inverse, m);
    // Centre: P C P with P = I − 11ᵀ/m (the ratings are reported centred).
    project_centred(&covariance, m)
}

pub(crate) fn project_centred(c: &[f64], m: usize) -> Vec<f64> {
    let mf = m as f64;
    let row_means: Vec<f64> = (0..m)
        .map(|i| (0..m).map(|j| c[i * m + j]).sum::<f64>() / mf)
        .collect();
    let col_means: Vec<f64> = (0..m)
        .map(|j| (0..m).map(|i| c[i * m + j]).sum::<f64>() / mf)
        .collect();
    let all = row_means.iter().sum::<f64>() / mf;
    let mut out = vec![0.0; m * m];
    for i in 0..m {
        for j in 0..m {
            out[i * m + j] = c[i * m + j] - row_means[i] - col_means[j] + all;
        }
    }
    out
}

/// Connected groups of models (by having battled): more than one means the
/// groups' ratings are not comparable with each other.
pub(crate) fn components(m: usize, pairs: &[(u32, u32)], totals: &[f64]) -> Vec<Vec<usize>> {
    let mut parent: Vec<usize> = (0..m).collect();
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    for (&(i, j), &n) in pairs.iter().zip(totals) {
        if n > 0.0 {
            let (ri, rj) = (find(&mut parent, i as usize), find(&mut parent, j as usize));
            if ri != rj {
                parent[ri] = rj;
            }
        }
    }
    let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
    for x in 0..m {
        let root = find(&mut parent, x);
        groups.entry(root).or_default().push(x);
    }
    let mut groups: Vec<Vec<usize>> = groups.into_values().collect();
    groups.sort_by_key(|g| g[0]);
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_models_fit_their_log_odds() {
        // 30 wins, 10 losses, 20 ties for model 0: score 40 of 60.
        let mut set = BattleSet::new();
        for _ in 0..30 {
            set.push("x", "y", Outcome::A).unwrap();
        }
        for _ in 0..10 {
            set.push("y", "x", Outcome::A).unwrap();
        }
        for _ in 0..20 {
            set.push("x", "y", Outcome::Tie).unwrap();
        }
        let table = Table::of(&set);
        assert_eq!(table.pairs, vec![(0, 1)]);
        assert_eq!(table.counts, vec![30.0, 10.0, 20.0]);
        let weights = pair_weights(&table.pair_totals(&table.counts), false);
        let (s, n) = pair_sums(&table.counts, &weights);
        let (theta, _) = fit(2, &table.pairs, &s, &n, None);
        // σ(d) = 40/60 → d = ln 2.
        assert!((theta[0] - theta[1] - 2f64.ln()).abs() < 1e-6, "{theta:?}");
        assert!((theta[0] + theta[1]).abs() < 1e-12);
    }

    #[test]
    fn a_perfect_record_stays_finite_and_disconnected_groups_are_found() {
        let mut set = BattleSet::new();
        set.push("x", "y", Outcome::A).unwrap();
        set.push("z", "w", Outcome::Tie).unwrap();
        let table = Table::of(&set);
        let weights = pair_weights(&table.pair_totals(&table.counts), false);
        let (s, n) = pair_sums(&table.counts, &weights);
        let (theta, _) = fit(4, &table.pairs, &s, &n, None);
        assert!(theta.iter().all(|t| t.is_finite()));
        assert!(theta[0] > theta[1] + 5.0);
        let groups = components(4, &table.pairs, &table.pair_totals(&table.counts));
        assert_eq!(groups, vec![vec![0, 1], vec![2, 3]]);
    }
}
