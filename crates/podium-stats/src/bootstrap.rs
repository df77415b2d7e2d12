//! Seeded nonparametric bootstrap: standard errors and percentile intervals of
//! any statistic.
//!
//! The generator is ChaCha8 seeded from a `u64`, and resample indices are drawn
//! as `u64` rather than `usize`, so a given (values, statistic, iters, seed)
//! yields the same replicates on 32- and 64-bit platforms alike. The numbers do
//! not match lm-evaluation-harness bit for bit (it uses Python's Mersenne
//! Twister, reseeded per chunk of 1000 draws); they estimate the same quantity.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{StatsError, percentile, sample_std};

/// Bootstrap iterations when the task or user configures none (METRICS.md).
pub const DEFAULT_BOOTSTRAP_ITERS: usize = 1000;

/// Draws `iters` resamples of `values` with replacement (each the size of
/// `values`) and returns `statistic` of each, in draw order.
pub fn bootstrap_replicates<T: Clone>(
    values: &[T],
    statistic: impl Fn(&[T]) -> f64,
    iters: usize,
    seed: u64,
) -> Result<Vec<f64>, StatsError> {
    if values.is_empty() {
        return Err(StatsError::NotEnoughValues {
            statistic: "bootstrap",
            needed: 1,
            got: 0,
        });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = values.len() as u64;
    // One buffer reused across iterations: the resample is overwritten in place,
    // which keeps 1000 iterations over 10k-sample tasks free of reallocations.
    let mut resample: Vec<T> = values.to_vec();
    let mut replicates = Vec::with_capacity(iters);
    for _ in 0..iters {
        for slot in resample.iter_mut() {
            // `n` fits in usize because it came from a slice length.
            let index = rng.random_range(0..n) as usize;
            slot.clone_from(&values[index]);
        }
        replicates.push(statistic(&resample));
    }
    Ok(replicates)
}

/// Bootstrap estimate of the standard error of `statistic(values)`: the sample
/// standard deviation (n − 1) of `iters` replicates, as lm-evaluation-harness's
/// `bootstrap_stderr` computes it.
///
/// Errors when `values` is empty or `iters < 2` (a spread needs two replicates).
pub fn bootstrap_stderr<T: Clone>(
    values: &[T],
    statistic: impl Fn(&[T]) -> f64,
    iters: usize,
    seed: u64,
) -> Result<f64, StatsError> {
    check_iters(iters, "bootstrap standard error")?;
    let replicates = bootstrap_replicates(values, statistic, iters, seed)?;
    sample_std(&replicates)
}

/// Percentile bootstrap interval at `confidence` (e.g. 0.95): the
/// `(1 − confidence)/2` and `(1 + confidence)/2` quantiles of `iters` replicates,
/// interpolated linearly between closest ranks.
pub fn percentile_bootstrap_interval<T: Clone>(
    values: &[T],
    statistic: impl Fn(&[T]) -> f64,
    iters: usize,
    seed: u64,
    confidence: f64,
) -> Result<(f64, f64), StatsError> {
    // Written as a negated range test so that NaN is rejected too.
    if !(confidence > 0.0 && confidence < 1.0) {
        return Err(StatsError::ConfidenceLevelOutOfRange(confidence));
    }
    check_iters(iters, "percentile bootstrap interval")?;
    let replicates = bootstrap_replicates(values, statistic, iters, seed)?;
    let tail = (1.0 - confidence) / 2.0;
    let lower = percentile(&replicates, 100.0 * tail)?;
    let upper = percentile(&replicates, 100.0 * (1.0 - tail))?;
    Ok((lower, upper))
}

fn check_iters(iters: usize, statistic: &'static str) -> Result<(), StatsError> {
    if iters < 2 {
        return Err(StatsError::NotEnoughValues {
            statistic,
            needed: 2,
            got: iters,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::assert_close;
    use crate::{mean, stderr_of_mean};

    fn mean_or_nan(xs: &[f64]) -> f64 {
        mean(xs).unwrap_or(f64::NAN)
    }

    #[test]
    fn same_seed_same_result_other_seed_differs() {
        let values: Vec<f64> = (0..50).map(|i| (i % 7) as f64).collect();
        let a = bootstrap_stderr(&values, mean_or_nan, 200, 42).unwrap();
        let b = bootstrap_stderr(&values, mean_or_nan, 200, 42).unwrap();
        let c = bootstrap_stderr(&values, mean_or_nan, 200, 43).unwrap();
        assert_eq!(a.to_bits(), b.to_bits());
        assert_ne!(a.to_bits(), c.to_bits());
    }

    #[test]
    fn replicates_are_pinned_for_a_seed() {
        // Pins the resampling scheme (ChaCha8, u64 indices) so that an accidental
        // change to it, which would silently shift every published stderr, fails here.
        let values = [1.0, 2.0, 3.0, 4.0];
        let first = bootstrap_replicates(&values, mean_or_nan, 3, 7).unwrap();
        assert_eq!(first, [2.0, 2.5, 2.25]);
        for replicate in &first {
            // Every resample mean of {1,2,3,4} is a multiple of 1/4 in [1, 4].
            assert!((1.0..=4.0).contains(replicate));
            assert_close((replicate * 4.0).fract(), 0.0, 1e-12);
        }
    }

    #[test]
    fn bootstrap_stderr_of_mean_approaches_closed_form() {
        // For the mean, the bootstrap estimates the stderr without Bessel's
        // correction: sqrt((n−1)/n) · s/sqrt(n). Accuracy data with 40 of 100 right:
        // s = sqrt(100·.4·.6/99) = 0.49236596; s/10 = 0.049236596;
        // times sqrt(.99) = 0.048989795 (= sqrt(.4·.6/100)).
        let values: Vec<f64> = (0..100).map(|i| if i < 40 { 1.0 } else { 0.0 }).collect();
        assert_close(stderr_of_mean(&values).unwrap(), 0.049236596, 1e-8);
        let boot = bootstrap_stderr(&values, mean_or_nan, 20_000, 1).unwrap();
        assert_close(boot, 0.048989795, 0.0015);
    }

    #[test]
    fn percentile_interval_brackets_the_estimate() {
        let values: Vec<f64> = (0..200).map(|i| ((i * 37) % 101) as f64 / 100.0).collect();
        let point = mean(&values).unwrap();
        let (lo, hi) = percentile_bootstrap_interval(&values, mean_or_nan, 2000, 5, 0.95).unwrap();
        assert!(lo < point && point < hi, "{lo} < {point} < {hi}");
        // Half-width should be about 1.96 · stderr.
        let stderr = stderr_of_mean(&values).unwrap();
        assert_close((hi - lo) / 2.0, 1.96 * stderr, 0.25 * stderr);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let empty: [f64; 0] = [];
        assert!(matches!(
            bootstrap_stderr(&empty, mean_or_nan, 100, 0),
            Err(StatsError::NotEnoughValues { .. })
        ));
        assert!(matches!(
            bootstrap_stderr(&[1.0, 2.0], mean_or_nan, 1, 0),
            Err(StatsError::NotEnoughValues {
                needed: 2,
                got: 1,
                ..
            })
        ));
        assert_eq!(
            percentile_bootstrap_interval(&[1.0, 2.0], mean_or_nan, 100, 0, 1.0),
            Err(StatsError::ConfidenceLevelOutOfRange(1.0))
        );
    }
}
