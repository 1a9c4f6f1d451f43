//! `lottery bench eval`: one evaluation pass of a masked network through burn's dense forward
//! and through the sparse kernels, across sparsities — the measurement behind
//! `lottery::train::eval`'s `SPARSE_BELOW_DENSITY` (and, with `--input-background`, of
//! `SPARSE_BELOW_DENSITY_OVER_BACKGROUND`).

use std::time::Instant;

use anyhow::{Result, bail};
use clap::Args;
use lottery::models::{Architecture, init};
use lottery::train::eval::{self, EvalPath};

use super::{Inputs, median, random_mask};

#[derive(Args, Debug)]
pub struct BenchEvalArgs {
    #[arg(long, default_value = "lenet_300_100")]
    model: String,
    #[command(flatten)]
    inputs: Inputs,
    /// Fractions of prunable weights removed, one measurement each (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "0,0.5,0.67,0.8,0.9,0.96")]
    sparsity: Vec<f64>,
    /// Examples per pass (the paper's protocol: 5,000 validation + 10,000 test).
    #[arg(long, default_value_t = 15_000)]
    examples: usize,
    /// Timed passes per path and sparsity, after one untimed pass.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Print one JSON object per sparsity instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(a: BenchEvalArgs) -> Result<()> {
    let arch = Architecture::parse(&a.model)?;
    if let Some(s) = a.sparsity.iter().find(|s| !(0.0..1.0).contains(*s)) {
        bail!("invalid --sparsity: {s} is outside [0, 1)");
    }
    if a.rounds == 0 || a.examples == 0 {
        bail!("invalid --rounds/--examples: both must be at least 1");
    }
    let input = a.inputs.shape(&arch);
    let device = lottery::device::parse("cpu")?;
    let set = a.inputs.synthetic(input, 0, a.examples)?.test;
    let net = init::initialise(
        arch.build(input, 10, &device)?,
        init::InitScheme::KaimingNormal,
        0,
    );
    if !a.json {
        outln!(
            "{} on {} examples, median of {} passes (path: the one training takes):",
            a.model,
            a.examples,
            a.rounds,
        );
        outln!("kept%   dense ms  sparse ms  dense/sparse  path");
    }
    for &sparsity in &a.sparsity {
        let mask = random_mask(&net, sparsity, 1);
        let mut dict = net.state_dict();
        mask.apply(&mut dict);
        let masked = net
            .clone()
            .load_state_dict(&dict)
            .map_err(anyhow::Error::msg)?;
        if eval::evaluate_sparse(&masked, &mask, &set).is_none() {
            bail!(
                "`{}` does not compact: it is always evaluated dense",
                a.model
            );
        }
        // Alternate the two paths so drift in the machine's speed falls on both alike.
        let (mut dense, mut sparse) = (Vec::new(), Vec::new());
        for round in 0..=a.rounds {
            let t = Instant::now();
            std::hint::black_box(eval::evaluate(&masked, &set));
            let d = t.elapsed().as_secs_f64() * 1e3;
            let t = Instant::now();
            std::hint::black_box(eval::evaluate_sparse(&masked, &mask, &set));
            let s = t.elapsed().as_secs_f64() * 1e3;
            if round > 0 {
                dense.push(d);
                sparse.push(s);
            }
        }
        let (d, s) = (median(dense), median(sparse));
        let kept = mask.density() * 100.0;
        let path = match EvalPath::choose(&masked, Some(&mask), &device, &set) {
            EvalPath::Dense => "dense",
            EvalPath::Sparse => "sparse",
        };
        if a.json {
            outln!(
                "{}",
                serde_json::json!({ "kept_percent": kept, "dense_ms": d, "sparse_ms": s, "path": path })
            );
        } else {
            outln!("{kept:5.1} {d:10.1} {s:10.1} {:12.2}×  {path}", d / s);
        }
    }
    Ok(())
}
