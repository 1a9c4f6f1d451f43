//! Sparse direct convolution for one example (`[channels][height][width]`): each live filter
//! tap adds a shifted copy of one input plane, scaled, to one output plane. The inner loop runs
//! along a row, so it vectorises; no im2col buffer is built.

use crate::model::{ConvLayer, Pool};

/// Writes the activated, pooled output of `c` on `x` into `y`; `plane` is scratch of at least
/// one output plane before pooling.
#[inline(always)]
pub fn forward<const FMA: bool>(c: &ConvLayer, x: &[f32], y: &mut [f32], plane: &mut Vec<f32>) {
    let (h, w, k, pad) = (c.height, c.width, c.kernel, c.padding);
    let (ho, wo) = (h + 2 * pad + 1 - k, w + 2 * pad + 1 - k);
    let k2 = k * k;
    let [_, ph, pw] = c.output_shape();
    plane.resize(ho * wo, 0.0);
    for o in 0..c.out_channels() {
        plane.fill(c.bias[o]);
        let (cols, vals) = c.weights.row(o);
        for (&col, &v) in cols.iter().zip(vals) {
            let col = col as usize;
            let (ic, ky, kx) = (col / k2, col % k2 / k, col % k);
            // Output (oy, ox) reads input (oy + ky − pad, ox + kx − pad) where that is inside.
            let (y0, y1) = (pad.saturating_sub(ky), ho.min(h + pad - ky));
            let (x0, x1) = (pad.saturating_sub(kx), wo.min(w + pad - kx));
            if x0 >= x1 {
                continue;
            }
            let src = &x[ic * h * w..(ic + 1) * h * w];
            for oy in y0..y1 {
                let iy = oy + ky - pad;
                let s = &src[iy * w + x0 + kx - pad..iy * w + x1 + kx - pad];
                let d = &mut plane[oy * wo + x0..oy * wo + x1];
                for (dv, &sv) in d.iter_mut().zip(s) {
                    *dv = if FMA {
                        v.mul_add(sv, *dv)
                    } else {
                        v * sv + *dv
                    };
                }
            }
        }
        let out = &mut y[o * ph * pw..(o + 1) * ph * pw];
        let act = |v: f32| if c.relu { v.max(0.0) } else { v };
        let block = |py: usize, px: usize| {
            let at = |dy: usize, dx: usize| plane[(2 * py + dy) * wo + 2 * px + dx];
            [at(0, 0), at(0, 1), at(1, 0), at(1, 1)]
        };
        match c.pool {
            // ReLU is monotone: the largest pre-activation gives the largest activation.
            Pool::Max => {
                for py in 0..ph {
                    for px in 0..pw {
                        let [a, b, d, e] = block(py, px);
                        out[py * pw + px] = act(a.max(b).max(d).max(e));
                    }
                }
            }
            // Averaging does not commute with ReLU: activate first, as the network does.
            Pool::Avg => {
                for py in 0..ph {
                    for px in 0..pw {
                        let [a, b, d, e] = block(py, px);
                        out[py * pw + px] = (act(a) + act(b) + act(d) + act(e)) * 0.25;
                    }
                }
            }
            Pool::None => {
                for (o, &v) in out.iter_mut().zip(plane.iter()) {
                    *o = act(v);
                }
            }
        }
    }
}
