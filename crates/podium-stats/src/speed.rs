//! Speed formulas of one streamed request (METRICS.md, "Speed"): the one
//! home of TPOT and output speed, used by `podium bench` and the backends.

/// Time per output token after the first: `(E2E − TTFT) / (N_out − 1)`,
/// `E2E − TTFT` clamped at 0 (a clock step cannot make it negative). `None`
/// with fewer than two output tokens (no gap to measure).
pub fn tpot_s(e2e_s: f64, ttft_s: f64, n_output_tokens: usize) -> Option<f64> {
    if n_output_tokens < 2 {
        return None;
    }
    Some((e2e_s - ttft_s).max(0.0) / (n_output_tokens - 1) as f64)
}

/// Output speed in tokens per second: `(N_out − 1) / (t_last − t_first)` = 1 / TPOT.
/// `None` with fewer than two tokens or when every token arrived in one event.
pub fn output_tokens_per_s(e2e_s: f64, ttft_s: f64, n_output_tokens: usize) -> Option<f64> {
    let streaming_s = e2e_s - ttft_s;
    if n_output_tokens < 2 || streaming_s <= 0.0 {
        return None;
    }
    Some((n_output_tokens - 1) as f64 / streaming_s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn tpot_and_speed_are_reciprocal() {
        let tpot = tpot_s(1.1, 0.1, 11).unwrap();
        assert!(close(tpot, 0.1));
        assert!(close(output_tokens_per_s(1.1, 0.1, 11).unwrap(), 10.0));
        assert_eq!(tpot_s(1.0, 0.1, 1), None);
        assert_eq!(output_tokens_per_s(0.1, 0.1, 5), None);
        // A last event stamped before the first (a clock step) is 0, not negative.
        assert_eq!(tpot_s(0.1, 0.2, 3), Some(0.0));
    }
}
