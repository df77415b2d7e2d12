//! Means, sample standard deviations and the standard error of a mean.

use crate::StatsError;

/// The two-sided 95% normal quantile used by [`ci95_mean`] (METRICS.md: mean ± 1.96 · stderr).
pub const Z_95: f64 = 1.96;

/// Arithmetic mean; an error for an empty slice.
pub fn mean(values: &[f64]) -> Result<f64, StatsError> {
    if values.is_empty() {
        return Err(StatsError::NotEnoughValues {
            statistic: "mean",
            needed: 1,
            got: 0,
        });
    }
    Ok(values.iter().sum::<f64>() / values.len() as f64)
}

/// Sample standard deviation with Bessel's correction (divides by n − 1).
///
/// Fewer than two values give an error rather than 0 or NaN, because a spread
/// cannot be estimated from a single observation and a silent 0 would print as
/// a falsely precise "± 0.00" on the board.
pub fn sample_std(values: &[f64]) -> Result<f64, StatsError> {
    if values.len() < 2 {
        return Err(StatsError::NotEnoughValues {
            statistic: "sample standard deviation",
            needed: 2,
            got: values.len(),
        });
    }
    let mu = mean(values)?;
    let sum_sq: f64 = values.iter().map(|x| (x - mu) * (x - mu)).sum();
    Ok((sum_sq / (values.len() - 1) as f64).sqrt())
}

/// Standard error of the mean: `sample_std / sqrt(n)`; an error when n < 2.
pub fn stderr_of_mean(values: &[f64]) -> Result<f64, StatsError> {
    let std = sample_std(values).map_err(|_| StatsError::NotEnoughValues {
        statistic: "standard error of the mean",
        needed: 2,
        got: values.len(),
    })?;
    Ok(std / (values.len() as f64).sqrt())
}

/// The normal-approximation 95% interval `(mean − 1.96·stderr, mean + 1.96·stderr)`.
pub fn ci95_mean(mean: f64, stderr: f64) -> (f64, f64) {
    (mean - Z_95 * stderr, mean + Z_95 * stderr)
}

/// The Wilson score 95% interval of a proportion `p` observed over `n` trials (METRICS.md's
/// interval for a mean of 0/1 values). Unlike `p ± 1.96·stderr` it stays inside [0, 1] and
/// keeps a width at 0% and 100%: 0 of 10 gives (0, 0.278), not (0, 0).
///
/// `None` when `n` is 0 or `p` is not a proportion (outside [0, 1], or NaN).
pub fn wilson_interval(p: f64, n: usize) -> Option<(f64, f64)> {
    if n == 0 || !(0.0..=1.0).contains(&p) {
        return None;
    }
    let n = n as f64;
    let z2 = Z_95 * Z_95;
    let denominator = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denominator;
    let half = Z_95 / denominator * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    // At 0% and 100% one bound is exactly the edge; rounding may put it a hair outside.
    Some(((center - half).max(0.0), (center + half).min(1.0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::assert_close;

    #[test]
    fn mean_std_and_stderr_by_hand() {
        // values 2, 4, 4, 4, 5, 5, 7, 9: sum 40, mean 5.
        // squared deviations 9+1+1+1+0+0+4+16 = 32; sample variance 32/7.
        // sample std sqrt(32/7) = 2.138089935299395; stderr = that / sqrt(8) = 0.7559289460184544.
        let values = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        assert_close(mean(&values).unwrap(), 5.0, 1e-12);
        assert_close(sample_std(&values).unwrap(), (32.0f64 / 7.0).sqrt(), 1e-12);
        assert_close(stderr_of_mean(&values).unwrap(), 0.7559289460184544, 1e-12);
    }

    #[test]
    fn binary_accuracy_stderr() {
        // acc over 0,1,1,1: mean 0.75; deviations .5625+3·.0625 = .75; var .75/3 = .25;
        // std .5; stderr .5/2 = .25.
        assert_close(stderr_of_mean(&[0.0, 1.0, 1.0, 1.0]).unwrap(), 0.25, 1e-12);
    }

    #[test]
    fn too_few_values_are_errors() {
        assert!(matches!(
            mean(&[]),
            Err(StatsError::NotEnoughValues {
                needed: 1,
                got: 0,
                ..
            })
        ));
        assert!(matches!(
            sample_std(&[1.0]),
            Err(StatsError::NotEnoughValues {
                needed: 2,
                got: 1,
                ..
            })
        ));
        assert!(matches!(
            stderr_of_mean(&[1.0]),
            Err(StatsError::NotEnoughValues {
                needed: 2,
                got: 1,
                ..
            })
        ));
    }

    #[test]
    fn wilson_interval_matches_the_closed_form() {
        // (successes, n, low, high): center (p + z²/2n)/(1 + z²/n), half-width
        // z/(1 + z²/n)·sqrt(p(1−p)/n + z²/4n²), z = 1.96, evaluated in f64 by hand.
        let cases = [
            (0, 1, 0.0, 0.7934567085261071),
            (1, 1, 0.2065432914738929, 1.0),
            (1, 4, 0.045586062644636216, 0.6993639475573634),
            (0, 10, 0.0, 0.2775401687666166),
            (3, 10, 0.10778928748621183, 0.6032267800204347),
            (10, 10, 0.7224598312333834, 1.0),
            (200, 400, 0.4512336165999552, 0.5487663834000448),
            (0, 400, 0.0, 0.009512640599680667),
            (400, 400, 1.0 - 0.009512640599680667, 1.0),
        ];
        for (successes, n, low, high) in cases {
            let (lo, hi) = wilson_interval(successes as f64 / n as f64, n).unwrap();
            assert_close(lo, low, 1e-12);
            assert_close(hi, high, 1e-12);
            assert!((0.0..=1.0).contains(&lo) && (0.0..=1.0).contains(&hi));
        }
        // The normal approximation's failures that METRICS.md names are gone.
        let (lo, _) = wilson_interval(0.25, 4).unwrap();
        assert!(lo > 0.0);
        let (lo, hi) = wilson_interval(0.0, 10).unwrap();
        assert!(lo == 0.0 && hi > 0.25);
        assert_eq!(wilson_interval(0.5, 0), None);
        assert_eq!(wilson_interval(1.5, 10), None);
        assert_eq!(wilson_interval(f64::NAN, 10), None);
    }

    #[test]
    fn ci95_is_symmetric() {
        // 0.5 ± 1.96 · 0.1 = (0.304, 0.696).
        let (lo, hi) = ci95_mean(0.5, 0.1);
        assert_close(lo, 0.304, 1e-12);
        assert_close(hi, 0.696, 1e-12);
    }
}
