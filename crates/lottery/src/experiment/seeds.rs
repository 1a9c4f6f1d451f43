//! The init lottery: one experiment from many initial seeds with everything else fixed (the data
//! order included), and what it says about the users' question — how much the initialisation
//! alone decides whether a network generalises, and whether pruning changes that: does IMP from a
//! "bad" initialisation find a ticket that does well, does a "good" one's ticket stay good?
//!
//! The seeds are split at the median of the dense network's validation metric (what a user can
//! see before testing) into a better and a worse half; each half's tickets and random
//! reinitialisations are then compared level by level on the test set.

use serde::{Deserialize, Serialize};

use super::ExperimentConfig;
use crate::data::Metric;
use crate::results::Summary;

/// Experiment `i` of a study over `base`: its initialisation seed moved by `i`, the data order
/// (`train.data_seed`) as in `base`, so seeds differ in their initial weights only.
pub fn seed_config(base: &ExperimentConfig, i: usize) -> ExperimentConfig {
    ExperimentConfig {
        seed: base.seed.wrapping_add(i as u64),
        ..base.clone()
    }
}

/// One seed's experiment, as the study reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedRun {
    pub seed: u64,
    /// The dense network's validation metric at the end of training.
    pub dense_val: f64,
    pub summary: Summary,
}

impl SeedRun {
    /// The dense network's test metric.
    pub fn dense_test(&self) -> f64 {
        self.at(0, "ticket")
            .expect("every experiment has its dense level")
    }

    /// `variant`'s test metric at level `level`, if it ran.
    pub fn at(&self, level: usize, variant: &str) -> Option<f64> {
        let l = self.summary.levels.iter().find(|l| l.level == level)?;
        Some(l.variants.get(variant)?.test_accuracy)
    }
}

/// One half of the seeds and its means per level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// `better` or `worse` (by the dense validation metric).
    pub name: String,
    pub seeds: Vec<u64>,
    /// Per level: weights remaining (fraction), mean test metric of the tickets and of the
    /// random reinitialisations (`None` at level 0 or without that control).
    pub levels: Vec<GroupLevel>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupLevel {
    pub level: usize,
    pub remaining: f64,
    pub ticket: f64,
    pub reinit: Option<f64>,
}

/// What `seeds.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Study {
    pub metric: Metric,
    /// The naive forecast's test metric, for series.
    pub baseline: Option<f64>,
    pub runs: Vec<SeedRun>,
    pub groups: Vec<Group>,
}

impl Study {
    /// The study of `runs` (at least two), split at the median dense validation metric.
    pub fn of(mut runs: Vec<SeedRun>) -> Study {
        let metric = runs[0].summary.metric;
        // Best first: the highest accuracy, the lowest error.
        let key = |r: &SeedRun| match metric.higher_is_better() {
            true => -r.dense_val,
            false => r.dense_val,
        };
        runs.sort_by(|a, b| key(a).total_cmp(&key(b)));
        let half = runs.len() / 2;
        let groups = [("better", &runs[..half]), ("worse", &runs[half..])]
            .into_iter()
            .map(|(name, rs)| group(name, rs))
            .collect();
        Study {
            metric,
            baseline: runs[0].summary.baseline,
            groups,
            runs,
        }
    }

    /// The dense test metrics, best first: the distribution the users asked about.
    pub fn dense_tests(&self) -> Vec<f64> {
        let mut v: Vec<f64> = self.runs.iter().map(SeedRun::dense_test).collect();
        v.sort_by(f64::total_cmp);
        if self.metric.higher_is_better() {
            v.reverse();
        }
        v
    }
}

fn group(name: &str, runs: &[SeedRun]) -> Group {
    let levels = runs[0]
        .summary
        .levels
        .iter()
        .map(|l| {
            let mean = |variant: &str| -> Option<f64> {
                let vs: Vec<f64> = runs.iter().filter_map(|r| r.at(l.level, variant)).collect();
                (vs.len() == runs.len()).then(|| vs.iter().sum::<f64>() / vs.len() as f64)
            };
            GroupLevel {
                level: l.level,
                remaining: l.remaining,
                ticket: mean("ticket").expect("every level has its ticket"),
                reinit: mean("reinit"),
            }
        })
        .collect();
    Group {
        name: name.into(),
        seeds: runs.iter().map(|r| r.seed).collect(),
        levels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{LevelSummary, VariantResult};

    fn run(seed: u64, val: f64, tests: &[(f64, Option<f64>)]) -> SeedRun {
        let result = |v: f64| VariantResult {
            test_accuracy: v,
            test_loss: v,
            best_val_iteration: None,
            test_accuracy_at_best_val: None,
            test_accuracy_min: v,
            test_accuracy_max: v,
            test_mae: None,
        };
        let levels = tests
            .iter()
            .enumerate()
            .map(|(level, &(ticket, reinit))| {
                let mut variants = std::collections::BTreeMap::new();
                variants.insert("ticket".to_string(), result(ticket));
                if let Some(r) = reinit {
                    variants.insert("reinit".to_string(), result(r));
                }
                LevelSummary {
                    level,
                    remaining: 0.8f64.powi(level as i32),
                    remaining_all: 0.8f64.powi(level as i32),
                    measures: Default::default(),
                    variants,
                }
            })
            .collect();
        SeedRun {
            seed,
            dense_val: val,
            summary: Summary {
                levels,
                metric: Metric::Mse,
                baseline: Some(1.0),
            },
        }
    }

    #[test]
    fn seeds_split_at_the_median_validation_error_and_average_per_level() {
        let runs = vec![
            run(0, 0.9, &[(0.8, None), (0.7, Some(0.9))]),
            run(1, 0.1, &[(0.2, None), (0.3, Some(0.5))]),
            run(2, 0.5, &[(0.6, None), (0.5, Some(0.7))]),
            run(3, 0.2, &[(0.1, None), (0.2, Some(0.4))]),
        ];
        let s = Study::of(runs);
        // Lower is better for an error: seeds 1 and 3 are the better half.
        assert_eq!(s.groups[0].name, "better");
        assert_eq!(s.groups[0].seeds, [1, 3]);
        assert_eq!(s.groups[1].seeds, [2, 0]);
        let l1 = &s.groups[0].levels[1];
        assert!((l1.ticket - 0.25).abs() < 1e-12);
        assert!((l1.reinit.unwrap() - 0.45).abs() < 1e-12);
        assert_eq!(s.groups[1].levels[0].reinit, None);
        assert_eq!(s.dense_tests(), [0.1, 0.2, 0.6, 0.8]);
        assert_eq!(s.baseline, Some(1.0));
    }

    #[test]
    fn seeds_differ_in_initialisation_only() {
        let base = crate::experiment::presets::preset("ts-cnn").unwrap();
        let c = seed_config(&base, 3);
        assert_eq!(c.seed, base.seed + 3);
        assert_eq!(c.train.data_seed, base.train.data_seed);
        assert_eq!(seed_config(&base, 0), base);
    }
}
