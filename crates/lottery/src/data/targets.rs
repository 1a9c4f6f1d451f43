//! What a dataset's examples are labelled with — a class, or a value to predict — and what
//! follows from it: how many outputs the network has, the loss it trains on, and the two numbers
//! evaluation reports (the loss, and the task's metric: accuracy, or the squared error in the
//! data's own units). The one place that tells classification from regression.

use burn::nn::loss::{CrossEntropyLossConfig, MseLoss, Reduction};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// The targets of a set's examples, in example order.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// A class per example, out of `classes`; the network outputs one logit per class.
    Classes { labels: Vec<u32>, classes: usize },
    /// A value per example, normalised; the network outputs it. `scale` turns a normalised
    /// error back into the data's units (the target's standard deviation); `naive` is each
    /// example's naive forecast (for a series: its last value), the baseline a model must beat.
    Values {
        values: Vec<f32>,
        scale: f32,
        naive: Vec<f32>,
    },
}

impl Targets {
    pub fn len(&self) -> usize {
        match self {
            Targets::Classes { labels, .. } => labels.len(),
            Targets::Values { values, .. } => values.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The network's outputs per example.
    pub fn outputs(&self) -> usize {
        match self {
            Targets::Classes { classes, .. } => *classes,
            Targets::Values { .. } => 1,
        }
    }

    /// The class labels, for a classification set.
    pub fn labels(&self) -> Option<&[u32]> {
        match self {
            Targets::Classes { labels, .. } => Some(labels),
            Targets::Values { .. } => None,
        }
    }

    /// The mean absolute error of `outputs` in the data's units, for values to predict.
    pub fn mae(&self, outputs: &[f32]) -> Option<f64> {
        match self {
            Targets::Classes { .. } => None,
            Targets::Values { values, scale, .. } => {
                let sum: f64 = (outputs.iter().zip(values))
                    .map(|(&o, &t)| (o as f64 - t as f64).abs())
                    .sum();
                Some(sum / values.len().max(1) as f64 * *scale as f64)
            }
        }
    }

    /// The metric of the naive forecast (a series' last value), for values to predict.
    pub fn baseline(&self) -> Option<f64> {
        match self {
            Targets::Classes { .. } => None,
            Targets::Values { naive, .. } => Some(self.score(naive).1),
        }
    }

    /// What the second number of [`Targets::score`] is.
    pub fn metric(&self) -> Metric {
        match self {
            Targets::Classes { .. } => Metric::Accuracy,
            Targets::Values { .. } => Metric::Mse,
        }
    }

    /// The targets of examples `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Targets {
        match self {
            Targets::Classes { labels, classes } => Targets::Classes {
                labels: indices.iter().map(|&i| labels[i]).collect(),
                classes: *classes,
            },
            Targets::Values {
                values,
                scale,
                naive,
            } => Targets::Values {
                values: indices.iter().map(|&i| values[i]).collect(),
                scale: *scale,
                naive: indices.iter().map(|&i| naive[i]).collect(),
            },
        }
    }

    /// Each target as 32 bits, for hashing a dataset's content.
    pub fn bits(&self) -> Vec<u32> {
        match self {
            Targets::Classes { labels, .. } => labels.clone(),
            Targets::Values {
                values,
                scale,
                naive,
            } => (values.iter().chain([scale]).chain(naive))
                .map(|v| v.to_bits())
                .collect(),
        }
    }

    /// The mean loss of `outputs` (`[example][output]`) and the metric: cross-entropy and
    /// accuracy, or the normalised squared error and the squared error in the data's units.
    pub fn score(&self, outputs: &[f32]) -> (f64, f64) {
        let n = self.len().max(1) as f64;
        match self {
            Targets::Classes { labels, classes } => {
                let (mut loss, mut correct) = (0.0f64, 0usize);
                for (row, &label) in outputs.chunks_exact(*classes).zip(labels) {
                    let (l, hit) = cross_entropy(row, label as usize);
                    loss += l;
                    correct += hit as usize;
                }
                (loss / n, correct as f64 / n)
            }
            Targets::Values { values, scale, .. } => {
                let sq: f64 = (outputs.iter().zip(values))
                    .map(|(&o, &t)| (o as f64 - t as f64).powi(2))
                    .sum();
                let mse = sq / n;
                (mse, mse * (*scale as f64).powi(2))
            }
        }
    }
}

/// The number evaluation reports beside the loss. Result files keep it under the `accuracy`
/// keys they have always had, and name it in a `metric` key when it is not accuracy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    #[default]
    Accuracy,
    /// Mean squared error in the data's units.
    Mse,
}

impl Metric {
    pub fn is_accuracy(&self) -> bool {
        *self == Metric::Accuracy
    }

    /// A value as tables show it: accuracy in percent, an error with four significant digits.
    pub fn cell(self, v: f64) -> String {
        match self {
            Metric::Accuracy => format!("{:.2}", v * 100.0),
            Metric::Mse => format!("{v:.3e}"),
        }
    }

    /// A table column's title for `what` (`ticket acc%`, `ticket MSE`).
    pub fn column(self, what: &str) -> String {
        match self {
            Metric::Accuracy => format!("{what} acc%"),
            Metric::Mse => format!("{what} MSE"),
        }
    }

    /// `accuracy 97.12%` or `MSE 1.631e-3`, for a sentence.
    pub fn describe(self, v: f64) -> String {
        match self {
            Metric::Accuracy => format!("accuracy {}%", self.cell(v)),
            Metric::Mse => format!("MSE {}", self.cell(v)),
        }
    }

    /// A value as plots draw it: accuracy in percent, an error as it is.
    pub fn plotted(self, v: f64) -> f64 {
        match self {
            Metric::Accuracy => v * 100.0,
            Metric::Mse => v,
        }
    }

    /// The plots' axis title.
    pub fn axis(self) -> &'static str {
        match self {
            Metric::Accuracy => "test accuracy (%)",
            Metric::Mse => "test MSE (lower is better)",
        }
    }

    /// `Test accuracy` or `Test MSE`, to begin a plot's title.
    pub fn title(self) -> &'static str {
        match self {
            Metric::Accuracy => "Test accuracy",
            Metric::Mse => "Test MSE",
        }
    }

    /// The spread `(max − min) / 2` as tables show it.
    pub fn half_spread(self, min: f64, max: f64) -> String {
        match self {
            Metric::Accuracy => format!("{:.2}", (max - min) * 50.0),
            Metric::Mse => format!("{:.1e}", (max - min) / 2.0),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::Mse => "MSE",
        }
    }

    /// Its name in files (`summary.json`'s `metric`, CSV columns).
    pub fn key(self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::Mse => "mse",
        }
    }

    pub fn higher_is_better(self) -> bool {
        self == Metric::Accuracy
    }
}

/// Cross-entropy of one row of logits, and whether its arg-max is the label.
fn cross_entropy(row: &[f32], label: usize) -> (f64, bool) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let lse = max
        + row
            .iter()
            .map(|&z| (z as f64 - max).exp())
            .sum::<f64>()
            .ln();
    let argmax = row
        .iter()
        .enumerate()
        .fold(0, |best, (i, &z)| if z > row[best] { i } else { best });
    (lse - row[label] as f64, argmax == label)
}

/// A training batch's targets, gathered example by example, and the loss on them.
#[derive(Debug, Default, PartialEq)]
pub struct Batch {
    labels: Vec<i64>,
    values: Vec<f32>,
}

impl Batch {
    pub fn clear(&mut self) {
        self.labels.clear();
        self.values.clear();
    }

    /// Adds example `i` of `targets`.
    pub fn push(&mut self, targets: &Targets, i: usize) {
        match targets {
            Targets::Classes { labels, .. } => self.labels.push(labels[i] as i64),
            Targets::Values { values, .. } => self.values.push(values[i]),
        }
    }

    /// The mean loss of `out` (`[batch, outputs]`) on this batch: cross-entropy for classes,
    /// squared error for values.
    pub fn loss(&self, out: Tensor<2>, device: &Device) -> Tensor<1> {
        let [b, _] = out.dims();
        if self.values.is_empty() {
            let y = Tensor::<1, Int>::from_data(TensorData::new(self.labels.clone(), [b]), device);
            CrossEntropyLossConfig::new().init(device).forward(out, y)
        } else {
            let y = Tensor::<2>::from_data(TensorData::new(self.values.clone(), [b, 1]), device);
            MseLoss::new().forward(out, y, Reduction::Mean).reshape([1])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_entropy_of_uniform_logits_is_ln_k() {
        let (l, _) = cross_entropy(&[0.0; 10], 3);
        assert!((l - 10f64.ln()).abs() < 1e-12);
        let (l, hit) = cross_entropy(&[0.0, 100.0, 0.0], 1);
        assert!(l < 1e-9 && hit);
    }

    #[test]
    fn classification_score_averages_over_examples() {
        let t = Targets::Classes {
            labels: vec![0, 1, 1],
            classes: 2,
        };
        // Rows: right (uniform, ties go to class 0), wrong, right.
        let (loss, acc) = t.score(&[0.0, 0.0, 5.0, 0.0, 0.0, 5.0]);
        let l = |z: f64| (1.0 + (-z).exp()).ln();
        assert!((loss - (2f64.ln() + l(-5.0) + l(5.0)) / 3.0).abs() < 1e-12);
        assert!((acc - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn regression_score_in_normalised_and_data_units() {
        let t = Targets::Values {
            values: vec![1.0, -1.0],
            scale: 3.0,
            naive: vec![0.0, 0.0],
        };
        assert!((t.baseline().unwrap() - 9.0).abs() < 1e-12);
        // |0.5| and |1.0| in normalised units, ×3 in the data's.
        assert!((t.mae(&[1.5, 0.0]).unwrap() - 3.0 * 0.75).abs() < 1e-12);
        let (loss, mse) = t.score(&[1.5, 0.0]);
        assert!((loss - (0.25 + 1.0) / 2.0).abs() < 1e-12);
        assert!((mse - 9.0 * 0.625).abs() < 1e-12);
        assert_eq!(t.outputs(), 1);
        assert_eq!(t.metric().name(), "MSE");
        assert!(!t.metric().higher_is_better());
    }

    #[test]
    fn batch_losses_match_the_scores() {
        let device = Device::flex();
        let out = [0.3f32, -0.2, 1.1, 0.4, 0.0, -0.7];
        for targets in [
            Targets::Classes {
                labels: vec![2, 0],
                classes: 3,
            },
            Targets::Values {
                values: vec![0.1, -0.4, 0.9, 2.0, 0.0, -1.0],
                scale: 2.0,
                naive: vec![0.0; 6],
            },
        ] {
            let mut batch = Batch::default();
            (0..targets.len()).for_each(|i| batch.push(&targets, i));
            let k = targets.outputs();
            let t =
                Tensor::<2>::from_data(TensorData::new(out.to_vec(), [out.len() / k, k]), &device);
            let loss: f32 = batch.loss(t, &device).into_scalar();
            let (want, _) = targets.score(&out);
            assert!(
                (loss as f64 - want).abs() < 1e-5,
                "{targets:?}: {loss} vs {want}"
            );
        }
    }
}
