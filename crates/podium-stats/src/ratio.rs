//! A ratio of sums over clusters, `R = Σ yᵢ / Σ nᵢ` (e.g. IFEval's
//! instruction-level accuracy: instructions followed over instructions, summed
//! over prompts), with a standard error that respects the clustering.

use crate::{StatsError, Z_95};

/// The ratio of sums with its cluster-robust (linearization) standard error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RatioOfSums {
    pub value: f64,
    /// `sqrt(k / (k − 1) · Σ (yᵢ − R·nᵢ)²) / Σ nᵢ` over the k clusters; `None` for k < 2.
    pub stderr: Option<f64>,
    /// Σ nᵢ.
    pub total_weight: f64,
    pub n_clusters: usize,
}

/// `R = Σ yᵢ / Σ nᵢ` over `(yᵢ, nᵢ)` pairs, one per cluster, with the delta-method
/// standard error of a ratio estimator and the small-sample factor k / (k − 1)
/// (the CR1 cluster-robust variance). With every nᵢ = 1 it is the standard error
/// of the mean. Items of one cluster may be correlated; clusters are taken to be
/// independent.
pub fn ratio_of_sums(pairs: &[(f64, f64)]) -> Result<RatioOfSums, StatsError> {
    if pairs.is_empty() {
        return Err(StatsError::NotEnoughValues {
            statistic: "ratio of sums",
            needed: 1,
            got: 0,
        });
    }
    let total_y: f64 = pairs.iter().map(|(y, _)| y).sum();
    let total_n: f64 = pairs.iter().map(|(_, n)| n).sum();
    if total_n == 0.0 {
        return Err(StatsError::ZeroTotalWeight {
            statistic: "ratio of sums",
        });
    }
    let value = total_y / total_n;
    let k = pairs.len();
    let stderr = (k >= 2).then(|| {
        let sum_sq: f64 = pairs.iter().map(|(y, n)| (y - value * n).powi(2)).sum();
        (k as f64 / (k - 1) as f64 * sum_sq).sqrt() / total_n
    });
    Ok(RatioOfSums {
        value,
        stderr,
        total_weight: total_n,
        n_clusters: k,
    })
}

impl RatioOfSums {
    /// The 95% interval of a clustered proportion: Wilson's interval at the
    /// effective sample size `n_eff = R(1 − R) / SE²` (Kish's design effect),
    /// kept between the number of clusters and the number of items. When R is 0
    /// or 1 (no spread to estimate a design effect from) `n_eff` is the number of
    /// clusters: the cautious end. `None` when R is not in [0, 1].
    pub fn wilson_interval(&self) -> Option<(f64, f64)> {
        if !(0.0..=1.0).contains(&self.value) || self.n_clusters == 0 {
            return None;
        }
        let clusters = self.n_clusters as f64;
        let items = self.total_weight.max(clusters);
        let p = self.value;
        let n_eff = match self.stderr {
            Some(se) if se > 0.0 && p > 0.0 && p < 1.0 => {
                (p * (1.0 - p) / (se * se)).clamp(clusters, items)
            }
            _ => clusters,
        };
        let z2 = Z_95 * Z_95;
        let denominator = 1.0 + z2 / n_eff;
        let center = (p + z2 / (2.0 * n_eff)) / denominator;
        let half = Z_95 / denominator * (p * (1.0 - p) / n_eff + z2 / (4.0 * n_eff * n_eff)).sqrt();
        Some(((center - half).max(0.0), (center + half).min(1.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::assert_close;
    use crate::{stderr_of_mean, wilson_interval};

    #[test]
    fn ratio_and_stderr_by_hand() {
        // Clusters (followed, instructions): (1, 1), (2, 3), (0, 2), (3, 3).
        // R = 6 / 9 = 2/3. Residuals y − R·n: 1/3, 0, −4/3, 1: squares sum
        // 1/9 + 0 + 16/9 + 1 = 26/9. SE = sqrt(4/3 · 26/9) / 9 = 0.21886...
        let found = ratio_of_sums(&[(1.0, 1.0), (2.0, 3.0), (0.0, 2.0), (3.0, 3.0)]).unwrap();
        assert_close(found.value, 2.0 / 3.0, 1e-12);
        assert_close(
            found.stderr.unwrap(),
            (4.0f64 / 3.0 * 26.0 / 9.0).sqrt() / 9.0,
            1e-12,
        );
        assert_eq!((found.total_weight, found.n_clusters), (9.0, 4));
    }

    #[test]
    fn unit_weights_give_the_mean_and_its_stderr() {
        let values = [1.0, 0.0, 1.0, 1.0, 0.0];
        let pairs: Vec<(f64, f64)> = values.iter().map(|&v| (v, 1.0)).collect();
        let found = ratio_of_sums(&pairs).unwrap();
        assert_close(found.value, 0.6, 1e-12);
        assert_close(
            found.stderr.unwrap(),
            stderr_of_mean(&values).unwrap(),
            1e-12,
        );
        // n_eff = p(1 − p)/SE² = n − 1 here, raised to the 5 clusters: the plain
        // Wilson interval of 3 of 5.
        let (lo, hi) = found.wilson_interval().unwrap();
        let (wlo, whi) = wilson_interval(0.6, 5).unwrap();
        assert_close(lo, wlo, 1e-12);
        assert_close(hi, whi, 1e-12);
    }

    #[test]
    fn edges_and_errors() {
        // All followed: SE 0, the interval still has a width (n_eff = 2 clusters).
        let all = ratio_of_sums(&[(3.0, 3.0), (2.0, 2.0)]).unwrap();
        assert_eq!(all.stderr, Some(0.0));
        let (lo, hi) = all.wilson_interval().unwrap();
        assert_eq!(hi, 1.0);
        assert_close(lo, wilson_interval(1.0, 2).unwrap().0, 1e-12);
        assert!(lo < 0.5);
        assert_eq!(ratio_of_sums(&[(1.0, 2.0)]).unwrap().stderr, None);
        assert!(ratio_of_sums(&[]).is_err());
        assert!(ratio_of_sums(&[(0.0, 0.0)]).is_err());
    }
}
