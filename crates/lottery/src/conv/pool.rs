//! Max-pooling on the CPU with the argmax of each window kept for the backward step, as a burn
//! backend extension like the convolution beside it: burn-flex routes 2-D pooling through its
//! 3-D path (BENCHMARKS.md). Windows without padding or dilation, floor mode: the conv nets'.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{AutodiffBackend, Backend, Flex, backend_extension};
use burn::tensor::TensorData;

use super::kernels::threads;
use super::op::dims;
use crate::cpu::{f32s, tensor};

/// Window and stride, `[height, width]` each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
}

impl Window {
    fn out(&self, h: usize, w: usize) -> (usize, usize) {
        (
            (h - self.kernel[0]) / self.stride[0] + 1,
            (w - self.kernel[1]) / self.stride[1] + 1,
        )
    }
}

#[backend_extension(Flex, Autodiff)]
pub trait PoolOps: Backend {
    /// The maximum of each window of `x [n, c, h, w]`.
    fn max_pool2d_fast(x: FloatTensor<Self>, win: Window) -> FloatTensor<Self>;

    /// The maxima and, for each, its position in its input plane (`ih · w + iw`).
    fn max_pool2d_fast_with_indices(
        x: FloatTensor<Self>,
        win: Window,
    ) -> (FloatTensor<Self>, IntTensor<Self>);

    /// `dx`: each output's gradient added at its maximum; `x` gives only the shape.
    fn max_pool2d_fast_backward(
        dy: FloatTensor<Self>,
        indices: IntTensor<Self>,
        x: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

/// Maxima and their in-plane positions: the first maximum of a window in row-major order. The
/// planes are split across threads, as the convolutions split images.
fn pool(x: &[f32], [n, c, h, w]: [usize; 4], win: Window) -> (Vec<f32>, Vec<i64>) {
    let (ho, wo) = win.out(h, w);
    let planes = n * c;
    let mut y = vec![0.0f32; planes * ho * wo];
    let mut idx = vec![0i64; planes * ho * wo];
    let per = planes.div_ceil(threads(planes)).max(1);
    std::thread::scope(|s| {
        let work = (x.chunks(per * h * w))
            .zip(y.chunks_mut(per * ho * wo))
            .zip(idx.chunks_mut(per * ho * wo));
        for ((xs, ys), is) in work {
            s.spawn(move || {
                let outs = ys
                    .chunks_exact_mut(ho * wo)
                    .zip(is.chunks_exact_mut(ho * wo));
                for (plane, (y, idx)) in xs.chunks_exact(h * w).zip(outs) {
                    pool_plane(plane, w, (ho, wo), win, y, idx);
                }
            });
        }
    });
    (y, idx)
}

/// One plane of [`pool`]: `w` its width, `(ho, wo)` the output's size.
fn pool_plane(
    plane: &[f32],
    w: usize,
    (ho, wo): (usize, usize),
    win: Window,
    y: &mut [f32],
    idx: &mut [i64],
) {
    for oh in 0..ho {
        for ow in 0..wo {
            let (mut best, mut at) = (f32::NEG_INFINITY, 0);
            for i in 0..win.kernel[0] {
                let row = (oh * win.stride[0] + i) * w + ow * win.stride[1];
                for (j, &v) in plane[row..row + win.kernel[1]].iter().enumerate() {
                    // A NaN is taken too, and then propagates.
                    if (i == 0 && j == 0) || v > best || v.is_nan() {
                        (best, at) = (v, row + j);
                    }
                }
            }
            y[oh * wo + ow] = best;
            idx[oh * wo + ow] = at as i64;
        }
    }
}

impl PoolOps for Flex {
    fn max_pool2d_fast(x: FlexTensor, win: Window) -> FlexTensor {
        Self::max_pool2d_fast_with_indices(x, win).0
    }

    fn max_pool2d_fast_with_indices(x: FlexTensor, win: Window) -> (FlexTensor, FlexTensor) {
        let d = dims(&x);
        let (ho, wo) = win.out(d[2], d[3]);
        let (y, idx) = pool(&f32s(&x), d, win);
        let shape = [d[0], d[1], ho, wo];
        (
            tensor(y, shape),
            FlexTensor::from_data(TensorData::new(idx, shape)),
        )
    }

    fn max_pool2d_fast_backward(dy: FlexTensor, indices: FlexTensor, x: FlexTensor) -> FlexTensor {
        let [n, c, h, w] = dims(&x);
        let dy = f32s(&dy);
        let indices = indices.to_contiguous();
        let idx = indices.as_slice::<i64>().expect("indices written as i64");
        let (planes, per) = (n * c, dy.len() / (n * c).max(1));
        let mut dx = vec![0.0f32; planes * h * w];
        let group = planes.div_ceil(threads(planes)).max(1);
        std::thread::scope(|s| {
            let work = (dx.chunks_mut(group * h * w))
                .zip(dy.chunks(group * per))
                .zip(idx.chunks(group * per));
            for ((dxs, dys), ats) in work {
                s.spawn(move || {
                    let planes = dxs.chunks_exact_mut(h * w);
                    for ((plane, g), at) in planes.zip(dys.chunks(per)).zip(ats.chunks(per)) {
                        for (&v, &p) in g.iter().zip(at) {
                            plane[p as usize] += v;
                        }
                    }
                });
            }
        });
        tensor(dx, [n, c, h, w])
    }
}

#[derive(Debug)]
struct MaxPoolBackward;

impl<B: Backend + PoolOps> Backward<B, 1> for MaxPoolBackward {
    type State = (IntTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let dy = grads.consume::<B>(&ops.node);
        let (indices, x) = ops.state;
        if let Some(node) = node {
            grads.register::<B>(node.id, B::max_pool2d_fast_backward(dy, indices, x));
        }
    }
}

impl<B: Backend + PoolOps, C: CheckpointStrategy> PoolOps for Autodiff<B, C> {
    fn max_pool2d_fast(x: FloatTensor<Self>, win: Window) -> FloatTensor<Self> {
        match MaxPoolBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let x = x.primitive().clone();
                let (y, indices) = B::max_pool2d_fast_with_indices(x.clone(), win);
                prep.finish((indices, x), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::max_pool2d_fast(x.into_primitive(), win)),
        }
    }

    fn max_pool2d_fast_with_indices(
        x: FloatTensor<Self>,
        win: Window,
    ) -> (FloatTensor<Self>, IntTensor<Self>) {
        let (y, indices) = B::max_pool2d_fast_with_indices(Self::inner(x), win);
        (Self::from_inner(y), indices)
    }

    fn max_pool2d_fast_backward(
        dy: FloatTensor<Self>,
        indices: IntTensor<Self>,
        x: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::max_pool2d_fast_backward(
            Self::inner(dy),
            indices,
            Self::inner(x),
        ))
    }
}
