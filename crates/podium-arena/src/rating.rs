//! Ratings from battles (METRICS.md, "Arena ratings").

use std::f64::consts::LN_10;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Binomial, Distribution};
use serde::{Deserialize, Serialize};

use crate::fit::{self, FIRST, SECOND, TIE, Table};
use crate::{ArenaError, BattleSet, style};

/// How the 95% interval of a rating is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CiMethod {
    /// Percentile bootstrap: multinomial resampling of the battles, seeded.
    Bootstrap,
    /// The sandwich (robust, CLT) covariance `H⁻¹ G H⁻¹` of the fit.
    Sandwich,
}

/// What [`rate`] computes and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RatingOptions {
    pub ci: CiMethod,
    /// Bootstrap rounds (1000 by default; 0 turns the bootstrap off).
    pub bootstrap_rounds: usize,
    pub seed: u64,
    /// Shift ratings so this model keeps this rating; else the mean is 1000.
    pub anchor: Option<(String, f64)>,
    /// LMArena's pair reweighting: each battle weighs `1 / max(pair count, 50)`.
    pub reweight: bool,
    /// Fit style covariates beside the ratings (needs style counts on every battle).
    pub style_control: bool,
    /// Worker threads for the bootstrap (1 = the calling thread only).
    pub threads: usize,
}

impl Default for RatingOptions {
    fn default() -> RatingOptions {
        RatingOptions {
            ci: CiMethod::Bootstrap,
            bootstrap_rounds: 1000,
            seed: 0,
            anchor: None,
            reweight: false,
            style_control: false,
            threads: 1,
        }
    }
}

/// One model's line of the arena board.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRating {
    pub model: String,
    /// Bradley–Terry rating (400 points per factor of 10 in odds).
    pub rating: f64,
    /// The 95% interval's bounds.
    pub lower: f64,
    pub upper: f64,
    /// 1 + the number of models whose lower bound is above this upper bound.
    pub rank_ub: u32,
    /// Online Elo (K = 4, start 1000), battles in the given order.
    pub elo: f64,
    /// The mean, over the opponents it met, of its share of points against each (ties ½).
    pub average_win_rate: f64,
    pub battles: u64,
    pub wins: u64,
    pub losses: u64,
    pub ties: u64,
}

/// One pair of models (`model_a` < `model_b` by board order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairStat {
    pub model_a: String,
    pub model_b: String,
    pub battles: u64,
    /// The share of decided battles (not ties) that `model_a` won.
    pub observed_win_rate: Option<f64>,
    /// `P(model_a beats model_b)` from the ratings.
    pub predicted_win_rate: f64,
}

/// The arena board: ratings with intervals, sorted best first, and the pairs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ratings {
    pub models: Vec<ModelRating>,
    pub pairs: Vec<PairStat>,
    pub n_battles: u64,
    pub ci: CiMethod,
    pub bootstrap_rounds: usize,
    /// With style control: each covariate's fitted coefficient, by name.
    pub style_coefficients: Option<Vec<(String, f64)>>,
    /// What a reader must know to trust these numbers (groups of models that
    /// never met, models that won or lost every battle).
    pub warnings: Vec<String>,
}

/// Rating points per natural-log unit of strength: 400 / ln 10.
pub const POINTS_PER_NAT: f64 = 400.0 / LN_10;
/// The mean rating when no anchor is given.
pub const MEAN_RATING: f64 = 1000.0;
/// Online Elo's K and starting rating (FastChat).
pub const ELO_K: f64 = 4.0;
pub const ELO_START: f64 = 1000.0;
/// The most bootstrap rounds one call may ask for.
pub const MAX_BOOTSTRAP_ROUNDS: usize = 100_000;
/// The two-sided 95% normal quantile, for the sandwich interval.
const Z95: f64 = 1.959_963_984_540_054;

/// Computes the arena board of `battles` (METRICS.md, "Arena ratings").
pub fn rate(battles: &BattleSet, options: &RatingOptions) -> Result<Ratings, ArenaError> {
    if battles.is_empty() {
        return Err(ArenaError::Input("no battles to rate".into()));
    }
    if options.bootstrap_rounds > MAX_BOOTSTRAP_ROUNDS {
        return Err(ArenaError::Input(format!(
            "{} bootstrap rounds asked; at most {MAX_BOOTSTRAP_ROUNDS}",
            options.bootstrap_rounds
        )));
    }
    let models = battles.models();
    let m = models.len();
    let anchor = match &options.anchor {
        None => None,
        Some((name, value)) => {
            if !value.is_finite() {
                return Err(ArenaError::Input(format!(
                    "anchor rating for `{name}` is not a finite number"
                )));
            }
            let index = models
                .iter()
                .position(|model| model == name)
                .ok_or_else(|| ArenaError::UnknownAnchor(name.clone()))?;
            Some((index, *value))
        }
    };
    let place = |theta: &[f64]| -> Vec<f64> { to_ratings(theta, anchor) };

    let table = Table::of(battles);
    let totals = table.pair_totals(&table.counts);
    let weights = fit::pair_weights(&totals, options.reweight);
    let (score, total) = fit::pair_sums(&table.counts, &weights);
    let mut warnings = Vec::new();
    let groups = fit::components(m, &table.pairs, &totals);
    if groups.len() > 1 {
        let listed: Vec<String> = groups
            .iter()
            .map(|g| {
                let names: Vec<&str> = g.iter().take(4).map(|&x| models[x].as_str()).collect();
                let more = if g.len() > 4 {
                    format!(" and {} more", g.len() - 4)
                } else {
                    String::new()
                };
                format!("{{{}{more}}}", names.join(", "))
            })
            .collect();
        warnings.push(format!(
            "the models form {} groups that never battled each other: {}; ratings compare only within a group",
            groups.len(),
            listed.join(" · ")
        ));
    }

    let (style_coefficients, theta, intervals) = if options.style_control {
        if !battles.has_style() {
            return Err(ArenaError::Input(
                "style control needs style counts (answer text or conv_metadata) on every battle"
                    .into(),
            ));
        }
        let fitted = style::fit_style(battles, options)?;
        let intervals = match options.ci {
            CiMethod::Sandwich => sandwich_bounds(&fitted.theta, &fitted.covariance, anchor),
            CiMethod::Bootstrap => {
                let replicates = style::bootstrap_style(battles, options, &fitted)?;
                percentile_bounds(&replicates, m, &place)
            }
        };
        (Some(fitted.coefficients), fitted.theta, intervals)
    } else {
        let (theta, _) = fit::fit(m, &table.pairs, &score, &total, None);
        let intervals = match options.ci {
            CiMethod::Sandwich => {
                let covariance = fit::sandwich(&table, &weights, &theta);
                sandwich_bounds(&theta, &covariance, anchor)
            }
            CiMethod::Bootstrap => {
                let replicates = bootstrap(&table, options, &theta);
                percentile_bounds(&replicates, m, &place)
            }
        };
        (None, theta, intervals)
    };
    let ratings = place(&theta);

    // Per-model records, online Elo and average win rate.
    let mut wins = vec![0u64; m];
    let mut losses = vec![0u64; m];
    let mut ties = vec![0u64; m];
    for (&(i, j), c) in table.pairs.iter().zip(table.counts.chunks_exact(3)) {
        let (i, j) = (i as usize, j as usize);
        wins[i] += c[FIRST] as u64;
        losses[j] += c[FIRST] as u64;
        wins[j] += c[SECOND] as u64;
        losses[i] += c[SECOND] as u64;
        ties[i] += c[TIE] as u64;
        ties[j] += c[TIE] as u64;
    }
    for x in 0..m {
        let battled = wins[x] + losses[x] + ties[x];
        if battled > 0 && wins[x] == battled {
            warnings.push(format!(
                "`{}` won all of its {battled} battles: its rating is a lower bound (kept finite by a weak prior)",
                models[x]
            ));
        } else if battled > 0 && losses[x] == battled {
            warnings.push(format!(
                "`{}` lost all of its {battled} battles: its rating is an upper bound (kept finite by a weak prior)",
                models[x]
            ));
        }
    }
    let elo = online_elo(battles);
    let average_win_rate = average_win_rates(&table);

    let mut rows: Vec<ModelRating> = (0..m)
        .map(|x| ModelRating {
            model: models[x].clone(),
            rating: ratings[x],
            lower: intervals[x].0,
            upper: intervals[x].1,
            rank_ub: 0,
            elo: elo[x],
            average_win_rate: average_win_rate[x],
            battles: wins[x] + losses[x] + ties[x],
            wins: wins[x],
            losses: losses[x],
            ties: ties[x],
        })
        .collect();
    for x in 0..m {
        let above = (0..m).filter(|&y| rows[y].lower > rows[x].upper).count();
        rows[x].rank_ub = 1 + above as u32;
    }
    let pairs = pair_stats(&table, &ratings, models);
    rows.sort_by(|a, b| {
        b.rating
            .total_cmp(&a.rating)
            .then_with(|| a.model.cmp(&b.model))
    });
    Ok(Ratings {
        models: rows,
        pairs,
        n_battles: battles.len() as u64,
        ci: options.ci,
        bootstrap_rounds: match options.ci {
            CiMethod::Bootstrap => options.bootstrap_rounds,
            CiMethod::Sandwich => 0,
        },
        style_coefficients,
        warnings,
    })
}

/// Strengths to ratings: 400 points per factor of 10 in odds, then the mean
/// at 1000 or the anchor at its rating.
pub(crate) fn to_ratings(theta: &[f64], anchor: Option<(usize, f64)>) -> Vec<f64> {
    let points: Vec<f64> = theta.iter().map(|t| t * POINTS_PER_NAT).collect();
    let shift = match anchor {
        Some((index, value)) => value - points[index],
        None => MEAN_RATING - points.iter().sum::<f64>() / points.len().max(1) as f64,
    };
    points.iter().map(|p| p + shift).collect()
}

/// Bootstrap replicates of the strengths: each round redraws the counts of
/// the unique rows from a multinomial with the observed shares (as FastChat
/// does), then refits. Round `r` draws from its own ChaCha stream of `seed`,
/// so the replicates are the same for any number of threads.
fn bootstrap(table: &Table, options: &RatingOptions, start: &[f64]) -> Vec<Vec<f64>> {
    let n_battles: f64 = table.counts.iter().sum();
    fit::run_rounds(options.bootstrap_rounds, options.threads, |round| {
        let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
        rng.set_stream(round as u64);
        let counts = multinomial(&table.counts, n_battles as u64, &mut rng);
        let totals = table.pair_totals(&counts);
        let weights = fit::pair_weights(&totals, options.reweight);
        let (score, total) = fit::pair_sums(&counts, &weights);
        fit::fit(table.models, &table.pairs, &score, &total, Some(start)).0
    })
}

/// `n` draws over categories with shares proportional to `weights`, by
/// conditional binomials (exact; one binomial per category).
pub(crate) fn multinomial(weights: &[f64], n: u64, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let mut remaining_mass: f64 = weights.iter().sum();
    let mut remaining = n;
    let mut out = vec![0.0; weights.len()];
    for (slot, &w) in out.iter_mut().zip(weights) {
        if remaining == 0 || w <= 0.0 {
            remaining_mass -= w.max(0.0);
            continue;
        }
        let p = if remaining_mass > 0.0 {
            (w / remaining_mass).clamp(0.0, 1.0)
        } else {
            1.0
        };
        let drawn = Binomial::new(remaining, p).map_or(0, |b| b.sample(rng));
        *slot = drawn as f64;
        remaining -= drawn;
        remaining_mass -= w;
    }
    out
}

/// 2.5th and 97.5th percentiles of each model's replicate ratings; the
/// point itself when there are no replicates.
fn percentile_bounds(
    replicates: &[Vec<f64>],
    m: usize,
    place: &dyn Fn(&[f64]) -> Vec<f64>,
) -> Vec<(f64, f64)> {
    if replicates.is_empty() {
        return vec![(f64::NAN, f64::NAN); m];
    }
    let placed: Vec<Vec<f64>> = replicates.iter().map(|theta| place(theta)).collect();
    (0..m)
        .map(|x| {
            let mut column: Vec<f64> = placed.iter().map(|r| r[x]).collect();
            column.sort_by(f64::total_cmp);
            let lower = podium_stats::percentile_of_sorted(&column, 2.5).unwrap_or(f64::NAN);
            let upper = podium_stats::percentile_of_sorted(&column, 97.5).unwrap_or(f64::NAN);
            (lower, upper)
        })
        .collect()
}

/// Rating ± 1.96 standard errors from the covariance of the centred
/// strengths (of the difference to the anchor, with an anchor).
fn sandwich_bounds(
    theta: &[f64],
    covariance: &[f64],
    anchor: Option<(usize, f64)>,
) -> Vec<(f64, f64)> {
    let m = theta.len();
    let ratings = to_ratings(theta, anchor);
    (0..m)
        .map(|x| {
            let variance = match anchor {
                None => covariance[x * m + x],
                Some((k, _)) => {
                    covariance[x * m + x] + covariance[k * m + k] - 2.0 * covariance[x * m + k]
                }
            };
            let half = Z95 * variance.max(0.0).sqrt() * POINTS_PER_NAT;
            (ratings[x] - half, ratings[x] + half)
        })
        .collect()
}

/// Online Elo in the battles' order (K = 4, start 1000, ties ½ each).
pub fn online_elo(battles: &BattleSet) -> Vec<f64> {
    let mut ratings = vec![ELO_START; battles.models().len()];
    for ((&a, &b), &outcome) in battles.a.iter().zip(&battles.b).zip(&battles.outcome) {
        let (a, b) = (a as usize, b as usize);
        let expected = 1.0 / (1.0 + 10f64.powf((ratings[b] - ratings[a]) / 400.0));
        let update = ELO_K * (outcome.score_a() - expected);
        ratings[a] += update;
        ratings[b] -= update;
    }
    ratings
}

/// For each model, the mean over the opponents it met of its share of the
/// points against that opponent (a win 1, a tie ½), as evalica computes it.
fn average_win_rates(table: &Table) -> Vec<f64> {
    let m = table.models;
    let mut sums = vec![0.0; m];
    let mut met = vec![0u32; m];
    for (&(i, j), c) in table.pairs.iter().zip(table.counts.chunks_exact(3)) {
        let n = c[0] + c[1] + c[2];
        if n == 0.0 {
            continue;
        }
        let (i, j) = (i as usize, j as usize);
        let share_i = (c[FIRST] + 0.5 * c[TIE]) / n;
        sums[i] += share_i;
        sums[j] += 1.0 - share_i;
        met[i] += 1;
        met[j] += 1;
    }
    sums.iter()
        .zip(&met)
        .map(|(&s, &k)| if k > 0 { s / f64::from(k) } else { 0.0 })
        .collect()
}

fn pair_stats(table: &Table, ratings: &[f64], models: &[String]) -> Vec<PairStat> {
    let mut stats: Vec<PairStat> = table
        .pairs
        .iter()
        .zip(table.counts.chunks_exact(3))
        .map(|(&(i, j), c)| {
            let (i, j) = (i as usize, j as usize);
            // The better-rated model first.
            let (first, second, won, lost) = if ratings[i] >= ratings[j] {
                (i, j, c[FIRST], c[SECOND])
            } else {
                (j, i, c[SECOND], c[FIRST])
            };
            let decided = won + lost;
            PairStat {
                model_a: models[first].clone(),
                model_b: models[second].clone(),
                battles: (c[0] + c[1] + c[2]) as u64,
                observed_win_rate: (decided > 0.0).then(|| won / decided),
                predicted_win_rate: predicted_win_rate(ratings[first], ratings[second]),
            }
        })
        .collect();
    stats.sort_by(|a, b| {
        b.battles
            .cmp(&a.battles)
            .then_with(|| a.model_a.cmp(&b.model_a))
    });
    stats
}

/// `P(a beats b) = 1 / (1 + 10^((R_b − R_a) / 400))`.
pub fn predicted_win_rate(rating_a: f64, rating_b: f64) -> f64 {
    1.0 / (1.0 + 10f64.powf((rating_b - rating_a) / 400.0))
}

/// Each model's rank (UB) change from `overall` to `category` (positive:
/// ranked better in the category), for models on both boards.
pub fn rank_changes(overall: &Ratings, category: &Ratings) -> Vec<(String, i64)> {
    category
        .models
        .iter()
        .filter_map(|row| {
            let before = overall.models.iter().find(|o| o.model == row.model)?;
            Some((
                row.model.clone(),
                i64::from(before.rank_ub) - i64::from(row.rank_ub),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use rand::Rng;

    use super::*;
    use crate::battle::{Outcome, StyleCounts};

    fn three_models(seed: u64, n: usize) -> BattleSet {
        // strong > middle > weak, with ties.
        let truth = [("strong", 1200.0), ("middle", 1000.0), ("weak", 800.0)];
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut set = BattleSet::new();
        for _ in 0..n {
            let a = rng.random_range(0..3);
            let b = (a + rng.random_range(1..3)) % 3;
            let p = predicted_win_rate(truth[a].1, truth[b].1);
            let u: f64 = rng.random();
            let outcome = if u < 0.1 {
                Outcome::Tie
            } else if u < 0.1 + 0.9 * p {
                Outcome::A
            } else {
                Outcome::B
            };
            set.push(truth[a].0, truth[b].0, outcome).unwrap();
        }
        set
    }

    #[test]
    fn ratings_are_ordered_centred_and_ranked() {
        let set = three_models(1, 3000);
        let ratings = rate(
            &set,
            &RatingOptions {
                bootstrap_rounds: 100,
                ..Default::default()
            },
        )
        .unwrap();
        let names: Vec<&str> = ratings.models.iter().map(|m| m.model.as_str()).collect();
        assert_eq!(names, ["strong", "middle", "weak"]);
        let mean = ratings.models.iter().map(|m| m.rating).sum::<f64>() / 3.0;
        assert!((mean - 1000.0).abs() < 1e-9);
        assert_eq!(
            ratings.models.iter().map(|m| m.rank_ub).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        for m in &ratings.models {
            assert!(m.lower < m.rating && m.rating < m.upper, "{m:?}");
            assert_eq!(m.battles, m.wins + m.losses + m.ties);
        }
        assert_eq!(ratings.pairs.len(), 3);
        assert!(ratings.warnings.is_empty());
        assert_eq!(ratings.n_battles, 3000);
    }

    #[test]
    fn the_bootstrap_is_seeded_and_independent_of_threads() {
        let set = three_models(2, 500);
        let options = RatingOptions {
            bootstrap_rounds: 50,
            seed: 9,
            ..Default::default()
        };
        let one = rate(&set, &options).unwrap();
        let four = rate(
            &set,
            &RatingOptions {
                threads: 4,
                ..options.clone()
            },
        )
        .unwrap();
        assert_eq!(one, four);
        let other = rate(
            &set,
            &RatingOptions {
                seed: 10,
                ..options
            },
        )
        .unwrap();
        assert_ne!(one.models[0].lower, other.models[0].lower);
    }

    #[test]
    fn an_anchor_pins_its_model_and_shifts_the_rest() {
        let set = three_models(3, 2000);
        let plain = rate(
            &set,
            &RatingOptions {
                bootstrap_rounds: 0,
                ..Default::default()
            },
        )
        .unwrap();
        let anchored = rate(
            &set,
            &RatingOptions {
                bootstrap_rounds: 0,
                anchor: Some(("weak".into(), 1114.0)),
                ..Default::default()
            },
        )
        .unwrap();
        let weak = |r: &Ratings| r.models.iter().find(|m| m.model == "weak").unwrap().rating;
        assert!((weak(&anchored) - 1114.0).abs() < 1e-9);
        let shift = weak(&anchored) - weak(&plain);
        for (a, p) in anchored.models.iter().zip(&plain.models) {
            assert!((a.rating - p.rating - shift).abs() < 1e-9);
        }
        let err = rate(
            &set,
            &RatingOptions {
                anchor: Some(("nobody".into(), 1.0)),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(err, ArenaError::UnknownAnchor("nobody".into()));
    }

    #[test]
    fn sandwich_and_bootstrap_intervals_agree_in_width() {
        let set = three_models(4, 5000);
        let boot = rate(
            &set,
            &RatingOptions {
                bootstrap_rounds: 1000,
                ..Default::default()
            },
        )
        .unwrap();
        let sand = rate(
            &set,
            &RatingOptions {
                ci: CiMethod::Sandwich,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(sand.bootstrap_rounds, 0);
        for (b, s) in boot.models.iter().zip(&sand.models) {
            assert_eq!(b.model, s.model);
            assert!((b.rating - s.rating).abs() < 1e-9);
            let (wb, ws) = (b.upper - b.lower, s.upper - s.lower);
            assert!(
                (wb / ws - 1.0).abs() < 0.15,
                "{}: bootstrap {wb}, sandwich {ws}",
                b.model
            );
        }
    }

    #[test]
    fn reweighting_evens_out_pairs_that_battled_more() {
        // x–y battled 1000 times (x wins 3 in 4), y–z 60 times (even), x–z 60 (even):
        // the x–y pair dominates the plain fit; reweighted, all three pairs count alike.
        let mut set = BattleSet::new();
        for k in 0..1000 {
            set.push("x", "y", if k % 4 == 0 { Outcome::B } else { Outcome::A })
                .unwrap();
        }
        for k in 0..60 {
            set.push("y", "z", if k % 2 == 0 { Outcome::A } else { Outcome::B })
                .unwrap();
            set.push("x", "z", if k % 2 == 0 { Outcome::A } else { Outcome::B })
                .unwrap();
        }
        let get =
            |r: &Ratings, name: &str| r.models.iter().find(|m| m.model == name).unwrap().rating;
        let plain = rate(
            &set,
            &RatingOptions {
                bootstrap_rounds: 0,
                ..Default::default()
            },
        )
        .unwrap();
        let even = rate(
            &set,
            &RatingOptions {
                bootstrap_rounds: 0,
                reweight: true,
                ..Default::default()
            },
        )
        .unwrap();
        let gap = |r: &Ratings| get(r, "x") - get(r, "y");
        assert!(
            gap(&plain) > gap(&even),
            "plain {} reweighted {}",
            gap(&plain),
            gap(&even)
        );
    }

    #[test]
    fn perfect_records_and_separate_groups_are_warned_about() {
        let mut set = BattleSet::new();
        set.push("x", "y", Outcome::A).unwrap();
        set.push("x", "y", Outcome::A).unwrap();
        set.push("z", "w", Outcome::Tie).unwrap();
        let ratings = rate(
            &set,
            &RatingOptions {
                bootstrap_rounds: 20,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(ratings.models.iter().all(|m| m.rating.is_finite()));
        let text = ratings.warnings.join("\n");
        assert!(text.contains("2 groups"), "{text}");
        assert!(text.contains("`x` won all of its 2 battles"), "{text}");
        assert!(text.contains("`y` lost all of its 2 battles"), "{text}");
        assert_eq!(
            rate(&BattleSet::new(), &RatingOptions::default()).unwrap_err(),
            ArenaError::Input("no battles to rate".into())
        );
        assert!(set.clone().push("x", "x", Outcome::A).is_err());
    }

    #[test]
    fn style_control_takes_the_length_advantage_away() {
        // `verbose` wins when its answer is longer, and its answers mostly
        // are; `terse` is as good with style held equal.
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut battles = Vec::new();
        for _ in 0..4000 {
            let long = rng.random::<f64>() < 0.8;
            let (verbose_tokens, terse_tokens) = if long { (600.0, 150.0) } else { (150.0, 600.0) };
            let p_verbose = if long { 0.8 } else { 0.2 };
            let verbose_won = rng.random::<f64>() < p_verbose;
            let style = |tokens| StyleCounts {
                tokens,
                ..Default::default()
            };
            // Sides drawn at random, as an arena shows them.
            let b = if rng.random::<bool>() {
                let outcome = if verbose_won { Outcome::A } else { Outcome::B };
                let mut b = crate::Battle::new("verbose", "terse", outcome);
                b.style = Some([style(verbose_tokens), style(terse_tokens)]);
                b
            } else {
                let outcome = if verbose_won { Outcome::B } else { Outcome::A };
                let mut b = crate::Battle::new("terse", "verbose", outcome);
                b.style = Some([style(terse_tokens), style(verbose_tokens)]);
                b
            };
            battles.push(b);
        }
        let set = BattleSet::from_battles(&battles).unwrap();
        assert!(set.has_style());
        let plain = rate(
            &set,
            &RatingOptions {
                bootstrap_rounds: 0,
                ..Default::default()
            },
        )
        .unwrap();
        let styled = rate(
            &set,
            &RatingOptions {
                bootstrap_rounds: 30,
                style_control: true,
                ..Default::default()
            },
        )
        .unwrap();
        let gap = |r: &Ratings| r.models[0].rating - r.models[1].rating;
        assert_eq!(plain.models[0].model, "verbose");
        assert!(gap(&plain) > 100.0, "plain gap {}", gap(&plain));
        assert!(
            gap(&styled).abs() < 30.0,
            "style-controlled gap {}",
            gap(&styled)
        );
        let coefficients = styled.style_coefficients.unwrap();
        assert_eq!(coefficients[0].0, "length");
        assert!(coefficients[0].1 > 0.5, "{coefficients:?}");
        let sandwich = rate(
            &set,
            &RatingOptions {
                ci: CiMethod::Sandwich,
                style_control: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(
            sandwich
                .models
                .iter()
                .all(|m| m.lower < m.rating && m.rating < m.upper)
        );
        // Without style counts on every battle, style control is refused.
        let bare = three_models(1, 10);
        assert!(
            rate(
                &bare,
                &RatingOptions {
                    style_control: true,
                    ..Default::default()
                }
            )
            .is_err()
        );
    }

    #[test]
    fn multinomial_draws_exactly_n() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let drawn = multinomial(&[5.0, 0.0, 3.0, 2.0], 1000, &mut rng);
        assert_eq!(drawn.iter().sum::<f64>(), 1000.0);
        assert_eq!(drawn[1], 0.0);
        assert!((drawn[0] - 500.0).abs() < 80.0);
    }
}
