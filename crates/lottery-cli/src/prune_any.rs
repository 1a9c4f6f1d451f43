//! `lottery prune` on a state dict of an architecture lottery does not know: the prunable
//! tensors are chosen by name and rank (`lottery::prune::any`), pruned by the same criteria and
//! scopes, and written back with every other tensor untouched — the "prune my trained model"
//! path for any PyTorch model, with a report of what was kept and what stayed dense and why.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use lottery::files::write_json;
use lottery::layout::RunDir;
use lottery::masks::MaskSet;
use lottery::prune::{self, PruneConfig, any};
use lottery::tensors::{self, HostTensor};
use serde::Serialize;

use crate::prune::{PruneArgs, initial_weights, rate};

/// `report.json`: what each tensor kept, overall, and what stayed dense and why.
#[derive(Debug, Serialize)]
struct Report {
    source: String,
    scope: String,
    criterion: String,
    /// Kept / total per pruned tensor.
    tensors: BTreeMap<String, (usize, usize)>,
    kept: usize,
    total: usize,
    sparsity: f64,
    dense: BTreeMap<String, String>,
}

/// Prunes the state dict at `a.source.source` into `out`; `why_unknown` is why it did not load
/// as one of lottery's own models (said when it also fails here).
pub fn run(a: &PruneArgs, out: &RunDir, why_unknown: &str) -> Result<()> {
    let path = &a.source.source;
    let (dict, _) = tensors::load(path)?;
    if a.finetune > 0 {
        bail!(
            "{}: --finetune needs an architecture lottery trains (--model …; it did not load as one: {why_unknown})",
            path.display()
        );
    }
    for pattern in &a.exclude {
        if !dict.keys().any(|n| n.contains(pattern.as_str())) {
            bail!(
                "--exclude {pattern} matches no tensor of {}",
                path.display()
            );
        }
    }
    let selection = any::select(&dict, &a.include, &a.exclude);
    if selection.prunable.is_empty() {
        bail!(
            "{}: no prunable tensor (no linear or convolution `*.weight`; --include names others)",
            path.display()
        );
    }
    // An earlier mask (`--mask`) is pruned further; otherwise every selected weight is kept.
    let current = match &a.source.mask {
        Some(p) => {
            let m = MaskSet::load(p)?;
            for (n, t) in &m.masks {
                if dict.get(n).is_none_or(|w| w.shape != t.shape) {
                    bail!(
                        "{}: mask `{n}` fits no tensor of {}",
                        p.display(),
                        path.display()
                    );
                }
            }
            m
        }
        None => MaskSet {
            masks: selection
                .prunable
                .iter()
                .map(|n| {
                    let shape = dict[n].shape.clone();
                    (n.clone(), HostTensor::new(shape, vec![1.0; dict[n].len()]))
                })
                .collect(),
        },
    };
    let density = current.density();
    let output = a.output_layer.clone().unwrap_or_default();
    if a.output_sparsity.is_some() && !current.masks.contains_key(&output) {
        bail!("--output-sparsity needs --output-layer NAME, a prunable tensor of this state dict");
    }
    let cfg = PruneConfig {
        scope: a.scope,
        criterion: a.criterion.clone(),
        rate: rate(a.sparsity, density)?,
        output_rate: a
            .output_sparsity
            .map(|s| {
                let m = &current.masks[&output];
                rate(s, m.count_nonzero() as f64 / m.len().max(1) as f64)
            })
            .transpose()?,
        ..PruneConfig::layerwise(0.0)
    };
    cfg.validate()?;
    let needs = cfg.criterion()?.needs();
    if needs.gradients {
        bail!(
            "--criterion {} needs gradients of a model lottery can run; for this state dict use a weight-based criterion",
            a.criterion
        );
    }
    let init = initial_weights(a, needs)?;
    let ctx = prune::Context {
        trained: &dict,
        rewind: init.as_ref(),
        mask: &current,
        gradients: None,
        seed: a.seed,
    };
    let mask = prune::prune(&ctx, &cfg, &output)?;

    let report = Report {
        source: path.display().to_string(),
        scope: format!("{:?}", a.scope).to_lowercase(),
        criterion: a.criterion.clone(),
        tensors: prune::per_layer(&mask),
        kept: mask.kept(),
        total: mask.total(),
        sparsity: 1.0 - mask.density(),
        dense: selection
            .dense
            .iter()
            .map(|(n, why)| (n.clone(), why.to_string()))
            .collect(),
    };
    outln!(
        "{:<40} {:>12} {:>12} {:>8}",
        "tensor",
        "kept",
        "total",
        "kept%"
    );
    for (name, (kept, total)) in &report.tensors {
        outln!(
            "{name:<40} {kept:>12} {total:>12} {:>7.2}%",
            *kept as f64 / (*total).max(1) as f64 * 100.0
        );
    }
    outln!(
        "{:<40} {:>12} {:>12} {:>7.2}%",
        "all pruned tensors",
        report.kept,
        report.total,
        (1.0 - report.sparsity) * 100.0
    );
    for (name, why) in &report.dense {
        outln!("{name:<40} dense: {why}");
    }

    std::fs::create_dir_all(out.root())?;
    let files = out.as_variant();
    let metadata = [("format".to_string(), "pytorch-state-dict".to_string())].into();
    // The input's own bytes and dtypes, pruned entries zeroed: it loads back with `strict=True`.
    tensors::write_masked(path, &files.weights(), &mask.masks, Some(metadata))?;
    mask.save(&files.mask())?;
    // Written last: its presence marks a complete result.
    write_json(&out.prune_report(), &report)?;
    outln!("wrote {}", out.root().display());
    Ok(())
}
