//! The sparse linear product as a burn operation with its own backward: a backend extension
//! implemented for burn's CPU backend (`flex`, on the tensors' host memory, with
//! `lottery_sparse::train`'s kernels) and for autodiff over any backend that implements it. Other
//! devices never reach it: [`super::SparseLayers`] is only built on `flex`.

use std::sync::Arc;

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{AutodiffBackend, Backend, Flex, TensorMetadata, backend_extension};
use lottery_sparse::train::{Pattern, transpose};

use crate::cpu::{f32s as host, tensor};

/// The sparse linear product and its two gradients. Only `sparse_linear` is differentiated;
/// the rest are the steps its forward and backward are made of.
#[backend_extension(Flex, Autodiff)]
pub trait SparseLinearOps: Backend {
    /// `x [batch, in]` times the pattern's `[out, in]` matrix transposed, the matrix given by
    /// one value per kept weight: `[batch, out]`, no bias.
    fn sparse_linear(
        x: FloatTensor<Self>,
        values: FloatTensor<Self>,
        pattern: Arc<Pattern>,
    ) -> FloatTensor<Self> {
        Self::sparse_linear_fm(Self::feature_major(x), values, pattern)
    }

    /// `[batch, len]` → `[len, batch]`, contiguous: the layout the products read, kept for the
    /// backward step so the input is transposed once.
    fn feature_major(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// [`SparseLinearOps::sparse_linear`] on a feature-major input.
    fn sparse_linear_fm(
        xt: FloatTensor<Self>,
        values: FloatTensor<Self>,
        pattern: Arc<Pattern>,
    ) -> FloatTensor<Self>;

    /// The input gradient `dy [batch, out]` → `[batch, in]`.
    fn sparse_linear_input_grad(
        dy: FloatTensor<Self>,
        values: FloatTensor<Self>,
        pattern: Arc<Pattern>,
    ) -> FloatTensor<Self>;

    /// The gradient at the kept weights (one entry per value), from `dy [batch, out]` and the
    /// feature-major input.
    fn sparse_linear_values_grad(
        dy: FloatTensor<Self>,
        xt: FloatTensor<Self>,
        pattern: Arc<Pattern>,
    ) -> FloatTensor<Self>;
}

/// A `[batch, len]` example-major tensor as feature-major `len × batch`.
fn feature_major(t: &FlexTensor) -> (Vec<f32>, usize, usize) {
    let shape = t.shape();
    let (nb, len) = (shape[0], shape[1]);
    let mut out = vec![0.0; nb * len];
    transpose(&host(t), nb, len, &mut out);
    (out, nb, len)
}

/// Feature-major `len × nb` back to a `[nb, len]` tensor.
fn example_major(t: &[f32], nb: usize, len: usize) -> FlexTensor {
    let mut out = vec![0.0; nb * len];
    transpose(t, len, nb, &mut out);
    tensor(out, [nb, len])
}

impl SparseLinearOps for Flex {
    fn feature_major(x: FlexTensor) -> FlexTensor {
        let (xt, nb, len) = feature_major(&x);
        tensor(xt, [len, nb])
    }

    fn sparse_linear_fm(xt: FlexTensor, values: FlexTensor, pattern: Arc<Pattern>) -> FlexTensor {
        let nb = xt.shape()[1];
        let mut yt = vec![0.0; pattern.rows() * nb];
        pattern.forward(&host(&values), &host(&xt), nb, &mut yt);
        example_major(&yt, nb, pattern.rows())
    }

    fn sparse_linear_input_grad(
        dy: FlexTensor,
        values: FlexTensor,
        pattern: Arc<Pattern>,
    ) -> FlexTensor {
        let (dyt, nb, _) = feature_major(&dy);
        let mut dxt = vec![0.0; pattern.cols() * nb];
        pattern.input_grad(&host(&values), &dyt, nb, &mut dxt);
        example_major(&dxt, nb, pattern.cols())
    }

    fn sparse_linear_values_grad(
        dy: FlexTensor,
        xt: FlexTensor,
        pattern: Arc<Pattern>,
    ) -> FlexTensor {
        let (dyt, nb, _) = feature_major(&dy);
        let mut dval = vec![0.0; pattern.nnz()];
        pattern.values_grad(&dyt, &host(&xt), nb, &mut dval);
        tensor(dval, [pattern.nnz()])
    }
}

/// The backward step: the input gradient when the input needs one (not for the first layer,
/// whose input is data), and the values' gradient.
#[derive(Debug)]
struct SparseLinearBackward;

impl<B: Backend + SparseLinearOps> Backward<B, 2> for SparseLinearBackward {
    type State = (FloatTensor<B>, FloatTensor<B>, Arc<Pattern>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_values] = ops.parents;
        let dy = grads.consume::<B>(&ops.node);
        let (xt, values, pattern) = ops.state;
        if let Some(node) = node_x {
            let dx = B::sparse_linear_input_grad(dy.clone(), values, pattern.clone());
            grads.register::<B>(node.id, dx);
        }
        if let Some(node) = node_values {
            grads.register::<B>(node.id, B::sparse_linear_values_grad(dy, xt, pattern));
        }
    }
}

impl<B: Backend + SparseLinearOps, C: CheckpointStrategy> SparseLinearOps for Autodiff<B, C> {
    fn sparse_linear(
        x: FloatTensor<Self>,
        values: FloatTensor<Self>,
        pattern: Arc<Pattern>,
    ) -> FloatTensor<Self> {
        match SparseLinearBackward
            .prepare::<C>([x.node(), values.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let xt = B::feature_major(x.primitive().clone());
                let values = values.primitive().clone();
                let y = B::sparse_linear_fm(xt.clone(), values.clone(), pattern.clone());
                prep.finish((xt, values, pattern), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::sparse_linear(
                x.into_primitive(),
                values.into_primitive(),
                pattern,
            )),
        }
    }

    // The steps themselves are not differentiated.
    fn feature_major(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::from_inner(B::feature_major(Self::inner(x)))
    }

    fn sparse_linear_fm(
        xt: FloatTensor<Self>,
        values: FloatTensor<Self>,
        pattern: Arc<Pattern>,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::sparse_linear_fm(
            Self::inner(xt),
            Self::inner(values),
            pattern,
        ))
    }

    fn sparse_linear_input_grad(
        dy: FloatTensor<Self>,
        values: FloatTensor<Self>,
        pattern: Arc<Pattern>,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::sparse_linear_input_grad(
            Self::inner(dy),
            Self::inner(values),
            pattern,
        ))
    }

    fn sparse_linear_values_grad(
        dy: FloatTensor<Self>,
        xt: FloatTensor<Self>,
        pattern: Arc<Pattern>,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::sparse_linear_values_grad(
            Self::inner(dy),
            Self::inner(xt),
            pattern,
        ))
    }
}
