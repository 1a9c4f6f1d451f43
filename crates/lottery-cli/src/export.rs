//! `lottery export`: a ticket as a PyTorch state_dict in safetensors, mask applied.

use anyhow::Result;
use clap::Args;
use lottery::tensors;

use crate::args::OutputArgs;
use crate::ticket::{self, SourceArgs};

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub out: OutputArgs,
}

pub fn run(a: ExportArgs) -> Result<()> {
    a.out.check()?;
    let t = ticket::load(&a.source)?;
    let mut dict = t.net.state_dict();
    if let Some(m) = &t.mask {
        m.apply(&mut dict);
    }
    tensors::save(&a.out.output, &dict, Some(ticket::torch_metadata(&t.model)))?;
    let (kept, total) = t.mask.as_ref().map_or((1, 1), |m| (m.kept(), m.total()));
    outln!(
        "wrote {} ({}, {:.2}% of prunable weights nonzero)",
        a.out.output.display(),
        t.model,
        kept as f64 / total as f64 * 100.0
    );
    Ok(())
}
