//! 2-D convolutions, batch norm and max-pooling on the CPU through our own kernels (direct AVX2
//! convolutions, or im2col + a tuned GEMM, images split across threads; batch norm fused with its ReLU; pooling with the
//! argmax kept) with hand-written backward steps, instead of burn-flex's generic paths: the
//! models call [`conv2d`], [`batch_norm`] and [`max_pool2d`] where they called burn's modules,
//! which route every other device, grouped or dilated convolutions, padded pools and non-f32
//! tensors to burn's own.

mod batched;
mod columns;
mod direct;
mod kernels;
mod norm;
mod op;
mod pool;
mod shifted;

use burn::backend::Dispatch;
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::nn::{BatchNorm, PaddingConfig2d};
use burn::tensor::{DType, Device, Tensor};

pub use kernels::Geometry;
use norm::{Norm, NormOps};
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

/// `bn` applied to `x [n, c, h, w]`, then ReLU when `relu` — one operation on the CPU: in
/// training (an autodiff device, `bn` not frozen) with the batch's statistics, which also
/// update `bn`'s running ones as burn's would; in evaluation with the running statistics.
/// Other devices and a frozen `bn` being differentiated go to burn's module.
pub fn batch_norm(bn: &BatchNorm, x: Tensor<4>, relu: bool) -> Tensor<4> {
    let device = x.device();
    let training = device.is_autodiff() && bn.training.is_enabled();
    // A frozen layer on an autodiff device normalises with fixed statistics, which our
    // backward (batch statistics) does not differentiate.
    if device != Device::flex() || x.dtype() != DType::F32 || (device.is_autodiff() && !training) {
        let y = bn.forward(x);
        return if relu {
            burn::tensor::activation::relu(y)
        } else {
            y
        };
    }
    let c = bn.gamma.dims()[0];
    let stats = if training {
        let stats = Tensor::<2>::from_dispatch(<Dispatch as NormOps>::batch_stats(
            x.clone().into_dispatch(),
        ));
        let batch = |row: usize| stats.clone().slice([row..row + 1, 0..c]).reshape([c]);
        let m = bn.momentum;
        let update = |running: Tensor<1>, now: Tensor<1>| {
            running
                .mul_scalar(1.0 - m)
                .add(now.detach().mul_scalar(m))
                .detach()
        };
        let running_mean = bn.running_mean.value_sync().to_device(&device);
        let running_var = bn.running_var.value_sync().to_device(&device);
        bn.running_mean.update(update(running_mean, batch(0)));
        bn.running_var.update(update(running_var, batch(1)));
        stats
    } else {
        let mean = bn.running_mean.value().to_device(&device);
        let var = bn.running_var.value().to_device(&device);
        Tensor::stack::<2>(vec![mean, var], 0)
    };
    let norm = Norm {
        eps: bn.epsilon as f32,
        relu,
    };
    Tensor::<4>::from_dispatch(<Dispatch as NormOps>::batch_norm_fast(
        x.into_dispatch(),
        bn.gamma.val().into_dispatch(),
        bn.beta.val().into_dispatch(),
        stats.into_dispatch(),
        norm,
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
            // The direct kernels (stride 1, rows of 8, whole tiles of input channels).
            (16, 7, [3, 3], [1, 1], 1, [6, 8], 3, true),
            (16, 8, [3, 3], [2, 2], 1, [9, 16], 2, false),
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

    /// Batch norm (with and without the ReLU) against burn's module through autodiff: output,
    /// input gradient, γ and β gradients, the running statistics after the step, and the
    /// evaluation-mode output from them; odd plane sizes and a batch of one.
    #[test]
    fn our_batch_norm_matches_burns_with_its_gradients() {
        use burn::module::Module;
        use burn::nn::BatchNormConfig;
        let device = Device::flex().autodiff();
        for ([n, c, h, w], relu) in [
            ([4, 3, 5, 7], false),
            ([4, 3, 5, 7], true),
            ([1, 5, 3, 3], true),
            ([6, 2, 1, 1], false),
        ] {
            let what = format!("[{n}, {c}, {h}, {w}], relu {relu}");
            // Not the identity: γ and β away from 1 and 0.
            let gamma = Tensor::<1>::random([c], Distribution::Uniform(0.5, 1.5), &device);
            let beta = Tensor::<1>::random([c], Distribution::Default, &device);
            // A fresh module per run: clones share their running statistics.
            let init = || {
                let mut bn = BatchNormConfig::new(c).init(&device);
                bn.gamma = bn.gamma.map(|_| gamma.clone().require_grad());
                bn.beta = bn.beta.map(|_| beta.clone().require_grad());
                bn
            };
            let x = Tensor::<4>::random([n, c, h, w], Distribution::Normal(0.3, 2.0), &device);
            let r = Tensor::<4>::random([n, c, h, w], Distribution::Default, &device);
            let run = |ours: bool| {
                let bn = init();
                let x = x.clone().detach().require_grad();
                let y = if ours {
                    batch_norm(&bn, x.clone(), relu)
                } else {
                    let y = bn.forward(x.clone());
                    if relu {
                        burn::tensor::activation::relu(y)
                    } else {
                        y
                    }
                };
                let grads = (y.clone() * r.clone()).sum().backward();
                let dg = host(bn.gamma.val().grad(&grads).unwrap());
                let db = host(bn.beta.val().grad(&grads).unwrap());
                let running = [&bn.running_mean, &bn.running_var].map(|s| host(s.value_sync()));
                let dx = host(x.grad(&grads).unwrap());
                let valid = bn.valid();
                let x = x.inner();
                let eval = if ours {
                    batch_norm(&valid, x, relu)
                } else {
                    let y = valid.forward(x);
                    if relu {
                        burn::tensor::activation::relu(y)
                    } else {
                        y
                    }
                };
                (host(y), dx, dg, db, running, host(eval))
            };
            let burns = run(false);
            let ours = run(true);
            close(&ours.0, &burns.0, &format!("{what}: output"));
            close(&ours.1, &burns.1, &format!("{what}: input gradient"));
            close(&ours.2, &burns.2, &format!("{what}: γ gradient"));
            close(&ours.3, &burns.3, &format!("{what}: β gradient"));
            close(&ours.4[0], &burns.4[0], &format!("{what}: running mean"));
            close(
                &ours.4[1],
                &burns.4[1],
                &format!("{what}: running variance"),
            );
            close(&ours.5, &burns.5, &format!("{what}: evaluation output"));
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
