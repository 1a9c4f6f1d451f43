//! `lottery bench train`: milliseconds per training step, masked and not.

use std::time::Instant;

use anyhow::Result;
use clap::Args;
use lottery::models::{Architecture, init};
use lottery::train::{Length, TrainConfig, Trainer};

use super::{Inputs, median, random_mask};
use crate::settings::{OptimFlags, Overrides, TrainOnly};

#[derive(Args, Debug)]
pub struct BenchTrainArgs {
    #[arg(long, default_value = "lenet_300_100")]
    model: String,
    #[command(flatten)]
    inputs: Inputs,
    /// Optimizer settings (defaults: the LTH paper's Adam 1.2e-3, batch 60).
    #[command(flatten)]
    optim: Overrides<OptimFlags>,
    /// Timed steps per variant.
    #[arg(long, default_value_t = 200)]
    steps: usize,
    /// Untimed steps first.
    #[arg(long, default_value_t = 20)]
    warmup_steps: usize,
    /// Fraction of prunable weights the mask removes.
    #[arg(long, default_value_t = 0.8)]
    sparsity: f64,
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(a: BenchTrainArgs) -> Result<()> {
    let arch = Architecture::parse(&a.model)?;
    if !(0.0..1.0).contains(&a.sparsity) {
        anyhow::bail!("invalid --sparsity: {} is outside [0, 1)", a.sparsity);
    }
    if a.steps == 0 {
        anyhow::bail!("invalid --steps: must be at least 1");
    }
    let input = a.inputs.shape(&arch);
    let device = lottery::device::parse(&a.device)?;
    let mut base = TrainConfig::lenet_paper(1);
    base.length = Length::Iterations(a.warmup_steps + a.steps);
    base.eval_every = usize::MAX;
    let cfg = a.optim.apply(&TrainOnly { train: base })?.train;
    cfg.validate()?;
    if cfg.batch_size > 65_536 {
        anyhow::bail!(
            "invalid --batch-size: {} is more than a benchmark's 65536",
            cfg.batch_size
        );
    }
    let data = a.inputs.synthetic(input, cfg.batch_size * 20, 10)?;

    let net = init::initialise(
        arch.build(input, 10, &device)?,
        init::InitScheme::KaimingNormal,
        0,
    );
    let mask = random_mask(&net, a.sparsity, 1);

    // Alternate the two trainings step by step, so drift in the machine's speed (frequency,
    // other load) falls on both alike.
    let mut plain = Trainer::new(net.clone(), &data, None, &cfg, &device)?;
    let mut masked = Trainer::new(net, &data, Some(&mask), &cfg, &device)?;
    let (mut ms_plain, mut ms_masked) = (Vec::with_capacity(a.steps), Vec::with_capacity(a.steps));
    for i in 0..a.warmup_steps + a.steps {
        for (t, ms) in [(&mut plain, &mut ms_plain), (&mut masked, &mut ms_masked)] {
            let start = Instant::now();
            t.step()?;
            if i >= a.warmup_steps {
                ms.push(start.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    let (plain, masked) = (median(ms_plain), median(ms_masked));
    if a.json {
        outln!(
            "{}",
            serde_json::json!({ "ms_per_step": plain, "ms_per_step_masked": masked })
        );
    } else {
        outln!(
            "{} batch {} {:?} on {}: {plain:.3} ms/step, masked ({:.0}% pruned) {masked:.3} ms/step ({:+.1}%)",
            a.model,
            cfg.batch_size,
            cfg.optimizer.name(),
            a.device,
            a.sparsity * 100.0,
            (masked / plain - 1.0) * 100.0
        );
    }
    Ok(())
}
