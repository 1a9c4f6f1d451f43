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

/// A linear layer's whole step as one operation: the sparse product, its bias and, for hidden
/// layers, ReLU — so that burn records one node instead of three and the gradient flowing back is
/// transposed to the products' layout once. Only `sparse_linear` is differentiated; the rest are
/// the steps its forward and backward are made of.
#[backend_extension(Flex, Autodiff)]
pub trait SparseLinearOps: Backend {
    /// `relu?(x W^T + b)` for `x [batch, in]`, the pattern's `[out, in]` matrix given by one value
    /// per kept weight and `b [out]` (zeros for a layer without one): `[batch, out]`.
    fn sparse_linear(
        x: FloatTensor<Self>,
        values: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        pattern: Arc<Pattern>,
        relu: bool,
    ) -> FloatTensor<Self> {
        Self::sparse_linear_fm(Self::feature_major(x), values, bias, pattern, relu)
    }

    /// `[batch, len]` → `[len, batch]`, contiguous: the layout the products read, kept for the
    /// backward step so the input is transposed once.
    fn feature_major(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// [`SparseLinearOps::sparse_linear`] on a feature-major input.
    fn sparse_linear_fm(
        xt: FloatTensor<Self>,
        values: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        pattern: Arc<Pattern>,
        relu: bool,
    ) -> FloatTensor<Self>;

    /// The output gradient `dy [batch, out]` feature-major, zero where the output `y` is not
    /// positive when it went through ReLU: what the three gradients below are made from.
    fn sparse_linear_output_grad(
        dy: FloatTensor<Self>,
        y: FloatTensor<Self>,
        relu: bool,
    ) -> FloatTensor<Self>;

    /// The input gradient `[batch, in]` from the feature-major output gradient.
    fn sparse_linear_input_grad(
        dyt: FloatTensor<Self>,
        values: FloatTensor<Self>,
        pattern: Arc<Pattern>,
    ) -> FloatTensor<Self>;

    /// The gradient at the kept weights (one entry per value), from the feature-major output
    /// gradient and input.
    fn sparse_linear_values_grad(
        dyt: FloatTensor<Self>,
        xt: FloatTensor<Self>,
        pattern: Arc<Pattern>,
    ) -> FloatTensor<Self>;

    /// The bias gradient `[out]`: each row of the feature-major output gradient summed.
    fn sparse_linear_bias_grad(dyt: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// A `[batch, len]` example-major buffer as feature-major `len × batch`.
fn feature_major(t: &[f32], nb: usize, len: usize) -> Vec<f32> {
    let mut out = vec![0.0; nb * len];
    transpose(t, nb, len, &mut out);
    out
}

/// A `[batch, len]` tensor's feature-major `len × batch` form, contiguous: free when the tensor
/// is the transposed view these operations return (so a chain of sparse layers, forward and
/// backward, never transposes between them), one transpose otherwise.
fn feature_major_of(t: &FlexTensor) -> FlexTensor {
    let view = t.transpose(0, 1);
    if view.as_slice::<f32>().is_some() {
        return view;
    }
    let (nb, len) = dims(t);
    tensor(feature_major(&host(t), nb, len), [len, nb])
}

/// A feature-major `len × nb` buffer as the `[nb, len]` tensor burn sees: a transposed view of
/// it, no copy. burn's own operations read strided tensors as they are.
fn example_major(t: Vec<f32>, nb: usize, len: usize) -> FlexTensor {
    tensor(t, [len, nb]).transpose(0, 1)
}

/// Batch and length of a `[batch, len]` tensor.
pub(super) fn dims(t: &FlexTensor) -> (usize, usize) {
    let s = t.shape();
    (s[0], s[1])
}

impl SparseLinearOps for Flex {
    fn feature_major(x: FlexTensor) -> FlexTensor {
        feature_major_of(&x)
    }

    fn sparse_linear_fm(
        xt: FlexTensor,
        values: FlexTensor,
        bias: FlexTensor,
        pattern: Arc<Pattern>,
        relu: bool,
    ) -> FlexTensor {
        let nb = xt.shape()[1];
        let mut yt = vec![0.0; pattern.rows() * nb];
        let (values, bias, xt) = (host(&values), host(&bias), host(&xt));
        pattern.forward(&values, Some(&bias), relu, &xt, nb, &mut yt);
        example_major(yt, nb, pattern.rows())
    }

    fn sparse_linear_output_grad(dy: FlexTensor, y: FlexTensor, relu: bool) -> FlexTensor {
        let dyt = feature_major_of(&dy);
        if !relu {
            return dyt;
        }
        // ReLU's gradient: through where the output is positive. Both feature-major, so the
        // mask is taken element by element.
        let (len, nb) = dims(&dyt);
        let masked: Vec<f32> = (host(&dyt).iter().zip(host(&feature_major_of(&y)).iter()))
            .map(|(&g, &o)| if o > 0.0 { g } else { 0.0 })
            .collect();
        tensor(masked, [len, nb])
    }

    fn sparse_linear_input_grad(
        dyt: FlexTensor,
        values: FlexTensor,
        pattern: Arc<Pattern>,
    ) -> FlexTensor {
        let nb = dyt.shape()[1];
        let mut dxt = vec![0.0; pattern.cols() * nb];
        pattern.input_grad(&host(&values), &host(&dyt), nb, &mut dxt);
        example_major(dxt, nb, pattern.cols())
    }

    fn sparse_linear_values_grad(
        dyt: FlexTensor,
        xt: FlexTensor,
        pattern: Arc<Pattern>,
    ) -> FlexTensor {
        let nb = dyt.shape()[1];
        let mut dval = vec![0.0; pattern.nnz()];
        pattern.values_grad(&host(&dyt), &host(&xt), nb, &mut dval);
        tensor(dval, [pattern.nnz()])
    }

    fn sparse_linear_bias_grad(dyt: FlexTensor) -> FlexTensor {
        let (rows, nb) = dims(&dyt);
        let db: Vec<f32> = host(&dyt)
            .chunks_exact(nb.max(1))
            .map(|r| r.iter().sum())
            .collect();
        tensor(db, [rows])
    }
}

/// The backward step: the input gradient when the input needs one (not for the first layer,
/// whose input is data), the values' gradient and the bias's (not for a layer without one, whose
/// zeros need none). It keeps the feature-major input, the values, the output and the pattern.
#[derive(Debug)]
struct SparseLinearBackward {
    relu: bool,
}

impl<B: Backend + SparseLinearOps> Backward<B, 3> for SparseLinearBackward {
    type State = (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>, Arc<Pattern>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_values, node_bias] = ops.parents;
        let (xt, values, y, pattern) = ops.state;
        let dy = grads.consume::<B>(&ops.node);
        let dyt = B::sparse_linear_output_grad(dy, y, self.relu);
        if let Some(node) = node_x {
            let dx = B::sparse_linear_input_grad(dyt.clone(), values, pattern.clone());
            grads.register::<B>(node.id, dx);
        }
        if let Some(node) = node_bias {
            grads.register::<B>(node.id, B::sparse_linear_bias_grad(dyt.clone()));
        }
        if let Some(node) = node_values {
            grads.register::<B>(node.id, B::sparse_linear_values_grad(dyt, xt, pattern));
        }
    }
}

impl<B: Backend + SparseLinearOps, C: CheckpointStrategy> SparseLinearOps for Autodiff<B, C> {
    fn sparse_linear(
        x: FloatTensor<Self>,
        values: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        pattern: Arc<Pattern>,
        relu: bool,
    ) -> FloatTensor<Self> {
        match (SparseLinearBackward { relu })
            .prepare::<C>([x.node(), values.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let xt = B::feature_major(x.primitive().clone());
                let (values, b) = (values.primitive().clone(), bias.primitive().clone());
                let y = B::sparse_linear_fm(xt.clone(), values.clone(), b, pattern.clone(), relu);
                prep.finish((xt, values, y.clone(), pattern), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::sparse_linear(
                x.into_primitive(),
                values.into_primitive(),
                bias.into_primitive(),
                pattern,
                relu,
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
        bias: FloatTensor<Self>,
        pattern: Arc<Pattern>,
        relu: bool,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::sparse_linear_fm(
            Self::inner(xt),
            Self::inner(values),
            Self::inner(bias),
            pattern,
            relu,
        ))
    }

    fn sparse_linear_output_grad(
        dy: FloatTensor<Self>,
        y: FloatTensor<Self>,
        relu: bool,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::sparse_linear_output_grad(
            Self::inner(dy),
            Self::inner(y),
            relu,
        ))
    }

    fn sparse_linear_input_grad(
        dyt: FloatTensor<Self>,
        values: FloatTensor<Self>,
        pattern: Arc<Pattern>,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::sparse_linear_input_grad(
            Self::inner(dyt),
            Self::inner(values),
            pattern,
        ))
    }

    fn sparse_linear_values_grad(
        dyt: FloatTensor<Self>,
        xt: FloatTensor<Self>,
        pattern: Arc<Pattern>,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::sparse_linear_values_grad(
            Self::inner(dyt),
            Self::inner(xt),
            pattern,
        ))
    }

    fn sparse_linear_bias_grad(dyt: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::from_inner(B::sparse_linear_bias_grad(Self::inner(dyt)))
    }
}
