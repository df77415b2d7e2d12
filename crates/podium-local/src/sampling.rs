//! Choosing the next token from logits: greedy, or seeded temperature / top-p sampling.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::model::argmax;

/// How to pick tokens. `temperature <= 0` or `do_sample == false` means greedy.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    pub temperature: f64,
    pub top_p: f64,
    pub do_sample: bool,
    pub seed: u64,
}

impl SamplingParams {
    pub fn greedy() -> SamplingParams {
        SamplingParams {
            temperature: 0.0,
            top_p: 1.0,
            do_sample: false,
            seed: 0,
        }
    }

    fn is_greedy(&self) -> bool {
        !self.do_sample || self.temperature <= 0.0
    }
}

pub(crate) struct Sampler {
    params: SamplingParams,
    rng: ChaCha8Rng,
}

impl Sampler {
    pub(crate) fn new(params: &SamplingParams) -> Sampler {
        Sampler {
            params: params.clone(),
            rng: ChaCha8Rng::seed_from_u64(params.seed),
        }
    }

    pub(crate) fn sample(&mut self, logits: &[f32]) -> u32 {
        if self.params.is_greedy() {
            return argmax(logits);
        }
        let inv_t = 1.0 / self.params.temperature;
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut probs: Vec<(u32, f64)> = logits
            .iter()
            .enumerate()
            .map(|(i, &l)| (i as u32, (f64::from(l - max) * inv_t).exp()))
            .collect();
        let total: f64 = probs.iter().map(|p| p.1).sum();
        // Sort by probability, highest first, ties by id so the order is reproducible.
        probs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let top_p = self.params.top_p;
        let kept = if top_p > 0.0 && top_p < 1.0 {
            let mut mass = 0.0;
            let mut n = 0;
            for p in &probs {
                mass += p.1 / total;
                n += 1;
                if mass >= top_p {
                    break;
                }
            }
            n
        } else {
            probs.len()
        };
        let probs = &probs[..kept.max(1)];
        let kept_total: f64 = probs.iter().map(|p| p.1).sum();
        let mut draw = self.rng.random::<f64>() * kept_total;
        for &(id, p) in probs {
            if draw < p {
                return id;
            }
            draw -= p;
        }
        probs[probs.len() - 1].0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_picks_the_arg_max() {
        let mut sampler = Sampler::new(&SamplingParams::greedy());
        assert_eq!(sampler.sample(&[0.1, 3.0, 2.0]), 1);
    }

    #[test]
    fn same_seed_same_draws_and_top_p_cuts_the_tail() {
        let params = SamplingParams {
            temperature: 1.0,
            top_p: 0.5,
            do_sample: true,
            seed: 7,
        };
        // Token 0 holds far more than half the mass, so top-p 0.5 keeps only it.
        let logits = [5.0, 0.0, 0.0, 0.0];
        let mut sampler = Sampler::new(&params);
        assert!((0..20).all(|_| sampler.sample(&logits) == 0));

        let params = SamplingParams {
            top_p: 1.0,
            ..params
        };
        let flat = [0.0f32; 8];
        let draws = |p: &SamplingParams| {
            let mut s = Sampler::new(p);
            (0..16).map(|_| s.sample(&flat)).collect::<Vec<_>>()
        };
        assert_eq!(draws(&params), draws(&params));
        assert!(draws(&params).iter().any(|&t| t != draws(&params)[0]));
    }
}
