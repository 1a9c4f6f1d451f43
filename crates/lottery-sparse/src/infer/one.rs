//! The batch-1 kernel: one example, latency first. (Packing column and value into one u64, to
//! save a load per weight, measured no faster here; neither did a hardware gather.)

use crate::csr::Csr;

/// `y[r] = act(bias[r] + Σ value · x[column])` over row r's entries, in four independent
/// chains. `m` is an engine's remapped layer: its columns index `x` directly.
#[inline(always)]
pub fn linear<const FMA: bool>(m: &Csr, bias: &[f32], relu: bool, x: &[f32], y: &mut [f32]) {
    assert!(x.len() >= m.cols && y.len() == m.rows && bias.len() == m.rows);
    let fma = super::linear::fma::<FMA>;
    for (r, out) in y.iter_mut().enumerate() {
        let (cols, vals) = m.row(r);
        let n = cols.len();
        let mut acc = [0.0f32; 4];
        let mut i = 0;
        // SAFETY: i + 3 < n = cols.len() = vals.len(), and every column is below m.cols ≤
        // x.len() (the engine remapped them from a model that passed `CompactModel::check`).
        unsafe {
            while i + 4 <= n {
                for (k, a) in acc.iter_mut().enumerate() {
                    let c = *cols.get_unchecked(i + k) as usize;
                    *a = fma(*vals.get_unchecked(i + k), *x.get_unchecked(c), *a);
                }
                i += 4;
            }
        }
        let mut sum = (acc[0] + acc[1]) + (acc[2] + acc[3]);
        for k in i..n {
            sum = fma(vals[k], x[cols[k] as usize], sum);
        }
        let v = sum + bias[r];
        *out = if relu { v.max(0.0) } else { v };
    }
}
