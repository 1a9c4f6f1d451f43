//! `lottery train`: one training run, written to a directory a user can open.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use lottery::data::series::SeriesConfig;
use lottery::data::{DatasetKind, Splits};
use lottery::experiment::presets;
use lottery::files::{read_json, stable_hash, write_json, write_jsonl};
use lottery::layout::RunDir;
use lottery::masks::MaskSet;
use lottery::models::Architecture;
use lottery::models::init::InitScheme;
use lottery::results::VariantResult;
use lottery::tensors;
use lottery::train::{self, Segment, TrainConfig};
use serde::{Deserialize, Serialize};

use crate::progress::Bar;
use crate::settings::{Overrides, TrainFlags};

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Settings (defaults: the LTH paper's LeNet-300-100 run), as named flags or --set KEY=VALUE.
    #[command(flatten)]
    pub settings: Overrides<TrainFlags>,
    /// Train under this mask (safetensors of 0/1 tensors named like the weights).
    #[arg(long)]
    pub mask: Option<PathBuf>,
    /// Start from these weights (ours, or a PyTorch state_dict saved as safetensors).
    #[arg(long)]
    pub from: Option<PathBuf>,
    /// Where to compute: cpu, wgpu, cuda (the last two need the matching build feature).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Output directory (default: runs/train/<model>-<hash of the settings>).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Everything that decides the result; `config.json` holds it and its hash names the directory.
/// The keys are an experiment config's, so the same flags and `--set` keys work for both.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainJob {
    pub model: String,
    pub init: InitScheme,
    pub seed: u64,
    pub dataset: DatasetKind,
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    pub val_size: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<SeriesConfig>,
    pub train: TrainConfig,
    #[serde(default)]
    pub mask: Option<PathBuf>,
    #[serde(default)]
    pub from: Option<PathBuf>,
}

impl Default for TrainJob {
    /// The LTH paper's LeNet-300-100 / MNIST training (the `lenet-mnist-paper` preset's).
    fn default() -> Self {
        let p = presets::preset("lenet-mnist-paper").expect("a known preset");
        TrainJob {
            model: p.model,
            init: p.init,
            seed: p.seed,
            dataset: p.dataset,
            data_dir: None,
            val_size: p.val_size,
            series: p.series,
            train: p.train,
            mask: None,
            from: None,
        }
    }
}

impl TrainJob {
    fn load_data(&self) -> Result<Splits> {
        let dir = self.data_dir.as_deref();
        lottery::data::load_for(self.dataset, dir, self.val_size, self.series.as_ref())
            .with_context(|| {
                let from = match dir {
                    Some(d) => format!(" from {}", d.display()),
                    None => String::new(),
                };
                format!("cannot load {}{from}", self.dataset.name())
            })
    }
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
    let cfg = TrainJob {
        mask: a.mask.clone(),
        from: a.from.clone(),
        ..a.settings.apply(&TrainJob::default())?
    };
    Architecture::parse(&cfg.model)?;
    SeriesConfig::validate_for(cfg.series.as_ref(), cfg.dataset)?;
    cfg.train.validate()?;
    if let Some(w) = cfg.train.rare_evaluation() {
        // On stdout with the results: stderr carries errors only, one line each.
        outln!("note: {w}");
    }
    let mut id = serde_json::to_value(&cfg)?;
    id.as_object_mut().map(|o| o.remove("data_dir"));
    let out = RunDir::new(a.out.clone().unwrap_or_else(|| {
        PathBuf::from("runs/train").join(format!(
            "{}-{:016x}",
            cfg.model,
            stable_hash(&id.to_string())
        ))
    }));

    if out.check(&cfg, &["data_dir"])?
        && let Ok(s) = read_json::<Summary>(&out.summary())
    {
        outln!(
            "already trained in {} (same settings): test {}",
            out.root().display(),
            cfg.dataset.metric().describe(s.result.test_accuracy)
        );
        return Ok(());
    }

    let device = lottery::device::parse(&a.device)?;
    let data = cfg.load_data()?;
    cfg.train.validate_for(&data)?;
    let mut net = lottery::models::init::initialise(
        Architecture::parse(&cfg.model)?.build(data.train.shape, data.train.outputs(), &device)?,
        cfg.init,
        cfg.seed,
    );
    if let Some(from) = &cfg.from {
        let (dict, _) = tensors::load(from)?;
        net = net
            .load_state_dict(&dict)
            .map_err(|m| anyhow::anyhow!("{}: {m}", from.display()))?;
    }
    let mask = match &cfg.mask {
        Some(p) => {
            let m = MaskSet::load(p)?;
            m.check(&net.shapes(), p)?;
            Some(m)
        }
        None => None,
    };

    // Written only now that the data, weights and mask have loaded.
    out.claim_data(&data.id())?;
    out.claim(&cfg, &["data_dir"])?;
    tensors::save(
        &out.init(),
        &net.state_dict(),
        Some(crate::ticket::torch_metadata(&cfg.model)),
    )?;
    let started = std::time::Instant::now();
    let outcome = train::train(
        net,
        &data,
        mask.as_ref(),
        &cfg.train,
        &device,
        Segment::default(),
        &mut Bar::new(&cfg.model).with_metric(cfg.dataset.metric()),
    )
    .with_context(|| {
        format!(
            "training {} (results so far kept in {})",
            cfg.model,
            out.root().display()
        )
    })?;
    let seconds = started.elapsed().as_secs_f64();

    let files = out.as_variant();
    tensors::save(
        &files.weights(),
        &outcome.network.state_dict(),
        Some(crate::ticket::torch_metadata(&cfg.model)),
    )?;
    write_jsonl(&files.metrics(), &outcome.records)?;
    let last = outcome.last();
    let best = outcome.best_val();
    let summary = Summary {
        iterations: last.iteration,
        result: VariantResult::from_outcome(&outcome),
        weights_remaining: mask.as_ref().map_or(1.0, MaskSet::density),
        seconds,
    };
    write_json(&out.summary(), &summary)?;

    let metric = cfg.dataset.metric();
    outln!(
        "test {} after {} iterations ({seconds:.1} s)",
        metric.describe(last.test_accuracy),
        last.iteration
    );
    if let Some(b) = best {
        outln!(
            "minimum validation loss at iteration {}: test {} there",
            b.iteration,
            metric.describe(b.test_accuracy)
        );
    }
    if let Some(naive) = data.test.targets.baseline() {
        let outputs = lottery::train::eval::outputs_valid(&outcome.network, &data.test);
        let mae = data.test.targets.mae(&outputs).unwrap_or(f64::NAN);
        outln!("test MAE {mae:.3e} (the series' units)");
        let line =
            lottery::report::versus_naive(metric, naive, "this network's", last.test_accuracy);
        outln!("{line}");
    }
    outln!("wrote {}", out.root().display());
    Ok(())
}
