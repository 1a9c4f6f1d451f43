//! Masks: which weights a ticket keeps. A 0/1 tensor per prunable tensor, keyed by the
//! PyTorch-style name and stored in PyTorch's layout, like the weights they mask.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::tensors::{self, HostTensor, StateDict};

/// Each tensor's PyTorch shape, by name: what masks are made for and checked against.
pub type Shapes = BTreeMap<String, Vec<usize>>;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MaskSet {
    pub masks: BTreeMap<String, HostTensor>,
}

impl MaskSet {
    /// Keeps everything in the named tensors; `shapes` gives each tensor's PyTorch shape
    /// (names it does not hold get no mask).
    pub fn ones(shapes: &Shapes, names: &[String]) -> Self {
        let masks = (names.iter())
            .filter_map(|name| {
                let shape = shapes.get(name)?.clone();
                let n = shape.iter().product();
                Some((name.clone(), HostTensor::new(shape, vec![1.0; n])))
            })
            .collect();
        MaskSet { masks }
    }

    pub fn kept(&self) -> usize {
        self.masks.values().map(HostTensor::count_nonzero).sum()
    }

    pub fn total(&self) -> usize {
        self.masks.values().map(HostTensor::len).sum()
    }

    /// Fraction of masked weights kept.
    pub fn density(&self) -> f64 {
        self.kept() as f64 / self.total().max(1) as f64
    }

    /// Checks every mask names one of `shapes`' tensors, has its shape and holds only 0 and 1.
    pub fn check(&self, shapes: &Shapes, origin: &Path) -> Result<()> {
        for (name, m) in &self.masks {
            match shapes.get(name) {
                None => {
                    return Err(Error::Checkpoint {
                        path: origin.into(),
                        message: format!("mask `{name}` names no tensor of the model"),
                    });
                }
                Some(s) if *s != m.shape => {
                    return Err(Error::Checkpoint {
                        path: origin.into(),
                        message: format!("mask `{name}` has shape {:?}, the tensor {s:?}", m.shape),
                    });
                }
                _ => {}
            }
            if m.data.iter().any(|&x| x != 0.0 && x != 1.0) {
                return Err(Error::Checkpoint {
                    path: origin.into(),
                    message: format!("mask `{name}` holds values other than 0 and 1"),
                });
            }
        }
        Ok(())
    }

    /// Zeroes the masked-out entries of `dict` in place.
    pub fn apply(&self, dict: &mut StateDict) {
        for (name, m) in &self.masks {
            if let Some(t) = dict.get_mut(name) {
                for (w, &k) in t.data.iter_mut().zip(&m.data) {
                    *w *= k;
                }
            }
        }
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        tensors::save(path, &self.masks, None)
    }

    pub fn load(path: &Path) -> Result<Self> {
        Ok(MaskSet {
            masks: tensors::load(path)?.0,
        })
    }
}

/// Row-major `[rows, cols]` → `[cols, rows]`.
pub fn transpose(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; data.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = data[r * cols + c];
        }
    }
    out
}
