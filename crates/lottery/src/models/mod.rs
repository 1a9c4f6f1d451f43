//! The model registry: architectures by name, PyTorch-style parameter names, and which
//! tensors are prunable.

pub mod convnet;
pub mod init;
pub mod mlp;
pub mod resnet;

use std::collections::BTreeMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::tensors::{HostTensor, StateDict};
use convnet::{ConvNet, lth_conv_plan, vgg_plan};
use mlp::Mlp;
use resnet::ResNet;

/// Every architecture the registry can build. One enum, so a training loop, a checkpoint and
/// a pruning strategy need not know which one they hold.
#[derive(Module, Debug)]
pub enum Network {
    Mlp(Mlp),
    Conv(ConvNet),
    ResNet(ResNet),
}

/// Names the registry accepts, for help texts and error messages.
pub const KNOWN: &str = "lenet_300_100, mlp_N1_N2_…, conv2, conv4, conv6, vgg11, vgg13, vgg16, vgg19, resnet20, resnet_D (D = 6n+2)";

/// A model name resolved into its architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Architecture {
    Mlp { hidden: Vec<usize> },
    LthConv { pairs: usize },
    Vgg { depth: usize },
    ResNet { depth: usize },
}

impl Architecture {
    pub fn parse(name: &str) -> Result<Self> {
        let unknown = || Error::UnknownModel {
            name: name.to_string(),
            known: KNOWN.to_string(),
        };
        let arch = match name {
            "lenet_300_100" | "lenet" => Architecture::Mlp {
                hidden: vec![300, 100],
            },
            "conv2" => Architecture::LthConv { pairs: 1 },
            "conv4" => Architecture::LthConv { pairs: 2 },
            "conv6" => Architecture::LthConv { pairs: 3 },
            _ => {
                if let Some(rest) = name.strip_prefix("mlp_") {
                    let hidden: Option<Vec<usize>> = rest
                        .split('_')
                        .map(|w| w.parse().ok().filter(|&w: &usize| w > 0))
                        .collect();
                    Architecture::Mlp {
                        hidden: hidden.ok_or_else(unknown)?,
                    }
                } else if let Some(d) = name.strip_prefix("vgg") {
                    let depth = d.parse().map_err(|_| unknown())?;
                    vgg_plan(depth).ok_or_else(unknown)?;
                    Architecture::Vgg { depth }
                } else if let Some(d) = name.strip_prefix("resnet_").or(name.strip_prefix("resnet"))
                {
                    let depth: usize = d.parse().map_err(|_| unknown())?;
                    if depth < 8 || (depth - 2) % 6 != 0 {
                        return Err(unknown());
                    }
                    Architecture::ResNet { depth }
                } else {
                    return Err(unknown());
                }
            }
        };
        Ok(arch)
    }

    /// Builds the network with all weights zero; `init::initialise` gives them values.
    pub fn build(&self, input: [usize; 3], classes: usize, device: &Device) -> Result<Network> {
        let too_small = |what: &str| {
            Error::config(
                "model",
                format!("{what} needs inputs of at least 32×32, got {input:?}"),
            )
        };
        Ok(match self {
            Architecture::Mlp { hidden } => {
                Network::Mlp(Mlp::new(input.iter().product(), hidden, classes, device))
            }
            Architecture::LthConv { pairs } => {
                if input[1] >> pairs == 0 {
                    return Err(too_small("conv"));
                }
                Network::Conv(ConvNet::new(
                    input,
                    &lth_conv_plan(*pairs),
                    false,
                    &[256, 256],
                    classes,
                    device,
                ))
            }
            Architecture::Vgg { depth } => {
                if input[1] < 32 || input[2] < 32 {
                    return Err(too_small("vgg"));
                }
                let plan = vgg_plan(*depth).expect("depth checked in parse");
                Network::Conv(ConvNet::new(input, &plan, true, &[], classes, device))
            }
            Architecture::ResNet { depth } => Network::ResNet(
                ResNet::new(*depth, input[0], classes, device).expect("depth checked in parse"),
            ),
        })
    }
}

impl Network {
    /// Logits for a batch of images `[batch, channels, height, width]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        match self {
            Network::Mlp(m) => m.forward(x.flatten(1, 3)),
            Network::Conv(m) => m.forward(x),
            Network::ResNet(m) => m.forward(x),
        }
    }

    /// Logits `[example][class]` on every example of `set`, in batches of 1,000 through the
    /// network's own forward. On a model with autodiff, call it on `valid()` to skip the graph.
    pub fn logits(&self, set: &crate::data::Dataset) -> Vec<f32> {
        const BATCH: usize = 1000;
        let device = self.devices().into_iter().next().unwrap_or_default();
        let [c, h, w] = set.shape;
        let per = set.example_len();
        let mut out = Vec::with_capacity(set.len() * set.classes);
        for start in (0..set.len()).step_by(BATCH) {
            let b = (set.len() - start).min(BATCH);
            let x = Tensor::<4>::from_data(
                TensorData::new(
                    set.images[start * per..(start + b) * per].to_vec(),
                    [b, c, h, w],
                ),
                &device,
            );
            out.extend(
                self.forward(x)
                    .into_data()
                    .try_into_vec::<f32>()
                    .expect("f32 logits"),
            );
        }
        out
    }

    /// Every float tensor of the model (parameters and running statistics), in visiting order.
    pub fn tensors(&self) -> Vec<TensorInfo> {
        let mut v = Collect {
            path: Vec::new(),
            out: Vec::new(),
            with_data: false,
        };
        self.visit(&mut v);
        v.out.into_iter().map(|(info, _)| info).collect()
    }

    /// Names of the tensors magnitude pruning may touch: the weights of convolutions and linear
    /// layers. Biases and normalisation parameters are never pruned unless asked for by name.
    pub fn prunable(&self) -> Vec<String> {
        self.tensors()
            .into_iter()
            .filter(|t| t.is_weight())
            .map(|t| t.name)
            .collect()
    }

    /// The final classifier's weight, which the LTH paper prunes at half the hidden rate.
    pub fn output_layer(&self) -> String {
        self.prunable()
            .pop()
            .expect("every architecture ends in a linear layer")
    }

    /// All tensors in PyTorch's names and layouts (linear weights as `[out, in]`).
    pub fn state_dict(&self) -> StateDict {
        let mut v = Collect {
            path: Vec::new(),
            out: Vec::new(),
            with_data: true,
        };
        self.visit(&mut v);
        v.out
            .into_iter()
            .map(|(info, t)| (info.name, t.expect("collected with data")))
            .collect()
    }

    /// Replaces tensors by name from `dict` (PyTorch layouts). Every model tensor must be present
    /// with the right shape; names the model does not have are an error, so a checkpoint of the
    /// wrong architecture cannot load half-way.
    pub fn load_state_dict(self, dict: &StateDict) -> Result<Self> {
        let expected: Vec<TensorInfo> = self.tensors();
        let known: std::collections::BTreeSet<&str> =
            expected.iter().map(|t| t.name.as_str()).collect();
        if let Some(extra) = dict.keys().find(|k| !known.contains(k.as_str())) {
            return Err(Error::StateDict(format!(
                "has tensor `{extra}`, which this model does not (it has {})",
                list(&expected)
            )));
        }
        for t in &expected {
            match dict.get(&t.name) {
                None => return Err(Error::StateDict(format!("lacks tensor `{}`", t.name))),
                Some(h) if h.shape != t.torch_shape() => {
                    return Err(Error::StateDict(format!(
                        "tensor `{}` has shape {:?}, the model expects {:?}",
                        t.name,
                        h.shape,
                        t.torch_shape()
                    )));
                }
                Some(h) if h.data.iter().any(|x| !x.is_finite()) => {
                    return Err(Error::StateDict(format!(
                        "tensor `{}` holds NaN or infinite values",
                        t.name
                    )));
                }
                Some(_) => {}
            }
        }
        Ok(self.map(&mut Load {
            path: Vec::new(),
            dict,
        }))
    }

    /// The parameter ids of named tensors, for code that works on gradients.
    pub fn param_ids(&self) -> BTreeMap<String, ParamId> {
        self.tensors().into_iter().map(|t| (t.name, t.id)).collect()
    }
}

fn list(ts: &[TensorInfo]) -> String {
    let names: Vec<&str> = ts.iter().map(|t| t.name.as_str()).collect();
    if names.len() > 8 {
        format!("{}, … {} in all", names[..8].join(", "), names.len())
    } else {
        names.join(", ")
    }
}

/// A model tensor as the rest of the library sees it.
#[derive(Debug, Clone)]
pub struct TensorInfo {
    /// PyTorch-style name: `fc1.weight`, `conv2.bias`, `blocks.3.bn1.running_mean`.
    pub name: String,
    pub id: ParamId,
    /// burn's layout (linear weights `[in, out]`).
    pub shape: Vec<usize>,
}

impl TensorInfo {
    pub fn is_weight(&self) -> bool {
        self.name.ends_with(".weight") && self.shape.len() >= 2
    }

    pub fn torch_shape(&self) -> Vec<usize> {
        torch_shape(&self.shape)
    }
}

/// burn stores a linear weight as `[in, out]`; PyTorch (and our files) as `[out, in]`.
fn torch_shape(burn: &[usize]) -> Vec<usize> {
    if burn.len() == 2 {
        vec![burn[1], burn[0]]
    } else {
        burn.to_vec()
    }
}

/// burn's module path → PyTorch-style name: `layers.0.weight` → `fc1.weight`,
/// `convs.1.weight` → `conv2.weight`, `norms.0.gamma` → `bn1.weight`.
pub fn torch_name(path: &[String]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < path.len() {
        let seg = path[i].as_str();
        let numbered = match seg {
            "layers" | "fcs" => Some("fc"),
            "convs" => Some("conv"),
            "norms" => Some("bn"),
            _ => None,
        };
        match (
            numbered,
            path.get(i + 1).and_then(|n| n.parse::<usize>().ok()),
        ) {
            (Some(prefix), Some(n)) => {
                out.push(format!("{prefix}{}", n + 1));
                i += 2;
            }
            _ => {
                out.push(match seg {
                    "gamma" => "weight".into(),
                    "beta" => "bias".into(),
                    s => s.into(),
                });
                i += 1;
            }
        }
    }
    out.join(".")
}

/// Strips the enum variant burn reports when entering a `Network`.
fn push_path(path: &mut Vec<String>, name: &str, _container: &str) {
    let is_variant = path.is_empty() && ["Mlp", "Conv", "ResNet"].contains(&name);
    path.push(if is_variant {
        String::new()
    } else {
        name.to_string()
    });
}

fn current(path: &[String]) -> Vec<String> {
    path.iter().filter(|s| !s.is_empty()).cloned().collect()
}

struct Collect {
    path: Vec<String>,
    out: Vec<(TensorInfo, Option<HostTensor>)>,
    with_data: bool,
}

impl ModuleVisitor for Collect {
    fn enter_module(&mut self, name: &str, container: &str) {
        push_path(&mut self.path, name, container);
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        let value = p.val();
        let shape: Vec<usize> = value.shape().iter().copied().collect();
        let info = TensorInfo {
            name: torch_name(&current(&self.path)),
            id: p.id,
            shape: shape.clone(),
        };
        let data = self.with_data.then(|| {
            let v = if D == 2 { value.transpose() } else { value };
            let data = v
                .into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .expect("float tensors convert to f32");
            HostTensor {
                shape: torch_shape(&shape),
                data,
            }
        });
        self.out.push((info, data));
    }
}

struct Load<'a> {
    path: Vec<String>,
    dict: &'a StateDict,
}

impl ModuleMapper for Load<'_> {
    fn enter_module(&mut self, name: &str, container: &str) {
        push_path(&mut self.path, name, container);
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(h) = self.dict.get(&torch_name(&current(&self.path))) else {
            return param;
        };
        param.map(|old| replace_values(&old, h))
    }
}

/// A tensor on `old`'s device with `h`'s values (PyTorch layout), keeping `old`'s gradient flag.
pub(crate) fn replace_values<const D: usize>(old: &Tensor<D>, h: &HostTensor) -> Tensor<D> {
    let data = TensorData::new(h.data.clone(), h.shape.clone());
    let mut t = Tensor::<D>::from_data(data, &old.device());
    if D == 2 {
        t = t.transpose();
    }
    // A fresh leaf: loaded values carry no history from before.
    let t = t.detach();
    if old.is_require_grad() {
        t.require_grad()
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_parses_names_and_rejects_others() {
        assert_eq!(
            Architecture::parse("lenet_300_100").unwrap(),
            Architecture::Mlp {
                hidden: vec![300, 100]
            }
        );
        assert_eq!(
            Architecture::parse("mlp_20_10_5").unwrap(),
            Architecture::Mlp {
                hidden: vec![20, 10, 5]
            }
        );
        assert_eq!(
            Architecture::parse("resnet_56").unwrap(),
            Architecture::ResNet { depth: 56 }
        );
        assert_eq!(
            Architecture::parse("resnet20").unwrap(),
            Architecture::ResNet { depth: 20 }
        );
        for bad in [
            "lenet5", "mlp_", "mlp_0", "mlp_a", "vgg12", "resnet21", "resnet_",
        ] {
            let e = Architecture::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad) && e.contains("lenet_300_100"), "{e}");
        }
    }

    #[test]
    fn torch_names() {
        let p = |s: &str| s.split('.').map(String::from).collect::<Vec<_>>();
        assert_eq!(torch_name(&p("layers.0.weight")), "fc1.weight");
        assert_eq!(torch_name(&p("convs.3.bias")), "conv4.bias");
        assert_eq!(torch_name(&p("norms.0.gamma")), "bn1.weight");
        assert_eq!(
            torch_name(&p("blocks.2.shortcut.bn.running_var")),
            "blocks.2.shortcut.bn.running_var"
        );
    }
}
