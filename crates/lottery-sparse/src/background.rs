//! Products whose left operand is mostly one value and changes every call: a batch of images
//! times a dense weight. 81% of MNIST's pixels are background — after normalisation all the
//! same value `c` (−0.4242 with the paper's constants) — so the first layer of an MLP on it,
//! 88% of LeNet-300-100's arithmetic, does a fifth of the work when each example is written
//! `x = c + s` with `s` sparse: `x W = c · (column sums of W) + s W`, and the weight gradient
//! `xᵀ dy = sᵀ dy + c · (1 ⊗ column sums of dy)`. Both are one kernel: a sparse row combines
//! rows of a dense matrix, the sum held in registers and started from the background's term.
//!
//! Results equal the dense products up to the order of summation, so within float rounding,
//! not bit for bit.

use crate::infer::simd_available;

/// Output columns summed in registers at once: eight AVX2 vectors, eight FMA chains in flight.
const WIDE: usize = 64;

/// The nonzero entries of a matrix, row by row: offsets, indices and values (a CSR matrix whose
/// structure changes every call, so it is not [`crate::Csr`], which is checked once and kept).
struct Entries {
    start: Vec<usize>,
    index: Vec<u32>,
    value: Vec<f32>,
}

impl Entries {
    /// The entries of each row of the row-major `rows × cols` matrix `a` that differ from `c`,
    /// as their difference from it.
    fn rows(a: &[f32], rows: usize, cols: usize, c: f32) -> Self {
        assert_eq!(a.len(), rows * cols);
        let mut start = Vec::with_capacity(rows + 1);
        let (mut index, mut value) = (Vec::<u32>::new(), Vec::<f32>::new());
        start.push(0);
        for r in 0..rows {
            // Every entry is written and the length advances past those off the background
            // only: no branch to mispredict wherever they fall. (Passing over runs of 8 on the
            // background with one comparison was slower on MNIST, whose lit pixels sit in
            // every run of a row's middle.)
            let before = index.len();
            index.reserve(cols);
            value.reserve(cols);
            let (spare_i, spare_v) = (
                &mut index.spare_capacity_mut()[..cols],
                &mut value.spare_capacity_mut()[..cols],
            );
            let mut kept = 0;
            for (j, &v) in a[r * cols..(r + 1) * cols].iter().enumerate() {
                // kept ≤ j < cols: the bounds checks never fail, so they cost next to nothing.
                spare_i[kept].write(j as u32);
                spare_v[kept].write(v - c);
                kept += (v != c) as usize;
            }
            // SAFETY: the `kept` entries past `before` were written just above.
            unsafe {
                index.set_len(before + kept);
                value.set_len(before + kept);
            }
            start.push(before + kept);
        }
        Entries {
            start,
            index,
            value,
        }
    }

    /// [`Entries::rows`] of `aᵀ`: each column's entries, in row order (a counting sort).
    fn cols(a: &[f32], rows: usize, cols: usize, c: f32) -> Self {
        let by_row = Entries::rows(a, rows, cols, c);
        let mut start = vec![0usize; cols + 1];
        for &c in &by_row.index {
            start[c as usize + 1] += 1;
        }
        for c in 0..cols {
            start[c + 1] += start[c];
        }
        let mut next = start.clone();
        let (mut index, mut value) = (
            vec![0u32; by_row.index.len()],
            vec![0.0; by_row.index.len()],
        );
        for r in 0..rows {
            for k in by_row.start[r]..by_row.start[r + 1] {
                let c = by_row.index[k] as usize;
                index[next[c]] = r as u32;
                value[next[c]] = by_row.value[k];
                next[c] += 1;
            }
        }
        Entries {
            start,
            index,
            value,
        }
    }

    fn len(&self) -> usize {
        self.start.len() - 1
    }
}

/// A value that most of `a`'s entries hold, if one does, and the fraction of entries that
/// differ from it (1 for an empty slice): what decides whether skipping the background pays.
/// Both come from up to 512 entries spread evenly over `a` — the candidate is their majority
/// (Boyer–Moore), the fraction theirs — so finding them costs a glance, not a pass: an estimate
/// within a few points (MNIST's 19% ± 1.7 at one standard error), enough to choose between two
/// paths whose costs cross over smoothly, and the same on every call with the same input. Any
/// candidate gives exact products, a good one gives fast ones.
pub fn background(a: &[f32]) -> (f32, f64) {
    if a.is_empty() {
        return (0.0, 1.0);
    }
    let step = a.len().div_ceil(512);
    let (mut c, mut votes) = (a[0], 0usize);
    for &v in a.iter().step_by(step) {
        if votes == 0 {
            (c, votes) = (v, 1);
        } else if v.to_bits() == c.to_bits() {
            votes += 1;
        } else {
            votes -= 1;
        }
    }
    // A NaN background would poison every sum; fall back to 0, whose products are plain.
    let c = if c.is_finite() { c } else { 0.0 };
    let sampled = a.iter().step_by(step).count();
    let other = a.iter().step_by(step).filter(|&&v| v != c).count();
    (c, other as f64 / sampled as f64)
}

/// `out = a b`: `a` row-major `rows × k`, mostly the value `c` (whose entries are not
/// visited), `b` row-major `k × n`, `out` row-major `rows × n` (overwritten).
pub fn sparse_times_dense(
    a: &[f32],
    rows: usize,
    k: usize,
    c: f32,
    b: &[f32],
    n: usize,
    out: &mut [f32],
) {
    assert!(a.len() == rows * k && b.len() == k * n && out.len() == rows * n);
    let base = scaled_column_sums(b, n, c);
    combine_rows(&Entries::rows(a, rows, k, c), &base, b, n, out);
}

/// `out = aᵀ b`: `a` row-major `rows × k`, mostly the value `c`, `b` row-major `rows × n`,
/// `out` row-major `k × n` (overwritten) — a linear layer's weight gradient `xᵀ dy` in burn's
/// `[in, out]` layout.
pub fn sparse_t_times_dense(
    a: &[f32],
    rows: usize,
    k: usize,
    c: f32,
    b: &[f32],
    n: usize,
    out: &mut [f32],
) {
    assert!(a.len() == rows * k && b.len() == rows * n && out.len() == k * n);
    let base = scaled_column_sums(b, n, c);
    combine_rows(&Entries::cols(a, rows, k, c), &base, b, n, out);
}

/// `c ·` the column sums of the row-major `· × n` matrix `b`: the background's share of every
/// output row (zeros when `c` is 0).
fn scaled_column_sums(b: &[f32], n: usize, c: f32) -> Vec<f32> {
    let mut sums = vec![0.0f32; n];
    if c != 0.0 {
        for row in b.chunks_exact(n.max(1)) {
            for (s, &v) in sums.iter_mut().zip(row) {
                *s += v;
            }
        }
        sums.iter_mut().for_each(|s| *s *= c);
    }
    sums
}

/// Row `r` of `out` is `base + Σ value · b[index]` over row `r`'s entries.
fn combine_rows(e: &Entries, base: &[f32], b: &[f32], n: usize, out: &mut [f32]) {
    for idx in &e.index {
        // Checked once here, so the kernels can index `b` without bounds checks.
        assert!((*idx as usize + 1) * n <= b.len(), "an index inside b");
    }
    assert!(out.len() == e.len() * n && base.len() == n);
    if simd_available() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has AVX2 and FMA; every index was checked against `b` above.
        unsafe {
            return combine_rows_avx2(e, base, b, n, out);
        }
    }
    combine_rows_with::<false>(e, base, b, n, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn combine_rows_avx2(e: &Entries, base: &[f32], b: &[f32], n: usize, out: &mut [f32]) {
    combine_rows_with::<true>(e, base, b, n, out)
}

/// The output in column blocks of [`WIDE`], then 32, 16 and 8, each block for every row before
/// the next: a block's sum stays in registers over all of a row's entries, and the block's
/// columns of `b` (784 × 64 floats for LeNet's first layer, 200 KB) stay in cache over all the
/// rows — the whole of `b` (940 KB) would not. The last `n mod 8` columns go through a copy
/// of them padded to 8: one at a time, each would be one long chain of dependent additions.
#[inline(always)]
fn combine_rows_with<const FMA: bool>(
    e: &Entries,
    base: &[f32],
    b: &[f32],
    n: usize,
    out: &mut [f32],
) {
    let mut c = 0;
    c = columns::<WIDE, FMA>(e, base, b, n, c, out);
    c = columns::<32, FMA>(e, base, b, n, c, out);
    c = columns::<16, FMA>(e, base, b, n, c, out);
    c = columns::<8, FMA>(e, base, b, n, c, out);
    let tail = n - c;
    if tail == 0 || e.len() == 0 {
        return;
    }
    let k = b.len() / n;
    let mut padded = vec![0.0f32; k * 8];
    for (p, row) in padded.chunks_exact_mut(8).zip(b.chunks_exact(n)) {
        p[..tail].copy_from_slice(&row[c..]);
    }
    let mut base8 = [0.0f32; 8];
    base8[..tail].copy_from_slice(&base[c..]);
    let mut out8 = vec![0.0f32; e.len() * 8];
    columns::<8, FMA>(e, &base8, &padded, 8, 0, &mut out8);
    for (o, p) in out.chunks_exact_mut(n).zip(out8.chunks_exact(8)) {
        o[c..].copy_from_slice(&p[..tail]);
    }
}

/// Columns from `c` on, in blocks of `W` while a whole block fits: `out[r][j] = base[j] +
/// Σ v · b[i][j]` over row `r`'s entries `(i, v)`. Returns the first column not written.
#[inline(always)]
fn columns<const W: usize, const FMA: bool>(
    e: &Entries,
    base: &[f32],
    b: &[f32],
    n: usize,
    mut c: usize,
    out: &mut [f32],
) -> usize {
    while c + W <= n {
        for r in 0..e.len() {
            let (s, t) = (e.start[r], e.start[r + 1]);
            let mut acc: [f32; W] = base[c..c + W].try_into().expect("W columns");
            for (&i, &v) in e.index[s..t].iter().zip(&e.value[s..t]) {
                // SAFETY: `combine_rows` checked (i + 1) · n ≤ b.len(), and c + W ≤ n.
                let row = unsafe { &*(b.as_ptr().add(i as usize * n + c) as *const [f32; W]) };
                for j in 0..W {
                    acc[j] = if FMA {
                        v.mul_add(row[j], acc[j])
                    } else {
                        v * row[j] + acc[j]
                    };
                }
            }
            out[r * n + c..r * n + c + W].copy_from_slice(&acc);
        }
        c += W;
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A matrix with about `share` of its entries equal to `bg`, the rest in [-1, 1).
    fn matrix(len: usize, share: f64, bg: f32, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        (0..len)
            .map(|_| {
                let keep = next() >= share;
                let v = next() as f32 * 2.0 - 1.0;
                if keep { v } else { bg }
            })
            .collect()
    }

    /// `got` against an f64 reference `want`, within float rounding of sums whose terms add up
    /// to `scale` in magnitude (the background's terms included, since they are summed too).
    fn close(got: &[f32], want: &[(f64, f64)], what: &str) {
        assert_eq!(got.len(), want.len());
        for (i, (&g, &(w, scale))) in got.iter().zip(want).enumerate() {
            assert!(
                (g as f64 - w).abs() <= 1e-5 * (1.0 + scale),
                "{what}[{i}]: {g} vs {w}"
            );
        }
    }

    /// Both products against the schoolbook ones, for widths that use every column block (64,
    /// 32, 16, 8, single columns), a row and a column all background, a matrix with no
    /// background, one that is all background, a zero and a nonzero background — and a
    /// background given wrong, which is slower but still exact.
    #[test]
    fn products_skipping_the_background_equal_the_dense_ones() {
        for (rows, k, n, share) in [
            (7, 13, 300, 0.8),
            (60, 784, 100, 0.81),
            (1, 5, 3, 0.5),
            (9, 4, 121, 0.0),
            (3, 6, 64, 1.0),
        ] {
            for (bg, given) in [(0.0f32, 0.0f32), (-0.4242, -0.4242), (-0.4242, 0.25)] {
                let mut a = matrix(rows * k, share, bg, 1);
                if rows > 2 && k > 2 {
                    a[k..2 * k].fill(bg); // row 1
                    for r in 0..rows {
                        a[r * k + 2] = bg; // column 2
                    }
                }
                let what = format!("{rows}×{k}×{n}, {share} of {bg} given as {given}");
                let b = matrix(k * n, 0.0, 0.0, 2);
                // a b and aᵀ g through one reference: out[p][j] = Σ_q lhs(p, q) · rhs(q, j).
                let reference =
                    |p_len: usize, q_len: usize, lhs: &dyn Fn(usize, usize) -> f32, rhs: &[f32]| {
                        let mut want = vec![(0.0, 0.0); p_len * n];
                        for p in 0..p_len {
                            for q in 0..q_len {
                                let x = lhs(p, q) as f64;
                                for j in 0..n {
                                    let y = rhs[q * n + j] as f64;
                                    want[p * n + j].0 += x * y;
                                    want[p * n + j].1 += (x.abs() + given.abs() as f64) * y.abs();
                                }
                            }
                        }
                        want
                    };
                let want = reference(rows, k, &|r, i| a[r * k + i], &b);
                let mut got = vec![f32::NAN; rows * n];
                sparse_times_dense(&a, rows, k, given, &b, n, &mut got);
                close(&got, &want, &format!("a b, {what}"));

                let g = matrix(rows * n, 0.0, 0.0, 3);
                let want = reference(k, rows, &|i, r| a[r * k + i], &g);
                let mut got = vec![f32::NAN; k * n];
                sparse_t_times_dense(&a, rows, k, given, &g, n, &mut got);
                close(&got, &want, &format!("aᵀ b, {what}"));
            }
        }
    }

    /// The majority value and the share of the rest; no majority, no background worth the
    /// name; NaN never becomes the background.
    #[test]
    fn background_is_the_value_most_entries_hold() {
        let a = matrix(60 * 784, 0.81, -0.4242, 5);
        let (c, other) = background(&a);
        assert_eq!(c, -0.4242);
        assert!((other - 0.19).abs() < 0.05, "{other}");
        assert_eq!(background(&[0.0, 1.0, -0.0, 2.0]), (0.0, 0.5));
        assert!(background(&matrix(1000, 0.0, 0.0, 6)).1 > 0.99);
        assert_eq!(background(&[]), (0.0, 1.0));
        assert_eq!(background(&[f32::NAN; 3]), (0.0, 1.0));
    }
}
