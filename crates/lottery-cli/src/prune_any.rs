//! `lottery prune` on a state dict of an architecture lottery does not know: the prunable
//! tensors are chosen by name and rank (`lottery::prune::any`), pruned by the same criteria and
//! scopes, and written back with every other tensor untouched — the "prune my trained model"
//! path for any PyTorch model, with a report of what was kept and what stayed dense and why.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use lottery::files::write_json;
use lottery::layout::RunDir;
use lottery::masks::MaskSet;
use lottery::prune::{self, any};
use lottery::tensors;
use serde::Serialize;

use crate::prune::PruneArgs;

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
    let mask = a
        .source
        .mask
        .as_ref()
        .map(|p| MaskSet::load(p))
        .transpose()?;
    let init = initial_weights(a)?;
    let request = any::Request {
        sparsity: a.sparsity,
        scope: a.scope,
        criterion: &a.criterion,
        include: &a.include,
        exclude: &a.exclude,
        output: match (&a.output_layer, a.output_sparsity) {
            (Some(name), Some(s)) => Some((name.as_str(), s)),
            (None, Some(_)) => bail!(
                "--output-sparsity needs --output-layer NAME, a prunable tensor of this state dict"
            ),
            (_, None) => None,
        },
        seed: a.seed,
        init: init.as_ref(),
        mask: mask.as_ref(),
    };
    let (mask, selection) =
        any::prune_dict(&dict, &request).with_context(|| path.display().to_string())?;

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

/// The initial weights (`--init`), which some criteria compare with.
fn initial_weights(a: &PruneArgs) -> Result<Option<lottery::tensors::StateDict>> {
    Ok(match &a.init {
        Some(p) => Some(tensors::load(p)?.0),
        None => None,
    })
}
