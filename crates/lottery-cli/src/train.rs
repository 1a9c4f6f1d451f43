//! `lottery train`: one training run, written to a directory a user can open.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use lottery::experiment::VariantResult;
use lottery::files::{read_json, stable_hash, write_json, write_jsonl};
use lottery::masks::MaskSet;
use lottery::tensors;
use lottery::train::{self, Length, TrainConfig};
use serde::{Deserialize, Serialize};

use crate::args::{ModelArgs, OptimArgs};
use crate::progress::Bar;

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub optim: OptimArgs,
    /// Training length in iterations (the LTH paper: 50,000 for LeNet).
    #[arg(long, default_value_t = 50_000, conflicts_with = "epochs")]
    pub iterations: usize,
    /// Training length in epochs instead of iterations.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Evaluate on the validation and test sets every this many iterations.
    #[arg(long, default_value_t = 100)]
    pub eval_every: usize,
    /// Train under this mask (safetensors of 0/1 tensors named like the weights).
    #[arg(long)]
    pub mask: Option<PathBuf>,
    /// Start from these weights (ours, or a PyTorch state_dict saved as safetensors).
    #[arg(long)]
    pub from: Option<PathBuf>,
    /// Output directory (default: runs/train/<model>-<hash of the settings>).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Everything that decides the result; `config.json` holds it and its hash names the directory.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct RunConfig {
    model: ModelArgs,
    train: TrainConfig,
    mask: Option<PathBuf>,
    from: Option<PathBuf>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Summary {
    iterations: usize,
    #[serde(flatten)]
    result: VariantResult,
    weights_remaining: f64,
    seconds: f64,
}

pub fn run(a: TrainArgs) -> Result<()> {
    let length = match a.epochs {
        Some(e) => Length::Epochs(e),
        None => Length::Iterations(a.iterations),
    };
    let cfg = RunConfig {
        train: a.optim.config(length, a.eval_every, a.model.seed),
        model: a.model,
        mask: a.mask,
        from: a.from,
    };
    cfg.train.validate()?;
    let json = serde_json::to_string(&cfg)?;
    let out = a.out.unwrap_or_else(|| {
        PathBuf::from("runs/train").join(format!("{}-{:016x}", cfg.model.model, stable_hash(&json)))
    });

    let config_path = out.join("config.json");
    if config_path.exists() {
        let existing: RunConfig = read_json(&config_path)?;
        if existing != cfg {
            bail!(
                "{} holds a run with different settings; choose another --out or remove it (nothing was overwritten)",
                out.display()
            );
        }
        if let Ok(s) = read_json::<Summary>(&out.join("summary.json")) {
            println!(
                "already trained in {} (same settings): test accuracy {:.2}%",
                out.display(),
                s.result.test_accuracy * 100.0
            );
            return Ok(());
        }
    }

    let device = cfg.model.device()?;
    let data = cfg.model.load_data()?;
    let mut net = cfg.model.build(&data, &device)?;
    if let Some(from) = &cfg.from {
        let (dict, _) = tensors::load(from)?;
        net = net
            .load_state_dict(&dict)
            .map_err(|m| anyhow::anyhow!("{}: {m}", from.display()))?;
    }
    let mask = match &cfg.mask {
        Some(p) => {
            let m = MaskSet::load(p)?;
            m.check(&net, p)?;
            Some(m)
        }
        None => None,
    };

    write_json(&config_path, &cfg)?;
    tensors::save(
        &out.join("init.safetensors"),
        &net.state_dict(),
        Some(crate::ticket::torch_metadata(&cfg.model.model)),
    )?;
    let started = std::time::Instant::now();
    let outcome = train::train(
        net,
        &data,
        mask.as_ref(),
        &cfg.train,
        &device,
        None,
        &mut Bar::new(&cfg.model.model),
    )
    .with_context(|| {
        format!(
            "training {} (results so far kept in {})",
            cfg.model.model,
            out.display()
        )
    })?;
    let seconds = started.elapsed().as_secs_f64();

    tensors::save(
        &out.join("weights.safetensors"),
        &outcome.network.state_dict(),
        Some(crate::ticket::torch_metadata(&cfg.model.model)),
    )?;
    write_jsonl(&out.join("metrics.jsonl"), &outcome.records)?;
    let last = outcome.last();
    let best = outcome.best_val();
    let summary = Summary {
        iterations: last.iteration,
        result: VariantResult::from_outcome(&outcome),
        weights_remaining: mask.as_ref().map_or(1.0, MaskSet::density),
        seconds,
    };
    write_json(&out.join("summary.json"), &summary)?;

    println!(
        "test accuracy {:.2}% after {} iterations ({seconds:.1} s)",
        last.test_accuracy * 100.0,
        last.iteration
    );
    if let Some(b) = best {
        println!(
            "minimum validation loss at iteration {}: test accuracy there {:.2}%",
            b.iteration,
            b.test_accuracy * 100.0
        );
    }
    println!("wrote {}", out.display());
    Ok(())
}
