//! Corpus-level aggregations of log-likelihoods, defined as in
//! lm-evaluation-harness (`lm_eval/api/metrics.py`): `perplexity`,
//! `weighted_perplexity` (behind `word_perplexity` and `byte_perplexity`) and
//! `bits_per_byte`.
//!
//! None of these is a mean of per-document scores, so their standard errors
//! come from the bootstrap (METRICS.md). lm-evaluation-harness bootstraps only
//! `perplexity` and reports "N/A" for the weighted ones; Podium bootstraps the
//! (log-likelihood, weight) pairs of those too, resampling documents whole.

use serde::{Deserialize, Serialize};

use crate::{StatsError, bootstrap_stderr, mean};

/// One document's total log-likelihood (natural log) and its size in the unit
/// the metric is "per": words for word perplexity, UTF-8 bytes for byte
/// perplexity and bits per byte.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WeightedLogLikelihood {
    pub loglikelihood: f64,
    pub weight: f64,
}

/// `exp(−mean(loglikelihoods))` (lm-eval aggregation `perplexity`).
pub fn perplexity(loglikelihoods: &[f64]) -> Result<f64, StatsError> {
    Ok((-mean(loglikelihoods)?).exp())
}

/// `exp(−Σ ll / Σ weight)` (lm-eval aggregation `weighted_perplexity`, used for
/// `word_perplexity` and `byte_perplexity`).
pub fn weighted_perplexity(items: &[WeightedLogLikelihood]) -> Result<f64, StatsError> {
    Ok((-weighted_mean(items, "weighted perplexity")?).exp())
}

/// `−Σ ll / Σ bytes / ln 2` (lm-eval aggregation `bits_per_byte`).
pub fn bits_per_byte(items: &[WeightedLogLikelihood]) -> Result<f64, StatsError> {
    Ok(-weighted_mean(items, "bits per byte")? / std::f64::consts::LN_2)
}

/// Bootstrap standard error of [`perplexity`].
pub fn perplexity_stderr(
    loglikelihoods: &[f64],
    iters: usize,
    seed: u64,
) -> Result<f64, StatsError> {
    // A resample of a non-empty slice is non-empty, so the NaN fallback is unreachable.
    bootstrap_stderr(
        loglikelihoods,
        |xs| perplexity(xs).unwrap_or(f64::NAN),
        iters,
        seed,
    )
}

/// Bootstrap standard error of [`weighted_perplexity`], resampling documents.
pub fn weighted_perplexity_stderr(
    items: &[WeightedLogLikelihood],
    iters: usize,
    seed: u64,
) -> Result<f64, StatsError> {
    check_total_weight(items, "weighted perplexity")?;
    // A resample can draw only zero-weight documents; NaN then makes the stderr
    // NaN, which is honest: the statistic is undefined on that resample.
    bootstrap_stderr(
        items,
        |xs| weighted_perplexity(xs).unwrap_or(f64::NAN),
        iters,
        seed,
    )
}

/// Bootstrap standard error of [`bits_per_byte`], resampling documents.
pub fn bits_per_byte_stderr(
    items: &[WeightedLogLikelihood],
    iters: usize,
    seed: u64,
) -> Result<f64, StatsError> {
    check_total_weight(items, "bits per byte")?;
    bootstrap_stderr(
        items,
        |xs| bits_per_byte(xs).unwrap_or(f64::NAN),
        iters,
        seed,
    )
}

fn weighted_mean(
    items: &[WeightedLogLikelihood],
    statistic: &'static str,
) -> Result<f64, StatsError> {
    if items.is_empty() {
        return Err(StatsError::NotEnoughValues {
            statistic,
            needed: 1,
            got: 0,
        });
    }
    let total_weight = check_total_weight(items, statistic)?;
    let total_loglikelihood: f64 = items.iter().map(|item| item.loglikelihood).sum();
    Ok(total_loglikelihood / total_weight)
}

fn check_total_weight(
    items: &[WeightedLogLikelihood],
    statistic: &'static str,
) -> Result<f64, StatsError> {
    let total_weight: f64 = items.iter().map(|item| item.weight).sum();
    if total_weight == 0.0 {
        return Err(StatsError::ZeroTotalWeight { statistic });
    }
    Ok(total_weight)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::assert_close;

    fn item(loglikelihood: f64, weight: f64) -> WeightedLogLikelihood {
        WeightedLogLikelihood {
            loglikelihood,
            weight,
        }
    }

    #[test]
    fn perplexity_by_hand() {
        // mean(−1, −3) = −2 → exp(2) = 7.38905609893065.
        assert_close(perplexity(&[-1.0, -3.0]).unwrap(), 7.38905609893065, 1e-12);
    }

    #[test]
    fn weighted_perplexity_is_not_mean_of_ratios() {
        // Σll = −10 − 2 = −12, Σw = 4 + 2 = 6 → exp(12/6) = exp(2) = 7.38905609893065.
        // (The mean of per-document ratios would be exp((2.5 + 1)/2) = exp(1.75).)
        let items = [item(-10.0, 4.0), item(-2.0, 2.0)];
        assert_close(
            weighted_perplexity(&items).unwrap(),
            7.38905609893065,
            1e-12,
        );
    }

    #[test]
    fn bits_per_byte_by_hand() {
        // Σll = −ln 2 · 12, Σbytes = 6 → 12 ln 2 / 6 / ln 2 = 2 bits per byte.
        let ln2 = std::f64::consts::LN_2;
        let items = [item(-8.0 * ln2, 4.0), item(-4.0 * ln2, 2.0)];
        assert_close(bits_per_byte(&items).unwrap(), 2.0, 1e-12);
        // bits_per_byte = log2(byte_perplexity) on the same items.
        assert_close(weighted_perplexity(&items).unwrap().log2(), 2.0, 1e-12);
    }

    #[test]
    fn bootstrap_stderrs_are_seeded_and_positive() {
        let items: Vec<WeightedLogLikelihood> = (1..=30)
            .map(|i| item(-(i as f64) * 1.3, (i % 5 + 1) as f64))
            .collect();
        let a = weighted_perplexity_stderr(&items, 300, 9).unwrap();
        let b = weighted_perplexity_stderr(&items, 300, 9).unwrap();
        assert_eq!(a.to_bits(), b.to_bits());
        assert!(a > 0.0);
        assert!(bits_per_byte_stderr(&items, 300, 9).unwrap() > 0.0);
        let lls: Vec<f64> = items.iter().map(|it| it.loglikelihood / 10.0).collect();
        assert!(perplexity_stderr(&lls, 300, 9).unwrap() > 0.0);
    }

    #[test]
    fn empty_and_weightless_inputs_are_errors() {
        assert!(matches!(
            perplexity(&[]),
            Err(StatsError::NotEnoughValues { .. })
        ));
        assert!(matches!(
            bits_per_byte(&[]),
            Err(StatsError::NotEnoughValues { .. })
        ));
        assert!(matches!(
            weighted_perplexity(&[item(-1.0, 0.0)]),
            Err(StatsError::ZeroTotalWeight { .. })
        ));
        assert!(matches!(
            bits_per_byte_stderr(&[item(-1.0, 0.0)], 10, 0),
            Err(StatsError::ZeroTotalWeight { .. })
        ));
    }
}
