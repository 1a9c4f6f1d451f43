//! `lottery bench`: speed measurements, as medians after a warm-up.

mod floor;
mod infer;
mod train;

use anyhow::Result;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Milliseconds per training step, unmasked and under a random mask.
    Train(train::BenchTrainArgs),
    /// Compact sparse model vs. the dense network (burn, and PyTorch if given): batch-1
    /// latency, batch-64/256 throughput, and the machine's floor.
    Infer(infer::BenchInferArgs),
}

pub fn run(c: BenchCommand) -> Result<()> {
    match c {
        BenchCommand::Train(a) => train::run(a),
        BenchCommand::Infer(a) => infer::run(a),
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|x, y| x.total_cmp(y));
    xs[xs.len() / 2]
}
