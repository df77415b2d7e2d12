//! Style control (FastChat's contextual Bradley–Terry): the logit of a battle
//! is `ln 10 · (r_a − r_b) + Σ_f β_f x_f`, where the covariates `x` are the
//! two answers' differences in length, Markdown headers, list items and bold
//! spans, each `(a − b) / (a + b + 1)` and then z-scored over the battles.
//! As in FastChat, an L2 penalty `0.25 · (Σ r² + Σ β²)` (its `reg = 0.5`)
//! covers the ratings and the coefficients alike. The ratings that remain
//! are what the models are worth with style held equal.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::battle::StyleCounts;
use crate::fit::{ln_sigmoid, project_centred, run_rounds, sigmoid};
use crate::linalg::{cholesky, cholesky_inverse, cholesky_solve, matmul};
use crate::rating::{CiMethod, RatingOptions};
use crate::{ArenaError, BattleSet};

/// The covariates' names, in order.
pub(crate) const FEATURES: [&str; 4] = ["length", "headers", "lists", "bold"];
const K: usize = FEATURES.len();
/// FastChat's penalty: `reg / 2` with `reg = 0.5`.
const PENALTY: f64 = 0.25;
const MAX_ITERATIONS: usize = 100;
const TOLERANCE: f64 = 1e-10;

pub(crate) struct FittedStyle {
    /// Natural-log strengths (`ln 10 · r`), centred.
    pub(crate) theta: Vec<f64>,
    /// Covariance of `theta` (sandwich), centred; empty unless asked for.
    pub(crate) covariance: Vec<f64>,
    pub(crate) coefficients: Vec<(String, f64)>,
    params: Vec<f64>,
}

fn counts(s: &StyleCounts) -> [f64; K] {
    [s.tokens, s.headers, s.lists, s.bold]
}

/// The z-scored covariates of every battle, `K` per battle.
fn features(set: &BattleSet) -> Vec<f64> {
    let n = set.len();
    let mut x = vec![0.0; n * K];
    for (b, style) in set.style.iter().enumerate() {
        let (a, c) = (counts(&style[0]), counts(&style[1]));
        for f in 0..K {
            x[b * K + f] = (a[f] - c[f]) / (a[f] + c[f] + 1.0);
        }
    }
    for f in 0..K {
        let mean = (0..n).map(|b| x[b * K + f]).sum::<f64>() / n as f64;
        let var = (0..n).map(|b| (x[b * K + f] - mean).powi(2)).sum::<f64>() / n as f64;
        let std = var.sqrt();
        for b in 0..n {
            x[b * K + f] = if std > 0.0 {
                (x[b * K + f] - mean) / std
            } else {
                0.0
            };
        }
    }
    x
}

struct Problem<'a> {
    set: &'a BattleSet,
    x: &'a [f64],
    /// Per-battle weight (bootstrap counts times pair weights).
    w: &'a [f64],
    m: usize,
}

const ALPHA: f64 = std::f64::consts::LN_10;

impl Problem<'_> {
    fn logit(&self, b: usize, params: &[f64]) -> f64 {
        let (i, j) = (self.set.a[b] as usize, self.set.b[b] as usize);
        let mut z = ALPHA * (params[i] - params[j]);
        for f in 0..K {
            z += params[self.m + f] * self.x[b * K + f];
        }
        z
    }

    fn objective(&self, params: &[f64]) -> f64 {
        let mut f = PENALTY * params.iter().map(|p| p * p).sum::<f64>();
        for b in 0..self.set.len() {
            let w = self.w[b];
            if w == 0.0 {
                continue;
            }
            let y = self.set.outcome[b].score_a();
            let z = self.logit(b, params);
            f -= w * (y * ln_sigmoid(z) + (1.0 - y) * ln_sigmoid(-z));
        }
        f
    }

    /// The Hessian (`A`), the gradient, and, when asked, `G` (the sum of the
    /// battles' squared scores) — all of the objective, `(m + K)²` row-major.
    fn derivatives(&self, params: &[f64], with_g: bool) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let n = self.m + K;
        let mut a = vec![0.0; n * n];
        let mut g = if with_g { vec![0.0; n * n] } else { Vec::new() };
        let mut gradient: Vec<f64> = params.iter().map(|p| 2.0 * PENALTY * p).collect();
        let mut u_index = [0usize; 2 + K];
        let mut u_value = [0.0f64; 2 + K];
        for b in 0..self.set.len() {
            let w = self.w[b];
            if w == 0.0 {
                continue;
            }
            let (i, j) = (self.set.a[b] as usize, self.set.b[b] as usize);
            let y = self.set.outcome[b].score_a();
            let p = sigmoid(self.logit(b, params));
            let residual = y - p;
            u_index[0] = i;
            u_value[0] = ALPHA;
            u_index[1] = j;
            u_value[1] = -ALPHA;
            for f in 0..K {
                u_index[2 + f] = self.m + f;
                u_value[2 + f] = self.x[b * K + f];
            }
            let h = w * p * (1.0 - p);
            let s = w * w * residual * residual;
            for r in 0..2 + K {
                gradient[u_index[r]] -= w * residual * u_value[r];
                for c in 0..2 + K {
                    let v = u_value[r] * u_value[c];
                    a[u_index[r] * n + u_index[c]] += h * v;
                    if with_g {
                        g[u_index[r] * n + u_index[c]] += s * v;
                    }
                }
            }
        }
        for d in 0..n {
            a[d * n + d] += 2.0 * PENALTY;
        }
        (a, gradient, g)
    }

    fn fit(&self, start: Option<&[f64]>) -> Result<Vec<f64>, ArenaError> {
        let n = self.m + K;
        let mut params = start.map_or_else(|| vec![0.0; n], <[f64]>::to_vec);
        let mut f = self.objective(&params);
        for _ in 0..MAX_ITERATIONS {
            let (mut a, gradient, _) = self.derivatives(&params, false);
            if !cholesky(&mut a, n) {
                return Err(ArenaError::Input(
                    "the style-control fit is singular".into(),
                ));
            }
            let mut step: Vec<f64> = gradient.iter().map(|g| -g).collect();
            cholesky_solve(&a, n, &mut step);
            let slope: f64 = step.iter().zip(&gradient).map(|(s, g)| s * g).sum();
            let mut t = 1.0;
            let mut next = params.clone();
            let mut accepted = false;
            for _ in 0..60 {
                for ((x, &p), &s) in next.iter_mut().zip(&params).zip(&step) {
                    *x = p + t * s;
                }
                let f_next = self.objective(&next);
                if f_next <= f + 1e-4 * t * slope || (f_next - f).abs() <= 1e-15 * f.abs().max(1.0)
                {
                    f = f_next;
                    accepted = true;
                    break;
                }
                t *= 0.5;
            }
            if !accepted {
                break;
            }
            let largest = params.iter().fold(0.0_f64, |acc, x| acc.max(x.abs()));
            let moved = step.iter().fold(0.0_f64, |acc, x| acc.max((t * x).abs()));
            params = next;
            if moved <= TOLERANCE * largest.max(1.0) {
                break;
            }
        }
        Ok(params)
    }
}

fn battle_weights(set: &BattleSet, reweight: bool, counts: Option<&[u32]>) -> Vec<f64> {
    let mut w: Vec<f64> = match counts {
        Some(c) => c.iter().map(|&k| f64::from(k)).collect(),
        None => vec![1.0; set.len()],
    };
    if reweight {
        let pair = |b: usize| (set.a[b].min(set.b[b]), set.a[b].max(set.b[b]));
        let mut pair_total = std::collections::HashMap::new();
        for (b, &weight) in w.iter().enumerate() {
            *pair_total.entry(pair(b)).or_insert(0.0) += weight;
        }
        for (b, weight) in w.iter_mut().enumerate() {
            let total: f64 = pair_total.get(&pair(b)).copied().unwrap_or(1.0);
            *weight /= total.max(50.0);
        }
    }
    w
}

fn strengths(params: &[f64], m: usize) -> Vec<f64> {
    let mut theta: Vec<f64> = params[..m].iter().map(|r| ALPHA * r).collect();
    let mean = theta.iter().sum::<f64>() / m as f64;
    theta.iter_mut().for_each(|t| *t -= mean);
    theta
}

pub(crate) fn fit_style(
    set: &BattleSet,
    options: &RatingOptions,
) -> Result<FittedStyle, ArenaError> {
    let m = set.models().len();
    let x = features(set);
    let w = battle_weights(set, options.reweight, None);
    let problem = Problem {
        set,
        x: &x,
        w: &w,
        m,
    };
    let params = problem.fit(None)?;
    let covariance = if options.ci == CiMethod::Sandwich {
        let n = m + K;
        let (mut a, _, g) = problem.derivatives(&params, true);
        if !cholesky(&mut a, n) {
            return Err(ArenaError::Input(
                "the style-control fit is singular".into(),
            ));
        }
        let inverse = cholesky_inverse(&a, n);
        let full = matmul(&matmul(&inverse, &g, n), &inverse, n);
        let mut block = vec![0.0; m * m];
        for r in 0..m {
            for c in 0..m {
                block[r * m + c] = ALPHA * ALPHA * full[r * n + c];
            }
        }
        project_centred(&block, m)
    } else {
        Vec::new()
    };
    Ok(FittedStyle {
        theta: strengths(&params, m),
        covariance,
        coefficients: FEATURES
            .iter()
            .zip(&params[m..])
            .map(|(name, &beta)| ((*name).to_owned(), beta))
            .collect(),
        params,
    })
}

/// Bootstrap replicates of the style-controlled strengths: each round
/// resamples the battles with replacement (FastChat resamples battles here,
/// not unique rows, as the covariates differ per battle).
pub(crate) fn bootstrap_style(
    set: &BattleSet,
    options: &RatingOptions,
    fitted: &FittedStyle,
) -> Result<Vec<Vec<f64>>, ArenaError> {
    let m = set.models().len();
    let n = set.len();
    let x = features(set);
    run_rounds(options.bootstrap_rounds, options.threads, |round| {
        let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
        rng.set_stream(round as u64);
        let mut counts = vec![0u32; n];
        for _ in 0..n {
            counts[rng.random_range(0..n as u64) as usize] += 1;
        }
        let w = battle_weights(set, options.reweight, Some(&counts));
        let problem = Problem {
            set,
            x: &x,
            w: &w,
            m,
        };
        Ok(strengths(&problem.fit(Some(&fitted.params))?, m))
    })
    .into_iter()
    .collect()
}
