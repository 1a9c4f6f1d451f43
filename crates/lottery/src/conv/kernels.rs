//! A 2-D convolution and its two gradients on host memory. Each of the three goes to
//! [`super::shifted`] (direct kernels over the padded image) where that covers it, and
//! otherwise to im2col (each output position's receptive field as one column) and a tuned GEMM
//! (the `gemm` crate's kernels, chosen for the CPU at run time). Images of a batch are split
//! across threads; each thread keeps its own buffers and, for the weight gradient, its own sum.

use gemm::{Parallelism, gemm};
use lottery_sparse::train::transpose;

use super::{batched, columns, shifted};

/// Everything about a convolution but the batch size: NCHW input, OIHW weight, zero padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub c_in: usize,
    pub h: usize,
    pub w: usize,
    pub c_out: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: [usize; 2],
    /// Top, bottom, left, right.
    pub pad: [usize; 4],
}

impl Geometry {
    pub fn ho(&self) -> usize {
        (self.h + self.pad[0] + self.pad[1] - self.kh) / self.stride[0] + 1
    }

    pub fn wo(&self) -> usize {
        (self.w + self.pad[2] + self.pad[3] - self.kw) / self.stride[1] + 1
    }

    /// Rows of the columns matrix: one per weight of an output channel.
    pub(super) fn k(&self) -> usize {
        self.c_in * self.kh * self.kw
    }

    /// Output positions per image.
    pub(super) fn p(&self) -> usize {
        self.ho() * self.wo()
    }

    pub(super) fn in_len(&self) -> usize {
        self.c_in * self.h * self.w
    }

    pub(super) fn out_len(&self) -> usize {
        self.c_out * self.p()
    }

    /// The stride-1 convolution whose forward is this one's input gradient: from the output
    /// gradient, padded by `k − 1 − pad` on each side, to the input, with the kernel flipped
    /// and its two channel axes swapped ([`flipped`]). Only at stride 1, and while no side is
    /// padded by the kernel's size or more.
    pub(super) fn transposed(&self) -> Option<Geometry> {
        let (kh, kw) = (self.kh, self.kw);
        let fits = self.stride == [1, 1]
            && self.pad[0].max(self.pad[1]) < kh
            && self.pad[2].max(self.pad[3]) < kw;
        fits.then(|| Geometry {
            c_in: self.c_out,
            h: self.ho(),
            w: self.wo(),
            c_out: self.c_in,
            kh,
            kw,
            stride: [1, 1],
            pad: [
                kh - 1 - self.pad[0],
                kh - 1 - self.pad[1],
                kw - 1 - self.pad[2],
                kw - 1 - self.pad[3],
            ],
        })
    }

    /// A 1×1 convolution with stride 1 and no padding reads the image itself as its columns.
    pub(super) fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == [1, 1] && self.pad == [0; 4]
    }

    /// Input row/column of kernel offset `i` at output row/column `o`, if inside the image.
    #[inline(always)]
    fn src(o: usize, i: usize, stride: usize, pad: usize, len: usize) -> Option<usize> {
        (o * stride + i).checked_sub(pad).filter(|&v| v < len)
    }

    /// Whether kernel offset `tap` (`i·kw + j`) of each output position reads inside the image,
    /// not the zero padding: `live[p·kh·kw + tap]`, positions row after row. On VGG's 2×2 planes
    /// 16 of the 36 (position, offset) pairs do, on its 4×4 planes 100 of 144.
    pub(super) fn live_taps(&self) -> Vec<bool> {
        let (ho, wo, [sh, sw]) = (self.ho(), self.wo(), self.stride);
        let (rows, cols) = ((0..ho), (0..wo));
        rows.flat_map(|oh| cols.clone().map(move |ow| (oh, ow)))
            .flat_map(|(oh, ow)| {
                (0..self.kh * self.kw).map(move |t| {
                    let (i, j) = (t / self.kw, t % self.kw);
                    Self::src(oh, i, sh, self.pad[0], self.h).is_some()
                        && Self::src(ow, j, sw, self.pad[2], self.w).is_some()
                })
            })
            .collect()
    }

    /// The output columns whose input column for kernel offset `j` is inside the image: `lo..hi`,
    /// reading input column `ow · stride + j − left` (the first at `lo`).
    #[inline(always)]
    fn valid_cols(&self, j: usize) -> (usize, usize) {
        let (s, left, wo) = (self.stride[1], self.pad[2], self.wo());
        // ow·s + j ≥ left  and  ow·s + j − left < w
        let lo = left.saturating_sub(j).div_ceil(s).min(wo);
        let hi = (self.w + left).saturating_sub(j).div_ceil(s).min(wo);
        (lo, hi.max(lo))
    }

    /// `col[(c·kh + i)·kw + j][oh·wo + ow] = x[c][oh·s + i − top][ow·s + j − left]`, 0 outside.
    pub(super) fn im2col(&self, x: &[f32], col: &mut [f32]) {
        let (ho, wo, s) = (self.ho(), self.wo(), self.stride[1]);
        let mut rows = col.chunks_exact_mut(ho * wo);
        for c in 0..self.c_in {
            let plane = &x[c * self.h * self.w..(c + 1) * self.h * self.w];
            for i in 0..self.kh {
                for j in 0..self.kw {
                    let row = rows.next().expect("k rows");
                    let (lo, hi) = self.valid_cols(j);
                    for oh in 0..ho {
                        let out = &mut row[oh * wo..(oh + 1) * wo];
                        let Some(ih) = Self::src(oh, i, self.stride[0], self.pad[0], self.h) else {
                            out.fill(0.0);
                            continue;
                        };
                        out[..lo].fill(0.0);
                        out[hi..].fill(0.0);
                        if lo < hi {
                            let first = lo * s + j - self.pad[2];
                            let line = &plane[ih * self.w + first..];
                            if s == 1 {
                                out[lo..hi].copy_from_slice(&line[..hi - lo]);
                            } else {
                                for (o, v) in out[lo..hi].iter_mut().zip(line.iter().step_by(s)) {
                                    *o = *v;
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of [`Geometry::im2col`]: each column entry added back to the pixel it read.
    fn col2im(&self, col: &[f32], dx: &mut [f32]) {
        let (ho, wo, s) = (self.ho(), self.wo(), self.stride[1]);
        dx.fill(0.0);
        let mut rows = col.chunks_exact(ho * wo);
        for c in 0..self.c_in {
            let plane = &mut dx[c * self.h * self.w..(c + 1) * self.h * self.w];
            for i in 0..self.kh {
                for j in 0..self.kw {
                    let row = rows.next().expect("k rows");
                    let (lo, hi) = self.valid_cols(j);
                    if lo >= hi {
                        continue;
                    }
                    let first = lo * s + j - self.pad[2];
                    for oh in 0..ho {
                        let Some(ih) = Self::src(oh, i, self.stride[0], self.pad[0], self.h) else {
                            continue;
                        };
                        let line = &mut plane[ih * self.w + first..];
                        let vals = &row[oh * wo + lo..oh * wo + hi];
                        if s == 1 {
                            for (d, v) in line[..vals.len()].iter_mut().zip(vals) {
                                *d += v;
                            }
                        } else {
                            for (d, v) in line.iter_mut().step_by(s).zip(vals) {
                                *d += v;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A matrix operand: its elements with row and column strides (non-negative).
#[derive(Clone, Copy)]
pub(super) struct View<'a> {
    pub(super) data: &'a [f32],
    pub(super) rs: usize,
    pub(super) cs: usize,
}

impl<'a> View<'a> {
    pub(super) fn rows(data: &'a [f32], cols: usize) -> Self {
        View {
            data,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose of a row-major matrix with `cols` columns.
    fn transposed(data: &'a [f32], cols: usize) -> Self {
        View {
            data,
            rs: 1,
            cs: cols,
        }
    }

    fn fits(&self, rows: usize, cols: usize) -> bool {
        rows == 0 || cols == 0 || (rows - 1) * self.rs + (cols - 1) * self.cs < self.data.len()
    }
}

/// `c = a·b` (or `c += a·b` with `accumulate`) for `a` of `m × k`, `b` of `k × n` and a
/// row-major `c` of `m × n`, on the calling thread.
pub(super) fn matmul(
    m: usize,
    n: usize,
    k: usize,
    a: View,
    b: View,
    c: &mut [f32],
    accumulate: bool,
) {
    assert!(
        a.fits(m, k) && b.fits(k, n) && c.len() == m * n,
        "operands of the shapes given"
    );
    // SAFETY: the assertion keeps every element gemm reads or writes inside the slices.
    unsafe {
        gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        )
    }
}

/// Threads for `n` images: the cores, but never more than the images. The core count is read
/// once: on Linux it comes from cgroup files, which every layer of every step would read again.
pub(super) fn threads(n: usize) -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let cores = *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |t| t.get()));
    cores.min(n).max(1)
}

/// Runs `f(images' inputs, images' outputs)` on contiguous groups of images, one group per
/// thread, each group but the last a multiple of `unit` images.
pub(super) fn per_group<F>(
    n: usize,
    unit: usize,
    input: (&[f32], usize),
    output: (&mut [f32], usize),
    f: F,
) where
    F: Fn(&[f32], &mut [f32]) + Sync,
{
    let units = n.div_ceil(unit.max(1));
    let per = units.div_ceil(threads(units)).max(1) * unit.max(1);
    let (x, in_len) = input;
    let (y, out_len) = output;
    std::thread::scope(|s| {
        let mut groups = x.chunks(per * in_len).zip(y.chunks_mut(per * out_len));
        let first = groups.next();
        for (xs, ys) in groups {
            let f = &f;
            s.spawn(move || f(xs, ys));
        }
        if let Some((xs, ys)) = first {
            f(xs, ys);
        }
    });
}

/// `y[n] = W ⊛ x[n]` for a batch of `n` images; `w` is `[c_out, c_in, kh, kw]`.
pub fn forward(g: &Geometry, x: &[f32], w: &[f32], y: &mut [f32]) {
    let n = x.len() / g.in_len().max(1);
    if batched::takes(g, n) {
        batched::forward(g, x, w, y)
    } else if shifted::takes(g) {
        shifted::forward(g, x, w, y)
    } else {
        forward_im2col(g, x, w, y)
    }
}

/// Whether a direct kernel, not im2col, computes the forward of `g` on `n` images.
fn direct_forward(g: &Geometry, n: usize) -> bool {
    batched::takes(g, n) || shifted::takes(g)
}

/// `y[n] = W · im2col(x[n])`.
fn forward_im2col(g: &Geometry, x: &[f32], w: &[f32], y: &mut [f32]) {
    let n = x.len() / g.in_len().max(1);
    assert!(x.len() == n * g.in_len() && y.len() == n * g.out_len() && w.len() == g.c_out * g.k());
    let (k, p) = (g.k(), g.p());
    per_group(n, 1, (x, g.in_len()), (y, g.out_len()), |xs, ys| {
        let mut col = if g.is_pointwise() {
            Vec::new()
        } else {
            vec![0.0; k * p]
        };
        for (xi, yi) in xs
            .chunks_exact(g.in_len())
            .zip(ys.chunks_exact_mut(g.out_len()))
        {
            let cols = if g.is_pointwise() {
                xi
            } else {
                g.im2col(xi, &mut col);
                &col
            };
            matmul(
                g.c_out,
                p,
                k,
                View::rows(w, k),
                View::rows(cols, p),
                yi,
                false,
            );
        }
    });
}

/// `dx[n] = Wᵀ ⊛ dy[n]`, the adjoint of [`forward`]: at stride 1, where a direct kernel takes
/// it, the forward of [`Geometry::transposed`] on `dy` with the kernel flipped.
pub fn input_grad(g: &Geometry, dy: &[f32], w: &[f32], dx: &mut [f32]) {
    let n = dy.len() / g.out_len().max(1);
    match g.transposed() {
        Some(back) if direct_forward(&back, n) => forward(&back, dy, &flipped(g, w), dx),
        _ => input_grad_im2col(g, dy, w, dx),
    }
}

/// `w'[c][o][i][j] = w[o][c][kh−1−i][kw−1−j]`: the kernel of [`Geometry::transposed`].
fn flipped(g: &Geometry, w: &[f32]) -> Vec<f32> {
    let taps = g.kh * g.kw;
    let mut flipped = vec![0.0; w.len()];
    for o in 0..g.c_out {
        for c in 0..g.c_in {
            let src = &w[(o * g.c_in + c) * taps..][..taps];
            let dst = &mut flipped[(c * g.c_out + o) * taps..][..taps];
            for (d, s) in dst.iter_mut().zip(src.iter().rev()) {
                *d = *s;
            }
        }
    }
    flipped
}

/// `dx[n] = col2im(Wᵀ · dy[n])`.
fn input_grad_im2col(g: &Geometry, dy: &[f32], w: &[f32], dx: &mut [f32]) {
    let n = dy.len() / g.out_len().max(1);
    assert!(
        dy.len() == n * g.out_len() && dx.len() == n * g.in_len() && w.len() == g.c_out * g.k()
    );
    let (k, p) = (g.k(), g.p());
    per_group(n, 1, (dy, g.out_len()), (dx, g.in_len()), |dys, dxs| {
        let mut col = vec![0.0; k * p];
        for (dyi, dxi) in dys
            .chunks_exact(g.out_len())
            .zip(dxs.chunks_exact_mut(g.in_len()))
        {
            let wt = View::transposed(w, k);
            if g.is_pointwise() {
                matmul(k, p, g.c_out, wt, View::rows(dyi, p), dxi, false);
            } else {
                matmul(k, p, g.c_out, wt, View::rows(dyi, p), &mut col, false);
                g.col2im(&col, dxi);
            }
        }
    });
}

/// `dw = Σ_n ∂(y[n]·dy[n])/∂W`, `[c_out, c_in, kh, kw]`.
pub fn weight_grad(g: &Geometry, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    if shifted::takes_weight_grad(g) {
        shifted::weight_grad(g, x, dy, dw)
    } else if columns::takes(g) {
        columns::weight_grad(g, x, dy, dw)
    } else {
        weight_grad_im2col(g, x, dy, dw)
    }
}

/// `dw = Σ_n dy[n] · im2col(x[n])ᵀ`, `[c_out, c_in, kh, kw]`. The product sums over output
/// positions, which both `dy` and the columns hold contiguously — the layout a GEMM packs
/// slowest (a strided gather per element of the large operand). So the columns are transposed
/// first (position-major, one cache-blocked pass) and the GEMM reads both operands the way its
/// kernels want.
fn weight_grad_im2col(g: &Geometry, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    assert_eq!(
        dw.len(),
        g.c_out * g.k(),
        "a weight gradient of the weight's shape"
    );
    let (k, p) = (g.k(), g.p());
    let total = summed_per_group(g, x, dy, dw.len(), |xs, dys, sum| {
        let mut col = if g.is_pointwise() {
            Vec::new()
        } else {
            vec![0.0; k * p]
        };
        let mut colt = vec![0.0; k * p];
        for (i, (xi, dyi)) in xs
            .chunks_exact(g.in_len())
            .zip(dys.chunks_exact(g.out_len()))
            .enumerate()
        {
            let cols = if g.is_pointwise() {
                xi
            } else {
                g.im2col(xi, &mut col);
                &col
            };
            transpose(cols, k, p, &mut colt);
            let (a, b) = (View::rows(dyi, p), View::rows(&colt, k));
            matmul(g.c_out, k, p, a, b, sum, i > 0);
        }
    });
    dw.copy_from_slice(&total);
}

/// A weight gradient's sum over the images of a batch: `f(images' inputs, their output
/// gradients, the group's sum)` on contiguous groups of images, one group per thread, each into
/// its own `len` values (zero to start), which are then added up.
pub(super) fn summed_per_group<F>(g: &Geometry, x: &[f32], dy: &[f32], len: usize, f: F) -> Vec<f32>
where
    F: Fn(&[f32], &[f32], &mut [f32]) + Sync,
{
    let n = x.len() / g.in_len().max(1);
    assert!(
        x.len() == n * g.in_len() && dy.len() == n * g.out_len(),
        "inputs and output gradients of the same images"
    );
    let groups = threads(n);
    let per = n.div_ceil(groups).max(1);
    let mut partial = vec![0.0f32; groups * len];
    std::thread::scope(|s| {
        let work = x
            .chunks(per * g.in_len())
            .zip(dy.chunks(per * g.out_len()))
            .zip(partial.chunks_mut(len.max(1)));
        for ((xs, dys), sum) in work {
            let f = &f;
            s.spawn(move || f(xs, dys, sum));
        }
    });
    let mut total = vec![0.0f32; len];
    for sum in partial.chunks_exact(len.max(1)) {
        for (t, v) in total.iter_mut().zip(sum) {
            *t += v;
        }
    }
    total
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    /// The convolution written out, one output at a time.
    fn naive(g: &Geometry, x: &[f32], w: &[f32], n: usize) -> Vec<f32> {
        let (ho, wo) = (g.ho(), g.wo());
        let mut y = vec![0.0; n * g.c_out * ho * wo];
        for b in 0..n {
            for o in 0..g.c_out {
                for oh in 0..ho {
                    for ow in 0..wo {
                        let mut s = 0.0;
                        for c in 0..g.c_in {
                            for i in 0..g.kh {
                                for j in 0..g.kw {
                                    let ih = (oh * g.stride[0] + i) as isize - g.pad[0] as isize;
                                    let iw = (ow * g.stride[1] + j) as isize - g.pad[2] as isize;
                                    if ih < 0 || iw < 0 || ih >= g.h as isize || iw >= g.w as isize
                                    {
                                        continue;
                                    }
                                    let xv = x[((b * g.c_in + c) * g.h + ih as usize) * g.w
                                        + iw as usize];
                                    s += xv * w[((o * g.c_in + c) * g.kh + i) * g.kw + j];
                                }
                            }
                        }
                        y[((b * g.c_out + o) * ho + oh) * wo + ow] = s;
                    }
                }
            }
        }
        y
    }

    /// Equal within 1e-4, relative to the expected value's size (absolute below 1).
    pub(in crate::conv) fn close(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}");
        for (i, (p, q)) in a.iter().zip(b).enumerate() {
            assert!(
                (p - q).abs() <= 1e-4 * (1.0 + q.abs()),
                "{what}[{i}]: {p} vs {q}"
            );
        }
    }

    fn geometries() -> Vec<(Geometry, usize)> {
        let g = |c_in, h, w, c_out, k: [usize; 2], stride, pad| Geometry {
            c_in,
            h,
            w,
            c_out,
            kh: k[0],
            kw: k[1],
            stride,
            pad,
        };
        vec![
            (g(3, 7, 9, 4, [3, 3], [1, 1], [1, 1, 1, 1]), 5),
            (g(2, 8, 8, 3, [3, 3], [2, 2], [1, 1, 1, 1]), 3),
            (g(4, 5, 6, 5, [1, 1], [1, 1], [0; 4]), 4),
            (g(4, 6, 6, 2, [1, 1], [2, 2], [0; 4]), 3),
            (g(1, 6, 5, 3, [2, 3], [1, 2], [0, 1, 1, 1]), 1),
            (g(3, 4, 4, 2, [3, 3], [1, 1], [0; 4]), 2),
            // Stride 1 without im2col (output rows 7 and 8 wide, which runs of 8 cover):
            // asymmetric padding, a padding as large as the kernel (whose input gradient goes
            // back to im2col), more images than a thread takes, whole tiles of input channels
            // (the direct weight gradient) with outputs that are not.
            (g(2, 5, 8, 3, [2, 3], [1, 1], [0, 1, 1, 0]), 2),
            (g(2, 4, 6, 3, [2, 2], [1, 1], [2, 1, 0, 2]), 1),
            (g(2, 5, 7, 3, [3, 3], [1, 1], [1; 4]), 35),
            (g(16, 5, 7, 7, [3, 3], [1, 1], [1, 0, 1, 2]), 3),
            // Rows of 16 and 32 input channels: AVX-512's kernels where the CPU has it.
            (g(32, 3, 16, 3, [3, 3], [1, 1], [1; 4]), 1),
            // Strided, through the column phases (input gradients by im2col): ResNet's 3×3 and
            // 1×1 stride-2 layers with whole channel tiles, a 2×3 kernel at stride (1, 2), and
            // stride 3.
            (g(16, 9, 16, 5, [3, 3], [2, 2], [1; 4]), 2),
            (g(16, 6, 16, 4, [1, 1], [2, 2], [0; 4]), 2),
            (g(2, 6, 15, 3, [2, 3], [1, 2], [0, 1, 1, 1]), 2),
            (g(3, 7, 23, 2, [3, 3], [3, 3], [1; 4]), 1),
            // Images across the lanes (`batched`): VGG's 4×4 planes with a second pass of
            // input channels and a short last group; 2×2 planes over two threads' groups; 8×8
            // (AVX-512's, AVX2 runs rows of 8); strided 4×4 outputs and a 2×3 kernel at
            // stride (1, 2), whose input gradients go to im2col.
            (g(20, 4, 4, 3, [3, 3], [1, 1], [1; 4]), 13),
            (g(3, 2, 2, 5, [3, 3], [1, 1], [1; 4]), 30),
            (g(4, 8, 8, 3, [3, 3], [1, 1], [1; 4]), 13),
            (g(4, 7, 7, 7, [3, 3], [2, 2], [1; 4]), 13),
            (g(2, 5, 7, 3, [2, 3], [1, 2], [0, 1, 1, 1]), 13),
        ]
    }

    /// How many of [`geometries`]' last ones are meant for `batched`.
    const BATCHED: usize = 5;

    /// Whether a direct kernel computes `g`'s input gradient on `n` images.
    fn direct_input_grad(g: &Geometry, n: usize) -> bool {
        g.transposed().is_some_and(|back| direct_forward(&back, n))
    }

    /// The geometries above meant for the direct kernels reach them on a CPU that has them.
    #[test]
    fn geometries_take_the_direct_kernels() {
        if !super::super::direct::available() {
            return;
        }
        let all = geometries();
        let (rows, batched) = all.split_at(all.len() - BATCHED);
        let (direct, strided) = (
            &rows[rows.len() - 9..rows.len() - 5],
            &rows[rows.len() - 4..],
        );
        for (g, n) in direct {
            assert!(shifted::takes(g), "{g:?}");
            // Whole tiles of input channels go to the direct weight gradient over the image,
            // the rest to the same kernel over im2col's columns.
            let whole = g.c_in.is_multiple_of(super::super::direct::CT);
            assert_eq!(shifted::takes_weight_grad(g), whole, "{g:?}");
            assert!(columns::takes(g), "{g:?}");
            assert!(
                !batched::takes(g, *n),
                "{g:?}: rows 7 and 8 wide, or too few images"
            );
        }
        assert!(
            !direct_input_grad(&direct[1].0, direct[1].1),
            "padding as large as the kernel"
        );
        for (g, n) in [0, 2, 3].map(|i| direct[i]) {
            assert!(direct_input_grad(&g, n), "{g:?}");
        }
        for (i, (g, n)) in strided.iter().enumerate() {
            assert!(shifted::takes(g) && !direct_input_grad(g, *n), "{g:?}");
            // The direct weight gradient wants whole tiles of input channels; the others but
            // the 1×1 go through the columns.
            assert_eq!(shifted::takes_weight_grad(g), i < 2, "{g:?}");
            assert_eq!(columns::takes(g), !g.is_pointwise(), "{g:?}");
        }
        // Four-wide rows would waste half of every run: their images go across the lanes.
        let mut narrow = direct[2].0;
        narrow.w = 4;
        assert!(!shifted::takes(&narrow) && batched::takes(&narrow, 64));
        assert!(
            !batched::takes(&narrow, 1),
            "a lone image would fill a sixteenth of them"
        );
        let eight_wide = super::super::direct::lanes() == 16;
        for (i, (g, n)) in batched.iter().enumerate() {
            assert_eq!(batched::takes(g, *n), i != 2 || eight_wide, "{g:?}");
            assert_eq!(direct_input_grad(g, *n), i < 3, "{g:?}");
        }
    }

    /// A 3×3 convolution with padding 1 on square planes `hw` wide, as in VGG and ResNet.
    fn same_3x3(c_in: usize, c_out: usize, hw: usize) -> Geometry {
        Geometry {
            c_in,
            h: hw,
            w: hw,
            c_out,
            kh: 3,
            kw: 3,
            stride: [1, 1],
            pad: [1; 4],
        }
    }

    /// The image-lane forward over more input channels than one of its passes takes (the
    /// sums kept between passes), on 4×4 and 2×2 planes and with a short last group, against
    /// the written-out sum. (The input gradient is the same kernel.)
    #[test]
    fn image_lane_passes_add_up() {
        let c_in = 2 * super::super::direct::CHANNELS_PER_PASS + 3;
        for (hw, n) in [(4, 13), (2, 30)] {
            let g = same_3x3(c_in, 7, hw);
            if super::super::direct::available() {
                assert!(batched::takes(&g, n), "{g:?}");
            }
            let x = values(n * g.in_len(), 9);
            let w = values(g.c_out * g.k(), 10);
            let mut y = vec![f32::NAN; n * g.out_len()];
            forward(&g, &x, &w, &mut y);
            close(&y, &naive(&g, &x, &w, n), &format!("{g:?} forward"));
        }
    }

    /// The direct weight gradient where it skips the positions that read the padding (enough
    /// channel tiles and output blocks per pass) and where it walks them all, against im2col's
    /// (checked against the definition above on the small geometries).
    #[test]
    fn direct_weight_gradient_matches_im2col() {
        for (c_in, c_out, hw, n) in [(32, 48, 4, 3), (64, 60, 2, 5), (16, 16, 8, 2)] {
            let g = same_3x3(c_in, c_out, hw);
            if super::super::direct::available() {
                assert!(shifted::takes_weight_grad(&g), "{g:?}");
            }
            let x = values(n * g.in_len(), 11);
            let r = values(n * g.out_len(), 12);
            let (mut want, mut got) =
                (vec![f32::NAN; c_out * g.k()], vec![f32::NAN; c_out * g.k()]);
            weight_grad_im2col(&g, &x, &r, &mut want);
            weight_grad(&g, &x, &r, &mut got);
            close(&got, &want, &format!("{g:?} weight gradient"));
        }
    }

    /// Which kernel offsets read inside the image: VGG's 2×2 and 4×4 planes, and a strided,
    /// asymmetrically padded geometry against the coordinates written out.
    #[test]
    fn live_taps_are_the_offsets_inside_the_image() {
        let vgg = |hw| same_3x3(1, 1, hw);
        let count = |g: &Geometry| g.live_taps().iter().filter(|&&l| l).count();
        assert_eq!(count(&vgg(2)), 16);
        assert_eq!(count(&vgg(4)), 100);
        // Position (0, 0) of a 2×2 plane reads its image only at offsets (1..3, 1..3).
        let corner: Vec<bool> = vgg(2).live_taps()[..9].to_vec();
        let want = [false, false, false, false, true, true, false, true, true];
        assert_eq!(corner, want);
        let g = geometries()[4].0;
        assert_eq!((g.stride, g.pad), ([1, 2], [0, 1, 1, 1]));
        let live = g.live_taps();
        let taps = g.kh * g.kw;
        for (at, &l) in live.iter().enumerate() {
            let (p, t) = (at / taps, at % taps);
            let (oh, ow, i, j) = (p / g.wo(), p % g.wo(), t / g.kw, t % g.kw);
            let ih = (oh * g.stride[0] + i) as isize - g.pad[0] as isize;
            let iw = (ow * g.stride[1] + j) as isize - g.pad[2] as isize;
            let inside = (0..g.h as isize).contains(&ih) && (0..g.w as isize).contains(&iw);
            assert_eq!(l, inside, "{g:?} position {p} offset {t}");
        }
        assert_eq!(live.len(), g.p() * taps);
    }

    /// The AVX2 kernels against the AVX-512 ones (where the CPU has them): rows of 16 and 32
    /// input channels, which both take, and 4×4 planes with images across 8 or 16 lanes.
    #[test]
    fn narrow_and_wide_kernels_agree() {
        use super::super::direct::narrow;
        let all = geometries();
        let wide_rows = all[all.len() - BATCHED - 5];
        assert_eq!((wide_rows.0.c_in, wide_rows.0.wo()), (32, 16));
        for (g, n) in [wide_rows, all[all.len() - BATCHED]] {
            let x = values(n * g.in_len(), 4);
            let w = values(g.c_out * g.k(), 5);
            let r = values(n * g.out_len(), 6);
            let run = || {
                let mut y = vec![f32::NAN; r.len()];
                let mut dx = vec![f32::NAN; x.len()];
                let mut dw = vec![f32::NAN; w.len()];
                forward(&g, &x, &w, &mut y);
                input_grad(&g, &r, &w, &mut dx);
                weight_grad(&g, &x, &r, &mut dw);
                [y, dx, dw]
            };
            let (wide, narrow) = (run(), narrow(run));
            for (what, (a, b)) in ["output", "input gradient", "weight gradient"]
                .iter()
                .zip(wide.iter().zip(&narrow))
            {
                close(a, b, &format!("{g:?} {what}"));
            }
        }
    }

    /// The stride-1 weight gradient by GEMMs over shifted views (CPUs without AVX2) against
    /// the one checked against the definition below.
    #[test]
    fn gemm_weight_gradient_matches() {
        for (g, n) in geometries() {
            if g.stride != [1, 1] || g.is_pointwise() {
                continue;
            }
            let x = values(n * g.in_len(), 7);
            let r = values(n * g.out_len(), 8);
            let (mut want, mut got) = (
                vec![f32::NAN; g.c_out * g.k()],
                vec![f32::NAN; g.c_out * g.k()],
            );
            weight_grad(&g, &x, &r, &mut want);
            shifted::weight_grad_by(&g, &x, &r, &mut got, false);
            close(&got, &want, &format!("{g:?} weight gradient by GEMMs"));
        }
    }

    /// Forward against the written-out sum; the gradients against their definitions through
    /// the naive forward: `dx = ∂(Σ y·r)/∂x` by linearity, each entry read off with a unit input.
    #[test]
    fn convolution_and_gradients_match_the_definition() {
        for (g, n) in geometries() {
            let x = values(n * g.in_len(), 1);
            let w = values(g.c_out * g.k(), 2);
            let r = values(n * g.out_len(), 3);
            let mut y = vec![f32::NAN; n * g.out_len()];
            forward(&g, &x, &w, &mut y);
            close(&y, &naive(&g, &x, &w, n), &format!("{g:?} forward"));

            // Σ y·r is linear in x and in w: its gradient entry e is the sum for unit input e.
            let dot = |y: &[f32]| y.iter().zip(&r).map(|(a, b)| a * b).sum::<f32>();
            let mut dx = vec![f32::NAN; x.len()];
            input_grad(&g, &r, &w, &mut dx);
            let want: Vec<f32> = (0..x.len())
                .map(|e| {
                    let mut unit = vec![0.0; x.len()];
                    unit[e] = 1.0;
                    dot(&naive(&g, &unit, &w, n))
                })
                .collect();
            close(&dx, &want, &format!("{g:?} input gradient"));

            let mut dw = vec![f32::NAN; w.len()];
            weight_grad(&g, &x, &r, &mut dw);
            let want: Vec<f32> = (0..w.len())
                .map(|e| {
                    let mut unit = vec![0.0; w.len()];
                    unit[e] = 1.0;
                    dot(&naive(&g, &x, &unit, n))
                })
                .collect();
            close(&dw, &want, &format!("{g:?} weight gradient"));
        }
    }
}
