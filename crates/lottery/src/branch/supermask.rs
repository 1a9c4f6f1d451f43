//! `supermask`: how good is a mask with no training at all? (Zhou et al. 2019, "Deconstructing
//! Lottery Tickets"). The test accuracy of mask ⊙ starting weights, each with the starting values
//! (`init`) and with signed constants (`signed_constant`: sign(w₀)·σ, σ the standard deviation of
//! the layer's starting values), for these masks at each level:
//! - `ticket`: the level's own mask, found by iterative pruning;
//! - one per criterion (`magnitude` is Zhou et al.'s `large_final`, `large_final_same_sign`,
//!   `random`): chosen in one shot from the dense training (level 0) and the starting weights,
//!   keeping as many weights per layer as the ticket's mask does.
//!
//! At level 0 every mask keeps everything: each variant is the untrained network. There, one-shot
//! masks at `--fractions` pruned (uniform over the pruned layers) are recorded as measures
//! `oneshot_<percent>/<criterion>/<values>`. Nothing trains, so every run evaluates afresh.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::signs::starting_values;
use super::{Branch, LevelContext};
use crate::error::{Error, Result};
use crate::experiment::{Rewind, Setup};
use crate::masks::MaskSet;
use crate::prune;
use crate::results::VariantResult;
use crate::tensors::{HostTensor, StateDict};

pub struct Supermask;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupermaskConfig {
    /// Criteria that choose the masks (names from `lottery prune --criterion`).
    pub criteria: Vec<String>,
    /// Fractions pruned by the one-shot masks chosen from the dense training.
    pub fractions: Vec<f64>,
}

impl Default for SupermaskConfig {
    fn default() -> Self {
        SupermaskConfig {
            criteria: vec![
                "magnitude".into(),
                "large_final_same_sign".into(),
                "random".into(),
            ],
            fractions: vec![0.5, 0.8, 0.9],
        }
    }
}

/// The values under a mask: the starting weights themselves, or their signed constants.
pub const VALUES: [&str; 2] = ["init", "signed_constant"];

impl Branch for Supermask {
    type Config = SupermaskConfig;

    fn name(&self) -> &'static str {
        "supermask"
    }
    fn about(&self) -> &'static str {
        "untrained accuracy of mask ⊙ init per criterion, with init values or signed constants (Zhou et al.)"
    }
    fn validate(&self, cfg: &SupermaskConfig, setup: &Setup, _init: &StateDict) -> Result<()> {
        if matches!(setup.config.rewind, Rewind::LearningRate | Rewind::None) {
            return Err(Error::config(
                "supermask",
                "this experiment's levels start from trained weights (rewind lr/none); a supermask masks the initial weights",
            ));
        }
        for name in &cfg.criteria {
            if prune::criterion::lookup(name)?.needs().gradients {
                return Err(Error::config(
                    "criteria",
                    format!(
                        "{name} scores gradients, not the trained and initial weights a supermask compares"
                    ),
                ));
            }
        }
        if let Some(f) = cfg.fractions.iter().find(|f| !(**f > 0.0 && **f < 1.0)) {
            return Err(Error::config(
                "fractions",
                format!("{f} is not a fraction in (0, 1)"),
            ));
        }
        Ok(())
    }
    fn level(
        &self,
        cfg: &SupermaskConfig,
        ctx: &mut LevelContext,
    ) -> Result<BTreeMap<String, VariantResult>> {
        let setup = ctx.level.setup;
        let start = ctx.level.start;
        let seed = ctx.level.seed ^ (ctx.level.level as u64) << 24;
        let dense = ctx.dense_trained()?;
        // Every criterion chooses from all weights, by the dense training and the start.
        let everything = MaskSet {
            masks: ctx
                .level
                .mask
                .masks
                .iter()
                .map(|(n, m)| {
                    (
                        n.clone(),
                        HostTensor::new(m.shape.clone(), vec![1.0; m.len()]),
                    )
                })
                .collect(),
        };
        let choose = |criterion: &str, like: &MaskSet| {
            let pctx = prune::Context {
                trained: &dense,
                rewind: Some(start),
                mask: &everything,
                gradients: None,
                seed,
            };
            prune::keep_like(&pctx, prune::criterion::lookup(criterion)?, like)
        };
        let mut out = BTreeMap::new();
        let mut masks = vec![("ticket".to_string(), ctx.level.mask.clone())];
        for criterion in &cfg.criteria {
            masks.push((criterion.clone(), choose(criterion, ctx.level.mask)?));
        }
        for (name, mask) in &masks {
            for values in VALUES {
                let r = untrained(setup, start, mask, values, seed)?;
                out.insert(format!("{name}/{values}"), r);
            }
        }
        if ctx.level.level == 0 {
            for &fraction in &cfg.fractions {
                let like = MaskSet {
                    masks: everything
                        .masks
                        .iter()
                        .map(|(n, m)| {
                            let mut t = m.clone();
                            let pruned = prune::prune_count(t.len(), fraction);
                            t.data[..pruned].iter_mut().for_each(|k| *k = 0.0);
                            (n.clone(), t)
                        })
                        .collect(),
                };
                for criterion in &cfg.criteria {
                    let mask = choose(criterion, &like)?;
                    for values in VALUES {
                        let r = untrained(setup, start, &mask, values, seed)?;
                        let name = format!("oneshot_{}/{criterion}/{values}", fraction * 100.0);
                        ctx.measure(name, r.test_accuracy);
                    }
                }
            }
        }
        Ok(out)
    }
}

/// The test result of `mask` ⊙ `values` of `start`, untrained.
pub fn untrained(
    setup: &Setup,
    start: &StateDict,
    mask: &MaskSet,
    values: &str,
    seed: u64,
) -> Result<VariantResult> {
    let mut weights = match values {
        "signed_constant" => starting_values(values, start, mask, seed),
        _ => start.clone(),
    };
    mask.apply(&mut weights);
    super::evaluate(setup, &weights)
}
