//! The weight gradient of convolutions whose input channels do not fill the direct kernel's
//! tiles — the first layer's 3 colour channels, odd channel counts — by the same kernel over
//! im2col's columns: each position's `c_in·kh·kw` receptive field is one row of "channels"
//! (padded to whole tiles with zeros), so the sum is a 1×1 convolution's weight gradient over
//! the output positions. A GEMM per kernel offset there had 3 columns (`c_in`) to work with and
//! ran a 3→64 layer at 27 GFLOP/s.

use super::direct::{self, CO, Rows, WeightTiles};
use super::kernels::{Geometry, summed_per_group};
use lottery_sparse::train::transpose;

/// Whether this module computes `g`'s weight gradient: its CPU runs the direct kernels. (1×1
/// convolutions without padding read the image itself as their columns, and go to a GEMM.)
pub(super) fn takes(g: &Geometry) -> bool {
    direct::available() && !g.is_pointwise()
}

/// `dw = Σ_n dy[n] · im2col(x[n])ᵀ`, `[c_out, c_in, kh, kw]`.
pub(super) fn weight_grad(g: &Geometry, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    let (k, p) = (g.k(), g.p());
    assert_eq!(
        dw.len(),
        g.c_out * k,
        "a weight gradient of the weight's shape"
    );
    // Whole tiles of either width; read once, so that the panels and the kernel agree.
    let padded = k.next_multiple_of(2 * direct::CT);
    let ct = direct::weight_tile(padded);
    let outs = direct::padded_outputs(g.c_out);
    let group = direct::PASS.div_ceil(p.max(1));
    let (panel, block) = (group * p * ct, group * p * CO);
    // The columns hold im2col's zeros themselves: one offset, read at every position.
    let live = vec![true; p];
    let total = summed_per_group(g, x, dy, outs * padded, |xs, dys, sum| {
        // The rows past `k` stay zero.
        let mut col = vec![0.0; padded * p];
        let mut xt = vec![0.0; (padded / ct) * panel];
        let mut dyt = vec![0.0; (outs / CO) * block];
        for (xg, dyg) in xs
            .chunks(group * g.in_len())
            .zip(dys.chunks(group * g.out_len()))
        {
            let images = xg.len() / g.in_len();
            for (b, (xi, dyi)) in xg
                .chunks_exact(g.in_len())
                .zip(dyg.chunks_exact(g.out_len()))
                .enumerate()
            {
                g.im2col(xi, &mut col[..k * p]);
                for (t, rows) in col.chunks_exact(ct * p).enumerate() {
                    transpose(rows, ct, p, &mut xt[t * panel + b * p * ct..][..p * ct]);
                }
                direct::place_outputs(dyi, p, b, &mut dyt, block);
            }
            let tiles = WeightTiles {
                ct,
                xt: &xt,
                panel,
                image: p,
                images,
                c_in: padded,
                dyt: &dyt,
                block,
                c_out: g.c_out,
                rows: Rows {
                    ho: g.ho(),
                    wo: g.wo(),
                    step: g.wo(),
                },
                offsets: &[0],
                live: &live,
            };
            tiles.add_to(sum);
        }
    });
    // Row `o` of the sums is output channel `o`'s gradient in im2col's (c, i, j) order.
    for (d, s) in dw.chunks_exact_mut(k).zip(total.chunks_exact(padded)) {
        d.copy_from_slice(&s[..k]);
    }
}
