//! Hand-written AVX2/FMA version of the batched linear kernel. LLVM's auto-vectorised tile kept its
//! accumulators on the stack (a store-to-load chain per live weight); here they are registers.
//!
//! Every function requires AVX2 and FMA (the caller checks the CPU) and a matrix that passed
//! [`Csr::check`](crate::Csr::check) with `x` of `cols × nb` and `y` of `rows × nb` (asserted).

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

use crate::csr::CsrRef;

/// Feature-major `y[r][·] = act(bias[r] + Σ w[r][c] · x[c][·])`, 64 examples per register tile
/// (eight independent accumulators, so the FMAs pipeline instead of waiting on each other); the
/// last tile of a batch takes as many registers as it needs, its last one through masked loads.
#[target_feature(enable = "avx2,fma")]
pub fn linear_batch(m: CsrRef<'_>, bias: &[f32], relu: bool, x: &[f32], nb: usize, y: &mut [f32]) {
    assert!(x.len() == m.cols * nb && y.len() == m.rows * nb && bias.len() == m.rows);
    for (r, &b) in bias.iter().enumerate() {
        let (cols, vals) = m.row(r);
        let out = RowOut { bias: b, relu, r };
        let mut t0 = 0;
        while t0 < nb {
            let t = Tile::new(t0, nb);
            match t.vectors {
                1 => row_tile::<1>(cols, vals, &out, x, nb, &t, y),
                2 => row_tile::<2>(cols, vals, &out, x, nb, &t, y),
                3 => row_tile::<3>(cols, vals, &out, x, nb, &t, y),
                4 => row_tile::<4>(cols, vals, &out, x, nb, &t, y),
                5 => row_tile::<5>(cols, vals, &out, x, nb, &t, y),
                6 => row_tile::<6>(cols, vals, &out, x, nb, &t, y),
                7 => row_tile::<7>(cols, vals, &out, x, nb, &t, y),
                _ => row_tile::<8>(cols, vals, &out, x, nb, &t, y),
            }
            t0 += t.len;
        }
    }
}

/// Up to 64 examples from `start`: `vectors` registers of 8, the last one `tail`-masked.
pub struct Tile {
    pub start: usize,
    pub len: usize,
    pub vectors: usize,
    /// Lanes of the last register that are examples (all ones when it is full).
    pub tail: __m256i,
}

impl Tile {
    #[target_feature(enable = "avx2,fma")]
    pub fn new(start: usize, nb: usize) -> Self {
        let len = (nb - start).min(64);
        let vectors = len.div_ceil(8);
        let used = (len - 8 * (vectors - 1)) as i32;
        let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        Tile {
            start,
            len,
            vectors,
            tail: _mm256_cmpgt_epi32(_mm256_set1_epi32(used), lanes),
        }
    }

    /// Register `k` of the tile read from `p` (the tile's first example of a feature).
    ///
    /// # Safety
    /// `p` points at `len` readable floats.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub unsafe fn load(&self, p: *const f32, k: usize) -> __m256 {
        unsafe {
            if k + 1 == self.vectors {
                _mm256_maskload_ps(p.add(8 * k), self.tail)
            } else {
                _mm256_loadu_ps(p.add(8 * k))
            }
        }
    }

    /// # Safety
    /// `p` points at `len` writable floats.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub unsafe fn store(&self, p: *mut f32, k: usize, v: __m256) {
        unsafe {
            if k + 1 == self.vectors {
                _mm256_maskstore_ps(p.add(8 * k), self.tail, v)
            } else {
                _mm256_storeu_ps(p.add(8 * k), v)
            }
        }
    }
}

/// Where a row's outputs go: its bias, activation and index.
struct RowOut {
    bias: f32,
    relu: bool,
    r: usize,
}

/// One row's outputs for one tile, `V` accumulators.
#[target_feature(enable = "avx2,fma")]
fn row_tile<const V: usize>(
    cols: &[u32],
    vals: &[f32],
    o: &RowOut,
    x: &[f32],
    nb: usize,
    t: &Tile,
    y: &mut [f32],
) {
    let mut a = [_mm256_set1_ps(o.bias); V];
    for (&c, &v) in cols.iter().zip(vals) {
        let w = _mm256_set1_ps(v);
        // SAFETY: c < cols (the matrix was checked) and the tile lies within the batch, so
        // the tile's `len` floats of feature c are inside x (asserted cols × nb).
        let p = unsafe { x.as_ptr().add(c as usize * nb + t.start) };
        for (k, acc) in a.iter_mut().enumerate() {
            *acc = _mm256_fmadd_ps(w, unsafe { t.load(p, k) }, *acc);
        }
    }
    let zero = _mm256_setzero_ps();
    // SAFETY: r < rows and the tile lies within the batch; y is rows × nb (asserted).
    let out = unsafe { y.as_mut_ptr().add(o.r * nb + t.start) };
    for (k, acc) in a.iter().enumerate() {
        let v = if o.relu {
            _mm256_max_ps(*acc, zero)
        } else {
            *acc
        };
        unsafe { t.store(out, k, v) };
    }
}

/// `dst[k][e] = src[e][k]` for `nb` rows of `len`: example-major to feature-major, in 8×8
/// register blocks.
#[target_feature(enable = "avx2,fma")]
pub fn transpose(src: &[f32], nb: usize, len: usize, dst: &mut [f32]) {
    assert!(src.len() == nb * len && dst.len() == nb * len);
    let (nb8, len8) = (nb / 8 * 8, len / 8 * 8);
    for e0 in (0..nb8).step_by(8) {
        for k0 in (0..len8).step_by(8) {
            // SAFETY: e0 + 7 < nb and k0 + 7 < len, so every row read and column write is in
            // bounds of the nb × len arrays asserted above.
            unsafe {
                let r: [__m256; 8] =
                    std::array::from_fn(|i| _mm256_loadu_ps(src.as_ptr().add((e0 + i) * len + k0)));
                let t0 = _mm256_unpacklo_ps(r[0], r[1]);
                let t1 = _mm256_unpackhi_ps(r[0], r[1]);
                let t2 = _mm256_unpacklo_ps(r[2], r[3]);
                let t3 = _mm256_unpackhi_ps(r[2], r[3]);
                let t4 = _mm256_unpacklo_ps(r[4], r[5]);
                let t5 = _mm256_unpackhi_ps(r[4], r[5]);
                let t6 = _mm256_unpacklo_ps(r[6], r[7]);
                let t7 = _mm256_unpackhi_ps(r[6], r[7]);
                let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
                let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
                let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
                let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
                let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
                let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
                let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
                let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
                let cols = [
                    _mm256_permute2f128_ps::<0x20>(u0, u4),
                    _mm256_permute2f128_ps::<0x20>(u1, u5),
                    _mm256_permute2f128_ps::<0x20>(u2, u6),
                    _mm256_permute2f128_ps::<0x20>(u3, u7),
                    _mm256_permute2f128_ps::<0x31>(u0, u4),
                    _mm256_permute2f128_ps::<0x31>(u1, u5),
                    _mm256_permute2f128_ps::<0x31>(u2, u6),
                    _mm256_permute2f128_ps::<0x31>(u3, u7),
                ];
                for (i, c) in cols.iter().enumerate() {
                    _mm256_storeu_ps(dst.as_mut_ptr().add((k0 + i) * nb + e0), *c);
                }
            }
        }
        for k in len8..len {
            for e in e0..e0 + 8 {
                dst[k * nb + e] = src[e * len + k];
            }
        }
    }
    for e in nb8..nb {
        for k in 0..len {
            dst[k * nb + e] = src[e * len + k];
        }
    }
}
