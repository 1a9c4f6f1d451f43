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
    /// One head's query, key and value tiles and its scores (attention).
    tile: Vec<f32>,
    /// Per-column means and inverse deviations (layer norm).
    stats: Vec<f32>,
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
    blk.norm1.columns(x, n, &mut b.normed, &mut b.stats);
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
    attention(&b.qkv, dim, blk.heads, t, &mut b.attended, &mut b.tile);
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

    blk.norm2.columns(x, n, &mut b.normed, &mut b.stats);
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
/// queries, keys and values (`[3 · dim][n]`), `out` gets the heads' outputs side by side. Each
/// head's queries, keys and values of one example are first copied token-major (`[t][hd]`),
/// so every dot product and weighted sum runs over contiguous memory.
fn attention(
    qkv: &[f32],
    dim: usize,
    heads: usize,
    t: usize,
    out: &mut [f32],
    tile: &mut Vec<f32>,
) {
    let n = out.len() / dim;
    let hd = dim / heads;
    let scale = 1.0 / (hd as f32).sqrt();
    // q, k, v tiles, then the scores of one query and one output row.
    tile.resize(3 * t * hd + t + hd, 0.0);
    for first in (0..n).step_by(t) {
        for h in 0..heads {
            let (tiles, rest) = tile.split_at_mut(3 * t * hd);
            let (scores, row) = rest.split_at_mut(t);
            for part in 0..3 {
                let dst = &mut tiles[part * t * hd..][..t * hd];
                for c in 0..hd {
                    let src = &qkv[(part * dim + h * hd + c) * n + first..][..t];
                    for (i, &v) in src.iter().enumerate() {
                        dst[i * hd + c] = v;
                    }
                }
            }
            let (q, kv) = tiles.split_at(t * hd);
            let (k, v) = kv.split_at(t * hd);
            for (i, qi) in q.chunks_exact(hd).enumerate() {
                let mut max = f32::NEG_INFINITY;
                for (s, kj) in scores.iter_mut().zip(k.chunks_exact(hd)) {
                    *s = qi.iter().zip(kj).map(|(a, b)| a * b).sum::<f32>() * scale;
                    max = max.max(*s);
                }
                let mut sum = 0.0;
                for s in scores.iter_mut() {
                    *s = (*s - max).exp();
                    sum += *s;
                }
                row.fill(0.0);
                for (&s, vj) in scores.iter().zip(v.chunks_exact(hd)) {
                    let a = s / sum;
                    row.iter_mut().zip(vj).for_each(|(r, &x)| *r += a * x);
                }
                for (c, &r) in row.iter().enumerate() {
                    out[(h * hd + c) * n + first + i] = r;
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
    /// Normalises each of the `n` columns of feature-major `x` (`[dim][n]`) into `y`, row by
    /// row so that memory is read in order: the columns' means, then their variances (about
    /// the mean, as `apply` computes them), then the output; `stats` is scratch.
    #[inline(always)]
    fn columns(&self, x: &[f32], n: usize, y: &mut [f32], stats: &mut Vec<f32>) {
        let dim = self.gamma.len();
        stats.clear();
        stats.resize(2 * n, 0.0);
        let (mean, var) = stats.split_at_mut(n);
        for row in x.chunks_exact(n) {
            mean.iter_mut().zip(row).for_each(|(m, &v)| *m += v);
        }
        mean.iter_mut().for_each(|m| *m /= dim as f32);
        for row in x.chunks_exact(n) {
            for ((s, &v), &m) in var.iter_mut().zip(row).zip(mean.iter()) {
                *s += (v - m) * (v - m);
            }
        }
        // From here on `var` holds 1 / √(var + eps).
        var.iter_mut()
            .for_each(|s| *s = 1.0 / (*s / dim as f32 + self.eps).sqrt());
        for (d, (out, row)) in y.chunks_exact_mut(n).zip(x.chunks_exact(n)).enumerate() {
            let (g, b) = (self.gamma[d], self.beta[d]);
            for (((o, &v), &m), &inv) in out.iter_mut().zip(row).zip(mean.iter()).zip(var.iter()) {
                *o = (v - m) * inv * g + b;
            }
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
