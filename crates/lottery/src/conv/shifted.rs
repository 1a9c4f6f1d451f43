//! Convolutions without im2col. The image is zero-padded once, each channel's plane split by
//! column phase when the column stride is more than 1 ([`Padded`]), so that kernel offset
//! `(i, j)` reads output row `oh`'s inputs at consecutive addresses `oh·step + ow + offset(i, j)`.
//! The forward is [`super::direct`]'s kernel straight on that image, instead of a GEMM on a
//! matrix of columns nine times the image's size, written and read back at every step; the
//! stride-1 input gradient is the same forward on the padded output gradient with the kernel
//! flipped; the weight gradient is the direct kernel over the image laid position-major, or,
//! at stride 1 without whole tiles of input channels (or without AVX2), `kh·kw` GEMMs over
//! shifted views of a group of images.

use super::direct;
use super::kernels::{Geometry, View, matmul, per_group, summed_per_group};
use lottery_sparse::train::transpose;

/// The padded image as the direct kernels read it. Each channel's plane holds the padded image
/// (`hp` rows of `wp`) split by column phase: with column stride `s`, phase `p` holds columns
/// `p, p + s, …` in rows `wr = ⌈wp / s⌉` long, so that kernel offset `(i, j)` of output
/// `(oh, ow)` — padded pixel `(oh·sh + i, ow·s + j)` — sits at `oh·step + ow + offset(i, j)`,
/// consecutive outputs of a row at consecutive addresses whatever the stride. With stride 1
/// it is the padded image itself.
#[derive(Debug, Clone, Copy)]
struct Padded {
    hp: usize,
    /// Row length within a phase.
    wr: usize,
    phases: usize,
    /// Distance between output rows: `sh · wr`.
    step: usize,
    /// Distance between channels.
    plane: usize,
    /// Floats past the last plane that the kernels may read (a run's tail past a row's end,
    /// the largest offset): buffers are this much longer.
    tail: usize,
}

impl Padded {
    fn of(g: &Geometry) -> Self {
        let (hp, wp) = (g.h + g.pad[0] + g.pad[1], g.w + g.pad[2] + g.pad[3]);
        let phases = g.stride[1];
        let wr = wp.div_ceil(phases);
        let mut pad = Padded {
            hp,
            wr,
            phases,
            step: g.stride[0] * wr,
            plane: phases * hp * wr,
            tail: 0,
        };
        let reach = (0..g.kh * g.kw)
            .map(|t| pad.offset(t / g.kw, t % g.kw))
            .max()
            .unwrap_or(0);
        let furthest = (g.ho().max(1) - 1) * pad.step + g.wo().next_multiple_of(16) + reach;
        pad.tail = furthest.saturating_sub(pad.plane) + direct::SLACK;
        pad
    }

    /// The output rows of `g` in this padded image.
    fn rows(&self, g: &Geometry) -> direct::Rows {
        direct::Rows {
            ho: g.ho(),
            wo: g.wo(),
            step: self.step,
        }
    }

    /// Kernel offset `(i, j)` as a shift within the plane.
    fn offset(&self, i: usize, j: usize) -> usize {
        (j % self.phases) * self.hp * self.wr + i * self.wr + j / self.phases
    }

    /// Copies the image's planes inside the zero border of `xp` (`c · plane` long or more),
    /// whose border (and tail) the caller keeps at zero.
    fn fill(&self, g: &Geometry, x: &[f32], c: usize, xp: &mut [f32]) {
        let (top, left) = (g.pad[0], g.pad[2]);
        for (plane, dst) in x
            .chunks_exact(g.h * g.w)
            .zip(xp.chunks_mut(self.plane))
            .take(c)
        {
            for (row, line) in plane.chunks_exact(g.w).enumerate() {
                let at = (row + top) * self.wr;
                if self.phases == 1 {
                    dst[at + left..at + left + g.w].copy_from_slice(line);
                    continue;
                }
                // Phase by phase: input column `col` is padded column `col + left`, phase
                // `(col + left) % s`, at `(col + left) / s` within its phase's row.
                for phase in 0..self.phases {
                    let first = (phase + self.phases - left % self.phases) % self.phases;
                    let row = &mut dst[phase * self.hp * self.wr + at..][..self.wr];
                    let cols = line.iter().skip(first).step_by(self.phases);
                    for (d, &v) in row[(first + left) / self.phases..].iter_mut().zip(cols) {
                        *d = v;
                    }
                }
            }
        }
    }
}

/// Whether the direct kernels' CPU computes `g`'s weight gradient by [`direct::WeightTiles`]:
/// whole tiles of input channels.
fn direct_weight_grad(g: &Geometry) -> bool {
    direct::available() && g.c_in.is_multiple_of(direct::CT)
}

/// Whether this module computes `g`'s weight gradient: the direct kernel at any stride, or,
/// on CPUs without it, GEMMs over shifted views at stride 1. (1×1 convolutions without padding
/// read the image itself as their columns already.)
pub(super) fn takes_weight_grad(g: &Geometry) -> bool {
    !g.is_pointwise() && (direct_weight_grad(g) || (g.stride == [1, 1] && !direct::available()))
}

/// Whether the direct kernel computes `g`'s forward: its CPU, and output rows its runs cover
/// without much waste (VGG's 4- and 2-wide planes would spend half and three quarters of it).
pub(super) fn takes(g: &Geometry) -> bool {
    !g.is_pointwise() && direct::available() && direct::runs_fit(g.wo())
}

/// `y[n] = W ⊛ x[n]`; `w` is `[c_out, c_in, kh, kw]`.
pub(super) fn forward(g: &Geometry, x: &[f32], w: &[f32], y: &mut [f32]) {
    debug_assert!(takes(g));
    let (in_len, out_len) = (g.in_len(), g.out_len());
    let n = x.len() / in_len.max(1);
    assert!(x.len() == n * in_len && y.len() == n * out_len);
    let taps = g.kh * g.kw;
    let packed = direct::pack(w, g.c_out, g.c_in, taps);
    let pad = Padded::of(g);
    let offsets: Vec<usize> = (0..taps).map(|t| pad.offset(t / g.kw, t % g.kw)).collect();
    let rows = pad.rows(g);
    per_group(n, 1, (x, in_len), (y, out_len), |xs, ys| {
        let mut xp = vec![0.0; g.c_in * pad.plane + pad.tail];
        for (xi, yi) in xs.chunks_exact(in_len).zip(ys.chunks_exact_mut(out_len)) {
            pad.fill(g, xi, g.c_in, &mut xp);
            let tiles = direct::Tiles {
                xp: &xp,
                plane: pad.plane,
                c_in: g.c_in,
                offsets: &offsets,
                packed: &packed,
                c_out: g.c_out,
                rows,
            };
            tiles.run(yi);
        }
    });
}

/// `dw = Σ_n dy[n] · shifted(x[n])ᵀ`, `[c_out, c_in, kh, kw]`: per tap, a sum over
/// output positions of the output gradient times the padded image shifted by the tap. With
/// whole tiles of input channels on an AVX2 CPU, [`direct::WeightTiles`] sums a few images at
/// a time; otherwise (the first layer's three channels, other CPUs) `kh·kw` GEMMs per group of images.
pub(super) fn weight_grad(g: &Geometry, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    debug_assert!(takes_weight_grad(g));
    weight_grad_by(g, x, dy, dw, direct_weight_grad(g));
}

/// [`weight_grad`] by the direct kernel or (`direct` false, stride 1) by GEMMs, which tests
/// also run on CPUs that have the direct kernel.
pub(super) fn weight_grad_by(g: &Geometry, x: &[f32], dy: &[f32], dw: &mut [f32], direct: bool) {
    let taps = g.kh * g.kw;
    assert!(dw.len() == g.c_out * g.c_in * taps && (direct || g.stride == [1, 1]));
    let pad = Padded::of(g);
    let outs = if direct {
        direct::padded_outputs(g.c_out)
    } else {
        g.c_out
    };
    // Tap-major (`[tap][o][c]`, `outs` rows), reordered below.
    let len = taps * outs * g.c_in;
    let total = summed_per_group(g, x, dy, len, |xs, dys, sum| match direct {
        true => direct_sums(g, pad, (xs, dys), sum),
        false => gemm_sums(g, pad, (xs, dys), sum),
    });
    for (tap, block) in total.chunks_exact(outs * g.c_in).enumerate() {
        for (oc, &v) in block[..g.c_out * g.c_in].iter().enumerate() {
            dw[oc * taps + tap] = v;
        }
    }
}

/// The kernel offsets of `g` as shifts of its padded plane, tap by tap.
fn offsets(g: &Geometry, pad: Padded) -> Vec<usize> {
    (0..g.kh * g.kw)
        .map(|t| pad.offset(t / g.kw, t % g.kw))
        .collect()
}

/// Images at a time: the padded images and the output gradients laid out in
/// [`direct::WeightTiles`]' panels and blocks, and its sums over them — several images of
/// small planes at once, so that each of its passes has its [`direct::PASS`] positions.
fn direct_sums(g: &Geometry, pad: Padded, (xs, dys): (&[f32], &[f32]), sum: &mut [f32]) {
    let (c, plane, p) = (g.c_in, pad.plane, g.ho() * g.wo());
    // Read once: the panels below and the kernel's registers must agree.
    let ct = direct::weight_tile(c);
    let offsets = offsets(g, pad);
    let live = g.live_taps();
    let group = direct::PASS.div_ceil(p.max(1));
    let image = plane + pad.tail;
    let (panel, block) = (group * image * ct, group * p * CO);
    let blocks = direct::padded_outputs(g.c_out) / CO;
    let mut xp = vec![0.0; c * plane];
    // Each image's tail, and the outputs past `c_out`, stay zero.
    let mut xt = vec![0.0; (c / ct) * panel];
    let mut dyt = vec![0.0; blocks * block];
    let in_len = g.in_len();
    for (xg, dyg) in xs
        .chunks(group * in_len)
        .zip(dys.chunks(group * g.c_out * p))
    {
        let images = xg.len() / in_len;
        for (b, (xi, dyi)) in xg
            .chunks_exact(in_len)
            .zip(dyg.chunks_exact(g.c_out * p))
            .enumerate()
        {
            pad.fill(g, xi, c, &mut xp);
            for (t, planes) in xp.chunks_exact(ct * plane).enumerate() {
                let dst = &mut xt[t * panel + b * image * ct..][..plane * ct];
                transpose(planes, ct, plane, dst);
            }
            direct::place_outputs(dyi, p, b, &mut dyt, block);
        }
        let tiles = direct::WeightTiles {
            ct,
            xt: &xt,
            panel,
            image,
            images,
            c_in: c,
            dyt: &dyt,
            block,
            c_out: g.c_out,
            rows: pad.rows(g),
            offsets: &offsets,
            live: &live,
        };
        tiles.add_to(sum);
    }
}

/// Output channels per block of the weight gradient's tiles.
const CO: usize = direct::CO;

/// Images per weight-gradient GEMM: enough positions for long GEMM sums, few enough that the
/// position-major copy of a group stays a few megabytes.
const IMAGES_PER_SUM: usize = 16;

/// `kh·kw` GEMMs per group of images: the images padded and laid position-major one after
/// another (so that each tap's operand is a row-major view the GEMM reads as it wants), the
/// output gradient in padded-width rows with zeros wherever a position is thrown away — which
/// also zeroes the products that read across into the next image.
fn gemm_sums(g: &Geometry, pad: Padded, (xs, dys): (&[f32], &[f32]), sum: &mut [f32]) {
    let (c, plane, wo) = (g.c_in, pad.plane, g.wo());
    let (in_len, out_len) = (g.in_len(), g.out_len());
    // The largest shift reads this many positions past a group's last plane.
    let spill = pad.offset(g.kh - 1, g.kw - 1);
    let mut xp = vec![0.0; c * plane];
    let mut xt = vec![0.0; (IMAGES_PER_SUM * plane + spill) * c];
    let mut wide = vec![0.0; g.c_out * IMAGES_PER_SUM * plane];
    let images = xs.chunks(IMAGES_PER_SUM * in_len);
    for (first, (xg, dyg)) in images.zip(dys.chunks(IMAGES_PER_SUM * out_len)).enumerate() {
        let nb = xg.len() / in_len;
        let k = nb * plane;
        for (b, (xi, dyi)) in xg
            .chunks_exact(in_len)
            .zip(dyg.chunks_exact(out_len))
            .enumerate()
        {
            pad.fill(g, xi, c, &mut xp);
            transpose(&xp, c, plane, &mut xt[b * plane * c..][..plane * c]);
            // dy in padded-width rows: wide[o][b·plane + oh·wp + ow].
            for o in 0..g.c_out {
                let dst = &mut wide[o * k + b * plane..][..plane];
                let src = &dyi[o * g.ho() * wo..][..g.ho() * wo];
                for (row, line) in dst.chunks_exact_mut(pad.step).zip(src.chunks(wo)) {
                    row[..wo].copy_from_slice(line);
                    row[wo..].fill(0.0);
                }
                dst[g.ho() * pad.step..].fill(0.0);
            }
        }
        for (tap, off) in offsets(g, pad).into_iter().enumerate() {
            let shifted = View {
                data: &xt[off * c..],
                rs: c,
                cs: 1,
            };
            let out = &mut sum[tap * g.c_out * c..][..g.c_out * c];
            let dyw = View::rows(&wide[..g.c_out * k], k);
            matmul(g.c_out, c, k, dyw, shifted, out, first > 0);
        }
    }
}
