//! `lottery prune`: one-shot magnitude pruning of a trained network, optionally fine-tuned.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use lottery::files::write_json;
use lottery::layout::RunDir;
use lottery::masks::MaskSet;
use lottery::prune::{self, PruneConfig, Scope};
use lottery::tensors::{self, StateDict};
use lottery::train::{self, Length, Segment, TrainConfig};

use crate::progress::Bar;
use crate::settings::{OptimFlags, Overrides, TrainOnly};
use crate::ticket::{self, SourceArgs, Ticket, TicketInfo};

#[derive(Args, Debug)]
pub struct PruneArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Fraction of the prunable weights removed in all (0.9 keeps 10%).
    #[arg(long)]
    pub sparsity: f64,
    /// layerwise (every layer loses the same fraction; the LTH paper) or global (one threshold
    /// across all layers; OpenLTH).
    #[arg(long, default_value = "layerwise", value_parser = |s: &str| Scope::parse(s))]
    pub scope: Scope,
    /// What decides which weights go (the criteria are listed by name).
    #[arg(long, default_value = "magnitude", help = format!(
        "What decides which weights go: {}",
        lottery::prune::criterion::names().join(", ")
    ))]
    pub criterion: String,
    /// The network's initial (or rewind-point) weights, for criteria that compare with them
    /// (large_init, large_final_same_sign, magnitude_increase, movement, snip).
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Seed of the random criterion.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Sparsity of the output layer (layer-wise only; default: --sparsity).
    #[arg(long)]
    pub output_sparsity: Option<f64>,
    /// The output layer's weight, for --output-sparsity, in a state dict of an architecture
    /// lottery does not know (its own models know theirs).
    #[arg(long)]
    pub output_layer: Option<String>,
    /// Also prune tensors whose names contain these (comma-separated), e.g. bias.
    #[arg(long, value_delimiter = ',')]
    pub include: Vec<String>,
    /// Never prune tensors whose names contain these (comma-separated), e.g. fc.
    #[arg(long, value_delimiter = ',')]
    pub exclude: Vec<String>,
    /// Fine-tune the pruned network for this many iterations under its mask.
    #[arg(long, default_value_t = 0)]
    pub finetune: usize,
    /// Where fine-tuning runs: cpu, wgpu or cuda (the last two need the matching build feature).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Fine-tuning settings (defaults: the LTH paper's Adam 1.2e-3, batch 60).
    #[command(flatten)]
    pub optim: Overrides<OptimFlags>,
    /// Directory holding the dataset files (default: the bundled data/ or $LOTTERY_DATA).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Output directory: weights.safetensors (mask applied; PyTorch loads it), mask.safetensors,
    /// and ticket.json (lottery's own models) or report.json (any other state dict).
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
    let out = RunDir::new(&a.out);
    if out.ticket_info().exists() || out.prune_report().exists() {
        bail!(
            "{} already holds a pruned network; choose another --out or remove it",
            a.out.display()
        );
    }
    let t = match ticket::load(&a.source) {
        Ok(t) => t,
        // A state dict of an architecture lottery does not know: pruned without one.
        Err(e) if a.source.source.is_file() && a.source.model.is_none() => {
            return crate::prune_any::run(&a, &out, &e.to_string());
        }
        Err(e) => return Err(e),
    };
    let dir = t.dataset.dir(a.data_dir.as_deref())?;
    let data = lottery::data::load(t.dataset, &dir, 5000)
        .with_context(|| format!("cannot load {} from {}", t.dataset.name(), dir.display()))?;
    let before = train::evaluate(&t.net, &data.test).1;

    // Rates are fractions of what the current mask keeps, so an already pruned network ends at
    // the requested sparsity overall.
    let all: Vec<String> = t.net.tensors().into_iter().map(|x| x.name).collect();
    let targets = PruneConfig {
        include: a.include.clone(),
        exclude: a.exclude.clone(),
        ..PruneConfig::layerwise(0.0)
    }
    .targets(&t.net.prunable(), &all);
    let current = t
        .mask
        .clone()
        .unwrap_or_else(|| MaskSet::ones(&t.net.shapes(), &targets));
    let output = a
        .output_layer
        .clone()
        .unwrap_or_else(|| t.net.output_layer());
    let density = current.density();
    let out_density = current
        .masks
        .get(&output)
        .map_or(1.0, |m| m.count_nonzero() as f64 / m.len().max(1) as f64);
    let cfg = PruneConfig {
        scope: a.scope,
        criterion: a.criterion.clone(),
        rate: prune::rate(a.sparsity, density)?,
        output_rate: match a.output_sparsity {
            Some(s) => Some(prune::rate(s, out_density)?),
            None => None,
        },
        ..PruneConfig::layerwise(0.0)
    };
    cfg.validate()?;
    let needs = cfg.criterion()?.needs();
    let init = initial_weights(&a, needs)?;
    let gradients = match &init {
        Some(init) if needs.gradients => Some(gradients_at(&t, init, &current, &data)?),
        _ => None,
    };
    let mut weights = t.net.state_dict();
    let ctx = prune::Context {
        trained: &weights,
        rewind: init.as_ref(),
        mask: &current,
        gradients: gradients.as_ref(),
        seed: a.seed,
    };
    let mask = prune::prune(&ctx, &cfg, &output)?;
    mask.apply(&mut weights);
    let net = t
        .net
        .load_state_dict(&weights)
        .map_err(|m| anyhow::anyhow!("{m}"))?;
    let pruned = train::evaluate(&net, &data.test).1;
    outln!(
        "{}: {:.2}% of prunable weights kept, test accuracy {:.2}% → {:.2}%",
        t.model,
        mask.density() * 100.0,
        before * 100.0,
        pruned * 100.0
    );

    let (net, finetuned) = if a.finetune > 0 {
        let mut base = TrainConfig::lenet_paper(a.finetune);
        base.length = Length::Iterations(a.finetune);
        base.eval_every = a.finetune;
        let cfg = a.optim.apply(&TrainOnly { train: base })?.train;
        cfg.validate()?;
        let outcome = train::train(
            net,
            &data,
            Some(&mask),
            &cfg,
            &lottery::device::parse(&a.device)?,
            Segment::default(),
            &mut Bar::new("fine-tune"),
        )?;
        let acc = outcome.last().test_accuracy;
        outln!(
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
    let files = out.as_variant();
    tensors::save(
        &files.weights(),
        &weights,
        Some(ticket::torch_metadata(&t.model)),
    )?;
    mask.save(&files.mask())?;
    // Written last: its presence marks a complete result.
    write_json(
        &out.ticket_info(),
        &TicketInfo {
            model: t.model,
            dataset: t.dataset,
            source: t.weights,
            scope: format!("{:?}", a.scope).to_lowercase(),
            criterion: a.criterion,
            sparsity: 1.0 - mask.density(),
            test_accuracy_before: before,
            test_accuracy_pruned: pruned,
            finetune_iterations: a.finetune,
            test_accuracy_finetuned: finetuned,
        },
    )?;
    outln!("wrote {}", a.out.display());
    Ok(())
}

/// The weights `--init` names, which criteria comparing with the start (`needs.rewind`) require.
pub fn initial_weights(a: &PruneArgs, needs: prune::Needs) -> Result<Option<StateDict>> {
    match &a.init {
        Some(p) => Ok(Some(tensors::load(p)?.0)),
        None if needs.rewind => bail!(
            "--criterion {} compares with the initial weights; give them with --init FILE",
            a.criterion
        ),
        None => Ok(None),
    }
}

/// SNIP's gradients: the loss on one training batch with the network at its initial weights,
/// masked as it is now.
fn gradients_at(
    t: &Ticket,
    init: &StateDict,
    mask: &MaskSet,
    data: &lottery::data::Splits,
) -> Result<StateDict> {
    let net = t
        .net
        .clone()
        .load_state_dict(init)
        .map_err(|m| anyhow::anyhow!("--init: {m}"))?;
    let cfg = TrainConfig::lenet_paper(1);
    let mut trainer = train::Trainer::new(
        net,
        data,
        Some(mask),
        &cfg,
        &lottery::device::Device::flex(),
    )?;
    Ok(trainer.gradients()?)
}
