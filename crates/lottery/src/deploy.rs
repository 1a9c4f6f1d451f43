//! From a trained, masked network to the deployable form of `lottery-sparse`: the bridge between
//! the training stack and the crate that ships without it.

use lottery_sparse::{CompactModel, DenseModel, LayerReport};

use crate::error::{Error, Result};
use crate::masks::MaskSet;
use crate::models::Network;
use crate::models::vit;

/// The network's layers as plain arrays with `mask` applied (pruned weights become exactly 0),
/// through [`lottery_sparse::dict`]. Supported: MLPs, the LTH Conv-2/4/6 nets and VGG, whose
/// batch norm (at its running statistics, as in evaluation) is folded into the convolution
/// before it, and the time-series `cnn1d` (its `Conv1d`s as `1 × k` convolutions). Residual
/// blocks (ResNet) do not fit a plain layer chain yet, and are refused by name.
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
    let model = match net {
        Network::Mlp(_) => lottery_sparse::dict::mlp(&dict, source, input),
        Network::Conv(c) => {
            let eps = c.norms.first().map_or(1e-5, |bn| bn.epsilon);
            lottery_sparse::dict::conv_net(&dict, c.pools(), eps, source, input)
        }
        Network::Cnn1d(_) => lottery_sparse::dict::cnn1d(&dict, source, input),
        _ => {
            return Err(Error::config(
                "model",
                format!(
                    "`{source}` cannot be compacted: not a chain of linear and convolution layers \
                     (supported: MLPs, conv2/4/6, VGG, cnn1d and vision transformers)"
                ),
            ));
        }
    };
    model.map_err(|e| Error::config("model", e.to_string()))
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
