//! From a trained, masked network to the deployable form of `lottery-sparse`: the bridge between
//! the training stack and the crate that ships without it.

use lottery_sparse::{CompactModel, DenseKind, DenseLayer, DenseModel, LayerReport};

use crate::error::{Error, Result};
use crate::masks::MaskSet;
use crate::models::Network;
use crate::models::convnet::Pool;
use crate::tensors::StateDict;

/// The network's layers as plain arrays with `mask` applied (pruned weights become exactly 0).
/// Supported: MLPs and the LTH Conv-2/4/6 nets. Batch norm (VGG) and residual blocks (ResNet)
/// do not fit a plain layer chain yet, and are refused by name.
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
            format!("`{source}` cannot be compacted: {why} (supported: MLPs and conv2/4/6)"),
        )
    };
    let mut layers = Vec::new();
    match net {
        Network::Mlp(m) => {
            let n = m.layers.len();
            for i in 0..n {
                layers.push(linear(&dict, &format!("fc{}", i + 1), i + 1 < n)?);
            }
        }
        Network::Conv(c) => {
            if !c.norms.is_empty() {
                return Err(unsupported("its batch norm layers are not folded yet"));
            }
            for (i, pool) in c.pools().iter().enumerate() {
                let max_pool = match pool {
                    Pool::None => false,
                    Pool::Max => true,
                    Pool::Avg => return Err(unsupported("it average-pools")),
                };
                let name = format!("conv{}", i + 1);
                let w = tensor(&dict, &format!("{name}.weight"))?;
                layers.push(DenseLayer {
                    kind: DenseKind::Conv {
                        kernel: w.shape[2],
                        padding: 1,
                        max_pool,
                    },
                    outputs: w.shape[0],
                    weight: w.data.clone(),
                    bias: tensor(&dict, &format!("{name}.bias"))?.data.clone(),
                    relu: true,
                });
            }
            let n = c.fcs.len();
            for i in 0..n {
                layers.push(linear(&dict, &format!("fc{}", i + 1), i + 1 < n)?);
            }
        }
        Network::ResNet(_) => return Err(unsupported("residual blocks are not a layer chain")),
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

/// Compacts a masked network: [`dense_model`] then [`lottery_sparse::compact`].
pub fn compact(
    net: &Network,
    mask: Option<&MaskSet>,
    source: &str,
    input: [usize; 3],
) -> Result<(CompactModel, Vec<LayerReport>)> {
    let dense = dense_model(net, mask, source, input)?;
    lottery_sparse::compact(&dense).map_err(|m| Error::config("model", m))
}
