//! Fully connected ReLU networks: `lenet_300_100` is `mlp_300_100`.

use burn::module::Module;
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

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
        dense_stack(&self.layers, x)
    }
}

/// Linear layers with ReLU between them (not after the last): the classifier of every model.
pub fn dense_stack(layers: &[Linear], x: Tensor<2>) -> Tensor<2> {
    let last = layers.len() - 1;
    layers.iter().enumerate().fold(x, |x, (i, l)| {
        let y = l.forward(x);
        if i == last { y } else { relu(y) }
    })
}
