//! `lottery export`: a ticket as a PyTorch state_dict in safetensors, mask applied.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use lottery::tensors;

use crate::ticket::{self, SourceArgs};

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// The safetensors file to write (`torch.nn.Module.load_state_dict(safetensors.torch.load_file(…))`).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Replace the output file if it exists.
    #[arg(long)]
    pub force: bool,
}

pub fn run(a: ExportArgs) -> Result<()> {
    if a.output.exists() && !a.force {
        bail!("{} exists; pass --force to replace it", a.output.display());
    }
    let t = ticket::load(&a.source)?;
    let mut dict = t.net.state_dict();
    if let Some(m) = &t.mask {
        m.apply(&mut dict);
    }
    tensors::save(&a.output, &dict, Some(ticket::torch_metadata(&t.model)))?;
    let (kept, total) = t.mask.as_ref().map_or((1, 1), |m| (m.kept(), m.total()));
    println!(
        "wrote {} ({}, {:.2}% of prunable weights nonzero)",
        a.output.display(),
        t.model,
        kept as f64 / total as f64 * 100.0
    );
    Ok(())
}
