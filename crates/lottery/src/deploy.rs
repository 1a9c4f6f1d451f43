//! From a trained, masked network to the deployable form of `lottery-sparse`: the bridge between
//! the training stack and the crate that ships without it.

use lottery_sparse::{
    CompactModel, DenseKind, DenseLayer, DenseModel, LayerReport, Pool as SparsePool,
};

use crate::error::{Error, Result};
use crate::masks::MaskSet;
use crate::models::Network;
use crate::models::convnet::Pool;
use crate::models::vit;
use crate::tensors::StateDict;

/// The network's layers as plain arrays with `mask` applied (pruned weights become exactly 0).
/// Supported: MLPs, the LTH Conv-2/4/6 nets and VGG, whose batch norm (at its running
/// statistics, as in evaluation) is folded into the convolution before it, and the time-series
/// `cnn1d` (its `Conv1d`s as `1 × k` convolutions). Residual blocks (ResNet) do not fit a plain
/// layer chain yet, and are refused by name.
pub fn dense_model(
    net: &Network,
    mask: Option<&MaskSet>,
    source: &str,
    input: [usize; 3],
) -> Result<DenseModel> {
    let mut dict = net.state_dict();
    if let Some(m) = mask {
        m.apply(&mut dict);
    }
    let unsupported = |why: &str| {
        Error::config(
            "model",
            format!(
                "`{source}` cannot be compacted: {why} (supported: MLPs, conv2/4/6, VGG and cnn1d)"
            ),
        )
    };
    let mut layers = Vec::new();
    match net {
        Network::Mlp(_) => {
            return lottery_sparse::dict::mlp(&dict, source, input)
                .map_err(|e| Error::config("model", e.to_string()));
        }
        Network::Conv(c) => {
            for (i, pool) in c.pools().iter().enumerate() {
                let name = format!("conv{}", i + 1);
                let w = tensor(&dict, &format!("{name}.weight"))?;
                let mut weight = w.data.clone();
                // VGG's convolutions have no bias of their own: batch norm supplies the shift.
                let mut bias = dict
                    .get(&format!("{name}.bias"))
                    .map_or_else(|| vec![0.0; w.shape[0]], |b| b.data.clone());
                if let Some(bn) = c.norms.get(i) {
                    let bn_name = format!("bn{}", i + 1);
                    fold_batch_norm(&dict, &bn_name, bn.epsilon, &mut weight, &mut bias)?;
                }
                layers.push(DenseLayer {
                    kind: DenseKind::Conv {
                        kernel: [w.shape[2], w.shape[3]],
                        padding: [1, 1],
                        pool: match pool {
                            Pool::None => SparsePool::None,
                            Pool::Max => SparsePool::Max,
                            Pool::Avg => SparsePool::Avg,
                        },
                    },
                    outputs: w.shape[0],
                    weight,
                    bias,
                    relu: true,
                });
            }
            let n = c.fcs.len();
            for i in 0..n {
                layers.push(linear(&dict, &format!("fc{}", i + 1), i + 1 < n)?);
            }
        }
        Network::Cnn1d(_) => {
            return lottery_sparse::dict::cnn1d(&dict, source, input)
                .map_err(|e| Error::config("model", e.to_string()));
        }
        _ => return Err(unsupported("not a chain of linear and convolution layers")),
    }
    Ok(DenseModel {
        source: source.to_string(),
        input,
        layers,
    })
}

fn tensor<'a>(dict: &'a StateDict, name: &str) -> Result<&'a crate::tensors::HostTensor> {
    dict.get(name)
        .ok_or_else(|| Error::config("model", format!("the network has no tensor `{name}`")))
}

/// Folds an evaluation-mode batch norm into the convolution before it: per output channel o,
/// `γ (conv(x) + b − μ) / √(σ² + ε) + β` is a convolution with weights scaled by
/// `s = γ / √(σ² + ε)` and bias `(b − μ) s + β`. Scaling keeps pruned weights at zero.
fn fold_batch_norm(
    dict: &StateDict,
    name: &str,
    epsilon: f64,
    weight: &mut [f32],
    bias: &mut [f32],
) -> Result<()> {
    let get = |part: &str| tensor(dict, &format!("{name}.{part}")).map(|t| &t.data);
    let (gamma, beta) = (get("weight")?, get("bias")?);
    let (mean, var) = (get("running_mean")?, get("running_var")?);
    let per_channel = weight.len() / bias.len().max(1);
    for (o, b) in bias.iter_mut().enumerate() {
        let scale = gamma[o] as f64 / (var[o] as f64 + epsilon).sqrt();
        for w in &mut weight[o * per_channel..(o + 1) * per_channel] {
            *w = (*w as f64 * scale) as f32;
        }
        *b = ((*b as f64 - mean[o] as f64) * scale + beta[o] as f64) as f32;
    }
    Ok(())
}

fn linear(dict: &StateDict, name: &str, relu: bool) -> Result<DenseLayer> {
    let w = tensor(dict, &format!("{name}.weight"))?;
    Ok(DenseLayer {
        kind: DenseKind::Linear,
        outputs: w.shape[0],
        weight: w.data.clone(),
        bias: tensor(dict, &format!("{name}.bias"))?.data.clone(),
        relu,
    })
}

/// Compacts a masked network: [`dense_model`] then [`lottery_sparse::compact`]; a vision
/// transformer through [`transformer`] and [`lottery_sparse::compact_transformer`].
pub fn compact(
    net: &Network,
    mask: Option<&MaskSet>,
    source: &str,
    input: [usize; 3],
) -> Result<(CompactModel, Vec<LayerReport>)> {
    let invalid = |e: lottery_sparse::Error| Error::config("model", e.to_string());
    if let Network::Vit(_) = net {
        let model = transformer(net, mask, source, input)?;
        return lottery_sparse::compact_transformer(model).map_err(invalid);
    }
    let dense = dense_model(net, mask, source, input)?;
    lottery_sparse::compact(&dense).map_err(invalid)
}

/// A vision transformer with `mask` applied, as `lottery-sparse`'s layers: the patch
/// embedding, the blocks, the class token's read-out and the head, every matrix holding only
/// its live weights ([`lottery_sparse::dict::transformer`] on its state dict).
pub fn transformer(
    net: &Network,
    mask: Option<&MaskSet>,
    source: &str,
    input: [usize; 3],
) -> Result<CompactModel> {
    let Network::Vit(vit) = net else {
        return Err(Error::config(
            "model",
            format!("`{source}` is not a vision transformer"),
        ));
    };
    let mut dict = net.state_dict();
    if let Some(m) = mask {
        m.apply(&mut dict);
    }
    let heads = vit.blocks.first().map_or(1, |b| b.attn.heads);
    lottery_sparse::dict::transformer(&dict, heads, vit::NORM_EPS as f32, source, input)
        .map_err(|e| Error::config("model", e.to_string()))
}
