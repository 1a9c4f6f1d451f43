//! `lottery run`: find a winning ticket by iterative magnitude pruning, with controls.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use lottery::experiment::{Experiment, ExperimentConfig, presets};
use lottery::report;

use crate::progress::LevelTable;
use crate::settings::{ExperimentFlags, Overrides};

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Starting settings: quick, lenet-mnist-paper, lenet-mnist-openlth, conv2-cifar10,
    /// conv4-cifar10, conv6-cifar10, resnet20-cifar10, vgg16-cifar10, ts-cnn (time series),
    /// vit-mnist (attention). The flags below show the values of the preset named with them
    /// (`--preset P --help`), quick by default.
    #[arg(long, default_value = "quick")]
    pub(crate) preset: String,
    /// A TOML file with any settings (as `--print-config` shows them); applied over the preset.
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// Print the effective settings as TOML and exit.
    #[arg(long)]
    pub(crate) print_config: bool,
    /// Output directory (default: runs/<preset>-<hash of the settings>).
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// cpu, wgpu or cuda (the last two need the matching build feature).
    #[arg(long, default_value = "cpu")]
    pub(crate) device: String,
    /// Trainings at once (default: the number of cores). The ticket and its controls always
    /// train side by side; replicates run side by side while the jobs cover them all.
    /// Changes the wall time, never a result.
    #[arg(long)]
    pub(crate) jobs: Option<usize>,

    /// Settings: every key of the experiment config, as named flags or --set KEY=VALUE,
    /// applied over the preset and --config in command-line order.
    #[command(flatten)]
    pub(crate) settings: Overrides<ExperimentFlags>,
}

impl RunArgs {
    pub(crate) fn config(&self) -> Result<ExperimentConfig> {
        let c = base_config(&self.preset, self.config.as_deref())?;
        let c = self.settings.apply(&c)?;
        c.validate()?;
        Ok(c)
    }
}

/// The preset named `preset`, with the TOML file `config` (any settings, as `--print-config`
/// shows them) laid over it.
pub(crate) fn base_config(preset: &str, config: Option<&Path>) -> Result<ExperimentConfig> {
    let mut c = presets::preset(preset)?;
    if let Some(path) = config {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let overlay: toml::Value = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), one_line(&e.to_string())))?;
        let mut base = serde_json::to_value(&c)?;
        merge(&mut base, serde_json::to_value(overlay)?);
        c = serde_json::from_value(base).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    Ok(c)
}

pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Overlays `top` on `base`, object by object.
fn merge(base: &mut serde_json::Value, top: serde_json::Value) {
    match (base, top) {
        (serde_json::Value::Object(b), serde_json::Value::Object(t)) => {
            for (k, v) in t {
                merge(b.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (b, t) => *b = t,
    }
}

pub fn run(a: RunArgs) -> Result<()> {
    let cfg = a.config()?;
    if a.print_config {
        out!("{}", toml::to_string(&cfg)?);
        return Ok(());
    }
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(format!("{}-{:016x}", a.preset, cfg.hash())));
    let device = lottery::device::parse(&a.device)?;
    let variants: Vec<String> = std::iter::once("ticket".to_string())
        .chain(cfg.controls.iter().cloned())
        .collect();
    let replicates = cfg.replicates;
    if a.jobs == Some(0) {
        anyhow::bail!("invalid --jobs: must be at least 1");
    }
    let mut exp = Experiment::new(cfg, &out, device)?;
    if let Some(j) = a.jobs {
        exp = exp.with_jobs(j);
    }
    outln!("{} → {}", a.preset, out.display());
    // On stdout with the table: stderr carries errors only, one line each.
    if let Some(w) = exp.config.train.rare_evaluation() {
        outln!("note: {w}");
    }
    let indent = if replicates > 1 { "    " } else { "" };
    let metric = exp.config.dataset.metric();
    outln!("{indent}{}", report::table_header(&variants, metric));
    // Level 0 trains the ticket alone; every later level the ticket and each control.
    let total = (1 + exp.config.levels * variants.len()) * replicates;
    let mut live = LevelTable::new(Some(variants.clone()), replicates)
        .with_total(total)
        .with_metric(metric);
    let started = std::time::Instant::now();
    let summary = exp.run(&mut live).with_context(|| {
        format!(
            "experiment in {} (finished levels are kept; rerun to resume)",
            out.display()
        )
    })?;
    if replicates > 1 {
        outln!("\nmean over {replicates} replicates (± half the min–max spread):");
        outln!("{}", report::table_header(&variants, metric));
        for l in &summary.levels {
            outln!("{}", report::table_row(l, &variants, metric));
        }
    }
    if let Some(line) = report::baseline_line(&summary) {
        outln!("{line}");
    }
    let secs = started.elapsed().as_secs();
    outln!(
        "wrote {}/summary.json and plots/ in {} min {} s",
        out.display(),
        secs / 60,
        secs % 60
    );
    Ok(())
}
