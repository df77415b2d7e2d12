//! Percentiles with linear interpolation between closest ranks (NumPy's default
//! `method="linear"`), and the fixed set reported for speed metrics.

use serde::{Deserialize, Serialize};

use crate::StatsError;

/// The percentiles Podium reports for latency-like metrics (METRICS.md).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub p5: f64,
    pub p25: f64,
    pub p50: f64,
    pub p75: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
}

/// The `p`-th percentile (0..=100) of `values`, which need not be sorted.
///
/// With the values sorted ascending as `x[0..n]`, the rank is `h = (n − 1)·p/100`
/// and the result `x[⌊h⌋] + (h − ⌊h⌋)·(x[⌊h⌋+1] − x[⌊h⌋])`. NaN values sort last
/// (IEEE total order), so they only surface in the top percentiles.
pub fn percentile(values: &[f64], p: f64) -> Result<f64, StatsError> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    percentile_of_sorted(&sorted, p)
}

/// As [`percentile`], for values already sorted ascending (saves a sort when
/// several percentiles of one sample are wanted).
pub fn percentile_of_sorted(sorted: &[f64], p: f64) -> Result<f64, StatsError> {
    // Written as a negated range test so that NaN is rejected too.
    if !(0.0..=100.0).contains(&p) {
        return Err(StatsError::PercentileOutOfRange(p));
    }
    let Some(last_index) = sorted.len().checked_sub(1) else {
        return Err(StatsError::NotEnoughValues {
            statistic: "percentile",
            needed: 1,
            got: 0,
        });
    };
    let rank = last_index as f64 * p / 100.0;
    let below = rank.floor() as usize;
    let above = (below + 1).min(last_index);
    let fraction = rank - below as f64;
    // Skips the interpolation when exactly on a rank so that infinities at the
    // other neighbour do not turn an exact hit into NaN (0 · inf).
    if fraction == 0.0 {
        return Ok(sorted[below]);
    }
    Ok(sorted[below] + fraction * (sorted[above] - sorted[below]))
}

/// P5, P25, P50, P75, P90, P95 and P99 of `values` (one sort for all seven).
pub fn percentiles(values: &[f64]) -> Result<Percentiles, StatsError> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = |p| percentile_of_sorted(&sorted, p);
    Ok(Percentiles {
        p5: at(5.0)?,
        p25: at(25.0)?,
        p50: at(50.0)?,
        p75: at(75.0)?,
        p90: at(90.0)?,
        p95: at(95.0)?,
        p99: at(99.0)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::assert_close;

    fn check(values: &[f64], p: f64, expected: f64) {
        assert_close(percentile(values, p).unwrap(), expected, 1e-12);
    }

    #[test]
    fn linear_interpolation_like_numpy() {
        // np.percentile([1,2,3,4], 50) = 2.5: h = 3·0.5 = 1.5 → 2 + .5·(3−2).
        check(&[4.0, 1.0, 3.0, 2.0], 50.0, 2.5);
        // h = 3·0.25 = 0.75 → 1 + .75·1 = 1.75.
        check(&[1.0, 2.0, 3.0, 4.0], 25.0, 1.75);
        // h = 3·0.9 = 2.7 → 3 + .7·1 = 3.7.
        check(&[1.0, 2.0, 3.0, 4.0], 90.0, 3.7);
        check(&[1.0, 2.0, 3.0, 4.0], 0.0, 1.0);
        check(&[1.0, 2.0, 3.0, 4.0], 100.0, 4.0);
        check(&[7.0], 37.0, 7.0);
        // h = 1·0.5 → 10 + .5·(20 − 10) = 15.
        check(&[20.0, 10.0], 50.0, 15.0);
    }

    #[test]
    fn speed_percentiles_of_one_to_hundred_one() {
        // For 0..=100 (n = 101) the rank h = p exactly, so Pp = p.
        let values: Vec<f64> = (0..=100).map(f64::from).collect();
        let summary = percentiles(&values).unwrap();
        assert_eq!(
            summary,
            Percentiles {
                p5: 5.0,
                p25: 25.0,
                p50: 50.0,
                p75: 75.0,
                p90: 90.0,
                p95: 95.0,
                p99: 99.0
            }
        );
        // For 1..=10: P99 has h = 9·.99 = 8.91 → 9 + .91·1 = 9.91;
        // P5 has h = .45 → 1.45.
        let values: Vec<f64> = (1..=10).map(f64::from).collect();
        let summary = percentiles(&values).unwrap();
        assert_close(summary.p99, 9.91, 1e-12);
        assert_close(summary.p5, 1.45, 1e-12);
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(matches!(
            percentile(&[], 50.0),
            Err(StatsError::NotEnoughValues { .. })
        ));
        assert_eq!(
            percentile(&[1.0], 101.0),
            Err(StatsError::PercentileOutOfRange(101.0))
        );
        assert!(matches!(
            percentile(&[1.0], f64::NAN),
            Err(StatsError::PercentileOutOfRange(_))
        ));
    }
}
