//! Aggregate speed metrics of a bench run, as docs/METRICS.md defines them.

use serde::{Deserialize, Serialize};

use podium_stats::Percentiles;

use crate::load::RequestRecord;
use crate::slo::{Slo, SloMetric};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub n_requests: usize,
    pub n_ok: usize,
    pub n_failed: usize,
    /// D: first send → last completion, seconds.
    pub duration_s: f64,
    pub request_throughput: f64,
    pub output_throughput: f64,
    /// Requests meeting every SLO target's threshold / D (None without an SLO).
    pub goodput: Option<f64>,
    /// Whether each SLO percentile held (None without an SLO).
    pub slo_met: Option<bool>,
    pub mean_input_tokens: Option<f64>,
    pub mean_output_tokens: Option<f64>,
    pub ttft_s: Option<Percentiles>,
    pub ttfat_s: Option<Percentiles>,
    pub e2e_s: Option<Percentiles>,
    pub tpot_s: Option<Percentiles>,
    /// Output tokens per second per request: (N_out − 1) / (t_last − t_first).
    pub output_speed: Option<Percentiles>,
    /// Gaps between consecutive token-bearing events (inter-chunk latency).
    pub inter_chunk_s: Option<Percentiles>,
    pub queue_s: Option<Percentiles>,
    pub send_lateness_s: Option<Percentiles>,
    pub first_error: Option<String>,
}

/// TPOT of one request: (E2E − TTFT) / (N_out − 1) (`podium_stats::tpot_s`).
pub fn tpot(record: &RequestRecord) -> Option<f64> {
    podium_stats::tpot_s(record.e2e_s?, record.ttft_s?, record.n_output_tokens?)
}

fn pct(values: Vec<f64>) -> Option<Percentiles> {
    podium_stats::percentiles(&values).ok()
}

fn meets(record: &RequestRecord, slo: &Slo) -> bool {
    slo.targets.iter().all(|target| {
        let value = match target.metric {
            SloMetric::Ttft => record.ttft_s,
            SloMetric::Tpot => {
                tpot(record).or(record.n_output_tokens.filter(|n| *n <= 1).map(|_| 0.0))
            }
            SloMetric::E2e => record.e2e_s,
        };
        value.is_some_and(|v| v <= target.threshold_s)
    })
}

pub fn summarize(records: &[RequestRecord], slo: Option<&Slo>) -> Summary {
    let ok: Vec<&RequestRecord> = records.iter().filter(|r| r.ok).collect();
    let first_send = records
        .iter()
        .map(|r| r.sent_s)
        .fold(f64::INFINITY, f64::min);
    let last_done = ok
        .iter()
        .map(|r| r.done_s)
        .fold(f64::NEG_INFINITY, f64::max);
    let duration_s = if ok.is_empty() {
        0.0
    } else {
        (last_done - first_send).max(0.0)
    };
    let per_second = |x: f64| {
        if duration_s > 0.0 {
            x / duration_s
        } else {
            0.0
        }
    };
    let total_out: usize = ok.iter().filter_map(|r| r.n_output_tokens).sum();
    let collect = |f: &dyn Fn(&RequestRecord) -> Option<f64>| -> Vec<f64> {
        ok.iter().filter_map(|r| f(r)).collect()
    };
    let mean = |values: Vec<f64>| podium_stats::mean(&values).ok();

    let (goodput, slo_met) = match slo {
        None => (None, None),
        Some(slo) => {
            let good = ok.iter().filter(|r| meets(r, slo)).count();
            let held = slo.targets.iter().all(|target| {
                let values = collect(&|r| match target.metric {
                    SloMetric::Ttft => r.ttft_s,
                    SloMetric::Tpot => tpot(r),
                    SloMetric::E2e => r.e2e_s,
                });
                // Every failed request counts against the objective.
                ok.len() == records.len()
                    && podium_stats::percentile(&values, target.percentile)
                        .is_ok_and(|v| v <= target.threshold_s)
            });
            (Some(per_second(good as f64)), Some(held))
        }
    };

    Summary {
        n_requests: records.len(),
        n_ok: ok.len(),
        n_failed: records.len() - ok.len(),
        duration_s,
        request_throughput: per_second(ok.len() as f64),
        output_throughput: per_second(total_out as f64),
        goodput,
        slo_met,
        mean_input_tokens: mean(collect(&|r| r.n_input_tokens.map(|n| n as f64))),
        mean_output_tokens: mean(collect(&|r| r.n_output_tokens.map(|n| n as f64))),
        ttft_s: pct(collect(&|r| r.ttft_s)),
        ttfat_s: pct(collect(&|r| r.ttfat_s)),
        e2e_s: pct(collect(&|r| r.e2e_s)),
        tpot_s: pct(collect(&tpot)),
        output_speed: pct(collect(&|r| tpot(r).filter(|t| *t > 0.0).map(|t| 1.0 / t))),
        inter_chunk_s: pct(ok
            .iter()
            .flat_map(|r| r.inter_chunk_s.iter().copied())
            .collect()),
        queue_s: pct(collect(&|r| r.queue_s)),
        send_lateness_s: pct(records
            .iter()
            .filter_map(|r| Some(r.sent_s - r.scheduled_s?))
            .collect()),
        first_error: records.iter().find_map(|r| r.error.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slo::parse_slo;

    fn record(index: usize, sent: f64, ttft: f64, e2e: f64, n_out: usize) -> RequestRecord {
        RequestRecord {
            index,
            scheduled_s: Some(sent),
            sent_s: sent,
            done_s: sent + e2e,
            ok: true,
            error: None,
            queue_s: Some(0.0),
            ttft_s: Some(ttft),
            ttfat_s: Some(ttft),
            e2e_s: Some(e2e),
            n_input_tokens: Some(100),
            n_output_tokens: Some(n_out),
            token_count_source: None,
            inter_chunk_s: vec![0.01; n_out.saturating_sub(1)],
            t0_monotonic_ns: None,
            first_token_monotonic_ns: None,
        }
    }

    #[test]
    fn metrics_follow_the_definitions() {
        // Request 0: TTFT 0.1, E2E 1.1, 11 tokens → TPOT (1.1 − 0.1)/10 = 0.1, speed 10/s.
        // Request 1: sent at 0.5, TTFT 0.2, E2E 0.6, 5 tokens → TPOT 0.1. D = 1.1 − 0 = 1.1 s.
        let records = vec![record(0, 0.0, 0.1, 1.1, 11), record(1, 0.5, 0.2, 0.6, 5)];
        let s = summarize(&records, None);
        assert_eq!((s.n_ok, s.n_failed), (2, 0));
        assert!((s.duration_s - 1.1).abs() < 1e-12);
        assert!((s.request_throughput - 2.0 / 1.1).abs() < 1e-12);
        assert!((s.output_throughput - 16.0 / 1.1).abs() < 1e-12);
        let tpot = s.tpot_s.unwrap();
        assert!((tpot.p50 - 0.1).abs() < 1e-12);
        assert!((s.output_speed.unwrap().p50 - 10.0).abs() < 1e-9);
        // TTFT percentiles, linear interpolation: p50 of [0.1, 0.2] = 0.15.
        assert!((s.ttft_s.unwrap().p50 - 0.15).abs() < 1e-12);
        assert_eq!(s.goodput, None);
    }

    #[test]
    fn goodput_counts_requests_meeting_every_slo() {
        let records = vec![record(0, 0.0, 0.1, 1.1, 11), record(1, 0.5, 0.6, 1.0, 5)];
        let slo = parse_slo("ttft_p99=500ms").unwrap();
        let s = summarize(&records, Some(&slo));
        // One of two requests has TTFT ≤ 0.5 s; D = 1.5 s.
        assert!((s.goodput.unwrap() - 1.0 / 1.5).abs() < 1e-12);
        assert_eq!(s.slo_met, Some(false));
        let loose = parse_slo("ttft_p99=1s,tpot_p99=200ms").unwrap();
        assert_eq!(summarize(&records, Some(&loose)).slo_met, Some(true));
    }

    #[test]
    fn failures_are_counted_not_timed() {
        let mut failed = record(1, 0.2, 0.0, 0.0, 0);
        failed.ok = false;
        failed.error = Some("HTTP 500".into());
        let s = summarize(
            &[record(0, 0.0, 0.1, 1.1, 11), failed],
            Some(&parse_slo("ttft_p99=1s").unwrap()),
        );
        assert_eq!((s.n_ok, s.n_failed), (1, 1));
        assert_eq!(s.first_error.as_deref(), Some("HTTP 500"));
        assert_eq!(s.slo_met, Some(false));
    }
}
