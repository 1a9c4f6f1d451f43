//! A pruned network given only as a state dict (PyTorch names and layouts, pruned weights
//! already 0) → what compaction takes, for the architectures a state dict shows by itself (with,
//! for a transformer, its number of heads):
//! - a multilayer perceptron, `Linear` layers with ReLU between them (`fc1…fcN`, `layers.0…`,
//!   or an `nn.Sequential`'s `0, 2, 4…`) — [`mlp`];
//! - the LTH Conv-2/4/6 and VGG given their pools ([`crate::plans`]) — [`conv_net`];
//! - the time-series CNN, `Conv1d` layers (same padding, ReLU) then linear layers — [`cnn1d`];
//! - a vision transformer in timm's names (`patch_embed.proj`, `cls_token`, `pos_embed`,
//!   `blocks.N.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}`, `norm`, `head`) —
//!   [`transformer`].
//!
//! The training library deploys its own networks through these, and the Python package a model
//! trained anywhere, without a training engine.

use lottery_core::tensors::{HostTensor, StateDict};

use crate::compact::{DenseKind, DenseLayer, DenseModel};
use crate::csr::Csr;
use crate::error::Error;
use crate::model::{CompactModel, Layer, LinearLayer, Pool};
use crate::transformer::{BlockLayer, EmbedLayer, Norm, Projection, ReadoutLayer};

/// The MLP in `dict`: its `*.weight` matrices in the order of their names (numbers compared
/// as numbers, so `fc10` follows `fc9`), each with its `*.bias`, ReLU after every layer but
/// the last. `input` is one example's shape (its size must be the first layer's inputs).
pub fn mlp(dict: &StateDict, source: &str, input: [usize; 3]) -> Result<DenseModel, Error> {
    let mut names: Vec<&String> = dict.keys().collect();
    names.sort_by_key(|n| natural_key(n));
    let mut layers = Vec::new();
    let mut inputs = input.iter().product::<usize>();
    let mut weights = names.iter().filter(|n| n.ends_with(".weight")).peekable();
    while let Some(name) = weights.next() {
        let w = &dict[*name];
        let [outputs, fan_in] = w.shape[..] else {
            return Err(Error::invalid(format!(
                "`{name}` has shape {:?}; an MLP holds only [outputs, inputs] weights",
                w.shape
            )));
        };
        if fan_in != inputs {
            return Err(Error::invalid(format!(
                "`{name}` reads {fan_in} inputs, the layer before it writes {inputs}"
            )));
        }
        layers.push(DenseLayer {
            kind: DenseKind::Linear,
            weight: w.data.clone(),
            bias: bias_of(dict, name, outputs)?,
            outputs,
            relu: weights.peek().is_some(),
        });
        inputs = outputs;
    }
    if layers.is_empty() {
        return Err(Error::invalid("the state dict holds no `*.weight` matrix"));
    }
    if let Some(stray) = names
        .iter()
        .find(|n| !n.ends_with(".weight") && !n.ends_with(".bias"))
    {
        return Err(Error::invalid(format!(
            "`{stray}` is neither a weight nor a bias: not an MLP's state dict"
        )));
    }
    Ok(DenseModel {
        source: source.to_string(),
        input,
        layers,
    })
}

/// A plain conv net in `dict`: `conv1…convN` (3×3, padding 1, ReLU, then `pools[i]`), each
/// followed by batch norm `bn1…bnN` when the dict has it (folded into the convolution at its
/// running statistics, with `bn_eps`), then its linear layers `fc1…` as in [`mlp`] — the LTH
/// Conv-2/4/6 and VGG ([`crate::plans`] gives their pools by name).
pub fn conv_net(
    dict: &StateDict,
    pools: &[Pool],
    bn_eps: f64,
    source: &str,
    input: [usize; 3],
) -> Result<DenseModel, Error> {
    let mut layers = Vec::new();
    let [mut channels, mut h, mut w] = input;
    for (i, &pool) in pools.iter().enumerate() {
        let name = format!("conv{}.weight", i + 1);
        let t = dict
            .get(&name)
            .ok_or_else(|| Error::invalid(format!("the state dict has no `{name}`")))?;
        let [outputs, fan_in, 3, 3] = t.shape[..] else {
            return Err(Error::invalid(format!(
                "`{name}` has shape {:?}, not [out, {channels}, 3, 3]",
                t.shape
            )));
        };
        if fan_in != channels {
            return Err(Error::invalid(format!(
                "`{name}` reads {fan_in} channels, the layer before it writes {channels}"
            )));
        }
        let mut weight = t.data.clone();
        // VGG's convolutions have no bias of their own: batch norm supplies the shift.
        let mut bias = bias_of(dict, &name, outputs)?;
        let bn = format!("bn{}", i + 1);
        if dict.contains_key(&format!("{bn}.weight")) {
            fold_batch_norm(dict, &bn, bn_eps, &mut weight, &mut bias)?;
        }
        layers.push(DenseLayer {
            kind: DenseKind::Conv {
                kernel: [3, 3],
                padding: [1, 1],
                pool,
            },
            weight,
            bias,
            outputs,
            relu: true,
        });
        channels = outputs;
        if pool != Pool::None {
            (h, w) = (h / 2, w / 2);
        }
    }
    let fcs: StateDict = (dict.iter())
        .filter(|(n, _)| n.starts_with("fc"))
        .map(|(n, t)| (n.clone(), t.clone()))
        .collect();
    layers.extend(mlp(&fcs, source, [channels, h, w])?.layers);
    Ok(DenseModel {
        source: source.to_string(),
        input,
        layers,
    })
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
) -> Result<(), Error> {
    let get = |part: &str| -> Result<&Vec<f32>, Error> {
        let key = format!("{name}.{part}");
        match dict.get(&key) {
            Some(t) if t.data.len() == bias.len() => Ok(&t.data),
            Some(t) => Err(Error::invalid(format!(
                "`{key}` has {} values for {} channels",
                t.data.len(),
                bias.len()
            ))),
            None => Err(Error::invalid(format!("the state dict has no `{key}`"))),
        }
    };
    let (gamma, beta) = (get("weight")?.clone(), get("bias")?.clone());
    let (mean, var) = (get("running_mean")?.clone(), get("running_var")?.clone());
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

/// The time-series CNN in `dict`: its rank-3 `*.weight`s (`Conv1d`, `[out, in, k]`, odd `k`,
/// padded to keep the length, ReLU after each) in name order, then its linear layers as in
/// [`mlp`]. `input` is `[channels, 1, length]`.
pub fn cnn1d(dict: &StateDict, source: &str, input: [usize; 3]) -> Result<DenseModel, Error> {
    let mut names: Vec<&String> = dict.keys().collect();
    names.sort_by_key(|n| natural_key(n));
    let convs: Vec<&String> = (names.iter())
        .filter(|n| n.ends_with(".weight") && dict[**n].shape.len() == 3)
        .copied()
        .collect();
    if convs.is_empty() {
        return Err(Error::invalid(
            "the state dict holds no Conv1d weight [out, in, k]",
        ));
    }
    let mut layers = Vec::new();
    let mut channels = input[0];
    for name in &convs {
        let w = &dict[*name];
        let [outputs, fan_in, k] = w.shape[..] else {
            unreachable!("rank 3 by the filter above")
        };
        if fan_in != channels || k % 2 == 0 {
            return Err(Error::invalid(format!(
                "`{name}` is {:?}: it must read the {channels} channels before it with an odd kernel",
                w.shape
            )));
        }
        layers.push(DenseLayer {
            kind: DenseKind::Conv {
                kernel: [1, k],
                padding: [0, k / 2],
                pool: Pool::None,
            },
            weight: w.data.clone(),
            bias: bias_of(dict, name, outputs)?,
            outputs,
            relu: true,
        });
        channels = outputs;
    }
    // The linear part reads the flattened `[channels, length]` output.
    let rest: StateDict = (dict.iter())
        .filter(|(n, _)| {
            let layer = n.trim_end_matches(".weight").trim_end_matches(".bias");
            !convs.iter().any(|c| c.trim_end_matches(".weight") == layer)
        })
        .map(|(n, t)| (n.clone(), t.clone()))
        .collect();
    let head = mlp(&rest, source, [channels, 1, input[2]])?;
    layers.extend(head.layers);
    Ok(DenseModel {
        source: source.to_string(),
        input,
        layers,
    })
}

/// A vision transformer in `dict` (timm's names) with `heads` attention heads and layer norms
/// of epsilon `eps`, as compact layers whose matrices hold only the nonzero weights; pass it to
/// [`crate::compact_transformer`] to drop dead MLP units. `input` is one image's shape.
pub fn transformer(
    dict: &StateDict,
    heads: usize,
    eps: f32,
    source: &str,
    input: [usize; 3],
) -> Result<CompactModel, Error> {
    let get = |name: &str| -> Result<&HostTensor, Error> {
        dict.get(name)
            .ok_or_else(|| Error::invalid(format!("the state dict has no `{name}`")))
    };
    let projection = |name: &str| -> Result<Projection, Error> {
        let w = get(&format!("{name}.weight"))?;
        let rows = w.shape.first().copied().unwrap_or(0);
        Ok(Projection {
            weights: Csr::from_dense(rows, w.data.len() / rows.max(1), &w.data)
                .map_err(|e| Error::invalid(format!("{name}: {e}")))?,
            bias: bias_of(dict, &format!("{name}.weight"), rows)?,
        })
    };
    let norm = |name: &str| -> Result<Norm, Error> {
        Ok(Norm {
            gamma: get(&format!("{name}.weight"))?.data.clone(),
            beta: get(&format!("{name}.bias"))?.data.clone(),
            eps,
        })
    };
    let embed = get("patch_embed.proj.weight")?;
    let [_, _, patch, _] = embed.shape[..] else {
        return Err(Error::invalid(format!(
            "`patch_embed.proj.weight` has shape {:?}, not [dim, channels, patch, patch]",
            embed.shape
        )));
    };
    let mut layers = vec![Layer::Embed(EmbedLayer {
        channels: input[0],
        height: input[1],
        width: input[2],
        patch,
        proj: projection("patch_embed.proj")?,
        class_token: get("cls_token")?.data.clone(),
        position: get("pos_embed")?.data.clone(),
    })];
    let depth = (0..)
        .take_while(|i| dict.contains_key(&format!("blocks.{i}.attn.qkv.weight")))
        .count();
    for i in 0..depth {
        let name = |part: &str| format!("blocks.{i}.{part}");
        let fc1 = projection(&name("mlp.fc1"))?;
        layers.push(Layer::Block(Box::new(BlockLayer {
            heads,
            norm1: norm(&name("norm1"))?,
            qkv: projection(&name("attn.qkv"))?,
            proj: projection(&name("attn.proj"))?,
            norm2: norm(&name("norm2"))?,
            hidden_kept: (0..fc1.weights.rows as u32).collect(),
            fc1,
            fc2: projection(&name("mlp.fc2"))?,
        })));
    }
    layers.push(Layer::Readout(ReadoutLayer {
        norm: norm("norm")?,
    }));
    let head = projection("head")?;
    layers.push(Layer::Linear(LinearLayer {
        gather: None,
        kept: (0..head.weights.rows as u32).collect(),
        weights: head.weights,
        bias: head.bias,
        relu: false,
    }));
    let model = CompactModel {
        source: source.to_string(),
        input,
        layers,
    };
    model.check()?;
    Ok(model)
}

/// The bias beside `weight` (`x.weight` → `x.bias`), zeros when there is none.
fn bias_of(dict: &StateDict, weight: &str, outputs: usize) -> Result<Vec<f32>, Error> {
    let name = format!("{}.bias", weight.trim_end_matches(".weight"));
    match dict.get(&name) {
        None => Ok(vec![0.0; outputs]),
        Some(b) if b.shape == [outputs] => Ok(b.data.clone()),
        Some(b) => Err(Error::invalid(format!(
            "`{name}` has shape {:?}, not [{outputs}]",
            b.shape
        ))),
    }
}

/// A name split into text and numbers, so that numbers sort by value.
fn natural_key(name: &str) -> Vec<(String, u64)> {
    let mut key = Vec::new();
    let mut text = String::new();
    let mut digits = String::new();
    for ch in name.chars() {
        if ch.is_ascii_digit() {
            digits.push(ch);
        } else {
            if !digits.is_empty() {
                key.push((
                    std::mem::take(&mut text),
                    digits.parse().unwrap_or(u64::MAX),
                ));
                digits.clear();
            }
            text.push(ch);
        }
    }
    key.push((text, digits.parse().unwrap_or(0)));
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use lottery_core::tensors::HostTensor;

    fn dict(entries: &[(&str, &[usize])]) -> StateDict {
        (entries.iter())
            .map(|(n, s)| {
                let len = s.iter().product();
                (n.to_string(), HostTensor::new(s.to_vec(), vec![0.5; len]))
            })
            .collect()
    }

    #[test]
    fn layers_follow_their_numbers_and_relu_sits_between() {
        let d = dict(&[
            ("net.10.weight", &[2, 3]),
            ("net.10.bias", &[2]),
            ("net.2.weight", &[3, 4]),
            ("net.0.weight", &[4, 6]),
            ("net.0.bias", &[4]),
        ]);
        let m = mlp(&d, "mine", [1, 2, 3]).unwrap();
        let outs: Vec<usize> = m.layers.iter().map(|l| l.outputs).collect();
        assert_eq!(outs, [4, 3, 2]);
        let relu: Vec<bool> = m.layers.iter().map(|l| l.relu).collect();
        assert_eq!(relu, [true, true, false]);
        assert_eq!(m.layers[1].bias, [0.0; 3], "a missing bias is zero");
    }

    #[test]
    fn what_is_not_an_mlp_is_refused_in_words() {
        let e = mlp(&dict(&[("c.weight", &[4, 1, 3, 3])]), "x", [1, 1, 9]).unwrap_err();
        assert!(e.to_string().contains("[outputs, inputs]"), "{e}");
        let e = mlp(&dict(&[("a.weight", &[4, 5])]), "x", [1, 1, 6]).unwrap_err();
        assert!(e.to_string().contains("reads 5 inputs"), "{e}");
        let d = dict(&[("a.weight", &[4, 6]), ("bn.running_mean", &[4])]);
        let e = mlp(&d, "x", [1, 1, 6]).unwrap_err();
        assert!(e.to_string().contains("bn.running_mean"), "{e}");
    }
}
