//! Speed and cost of one request from its recorded timing and token counts,
//! exactly as docs/METRICS.md defines them. Pure functions: aggregation code
//! (percentiles, throughput over a run) builds on these.

use podium_core::{GenerateResult, RequestTiming};

/// Time per output token after the first: `(E2E − TTFT) / (N_out − 1)`.
/// `None` with fewer than two output tokens (no gap to measure).
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

/// Inter-token latencies: each gap between consecutive token-bearing events
/// divided by the tokens in the later event. `tokens_per_event` has one count
/// per event (so one more than `gaps`); where counts are unknown, use the gaps
/// themselves and call them inter-chunk latencies.
pub fn inter_token_latencies_s(gaps_s: &[f64], tokens_per_event: &[usize]) -> Vec<f64> {
    gaps_s
        .iter()
        .zip(tokens_per_event.iter().skip(1))
        .map(|(gap, &tokens)| gap / tokens.max(1) as f64)
        .collect()
}

pub use podium_stats::{blended_price_per_million, request_cost_usd};

/// The per-request speed figures of one generation, where its timing allows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequestSpeed {
    pub queue_s: f64,
    pub ttft_s: Option<f64>,
    pub ttfat_s: Option<f64>,
    pub e2e_s: f64,
    pub tpot_s: Option<f64>,
    pub output_tokens_per_s: Option<f64>,
    pub n_output_tokens: Option<usize>,
    /// From the response cache: not a measurement of this run.
    pub cached: bool,
}

impl RequestSpeed {
    pub fn of(result: &GenerateResult) -> Option<RequestSpeed> {
        let timing: &RequestTiming = result.timing.as_ref()?;
        let n_out = result.n_output_tokens;
        let derived = |f: fn(f64, f64, usize) -> Option<f64>| {
            timing
                .ttft_s
                .zip(n_out)
                .and_then(|(ttft, n)| f(timing.e2e_s, ttft, n))
        };
        Some(RequestSpeed {
            queue_s: timing.queue_s,
            ttft_s: timing.ttft_s,
            ttfat_s: timing.ttfat_s,
            e2e_s: timing.e2e_s,
            tpot_s: derived(tpot_s),
            output_tokens_per_s: derived(output_tokens_per_s),
            n_output_tokens: n_out,
            cached: timing.cached,
        })
    }
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
    }

    #[test]
    fn itl_divides_by_tokens_in_the_later_event() {
        let itl = inter_token_latencies_s(&[0.2, 0.3], &[1, 2, 3]);
        assert!(close(itl[0], 0.1) && close(itl[1], 0.1), "{itl:?}");
    }

    #[test]
    fn costs() {
        assert!(close(request_cost_usd(1_000, 500, 3.0, 15.0), 0.0105));
        assert!(close(blended_price_per_million(3.0, 15.0), 6.0));
    }
}
