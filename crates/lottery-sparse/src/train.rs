//! The three products of a pruned linear layer in training, on a fixed pattern of kept weights
//! whose values change every step: the forward product, the input gradient, and the gradient at
//! the kept weights only (a dense weight gradient is never formed). Activations are
//! feature-major (`x[feature][example]`), as in the inference kernels, so every kept weight
//! touches one contiguous run of examples; the forward product *is* the inference kernel.

use crate::csr::{Csr, CsrRef};
use crate::error::Error;
use crate::infer::{linear_layer, simd_available, transpose as transpose_fast};

/// Which weights of an `rows × cols` (`[out, in]`) matrix are kept, row by row, checked once so
/// that every product can index without bounds checks. Entry `k` of a values vector belongs to
/// the `k`-th kept position in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    rows: usize,
    cols: usize,
    row_start: Vec<u32>,
    col: Vec<u32>,
    /// The bias of a layer without one.
    zeros: Vec<f32>,
}

impl Pattern {
    /// The nonzero entries of a dense row-major `rows × cols` mask.
    pub fn from_mask(rows: usize, cols: usize, mask: &[f32]) -> Result<Self, Error> {
        let csr = Csr::from_dense(rows, cols, mask)?;
        csr.check()?;
        Ok(Pattern {
            rows,
            cols,
            row_start: csr.row_start,
            col: csr.col,
            zeros: vec![0.0; rows],
        })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Kept weights.
    pub fn nnz(&self) -> usize {
        self.col.len()
    }

    /// Row-major positions `r · cols + c` of the kept weights, in values order.
    pub fn positions(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..self.rows).flat_map(move |r| {
            let (s, e) = (self.row_start[r] as usize, self.row_start[r + 1] as usize);
            self.col[s..e].iter().map(move |&c| (r, c as usize))
        })
    }

    fn with<'a>(&'a self, val: &'a [f32]) -> CsrRef<'a> {
        assert_eq!(val.len(), self.nnz(), "one value per kept weight");
        CsrRef {
            rows: self.rows,
            cols: self.cols,
            row_start: &self.row_start,
            col: &self.col,
            val,
        }
    }

    /// `y = W x + b` for `nb` feature-major examples, through ReLU when `relu`: `x` is
    /// `cols × nb`, `y` `rows × nb`, `bias` one per row (none: zeros).
    pub fn forward(
        &self,
        val: &[f32],
        bias: Option<&[f32]>,
        relu: bool,
        x: &[f32],
        nb: usize,
        y: &mut [f32],
    ) {
        let m = self.with(val);
        let bias = bias.unwrap_or(&self.zeros);
        assert!(x.len() == self.cols * nb && y.len() == self.rows * nb);
        assert_eq!(bias.len(), self.rows, "one bias per output");
        if simd_available() {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU has AVX2 and FMA; the pattern was checked and the sizes asserted.
            unsafe {
                return forward_avx2(m, bias, relu, x, nb, y);
            }
        }
        linear_layer::<false>(m, bias, relu, x, nb, y)
    }

    /// `dx = Wᵀ dy`: `dy` is `rows × nb`, `dx` `cols × nb` (overwritten).
    pub fn input_grad(&self, val: &[f32], dy: &[f32], nb: usize, dx: &mut [f32]) {
        let m = self.with(val);
        assert!(dy.len() == self.rows * nb && dx.len() == self.cols * nb);
        if simd_available() {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as in `forward`.
            unsafe {
                return input_grad_avx2(m, dy, nb, dx);
            }
        }
        input_grad::<false>(m, dy, nb, dx)
    }

    /// `dval[k] = Σ_e dy[r][e] · x[c][e]` for each kept `(r, c)`: the weight gradient at the kept
    /// positions only. `dy` is `rows × nb`, `x` `cols × nb`, `dval` one entry per kept weight.
    pub fn values_grad(&self, dy: &[f32], x: &[f32], nb: usize, dval: &mut [f32]) {
        assert_eq!(dval.len(), self.nnz(), "one value per kept weight");
        assert!(dy.len() == self.rows * nb && x.len() == self.cols * nb);
        let (rows, row_start, col) = (self.rows, &self.row_start[..], &self.col[..]);
        if simd_available() {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as in `forward`.
            unsafe {
                return values_grad_avx2(rows, row_start, col, dy, x, nb, dval);
            }
        }
        values_grad::<false>(rows, row_start, col, dy, x, nb, dval)
    }
}

/// Example-major `nb × len` to feature-major `len × nb` (or back, with the roles swapped).
pub fn transpose(src: &[f32], nb: usize, len: usize, dst: &mut [f32]) {
    assert!(src.len() == nb * len && dst.len() == nb * len);
    if simd_available() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has AVX2 and FMA.
        unsafe {
            return transpose_avx2(src, nb, len, dst);
        }
    }
    transpose_fast::<false>(src, nb, len, dst)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn forward_avx2(m: CsrRef<'_>, bias: &[f32], relu: bool, x: &[f32], nb: usize, y: &mut [f32]) {
    linear_layer::<true>(m, bias, relu, x, nb, y)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn transpose_avx2(src: &[f32], nb: usize, len: usize, dst: &mut [f32]) {
    transpose_fast::<true>(src, nb, len, dst)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn input_grad_avx2(m: CsrRef<'_>, dy: &[f32], nb: usize, dx: &mut [f32]) {
    input_grad::<true>(m, dy, nb, dx)
}

/// Four dot products at a time (four independent FMA chains over the examples, then one
/// horizontal reduction for the four), the examples in tiles of up to 64.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn values_grad_avx2(
    rows: usize,
    row_start: &[u32],
    col: &[u32],
    dy: &[f32],
    x: &[f32],
    nb: usize,
    dval: &mut [f32],
) {
    use crate::infer::avx2::Tile;
    use std::arch::x86_64::*;
    dval.fill(0.0);
    for r in 0..rows {
        let (s, e) = (row_start[r] as usize, row_start[r + 1] as usize);
        let (cs, out) = (&col[s..e], &mut dval[s..e]);
        let mut t0 = 0;
        while t0 < nb {
            let t = Tile::new(t0, nb);
            // SAFETY: r < rows, every c < cols (checked pattern) and the tile lies inside the
            // batch, so each pointer below has the tile's `len` floats (dy is rows × nb and
            // x cols × nb, asserted by the caller).
            let g = unsafe { dy.as_ptr().add(r * nb + t0) };
            let at = |c: u32| unsafe { x.as_ptr().add(c as usize * nb + t0) };
            let mut quads = cs.chunks_exact(4);
            let mut j = 0;
            for q in quads.by_ref() {
                let p = [at(q[0]), at(q[1]), at(q[2]), at(q[3])];
                let mut a = [_mm256_setzero_ps(); 4];
                for k in 0..t.vectors {
                    let gv = unsafe { t.load(g, k) };
                    for (acc, &pi) in a.iter_mut().zip(&p) {
                        *acc = _mm256_fmadd_ps(gv, unsafe { t.load(pi, k) }, *acc);
                    }
                }
                let h = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
                let sums = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps::<1>(h));
                let mut four = [0.0f32; 4];
                // SAFETY: four has room for one __m128.
                unsafe { _mm_storeu_ps(four.as_mut_ptr(), sums) };
                for (o, v) in out[j..j + 4].iter_mut().zip(four) {
                    *o += v;
                }
                j += 4;
            }
            for &c in quads.remainder() {
                let p = at(c);
                let mut acc = _mm256_setzero_ps();
                for k in 0..t.vectors {
                    acc = _mm256_fmadd_ps(unsafe { t.load(g, k) }, unsafe { t.load(p, k) }, acc);
                }
                let mut lanes = [0.0f32; 8];
                // SAFETY: lanes has room for one __m256.
                unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), acc) };
                out[j] += lanes.iter().sum::<f32>();
                j += 1;
            }
            t0 += t.len;
        }
    }
}

/// Scatter form: each kept `(r, c)` adds `w · dy[r][·]` to `dx[c][·]`, a contiguous axpy the
/// compiler vectorises under the caller's target features.
#[inline(always)]
fn input_grad<const FMA: bool>(m: CsrRef<'_>, dy: &[f32], nb: usize, dx: &mut [f32]) {
    dx.fill(0.0);
    for r in 0..m.rows {
        let (cols, vals) = m.row(r);
        let g = &dy[r * nb..(r + 1) * nb];
        for (&c, &v) in cols.iter().zip(vals) {
            let out = &mut dx[c as usize * nb..(c as usize + 1) * nb];
            for (o, &gv) in out.iter_mut().zip(g) {
                *o = crate::infer::fma::<FMA>(v, gv, *o);
            }
        }
    }
}

/// Dot products of length `nb` with eight partial sums, so they vectorise without reassociating
/// a single float sum.
#[inline(always)]
fn values_grad<const FMA: bool>(
    rows: usize,
    row_start: &[u32],
    col: &[u32],
    dy: &[f32],
    x: &[f32],
    nb: usize,
    dval: &mut [f32],
) {
    for r in 0..rows {
        let g = &dy[r * nb..(r + 1) * nb];
        let (s, e) = (row_start[r] as usize, row_start[r + 1] as usize);
        for (&c, out) in col[s..e].iter().zip(&mut dval[s..e]) {
            let xs = &x[c as usize * nb..(c as usize + 1) * nb];
            let mut acc = [0.0f32; 8];
            let (gc, xc) = (g.chunks_exact(8), xs.chunks_exact(8));
            let (gt, xt) = (gc.remainder(), xc.remainder());
            for (a, b) in gc.zip(xc) {
                for k in 0..8 {
                    acc[k] = crate::infer::fma::<FMA>(a[k], b[k], acc[k]);
                }
            }
            let mut sum = acc.iter().sum::<f32>();
            for (a, b) in gt.iter().zip(xt) {
                sum = crate::infer::fma::<FMA>(*a, *b, sum);
            }
            *out = sum;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random stream in [-1, 1).
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
                "entry {i}: {x} vs {y}"
            );
        }
    }

    /// Every product against the dense arithmetic written out, at sizes that exercise the
    /// 64-, 8- and 1-wide tails and an empty row.
    #[test]
    fn products_match_dense_arithmetic() {
        for (rows, cols, nb) in [(7, 13, 1), (5, 9, 67), (12, 33, 60), (3, 4, 8)] {
            let mut mask: Vec<f32> = values(rows * cols, 1)
                .iter()
                .map(|&v| (v > 0.3) as u8 as f32)
                .collect();
            mask[..cols].fill(0.0); // row 0 keeps nothing
            let p = Pattern::from_mask(rows, cols, &mask).unwrap();
            let dense: Vec<f32> = values(rows * cols, 2)
                .iter()
                .zip(&mask)
                .map(|(w, m)| w * m)
                .collect();
            let val: Vec<f32> = p.positions().map(|(r, c)| dense[r * cols + c]).collect();
            let x = values(cols * nb, 3);
            let dy = values(rows * nb, 4);

            let mut y = vec![f32::NAN; rows * nb];
            p.forward(&val, None, false, &x, nb, &mut y);
            let want: Vec<f32> = (0..rows * nb)
                .map(|i| {
                    let (r, e) = (i / nb, i % nb);
                    (0..cols).map(|c| dense[r * cols + c] * x[c * nb + e]).sum()
                })
                .collect();
            close(&y, &want);
            // With a bias and through ReLU.
            let bias = values(rows, 5);
            p.forward(&val, Some(&bias), true, &x, nb, &mut y);
            let want: Vec<f32> = (want.iter().enumerate())
                .map(|(i, w)| (w + bias[i / nb]).max(0.0))
                .collect();
            close(&y, &want);
            assert!(want.iter().any(|&w| w == 0.0) && want.iter().any(|&w| w > 0.0));

            let mut dx = vec![f32::NAN; cols * nb];
            p.input_grad(&val, &dy, nb, &mut dx);
            let want: Vec<f32> = (0..cols * nb)
                .map(|i| {
                    let (c, e) = (i / nb, i % nb);
                    (0..rows)
                        .map(|r| dense[r * cols + c] * dy[r * nb + e])
                        .sum()
                })
                .collect();
            close(&dx, &want);

            let mut dval = vec![f32::NAN; p.nnz()];
            p.values_grad(&dy, &x, nb, &mut dval);
            let want: Vec<f32> = p
                .positions()
                .map(|(r, c)| (0..nb).map(|e| dy[r * nb + e] * x[c * nb + e]).sum())
                .collect();
            close(&dval, &want);

            let mut t = vec![0.0; x.len()];
            let mut back = vec![0.0; x.len()];
            transpose(&x, cols, nb, &mut t);
            transpose(&t, nb, cols, &mut back);
            assert_eq!(back, x);
            for (c, e) in (0..cols).flat_map(|c| (0..nb).map(move |e| (c, e))) {
                assert_eq!(t[e * cols + c], x[c * nb + e]);
            }
        }
    }

    #[test]
    fn a_mask_of_the_wrong_size_is_refused() {
        let e = Pattern::from_mask(3, 4, &[1.0; 11]).unwrap_err();
        assert!(e.to_string().contains("3×4"), "{e}");
    }
}
