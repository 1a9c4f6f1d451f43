//! Evaluation: loss and accuracy on the validation and test sets. A sparse enough masked network
//! is evaluated through lottery-sparse's kernels on its compacted form instead of burn's dense
//! forward: at the late levels of an experiment, the paper's protocol (15,000 images every 100
//! steps) otherwise costs as much as the training it watches.

use burn::module::Module;
use burn::tensor::Device;
use lottery_sparse::{Engine, Scratch};

use crate::data::{Dataset, Splits};
use crate::deploy;
use crate::masks::MaskSet;
use crate::models::{Batches, Network};
use crate::sparse::skips_background;
use crate::train::EvalRecord;

/// Masked networks keeping at most this fraction of their masked weights are evaluated through
/// the sparse kernels (on inputs without a background; the next constant is for those with
/// one). A fixed rule rather than a timing, so the same run takes the same path (and rounds the
/// same way) on every attempt. The value is where the sparse path wins on
/// LeNet-300-100 with one core to itself, as each training has in an experiment whose controls
/// run beside the ticket (`lottery bench eval`, BENCHMARKS.md); with two cores it wins from 45%.
pub const SPARSE_BELOW_DENSITY: f64 = 0.25;

/// [`SPARSE_BELOW_DENSITY`] for an MLP whose inputs are mostly one value, as MNIST's are (81%
/// background): its dense first layer skips that background (`crate::sparse`), so the dense
/// pass is a third faster and the sparse one wins only from 15% kept (`lottery bench eval
/// --input-background 0.81`, BENCHMARKS.md).
pub const SPARSE_BELOW_DENSITY_OVER_BACKGROUND: f64 = 0.15;

/// Examples per call into the sparse kernels: large enough to use every core, small enough that
/// a layer's activations stay in cache.
const SPARSE_BATCH: usize = 1024;

/// How a training run evaluates its network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalPath {
    /// burn's forward, on the network as it is.
    Dense,
    /// lottery-sparse's kernels, on the network compacted under its mask.
    Sparse,
}

impl EvalPath {
    /// The path for `net` trained on `device` under `mask` and evaluated on sets like `test`:
    /// sparse when training on the CPU, the mask is sparse enough and the network is one where
    /// the kernels were measured to win at that density — MLPs and the LTH Conv nets. VGG
    /// compacts too, but at 25% kept its wide convolutions on small planes run no faster than
    /// burn's (BENCHMARKS.md); ResNet does not compact. On a GPU the dense forward stays where
    /// the weights are.
    pub fn choose(net: &Network, mask: Option<&MaskSet>, device: &Device, test: &Dataset) -> Self {
        match mask {
            Some(m)
                if *device == Device::flex()
                    && sparse_wins(net)
                    && m.density() <= sparse_below(net, test) =>
            {
                EvalPath::Sparse
            }
            _ => EvalPath::Dense,
        }
    }
}

/// The density from which the sparse path wins for `net` on inputs like `set`'s.
fn sparse_below(net: &Network, set: &Dataset) -> f64 {
    match net {
        Network::Mlp(_) if skips_background(&set.images) => SPARSE_BELOW_DENSITY_OVER_BACKGROUND,
        _ => SPARSE_BELOW_DENSITY,
    }
}

/// The families `deploy` compacts and the kernels beat burn on; should compaction still fail,
/// [`Evaluator::record`] evaluates dense.
fn sparse_wins(net: &Network) -> bool {
    match net {
        Network::Mlp(_) => true,
        Network::Conv(c) => c.norms.is_empty(),
        _ => false,
    }
}

/// A training's evaluations on the validation and test sets, set up once: the path, and for
/// burn's dense forward the two sets as input tensors on the training's device ([`Batches`]).
pub(crate) struct Evaluator<'a> {
    data: &'a Splits,
    path: EvalPath,
    /// Validation and test inputs, on the dense path.
    inputs: Option<(Batches, Batches)>,
}

impl<'a> Evaluator<'a> {
    pub(crate) fn new(
        net: &Network,
        mask: Option<&MaskSet>,
        device: &Device,
        data: &'a Splits,
    ) -> Self {
        let path = EvalPath::choose(net, mask, device, &data.test);
        let inputs = (path == EvalPath::Dense).then(|| {
            (
                Batches::new(&data.val, device),
                Batches::new(&data.test, device),
            )
        });
        Evaluator { data, path, inputs }
    }

    /// The record of `net` (trained under `mask`) after `iteration` steps.
    pub(crate) fn record(
        &self,
        net: &Network,
        mask: Option<&MaskSet>,
        iteration: usize,
        train_loss: f64,
        lr: f64,
    ) -> EvalRecord {
        let data = self.data;
        let engine = match self.path {
            EvalPath::Sparse => sparse_engine(net, mask, data.test.shape),
            EvalPath::Dense => None,
        };
        let valid = engine.is_none().then(|| net.valid());
        // burn's path runs on the prepared inputs, or on the set itself should compaction
        // have failed on the sparse path.
        let outputs = |set: &Dataset, inputs: Option<&Batches>| match (&engine, &valid, inputs) {
            (Some(e), _, _) => sparse_logits(e, set),
            (None, Some(v), Some(b)) => v.logits_of(b),
            (None, Some(v), None) => v.logits(set),
            (None, None, _) => unreachable!("one of the two paths is set up"),
        };
        let (val_in, test_in) = self.inputs.as_ref().map(|(v, t)| (v, t)).unzip();
        let val = (!data.val.is_empty()).then(|| score(&outputs(&data.val, val_in), &data.val));
        let test = outputs(&data.test, test_in);
        let (test_loss, test_accuracy) = score(&test, &data.test);
        EvalRecord {
            iteration,
            train_loss,
            val_loss: val.map(|v| v.0),
            val_accuracy: val.map(|v| v.1),
            test_loss,
            test_accuracy,
            test_mae: data.test.targets.mae(&test),
            lr,
        }
    }
}

/// Mean cross-entropy and accuracy of `net` (a model without autodiff) on `set`, through burn.
pub fn evaluate(net: &Network, set: &Dataset) -> (f64, f64) {
    score(&net.logits(set), set)
}

/// The outputs (`[example][output]`) of a network as training builds it, on `set`.
pub fn outputs_valid(net: &Network, set: &Dataset) -> Vec<f32> {
    net.valid().logits(set)
}

/// [`evaluate`] for a network as training builds it (with autodiff): its inference copy on `set`.
pub fn evaluate_valid(net: &Network, set: &Dataset) -> (f64, f64) {
    evaluate(&net.valid(), set)
}

/// Mean cross-entropy and accuracy of `net` under `mask` on `set`, through the sparse kernels.
/// `None` when the architecture does not compact.
pub fn evaluate_sparse(net: &Network, mask: &MaskSet, set: &Dataset) -> Option<(f64, f64)> {
    let engine = sparse_engine(net, Some(mask), set.shape)?;
    Some(score(&sparse_logits(&engine, set), set))
}

fn sparse_engine(net: &Network, mask: Option<&MaskSet>, input: [usize; 3]) -> Option<Engine> {
    let (model, _) = deploy::compact(net, mask, "evaluation", input).ok()?;
    Engine::new(model).ok()
}

fn sparse_logits(engine: &Engine, set: &Dataset) -> Vec<f32> {
    let (per, classes) = (set.example_len(), engine.model().classes());
    let mut out = vec![0.0; set.len() * classes];
    let mut scratch = Scratch::default();
    for (x, o) in set
        .images
        .chunks(SPARSE_BATCH * per)
        .zip(out.chunks_mut(SPARSE_BATCH * classes))
    {
        engine.forward_into(x, x.len() / per, o, &mut scratch);
    }
    out
}

/// Mean loss and the metric (accuracy, or squared error) of `outputs` (`[example][output]`)
/// against `set`'s targets.
pub fn score(outputs: &[f32], set: &Dataset) -> (f64, f64) {
    set.targets.score(outputs)
}
