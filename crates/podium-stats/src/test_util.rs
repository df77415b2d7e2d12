//! Float comparison helpers for this crate's unit tests.

/// Asserts `|actual − expected| <= tolerance`, printing both on failure.
#[track_caller]
pub(crate) fn assert_close(actual: f64, expected: f64, tolerance: f64) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "expected {expected} ± {tolerance}, got {actual} (off by {})",
        (actual - expected).abs()
    );
}
