//! A vision transformer's layers on a group of `g` examples. Tokens are stored feature-major,
//! `[feature][example · token]`, so each projection of every token in the group is one call of
//! the batched sparse kernel; layer norm, attention and GELU are plain loops (at `vit_tiny`'s
//! 17 tokens of 64 features, attention is a small part of the arithmetic).

use super::linear_layer;
use crate::transformer::{BlockLayer, EmbedLayer, Norm, ReadoutLayer, gelu};

/// Buffers a thread reuses between calls.
#[derive(Default)]
pub struct Buffers {
    patches: Vec<f32>,
    normed: Vec<f32>,
    qkv: Vec<f32>,
    attended: Vec<f32>,
    hidden: Vec<f32>,
    added: Vec<f32>,
    scores: Vec<f32>,
}

/// Images `[channel][example][pixel]` into tokens `y` (`[dim][example · token]`): the patches
/// unfolded and projected, the class token first, position embeddings added.
#[inline(always)]
pub fn embed<const FMA: bool>(e: &EmbedLayer, x: &[f32], g: usize, y: &mut [f32], b: &mut Buffers) {
    let (h, w, p) = (e.height, e.width, e.patch);
    let gw = w / p;
    let patches = e.tokens() - 1;
    let (t, dim, n) = (e.tokens(), e.dim(), g * patches);
    // Row (channel, ky, kx), column (example, patch): PyTorch's convolution weight order.
    b.patches.resize(e.channels * p * p * n, 0.0);
    for (r, row) in b.patches.chunks_exact_mut(n).enumerate() {
        let (ic, ky, kx) = (r / (p * p), r / p % p, r % p);
        for (ex, out) in row.chunks_exact_mut(patches).enumerate() {
            let src = &x[(ic * g + ex) * h * w..][..h * w];
            for (i, v) in out.iter_mut().enumerate() {
                let (py, px) = (i / gw, i % gw);
                *v = src[(py * p + ky) * w + px * p + kx];
            }
        }
    }
    b.normed.resize(dim * n, 0.0);
    let proj = &e.proj;
    linear_layer::<FMA>(
        proj.weights.view(),
        &proj.bias,
        false,
        &b.patches,
        n,
        &mut b.normed,
    );
    for d in 0..dim {
        let out = &mut y[d * g * t..][..g * t];
        let projected = &b.normed[d * n..][..n];
        let position = |i: usize| e.position[i * dim + d];
        for (ex, tokens) in out.chunks_exact_mut(t).enumerate() {
            tokens[0] = e.class_token[d] + position(0);
            for i in 0..patches {
                tokens[1 + i] = projected[ex * patches + i] + position(1 + i);
            }
        }
    }
}

/// One pre-norm block on tokens `x` (`[dim][g · t]`), in place.
#[inline(always)]
pub fn block<const FMA: bool>(
    blk: &BlockLayer,
    x: &mut [f32],
    g: usize,
    t: usize,
    b: &mut Buffers,
) {
    let (dim, n) = (blk.dim(), g * t);
    b.normed.resize(dim * n, 0.0);
    blk.norm1.columns(x, n, &mut b.normed);
    b.qkv.resize(3 * dim * n, 0.0);
    let qkv = &blk.qkv;
    linear_layer::<FMA>(
        qkv.weights.view(),
        &qkv.bias,
        false,
        &b.normed,
        n,
        &mut b.qkv,
    );
    b.attended.resize(dim * n, 0.0);
    attention(&b.qkv, dim, blk.heads, t, &mut b.attended, &mut b.scores);
    b.added.resize(dim * n, 0.0);
    let proj = &blk.proj;
    linear_layer::<FMA>(
        proj.weights.view(),
        &proj.bias,
        false,
        &b.attended,
        n,
        &mut b.added,
    );
    x.iter_mut().zip(&b.added).for_each(|(x, a)| *x += a);

    blk.norm2.columns(x, n, &mut b.normed);
    b.hidden.resize(blk.hidden() * n, 0.0);
    let (fc1, fc2) = (&blk.fc1, &blk.fc2);
    linear_layer::<FMA>(
        fc1.weights.view(),
        &fc1.bias,
        false,
        &b.normed,
        n,
        &mut b.hidden,
    );
    b.hidden.iter_mut().for_each(|v| *v = gelu(*v));
    linear_layer::<FMA>(
        fc2.weights.view(),
        &fc2.bias,
        false,
        &b.hidden,
        n,
        &mut b.added,
    );
    x.iter_mut().zip(&b.added).for_each(|(x, a)| *x += a);
}

/// Scaled dot-product attention of every head within each example's `t` tokens: `qkv` holds
/// queries, keys and values (`[3 · dim][n]`), `out` gets the heads' outputs side by side.
fn attention(
    qkv: &[f32],
    dim: usize,
    heads: usize,
    t: usize,
    out: &mut [f32],
    scores: &mut Vec<f32>,
) {
    let n = out.len() / dim;
    let hd = dim / heads;
    let scale = 1.0 / (hd as f32).sqrt();
    scores.resize(t, 0.0);
    for first in (0..n).step_by(t) {
        for h in 0..heads {
            let row = |part: usize, c: usize| &qkv[(part * dim + h * hd + c) * n + first..][..t];
            for i in 0..t {
                let mut max = f32::NEG_INFINITY;
                for (j, s) in scores.iter_mut().enumerate() {
                    let dot: f32 = (0..hd).map(|c| row(0, c)[i] * row(1, c)[j]).sum();
                    *s = dot * scale;
                    max = max.max(*s);
                }
                let mut sum = 0.0;
                for s in scores.iter_mut() {
                    *s = (*s - max).exp();
                    sum += *s;
                }
                scores.iter_mut().for_each(|s| *s /= sum);
                for c in 0..hd {
                    let v = row(2, c);
                    out[(h * hd + c) * n + first + i] =
                        scores.iter().zip(v).map(|(a, v)| a * v).sum();
                }
            }
        }
    }
}

/// Each example's class token, normalised, into `y` as `[dim][g]`.
pub fn readout(r: &ReadoutLayer, x: &[f32], g: usize, t: usize, y: &mut [f32]) {
    let n = g * t;
    for ex in 0..g {
        r.norm
            .apply(|d| x[d * n + ex * t], |d, v| y[d * g + ex] = v);
    }
}

impl Norm {
    /// Normalises each of the `n` columns of feature-major `x` (`[dim][n]`) into `y`.
    #[inline(always)]
    fn columns(&self, x: &[f32], n: usize, y: &mut [f32]) {
        for j in 0..n {
            self.apply(|d| x[d * n + j], |d, v| y[d * n + j] = v);
        }
    }

    /// Normalises the vector `x(0..dim)`, handing each result to `out`.
    #[inline(always)]
    fn apply(&self, x: impl Fn(usize) -> f32, mut out: impl FnMut(usize, f32)) {
        let dim = self.gamma.len();
        let mean = (0..dim).map(&x).sum::<f32>() / dim as f32;
        let var = (0..dim).map(|d| (x(d) - mean).powi(2)).sum::<f32>() / dim as f32;
        let inv = 1.0 / (var + self.eps).sqrt();
        for d in 0..dim {
            out(d, (x(d) - mean) * inv * self.gamma[d] + self.beta[d]);
        }
    }
}
