//! `stability`: is the ticket stable under SGD noise? Linear mode connectivity (Frankle et al.
//! 2020). From each level's starting point, copies of the ticket train under its mask with
//! different data orders — the experiment's own ticket is copy 0 — and the test error is
//! evaluated at `--points` evenly spaced points on the straight line between each pair of
//! solutions. `instability` = the highest error on the path − the mean of its two ends (a
//! fraction, like accuracies; the mean over pairs when there are more than two copies).
//!
//! The control that shows the measurement can see a barrier: a network from another
//! initialisation trained under the same mask (`other_init`, with copy 0's data order), and the
//! path from the ticket to it (`instability_two_inits`). Every tensor is interpolated, biases
//! and normalisation statistics too; pruned weights are zero at both ends and stay zero.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Branch, LevelContext, Training};
use crate::error::{Error, Result};
use crate::experiment::Setup;
use crate::files::{read_json, write_json};
use crate::layout::RunDir;
use crate::report::chart::{Chart, Point, Series, XAxis};
use crate::report::{curve_levels, save_chart};
use crate::results::{Summary, VariantResult};
use crate::tensors::StateDict;
use crate::train::eval::evaluate_valid;

pub struct Stability;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StabilityConfig {
    /// Trained copies per level, the experiment's ticket included.
    pub copies: usize,
    /// Evaluation points on each path, both ends included.
    pub points: usize,
    /// Also train a network from another initialisation under the mask, as the control.
    pub two_inits: bool,
}

impl Default for StabilityConfig {
    fn default() -> Self {
        StabilityConfig {
            copies: 2,
            points: 11,
            two_inits: true,
        }
    }
}

/// The test error along the path between copies 0 and 1 (and to the other initialisation's
/// solution), written as `path.json` in each level's directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathErrors {
    pub alpha: Vec<f64>,
    pub error: Vec<f64>,
    pub error_two_inits: Option<Vec<f64>>,
}

impl Branch for Stability {
    type Config = StabilityConfig;

    fn name(&self) -> &'static str {
        "stability"
    }
    fn about(&self) -> &'static str {
        "instability under SGD noise: error along the line between copies trained on other data orders (Frankle et al. 2020)"
    }
    fn validate(&self, cfg: &StabilityConfig, _setup: &Setup, _init: &StateDict) -> Result<()> {
        if cfg.copies < 2 {
            return Err(Error::config(
                "copies",
                "needs at least 2 copies to compare",
            ));
        }
        if cfg.points < 2 {
            return Err(Error::config("points", "a path needs at least its 2 ends"));
        }
        Ok(())
    }
    fn level(
        &self,
        cfg: &StabilityConfig,
        ctx: &mut LevelContext,
    ) -> Result<BTreeMap<String, VariantResult>> {
        let setup = ctx.level.setup;
        let mask = ctx.level.mask.clone();
        let data_seed = ctx.level.train.data_seed;
        let mut trainings = Vec::new();
        for k in 1..cfg.copies {
            let net = setup.network(ctx.level.start)?;
            trainings.push(Training {
                data_seed: Some(data_seed.wrapping_add(0x9e37_79b9 * k as u64)),
                ..Training::new(format!("copy_{k}"), net, mask.clone())
            });
        }
        if cfg.two_inits {
            let seed = ctx
                .level
                .seed
                .wrapping_add(7_000_001 * (ctx.level.level as u64 + 1));
            trainings.push(Training::new(
                "other_init",
                setup.fresh(seed)?,
                mask.clone(),
            ));
        }
        let mut solutions = vec![ctx.trained.clone()];
        let mut other = None;
        let mut out = BTreeMap::new();
        for (name, result, weights) in ctx.train_all(trainings)? {
            if name == "other_init" {
                other = Some(weights);
            } else {
                solutions.push(weights);
            }
            out.insert(name, result);
        }
        let mut paths = Vec::new();
        for i in 0..solutions.len() {
            for j in i + 1..solutions.len() {
                paths.push(path_errors(
                    setup,
                    &solutions[i],
                    &solutions[j],
                    cfg.points,
                )?);
            }
        }
        let mean = paths.iter().map(|p| instability(p)).sum::<f64>() / paths.len() as f64;
        ctx.measure("instability", mean);
        let mut record = PathErrors {
            alpha: alphas(cfg.points),
            error: paths.swap_remove(0),
            error_two_inits: None,
        };
        if let Some(weights) = other {
            let path = path_errors(setup, &solutions[0], &weights, cfg.points)?;
            ctx.measure("instability_two_inits", instability(&path));
            record.error_two_inits = Some(path);
        }
        write_json(&ctx.dir().join("path.json"), &record)?;
        Ok(out)
    }
    fn plots(&self, _cfg: &StabilityConfig, out: &RunDir, summary: &Summary) -> Result<()> {
        let levels = curve_levels(summary);
        let root = out.first_replicate();
        let mut series = Vec::new();
        let line = |name: String, alpha: &[f64], error: &[f64]| Series {
            name,
            points: alpha
                .iter()
                .zip(error)
                .map(|(&a, &e)| {
                    let y = e * 100.0;
                    Point {
                        x: a * 100.0,
                        y,
                        lo: y,
                        hi: y,
                    }
                })
                .collect(),
        };
        for (i, &level) in levels.iter().enumerate() {
            let path = root.level(level).join("path.json");
            let Ok(p) = read_json::<PathErrors>(&path) else {
                continue;
            };
            let remaining = summary
                .levels
                .iter()
                .find(|l| l.level == level)
                .map_or(f64::NAN, |l| l.remaining * 100.0);
            series.push(line(format!("ticket {remaining:.1}%"), &p.alpha, &p.error));
            if i + 1 == levels.len()
                && let Some(e) = &p.error_two_inits
            {
                series.push(line(format!("two inits {remaining:.1}%"), &p.alpha, e));
            }
        }
        save_chart(
            &out.plots().join("stability"),
            &Chart {
                title: "Test error on the line between two solutions",
                xlabel: "position between the solutions (%)",
                ylabel: "test error (%)",
                axis: XAxis::Iterations,
                series: &series,
            },
        )
    }
}

/// `n` evenly spaced points from 0 to 1.
fn alphas(n: usize) -> Vec<f64> {
    (0..n).map(|i| i as f64 / (n - 1) as f64).collect()
}

/// (1 − α)·a + α·b, tensor by tensor.
pub fn interpolate(a: &StateDict, b: &StateDict, alpha: f64) -> StateDict {
    let (wa, wb) = ((1.0 - alpha) as f32, alpha as f32);
    a.iter()
        .map(|(name, ta)| {
            let mut t = ta.clone();
            for (x, &y) in t.data.iter_mut().zip(&b[name].data) {
                *x = wa * *x + wb * y;
            }
            (name.clone(), t)
        })
        .collect()
}

/// Test error at `points` evenly spaced points from `a` (first) to `b` (last).
pub fn path_errors(setup: &Setup, a: &StateDict, b: &StateDict, points: usize) -> Result<Vec<f64>> {
    alphas(points)
        .into_iter()
        .map(|alpha| {
            let net = setup.network(&interpolate(a, b, alpha))?;
            Ok(1.0 - evaluate_valid(&net, &setup.data.test).1)
        })
        .collect()
}

/// The highest error on a path minus the mean of its two ends.
pub fn instability(errors: &[f64]) -> f64 {
    let ends = (errors[0] + errors[errors.len() - 1]) / 2.0;
    errors.iter().copied().fold(f64::NEG_INFINITY, f64::max) - ends
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensors::HostTensor;

    #[test]
    fn instability_is_the_barrier_above_the_ends() {
        assert_eq!(instability(&[0.02, 0.02, 0.02]), 0.0);
        assert!((instability(&[0.02, 0.30, 0.04]) - 0.27).abs() < 1e-12);
        // A path that only falls has no barrier above its worse end, but sits above the mean.
        assert!((instability(&[0.10, 0.05, 0.02]) - 0.04).abs() < 1e-12);
    }

    #[test]
    fn interpolation_is_linear_and_keeps_zeros() {
        let d =
            |v: Vec<f32>| -> StateDict { [("w".to_string(), HostTensor::new(vec![3], v))].into() };
        let (a, b) = (d(vec![1.0, 0.0, -2.0]), d(vec![3.0, 0.0, 2.0]));
        assert_eq!(interpolate(&a, &b, 0.0), a);
        assert_eq!(interpolate(&a, &b, 1.0), b);
        assert_eq!(interpolate(&a, &b, 0.25)["w"].data, vec![1.5, 0.0, -1.0]);
        assert_eq!(alphas(5), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
    }
}
