//! Training pruned linear layers as sparse products: a linear weight that keeps few of its
//! entries trains through its kept values alone — a vector with one entry per kept weight, the
//! tensor the optimizer updates — and a fixed pattern of where they sit. The forward product,
//! the input gradient and the gradient of the kept values cost in proportion to the kept
//! weights; a dense weight gradient is never formed, and pruned weights cannot move because
//! they are not parameters at all. The dense weight in the network is left as it was until
//! [`SparseLayers::write`] puts the trained values back.
//!
//! Only on burn's CPU backend (`flex`): the products are our host kernels
//! (`lottery_sparse::train`), plugged into burn's autodiff as an operation with its own backward.

mod background;
mod op;

pub(crate) use background::skips_background;

use std::collections::HashMap;
use std::sync::Arc;

use burn::backend::Dispatch;
use burn::module::ParamId;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};
use lottery_sparse::train::Pattern;

use crate::masks::MaskSet;
use crate::tensors::StateDict;
use op::SparseLinearOps;

/// A linear weight keeping at most this fraction of its entries trains as a sparse product.
/// Measured with `lottery bench train --sparse-max-density 1` on LeNet-300-100 (BENCHMARKS.md,
/// "Sparse training"): the sparse step breaks even with the dense one at 40% kept and is 12%
/// faster at 35%, on a 2-core AVX2 machine.
pub const MAX_DENSITY: f64 = 0.35;

/// One linear layer trained through its kept values.
struct SparseLinear {
    /// The weight's PyTorch name.
    name: String,
    pattern: Arc<Pattern>,
    /// One value per kept weight, in the pattern's order; tracked for gradients.
    values: Tensor<1>,
}

/// The linear layers of a network that train as sparse products, by their weight's parameter
/// id; empty means every layer is dense.
#[derive(Default)]
pub struct SparseLayers {
    layers: HashMap<ParamId, SparseLinear>,
}

impl SparseLayers {
    /// The linear weights (2-D tensors) of `dict` that keep at most `max_density` of their
    /// entries under `mask`, with their values taken from `dict`; `ids` maps names to the
    /// network's parameter ids. Empty unless `device` is the CPU backend.
    pub fn choose(
        dict: &StateDict,
        ids: &std::collections::BTreeMap<String, ParamId>,
        mask: &MaskSet,
        max_density: f64,
        device: &Device,
    ) -> Self {
        let mut layers = HashMap::new();
        if *device != Device::flex() {
            return SparseLayers { layers };
        }
        for (name, m) in &mask.masks {
            let (Some(w), Some(&id), &[rows, cols]) = (dict.get(name), ids.get(name), &m.shape[..])
            else {
                continue;
            };
            let kept = m.data.iter().filter(|&&k| k != 0.0).count();
            // A layer pruned away entirely stays dense masked: nothing to gain, and no
            // zero-length tensors through autodiff and the optimizer.
            if kept == 0 || kept as f64 > max_density * m.data.len() as f64 {
                continue;
            }
            let pattern = Pattern::from_mask(rows, cols, &m.data)
                .expect("a mask has its tensor's shape and fits 32-bit indices");
            let values: Vec<f32> = pattern
                .positions()
                .map(|(r, c)| w.data[r * cols + c])
                .collect();
            let values = Tensor::<1>::from_data(TensorData::new(values, [kept]), device);
            layers.insert(
                id,
                SparseLinear {
                    name: name.clone(),
                    pattern: Arc::new(pattern),
                    values: values.require_grad(),
                },
            );
        }
        SparseLayers { layers }
    }

    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// PyTorch names of the weights that train sparse, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.layers.values().map(|l| l.name.as_str()).collect();
        v.sort();
        v
    }

    /// `l` applied to `x`, through ReLU when `relu`: one sparse operation (product, bias,
    /// ReLU) when `l` is one of these layers, a dense product that skips the input's zeros
    /// otherwise ([`background::linear`]).
    pub fn linear(&self, l: &Linear, x: Tensor<2>, relu: bool) -> Tensor<2> {
        let Some(s) = self.layers.get(&l.weight.id) else {
            let y = background::linear(l, x);
            return if relu {
                burn::tensor::activation::relu(y)
            } else {
                y
            };
        };
        Tensor::<2>::from_dispatch(<Dispatch as SparseLinearOps>::sparse_linear(
            x.into_dispatch(),
            s.values.clone().into_dispatch(),
            match &l.bias {
                Some(b) => b.val().into_dispatch(),
                None => Tensor::<1>::zeros([s.pattern.rows()], &s.values.device()).into_dispatch(),
            },
            s.pattern.clone(),
            relu,
        ))
    }

    /// Each layer's values after `update(weight id, values, their gradient)`, for the layers
    /// whose gradient `grads` holds (taken out of it).
    pub fn step(
        &mut self,
        grads: &mut burn::tensor::Gradients,
        mut update: impl FnMut(ParamId, Tensor<1>, Tensor<1>) -> Tensor<1>,
    ) {
        for (&id, l) in self.layers.iter_mut() {
            if let Some(g) = l.values.grad_remove(grads) {
                // Taken rather than cloned: with the only handle, the update reuses the buffer.
                let empty = Tensor::empty([0], &l.values.device());
                let values = std::mem::replace(&mut l.values, empty);
                l.values = update(id, values, g);
            }
        }
    }

    /// Writes the trained values into their weights in `dict` (PyTorch layout); pruned entries
    /// keep what they held.
    pub fn write(&self, dict: &mut StateDict) {
        for l in self.layers.values() {
            let w = dict.get_mut(&l.name).expect("chosen from this dictionary");
            let values = l.values.clone().into_data();
            let values = values.as_slice::<f32>().expect("f32 values");
            let cols = l.pattern.cols();
            for ((r, c), &v) in l.pattern.positions().zip(values) {
                w.data[r * cols + c] = v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::LinearConfig;

    use crate::rng::Rng;

    fn uniform(n: usize, rng: &mut Rng) -> Vec<f32> {
        (0..n).map(|_| rng.uniform() as f32 * 2.0 - 1.0).collect()
    }

    /// The sparse layer's output, input gradient, bias gradient and kept-value gradient against
    /// burn's dense linear layer with the masked weight, through autodiff: with and without a
    /// bias, with and without ReLU after it.
    #[test]
    fn sparse_layer_matches_the_dense_masked_layer_and_its_gradients() {
        for (bias, relu) in [(true, false), (true, true), (false, true), (false, false)] {
            check_against_dense(bias, relu);
        }
    }

    fn check_against_dense(bias: bool, relu: bool) {
        let device = Device::flex().autodiff();
        let (batch, inputs, outputs) = (67, 13, 5);
        let mut rng = Rng::new(4);
        let mask: Vec<f32> = (0..inputs * outputs)
            .map(|_| (rng.uniform() < 0.3) as u8 as f32)
            .collect();
        let w: Vec<f32> = uniform(inputs * outputs, &mut rng)
            .iter()
            .zip(&mask)
            .map(|(w, m)| w * m)
            .collect();
        let mut layer = LinearConfig::new(inputs, outputs)
            .with_bias(bias)
            .init(&device);
        // burn's weight is [in, out]; the state dict's (PyTorch's) is [out, in].
        layer.weight = layer.weight.map(|_| {
            Tensor::<2>::from_data(TensorData::new(w.clone(), [outputs, inputs]), &device)
                .transpose()
                .detach()
                .require_grad()
        });
        let name = "fc.weight".to_string();
        let dict: StateDict = [(
            name.clone(),
            crate::tensors::HostTensor {
                shape: vec![outputs, inputs],
                data: w.clone(),
            },
        )]
        .into();
        let masks = MaskSet {
            masks: [(
                name.clone(),
                crate::tensors::HostTensor {
                    shape: vec![outputs, inputs],
                    data: mask.clone(),
                },
            )]
            .into(),
        };
        let ids = [(name.clone(), layer.weight.id)].into();
        let sparse = SparseLayers::choose(&dict, &ids, &masks, 0.5, &device);
        assert_eq!(sparse.names(), ["fc.weight"]);

        let x = uniform(batch * inputs, &mut rng);
        let r = Tensor::<2>::from_data(
            TensorData::new(uniform(batch * outputs, &mut rng), [batch, outputs]),
            &device,
        );
        let run = |s: &SparseLayers| {
            let x = Tensor::<2>::from_data(TensorData::new(x.clone(), [batch, inputs]), &device)
                .require_grad();
            let y = s.linear(&layer, x.clone(), relu);
            let grads = (y.clone() * r.clone()).sum().backward();
            let host = |t: Tensor<2>| t.into_data().try_into_vec::<f32>().unwrap();
            (
                host(y),
                host(x.grad(&grads).unwrap()),
                (layer.bias.as_ref()).map(|b| b.val().grad(&grads).unwrap().into_data()),
                layer.weight.val().grad(&grads),
                grads,
            )
        };
        let (y_d, dx_d, db_d, dw_d, _) = run(&SparseLayers::default());
        let (y_s, dx_s, db_s, dw_s, mut grads) = run(&sparse);
        assert!(
            dw_s.is_none(),
            "the dense weight is not part of the sparse graph"
        );
        let close = |a: &[f32], b: &[f32], what: &str| {
            assert_eq!(a.len(), b.len());
            for (i, (p, q)) in a.iter().zip(b).enumerate() {
                assert!(
                    (p - q).abs() <= 1e-5 * (1.0 + q.abs()),
                    "{what}[{i}]: {p} vs {q}"
                );
            }
        };
        close(&y_s, &y_d, "output");
        if relu {
            assert!(y_d.contains(&0.0), "some outputs cut off by ReLU");
        }
        close(&dx_s, &dx_d, "input gradient");
        if let (Some(s), Some(d)) = (db_s, db_d) {
            let f32s = |t: TensorData| t.try_into_vec::<f32>().unwrap();
            close(&f32s(s), &f32s(d), "bias gradient");
        }
        // burn's dense weight gradient [in, out], read at the kept positions.
        let dw_d = dw_d.unwrap().into_data().try_into_vec::<f32>().unwrap();
        let pattern = &sparse.layers[&layer.weight.id].pattern;
        let want: Vec<f32> = pattern
            .positions()
            .map(|(o, i)| dw_d[i * outputs + o])
            .collect();
        let mut got = None;
        let mut sparse = sparse;
        sparse.step(&mut grads, |_, v, g| {
            got = Some(g.into_data().try_into_vec::<f32>().unwrap());
            v
        });
        close(
            &got.expect("a gradient for the kept values"),
            &want,
            "kept-weight gradient",
        );
    }
}
