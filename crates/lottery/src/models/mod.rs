//! The model registry: architectures by name (each family one file and one line of
//! [`registry!`]), PyTorch-style parameter names, and which tensors are prunable.

pub mod cnn1d;
pub mod convnet;
pub mod init;
pub mod mlp;
pub mod resnet;
pub mod vit;

use std::collections::BTreeMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{Error, Result};
use crate::sparse::SparseLayers;
use crate::tensors::{HostTensor, StateDict};
use cnn1d::Cnn1d;
use convnet::ConvNet;
use mlp::Mlp;
use resnet::ResNet;
use vit::Vit;

/// A family of architectures: the names it answers to and how to build them. Each family lives
/// in its own file and is one line of the [`registry!`] below.
pub trait Family: Sync {
    /// How its names look, for help texts and errors (`mlp_N1_N2_…`).
    fn names(&self) -> &'static str;
    /// `None` if `name` is not this family's; otherwise whether it is a valid member.
    fn check(&self, name: &str) -> Option<Result<()>>;
    /// Member `name` for inputs of shape `input` and `classes` outputs, with every weight zero
    /// (`init::initialise` gives them values).
    fn build(
        &self,
        name: &str,
        input: [usize; 3],
        classes: usize,
        device: &Device,
    ) -> Result<Network>;
    /// The input it reads when no dataset says (benchmarks on synthetic data).
    fn default_input(&self) -> [usize; 3] {
        [3, 32, 32]
    }
}

/// A module that classifies a batch of images `[batch, channels, height, width]`, with the
/// linear layers listed in `sparse` running as sparse products (their layer's
/// [`SparseLayers::linear`]).
pub trait Classify {
    fn classify(&self, x: Tensor<4>, sparse: &SparseLayers) -> Tensor<2>;
}

/// The registry: one line per module type, with the families that build it. It defines
/// [`Network`] (one enum, so a training loop, a checkpoint and a pruning criterion need not
/// know which model they hold), its forward pass and [`FAMILIES`].
macro_rules! registry {
    ($($variant:ident($module:ty) <= [$($family:expr),+]),+ $(,)?) => {
        #[derive(Module, Debug)]
        pub enum Network {
            $($variant($module)),+
        }

        /// Every family, in the order names are tried.
        pub static FAMILIES: &[&dyn Family] = &[$($($family),+),+];

        /// The variants' names, which burn reports as the first module of a path.
        const VARIANTS: &[&str] = &[$(stringify!($variant)),+];

        impl Network {
            /// Logits for a batch of images `[batch, channels, height, width]`.
            pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
                self.forward_with(x, &SparseLayers::default())
            }

            /// [`Network::forward`] with the layers in `sparse` as sparse products.
            pub fn forward_with(&self, x: Tensor<4>, sparse: &SparseLayers) -> Tensor<2> {
                match self {
                    $(Network::$variant(m) => Classify::classify(m, x, sparse)),+
                }
            }
        }
    };
}

registry! {
    Mlp(Mlp) <= [&mlp::MlpFamily],
    Conv(ConvNet) <= [&convnet::LthConv, &convnet::Vgg],
    ResNet(ResNet) <= [&resnet::ResNetFamily],
    Cnn1d(Cnn1d) <= [&cnn1d::Cnn1dFamily],
    Vit(Vit) <= [&vit::VitFamily],
}

/// Names the registry accepts, for help texts and error messages.
pub fn known() -> String {
    FAMILIES
        .iter()
        .map(|f| f.names())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A model name resolved to the family that builds it.
#[derive(Clone)]
pub struct Architecture {
    name: String,
    family: &'static dyn Family,
}

impl std::fmt::Debug for Architecture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Architecture({})", self.name)
    }
}

impl PartialEq for Architecture {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Architecture {
    pub fn parse(name: &str) -> Result<Self> {
        for &family in FAMILIES {
            match family.check(name) {
                Some(Ok(())) => {
                    return Ok(Architecture {
                        name: name.to_string(),
                        family,
                    });
                }
                Some(Err(e)) => return Err(e),
                None => {}
            }
        }
        Err(unknown_model(name))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Builds the network with all weights zero; `init::initialise` gives them values.
    pub fn build(&self, input: [usize; 3], classes: usize, device: &Device) -> Result<Network> {
        self.family.build(&self.name, input, classes, device)
    }

    /// The input shape it reads when no dataset says.
    pub fn default_input(&self) -> [usize; 3] {
        self.family.default_input()
    }
}

/// The error for a name no family accepts (or a malformed member of one).
pub fn unknown_model(name: &str) -> Error {
    Error::UnknownModel {
        name: name.to_string(),
        known: known(),
    }
}

/// A dataset's examples as input tensors on a device, in the batches of 1,000 that
/// [`Network::logits`] runs. Built once, they serve every evaluation of a training without the
/// data being copied again (MNIST's 15,000 validation and test images are 47 MB); the forward
/// only reads them.
pub struct Batches(Vec<Tensor<4>>);

impl Batches {
    /// `set`'s examples on `device`.
    pub fn new(set: &crate::data::Dataset, device: &Device) -> Self {
        const BATCH: usize = 1000;
        let [c, h, w] = set.shape;
        let per = set.example_len();
        let batches = (0..set.len())
            .step_by(BATCH)
            .map(|start| {
                let b = (set.len() - start).min(BATCH);
                let images = set.images[start * per..(start + b) * per].to_vec();
                Tensor::<4>::from_data(TensorData::new(images, [b, c, h, w]), device)
            })
            .collect();
        Batches(batches)
    }
}

impl Network {
    /// Logits `[example][class]` on every example of `set`, in batches of 1,000 through the
    /// network's own forward. On a model with autodiff, call it on `valid()` to skip the graph.
    pub fn logits(&self, set: &crate::data::Dataset) -> Vec<f32> {
        let device = self.devices().into_iter().next().unwrap_or_default();
        self.logits_of(&Batches::new(set, &device))
    }

    /// [`Network::logits`] on a set already made into input tensors.
    pub fn logits_of(&self, batches: &Batches) -> Vec<f32> {
        let mut out = Vec::new();
        for x in &batches.0 {
            out.extend(
                self.forward(x.clone())
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

    /// Every tensor's PyTorch shape by name: what masks are made for and checked against.
    pub fn shapes(&self) -> crate::masks::Shapes {
        (self.tensors().into_iter())
            .map(|t| (t.name.clone(), t.torch_shape()))
            .collect()
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
    /// A convolution's or linear layer's weight: what magnitude pruning touches by default.
    /// Embeddings (a transformer's patch embedding) are left out, as are norms and biases.
    pub fn is_weight(&self) -> bool {
        self.name.ends_with(".weight") && self.shape.len() >= 2 && !self.name.contains("embed")
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
    let is_variant = path.is_empty() && VARIANTS.contains(&name);
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
        let device = Device::default();
        // Each name reaches its family, which builds the shape the name says.
        let widths = |name: &str| -> Vec<Vec<usize>> {
            let net = Architecture::parse(name)
                .unwrap()
                .build([1, 28, 28], 10, &device)
                .unwrap();
            net.tensors()
                .into_iter()
                .filter(|t| t.is_weight())
                .map(|t| t.torch_shape())
                .collect()
        };
        assert_eq!(
            widths("lenet_300_100"),
            vec![vec![300, 784], vec![100, 300], vec![10, 100]]
        );
        assert_eq!(widths("mlp_20_10_5").len(), 4);
        let resnet = |name: &str| {
            Architecture::parse(name)
                .unwrap()
                .build([3, 32, 32], 10, &device)
                .unwrap()
                .prunable()
                .len()
        };
        // 6n+2 layers: n = 9 gives 55 convolutions + the classifier (and 2 projections).
        assert_eq!(resnet("resnet_56"), 56 + 2);
        assert_eq!(resnet("resnet20"), 20 + 2);
        assert_eq!(Architecture::parse("vgg16").unwrap().name(), "vgg16");
        assert_eq!(
            Architecture::parse("mlp_4").unwrap().default_input(),
            [1, 28, 28]
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
