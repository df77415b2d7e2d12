//! Aggregating subtask results into a group score, as lm-evaluation-harness's
//! `aggregate_subtask_metrics` and `pooled_sample_stderr` do (groups such as
//! MMLU with `aggregate_metric_list`).

use serde::{Deserialize, Serialize};

use crate::StatsError;

/// How subtask scores are weighted in a group's mean (lm-eval's `weight_by_size`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupWeighting {
    /// Each subtask counts in proportion to its number of samples
    /// (`weight_by_size: true`, lm-eval's default): a micro average.
    BySize,
    /// Every subtask counts the same (`weight_by_size: false`): a macro average.
    Equal,
}

/// One subtask's aggregated metric as input to a group.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SubtaskResult {
    pub value: f64,
    /// `None` where the subtask has no stderr (lm-eval prints "N/A").
    pub stderr: Option<f64>,
    pub n_samples: usize,
}

/// A group's aggregated metric.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GroupAggregate {
    pub value: f64,
    /// `None` when any subtask lacks a stderr, as lm-eval does.
    pub stderr: Option<f64>,
    pub n_samples: usize,
}

/// The group's score: `Σ metricᵢ·wᵢ / Σ wᵢ`, with `wᵢ = sizeᵢ` for
/// [`GroupWeighting::BySize`] and `wᵢ = 1` for [`GroupWeighting::Equal`].
pub fn aggregate_subtask_metrics(
    metrics: &[f64],
    sizes: &[usize],
    weighting: GroupWeighting,
) -> Result<f64, StatsError> {
    check_paired(metrics.len(), sizes.len(), "subtask mean", "metrics")?;
    let (weighted_sum, total_weight) = match weighting {
        GroupWeighting::BySize => metrics
            .iter()
            .zip(sizes)
            .fold((0.0, 0.0), |(sum, total), (m, &n)| {
                (sum + m * n as f64, total + n as f64)
            }),
        GroupWeighting::Equal => (metrics.iter().sum::<f64>(), metrics.len() as f64),
    };
    if total_weight == 0.0 {
        return Err(StatsError::ZeroTotalWeight {
            statistic: "subtask mean",
        });
    }
    Ok(weighted_sum / total_weight)
}

/// lm-eval's pooled standard error of a group:
///
/// `pooled_var = Σ (nᵢ − 1)·seᵢ²·nᵢ / (Σ nᵢ − k)` and `stderr = sqrt(pooled_var / Σ nᵢ)`,
/// for k subtasks of sizes nᵢ with stderrs seᵢ. Since `seᵢ²·nᵢ` is subtask i's
/// sample variance, this is the classic pooled variance, divided by the total size.
/// It ignores the spread between subtask means; lm-eval uses it for groups
/// whether or not they weight by size, and so does Podium to stay comparable.
pub fn pooled_sample_stderr(stderrs: &[f64], sizes: &[usize]) -> Result<f64, StatsError> {
    check_paired(stderrs.len(), sizes.len(), "pooled stderr", "stderrs")?;
    let total_size: usize = sizes.iter().sum();
    let degrees_of_freedom = total_size.saturating_sub(sizes.len());
    if degrees_of_freedom == 0 {
        // Σ nᵢ − k = 0 means every subtask has at most one sample: no spread to pool.
        return Err(StatsError::NotEnoughValues {
            statistic: "pooled stderr (samples beyond one per subtask)",
            needed: 1,
            got: 0,
        });
    }
    let sum_of_squares: f64 = stderrs
        .iter()
        .zip(sizes)
        .map(|(se, &n)| (n as f64 - 1.0) * se * se * n as f64)
        .sum();
    let pooled_variance = sum_of_squares / degrees_of_freedom as f64;
    Ok((pooled_variance / total_size as f64).sqrt())
}

/// Standard error of an unweighted mean of k independent subtask means:
/// `sqrt(Σ seᵢ²) / k` (lm-evaluation-harness ≥ 0.4.13, `unweighted_mean_stderr`).
pub fn unweighted_mean_stderr(stderrs: &[f64]) -> Result<f64, StatsError> {
    if stderrs.is_empty() {
        return Err(StatsError::NotEnoughValues {
            statistic: "unweighted mean stderr",
            needed: 1,
            got: 0,
        });
    }
    Ok(stderrs.iter().map(|se| se * se).sum::<f64>().sqrt() / stderrs.len() as f64)
}

/// A group's score, stderr and total size from its subtasks: the pooled
/// stderr for a size-weighted mean, the stderr of an unweighted mean otherwise
/// (each matches its point estimate, as lm-evaluation-harness ≥ 0.4.13 does).
pub fn aggregate_group(
    subtasks: &[SubtaskResult],
    weighting: GroupWeighting,
) -> Result<GroupAggregate, StatsError> {
    let metrics: Vec<f64> = subtasks.iter().map(|s| s.value).collect();
    let sizes: Vec<usize> = subtasks.iter().map(|s| s.n_samples).collect();
    let value = aggregate_subtask_metrics(&metrics, &sizes, weighting)?;
    let stderrs: Option<Vec<f64>> = subtasks.iter().map(|s| s.stderr).collect();
    let stderr = match stderrs {
        Some(stderrs) => Some(match weighting {
            GroupWeighting::BySize => pooled_sample_stderr(&stderrs, &sizes)?,
            GroupWeighting::Equal => unweighted_mean_stderr(&stderrs)?,
        }),
        None => None,
    };
    Ok(GroupAggregate {
        value,
        stderr,
        n_samples: sizes.iter().sum(),
    })
}

fn check_paired(
    left_len: usize,
    sizes_len: usize,
    statistic: &'static str,
    left_name: &'static str,
) -> Result<(), StatsError> {
    if left_len != sizes_len {
        return Err(StatsError::LengthMismatch {
            statistic,
            left_name,
            left_len,
            right_name: "sizes",
            right_len: sizes_len,
        });
    }
    if left_len == 0 {
        return Err(StatsError::NotEnoughValues {
            statistic,
            needed: 1,
            got: 0,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stderr_of_mean;
    use crate::test_util::assert_close;

    #[test]
    fn weighting_matches_lm_eval_test() {
        // lm-eval tests/test_metrics: metrics [.3, .2, .4], sizes [20, 40, 100].
        // Equal: (.3+.2+.4)/3 = .3. BySize: (6 + 8 + 40)/160 = .3375.
        let metrics = [0.3, 0.2, 0.4];
        let sizes = [20, 40, 100];
        assert_close(
            aggregate_subtask_metrics(&metrics, &sizes, GroupWeighting::Equal).unwrap(),
            0.3,
            1e-12,
        );
        assert_close(
            aggregate_subtask_metrics(&metrics, &sizes, GroupWeighting::BySize).unwrap(),
            0.3375,
            1e-12,
        );
    }

    fn accuracy(n_right: usize, n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| if i < n_right { 1.0 } else { 0.0 })
            .collect()
    }

    #[test]
    fn pooled_stderr_of_two_groups_by_hand() {
        // Group A: 40 of 100 right. s² = 100·.4·.6/99 = 24/99; se² = s²/100.
        //   (n−1)·se²·n = 99 · 24/9900 · 100 = 24.
        // Group B: 30 of 60 right. s² = 60·.25/59 = 15/59; se² = s²/60.
        //   (n−1)·se²·n = 59 · 15/3540 · 60 = 15.
        // pooled var = (24 + 15)/(160 − 2) = 39/158; stderr = sqrt(39/158/160) = 0.039277494
        let a = accuracy(40, 100);
        let b = accuracy(30, 60);
        let se_a = stderr_of_mean(&a).unwrap();
        let se_b = stderr_of_mean(&b).unwrap();
        let expected = (39.0f64 / 158.0 / 160.0).sqrt();
        let pooled = pooled_sample_stderr(&[se_a, se_b], &[100, 60]).unwrap();
        assert_close(pooled, expected, 1e-12);
        assert_close(pooled, 0.039277494, 1e-8);
        // The stderr of all 160 samples pooled together is close but larger, since
        // it also sees the gap between the group means (.4 vs .5):
        // 70/160 = .4375; s² = 160·.4375·.5625/159; stderr = sqrt(s²/160) = 0.039340...
        let all: Vec<f64> = a.iter().chain(&b).copied().collect();
        let concatenated = stderr_of_mean(&all).unwrap();
        assert_close(concatenated, (0.4375f64 * 0.5625 / 159.0).sqrt(), 1e-12);
        assert!(concatenated > pooled && concatenated - pooled < 1e-3);
    }

    #[test]
    fn unweighted_groups_use_the_stderr_of_a_mean_of_means() {
        // sqrt(0.3² + 0.4²) / 2 = 0.25; BySize keeps the pooled formula.
        assert_close(unweighted_mean_stderr(&[0.3, 0.4]).unwrap(), 0.25, 1e-12);
        let a = SubtaskResult {
            value: 0.4,
            stderr: Some(0.3),
            n_samples: 10,
        };
        let b = SubtaskResult {
            value: 0.6,
            stderr: Some(0.4),
            n_samples: 30,
        };
        let equal = aggregate_group(&[a, b], GroupWeighting::Equal).unwrap();
        assert_close(equal.stderr.unwrap(), 0.25, 1e-12);
        let by_size = aggregate_group(&[a, b], GroupWeighting::BySize).unwrap();
        assert_close(
            by_size.stderr.unwrap(),
            pooled_sample_stderr(&[0.3, 0.4], &[10, 30]).unwrap(),
            1e-12,
        );
        assert!(unweighted_mean_stderr(&[]).is_err());
    }

    #[test]
    fn group_aggregate_propagates_missing_stderr() {
        let with = SubtaskResult {
            value: 0.4,
            stderr: Some(0.05),
            n_samples: 100,
        };
        let without = SubtaskResult {
            value: 0.5,
            stderr: None,
            n_samples: 60,
        };
        let group = aggregate_group(&[with, without], GroupWeighting::BySize).unwrap();
        // (.4·100 + .5·60)/160 = 70/160 = .4375.
        assert_close(group.value, 0.4375, 1e-12);
        assert_eq!(group.stderr, None);
        assert_eq!(group.n_samples, 160);

        let group = aggregate_group(&[with, with], GroupWeighting::Equal).unwrap();
        // Two identical subtasks: pooled var = 2·99·.0025·100/198 = .25; sqrt(.25/200).
        assert_close(group.stderr.unwrap(), (0.25f64 / 200.0).sqrt(), 1e-12);
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(matches!(
            pooled_sample_stderr(&[0.1], &[1, 2]),
            Err(StatsError::LengthMismatch {
                left_len: 1,
                right_len: 2,
                ..
            })
        ));
        assert!(matches!(
            pooled_sample_stderr(&[0.1, 0.2], &[1, 1]),
            Err(StatsError::NotEnoughValues { .. })
        ));
        assert!(matches!(
            aggregate_subtask_metrics(&[], &[], GroupWeighting::Equal),
            Err(StatsError::NotEnoughValues { .. })
        ));
        assert!(matches!(
            aggregate_subtask_metrics(&[0.5], &[0], GroupWeighting::BySize),
            Err(StatsError::ZeroTotalWeight { .. })
        ));
    }
}
