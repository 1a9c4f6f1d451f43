//! CIFAR ResNets (He et al. 2016, §4.2): depth 6n+2, three stages of n basic blocks with
//! 16/32/64 channels, a projection shortcut where the shape changes, global average pooling.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use super::{Classify, Family, Network, unknown_model};
use crate::conv::{batch_norm, conv2d};
use crate::error::Result;
use crate::sparse::SparseLayers;

/// `resnet20` and any `resnet_D` with D = 6n+2.
pub struct ResNetFamily;

impl ResNetFamily {
    fn depth(name: &str) -> Option<Result<usize>> {
        let d = name
            .strip_prefix("resnet_")
            .or(name.strip_prefix("resnet"))?;
        Some(
            d.parse::<usize>()
                .ok()
                .filter(|&d| d >= 8 && (d - 2) % 6 == 0)
                .ok_or_else(|| unknown_model(name)),
        )
    }
}

impl Family for ResNetFamily {
    fn names(&self) -> &'static str {
        "resnet20, resnet_D (D = 6n+2)"
    }
    fn check(&self, name: &str) -> Option<Result<()>> {
        Some(Self::depth(name)?.map(|_| ()))
    }
    fn build(
        &self,
        name: &str,
        input: [usize; 3],
        classes: usize,
        device: &Device,
    ) -> Result<Network> {
        let depth = Self::depth(name).unwrap_or_else(|| Err(unknown_model(name)))?;
        let net =
            ResNet::new(depth, input[0], classes, device).ok_or_else(|| unknown_model(name))?;
        Ok(Network::ResNet(net))
    }
}

impl Classify for ResNet {
    fn classify(&self, x: Tensor<4>, sparse: &SparseLayers) -> Tensor<2> {
        self.forward_with(x, sparse)
    }
}

fn conv(cin: usize, cout: usize, k: usize, stride: usize, device: &Device) -> Conv2d {
    let p = k / 2;
    Conv2dConfig::new([cin, cout], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
        .with_bias(false)
        .with_initializer(Initializer::Zeros)
        .init(device)
}

#[derive(Module, Debug)]
pub struct Shortcut {
    pub conv: Conv2d,
    pub bn: BatchNorm,
}

#[derive(Module, Debug)]
pub struct Block {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub conv2: Conv2d,
    pub bn2: BatchNorm,
    pub shortcut: Option<Shortcut>,
}

impl Block {
    fn new(cin: usize, cout: usize, stride: usize, device: &Device) -> Self {
        let shortcut = (stride != 1 || cin != cout).then(|| Shortcut {
            conv: conv(cin, cout, 1, stride, device),
            bn: BatchNormConfig::new(cout).init(device),
        });
        Block {
            conv1: conv(cin, cout, 3, stride, device),
            bn1: BatchNormConfig::new(cout).init(device),
            conv2: conv(cout, cout, 3, 1, device),
            bn2: BatchNormConfig::new(cout).init(device),
            shortcut,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = batch_norm(&self.bn1, conv2d(&self.conv1, x.clone()), true);
        let y = batch_norm(&self.bn2, conv2d(&self.conv2, y), false);
        let s = match &self.shortcut {
            Some(sc) => batch_norm(&sc.bn, conv2d(&sc.conv, x), false),
            None => x,
        };
        relu(y + s)
    }
}

#[derive(Module, Debug)]
pub struct ResNet {
    pub conv: Conv2d,
    pub bn: BatchNorm,
    pub blocks: Vec<Block>,
    pub fc: Linear,
}

impl ResNet {
    /// `depth` must be 6n+2 (20, 32, 44, 56, 110…).
    pub fn new(depth: usize, in_channels: usize, classes: usize, device: &Device) -> Option<Self> {
        if depth < 8 || !(depth - 2).is_multiple_of(6) {
            return None;
        }
        let n = (depth - 2) / 6;
        let mut blocks = Vec::new();
        let mut cin = 16;
        for (stage, cout) in [16, 32, 64].into_iter().enumerate() {
            for i in 0..n {
                let stride = if stage > 0 && i == 0 { 2 } else { 1 };
                blocks.push(Block::new(cin, cout, stride, device));
                cin = cout;
            }
        }
        Some(ResNet {
            conv: conv(in_channels, 16, 3, 1, device),
            bn: BatchNormConfig::new(16).init(device),
            blocks,
            fc: LinearConfig::new(64, classes)
                .with_initializer(Initializer::Zeros)
                .init(device),
        })
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward_with(x, &SparseLayers::default())
    }

    fn forward_with(&self, x: Tensor<4>, sparse: &SparseLayers) -> Tensor<2> {
        let x = batch_norm(&self.bn, conv2d(&self.conv, x), true);
        let x = self.blocks.iter().fold(x, |x, b| b.forward(x));
        // Global average pool over H×W.
        let x: Tensor<2> = x.mean_dim(3).mean_dim(2).flatten(1, 3);
        sparse.linear(&self.fc, x, false)
    }
}
