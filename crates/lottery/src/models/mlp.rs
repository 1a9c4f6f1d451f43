//! Fully connected ReLU networks: `lenet_300_100` is `mlp_300_100`.

use burn::module::Module;
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use super::{Classify, Family, Network, unknown_model};
use crate::error::Result;
use crate::sparse::SparseLayers;

/// `lenet_300_100` (also `lenet`) and `mlp_N1_N2_…`: hidden widths in the name.
pub struct MlpFamily;

impl MlpFamily {
    fn hidden(name: &str) -> Option<Result<Vec<usize>>> {
        if name == "lenet_300_100" || name == "lenet" {
            return Some(Ok(vec![300, 100]));
        }
        let rest = name.strip_prefix("mlp_")?;
        let hidden: Option<Vec<usize>> = rest
            .split('_')
            .map(|w| w.parse().ok().filter(|&w: &usize| w > 0))
            .collect();
        Some(hidden.ok_or_else(|| unknown_model(name)))
    }
}

impl Family for MlpFamily {
    fn names(&self) -> &'static str {
        "lenet_300_100, mlp_N1_N2_…"
    }
    fn check(&self, name: &str) -> Option<Result<()>> {
        Some(Self::hidden(name)?.map(|_| ()))
    }
    fn build(
        &self,
        name: &str,
        input: [usize; 3],
        classes: usize,
        device: &Device,
    ) -> Result<Network> {
        let hidden = Self::hidden(name).unwrap_or_else(|| Err(unknown_model(name)))?;
        Ok(Network::Mlp(Mlp::new(
            input.iter().product(),
            &hidden,
            classes,
            device,
        )))
    }
    fn default_input(&self) -> [usize; 3] {
        [1, 28, 28]
    }
}

impl Classify for Mlp {
    fn classify(&self, x: Tensor<4>, sparse: &SparseLayers) -> Tensor<2> {
        dense_stack(&self.layers, x.flatten(1, 3), sparse)
    }
}

#[derive(Module, Debug)]
pub struct Mlp {
    pub layers: Vec<Linear>,
}

impl Mlp {
    /// `hidden` widths between an input of `inputs` features and `classes` outputs.
    pub fn new(inputs: usize, hidden: &[usize], classes: usize, device: &Device) -> Self {
        let widths: Vec<usize> = std::iter::once(inputs)
            .chain(hidden.iter().copied())
            .chain([classes])
            .collect();
        let layers = widths
            .windows(2)
            // Zeros here; `init::initialise` draws the real values from our own seed.
            .map(|w| {
                LinearConfig::new(w[0], w[1])
                    .with_initializer(Initializer::Zeros)
                    .init(device)
            })
            .collect();
        Mlp { layers }
    }

    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        dense_stack(&self.layers, x, &SparseLayers::default())
    }
}

/// Linear layers with ReLU between them (not after the last): the classifier of every model.
pub fn dense_stack(layers: &[Linear], x: Tensor<2>, sparse: &SparseLayers) -> Tensor<2> {
    let last = layers.len() - 1;
    (layers.iter().enumerate()).fold(x, |x, (i, l)| sparse.linear(l, x, i != last))
}
