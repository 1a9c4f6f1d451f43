//! `vit_tiny` (and `vit_DxWhH`): a small vision transformer for the users' question whether
//! tickets exist in networks with attention. Square patches (7×7 on MNIST's 28×28: 16 tokens, or
//! 4×4 on 32×32 images) embedded by a strided convolution, a class token, learned position
//! embeddings, `D` pre-norm blocks (multi-head self-attention, then an MLP of twice the width with
//! GELU), a final LayerNorm and a linear head on the class token. Names and layouts are timm's
//! (`patch_embed.proj.weight`, `cls_token`, `pos_embed`, `blocks.0.attn.qkv.weight`,
//! `blocks.0.mlp.fc1.weight`, `norm.weight`, `head.weight`). Magnitude pruning touches the linear
//! weights (qkv, attention output, MLP, head); the patch embedding, LayerNorms, the class token,
//! position embeddings and biases only when named.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::{Device, Tensor};

use super::{Classify, Family, Network, unknown_model};
use crate::conv::conv2d;
use crate::error::{Error, Result};
use crate::sparse::SparseLayers;

/// Depth, width and heads of a member.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Dims {
    depth: usize,
    dim: usize,
    heads: usize,
}

/// The layer norms' epsilon (timm's ViTs use 1e-6).
pub const NORM_EPS: f64 = 1e-6;

pub struct VitFamily;

impl VitFamily {
    fn parse(name: &str) -> Option<Result<Dims>> {
        if name == "vit_tiny" {
            return Some(Ok(Dims {
                depth: 2,
                dim: 64,
                heads: 4,
            }));
        }
        let rest = name.strip_prefix("vit_")?;
        let dims = (|| {
            let (depth, rest) = rest.split_once('x')?;
            let (dim, heads) = rest.split_once('h')?;
            let d = Dims {
                depth: depth.parse().ok()?,
                dim: dim.parse().ok()?,
                heads: heads.parse().ok()?,
            };
            (d.depth > 0 && d.heads > 0 && d.dim > 0 && d.dim.is_multiple_of(d.heads)).then_some(d)
        })();
        Some(dims.ok_or_else(|| unknown_model(name)))
    }
}

impl Family for VitFamily {
    fn names(&self) -> &'static str {
        "vit_tiny, vit_DxWhH (D blocks of width W with H heads)"
    }
    fn check(&self, name: &str) -> Option<Result<()>> {
        Some(Self::parse(name)?.map(|_| ()))
    }
    fn build(
        &self,
        name: &str,
        input: [usize; 3],
        classes: usize,
        device: &Device,
    ) -> Result<Network> {
        let dims = Self::parse(name).unwrap_or_else(|| Err(unknown_model(name)))?;
        let [c, h, w] = input;
        let patch = [7, 4]
            .into_iter()
            .find(|p| h % p == 0 && w % p == 0)
            .ok_or_else(|| {
                Error::config(
                    "model",
                    format!(
                        "{name} cuts images into 7×7 or 4×4 patches; {h}×{w} divides into neither"
                    ),
                )
            })?;
        let tokens = (h / patch) * (w / patch);
        Ok(Network::Vit(Vit::new(
            c, patch, tokens, dims, classes, device,
        )))
    }
    fn default_input(&self) -> [usize; 3] {
        [1, 28, 28]
    }
}

#[derive(Module, Debug)]
pub struct PatchEmbed {
    pub proj: Conv2d,
}

#[derive(Module, Debug)]
pub struct Attention {
    pub qkv: Linear,
    pub proj: Linear,
    pub heads: usize,
}

#[derive(Module, Debug)]
pub struct VitMlp {
    pub fc1: Linear,
    pub fc2: Linear,
}

#[derive(Module, Debug)]
pub struct VitBlock {
    pub norm1: LayerNorm,
    pub attn: Attention,
    pub norm2: LayerNorm,
    pub mlp: VitMlp,
}

#[derive(Module, Debug)]
pub struct Vit {
    pub patch_embed: PatchEmbed,
    pub cls_token: Param<Tensor<3>>,
    pub pos_embed: Param<Tensor<3>>,
    pub blocks: Vec<VitBlock>,
    pub norm: LayerNorm,
    pub head: Linear,
}

fn linear(i: usize, o: usize, device: &Device) -> Linear {
    LinearConfig::new(i, o)
        .with_initializer(Initializer::Zeros)
        .init(device)
}

/// timm's position-embedding and class-token initialisation: N(0, 0.02²), drawn here from a
/// fixed stream so the network stays a function of its seed (`init::initialise` draws weights).
fn small_normal(shape: [usize; 3], purpose: &str, device: &Device) -> Param<Tensor<3>> {
    let mut rng = crate::rng::Rng::derive(0x5eed_7075, purpose);
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|_| (0.02 * rng.normal()) as f32).collect();
    Param::from_tensor(Tensor::from_data(
        burn::tensor::TensorData::new(values, shape),
        device,
    ))
}

impl Vit {
    fn new(
        c: usize,
        patch: usize,
        tokens: usize,
        d: Dims,
        classes: usize,
        device: &Device,
    ) -> Self {
        let dim = d.dim;
        let norm = || {
            LayerNormConfig::new(dim)
                .with_epsilon(NORM_EPS)
                .init(device)
        };
        let blocks = (0..d.depth)
            .map(|_| VitBlock {
                norm1: norm(),
                attn: Attention {
                    qkv: linear(dim, 3 * dim, device),
                    proj: linear(dim, dim, device),
                    heads: d.heads,
                },
                norm2: norm(),
                mlp: VitMlp {
                    fc1: linear(dim, 2 * dim, device),
                    fc2: linear(2 * dim, dim, device),
                },
            })
            .collect();
        Vit {
            patch_embed: PatchEmbed {
                proj: Conv2dConfig::new([c, dim], [patch, patch])
                    .with_stride([patch, patch])
                    .with_initializer(Initializer::Zeros)
                    .init(device),
            },
            cls_token: small_normal([1, 1, dim], "vit cls_token", device),
            pos_embed: small_normal([1, tokens + 1, dim], "vit pos_embed", device),
            blocks,
            norm: norm(),
            head: linear(dim, classes, device),
        }
    }
}

/// A linear layer on every token of `x [batch, tokens, in]`, through `sparse` when it holds
/// the layer.
fn tokens_linear(l: &Linear, x: Tensor<3>, sparse: &SparseLayers) -> Tensor<3> {
    let [b, n, d] = x.dims();
    let y = sparse.linear(l, x.reshape([b * n, d]), false);
    let out = y.dims()[1];
    y.reshape([b, n, out])
}

impl Attention {
    fn forward(&self, x: Tensor<3>, sparse: &SparseLayers) -> Tensor<3> {
        let [b, n, d] = x.dims();
        let (h, hd) = (self.heads, d / self.heads);
        // [b, n, 3d] → [3, b, h, n, hd]: queries, keys and values per head.
        let qkv = tokens_linear(&self.qkv, x, sparse)
            .reshape([b, n, 3, h, hd])
            .permute([2, 0, 3, 1, 4]);
        let part = |i: usize| qkv.clone().narrow(0, i, 1).squeeze_dim::<4>(0);
        let (q, k, v) = (part(0), part(1), part(2));
        let scores = q
            .matmul(k.swap_dims(2, 3))
            .mul_scalar(1.0 / (hd as f64).sqrt());
        let out = softmax(scores, 3)
            .matmul(v)
            .swap_dims(1, 2)
            .reshape([b, n, d]);
        tokens_linear(&self.proj, out, sparse)
    }
}

impl VitBlock {
    /// Pre-norm residual block: attention, then the MLP, each added to the residual stream.
    fn forward(&self, x: Tensor<3>, sparse: &SparseLayers) -> Tensor<3> {
        let x = x.clone() + self.attn.forward(self.norm1.forward(x), sparse);
        let hidden = gelu(tokens_linear(
            &self.mlp.fc1,
            self.norm2.forward(x.clone()),
            sparse,
        ));
        x + tokens_linear(&self.mlp.fc2, hidden, sparse)
    }
}

impl Classify for Vit {
    fn classify(&self, x: Tensor<4>, sparse: &SparseLayers) -> Tensor<2> {
        let b = x.dims()[0];
        let p = conv2d(&self.patch_embed.proj, x); // [b, dim, gh, gw]
        let [_, dim, gh, gw] = p.dims();
        let patches = p.reshape([b, dim, gh * gw]).swap_dims(1, 2);
        let cls = self.cls_token.val().expand([b, 1, dim]);
        let x = Tensor::cat(vec![cls, patches], 1) + self.pos_embed.val();
        let x = self.blocks.iter().fold(x, |x, blk| blk.forward(x, sparse));
        let cls_out = self.norm.forward(x).narrow(1, 0, 1).reshape([b, dim]);
        sparse.linear(&self.head, cls_out, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::Architecture;

    /// One attention layer against the definition, computed on the host from its state dict:
    /// timm's qkv layout (`[3·dim, dim]`, queries then keys then values, heads contiguous
    /// within each), softmax(q kᵀ / √hd) v per head, then the output projection.
    #[test]
    fn attention_follows_its_definition() {
        use crate::models::init::{InitScheme, initialise};
        let device = Device::flex();
        let Network::Vit(vit) = initialise(
            Architecture::parse("vit_1x4h2")
                .unwrap()
                .build([1, 8, 8], 2, &device)
                .unwrap(),
            InitScheme::GlorotNormal,
            3,
        ) else {
            unreachable!("a vit")
        };
        let attn = &vit.blocks[0].attn;
        let (n, d, h) = (3usize, 4usize, 2usize);
        let hd = d / h;
        let mut rng = crate::rng::Rng::new(9);
        let xs: Vec<f32> = (0..n * d).map(|_| rng.normal() as f32).collect();
        let x = Tensor::<3>::from_data(
            burn::tensor::TensorData::new(xs.clone(), [1, n, d]),
            &device,
        );
        let got = attn
            .forward(x, &SparseLayers::default())
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();

        let host = |t: Tensor<2>| t.into_data().try_into_vec::<f32>().unwrap();
        let lin = |l: &Linear, v: &[f32]| -> Vec<f32> {
            // burn's weight is [in, out].
            let [i, o] = l.weight.dims();
            let (w, b) = (
                host(l.weight.val()),
                host(l.bias.as_ref().unwrap().val().unsqueeze()),
            );
            (0..o)
                .map(|k| b[k] + (0..i).map(|j| v[j] * w[j * o + k]).sum::<f32>())
                .collect()
        };
        let qkv: Vec<Vec<f32>> = (0..n)
            .map(|t| lin(&attn.qkv, &xs[t * d..(t + 1) * d]))
            .collect();
        let mut heads_out = vec![vec![0.0f32; d]; n];
        for head in 0..h {
            let at = |t: usize, which: usize, k: usize| qkv[t][which * d + head * hd + k];
            for t in 0..n {
                let scores: Vec<f32> = (0..n)
                    .map(|u| {
                        (0..hd).map(|k| at(t, 0, k) * at(u, 1, k)).sum::<f32>() / (hd as f32).sqrt()
                    })
                    .collect();
                let max = scores.iter().copied().fold(f32::MIN, f32::max);
                let e: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
                let z: f32 = e.iter().sum();
                for k in 0..hd {
                    heads_out[t][head * hd + k] = (0..n).map(|u| e[u] / z * at(u, 2, k)).sum();
                }
            }
        }
        let want: Vec<f32> = heads_out.iter().flat_map(|o| lin(&attn.proj, o)).collect();
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
                "attention[{i}]: {g} vs {w}"
            );
        }
    }

    #[test]
    fn names_shapes_and_what_is_pruned() {
        let device = Device::flex();
        let net = Architecture::parse("vit_tiny")
            .unwrap()
            .build([1, 28, 28], 10, &device)
            .unwrap();
        let dict = net.state_dict();
        let shape = |n: &str| dict[n].shape.clone();
        assert_eq!(shape("patch_embed.proj.weight"), [64, 1, 7, 7]);
        assert_eq!(shape("cls_token"), [1, 1, 64]);
        assert_eq!(shape("pos_embed"), [1, 17, 64]);
        assert_eq!(shape("blocks.0.attn.qkv.weight"), [192, 64]);
        assert_eq!(shape("blocks.1.attn.proj.weight"), [64, 64]);
        assert_eq!(shape("blocks.0.mlp.fc1.weight"), [128, 64]);
        assert_eq!(shape("blocks.0.mlp.fc2.weight"), [64, 128]);
        assert_eq!(shape("blocks.0.norm1.weight"), [64]);
        assert_eq!(shape("norm.bias"), [64]);
        assert_eq!(shape("head.weight"), [10, 64]);
        let prunable = net.prunable();
        assert_eq!(prunable.len(), 2 * 4 + 1, "{prunable:?}");
        assert!(
            !prunable
                .iter()
                .any(|n| n.contains("embed") || n.contains("norm"))
        );
        let x = Tensor::<4>::zeros([3, 1, 28, 28], &device);
        assert_eq!(net.forward(x).dims(), [3, 10]);
        let cifar = Architecture::parse("vit_1x32h2")
            .unwrap()
            .build([3, 32, 32], 10, &device);
        assert_eq!(cifar.unwrap().state_dict()["pos_embed"].shape, [1, 65, 32]);
        for bad in ["vit_2x63h4", "vit_0x64h4", "vit_2x64", "vit_small"] {
            assert!(Architecture::parse(bad).is_err(), "{bad}");
        }
        let e = Architecture::parse("vit_tiny")
            .unwrap()
            .build([1, 30, 30], 10, &device)
            .unwrap_err();
        assert!(e.to_string().contains("divides into neither"), "{e}");
    }

    #[test]
    fn gradients_match_finite_differences() {
        use crate::data::Targets;
        use crate::data::targets::Batch;
        use crate::models::init::{InitScheme, initialise};
        use burn::module::Module;
        use burn::optim::GradientsParams;

        let device = Device::flex().autodiff();
        let net = initialise(
            Architecture::parse("vit_1x4h2")
                .unwrap()
                .build([1, 8, 8], 3, &device)
                .unwrap(),
            InitScheme::GlorotNormal,
            7,
        );
        let mut rng = crate::rng::Rng::new(12);
        let xs: Vec<f32> = (0..3 * 64).map(|_| rng.normal() as f32).collect();
        let x = Tensor::<4>::from_data(burn::tensor::TensorData::new(xs, [3, 1, 8, 8]), &device);
        let targets = Targets::Classes {
            labels: vec![0, 2, 1],
            classes: 3,
        };
        let mut batch = Batch::default();
        (0..3).for_each(|i| batch.push(&targets, i));
        let loss = batch.loss(net.forward(x.clone()), &device);
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        let (dict, ids, valid) = (net.state_dict(), net.param_ids(), net.valid());
        let loss_of = |d: &crate::tensors::StateDict| -> f64 {
            let net = valid.clone().load_state_dict(d).unwrap();
            let out = net.forward(x.clone().inner());
            targets
                .score(&out.into_data().try_into_vec::<f32>().unwrap())
                .0
        };
        // The gradient in PyTorch's order: burn keeps a linear weight as [in, out].
        let analytic = |name: &str, k: usize| -> f64 {
            let id = ids[name];
            let shape = &dict[name].shape;
            let data = match shape.len() {
                4 => grads.get::<4>(id).unwrap().into_data(),
                3 => grads.get::<3>(id).unwrap().into_data(),
                2 => grads.get::<2>(id).unwrap().into_data(),
                _ => grads.get::<1>(id).unwrap().into_data(),
            };
            let g = data.try_into_vec::<f32>().unwrap();
            let at = match shape[..] {
                [out, inputs] => (k % inputs) * out + k / inputs,
                _ => k,
            };
            g[at] as f64
        };
        for name in [
            "patch_embed.proj.weight",
            "cls_token",
            "pos_embed",
            "blocks.0.norm1.weight",
            "blocks.0.attn.qkv.weight",
            "blocks.0.attn.qkv.bias",
            "blocks.0.attn.proj.weight",
            "blocks.0.mlp.fc1.weight",
            "blocks.0.mlp.fc2.weight",
            "norm.bias",
            "head.weight",
        ] {
            let n = dict[name].data.len();
            for k in [0, n / 3, n - 1] {
                let eps = 1e-3f32;
                let at = |delta: f32| {
                    let mut d = dict.clone();
                    d.get_mut(name).unwrap().data[k] += delta;
                    loss_of(&d)
                };
                let numeric = (at(eps) - at(-eps)) / (2.0 * eps as f64);
                let analytic = analytic(name, k);
                assert!(
                    (numeric - analytic).abs() <= 2e-3 + 2e-2 * analytic.abs(),
                    "{name}[{k}]: finite differences {numeric}, gradient {analytic}"
                );
            }
        }
    }
}
