//! `lottery bench`: speed measurements, as medians after a warm-up.

mod eval;
mod floor;
mod infer;
mod train;

use anyhow::Result;
use clap::Subcommand;
use lottery::data::{Dataset, DatasetKind, Splits};
use lottery::masks::MaskSet;
use lottery::models::Network;
use lottery::rng::Rng;

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Milliseconds per training step, unmasked and under a random mask.
    Train(train::BenchTrainArgs),
    /// Compact sparse model vs. the dense network (burn, and PyTorch if given): batch-1
    /// latency, batch-64/256 throughput, and the machine's floor.
    Infer(infer::BenchInferArgs),
    /// Milliseconds per evaluation pass of a masked network: burn's dense forward vs. the
    /// sparse kernels, across sparsities (where training switches between them).
    Eval(eval::BenchEvalArgs),
}

pub fn run(c: BenchCommand) -> Result<()> {
    match c {
        BenchCommand::Train(a) => train::run(a),
        BenchCommand::Infer(a) => infer::run(a),
        BenchCommand::Eval(a) => eval::run(a),
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|x, y| x.total_cmp(y));
    xs[xs.len() / 2]
}

/// Random images of the given shape: enough for timing, no files needed.
fn synthetic(shape: [usize; 3], train: usize, test: usize) -> Splits {
    let mut rng = Rng::new(7);
    let per: usize = shape.iter().product();
    let set = |n: usize, rng: &mut Rng| {
        let images = (0..n * per).map(|_| rng.normal() as f32).collect();
        Dataset::classified(
            images,
            (0..n).map(|_| rng.below(10) as u32).collect(),
            shape,
            10,
        )
    };
    Splits {
        kind: DatasetKind::MNIST,
        train: set(train, &mut rng),
        val: set(0, &mut rng),
        test: set(test, &mut rng),
    }
}

/// A mask over `net`'s prunable tensors removing each weight with probability `sparsity`.
fn random_mask(net: &Network, sparsity: f64, seed: u64) -> MaskSet {
    let mut mask = MaskSet::ones(&net.shapes(), &net.prunable());
    let mut rng = Rng::new(seed);
    for m in mask.masks.values_mut() {
        m.data
            .iter_mut()
            .for_each(|x| *x = if rng.uniform() < sparsity { 0.0 } else { 1.0 });
    }
    mask
}
