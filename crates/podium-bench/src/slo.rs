//! Service-level objectives: `ttft_p99=500ms,tpot_p99=50ms,e2e_p95=2s`.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SloMetric {
    Ttft,
    Tpot,
    E2e,
}

impl SloMetric {
    pub fn as_str(self) -> &'static str {
        match self {
            SloMetric::Ttft => "ttft",
            SloMetric::Tpot => "tpot",
            SloMetric::E2e => "e2e",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SloTarget {
    pub metric: SloMetric,
    /// Percentile (0–100) that must stay under the threshold.
    pub percentile: f64,
    pub threshold_s: f64,
}

/// Why a duration or an SLO does not parse; the message says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SloError {
    #[error("`{0}` needs a unit: ms, s or m (e.g. 500ms, 60s)")]
    NoUnit(String),
    #[error("`{0}` is not a duration (e.g. 500ms, 60s)")]
    NotADuration(String),
    #[error("`{0}` must be positive")]
    NotPositive(String),
    #[error("SLO `{0}` must look like ttft_p99=500ms")]
    Shape(String),
    #[error("SLO key `{0}` must look like ttft_p99, tpot_p50 or e2e_p95")]
    Key(String),
    #[error("unknown SLO metric `{0}`: use ttft, tpot or e2e")]
    Metric(String),
    #[error("SLO percentile in `{0}` must be 0–100")]
    Percentile(String),
    #[error("empty SLO: give e.g. ttft_p99=500ms,tpot_p99=50ms")]
    Empty,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Slo {
    pub targets: Vec<SloTarget>,
}

/// `500ms`, `2s`, `1.5s`, `60s`, `2m`.
pub fn parse_duration(text: &str) -> Result<f64, SloError> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        return Err(SloError::NoUnit(text.to_string()));
    };
    let value: f64 = number
        .parse()
        .map_err(|_| SloError::NotADuration(text.to_string()))?;
    if !(value.is_finite() && value > 0.0) {
        return Err(SloError::NotPositive(text.to_string()));
    }
    Ok(value * scale)
}

pub fn parse_slo(text: &str) -> Result<Slo, SloError> {
    let mut targets = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| SloError::Shape(part.to_string()))?;
        let (metric, percentile) = key
            .split_once("_p")
            .ok_or_else(|| SloError::Key(key.to_string()))?;
        let metric = match metric {
            "ttft" => SloMetric::Ttft,
            "tpot" => SloMetric::Tpot,
            "e2e" => SloMetric::E2e,
            other => return Err(SloError::Metric(other.to_string())),
        };
        let percentile: f64 = percentile
            .parse()
            .ok()
            .filter(|p: &f64| (0.0..=100.0).contains(p))
            .ok_or_else(|| SloError::Percentile(key.to_string()))?;
        targets.push(SloTarget {
            metric,
            percentile,
            threshold_s: parse_duration(value)?,
        });
    }
    if targets.is_empty() {
        return Err(SloError::Empty);
    }
    Ok(Slo { targets })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_slo_and_durations() {
        let slo = parse_slo("ttft_p99=500ms, tpot_p50=0.05s,e2e_p95=2m").unwrap();
        assert_eq!(
            slo.targets,
            vec![
                SloTarget {
                    metric: SloMetric::Ttft,
                    percentile: 99.0,
                    threshold_s: 0.5
                },
                SloTarget {
                    metric: SloMetric::Tpot,
                    percentile: 50.0,
                    threshold_s: 0.05
                },
                SloTarget {
                    metric: SloMetric::E2e,
                    percentile: 95.0,
                    threshold_s: 120.0
                },
            ]
        );
        assert!(
            parse_slo("ttft=1s")
                .unwrap_err()
                .to_string()
                .contains("ttft_p99")
        );
        assert!(
            parse_slo("foo_p99=1s")
                .unwrap_err()
                .to_string()
                .contains("unknown SLO metric")
        );
        assert!(
            parse_duration("10")
                .unwrap_err()
                .to_string()
                .contains("unit")
        );
        assert!(parse_duration("-1s").is_err());
    }
}
