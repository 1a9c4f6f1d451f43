//! Plain convolutional stacks followed by fully connected layers: the LTH paper's Conv-2/4/6
//! and the CIFAR VGGs (with batch norm), which differ only in their plan.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use super::mlp::dense_stack;
use super::{Classify, Family, Network, unknown_model};
use crate::conv::{batch_norm, conv2d, max_pool2d};
use crate::error::{Error, Result};
use crate::sparse::SparseLayers;

/// The LTH paper's Conv-2, Conv-4 and Conv-6.
pub struct LthConv;

impl LthConv {
    fn pairs(name: &str) -> Option<usize> {
        match name {
            "conv2" => Some(1),
            "conv4" => Some(2),
            "conv6" => Some(3),
            _ => None,
        }
    }
}

impl Family for LthConv {
    fn names(&self) -> &'static str {
        "conv2, conv4, conv6"
    }
    fn check(&self, name: &str) -> Option<Result<()>> {
        Self::pairs(name).map(|_| Ok(()))
    }
    fn build(
        &self,
        name: &str,
        input: [usize; 3],
        classes: usize,
        device: &Device,
    ) -> Result<Network> {
        let pairs = Self::pairs(name).ok_or_else(|| unknown_model(name))?;
        if input[1] >> pairs == 0 {
            return Err(too_small("conv", input));
        }
        Ok(Network::Conv(ConvNet::new(
            input,
            &lth_conv_plan(pairs),
            false,
            &[256, 256],
            classes,
            device,
        )))
    }
}

/// CIFAR VGG-11/13/16/19 with batch norm.
pub struct Vgg;

impl Vgg {
    fn plan(name: &str) -> Option<Result<Vec<ConvStep>>> {
        let depth = name.strip_prefix("vgg")?;
        Some(
            depth
                .parse()
                .ok()
                .and_then(vgg_plan)
                .ok_or_else(|| unknown_model(name)),
        )
    }
}

impl Family for Vgg {
    fn names(&self) -> &'static str {
        "vgg11, vgg13, vgg16, vgg19"
    }
    fn check(&self, name: &str) -> Option<Result<()>> {
        Some(Self::plan(name)?.map(|_| ()))
    }
    fn build(
        &self,
        name: &str,
        input: [usize; 3],
        classes: usize,
        device: &Device,
    ) -> Result<Network> {
        let plan = Self::plan(name).unwrap_or_else(|| Err(unknown_model(name)))?;
        if input[1] < 32 || input[2] < 32 {
            return Err(too_small("vgg", input));
        }
        Ok(Network::Conv(ConvNet::new(
            input,
            &plan,
            true,
            &[],
            classes,
            device,
        )))
    }
}

fn too_small(what: &str, input: [usize; 3]) -> Error {
    Error::config(
        "model",
        format!("{what} needs inputs of at least 32×32, got {input:?}"),
    )
}

impl Classify for ConvNet {
    fn classify(&self, x: Tensor<4>, sparse: &SparseLayers) -> Tensor<2> {
        self.forward_with(x, sparse)
    }
}

// The plans (channels and pooling per convolution) are `lottery-sparse`'s, which compacts these
// nets by name as well.
/// What follows a convolution (after its ReLU): nothing, a 2×2 max-pool or average pool.
pub use lottery_sparse::Pool;
pub use lottery_sparse::plans::{ConvStep, lth_conv_plan, vgg_plan};

#[derive(Module, Debug)]
pub struct ConvNet {
    pub convs: Vec<Conv2d>,
    /// Empty for the LTH Conv nets; one per convolution for VGG.
    pub norms: Vec<BatchNorm>,
    pub fcs: Vec<Linear>,
    #[module(skip)]
    pools: Vec<Pool>,
    max: MaxPool2d,
    avg: AvgPool2d,
}

impl ConvNet {
    pub fn new(
        input: [usize; 3],
        plan: &[ConvStep],
        batch_norm: bool,
        hidden: &[usize],
        classes: usize,
        device: &Device,
    ) -> Self {
        let [mut c, mut h, mut w] = input;
        let mut convs = Vec::new();
        let mut norms = Vec::new();
        for step in plan {
            convs.push(
                Conv2dConfig::new([c, step.channels], [3, 3])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .with_bias(!batch_norm)
                    .with_initializer(Initializer::Zeros)
                    .init(device),
            );
            if batch_norm {
                norms.push(BatchNormConfig::new(step.channels).init(device));
            }
            c = step.channels;
            if step.pool != Pool::None {
                h /= 2;
                w /= 2;
            }
        }
        let widths: Vec<usize> = std::iter::once(c * h * w)
            .chain(hidden.iter().copied())
            .chain([classes])
            .collect();
        let fcs = widths
            .windows(2)
            .map(|p| {
                LinearConfig::new(p[0], p[1])
                    .with_initializer(Initializer::Zeros)
                    .init(device)
            })
            .collect();
        ConvNet {
            convs,
            norms,
            fcs,
            pools: plan.iter().map(|s| s.pool).collect(),
            max: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            avg: AvgPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
        }
    }

    /// The pooling after each convolution.
    pub fn pools(&self) -> &[Pool] {
        &self.pools
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward_with(x, &SparseLayers::default())
    }

    fn forward_with(&self, x: Tensor<4>, sparse: &SparseLayers) -> Tensor<2> {
        let mut x = x;
        for (i, conv) in self.convs.iter().enumerate() {
            x = conv2d(conv, x);
            x = match self.norms.get(i) {
                Some(bn) => batch_norm(bn, x, true),
                None => relu(x),
            };
            x = match self.pools[i] {
                Pool::Max => max_pool2d(&self.max, x),
                Pool::Avg => self.avg.forward(x),
                Pool::None => x,
            };
        }
        let x: Tensor<2> = x.flatten(1, 3);
        dense_stack(&self.fcs, x, sparse)
    }
}
