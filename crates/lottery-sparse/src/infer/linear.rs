//! Sparse × dense products for fully connected layers, on feature-major activations
//! (`x[feature][example]`): each live weight then scales one contiguous run of examples, which
//! vectorises without gathers. A batch of one takes `one.rs` instead.

use crate::csr::CsrRef;

/// Examples per register tile: 64 f32 accumulators are eight AVX registers.
const TILE: usize = 64;

/// `y[r][·] = act(bias[r] + Σ w[r][c] · x[c][·])` for `nb` examples.
#[inline(always)]
pub fn forward<const FMA: bool>(
    m: CsrRef<'_>,
    bias: &[f32],
    relu: bool,
    x: &[f32],
    nb: usize,
    y: &mut [f32],
) {
    debug_assert_eq!(x.len(), m.cols * nb);
    debug_assert_eq!(y.len(), m.rows * nb);
    let act = |v: f32| if relu { v.max(0.0) } else { v };
    for (r, yr) in y.chunks_exact_mut(nb).enumerate() {
        let (cols, vals) = m.row(r);
        let mut t0 = 0;
        while t0 + TILE <= nb {
            let mut acc = [bias[r]; TILE];
            for (&c, &v) in cols.iter().zip(vals) {
                let xs: &[f32; TILE] = x[c as usize * nb + t0..][..TILE]
                    .try_into()
                    .expect("tile in bounds");
                for k in 0..TILE {
                    acc[k] = fma::<FMA>(v, xs[k], acc[k]);
                }
            }
            for (o, a) in yr[t0..t0 + TILE].iter_mut().zip(acc) {
                *o = act(a);
            }
            t0 += TILE;
        }
        if t0 < nb {
            let tail = &mut yr[t0..];
            tail.fill(bias[r]);
            for (&c, &v) in cols.iter().zip(vals) {
                let xs = &x[c as usize * nb + t0..(c as usize + 1) * nb];
                for (o, &xv) in tail.iter_mut().zip(xs) {
                    *o = fma::<FMA>(v, xv, *o);
                }
            }
            tail.iter_mut().for_each(|o| *o = act(*o));
        }
    }
}

/// `a·b + c`, fused when the caller runs with FMA enabled. A function rather than a closure: a
/// closure would be compiled without the caller's target features and call libm's `fmaf`.
#[inline(always)]
pub fn fma<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}
