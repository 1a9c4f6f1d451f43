//! `cnn1d_DxW`: a stack of `D` one-dimensional convolutions of `W` channels (kernel 5, zero
//! padding that keeps the length, ReLU after each) and a linear head — the users' layered CNN
//! for time-series prediction. Inputs are windows `[channels, 1, length]`; convolution weights
//! are PyTorch's `Conv1d` layout `[out, in, k]`, named `conv1.weight`…, the head `fc1.weight`.

use burn::module::Module;
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::{Initializer, Linear, LinearConfig, PaddingConfig1d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use super::mlp::dense_stack;
use super::{Classify, Family, Network, unknown_model};
use crate::error::{Error, Result};
use crate::sparse::SparseLayers;

/// The convolutions' kernel: five steps, two on each side of the one it writes.
pub const KERNEL: usize = 5;
/// Zeros on each side, so every convolution keeps the window's length ("same" padding).
pub const PADDING: usize = KERNEL / 2;

pub struct Cnn1dFamily;

impl Cnn1dFamily {
    /// `(depth, width)` of `cnn1d_DxW`.
    fn parse(name: &str) -> Option<Result<(usize, usize)>> {
        let rest = name.strip_prefix("cnn1d_")?;
        let dims = rest
            .split_once('x')
            .and_then(|(d, w)| Some((d.parse().ok()?, w.parse().ok()?)))
            .filter(|&(d, w): &(usize, usize)| d > 0 && w > 0);
        Some(dims.ok_or_else(|| unknown_model(name)))
    }
}

impl Family for Cnn1dFamily {
    fn names(&self) -> &'static str {
        "cnn1d_DxW (D convolutions of W channels)"
    }
    fn check(&self, name: &str) -> Option<Result<()>> {
        Some(Self::parse(name)?.map(|_| ()))
    }
    fn build(
        &self,
        name: &str,
        input: [usize; 3],
        outputs: usize,
        device: &Device,
    ) -> Result<Network> {
        let (depth, width) = Self::parse(name).unwrap_or_else(|| Err(unknown_model(name)))?;
        let [channels, h, length] = input;
        if h != 1 {
            return Err(Error::config(
                "model",
                format!("{name} reads series windows [channels, 1, length], not {input:?}"),
            ));
        }
        Ok(Network::Cnn1d(Cnn1d::new(
            channels, length, depth, width, outputs, device,
        )))
    }
    fn default_input(&self) -> [usize; 3] {
        [1, 1, 32]
    }
}

#[derive(Module, Debug)]
pub struct Cnn1d {
    pub convs: Vec<Conv1d>,
    pub fcs: Vec<Linear>,
}

impl Cnn1d {
    fn new(
        channels: usize,
        length: usize,
        depth: usize,
        width: usize,
        outputs: usize,
        device: &Device,
    ) -> Self {
        let convs = (0..depth)
            .map(|i| {
                let cin = if i == 0 { channels } else { width };
                Conv1dConfig::new(cin, width, KERNEL)
                    .with_padding(PaddingConfig1d::Explicit(PADDING, PADDING))
                    .with_initializer(Initializer::Zeros)
                    .init(device)
            })
            .collect();
        let head = LinearConfig::new(width * length, outputs)
            .with_initializer(Initializer::Zeros)
            .init(device);
        Cnn1d {
            convs,
            fcs: vec![head],
        }
    }
}

impl Classify for Cnn1d {
    fn classify(&self, x: Tensor<4>, sparse: &SparseLayers) -> Tensor<2> {
        let [b, c, _, length] = x.dims();
        let x: Tensor<3> = x.reshape([b, c, length]);
        let x = self.convs.iter().fold(x, |x, conv| relu(conv.forward(x)));
        dense_stack(&self.fcs, x.flatten(1, 2), sparse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::Architecture;

    #[test]
    fn names_shapes_and_pytorch_layout() {
        let device = Device::flex();
        let net = Architecture::parse("cnn1d_2x8")
            .unwrap()
            .build([3, 1, 20], 1, &device)
            .unwrap();
        let dict = net.state_dict();
        let shape = |n: &str| dict[n].shape.clone();
        assert_eq!(shape("conv1.weight"), [8, 3, 5]);
        assert_eq!(shape("conv2.weight"), [8, 8, 5]);
        assert_eq!(shape("conv2.bias"), [8]);
        assert_eq!(shape("fc1.weight"), [1, 8 * 20]);
        assert_eq!(
            net.prunable(),
            ["conv1.weight", "conv2.weight", "fc1.weight"]
        );
        let x = Tensor::<4>::zeros([4, 3, 1, 20], &device);
        assert_eq!(net.forward(x).dims(), [4, 1]);
        for bad in ["cnn1d_0x8", "cnn1d_2x", "cnn1d_2"] {
            assert!(Architecture::parse(bad).is_err(), "{bad}");
        }
        let e = Architecture::parse("cnn1d_2x8")
            .unwrap()
            .build([1, 28, 28], 10, &device)
            .unwrap_err();
        assert!(e.to_string().contains("series windows"), "{e}");
    }
    /// The gradient of the squared-error loss through both convolutions and the head against
    /// central finite differences (in f64 sums of an f32 network, so a loose tolerance).
    #[test]
    fn gradients_match_finite_differences() {
        use crate::data::Targets;
        use crate::data::targets::Batch;
        use crate::models::init::{InitScheme, initialise};
        use burn::module::Module;
        use burn::optim::GradientsParams;

        let device = Device::flex().autodiff();
        let arch = Architecture::parse("cnn1d_2x3").unwrap();
        let net = initialise(
            arch.build([2, 1, 9], 1, &device).unwrap(),
            InitScheme::KaimingNormal,
            5,
        );
        // Fixed inputs, so that no ReLU sits within a finite-difference step of its kink by chance.
        let mut rng = crate::rng::Rng::new(11);
        let xs: Vec<f32> = (0..4 * 2 * 9).map(|_| rng.normal() as f32).collect();
        let x = Tensor::<4>::from_data(burn::tensor::TensorData::new(xs, [4, 2, 1, 9]), &device);
        let targets = Targets::Values {
            values: vec![0.5, -1.0, 0.25, 2.0],
            scale: 1.0,
            naive: vec![0.0; 4],
        };
        let mut batch = Batch::default();
        (0..4).for_each(|i| batch.push(&targets, i));
        let loss_of = |net: &Network| -> f64 {
            let out = net.forward(x.clone().inner());
            let data = out.into_data().try_into_vec::<f32>().unwrap();
            targets.score(&data).0
        };
        let loss = batch.loss(net.forward(x.clone()), &device);
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        let dict = net.state_dict();
        let ids = net.param_ids();
        let valid = net.valid();
        // burn keeps a linear weight as [in, out]; with one output, in PyTorch's order.
        let flat = |name: &str| -> Vec<f32> {
            let id = ids[name];
            let data = match dict[name].shape.len() {
                3 => grads.get::<3>(id).unwrap().into_data(),
                2 => grads.get::<2>(id).unwrap().into_data(),
                _ => grads.get::<1>(id).unwrap().into_data(),
            };
            data.try_into_vec::<f32>().unwrap()
        };
        for name in ["conv1.weight", "conv2.weight", "conv1.bias", "fc1.weight"] {
            let g = flat(name);
            assert_eq!(g.len(), dict[name].data.len());
            for k in [0, dict[name].data.len() / 2, dict[name].data.len() - 1] {
                let eps = 1e-3f32;
                let at = |delta: f32| {
                    let mut d = dict.clone();
                    d.get_mut(name).unwrap().data[k] += delta;
                    loss_of(&valid.clone().load_state_dict(&d).unwrap())
                };
                let numeric = (at(eps) - at(-eps)) / (2.0 * eps as f64);
                let analytic = g[k] as f64;
                assert!(
                    (numeric - analytic).abs() <= 2e-3 + 2e-2 * analytic.abs(),
                    "{name}[{k}]: finite differences {numeric}, gradient {analytic}"
                );
            }
        }
    }
}
