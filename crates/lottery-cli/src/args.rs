//! Flags several commands share that are not settings of a config (those are in `settings`).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

/// A file a command writes, never silently over an existing one.
#[derive(Args, Debug, Clone)]
pub struct OutputArgs {
    /// The file to write (`--out` also works, as for the commands that write a directory).
    #[arg(short, long, visible_alias = "out")]
    pub output: PathBuf,
    /// Replace the output file if it exists.
    #[arg(long)]
    pub force: bool,
}

impl OutputArgs {
    /// Refuses to go on when the file exists and `--force` was not given.
    pub fn check(&self) -> Result<()> {
        if self.output.exists() && !self.force {
            anyhow::bail!(
                "{} exists; pass --force to replace it",
                self.output.display()
            );
        }
        Ok(())
    }
}
