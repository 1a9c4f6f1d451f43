//! A compacted ticket: the layers that survive, each holding only its live weights.
//!
//! Activations flow through the layers in order. A convolution reads `[channels, height,
//! width]` and writes the same with its own channels (halved spatially when it pools); a linear
//! layer reads the previous output flattened, optionally gathered through an index list first.

use crate::csr::Csr;
use crate::error::Error;
use crate::transformer::{BlockLayer, EmbedLayer, ReadoutLayer};

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

/// One step of a compact network. Convolutions come first, or the transformer's embedding,
/// blocks and read-out; linear layers last.
#[derive(Debug, Clone, PartialEq)]
pub enum Layer {
    Conv(ConvLayer),
    Linear(LinearLayer),
    Embed(EmbedLayer),
    /// Boxed: a block holds four projections and two norms, several times a layer's size.
    Block(Box<BlockLayer>),
    Readout(ReadoutLayer),
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
    /// Every sparse matrix the layer multiplies by.
    pub fn matrices(&self) -> Vec<&Csr> {
        match self {
            Layer::Conv(c) => vec![&c.weights],
            Layer::Linear(l) => vec![&l.weights],
            Layer::Embed(e) => vec![&e.proj.weights],
            Layer::Block(b) => [&b.qkv, &b.proj, &b.fc1, &b.fc2]
                .map(|p| &p.weights)
                .to_vec(),
            Layer::Readout(_) => vec![],
        }
    }

    /// Original indices of the surviving units: output channels or units, a block's MLP
    /// hidden units; empty for layers that remove none.
    pub fn kept(&self) -> &[u32] {
        match self {
            Layer::Conv(c) => &c.kept,
            Layer::Linear(l) => &l.kept,
            Layer::Block(b) => &b.hidden_kept,
            Layer::Embed(_) | Layer::Readout(_) => &[],
        }
    }

    /// `[channels, height, width]` it writes when it reads `input` (tokens are `[1, tokens,
    /// dim]`, flat outputs `[n, 1, 1]`).
    pub fn output_shape(&self, input: [usize; 3]) -> [usize; 3] {
        match self {
            Layer::Conv(c) => c.output_shape(),
            Layer::Linear(l) => [l.outputs(), 1, 1],
            Layer::Embed(e) => [1, e.tokens(), e.dim()],
            Layer::Block(_) => input,
            Layer::Readout(r) => [r.dim(), 1, 1],
        }
    }
}

impl CompactModel {
    /// Logits per example.
    pub fn classes(&self) -> usize {
        self.shapes().last().map_or(0, |s| s.iter().product())
    }

    /// The input's shape, then each layer's output shape.
    pub fn shapes(&self) -> Vec<[usize; 3]> {
        let mut shapes = vec![self.input];
        for l in &self.layers {
            shapes.push(l.output_shape(shapes[shapes.len() - 1]));
        }
        shapes
    }

    pub fn input_len(&self) -> usize {
        self.input.iter().product()
    }

    /// Live weights (nonzeros) over all layers.
    pub fn nnz(&self) -> usize {
        (self.layers.iter())
            .flat_map(Layer::matrices)
            .map(Csr::nnz)
            .sum()
    }

    /// Multiply-adds per example: each live weight once per position it applies at (a
    /// convolution's output pixels, a transformer's tokens), and attention's own products.
    pub fn macs(&self) -> usize {
        let shapes = self.shapes();
        (self.layers.iter().zip(&shapes))
            .map(|(l, input)| {
                let nnz: usize = l.matrices().iter().map(|m| m.nnz()).sum();
                match l {
                    Layer::Conv(c) => nnz * c.convolved().iter().product::<usize>(),
                    Layer::Linear(_) | Layer::Readout(_) => nnz,
                    Layer::Embed(e) => nnz * (e.tokens() - 1),
                    // Scores and the weighted sum of values: t² products of `dim` each.
                    Layer::Block(_) => {
                        let (t, dim) = (input[1], input[2]);
                        nnz * t + 2 * t * t * dim
                    }
                }
            })
            .sum()
    }

    /// Bytes the kernels read per call for weights: values and column indices, row starts,
    /// biases.
    pub fn weight_bytes(&self) -> usize {
        (self.layers.iter().flat_map(Layer::matrices))
            .map(|m| m.nnz() * 8 + (m.rows + 1) * 4 + m.rows * 4)
            .sum()
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
        for (i, layer) in self.layers.iter().enumerate() {
            let at = |m: String| format!("layer {i}: {m}");
            if let Layer::Conv(ConvLayer {
                weights,
                bias,
                kept,
                ..
            })
            | Layer::Linear(LinearLayer {
                weights,
                bias,
                kept,
                ..
            }) = layer
            {
                units(weights, bias, kept).map_err(at)?;
            }
            let prev = i.checked_sub(1).map(|p| &self.layers[p]);
            // Which kinds may follow which: the engine runs them in this order.
            let follows = |ok: bool| match ok {
                true => Ok(()),
                false => Err(at(format!(
                    "{} cannot follow {}",
                    layer.name(),
                    prev.map_or("the input", Layer::name)
                ))),
            };
            match layer {
                Layer::Conv(c) => {
                    follows(matches!(prev, None | Some(Layer::Conv(_))))?;
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
                    follows(!matches!(prev, Some(Layer::Embed(_) | Layer::Block(_))))?;
                    shape = [l.outputs(), 1, 1];
                }
                Layer::Embed(e) => {
                    follows(prev.is_none())?;
                    if [e.channels, e.height, e.width] != shape {
                        return Err(at(format!(
                            "reads {:?} but the input is {shape:?}",
                            [e.channels, e.height, e.width]
                        )));
                    }
                    e.problems().map_err(at)?;
                    shape = layer.output_shape(shape);
                }
                Layer::Block(b) => {
                    follows(matches!(prev, Some(Layer::Embed(_) | Layer::Block(_))))?;
                    b.problems(shape[2]).map_err(at)?;
                }
                Layer::Readout(r) => {
                    follows(matches!(prev, Some(Layer::Embed(_) | Layer::Block(_))))?;
                    r.norm.problems("norm", shape[2]).map_err(at)?;
                    shape = layer.output_shape(shape);
                }
            }
            if i + 1 == self.layers.len() && matches!(layer, Layer::Embed(_) | Layer::Block(_)) {
                return Err(at("tokens must be read out before the end".into()));
            }
        }
        Ok(())
    }
}

impl Layer {
    /// What it is, in words, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Layer::Conv(_) => "a convolution",
            Layer::Linear(_) => "a linear layer",
            Layer::Embed(_) => "a patch embedding",
            Layer::Block(_) => "a transformer block",
            Layer::Readout(_) => "a read-out",
        }
    }
}

/// A convolution's or linear layer's weights, biases and kept indices agree, and hold numbers.
fn units(weights: &Csr, bias: &[f32], kept: &[u32]) -> Result<(), String> {
    weights.invariants()?;
    if bias.len() != weights.rows {
        return Err(format!(
            "{} biases for {} outputs",
            bias.len(),
            weights.rows
        ));
    }
    if kept.len() != weights.rows {
        return Err(format!(
            "{} kept indices for {} outputs",
            kept.len(),
            weights.rows
        ));
    }
    if bias.iter().chain(&weights.val).any(|x| !x.is_finite()) {
        return Err("holds NaN or infinite values".into());
    }
    Ok(())
}
