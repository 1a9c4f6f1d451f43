//! Where a pruned network comes from: an experiment directory (`lottery run`), a pruned or
//! trained directory (`lottery prune`, `lottery train`), or a bare weights file. Every command
//! that consumes a ticket (compact, export, prune, infer's reference) resolves it here.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use lottery::data::DatasetKind;
use lottery::data::series::SeriesConfig;
use lottery::experiment::ExperimentConfig;
use lottery::layout::RunDir;
use lottery::masks::MaskSet;
use lottery::models::{Architecture, Network};
use lottery::tensors;
use serde::{Deserialize, Serialize};

#[derive(Args, Debug, Clone)]
pub struct SourceArgs {
    /// An experiment directory, a directory from `lottery prune` or `lottery train`, or a
    /// weights file (ours, or a PyTorch state_dict in safetensors).
    pub source: PathBuf,
    /// Level of an experiment directory (default: the last finished one).
    #[arg(long)]
    pub level: Option<usize>,
    /// Variant of an experiment level: ticket, reinit or random_prune.
    #[arg(long, default_value = "ticket")]
    pub variant: String,
    /// Mask for a weights file (0/1 tensors named like the weights).
    #[arg(long)]
    pub mask: Option<PathBuf>,
    /// Architecture, when the source does not record it (default: lenet_300_100).
    #[arg(long)]
    pub model: Option<String>,
    /// Dataset the network reads, when the source does not record it (default: mnist).
    #[arg(long)]
    pub dataset: Option<String>,
}

/// What `lottery prune` records beside its weights, so later commands need no flags.
#[derive(Debug, Serialize, Deserialize)]
pub struct TicketInfo {
    pub model: String,
    pub dataset: DatasetKind,
    pub source: PathBuf,
    pub scope: String,
    /// The pruning criterion (absent in files written before criteria were selectable).
    #[serde(default = "magnitude")]
    pub criterion: String,
    pub sparsity: f64,
    pub test_accuracy_before: f64,
    pub test_accuracy_pruned: f64,
    pub finetune_iterations: usize,
    pub test_accuracy_finetuned: Option<f64>,
}

fn magnitude() -> String {
    "magnitude".into()
}

/// A network with its mask, ready to evaluate, compact or export.
pub struct Ticket {
    pub net: Network,
    pub mask: Option<MaskSet>,
    pub model: String,
    pub dataset: DatasetKind,
    /// The series settings of a run on `--dataset series` (its window and columns fix the
    /// network's input); `None` for other data, or for the default series.
    pub series: Option<SeriesConfig>,
    /// The weights file it was read from, for messages.
    pub weights: PathBuf,
    /// The experiment level and variant, when it came from an experiment directory.
    pub origin: Option<(usize, String)>,
}

impl Ticket {
    /// One example's shape and the network's outputs.
    pub fn shape(&self) -> Result<([usize; 3], usize)> {
        example_shape(self.dataset, self.series.as_ref())
    }
}

/// The input shape and outputs of a network on `dataset`; a series' own settings decide its
/// window and columns.
pub fn example_shape(
    dataset: DatasetKind,
    series: Option<&SeriesConfig>,
) -> Result<([usize; 3], usize)> {
    let (shape, outputs) = dataset.example_shape();
    Ok(match series {
        Some(s) if dataset == DatasetKind::SERIES => (s.example_shape()?, outputs),
        _ => (shape, outputs),
    })
}

/// What a directory says about the network in it.
struct Found {
    weights: PathBuf,
    mask: Option<PathBuf>,
    model: Option<String>,
    dataset: Option<DatasetKind>,
    series: Option<SeriesConfig>,
    /// The experiment level and variant, when it came from an experiment directory.
    origin: Option<(usize, String)>,
}

pub fn load(a: &SourceArgs) -> Result<Ticket> {
    let found = if a.source.is_dir() {
        in_dir(a)?
    } else if a.source.is_file() {
        if is_compact(&a.source) {
            bail!(
                "{} is already a compact model (.lsm); `lottery infer {}` runs it",
                a.source.display(),
                a.source.display()
            );
        }
        Found {
            weights: a.source.clone(),
            mask: None,
            model: None,
            dataset: None,
            series: None,
            origin: None,
        }
    } else {
        bail!("{}: no such file or directory", a.source.display());
    };
    let model = a
        .model
        .clone()
        .or(found.model)
        .unwrap_or_else(|| "lenet_300_100".into());
    let dataset = match &a.dataset {
        Some(d) => DatasetKind::parse(d)?,
        None => found.dataset.unwrap_or(DatasetKind::MNIST),
    };
    let (shape, classes) = example_shape(dataset, found.series.as_ref())?;
    let device = lottery::device::Device::flex();
    let net = Architecture::parse(&model)?.build(shape, classes, &device)?;
    let (dict, _) = tensors::load(&found.weights)?;
    let net = net.load_state_dict(&dict).map_err(|m| {
        anyhow::anyhow!(
            "{}: {m} (is it a {model} for {}? say --model/--dataset)",
            found.weights.display(),
            dataset.name()
        )
    })?;
    let mask = match a.mask.clone().or(found.mask) {
        Some(p) => {
            let m = MaskSet::load(&p)?;
            m.check(&net.shapes(), &p)?;
            Some(m)
        }
        None => None,
    };
    Ok(Ticket {
        net,
        mask,
        model,
        dataset,
        series: found.series,
        weights: found.weights,
        origin: found.origin,
    })
}

fn in_dir(a: &SourceArgs) -> Result<Found> {
    let dir = RunDir::new(&a.source);
    if dir.ticket_info().is_file() {
        let info: TicketInfo = lottery::files::read_json(&dir.ticket_info())?;
        let files = dir.as_variant();
        return Ok(Found {
            weights: files.weights(),
            mask: Some(files.mask()),
            model: Some(info.model),
            dataset: Some(info.dataset),
            series: None,
            origin: None,
        });
    }
    let config = dir.config();
    if !config.is_file() {
        bail!(
            "{}: holds neither config.json (lottery run/train) nor ticket.json (lottery prune)",
            a.source.display()
        );
    }
    let raw: serde_json::Value = lottery::files::read_json(&config)?;
    if raw.get("levels").is_some() {
        let cfg: ExperimentConfig = serde_json::from_value(raw)
            .with_context(|| format!("{}: not an experiment config", config.display()))?;
        let first = dir.first_replicate();
        let level = match a.level {
            Some(l) => l,
            None => first.last_finished(&a.variant).with_context(|| {
                format!(
                    "{}: no finished level of `{}` yet",
                    a.source.display(),
                    a.variant
                )
            })?,
        };
        let vdir = first.variant(level, &a.variant);
        if !vdir.is_complete() {
            bail!(
                "{}: level {level} of `{}` has not finished (levels run 0..={})",
                a.source.display(),
                a.variant,
                cfg.levels
            );
        }
        return Ok(Found {
            weights: vdir.weights(),
            mask: Some(vdir.mask()),
            model: Some(cfg.model),
            dataset: Some(cfg.dataset),
            series: cfg.series,
            origin: Some((level, a.variant.clone())),
        });
    }
    // A `lottery train` directory: the model settings and the mask it trained under.
    let model = raw["model"].as_str().map(String::from);
    let dataset = match raw["dataset"].as_str() {
        Some(d) => Some(DatasetKind::parse(d)?),
        None => None,
    };
    let series = match raw.get("series").filter(|s| !s.is_null()) {
        Some(s) => Some(
            serde_json::from_value(s.clone())
                .with_context(|| format!("{}: unreadable series settings", config.display()))?,
        ),
        None => None,
    };
    Ok(Found {
        weights: dir.as_variant().weights(),
        mask: raw["mask"].as_str().map(PathBuf::from),
        model,
        dataset,
        series,
        origin: None,
    })
}

/// The `source` a compact model records: the architecture, and where in an experiment the
/// ticket came from (`lenet_300_100 (level 3, reinit)`), so `infer --reference DIR` finds it.
pub fn provenance(t: &Ticket) -> String {
    match &t.origin {
        Some((level, variant)) => format!("{} (level {level}, {variant})", t.model),
        None => t.model.clone(),
    }
}

/// The architecture name in a [`provenance`].
pub fn architecture_of(source: &str) -> &str {
    source.split(" (level ").next().unwrap_or(source)
}

/// The level and variant [`provenance`] recorded, if any.
pub fn parse_provenance(source: &str) -> Option<(usize, String)> {
    let inner = source.rsplit_once(" (level ")?.1.strip_suffix(')')?;
    let (level, variant) = inner.split_once(", ")?;
    Some((level.parse().ok()?, variant.to_string()))
}

/// Whether `path` starts with the `.lsm` magic bytes.
fn is_compact(path: &std::path::Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 8];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| head == lottery_sparse::format::MAGIC)
}

/// Metadata of the weights files we write: PyTorch's `load_state_dict` reads them as they are.
pub fn torch_metadata(model: &str) -> std::collections::HashMap<String, String> {
    [
        ("model".to_string(), model.to_string()),
        ("format".to_string(), "pytorch-state-dict".to_string()),
    ]
    .into()
}

#[cfg(test)]
mod tests {
    #[test]
    fn provenance_round_trips() {
        assert_eq!(
            super::parse_provenance("lenet_300_100 (level 3, random_prune)"),
            Some((3, "random_prune".to_string()))
        );
        assert_eq!(super::parse_provenance("lenet_300_100"), None);
        assert_eq!(super::architecture_of("conv2 (level 1, ticket)"), "conv2");
        assert_eq!(super::architecture_of("conv2"), "conv2");
    }
}
