//! Cost formulas (METRICS.md, "Cost"). Prices are US dollars per million tokens.

/// Cost of one request in dollars: `(N_in · P_in + N_out · P_out) / 1e6`.
pub fn request_cost_usd(
    n_input_tokens: usize,
    n_output_tokens: usize,
    price_in_per_million: f64,
    price_out_per_million: f64,
) -> f64 {
    (n_input_tokens as f64 * price_in_per_million + n_output_tokens as f64 * price_out_per_million)
        / 1e6
}

/// Blended price per million tokens, 3:1 input to output: `(3 · P_in + P_out) / 4`
/// (Artificial Analysis).
pub fn blended_price_per_million(price_in_per_million: f64, price_out_per_million: f64) -> f64 {
    (3.0 * price_in_per_million + price_out_per_million) / 4.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_follow_metrics_md() {
        assert!((request_cost_usd(1_000_000, 500_000, 0.15, 0.60) - 0.45).abs() < 1e-12);
        assert!((blended_price_per_million(0.15, 0.60) - 0.2625).abs() < 1e-12);
    }
}
