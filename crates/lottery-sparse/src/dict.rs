//! A pruned network given only as a state dict (PyTorch names and layouts, pruned weights
//! already 0) → the plain layer chain compaction takes, for the architectures a state dict
//! shows by itself: a multilayer perceptron, `Linear` layers with ReLU between them (`fc1…fcN`,
//! `layers.0…`, or an `nn.Sequential`'s `0, 2, 4…`). This is how a model trained anywhere —
//! PyTorch, through the Python package — becomes a compact one without a training engine.

use lottery_core::tensors::StateDict;

use crate::compact::{DenseKind, DenseLayer, DenseModel};
use crate::error::Error;

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
        let bias_name = format!("{}.bias", name.trim_end_matches(".weight"));
        let bias = match dict.get(&bias_name) {
            Some(b) if b.shape == [outputs] => b.data.clone(),
            Some(b) => {
                return Err(Error::invalid(format!(
                    "`{bias_name}` has shape {:?}, not [{outputs}]",
                    b.shape
                )));
            }
            None => vec![0.0; outputs],
        };
        layers.push(DenseLayer {
            kind: DenseKind::Linear,
            weight: w.data.clone(),
            bias,
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
