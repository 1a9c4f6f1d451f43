//! 2-D convolutions and max-pooling on the CPU through our own kernels (im2col + a tuned GEMM,
//! images split across threads; pooling with the argmax kept) with hand-written backward steps,
//! instead of burn-flex's generic 3-D paths: the models call [`conv2d`] and [`max_pool2d`] where
//! they called burn's modules, which route every other device, grouped or dilated convolutions,
//! padded pools and non-f32 tensors to burn's own.

mod kernels;
mod op;
mod pool;

use burn::backend::Dispatch;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::tensor::{DType, Device, Tensor};

pub use kernels::Geometry;
use op::ConvOps;
use pool::{PoolOps, Window};

/// `conv` applied to `x [n, c_in, h, w]`.
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let Some(g) = geometry(conv, &x) else {
        return conv.forward(x);
    };
    let w = conv.weight.val();
    let y = Tensor::<4>::from_dispatch(<Dispatch as ConvOps>::conv2d_fast(
        x.into_dispatch(),
        w.into_dispatch(),
        g,
    ));
    match &conv.bias {
        Some(b) => y + b.val().reshape([1, g.c_out as i32, 1, 1]),
        None => y,
    }
}

/// `pool` applied to `x [n, c, h, w]`.
pub fn max_pool2d(pool: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    let ours = x.device() == Device::flex()
        && x.dtype() == DType::F32
        && pool.dilation == [1, 1]
        && !pool.ceil_mode
        && matches!(pool.padding, PaddingConfig2d::Valid)
        && h >= pool.kernel_size[0]
        && w >= pool.kernel_size[1];
    if !ours {
        return pool.forward(x);
    }
    let win = Window {
        kernel: pool.kernel_size,
        stride: pool.stride,
    };
    Tensor::<4>::from_dispatch(<Dispatch as PoolOps>::max_pool2d_fast(
        x.into_dispatch(),
        win,
    ))
}

/// The convolution's geometry on `x`, when our kernels take it.
fn geometry(conv: &Conv2d, x: &Tensor<4>) -> Option<Geometry> {
    let ours = x.device() == Device::flex()
        && x.dtype() == DType::F32
        && conv.groups == 1
        && conv.dilation == [1, 1];
    if !ours {
        return None;
    }
    let [_, c_in, h, w] = x.dims();
    let [c_out, _, kh, kw] = conv.weight.dims();
    // `Same` padding (asymmetric at some sizes) stays with burn, which computes it.
    let [top, left, bottom, right] = match conv.padding {
        PaddingConfig2d::Valid => [0; 4],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [top, left, bottom, right],
        PaddingConfig2d::Same => return None,
    };
    if h + top + bottom < kh || w + left + right < kw {
        return None; // burn says what is wrong
    }
    Some(Geometry {
        c_in,
        h,
        w,
        c_out,
        kh,
        kw,
        stride: conv.stride,
        pad: [top, bottom, left, right],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::{Distribution, TensorData};

    use super::kernels::tests::close;

    fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_into_vec::<f32>().unwrap()
    }

    /// Output, input gradient, weight gradient and bias gradient against burn's own
    /// convolution through autodiff: odd sizes, stride 2, padding, 1×1, a batch of one, no bias.
    #[test]
    fn our_convolution_matches_burns_with_its_gradients() {
        let device = Device::flex().autodiff();
        let cases = [
            // c_in, c_out, kernel, stride, padding, input, batch, bias
            (3, 4, [3, 3], [1, 1], 1, [7, 9], 5, true),
            (2, 3, [3, 3], [2, 2], 1, [8, 8], 3, true),
            (4, 5, [1, 1], [1, 1], 0, [5, 6], 1, false),
            (4, 2, [1, 1], [2, 2], 0, [6, 6], 3, true),
            (1, 3, [2, 3], [1, 2], 0, [6, 5], 2, true),
        ];
        for (c_in, c_out, k, stride, p, [h, w], n, bias) in cases {
            let conv = Conv2dConfig::new([c_in, c_out], k)
                .with_stride(stride)
                .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
                .with_bias(bias)
                .init(&device);
            let what =
                format!("{c_in}→{c_out} {k:?} stride {stride:?} pad {p} on {h}×{w}, batch {n}");
            assert!(
                geometry(&conv, &Tensor::<4>::zeros([n, c_in, h, w], &device)).is_some(),
                "{what}: takes our path"
            );
            let x = Tensor::<4>::random([n, c_in, h, w], Distribution::Default, &device);
            let r = Tensor::<4>::random(
                conv.forward(x.clone()).dims(),
                Distribution::Default,
                &device,
            );
            let run = |ours: bool| {
                let x = x.clone().detach().require_grad();
                let y = if ours {
                    conv2d(&conv, x.clone())
                } else {
                    conv.forward(x.clone())
                };
                let grads = (y.clone() * r.clone()).sum().backward();
                let dw = conv.weight.val().grad(&grads).unwrap();
                let db = conv
                    .bias
                    .as_ref()
                    .map(|b| host(b.val().grad(&grads).unwrap()));
                (host(y), host(x.grad(&grads).unwrap()), host(dw), db)
            };
            let (y0, dx0, dw0, db0) = run(false);
            let (y1, dx1, dw1, db1) = run(true);
            close(&y1, &y0, &format!("{what}: output"));
            close(&dx1, &dx0, &format!("{what}: input gradient"));
            close(&dw1, &dw0, &format!("{what}: weight gradient"));
            if let (Some(a), Some(b)) = (db1, db0) {
                close(&a, &b, &format!("{what}: bias gradient"));
            }
        }
    }

    /// Max-pool output and input gradient against burn's, odd sizes and overlapping windows.
    #[test]
    fn our_max_pool_matches_burns_with_its_gradient() {
        use burn::nn::pool::MaxPool2dConfig;
        let device = Device::flex().autodiff();
        for (k, s, [h, w], n) in [
            ([2, 2], [2, 2], [8, 8], 3),
            ([2, 2], [2, 2], [7, 9], 1),
            ([3, 3], [2, 2], [9, 7], 2),
            ([2, 3], [1, 2], [5, 8], 2),
        ] {
            let pool = MaxPool2dConfig::new(k).with_strides(s).init();
            let x = Tensor::<4>::random([n, 3, h, w], Distribution::Default, &device);
            let r = Tensor::<4>::random(
                pool.forward(x.clone()).dims(),
                Distribution::Default,
                &device,
            );
            let run = |ours: bool| {
                let x = x.clone().detach().require_grad();
                let y = if ours {
                    max_pool2d(&pool, x.clone())
                } else {
                    pool.forward(x.clone())
                };
                let grads = (y.clone() * r.clone()).sum().backward();
                (host(y), host(x.grad(&grads).unwrap()))
            };
            let (y0, dx0) = run(false);
            let (y1, dx1) = run(true);
            let what = format!("pool {k:?} stride {s:?} on {h}×{w}");
            close(&y1, &y0, &format!("{what}: output"));
            close(&dx1, &dx0, &format!("{what}: input gradient"));
        }
    }

    #[test]
    fn other_convolutions_stay_with_burn() {
        let device = Device::flex();
        let x = Tensor::<4>::from_data(
            TensorData::new(vec![0.0f32; 2 * 4 * 5 * 5], [2, 4, 5, 5]),
            &device,
        );
        let grouped = Conv2dConfig::new([4, 4], [3, 3])
            .with_groups(2)
            .init(&device);
        let dilated = Conv2dConfig::new([4, 4], [3, 3])
            .with_dilation([2, 2])
            .init(&device);
        let same = Conv2dConfig::new([4, 4], [3, 3])
            .with_padding(PaddingConfig2d::Same)
            .init(&device);
        for conv in [&grouped, &dilated, &same] {
            assert!(geometry(conv, &x).is_none());
            // …and still computes what burn computes.
            assert_eq!(host(conv2d(conv, x.clone())), host(conv.forward(x.clone())));
        }
    }
}
