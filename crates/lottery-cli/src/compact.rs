//! `lottery compact`: a ticket → a `.lsm` file that holds only what computes.

use anyhow::{Context, Result};
use clap::Args;
use lottery_sparse::{Encoding, format};

use crate::args::OutputArgs;
use crate::ticket::{self, SourceArgs};

#[derive(Args, Debug)]
pub struct CompactArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub out: OutputArgs,
}

pub fn run(a: CompactArgs) -> Result<()> {
    a.out.check()?;
    let t = ticket::load(&a.source)?;
    let (input, _) = t.shape()?;
    let source = ticket::provenance(&t);
    let (model, report) = lottery::deploy::compact(&t.net, t.mask.as_ref(), &source, input)
        .with_context(|| format!("compacting {}", t.weights.display()))?;
    format::save(&model, &a.out.output)
        .with_context(|| format!("cannot write {}", a.out.output.display()))?;

    outln!(
        "{:<18} {:>15} {:>7} {:>8} {:>16} {:>8} {:>10}",
        "layer",
        "units",
        "folded",
        "inputs-",
        "live weights",
        "format",
        "bytes"
    );
    // One report row per matrix, in the model's order.
    let matrices = model
        .layers
        .iter()
        .flat_map(lottery_sparse::Layer::matrices);
    for (r, m) in report.iter().zip(matrices) {
        let (enc, bytes) = Encoding::smallest(m);
        outln!(
            "{:<18} {:>7} → {:>5} {:>7} {:>8} {:>7} / {:>6} {:>8} {:>10}",
            r.name,
            r.units_before,
            r.units_after,
            r.folded,
            r.inputs_dropped,
            r.live_weights,
            r.weights_before,
            enc.name(),
            bytes
        );
    }
    let params: usize = t.net.state_dict().values().map(|t| t.len()).sum();
    let dense_bytes = params * 4;
    let file_bytes = std::fs::metadata(&a.out.output)
        .with_context(|| format!("cannot stat {}", a.out.output.display()))?
        .len() as usize;
    let ratio = dense_bytes as f64 / file_bytes.max(1) as f64;
    let change = if ratio >= 1.0 {
        format!("{ratio:.1}× smaller")
    } else {
        format!(
            "{:.1}× larger: too few weights were pruned for sparse storage to pay",
            1.0 / ratio
        )
    };
    outln!(
        "dense float32 parameters {} bytes → {} {} bytes ({change})",
        dense_bytes,
        a.out.output.display(),
        file_bytes
    );
    Ok(())
}
