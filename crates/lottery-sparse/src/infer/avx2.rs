//! Hand-written AVX2/FMA version of the batched linear kernel. LLVM's auto-vectorised tile kept its
//! accumulators on the stack (a store-to-load chain per live weight); here they are registers.
//!
//! Every function requires AVX2 and FMA (the caller checks the CPU) and a [`Csr`] that passed
//! [`Csr::check`] with `x` of `cols × nb` and `y` of `rows × nb` (asserted).

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

use crate::csr::Csr;

/// Feature-major `y[r][·] = act(bias[r] + Σ w[r][c] · x[c][·])`: 64 examples per register
/// tile (eight accumulators), then 8, then one at a time.
#[target_feature(enable = "avx2,fma")]
pub fn linear_batch(m: &Csr, bias: &[f32], relu: bool, x: &[f32], nb: usize, y: &mut [f32]) {
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
