//! A compacted ticket: the layers that survive, each holding only its live weights.
//!
//! Activations flow through the layers in order. A convolution reads `[channels, height,
//! width]` and writes the same with its own channels (halved spatially when it pools); a linear
//! layer reads the previous output flattened, optionally gathered through an index list first.

use crate::csr::Csr;
use crate::error::Error;

/// What follows a convolution's activation: nothing, or a 2×2 pool with stride 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pool {
    None,
    /// The largest of each 2×2 block (the LTH Conv nets, VGG).
    Max,
    /// The mean of each 2×2 block (the last stage of OpenLTH's CIFAR VGG).
    Avg,
}

/// A 2-D convolution with stride 1 and zero padding, then ReLU and an optional 2×2 pool: the
/// building block of the LTH Conv-2/4/6 nets and of VGG (with its batch norm folded into
/// weights and bias), and — with a `1 × k` kernel on a `[channels, 1, length]` input — of the
/// time-series `cnn1d`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvLayer {
    pub in_channels: usize,
    /// Spatial size of the input.
    pub height: usize,
    pub width: usize,
    /// `[height, width]` of the kernel.
    pub kernel: [usize; 2],
    /// Zeros added `[above and below, left and right]`.
    pub padding: [usize; 2],
    /// `[out_channels, in_channels · kh · kw]`: each row is one output channel's filter,
    /// flattened as PyTorch stores it (`in, ky, kx`; a `Conv1d`'s `[out, in, k]` is the same
    /// with `kh = 1`).
    pub weights: Csr,
    pub bias: Vec<f32>,
    pub relu: bool,
    pub pool: Pool,
    /// Indices of the surviving output channels in the original network.
    pub kept: Vec<u32>,
}

/// A fully connected layer `y = W x + b` on the (gathered) previous output.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearLayer {
    /// Which entries of the flattened previous output this layer reads, in order; `None` reads
    /// them all. This is how unread input features disappear.
    pub gather: Option<Vec<u32>>,
    /// `[outputs, inputs]`, inputs counted after the gather.
    pub weights: Csr,
    pub bias: Vec<f32>,
    pub relu: bool,
    /// Indices of the surviving units in the original network.
    pub kept: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Layer {
    Conv(ConvLayer),
    Linear(LinearLayer),
}

/// A whole compacted network.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactModel {
    /// The architecture it was compacted from (`lenet_300_100`, `conv2`, …), for people.
    pub source: String,
    /// `[channels, height, width]` of one input example.
    pub input: [usize; 3],
    pub layers: Vec<Layer>,
}

impl ConvLayer {
    pub fn out_channels(&self) -> usize {
        self.weights.rows
    }

    /// Weights per filter: input channels × kernel taps.
    pub fn taps(&self) -> usize {
        self.in_channels * self.kernel[0] * self.kernel[1]
    }

    /// `[height, width]` of the convolution's output, before pooling.
    pub fn convolved(&self) -> [usize; 2] {
        let ([kh, kw], [ph, pw]) = (self.kernel, self.padding);
        [self.height + 2 * ph + 1 - kh, self.width + 2 * pw + 1 - kw]
    }

    /// `[channels, height, width]` of the output, after pooling.
    pub fn output_shape(&self) -> [usize; 3] {
        let [h, w] = self.convolved();
        if self.pool != Pool::None {
            [self.out_channels(), h / 2, w / 2]
        } else {
            [self.out_channels(), h, w]
        }
    }
}

impl LinearLayer {
    pub fn outputs(&self) -> usize {
        self.weights.rows
    }
}

impl Layer {
    pub fn weights(&self) -> &Csr {
        match self {
            Layer::Conv(c) => &c.weights,
            Layer::Linear(l) => &l.weights,
        }
    }

    pub fn bias(&self) -> &[f32] {
        match self {
            Layer::Conv(c) => &c.bias,
            Layer::Linear(l) => &l.bias,
        }
    }

    pub fn kept(&self) -> &[u32] {
        match self {
            Layer::Conv(c) => &c.kept,
            Layer::Linear(l) => &l.kept,
        }
    }

    /// Number of values this layer writes per example.
    pub fn output_len(&self) -> usize {
        match self {
            Layer::Conv(c) => c.output_shape().iter().product(),
            Layer::Linear(l) => l.outputs(),
        }
    }
}

impl CompactModel {
    /// Logits per example.
    pub fn classes(&self) -> usize {
        self.layers.last().map_or(0, Layer::output_len)
    }

    pub fn input_len(&self) -> usize {
        self.input.iter().product()
    }

    /// Live weights (nonzeros) over all layers.
    pub fn nnz(&self) -> usize {
        self.layers.iter().map(|l| l.weights().nnz()).sum()
    }

    /// Checks that every layer reads what the one before it writes and that every index points
    /// inside its array, so inference never reads out of bounds. The loader calls it; so
    /// should anyone who builds a model by hand.
    pub fn check(&self) -> Result<(), Error> {
        self.problems().map_err(Error::invalid)
    }

    /// What [`CompactModel::check`] finds, in words.
    pub(crate) fn problems(&self) -> Result<(), String> {
        if self.layers.is_empty() {
            return Err("the model has no layers".into());
        }
        if self.input.contains(&0) {
            return Err(format!("input shape {:?} has a zero dimension", self.input));
        }
        let mut shape = self.input;
        let mut flat = false;
        for (i, layer) in self.layers.iter().enumerate() {
            let at = |m: String| format!("layer {i}: {m}");
            layer.weights().invariants().map_err(at)?;
            if layer.bias().len() != layer.weights().rows {
                return Err(at(format!(
                    "{} biases for {} outputs",
                    layer.bias().len(),
                    layer.weights().rows
                )));
            }
            if layer.kept().len() != layer.weights().rows {
                return Err(at(format!(
                    "{} kept indices for {} outputs",
                    layer.kept().len(),
                    layer.weights().rows
                )));
            }
            if layer
                .bias()
                .iter()
                .chain(&layer.weights().val)
                .any(|x| !x.is_finite())
            {
                return Err(at("holds NaN or infinite values".into()));
            }
            match layer {
                Layer::Conv(c) => {
                    if flat {
                        return Err(at("a convolution after a linear layer".into()));
                    }
                    if [c.in_channels, c.height, c.width] != shape {
                        return Err(at(format!(
                            "reads {:?} but the previous layer writes {shape:?}",
                            [c.in_channels, c.height, c.width]
                        )));
                    }
                    let ([kh, kw], [ph, pw]) = (c.kernel, c.padding);
                    if kh == 0
                        || kw == 0
                        || ph >= kh
                        || pw >= kw
                        || kh > c.height + 2 * ph
                        || kw > c.width + 2 * pw
                    {
                        return Err(at(format!(
                            "kernel {kh}×{kw} with padding {ph}×{pw} does not fit {}×{}",
                            c.height, c.width
                        )));
                    }
                    if c.weights.cols != c.taps() {
                        return Err(at(format!(
                            "filters have {} entries, {} channels of {kh}×{kw} need {}",
                            c.weights.cols,
                            c.in_channels,
                            c.taps()
                        )));
                    }
                    shape = c.output_shape();
                    if shape.contains(&0) {
                        return Err(at("pooling leaves nothing".into()));
                    }
                }
                Layer::Linear(l) => {
                    let available: usize = shape.iter().product();
                    match &l.gather {
                        None if l.weights.cols != available => {
                            return Err(at(format!(
                                "reads {} values but the previous layer writes {available}",
                                l.weights.cols
                            )));
                        }
                        Some(g) if g.len() != l.weights.cols => {
                            return Err(at(format!(
                                "gathers {} values for {} inputs",
                                g.len(),
                                l.weights.cols
                            )));
                        }
                        Some(g) if g.iter().any(|&j| j as usize >= available) => {
                            return Err(at(format!(
                                "gathers an index beyond the {available} values it reads"
                            )));
                        }
                        _ => {}
                    }
                    shape = [l.outputs(), 1, 1];
                    flat = true;
                }
            }
        }
        Ok(())
    }
}
