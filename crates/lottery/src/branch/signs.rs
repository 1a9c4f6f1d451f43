//! `signs`: is it the zeros, the signs or the values? (Zhou et al. 2019, "Deconstructing Lottery
//! Tickets"). At each level the ticket's mask trains from variants of the ticket's starting
//! values: `signed_constant` (every kept weight sign(w₀)·σ, σ the standard deviation of its
//! layer's starting values), `random_sign` (the starting magnitudes with random signs) and
//! `shuffled` (the kept starting values permuted within their layer). The experiment's ticket
//! stands beside them in the summary.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Branch, LevelContext, Training};
use crate::error::Result;
use crate::masks::MaskSet;
use crate::results::VariantResult;
use crate::rng::Rng;
use crate::tensors::StateDict;

pub struct Signs;

/// No settings: the variants train exactly as the ticket does.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignsConfig {}

/// The variants, in the order they train.
pub const VARIANTS: [&str; 3] = ["signed_constant", "random_sign", "shuffled"];

impl Branch for Signs {
    type Config = SignsConfig;

    fn name(&self) -> &'static str {
        "signs"
    }
    fn about(&self) -> &'static str {
        "the ticket's mask from signed constants, random signs, shuffled values (Zhou et al.)"
    }
    fn level(
        &self,
        _cfg: &SignsConfig,
        ctx: &mut LevelContext,
    ) -> Result<BTreeMap<String, VariantResult>> {
        let seed = ctx.level.seed ^ (ctx.level.level as u64) << 24;
        let mut trainings = Vec::new();
        for variant in VARIANTS {
            let start = starting_values(variant, ctx.level.start, ctx.level.mask, seed);
            let net = ctx.level.setup.network(&start)?;
            trainings.push(Training::new(variant, net, ctx.level.mask.clone()));
        }
        let done = ctx.train_all(trainings)?;
        Ok(done.into_iter().map(|(n, r, _)| (n, r)).collect())
    }
}

/// `start` with the kept entries of every masked tensor replaced as `variant` says; pruned
/// entries and unmasked tensors (biases, norms) are left as they are.
pub fn starting_values(variant: &str, start: &StateDict, mask: &MaskSet, seed: u64) -> StateDict {
    let mut out = start.clone();
    for (name, m) in &mask.masks {
        let Some(t) = out.get_mut(name) else { continue };
        let kept: Vec<usize> = (0..m.len()).filter(|&i| m.data[i] != 0.0).collect();
        let mut rng = Rng::derive(seed, &format!("{variant} {name}"));
        match variant {
            "signed_constant" => {
                let sigma = std_dev(&t.data) as f32;
                for &i in &kept {
                    t.data[i] = sign(t.data[i]) * sigma;
                }
            }
            "random_sign" => {
                for &i in &kept {
                    let s = if rng.below(2) == 0 { 1.0 } else { -1.0 };
                    t.data[i] = t.data[i].abs() * s;
                }
            }
            "shuffled" => {
                let values: Vec<f32> = kept.iter().map(|&i| t.data[i]).collect();
                let order = rng.permutation(values.len());
                for (&i, &j) in kept.iter().zip(&order) {
                    t.data[i] = values[j];
                }
            }
            other => unreachable!("`{other}` is not one of {VARIANTS:?}"),
        }
    }
    out
}

/// The sign of `x`: 1, −1, or 0 for zero (a zero start has no sign to keep).
fn sign(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// Population standard deviation.
fn std_dev(xs: &[f32]) -> f64 {
    let n = xs.len().max(1) as f64;
    let mean = xs.iter().map(|&x| x as f64).sum::<f64>() / n;
    (xs.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensors::HostTensor;

    fn setup() -> (StateDict, MaskSet) {
        let w = vec![0.5, -1.5, 0.25, -0.25, 2.0, 0.0];
        let start: StateDict = [
            ("fc.weight".to_string(), HostTensor::new(vec![2, 3], w)),
            (
                "fc.bias".to_string(),
                HostTensor::new(vec![2], vec![0.1, 0.2]),
            ),
        ]
        .into();
        let mask = MaskSet {
            masks: [(
                "fc.weight".to_string(),
                HostTensor::new(vec![2, 3], vec![1.0, 1.0, 0.0, 1.0, 1.0, 0.0]),
            )]
            .into(),
        };
        (start, mask)
    }

    #[test]
    fn signed_constants_keep_signs_at_the_layers_std() {
        let (start, mask) = setup();
        let out = starting_values("signed_constant", &start, &mask, 1);
        // std of [0.5, -1.5, 0.25, -0.25, 2.0, 0.0]: mean 1/6, variance 6.625/6 − 1/36.
        let mean = 1.0f64 / 6.0;
        let var = (0.25 + 2.25 + 0.0625 + 0.0625 + 4.0) / 6.0 - mean * mean;
        let s = var.sqrt() as f32;
        assert_eq!(out["fc.weight"].data, vec![s, -s, 0.25, -s, s, 0.0]);
        assert_eq!(
            out["fc.bias"], start["fc.bias"],
            "unmasked tensors untouched"
        );
    }

    #[test]
    fn random_signs_keep_magnitudes_and_shuffles_keep_values() {
        let (start, mask) = setup();
        let w = &start["fc.weight"].data;
        let kept = [0usize, 1, 3, 4];
        let r = starting_values("random_sign", &start, &mask, 7);
        for i in 0..6 {
            let got = r["fc.weight"].data[i];
            if kept.contains(&i) {
                assert_eq!(got.abs(), w[i].abs(), "{i}");
            } else {
                assert_eq!(got, w[i], "pruned entry {i} untouched");
            }
        }
        assert_eq!(
            r,
            starting_values("random_sign", &start, &mask, 7),
            "seeded"
        );
        let flips: usize = (0..200)
            .map(|seed| {
                let r = starting_values("random_sign", &start, &mask, seed);
                kept.iter()
                    .filter(|&&i| r["fc.weight"].data[i] != w[i])
                    .count()
            })
            .sum();
        // Each of 4 × 200 signs flips with probability ½.
        assert!((300..500).contains(&flips), "{flips}");

        let s = starting_values("shuffled", &start, &mask, 3);
        let mut a: Vec<f32> = kept.iter().map(|&i| s["fc.weight"].data[i]).collect();
        let mut b: Vec<f32> = kept.iter().map(|&i| w[i]).collect();
        a.sort_by(f32::total_cmp);
        b.sort_by(f32::total_cmp);
        assert_eq!(a, b, "the same kept values, permuted");
        assert_eq!(s["fc.weight"].data[2], 0.25);
        assert_eq!(s["fc.weight"].data[5], 0.0);
    }
}
