//! Hand-written AVX2/FMA version of the batched linear kernel. LLVM's auto-vectorised tile kept its
//! accumulators on the stack (a store-to-load chain per live weight); here they are registers.
//!
//! Every function requires AVX2 and FMA (the caller checks the CPU) and a [`Csr`] that passed
//! [`Csr::check`](crate::Csr::check) with `x` of `cols × nb` and `y` of `rows × nb` (asserted).

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

use crate::csr::CsrRef;

/// Feature-major `y[r][·] = act(bias[r] + Σ w[r][c] · x[c][·])`: 64 examples per register
/// tile (eight accumulators), then 8, then one at a time.
#[target_feature(enable = "avx2,fma")]
pub fn linear_batch(m: CsrRef<'_>, bias: &[f32], relu: bool, x: &[f32], nb: usize, y: &mut [f32]) {
    assert!(x.len() == m.cols * nb && y.len() == m.rows * nb && bias.len() == m.rows);
    let zero = _mm256_setzero_ps();
    let act = |v: __m256| if relu { _mm256_max_ps(v, zero) } else { v };
    for r in 0..m.rows {
        let (cols, vals) = m.row(r);
        let yr = &mut y[r * nb..(r + 1) * nb];
        let b = _mm256_set1_ps(bias[r]);
        let mut t0 = 0;
        while t0 + 64 <= nb {
            let mut a = [b; 8];
            for (&c, &v) in cols.iter().zip(vals) {
                let w = _mm256_set1_ps(v);
                let at = c as usize * nb + t0;
                // SAFETY: c < cols and t0 + 64 ≤ nb, so at + 64 ≤ cols·nb = x.len().
                let p = unsafe { x.as_ptr().add(at) };
                for (k, acc) in a.iter_mut().enumerate() {
                    *acc = _mm256_fmadd_ps(w, unsafe { _mm256_loadu_ps(p.add(8 * k)) }, *acc);
                }
            }
            for (k, acc) in a.iter().enumerate() {
                // SAFETY: t0 + 64 ≤ nb = yr.len().
                unsafe { _mm256_storeu_ps(yr.as_mut_ptr().add(t0 + 8 * k), act(*acc)) };
            }
            t0 += 64;
        }
        while t0 + 8 <= nb {
            let mut acc = b;
            for (&c, &v) in cols.iter().zip(vals) {
                // SAFETY: as above, with t0 + 8 ≤ nb.
                let xv = unsafe { _mm256_loadu_ps(x.as_ptr().add(c as usize * nb + t0)) };
                acc = _mm256_fmadd_ps(_mm256_set1_ps(v), xv, acc);
            }
            unsafe { _mm256_storeu_ps(yr.as_mut_ptr().add(t0), act(acc)) };
            t0 += 8;
        }
        for (t, out) in yr.iter_mut().enumerate().skip(t0) {
            let mut s = bias[r];
            for (&c, &v) in cols.iter().zip(vals) {
                s = v.mul_add(x[c as usize * nb + t], s);
            }
            *out = if relu { s.max(0.0) } else { s };
        }
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
