//! Sparse convolution as a sparse × dense product: the input is unfolded (im2col) into rows
//! `[in_channel · ky · kx][example · pixel]`, so each live filter tap scales one contiguous run
//! of pixels of several examples, and the batched linear kernel does the work. Small planes
//! (VGG's 2×2 to 8×8) are grouped across examples so a run is long enough to vectorise.
//!
//! Activations of a group of `g` examples are stored `[channel][example][height][width]`.

use super::linear_layer;
use crate::model::{ConvLayer, Pool};

/// Pixel columns per product: enough for the 64-wide register tiles, few enough that the
/// unfolded rows stay near the cache.
const COLUMNS: usize = 1024;

/// Writes the activated, pooled output of `c` on the `g` examples of `x` into `y`; `col` and
/// `plane` are scratch.
#[inline(always)]
pub fn forward<const FMA: bool>(
    c: &ConvLayer,
    x: &[f32],
    g: usize,
    y: &mut [f32],
    col: &mut Vec<f32>,
    plane: &mut Vec<f32>,
) {
    let (h, w, [kh, kw], [py, px]) = (c.height, c.width, c.kernel, c.padding);
    let [ho, wo] = c.convolved();
    let p = ho * wo;
    let [_, ph, pw] = c.output_shape();
    let taps = c.taps();
    debug_assert_eq!(x.len(), c.in_channels * g * h * w);
    debug_assert_eq!(y.len(), c.out_channels() * g * ph * pw);
    let per = (COLUMNS / p).clamp(1, g);
    let mut e0 = 0;
    while e0 < g {
        let e1 = (e0 + per).min(g);
        let n = (e1 - e0) * p;
        col.resize(taps * n, 0.0);
        for ic in 0..c.in_channels {
            for ky in 0..kh {
                for kx in 0..kw {
                    let row = &mut col[((ic * kh + ky) * kw + kx) * n..][..n];
                    // Output (oy, ox) reads input (oy + ky − py, ox + kx − px), zero outside.
                    let (x0, x1) = (px.saturating_sub(kx), wo.min((w + px).saturating_sub(kx)));
                    for (e, dst) in (e0..e1).zip(row.chunks_exact_mut(p)) {
                        let src = &x[(ic * g + e) * h * w..][..h * w];
                        for (oy, d) in dst.chunks_exact_mut(wo).enumerate() {
                            let iy = oy + ky;
                            if iy < py || iy - py >= h || x0 >= x1 {
                                d.fill(0.0);
                                continue;
                            }
                            let s = &src[(iy - py) * w..][..w];
                            d[..x0].fill(0.0);
                            d[x0..x1].copy_from_slice(&s[x0 + kx - px..x1 + kx - px]);
                            d[x1..].fill(0.0);
                        }
                    }
                }
            }
        }
        // Activated before pooling: max-pool commutes with ReLU, average-pool does not.
        plane.resize(c.out_channels() * n, 0.0);
        linear_layer::<FMA>(c.weights.view(), &c.bias, c.relu, col, n, plane);
        for (o, pr) in plane.chunks_exact(n).enumerate() {
            for (e, pe) in (e0..e1).zip(pr.chunks_exact(p)) {
                let out = &mut y[(o * g + e) * ph * pw..][..ph * pw];
                pool(c.pool, pe, wo, out, pw);
            }
        }
        e0 = e1;
    }
}

/// One activated plane (`wo` wide) into its pooled output (`pw` wide).
#[inline(always)]
fn pool(kind: Pool, plane: &[f32], wo: usize, out: &mut [f32], pw: usize) {
    let block = |py: usize, px: usize| {
        let at = |dy: usize, dx: usize| plane[(2 * py + dy) * wo + 2 * px + dx];
        [at(0, 0), at(0, 1), at(1, 0), at(1, 1)]
    };
    match kind {
        Pool::Max => {
            for (i, o) in out.iter_mut().enumerate() {
                let [a, b, d, e] = block(i / pw, i % pw);
                *o = a.max(b).max(d).max(e);
            }
        }
        Pool::Avg => {
            for (i, o) in out.iter_mut().enumerate() {
                let [a, b, d, e] = block(i / pw, i % pw);
                *o = (a + b + d + e) * 0.25;
            }
        }
        Pool::None => out.copy_from_slice(plane),
    }
}
