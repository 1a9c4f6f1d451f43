//! Batch normalisation (and the ReLU after it) as one burn operation with its own backward, for
//! burn's CPU backend. burn's own batch norm is made of generic tensor operations — channel-major
//! transposes, reductions and five broadcast passes forward and more backward — which were a
//! quarter of a ResNet-20 step (`perf`, BENCHMARKS.md). Here a step is one pass for the
//! statistics, one for the output, and two backward (per-channel sums, then the input gradient).

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{AutodiffBackend, Backend, Flex, TensorMetadata, backend_extension};
use burn::tensor::{Shape, Slice};

use super::kernels::threads;
use super::op::dims;
use crate::cpu::{f32s as host, tensor};

/// What the operation does besides normalising: the ε under the square root, and whether a
/// ReLU follows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Norm {
    pub eps: f32,
    pub relu: bool,
}

/// `relu?(γ (x − mean) / √(var + ε) + β)` over the channels of `x [n, c, h, w]`, with the
/// statistics given as `stats [2, c]` (mean, then biased variance). Only `batch_norm_fast` is
/// differentiated, and as batch-statistics normalisation: its backward treats `stats` as the
/// batch's own (what [`NormOps::batch_stats`] returned for `x`).
#[backend_extension(Flex, Autodiff)]
pub trait NormOps: Backend {
    /// The mean and biased variance of each channel of `x`: `[2, c]`.
    fn batch_stats(x: FloatTensor<Self>) -> FloatTensor<Self>;

    fn batch_norm_fast(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        norm: Norm,
    ) -> FloatTensor<Self>;

    /// `[5, c]`: the gradients of β (row 0) and γ (row 1), from the output gradient `dy` and
    /// the output `y` (whose sign is ReLU's gradient), then the input gradient's coefficients
    /// (rows 2–4, see [`coefficients`]).
    fn batch_norm_param_grads(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        y: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        norm: Norm,
    ) -> FloatTensor<Self>;

    /// The input gradient, from the coefficients in [`NormOps::batch_norm_param_grads`]'s rows.
    fn batch_norm_input_grad(
        x: FloatTensor<Self>,
        y: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        grads: FloatTensor<Self>,
        norm: Norm,
    ) -> FloatTensor<Self>;
}

/// An NCHW activation as batch norm sees it: `n` images of `c` planes of `hw` values.
#[derive(Debug, Clone, Copy)]
struct Planes {
    n: usize,
    c: usize,
    hw: usize,
}

impl Planes {
    fn of(x: &FlexTensor) -> Self {
        let [n, c, h, w] = dims(x);
        Planes { n, c, hw: h * w }
    }

    /// Values per channel.
    fn per_channel(&self) -> usize {
        self.n * self.hw
    }

    /// The planes of channel `ch`, one per image.
    fn channel<'a>(&self, t: &'a [f32], ch: usize) -> impl Iterator<Item = &'a [f32]> {
        (0..self.n).map(move |i| &t[(i * self.c + ch) * self.hw..][..self.hw])
    }
}

/// `f(ch)` for every channel, channels split across threads.
fn per_channel<T: Send>(c: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let per = c.div_ceil(threads(c)).max(1);
    let f = &f;
    std::thread::scope(|s| {
        let parts: Vec<_> = (0..c)
            .step_by(per)
            .skip(1)
            .map(|start| s.spawn(move || (start..c.min(start + per)).map(f).collect::<Vec<_>>()))
            .collect();
        let mut out: Vec<T> = (0..per.min(c)).map(f).collect();
        for p in parts {
            out.extend(p.join().expect("a batch-norm thread panicked"));
        }
        out
    })
}

/// `f(image, its c·hw outputs)` for every image, images split across threads.
fn per_image(p: Planes, out: &mut [f32], f: impl Fn(usize, &mut [f32]) + Sync) {
    let len = p.c * p.hw;
    let per = p.n.div_ceil(threads(p.n)).max(1);
    let f = &f;
    std::thread::scope(|s| {
        let mut groups = out.chunks_mut((per * len).max(1)).enumerate();
        let first = groups.next();
        for (g, ys) in groups {
            s.spawn(move || {
                ys.chunks_mut(len)
                    .enumerate()
                    .for_each(|(i, y)| f(g * per + i, y))
            });
        }
        if let Some((_, ys)) = first {
            ys.chunks_mut(len).enumerate().for_each(|(i, y)| f(i, y));
        }
    });
}

/// Mean and biased variance per channel (two passes, so the variance does not cancel), as
/// `[mean…, var…]`.
fn stats(x: &[f32], p: Planes) -> Vec<f32> {
    let m = p.per_channel() as f64;
    let both = per_channel(p.c, |ch| {
        let sum: f64 = p.channel(x, ch).map(|v| plane_sum::<1>(v, 0.0)).sum();
        let mean = (sum / m) as f32;
        let sq: f64 = p.channel(x, ch).map(|v| plane_sum::<2>(v, mean)).sum();
        (mean, (sq / m) as f32)
    });
    both.iter()
        .map(|s| s.0)
        .chain(both.iter().map(|s| s.1))
        .collect()
}

/// Eight partial sums per quantity, in f32 within a plane and f64 across planes: the loops
/// below then vectorise, where one running sum would serialise every addition.
const L: usize = 8;

fn total(s: [f32; L]) -> f64 {
    s.iter().map(|&v| v as f64).sum()
}

/// `Σ (x − shift)^P` over a plane, for `P` 1 or 2.
fn plane_sum<const P: i32>(x: &[f32], shift: f32) -> f64 {
    let mut a = [0.0f32; L];
    let (xs, tail) = x.as_chunks::<L>();
    for xs in xs {
        for l in 0..L {
            a[l] += (xs[l] - shift).powi(P);
        }
    }
    total(a)
        + tail
            .iter()
            .map(|&v| (v - shift).powi(P) as f64)
            .sum::<f64>()
}

/// [`gradient_sums`] with AVX2 where the CPU has it: the compiler keeps the ReLU's gate scalar
/// even when built for AVX2 (10% of a ResNet-20 step in `perf`), so the lanes are spelled out.
fn gradient_sums_fast<const RELU: bool>(x: &[f32], y: &[f32], g: &[f32], mean: f32) -> (f64, f64) {
    assert!(
        x.len() == y.len() && x.len() == g.len(),
        "planes of one size"
    );
    #[cfg(target_arch = "x86_64")]
    if super::direct::available() {
        // SAFETY: the CPU has AVX2 and FMA.
        return unsafe { gradient_sums_avx2::<RELU>(x, y, g, mean) };
    }
    gradient_sums::<RELU>(x, y, g, mean)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn gradient_sums_avx2<const RELU: bool>(x: &[f32], y: &[f32], g: &[f32], mean: f32) -> (f64, f64) {
    use std::arch::x86_64::*;
    let (mut a, mut b) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let m = _mm256_set1_ps(mean);
    let ((xs, xt), (ys, yt), (gs, gt)) =
        (x.as_chunks::<L>(), y.as_chunks::<L>(), g.as_chunks::<L>());
    for ((xs, ys), gs) in xs.iter().zip(ys).zip(gs) {
        // SAFETY: each chunk holds eight values.
        let (xv, yv, mut gv) = unsafe {
            (
                _mm256_loadu_ps(xs.as_ptr()),
                _mm256_loadu_ps(ys.as_ptr()),
                _mm256_loadu_ps(gs.as_ptr()),
            )
        };
        if RELU {
            gv = _mm256_and_ps(gv, _mm256_cmp_ps::<_CMP_GT_OQ>(yv, _mm256_setzero_ps()));
        }
        a = _mm256_add_ps(a, gv);
        b = _mm256_fmadd_ps(gv, _mm256_sub_ps(xv, m), b);
    }
    let lanes = |v: __m256| {
        let mut out = [0.0f32; L];
        // SAFETY: `out` holds eight values.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), v) };
        out
    };
    let (ta, tb) = gradient_sums::<RELU>(xt, yt, gt, mean);
    (total(lanes(a)) + ta, total(lanes(b)) + tb)
}

/// `(Σ g, Σ g·(x − mean))` over a plane, `g` the output gradient through the ReLU when `RELU`
/// (zero where the output `y` is not positive).
#[inline(always)]
fn gradient_sums<const RELU: bool>(x: &[f32], y: &[f32], g: &[f32], mean: f32) -> (f64, f64) {
    let gate = |y: f32, g: f32| if RELU && y <= 0.0 { 0.0 } else { g };
    let (mut a, mut b) = ([0.0f32; L], [0.0f32; L]);
    let ((xs, xt), (ys, yt), (gs, gt)) =
        (x.as_chunks::<L>(), y.as_chunks::<L>(), g.as_chunks::<L>());
    for ((xs, ys), gs) in xs.iter().zip(ys).zip(gs) {
        for l in 0..L {
            let g = gate(ys[l], gs[l]);
            a[l] += g;
            b[l] += g * (xs[l] - mean);
        }
    }
    let (mut ta, mut tb) = (0.0f64, 0.0f64);
    for ((&xv, &yv), &gv) in xt.iter().zip(yt).zip(gt) {
        let g = gate(yv, gv) as f64;
        (ta, tb) = (ta + g, tb + g * (xv - mean) as f64);
    }
    (total(a) + ta, total(b) + tb)
}

/// `1 / √(var + ε)` per channel.
fn inv_std(stats: &[f32], c: usize, eps: f32) -> Vec<f32> {
    stats[c..].iter().map(|&v| 1.0 / (v + eps).sqrt()).collect()
}

fn forward(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    stats: &[f32],
    p: Planes,
    norm: Norm,
) -> Vec<f32> {
    let inv = inv_std(stats, p.c, norm.eps);
    // y = x·scale + shift, per channel.
    let scale: Vec<f32> = (0..p.c).map(|ch| gamma[ch] * inv[ch]).collect();
    let shift: Vec<f32> = (0..p.c)
        .map(|ch| beta[ch] - stats[ch] * scale[ch])
        .collect();
    let floor = if norm.relu { 0.0 } else { f32::NEG_INFINITY };
    let mut y = vec![0.0; x.len()];
    per_image(p, &mut y, |i, out| {
        let planes = out.chunks_mut(p.hw).zip(x[i * p.c * p.hw..].chunks(p.hw));
        for (ch, (ys, xs)) in planes.enumerate() {
            for (o, &a) in ys.iter_mut().zip(xs) {
                *o = (a * scale[ch] + shift[ch]).max(floor);
            }
        }
    });
    y
}

/// The output gradient `g` where it flows: everywhere, or where the ReLU's output `y` is positive.
#[inline(always)]
fn gate(relu: bool, y: f32, g: f32) -> f32 {
    if relu && y <= 0.0 { 0.0 } else { g }
}

/// What the backward step reads besides the output gradient.
struct Saved<'a> {
    x: &'a [f32],
    gamma: &'a [f32],
    stats: &'a [f32],
    y: &'a [f32],
}

/// `[Σ g…, Σ g·x̂…, a…, b…, c…]` per channel, `g` the output gradient through the ReLU and
/// `a, b, c` the [`coefficients`] of the input gradient.
fn param_grads(t: Saved, dy: &[f32], p: Planes, norm: Norm) -> Vec<f32> {
    let Saved { x, gamma, stats, y } = t;
    let inv = inv_std(stats, p.c, norm.eps);
    let sums = per_channel(p.c, |ch| {
        let mean = stats[ch];
        let planes = p
            .channel(x, ch)
            .zip(p.channel(y, ch))
            .zip(p.channel(dy, ch));
        let (mut sg, mut sgx) = (0.0f64, 0.0f64);
        for ((xs, ys), gs) in planes {
            let (a, b) = match norm.relu {
                true => gradient_sums_fast::<true>(xs, ys, gs, mean),
                false => gradient_sums_fast::<false>(xs, ys, gs, mean),
            };
            (sg, sgx) = (sg + a, sgx + b);
        }
        let (sg, sgx) = (sg as f32, sgx as f32 * inv[ch]);
        let [a, b, c] = coefficients(
            p.per_channel() as f32,
            gamma[ch] * inv[ch],
            inv[ch],
            mean,
            (sg, sgx),
        );
        [sg, sgx, a, b, c]
    });
    (0..5)
        .flat_map(|r| sums.iter().map(move |s| s[r]))
        .collect()
}

/// `dx = γ/σ · (g − Σg/m − x̂ · Σ(g x̂)/m)` over a channel's `m` values, written as
/// `a·g + b·x + c` (`x̂ = (x − mean)/σ`, `scale = γ/σ`): `[a, b, c]`.
fn coefficients(m: f32, scale: f32, inv: f32, mean: f32, (sg, sgx): (f32, f32)) -> [f32; 3] {
    let b = -scale * inv * sgx / m;
    [scale, b, -scale * sg / m - b * mean]
}

/// The input gradient from the [`coefficients`] (rows 2–4 of `grads`).
fn input_grad(x: &[f32], y: &[f32], dy: &[f32], grads: &[f32], p: Planes, norm: Norm) -> Vec<f32> {
    let mut dx = vec![0.0; x.len()];
    per_image(p, &mut dx, |i, out| {
        let at = i * p.c * p.hw;
        // Zipped planes, so that the inner loop has no bounds checks and vectorises.
        let planes = out.chunks_mut(p.hw).zip(x[at..].chunks(p.hw));
        let grads_in = y[at..].chunks(p.hw).zip(dy[at..].chunks(p.hw));
        for (ch, ((o, xs), (ys, gs))) in planes.zip(grads_in).enumerate() {
            let [a, b, c] = [2, 3, 4].map(|r| grads[r * p.c + ch]);
            for (((o, &xv), &yv), &g) in o.iter_mut().zip(xs).zip(ys).zip(gs) {
                *o = a * gate(norm.relu, yv, g) + b * xv + c;
            }
        }
    });
    dx
}

impl NormOps for Flex {
    fn batch_stats(x: FlexTensor) -> FlexTensor {
        let p = Planes::of(&x);
        tensor(stats(&host(&x), p), [2, p.c])
    }

    fn batch_norm_fast(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        stats: FlexTensor,
        norm: Norm,
    ) -> FlexTensor {
        let p = Planes::of(&x);
        let (g, b, s) = (host(&gamma), host(&beta), host(&stats));
        tensor(forward(&host(&x), &g, &b, &s, p, norm), dims(&x))
    }

    fn batch_norm_param_grads(
        x: FlexTensor,
        gamma: FlexTensor,
        stats: FlexTensor,
        y: FlexTensor,
        dy: FlexTensor,
        norm: Norm,
    ) -> FlexTensor {
        let p = Planes::of(&x);
        let (xv, g, s, yv) = (host(&x), host(&gamma), host(&stats), host(&y));
        let saved = Saved {
            x: &xv,
            gamma: &g,
            stats: &s,
            y: &yv,
        };
        tensor(param_grads(saved, &host(&dy), p, norm), [5, p.c])
    }

    fn batch_norm_input_grad(
        x: FlexTensor,
        y: FlexTensor,
        dy: FlexTensor,
        grads: FlexTensor,
        norm: Norm,
    ) -> FlexTensor {
        let p = Planes::of(&x);
        let (xv, yv, d, g) = (host(&x), host(&y), host(&dy), host(&grads));
        tensor(input_grad(&xv, &yv, &d, &g, p, norm), dims(&x))
    }
}

/// The backward step. It keeps the input, γ, the statistics and the output.
#[derive(Debug)]
struct NormBackward {
    norm: Norm,
}

/// Row `row` of a `[k, c]` tensor, as `[c]`.
fn row<B: Backend>(t: FloatTensor<B>, row: usize) -> FloatTensor<B> {
    let c = t.shape()[1];
    let r = B::float_slice(t, &[Slice::from(row..row + 1), Slice::from(0..c)]);
    B::float_reshape(r, Shape::new([c]))
}

impl<B: Backend + NormOps> Backward<B, 3> for NormBackward {
    type State = (
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
    );

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let (x, gamma, stats, y) = ops.state;
        let dy = grads.consume::<B>(&ops.node);
        let sums =
            B::batch_norm_param_grads(x.clone(), gamma, stats, y.clone(), dy.clone(), self.norm);
        if let Some(node) = node_x {
            let dx = B::batch_norm_input_grad(x, y, dy, sums.clone(), self.norm);
            grads.register::<B>(node.id, dx);
        }
        if let Some(node) = node_beta {
            grads.register::<B>(node.id, row::<B>(sums.clone(), 0));
        }
        if let Some(node) = node_gamma {
            grads.register::<B>(node.id, row::<B>(sums, 1));
        }
    }
}

impl<B: Backend + NormOps, C: CheckpointStrategy> NormOps for Autodiff<B, C> {
    fn batch_stats(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::from_inner(B::batch_stats(Self::inner(x)))
    }

    fn batch_norm_fast(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        norm: Norm,
    ) -> FloatTensor<Self> {
        let stats = Self::inner(stats);
        match (NormBackward { norm })
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (x, gamma) = (x.primitive().clone(), gamma.primitive().clone());
                let y = B::batch_norm_fast(
                    x.clone(),
                    gamma.clone(),
                    beta.into_primitive(),
                    stats.clone(),
                    norm,
                );
                prep.finish((x, gamma, stats, y.clone()), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::batch_norm_fast(
                x.into_primitive(),
                gamma.into_primitive(),
                beta.into_primitive(),
                stats,
                norm,
            )),
        }
    }

    // The steps themselves are not differentiated.
    fn batch_norm_param_grads(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        y: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        norm: Norm,
    ) -> FloatTensor<Self> {
        let [x, gamma, stats, y, dy] = [x, gamma, stats, y, dy].map(Self::inner);
        Self::from_inner(B::batch_norm_param_grads(x, gamma, stats, y, dy, norm))
    }

    fn batch_norm_input_grad(
        x: FloatTensor<Self>,
        y: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        grads: FloatTensor<Self>,
        norm: Norm,
    ) -> FloatTensor<Self> {
        let [x, y, dy, grads] = [x, y, dy, grads].map(Self::inner);
        Self::from_inner(B::batch_norm_input_grad(x, y, dy, grads, norm))
    }
}
