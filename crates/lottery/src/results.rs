//! What an experiment or a branch concludes: one result per variant and level, and the
//! summary over replicates. `summary.json` is a [`Summary`]; reports read nothing else.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::data::Metric;
use crate::train;

/// One variant's result at one level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantResult {
    pub test_accuracy: f64,
    pub test_loss: f64,
    pub best_val_iteration: Option<usize>,
    pub test_accuracy_at_best_val: Option<f64>,
    /// Spread over replicates (equal to `test_accuracy` with one replicate).
    #[serde(default)]
    pub test_accuracy_min: f64,
    #[serde(default)]
    pub test_accuracy_max: f64,
    /// For values to predict: the test mean absolute error in the data's units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_mae: Option<f64>,
}

impl VariantResult {
    /// The result of one training: final test accuracy and the early-stopping point.
    pub fn from_outcome(outcome: &train::Outcome) -> Self {
        let last = outcome.last();
        let best = outcome.best_val();
        VariantResult {
            test_accuracy: last.test_accuracy,
            test_loss: last.test_loss,
            best_val_iteration: best.map(|b| b.iteration),
            test_accuracy_at_best_val: best.map(|b| b.test_accuracy),
            test_accuracy_min: last.test_accuracy,
            test_accuracy_max: last.test_accuracy,
            test_mae: last.test_mae,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelSummary {
    pub level: usize,
    /// Fraction of prunable weights kept.
    pub remaining: f64,
    /// Fraction of all parameters kept (ShrinkBench's second number).
    pub remaining_all: f64,
    /// Numbers a branch measured at this level beyond accuracies — instability, the accuracy
    /// of one-shot supermasks — by name; means over replicates in a summary.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub measures: BTreeMap<String, f64>,
    #[serde(flatten)]
    pub variants: BTreeMap<String, VariantResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub levels: Vec<LevelSummary>,
    /// What the `test_accuracy…` numbers are: accuracy unless named here (`"mse"`: the mean
    /// squared error of a series prediction, lower is better).
    #[serde(default, skip_serializing_if = "Metric::is_accuracy")]
    pub metric: Metric,
    /// For values to predict: the naive forecast's test metric (repeating a series' last
    /// value), which a model that learned anything beats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<f64>,
}

/// Means over replicates, with min and max of the test accuracy.
pub fn aggregate(reps: &[Vec<LevelSummary>]) -> Summary {
    let levels = (0..reps[0].len())
        .map(|l| {
            let rows: Vec<&LevelSummary> = reps.iter().map(|r| &r[l]).collect();
            let n = rows.len() as f64;
            let mut variants = BTreeMap::new();
            for name in rows[0].variants.keys() {
                let vs: Vec<&VariantResult> = rows.iter().map(|r| &r.variants[name]).collect();
                let mean =
                    |f: &dyn Fn(&VariantResult) -> f64| vs.iter().map(|v| f(v)).sum::<f64>() / n;
                let opt_mean = |f: &dyn Fn(&VariantResult) -> Option<f64>| {
                    vs.iter()
                        .map(|v| f(v))
                        .collect::<Option<Vec<f64>>>()
                        .map(|xs| xs.iter().sum::<f64>() / n)
                };
                variants.insert(
                    name.clone(),
                    VariantResult {
                        test_accuracy: mean(&|v| v.test_accuracy),
                        test_loss: mean(&|v| v.test_loss),
                        best_val_iteration: opt_mean(&|v| v.best_val_iteration.map(|i| i as f64))
                            .map(|x| x.round() as usize),
                        test_accuracy_at_best_val: opt_mean(&|v| v.test_accuracy_at_best_val),
                        test_accuracy_min: vs
                            .iter()
                            .map(|v| v.test_accuracy)
                            .fold(f64::INFINITY, f64::min),
                        test_accuracy_max: vs
                            .iter()
                            .map(|v| v.test_accuracy)
                            .fold(f64::NEG_INFINITY, f64::max),
                        test_mae: opt_mean(&|v| v.test_mae),
                    },
                );
            }
            let measures = rows[0]
                .measures
                .keys()
                .map(|k| {
                    let xs: Vec<f64> = rows
                        .iter()
                        .filter_map(|r| r.measures.get(k))
                        .copied()
                        .collect();
                    (k.clone(), xs.iter().sum::<f64>() / xs.len() as f64)
                })
                .collect();
            LevelSummary {
                level: rows[0].level,
                remaining: rows[0].remaining,
                remaining_all: rows[0].remaining_all,
                measures,
                variants,
            }
        })
        .collect();
    Summary {
        levels,
        metric: Metric::default(),
        baseline: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregate_means_and_spreads() {
        let row = |acc: f64| LevelSummary {
            level: 1,
            remaining: 0.8,
            remaining_all: 0.81,
            measures: [("instability".to_string(), acc - 0.9)].into(),
            variants: [(
                "ticket".to_string(),
                VariantResult {
                    test_accuracy: acc,
                    test_loss: 0.1,
                    best_val_iteration: Some(100),
                    test_accuracy_at_best_val: Some(acc),
                    test_accuracy_min: acc,
                    test_accuracy_max: acc,
                    test_mae: None,
                },
            )]
            .into(),
        };
        let s = aggregate(&[vec![row(0.9)], vec![row(0.95)]]);
        let t = &s.levels[0].variants["ticket"];
        assert!((t.test_accuracy - 0.925).abs() < 1e-12);
        assert_eq!((t.test_accuracy_min, t.test_accuracy_max), (0.9, 0.95));
        assert!((s.levels[0].measures["instability"] - 0.025).abs() < 1e-12);
        // Measures and variants share the row's JSON object and read back apart.
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Summary>(&json).unwrap(), s);
    }
}
