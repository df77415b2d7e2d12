//! Scores normalized against chance, as the Open LLM Leaderboard v2 does:
//! `max(0, (raw − baseline) / (1 − baseline)) · 100`.

use crate::StatsError;

/// Normalizes a raw score in [0, 1] so chance maps to 0 and perfect to 100;
/// scores below chance clamp to 0 (METRICS.md).
///
/// Errors when `baseline >= 1` (or NaN), where nothing is left above chance.
pub fn normalized_score(raw: f64, baseline: f64) -> Result<f64, StatsError> {
    // NaN is rejected too: a NaN baseline would silently make every score NaN.
    if baseline.is_nan() || baseline >= 1.0 {
        return Err(StatsError::BaselineOutOfRange(baseline));
    }
    Ok(((raw - baseline) / (1.0 - baseline)).max(0.0) * 100.0)
}

/// The chance baseline of a multiple-choice question: `1 / n_choices`.
/// (Generation tasks use baseline 0.)
pub fn multiple_choice_baseline(n_choices: usize) -> Result<f64, StatsError> {
    if n_choices == 0 {
        return Err(StatsError::NoChoices);
    }
    Ok(1.0 / n_choices as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::assert_close;

    fn check(raw: f64, baseline: f64, expected: f64) {
        assert_close(normalized_score(raw, baseline).unwrap(), expected, 1e-9);
    }

    #[test]
    fn normalization_by_hand() {
        // Four choices: baseline .25; raw .625 → (.625 − .25)/.75 = .5 → 50.
        check(0.625, 0.25, 50.0);
        check(0.25, 0.25, 0.0);
        check(1.0, 0.25, 100.0);
        // Below chance clamps: (.1 − .25)/.75 < 0 → 0.
        check(0.1, 0.25, 0.0);
        // Generation: baseline 0 → raw · 100.
        check(0.42, 0.0, 42.0);
    }

    #[test]
    fn baselines() {
        assert_close(multiple_choice_baseline(4).unwrap(), 0.25, 1e-15);
        assert_eq!(multiple_choice_baseline(0), Err(StatsError::NoChoices));
        assert_eq!(
            normalized_score(0.5, 1.0),
            Err(StatsError::BaselineOutOfRange(1.0))
        );
        assert!(normalized_score(0.5, f64::NAN).is_err());
    }
}
