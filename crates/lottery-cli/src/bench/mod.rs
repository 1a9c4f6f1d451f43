//! `lottery bench`: speed measurements, as medians after a warm-up.

mod eval;
mod floor;
mod infer;
mod train;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use lottery::data::{Dataset, DatasetKind, Splits};
use lottery::masks::MaskSet;
use lottery::models::{Architecture, Network};
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

/// The random inputs a benchmark runs on: enough for timing, no files needed.
#[derive(Args, Debug)]
struct Inputs {
    /// Input shape C,H,W (default: 1,28,28 for MLPs, 3,32,32 otherwise).
    #[arg(long, value_delimiter = ',', num_args = 3)]
    input: Option<Vec<usize>>,
    /// Fraction of input values that are one background value, as MNIST's 81% of background
    /// pixels are (Fashion-MNIST's: 50%). A dense linear layer skips its input's background
    /// when it is most of it, so step and pass times depend on this; the other values are
    /// normal draws, the background the one MNIST's normalisation gives its black.
    #[arg(long, default_value_t = 0.0)]
    input_background: f64,
}

impl Inputs {
    /// The input shape for `arch`.
    fn shape(&self, arch: &Architecture) -> [usize; 3] {
        match &self.input {
            Some(v) => [v[0], v[1], v[2]],
            None => arch.default_input(),
        }
    }

    /// `train` and `test` random examples of `shape` in 10 classes.
    fn synthetic(&self, shape: [usize; 3], train: usize, test: usize) -> Result<Splits> {
        if !(0.0..=1.0).contains(&self.input_background) {
            bail!(
                "invalid --input-background: {} is outside [0, 1]",
                self.input_background
            );
        }
        let mut rng = Rng::new(7);
        let per: usize = shape.iter().product();
        let share = self.input_background;
        // MNIST's black after the paper's normalisation: (0 − 0.1307) / 0.3081.
        let bg = -0.1307f32 / 0.3081;
        let mut set = |n: usize| {
            let images = (0..n * per)
                .map(|_| {
                    let v = rng.normal() as f32;
                    // No extra draw without a background: the same inputs as before the flag.
                    if share > 0.0 && rng.uniform() < share {
                        bg
                    } else {
                        v
                    }
                })
                .collect();
            Dataset::classified(
                images,
                (0..n).map(|_| rng.below(10) as u32).collect(),
                shape,
                10,
            )
        };
        Ok(Splits {
            kind: DatasetKind::MNIST,
            train: set(train),
            val: set(0),
            test: set(test),
        })
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
