//! A vision transformer's compacted parts: the patch embedding, the pre-norm blocks (attention
//! then MLP, each added to the residual stream) and the read-out of the class token.
//!
//! Tokens flow between these layers as `[1, tokens, dim]` (the class token first). The four
//! projections of a block (qkv, attention output, MLP in and out) and the patch embedding are
//! sparse matrices; layer norms, softmax and GELU are dense arithmetic, as in the network it
//! came from. Compaction removes an MLP hidden unit that nothing live reads, or that nothing
//! live feeds (its constant `GELU(bias)` then moves into the MLP output's bias); attention's
//! units stay, since a head's query, key and value rows only make sense together.

use crate::csr::Csr;

/// Layer norm over one token's features: `(x − mean) / √(var + eps) · gamma + beta`, with the
/// biased variance (PyTorch's and burn's `LayerNorm`).
#[derive(Debug, Clone, PartialEq)]
pub struct Norm {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
    pub eps: f32,
}

/// A linear map `y = W x + b` applied to every token.
#[derive(Debug, Clone, PartialEq)]
pub struct Projection {
    /// `[outputs, inputs]`.
    pub weights: Csr,
    pub bias: Vec<f32>,
}

/// Images into tokens: non-overlapping `patch × patch` patches, each projected to `dim`
/// features (PyTorch's strided `Conv2d`), after a learned class token, plus learned position
/// embeddings.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedLayer {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub patch: usize,
    /// `[dim, channels · patch²]`, flattened as PyTorch stores the convolution (`in, ky, kx`).
    pub proj: Projection,
    /// `dim` values.
    pub class_token: Vec<f32>,
    /// `[tokens, dim]`, the class token's row first.
    pub position: Vec<f32>,
}

/// One pre-norm block: `x += proj(attention(qkv(norm1(x))))`, then
/// `x += fc2(GELU(fc1(norm2(x))))`.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockLayer {
    pub heads: usize,
    pub norm1: Norm,
    /// `[3 · dim, dim]`: queries, keys, values, each `heads` groups of `dim / heads` rows.
    pub qkv: Projection,
    pub proj: Projection,
    pub norm2: Norm,
    pub fc1: Projection,
    pub fc2: Projection,
    /// Indices of the surviving MLP hidden units in the original network.
    pub hidden_kept: Vec<u32>,
}

/// The class token after a final layer norm: what the classifier head reads.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadoutLayer {
    pub norm: Norm,
}

impl EmbedLayer {
    pub fn dim(&self) -> usize {
        self.proj.weights.rows
    }

    /// Tokens it writes: one per patch, and the class token.
    pub fn tokens(&self) -> usize {
        (self.height / self.patch.max(1)) * (self.width / self.patch.max(1)) + 1
    }

    pub(crate) fn problems(&self) -> Result<(), String> {
        let p = self.patch;
        if p == 0 || !self.height.is_multiple_of(p) || !self.width.is_multiple_of(p) {
            return Err(format!(
                "{p}×{p} patches do not tile {}×{}",
                self.height, self.width
            ));
        }
        let dim = self.dim();
        self.proj
            .problems("patch projection", dim, self.channels * p * p)?;
        if self.class_token.len() != dim || self.position.len() != self.tokens() * dim {
            return Err(format!(
                "class token ({}) and position embeddings ({}) do not fit {} tokens of {dim}",
                self.class_token.len(),
                self.position.len(),
                self.tokens()
            ));
        }
        finite(&self.class_token, "class token")?;
        finite(&self.position, "position embeddings")
    }
}

impl BlockLayer {
    pub fn dim(&self) -> usize {
        self.proj.weights.rows
    }

    pub fn hidden(&self) -> usize {
        self.fc1.weights.rows
    }

    pub(crate) fn problems(&self, dim: usize) -> Result<(), String> {
        if self.heads == 0 || !dim.is_multiple_of(self.heads) {
            return Err(format!("{} heads do not divide {dim} features", self.heads));
        }
        let hidden = self.hidden();
        self.norm1.problems("norm1", dim)?;
        self.qkv.problems("attn.qkv", 3 * dim, dim)?;
        self.proj.problems("attn.proj", dim, dim)?;
        self.norm2.problems("norm2", dim)?;
        self.fc1.problems("mlp.fc1", hidden, dim)?;
        self.fc2.problems("mlp.fc2", dim, hidden)?;
        if self.hidden_kept.len() != hidden {
            return Err(format!(
                "{} kept indices for {hidden} hidden units",
                self.hidden_kept.len()
            ));
        }
        Ok(())
    }

    /// Removes the MLP hidden units that do not compute anything: unread (their `fc2` column is
    /// all zeros), or unfed (their `fc1` row is all zeros: a constant `GELU(bias)`, added to
    /// `fc2`'s bias through their column). Returns how many were folded that way.
    pub fn drop_dead_hidden(&mut self) -> usize {
        let (hidden, inputs, dim) = (self.hidden(), self.fc1.weights.cols, self.fc2.weights.rows);
        let fc1 = self.fc1.weights.to_dense();
        let fc2 = &self.fc2.weights.to_dense();
        let column = |j: usize| (0..dim).map(move |o| fc2[o * hidden + j]);
        let mut folded = 0;
        let mut kept = Vec::new();
        for j in 0..hidden {
            let read = column(j).any(|v| v != 0.0);
            let fed = fc1[j * inputs..(j + 1) * inputs].iter().any(|&v| v != 0.0);
            if read && fed {
                kept.push(j);
            } else if read {
                let constant = gelu(self.fc1.bias[j]);
                if constant != 0.0 {
                    for (b, w) in self.fc2.bias.iter_mut().zip(column(j)) {
                        *b += constant * w;
                    }
                    folded += 1;
                }
            }
        }
        let rows: Vec<f32> = kept
            .iter()
            .flat_map(|&j| fc1[j * inputs..(j + 1) * inputs].iter().copied())
            .collect();
        let cols: Vec<f32> = (0..dim)
            .flat_map(|o| kept.iter().map(move |&j| o * hidden + j))
            .map(|i| fc2[i])
            .collect();
        let subset = "a subset of a valid matrix is valid";
        self.fc1 = Projection {
            weights: Csr::from_dense(kept.len(), inputs, &rows).expect(subset),
            bias: kept.iter().map(|&j| self.fc1.bias[j]).collect(),
        };
        self.fc2.weights = Csr::from_dense(dim, kept.len(), &cols).expect(subset);
        self.hidden_kept = kept.iter().map(|&j| self.hidden_kept[j]).collect();
        folded
    }
}

impl ReadoutLayer {
    pub fn dim(&self) -> usize {
        self.norm.gamma.len()
    }
}

impl Norm {
    pub(crate) fn problems(&self, what: &str, dim: usize) -> Result<(), String> {
        if self.gamma.len() != dim || self.beta.len() != dim {
            return Err(format!(
                "{what}: {} scales and {} shifts for {dim} features",
                self.gamma.len(),
                self.beta.len()
            ));
        }
        if !(self.eps > 0.0 && self.eps.is_finite()) {
            return Err(format!(
                "{what}: epsilon {} is not a positive number",
                self.eps
            ));
        }
        finite(&self.gamma, what)?;
        finite(&self.beta, what)
    }
}

impl Projection {
    pub(crate) fn problems(&self, what: &str, rows: usize, cols: usize) -> Result<(), String> {
        self.weights
            .invariants()
            .map_err(|m| format!("{what}: {m}"))?;
        if self.weights.rows != rows || self.weights.cols != cols || self.bias.len() != rows {
            return Err(format!(
                "{what} is {}×{} with {} biases, {rows}×{cols} expected",
                self.weights.rows,
                self.weights.cols,
                self.bias.len()
            ));
        }
        finite(&self.bias, what)?;
        finite(&self.weights.val, what)
    }
}

fn finite(values: &[f32], what: &str) -> Result<(), String> {
    match values.iter().any(|v| !v.is_finite()) {
        true => Err(format!("{what} holds NaN or infinite values")),
        false => Ok(()),
    }
}

/// GELU with the error function, as burn and PyTorch compute it by default (not the tanh
/// approximation): `0.5 x (1 + erf(x / √2))`.
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// The error function to within 5e-7 in float32 (Abramowitz & Stegun 7.1.26: 1.5e-7 exactly;
/// measured against libm's correctly rounded `erff` in the test): one `exp` and a
/// polynomial, several times faster than a correctly rounded `erff`, and far inside the 1e-4
/// the compact model must stay within.
#[inline(always)]
fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = ((((1.061_405_4 * t - 1.453_152_1) * t + 1.421_413_8) * t - 0.284_496_74) * t
        + 0.254_829_6)
        * t;
    (1.0 - poly * (-a * a).exp()).copysign(x)
}

#[cfg(test)]
mod tests {
    #[test]
    fn erf_is_within_its_bound_of_libm() {
        let mut worst = 0.0f32;
        for i in -8000..=8000 {
            let x = i as f32 / 1000.0;
            worst = worst.max((super::erf(x) - libm::erff(x)).abs());
        }
        assert!(worst < 1e-6, "{worst}");
        assert_eq!(super::gelu(0.0), 0.0);
        assert!((super::gelu(1.0) - 0.841_344_7).abs() < 1e-6);
        assert!((super::gelu(-3.0) - -0.004_049_7).abs() < 1e-6);
    }
}
