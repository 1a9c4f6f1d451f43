//! The batch-1 path: one example, latency first. Each linear layer's columns are remapped
//! through its gather list when the engine is built, so the first layer reads the caller's input
//! in place and no gathered copy is ever made. (Packing column and value into one u64, to save a
//! load per weight, measured no faster here.)

use crate::model::{CompactModel, Layer};

/// A linear layer prepared for one example at a time.
pub struct Packed {
    row_start: Vec<u32>,
    /// Input indices (after the gather) and values.
    cols: Vec<u32>,
    vals: Vec<f32>,
    /// Length of the input the layer reads; every index is below it.
    pub reads: usize,
}

impl Packed {
    /// The linear layers of `m` after its convolutions; `None` for a conv layer.
    pub fn prepare(m: &CompactModel) -> Vec<Option<Packed>> {
        let mut available = m.input_len();
        m.layers
            .iter()
            .map(|layer| {
                let out = match layer {
                    Layer::Conv(_) => None,
                    Layer::Linear(l) => {
                        let w = &l.weights;
                        let cols = w
                            .col
                            .iter()
                            .map(|&c| l.gather.as_ref().map_or(c, |g| g[c as usize]))
                            .collect();
                        Some(Packed {
                            row_start: w.row_start.clone(),
                            cols,
                            vals: w.val.clone(),
                            reads: available,
                        })
                    }
                };
                available = layer.output_len();
                out
            })
            .collect()
    }
}

/// `y[r] = act(bias[r] + Σ value · x[index])` over row r's entries, in four independent chains.
#[inline(always)]
pub fn linear<const FMA: bool>(p: &Packed, bias: &[f32], relu: bool, x: &[f32], y: &mut [f32]) {
    assert!(x.len() >= p.reads && y.len() + 1 == p.row_start.len() && bias.len() == y.len());
    let fma = super::linear::fma::<FMA>;
    for (r, out) in y.iter_mut().enumerate() {
        let (s, e) = (p.row_start[r] as usize, p.row_start[r + 1] as usize);
        let (cols, vals) = (&p.cols[s..e], &p.vals[s..e]);
        let n = cols.len();
        let mut acc = [0.0f32; 4];
        let mut i = 0;
        // SAFETY: i + 3 < n = cols.len() = vals.len(), and `prepare` built every index below
        // `reads` ≤ x.len() (asserted above) from a model that passed `CompactModel::check`.
        unsafe {
            while i + 4 <= n {
                for k in 0..4 {
                    let c = *cols.get_unchecked(i + k) as usize;
                    acc[k] = fma(*vals.get_unchecked(i + k), *x.get_unchecked(c), acc[k]);
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
