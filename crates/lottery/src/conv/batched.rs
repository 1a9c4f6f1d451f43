//! The forward with a group of images across the vector lanes, for planes whose rows are
//! narrower than a register: VGG's 8×8 (on AVX-512), 4×4 and 2×2 layers, where runs along a
//! row would leave half or more of each register empty and im2col's GEMM ran at about a third
//! of the direct kernels' speed. Here lane `b` of every register is image `b` of a group of 8
//! (AVX2) or 16 (AVX-512), at the same position, so any plane fills the registers whatever
//! its width or stride; a batch pays only its last group's missing images. The images are laid
//! position-major with the group innermost ([`direct::ImageTiles`]), and the outputs come back
//! through one transpose. Kernel offsets that read the zero padding are skipped position by
//! position: on a 2×2 plane they are more than half of the 3×3 window.

use super::direct;
use super::kernels::{Geometry, per_group};
use lottery_sparse::train::transpose;

/// Whether `lanes`-image groups cover `n` images with at most a quarter more lanes than images.
fn fills(n: usize, lanes: usize) -> bool {
    n > 0 && 4 * n.next_multiple_of(lanes) <= 5 * n
}

/// Whether this module computes the forward of `g` on `n` images: the CPU runs the direct
/// kernels, the rows would not fill its registers, and the batch fills the groups.
pub(super) fn takes(g: &Geometry, n: usize) -> bool {
    !g.is_pointwise()
        && direct::available()
        && !direct::rows_fill(g.wo())
        && fills(n, direct::lanes())
}

/// `y[n] = W ⊛ x[n]`; `w` is `[c_out, c_in, kh, kw]`.
pub(super) fn forward(g: &Geometry, x: &[f32], w: &[f32], y: &mut [f32]) {
    // Read once: the layout below and the kernel's registers must agree.
    let lanes = direct::lanes();
    let (in_len, out_len) = (g.in_len(), g.out_len());
    let n = x.len() / in_len.max(1);
    assert!(x.len() == n * in_len && y.len() == n * out_len);
    let taps = g.kh * g.kw;
    let packed = direct::pack(w, g.c_out, g.c_in, taps);
    let (hp, wp) = (g.h + g.pad[0] + g.pad[1], g.w + g.pad[2] + g.pad[3]);
    let offsets: Vec<usize> = (0..taps).map(|t| (t / g.kw) * wp + t % g.kw).collect();
    let windows: Vec<usize> = (0..g.ho())
        .flat_map(|oh| (0..g.wo()).map(move |ow| oh * g.stride[0] * wp + ow * g.stride[1]))
        .collect();
    let live = g.live_taps();
    per_group(n, lanes, (x, in_len), (y, out_len), |xs, ys| {
        // The border of `xb` is never written: it stays zero.
        let mut xb = vec![0.0; hp * wp * g.c_in * lanes];
        let mut xt = vec![0.0; lanes * in_len];
        let mut yb = vec![0.0; lanes * out_len];
        let mut staged = Vec::new();
        for (xg, yg) in xs
            .chunks(lanes * in_len)
            .zip(ys.chunks_mut(lanes * out_len))
        {
            let full = xg.len() == lanes * in_len;
            // A short group is staged with zero images after its own.
            let xg = if full {
                xg
            } else {
                staged.clear();
                staged.extend_from_slice(xg);
                staged.resize(lanes * in_len, 0.0);
                &staged
            };
            // xt[(c·h + ih)·w + iw][b], then each (pixel, channel)'s lanes into place.
            transpose(xg, lanes, in_len, &mut xt);
            for (c, plane) in xt.chunks_exact(g.h * g.w * lanes).enumerate() {
                for (ih, row) in plane.chunks_exact(g.w * lanes).enumerate() {
                    let first = (ih + g.pad[0]) * wp + g.pad[2];
                    for (iw, px) in row.chunks_exact(lanes).enumerate() {
                        let at = ((first + iw) * g.c_in + c) * lanes;
                        xb[at..at + lanes].copy_from_slice(px);
                    }
                }
            }
            let tiles = direct::ImageTiles {
                lanes,
                xb: &xb,
                c_in: g.c_in,
                offsets: &offsets,
                packed: &packed,
                c_out: g.c_out,
                windows: &windows,
                live: &live,
            };
            tiles.run(&mut yb);
            // yb is [o·P + p][b]: its transpose is the group's outputs, image after image.
            if full {
                transpose(&yb, out_len, lanes, yg);
            } else {
                let mut all = vec![0.0; lanes * out_len];
                transpose(&yb, out_len, lanes, &mut all);
                yg.copy_from_slice(&all[..yg.len()]);
            }
        }
    });
}
