//! The convolution as a burn operation with its own backward: a backend extension implemented
//! for burn's CPU backend (`flex`, with [`super::kernels`] on the tensors' host memory) and for
//! autodiff over any backend that implements it. Other devices never reach it: [`super::conv2d`]
//! routes them to burn's own convolution.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{AutodiffBackend, Backend, Flex, TensorMetadata, backend_extension};

use super::kernels::{self, Geometry};
use crate::cpu::{f32s as host, tensor};

/// A bias-free 2-D convolution of `x [n, c_in, h, w]` with `weight [c_out, c_in, kh, kw]`, and
/// the two gradients its backward step is made of. Only `conv2d_fast` is differentiated.
#[backend_extension(Flex, Autodiff)]
pub trait ConvOps: Backend {
    fn conv2d_fast(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        g: Geometry,
    ) -> FloatTensor<Self>;

    /// `dx` from `dy [n, c_out, ho, wo]`; `x` gives only the shape.
    fn conv2d_fast_input_grad(
        dy: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        x: FloatTensor<Self>,
        g: Geometry,
    ) -> FloatTensor<Self>;

    fn conv2d_fast_weight_grad(
        x: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        g: Geometry,
    ) -> FloatTensor<Self>;
}

/// The four dimensions of an NCHW or OIHW tensor.
pub(super) fn dims(t: &FlexTensor) -> [usize; 4] {
    let s = t.shape();
    [s[0], s[1], s[2], s[3]]
}

impl ConvOps for Flex {
    fn conv2d_fast(x: FlexTensor, weight: FlexTensor, g: Geometry) -> FlexTensor {
        let n = x.shape()[0];
        let mut y = vec![0.0; n * g.c_out * g.ho() * g.wo()];
        kernels::forward(&g, &host(&x), &host(&weight), &mut y);
        tensor(y, [n, g.c_out, g.ho(), g.wo()])
    }

    fn conv2d_fast_input_grad(
        dy: FlexTensor,
        weight: FlexTensor,
        x: FlexTensor,
        g: Geometry,
    ) -> FlexTensor {
        let [n, c, h, w] = dims(&x);
        let mut dx = vec![0.0; n * c * h * w];
        kernels::input_grad(&g, &host(&dy), &host(&weight), &mut dx);
        tensor(dx, [n, c, h, w])
    }

    fn conv2d_fast_weight_grad(
        x: FlexTensor,
        dy: FlexTensor,
        weight: FlexTensor,
        g: Geometry,
    ) -> FlexTensor {
        let [o, i, kh, kw] = dims(&weight);
        let mut dw = vec![0.0; o * i * kh * kw];
        kernels::weight_grad(&g, &host(&x), &host(&dy), &mut dw);
        tensor(dw, [o, i, kh, kw])
    }
}

/// The backward step: the input gradient when the input needs one (not for the first layer,
/// whose input is data), and the weight's.
#[derive(Debug)]
struct ConvBackward;

impl<B: Backend + ConvOps> Backward<B, 2> for ConvBackward {
    type State = (FloatTensor<B>, FloatTensor<B>, Geometry);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w] = ops.parents;
        let dy = grads.consume::<B>(&ops.node);
        let (x, w, g) = ops.state;
        if let Some(node) = node_x {
            let dx = B::conv2d_fast_input_grad(dy.clone(), w.clone(), x.clone(), g);
            grads.register::<B>(node.id, dx);
        }
        if let Some(node) = node_w {
            grads.register::<B>(node.id, B::conv2d_fast_weight_grad(x, dy, w, g));
        }
    }
}

impl<B: Backend + ConvOps, C: CheckpointStrategy> ConvOps for Autodiff<B, C> {
    fn conv2d_fast(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        g: Geometry,
    ) -> FloatTensor<Self> {
        match ConvBackward
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (x, w) = (x.primitive().clone(), weight.primitive().clone());
                let y = B::conv2d_fast(x.clone(), w.clone(), g);
                prep.finish((x, w, g), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::conv2d_fast(
                x.into_primitive(),
                weight.into_primitive(),
                g,
            )),
        }
    }

    // The steps themselves are not differentiated.
    fn conv2d_fast_input_grad(
        dy: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        x: FloatTensor<Self>,
        g: Geometry,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::conv2d_fast_input_grad(
            Self::inner(dy),
            Self::inner(weight),
            Self::inner(x),
            g,
        ))
    }

    fn conv2d_fast_weight_grad(
        x: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        g: Geometry,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::conv2d_fast_weight_grad(
            Self::inner(x),
            Self::inner(dy),
            Self::inner(weight),
            g,
        ))
    }
}
