//! A dense linear layer whose input is mostly one value — MNIST's images are 81% background,
//! one value after normalisation, and ReLU's outputs are often mostly zeros — skips it: the
//! forward product and the weight gradient `xᵀ dy` add up only the other inputs' terms, the
//! background's share coming from column sums (`lottery_sparse::background`). A burn operation
//! with its own backward, implemented for burn's CPU backend (`flex`) and for autodiff over it;
//! an input with more than [`MAX_INPUT_DENSITY`] of its entries off the background takes burn's
//! own matrix product, forward and backward.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{AutodiffBackend, Backend, Dispatch, Flex, backend_extension};
use burn::nn::Linear;
use burn::tensor::{Device, Tensor};
use lottery_sparse::background::{background, sparse_t_times_dense, sparse_times_dense};

use super::op::dims;
use crate::cpu::{f32s as host, tensor};

/// Inputs with at most this fraction of their entries off the background skip it. Measured on
/// one core against the `gemm` crate's product (BENCHMARKS.md, "dense layers skip their
/// input's background"): for LeNet's first layer (784 → 300, batch 60) skipping breaks even
/// near 30% for the forward product and 35% for the weight gradient; for its second
/// (300 → 100), near 15–20%. MNIST's images are 19% off their background.
pub const MAX_INPUT_DENSITY: f64 = 0.25;

/// `l` applied to `x`: through the background-skipping product on the CPU backend, burn's
/// layer elsewhere. Equal to `l.forward(x)` within float rounding.
pub fn linear(l: &Linear, x: Tensor<2>) -> Tensor<2> {
    if x.device() != Device::flex() {
        return l.forward(x);
    }
    let y =
        Tensor::<2>::from_dispatch(<Dispatch as SkipBackgroundOps>::matmul_skipping_background(
            x.into_dispatch(),
            l.weight.val().into_dispatch(),
        ));
    match &l.bias {
        Some(b) => y + b.val().unsqueeze_dim(0),
        None => y,
    }
}

#[backend_extension(Flex, Autodiff)]
pub trait SkipBackgroundOps: Backend {
    /// `x w` for `x [batch, in]` and `w [in, out]`: `[batch, out]`.
    fn matmul_skipping_background(x: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `xᵀ dy` for `x [batch, in]` and `dy [batch, out]`: the weight gradient `[in, out]`.
    fn weight_grad_skipping_background(
        x: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

/// Whether a dense linear layer on CPU skips the background of inputs like `x` (row-major
/// examples). What the evaluation path's choice needs to know of a dataset.
pub fn skips_background(x: &[f32]) -> bool {
    background_worth_skipping(x).is_some()
}

/// The background of `x` when at most [`MAX_INPUT_DENSITY`] of it is off that background, by
/// `background`'s sampled estimate: the one rule for layers and for datasets.
fn background_worth_skipping(x: &[f32]) -> Option<f32> {
    let (c, other) = background(x);
    (other <= MAX_INPUT_DENSITY).then_some(c)
}

/// The background of `x` when skipping it pays: `x` is contiguous (a view, such as the
/// transposed activations of a vision transformer, stays with burn's product rather than be
/// copied to be looked at) and its background is worth skipping.
fn skippable(x: &FlexTensor) -> Option<f32> {
    background_worth_skipping(x.as_slice::<f32>()?)
}

impl SkipBackgroundOps for Flex {
    fn matmul_skipping_background(x: FlexTensor, w: FlexTensor) -> FlexTensor {
        let ((nb, k), (_, n)) = (dims(&x), dims(&w));
        let Some(c) = skippable(&x) else {
            return Flex::float_matmul(x, w);
        };
        let mut y = vec![0.0; nb * n];
        sparse_times_dense(&host(&x), nb, k, c, &host(&w), n, &mut y);
        tensor(y, [nb, n])
    }

    fn weight_grad_skipping_background(x: FlexTensor, dy: FlexTensor) -> FlexTensor {
        let ((nb, k), (_, n)) = (dims(&x), dims(&dy));
        let Some(c) = skippable(&x) else {
            return Flex::float_matmul(Flex::float_transpose(x), dy);
        };
        let mut dw = vec![0.0; k * n];
        sparse_t_times_dense(&host(&x), nb, k, c, &host(&dy), n, &mut dw);
        tensor(dw, [k, n])
    }
}

/// The backward step: the weight gradient skipping the input's background, and the input gradient
/// `dy wᵀ` (burn's product) when the input needs one — not for a first layer, whose input is
/// data. It keeps the input and the weight (shared handles, not copies).
#[derive(Debug)]
struct SkipBackgroundBackward;

impl<B: Backend + SkipBackgroundOps> Backward<B, 2> for SkipBackgroundBackward {
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w] = ops.parents;
        let (x, w) = ops.state;
        let dy = grads.consume::<B>(&ops.node);
        if let Some(node) = node_x {
            let dx = B::float_matmul(dy.clone(), B::float_transpose(w));
            grads.register::<B>(node.id, dx);
        }
        if let Some(node) = node_w {
            grads.register::<B>(node.id, B::weight_grad_skipping_background(x, dy));
        }
    }
}

impl<B: Backend + SkipBackgroundOps, C: CheckpointStrategy> SkipBackgroundOps for Autodiff<B, C> {
    fn matmul_skipping_background(x: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self> {
        match SkipBackgroundBackward
            .prepare::<C>([x.node(), w.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (x, w) = (x.primitive().clone(), w.primitive().clone());
                let y = B::matmul_skipping_background(x.clone(), w.clone());
                prep.finish((x, w), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::matmul_skipping_background(
                x.into_primitive(),
                w.into_primitive(),
            )),
        }
    }

    // The weight gradient itself is not differentiated.
    fn weight_grad_skipping_background(
        x: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::weight_grad_skipping_background(
            Self::inner(x),
            Self::inner(dy),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::LinearConfig;
    use burn::tensor::TensorData;

    use crate::rng::Rng;

    /// Output, weight and bias gradients, and the input gradient when the input is tracked,
    /// against burn's own layer: inputs mostly background (the skipping kernels; a zero and a
    /// normalised MNIST background) and not (burn's product), a first layer (data input) and a
    /// hidden one.
    #[test]
    fn skipping_the_inputs_background_matches_burns_layer_and_its_gradients() {
        let device = Device::flex().autodiff();
        let (batch, inputs, outputs) = (37, 29, 83);
        let mut rng = Rng::new(9);
        let cases = [
            (0.85, 0.0, false),
            (0.85, 0.0, true),
            (0.81, -0.4242, false),
            (0.2, -0.4242, false),
            (1.0, 0.0, false),
        ];
        for (share, bg, tracked) in cases {
            let layer = LinearConfig::new(inputs, outputs).init(&device);
            let x: Vec<f32> = (0..batch * inputs)
                .map(|_| {
                    let v = rng.uniform() as f32 * 2.0 - 1.0;
                    if rng.uniform() < share { bg } else { v }
                })
                .collect();
            // Which path the case takes: the skipping kernels for the mostly-background ones.
            let skips = skips_background(&x);
            assert_eq!(skips, share >= 0.81, "{share} of {bg}");
            let r: Vec<f32> = (0..batch * outputs).map(|_| rng.uniform() as f32).collect();
            let run = |skip: bool| {
                let x =
                    Tensor::<2>::from_data(TensorData::new(x.clone(), [batch, inputs]), &device);
                let x = if tracked { x.require_grad() } else { x };
                let y = if skip {
                    linear(&layer, x.clone())
                } else {
                    layer.forward(x.clone())
                };
                let r =
                    Tensor::<2>::from_data(TensorData::new(r.clone(), [batch, outputs]), &device);
                let grads = (y.clone() * r).sum().backward();
                let host = |t: Tensor<2>| t.into_data().try_into_vec::<f32>().unwrap();
                let dx = x.grad(&grads).map(host);
                let dw = host(layer.weight.val().grad(&grads).unwrap());
                let db = layer.bias.as_ref().unwrap().val().grad(&grads).unwrap();
                (
                    host(y),
                    dx,
                    dw,
                    db.into_data().try_into_vec::<f32>().unwrap(),
                )
            };
            let (want, got) = (run(false), run(true));
            let close = |a: &[f32], b: &[f32], what: &str| {
                assert_eq!(a.len(), b.len(), "{what}");
                for (i, (p, q)) in a.iter().zip(b).enumerate() {
                    assert!(
                        (p - q).abs() <= 1e-5 * (1.0 + q.abs()),
                        "{what}[{i}] with {share} of {bg}: {p} vs {q}"
                    );
                }
            };
            close(&got.0, &want.0, "output");
            assert_eq!(
                got.1.is_some(),
                tracked,
                "an input gradient only when tracked"
            );
            if let (Some(g), Some(w)) = (&got.1, &want.1) {
                close(g, w, "input gradient");
            }
            close(&got.2, &want.2, "weight gradient");
            close(&got.3, &want.3, "bias gradient");
        }
    }
}
