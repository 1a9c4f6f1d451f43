//! `lottery prune`: one-shot magnitude pruning of a trained network, optionally fine-tuned.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use lottery::files::write_json;
use lottery::masks::MaskSet;
use lottery::prune::{self, PruneConfig, Strategy};
use lottery::tensors;
use lottery::train::{self, Length};

use crate::args::OptimArgs;
use crate::progress::Bar;
use crate::ticket::{self, SourceArgs, TicketInfo};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scope {
    /// Every layer loses the same fraction (the LTH paper's layer-wise pruning).
    Layerwise,
    /// One magnitude threshold across all layers (OpenLTH's global pruning).
    Global,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Fraction of the prunable weights removed in all (0.9 keeps 10%).
    #[arg(long)]
    pub sparsity: f64,
    #[arg(long, value_enum, default_value_t = Scope::Layerwise)]
    pub scope: Scope,
    /// Sparsity of the output layer (layer-wise only; default: --sparsity).
    #[arg(long)]
    pub output_sparsity: Option<f64>,
    /// Fine-tune the pruned network for this many iterations under its mask.
    #[arg(long, default_value_t = 0)]
    pub finetune: usize,
    #[command(flatten)]
    pub optim: OptimArgs,
    /// Directory holding the dataset files (default: the bundled data/ or $LOTTERY_DATA).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Output directory: weights.safetensors (mask applied; PyTorch loads it), mask.safetensors,
    /// ticket.json.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(a: PruneArgs) -> Result<()> {
    for (flag, s) in [
        ("--sparsity", Some(a.sparsity)),
        ("--output-sparsity", a.output_sparsity),
    ] {
        if let Some(s) = s
            && !(0.0..1.0).contains(&s)
        {
            bail!("invalid {flag}: {s} is outside [0, 1)");
        }
    }
    if a.out.join("ticket.json").exists() {
        bail!(
            "{} already holds a pruned network; choose another --out or remove it",
            a.out.display()
        );
    }
    let t = ticket::load(&a.source)?;
    let dir = a
        .data_dir
        .clone()
        .unwrap_or_else(|| t.dataset.default_dir());
    let data = lottery::data::load(t.dataset, &dir, 5000)
        .with_context(|| format!("cannot load {} from {}", t.dataset.name(), dir.display()))?;
    let before = train::evaluate(&t.net, &data.test).1;

    // Rates are fractions of what the current mask keeps, so an already pruned network ends at
    // the requested sparsity overall.
    let current = t
        .mask
        .clone()
        .unwrap_or_else(|| MaskSet::ones(&t.net, &t.net.prunable()));
    let output = t.net.output_layer();
    let rate = |target: f64, density: f64| -> Result<f64> {
        let keep = 1.0 - target;
        if keep > density + 1e-12 {
            bail!(
                "the network already keeps only {:.2}% of its weights; --sparsity {target} would add some back",
                density * 100.0
            );
        }
        Ok(1.0 - keep / density)
    };
    let density = current.density();
    let out_density = current
        .masks
        .get(&output)
        .map_or(1.0, |m| m.count_nonzero() as f64 / m.len().max(1) as f64);
    let cfg = PruneConfig {
        strategy: match a.scope {
            Scope::Layerwise => Strategy::Layerwise,
            Scope::Global => Strategy::Global,
        },
        rate: rate(a.sparsity, density)?,
        output_rate: match a.output_sparsity {
            Some(s) => Some(rate(s, out_density)?),
            None => None,
        },
        conv_rate: None,
        exclude: vec![],
        include: vec![],
    };
    let mut weights = t.net.state_dict();
    let mask = prune::prune(&weights, &current, &cfg, &output, 0);
    mask.apply(&mut weights);
    let net = t
        .net
        .load_state_dict(&weights)
        .map_err(|m| anyhow::anyhow!("{m}"))?;
    let pruned = train::evaluate(&net, &data.test).1;
    println!(
        "{}: {:.2}% of prunable weights kept, test accuracy {:.2}% → {:.2}%",
        t.model,
        mask.density() * 100.0,
        before * 100.0,
        pruned * 100.0
    );

    let (net, finetuned) = if a.finetune > 0 {
        let mut cfg = a
            .optim
            .config(Length::Iterations(a.finetune), a.finetune, 0);
        cfg.eval_every = a.finetune;
        cfg.validate()?;
        let outcome = train::train(
            net,
            &data,
            Some(&mask),
            &cfg,
            &lottery::device::Device::flex(),
            None,
            &mut Bar::new("fine-tune"),
        )?;
        let acc = outcome.last().test_accuracy;
        println!(
            "fine-tuned {} iterations: test accuracy {:.2}%",
            a.finetune,
            acc * 100.0
        );
        (outcome.network, Some(acc))
    } else {
        (net, None)
    };

    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    let mut weights = net.state_dict();
    mask.apply(&mut weights);
    tensors::save(
        &a.out.join("weights.safetensors"),
        &weights,
        Some(ticket::torch_metadata(&t.model)),
    )?;
    mask.save(&a.out.join("mask.safetensors"))?;
    // Written last: its presence marks a complete result.
    write_json(
        &a.out.join("ticket.json"),
        &TicketInfo {
            model: t.model,
            dataset: t.dataset,
            source: t.weights,
            scope: format!("{:?}", a.scope).to_lowercase(),
            sparsity: 1.0 - mask.density(),
            test_accuracy_before: before,
            test_accuracy_pruned: pruned,
            finetune_iterations: a.finetune,
            test_accuracy_finetuned: finetuned,
        },
    )?;
    println!("wrote {}", a.out.display());
    Ok(())
}
