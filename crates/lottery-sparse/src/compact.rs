//! Compaction: from a pruned dense network to the smallest network that computes the same
//! function.
//!
//! A hidden unit (or channel) goes when nothing live reads it. One that nothing live feeds is a
//! constant, `act(bias)`: if that is 0 it goes; if the next layer is linear its effect is added
//! to that layer's bias and it goes; before a padded convolution it stays, because zero padding
//! makes a constant channel's contribution differ at the border. Removing a unit can starve
//! another, so the passes repeat until nothing changes. Finally a linear layer whose inputs are
//! partly unread gathers the read ones through an index list.

use crate::csr::Csr;
use crate::model::{CompactModel, ConvLayer, Layer, LinearLayer, Pool};

/// One layer of a pruned dense network, in PyTorch's layout, with the mask already applied
/// (pruned weights are 0).
#[derive(Debug, Clone)]
pub struct DenseLayer {
    pub kind: DenseKind,
    /// `[outputs, inputs]` for linear, `[out, in, kh, kw]` for conv, row-major.
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub outputs: usize,
    pub relu: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DenseKind {
    Linear,
    Conv {
        /// `[height, width]`.
        kernel: [usize; 2],
        /// `[rows, columns]` of zeros on each side.
        padding: [usize; 2],
        pool: Pool,
    },
}

/// A pruned network as plain arrays: what the training side hands over.
#[derive(Debug, Clone)]
pub struct DenseModel {
    pub source: String,
    pub input: [usize; 3],
    pub layers: Vec<DenseLayer>,
}

/// What compaction did to one layer (one matrix of a transformer: the rows follow
/// `model.layers.iter().flat_map(Layer::matrices)`).
#[derive(Debug, Clone, PartialEq)]
pub struct LayerReport {
    pub name: String,
    pub units_before: usize,
    pub units_after: usize,
    /// Units that were constants and now live in the next layer's bias.
    pub folded: usize,
    /// Inputs of a linear layer that nothing reads any more (dropped by its gather list).
    pub inputs_dropped: usize,
    pub weights_before: usize,
    pub live_weights: usize,
}

impl LayerReport {
    /// A matrix that compaction left whole.
    fn whole(name: String, m: &Csr) -> Self {
        LayerReport {
            name,
            units_before: m.rows,
            units_after: m.rows,
            folded: 0,
            inputs_dropped: 0,
            weights_before: m.rows * m.cols,
            live_weights: m.nnz(),
        }
    }
}

/// Compaction's working state, per layer: weights and biases as they are being edited, which
/// outputs survive, and how many were folded into the next layer.
struct Work {
    w: Vec<Vec<f32>>,
    b: Vec<Vec<f32>>,
    alive: Vec<Vec<bool>>,
    folded: Vec<usize>,
}

impl DenseModel {
    /// Per layer: its input shape and its fan-in (columns per output), after checking the arrays
    /// against them; each layer's input follows from the one before.
    fn shapes(&self) -> Result<Vec<([usize; 3], usize)>, String> {
        let mut shape = self.input;
        let mut out = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            let fan_in = match l.kind {
                DenseKind::Linear => shape.iter().product::<usize>(),
                DenseKind::Conv { kernel, .. } => shape[0] * kernel[0] * kernel[1],
            };
            if l.weight.len() != l.outputs * fan_in || l.bias.len() != l.outputs {
                return Err(format!(
                    "layer {i}: {} weights and {} biases do not fit {} outputs × {fan_in} inputs",
                    l.weight.len(),
                    l.bias.len(),
                    l.outputs
                ));
            }
            out.push((shape, fan_in));
            shape = match l.kind {
                DenseKind::Linear => [l.outputs, 1, 1],
                DenseKind::Conv {
                    kernel,
                    padding,
                    pool,
                } => {
                    if matches!(self.layers[..i].last(), Some(p) if p.kind == DenseKind::Linear) {
                        return Err(format!("layer {i}: a convolution after a linear layer"));
                    }
                    let (h, w) = (
                        (shape[1] + 2 * padding[0] + 1).saturating_sub(kernel[0]),
                        (shape[2] + 2 * padding[1] + 1).saturating_sub(kernel[1]),
                    );
                    let d = if pool == Pool::None { 1 } else { 2 };
                    [l.outputs, h / d, w / d]
                }
            };
        }
        Ok(out)
    }
}

/// Columns of layer `next` that read unit `j` of the layer before it.
fn columns_of(next: &DenseLayer, unit: usize, prev_shape: [usize; 3]) -> Vec<usize> {
    match next.kind {
        DenseKind::Linear => {
            // The flattened `[c, h, w]` output: unit j is a whole channel plane.
            let plane = prev_shape[1] * prev_shape[2];
            (unit * plane..(unit + 1) * plane).collect()
        }
        DenseKind::Conv { kernel, .. } => {
            let taps = kernel[0] * kernel[1];
            (unit * taps..(unit + 1) * taps).collect()
        }
    }
}

/// Compacts `model`; the report lists each layer's removals.
pub fn compact(model: &DenseModel) -> Result<(CompactModel, Vec<LayerReport>), crate::Error> {
    compact_layers(model).map_err(crate::Error::invalid)
}

fn compact_layers(model: &DenseModel) -> Result<(CompactModel, Vec<LayerReport>), String> {
    let shapes = model.shapes()?;
    let n = model.layers.len();
    if n == 0 {
        return Err("the model has no layers".into());
    }
    let mut work = Work {
        w: model.layers.iter().map(|l| l.weight.clone()).collect(),
        b: model.layers.iter().map(|l| l.bias.clone()).collect(),
        alive: model.layers.iter().map(|l| vec![true; l.outputs]).collect(),
        folded: vec![0; n],
    };
    // Output shape of layer i = input shape of layer i + 1.
    let out_shape = |i: usize| shapes[i + 1].0;
    loop {
        let mut changed = false;
        for i in 0..n - 1 {
            let (layer, next) = (&model.layers[i], &model.layers[i + 1]);
            let fan_in = shapes[i].1;
            let next_fan_in = shapes[i + 1].1;
            for j in 0..layer.outputs {
                if !work.alive[i][j] {
                    continue;
                }
                let cols = columns_of(next, j, out_shape(i));
                let read = (0..next.outputs).any(|o| {
                    cols.iter()
                        .any(|&c| work.w[i + 1][o * next_fan_in + c] != 0.0)
                });
                let fed = work.w[i][j * fan_in..(j + 1) * fan_in]
                    .iter()
                    .any(|&v| v != 0.0);
                let constant = if layer.relu {
                    work.b[i][j].max(0.0)
                } else {
                    work.b[i][j]
                };
                let remove = if !read {
                    true
                } else if !fed && (constant == 0.0 || next.kind == DenseKind::Linear) {
                    if constant != 0.0 {
                        for o in 0..next.outputs {
                            let s: f32 = cols
                                .iter()
                                .map(|&c| work.w[i + 1][o * next_fan_in + c])
                                .sum();
                            work.b[i + 1][o] += constant * s;
                        }
                        work.folded[i] += 1;
                    }
                    true
                } else {
                    false
                };
                if remove {
                    work.alive[i][j] = false;
                    work.w[i][j * fan_in..(j + 1) * fan_in].fill(0.0);
                    for o in 0..next.outputs {
                        for &c in &cols {
                            work.w[i + 1][o * next_fan_in + c] = 0.0;
                        }
                    }
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    build(model, &shapes, &work)
}

fn build(
    model: &DenseModel,
    shapes: &[([usize; 3], usize)],
    work: &Work,
) -> Result<(CompactModel, Vec<LayerReport>), String> {
    let mut layers = Vec::new();
    let mut reports = Vec::new();
    // Surviving units of the previous layer, by original index (the input's all survive).
    let mut prev_kept: Vec<usize> = (0..model.input[0]).collect();
    for (i, l) in model.layers.iter().enumerate() {
        let (in_shape, fan_in) = shapes[i];
        let kept: Vec<usize> = (0..l.outputs).filter(|&j| work.alive[i][j]).collect();
        let w = &work.w[i];
        let bias: Vec<f32> = kept.iter().map(|&j| work.b[i][j]).collect();
        let mut inputs_dropped = 0;
        let layer = match l.kind {
            DenseKind::Conv {
                kernel,
                padding,
                pool,
            } => {
                let taps = kernel[0] * kernel[1];
                let cols: Vec<usize> = prev_kept
                    .iter()
                    .flat_map(|&c| c * taps..(c + 1) * taps)
                    .collect();
                let dense = select(w, fan_in, &kept, &cols);
                Layer::Conv(ConvLayer {
                    in_channels: prev_kept.len(),
                    height: in_shape[1],
                    width: in_shape[2],
                    kernel,
                    padding,
                    weights: Csr::from_dense(kept.len(), cols.len(), &dense)
                        .map_err(|e| e.to_string())?,
                    bias,
                    relu: l.relu,
                    pool,
                    kept: kept.iter().map(|&j| j as u32).collect(),
                })
            }
            DenseKind::Linear => {
                // Columns of the surviving previous units, in the order the previous compact
                // layer writes them; then only those some live weight reads.
                let plane = in_shape[1] * in_shape[2];
                let available: Vec<usize> = if i == 0 {
                    (0..fan_in).collect()
                } else {
                    prev_kept
                        .iter()
                        .flat_map(|&c| c * plane..(c + 1) * plane)
                        .collect()
                };
                let read: Vec<usize> = (0..available.len())
                    .filter(|&p| kept.iter().any(|&o| w[o * fan_in + available[p]] != 0.0))
                    .collect();
                inputs_dropped = available.len() - read.len();
                let gather = (read.len() != available.len())
                    .then(|| read.iter().map(|&p| p as u32).collect());
                let cols: Vec<usize> = read.iter().map(|&p| available[p]).collect();
                let dense = select(w, fan_in, &kept, &cols);
                Layer::Linear(LinearLayer {
                    gather,
                    weights: Csr::from_dense(kept.len(), cols.len(), &dense)
                        .map_err(|e| e.to_string())?,
                    bias,
                    relu: l.relu,
                    kept: kept.iter().map(|&j| j as u32).collect(),
                })
            }
        };
        let matrix = layer.matrices()[0];
        reports.push(LayerReport {
            name: match l.kind {
                DenseKind::Conv { .. } => format!("conv (layer {})", i + 1),
                DenseKind::Linear => format!("linear (layer {})", i + 1),
            },
            units_before: l.outputs,
            units_after: kept.len(),
            folded: work.folded[i],
            inputs_dropped,
            weights_before: l.weight.len(),
            live_weights: matrix.nnz(),
        });
        layers.push(layer);
        prev_kept = kept;
    }
    let model = CompactModel {
        source: model.source.clone(),
        input: model.input,
        layers,
    };
    model.problems()?;
    Ok((model, reports))
}

/// Compacts a vision transformer given as its layers with every pruned weight left out of its
/// matrices (an embedding, blocks, a read-out, linear layers): drops each block's dead MLP
/// hidden units ([`BlockLayer::drop_dead_hidden`]). The report has one row per matrix, named
/// as PyTorch names the weight (`blocks.0.attn.qkv`).
pub fn compact_transformer(
    mut model: CompactModel,
) -> Result<(CompactModel, Vec<LayerReport>), crate::Error> {
    model.check()?;
    let mut reports = Vec::new();
    let (mut block, mut linear) = (0, 0);
    for layer in &mut model.layers {
        match layer {
            Layer::Embed(e) => reports.push(LayerReport::whole(
                "patch_embed.proj".into(),
                &e.proj.weights,
            )),
            Layer::Block(b) => {
                let name = |part: &str| format!("blocks.{block}.{part}");
                let hidden = b.hidden();
                let (fc1_before, fc2_before) =
                    (b.fc1.weights.cols * hidden, b.fc2.weights.rows * hidden);
                let folded = b.drop_dead_hidden();
                reports.push(LayerReport::whole(name("attn.qkv"), &b.qkv.weights));
                reports.push(LayerReport::whole(name("attn.proj"), &b.proj.weights));
                reports.push(LayerReport {
                    units_before: hidden,
                    folded,
                    weights_before: fc1_before,
                    ..LayerReport::whole(name("mlp.fc1"), &b.fc1.weights)
                });
                reports.push(LayerReport {
                    inputs_dropped: hidden - b.hidden(),
                    weights_before: fc2_before,
                    ..LayerReport::whole(name("mlp.fc2"), &b.fc2.weights)
                });
                block += 1;
            }
            Layer::Linear(l) => {
                linear += 1;
                let name = if linear == 1 {
                    "head".into()
                } else {
                    format!("linear (layer {linear})")
                };
                reports.push(LayerReport::whole(name, &l.weights));
            }
            Layer::Conv(_) | Layer::Readout(_) => {}
        }
    }
    model.check()?;
    Ok((model, reports))
}

/// The dense `rows × cols` block of `w` (row length `stride`).
fn select(w: &[f32], stride: usize, rows: &[usize], cols: &[usize]) -> Vec<f32> {
    rows.iter()
        .flat_map(|&r| cols.iter().map(move |&c| w[r * stride + c]))
        .collect()
}
