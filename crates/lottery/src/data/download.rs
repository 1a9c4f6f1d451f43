//! Fetches public datasets for users with internet access. Never called by tests: the bundled
//! MNIST and files written by the tests cover them.

use std::path::Path;
use std::process::Command;

use crate::data::DatasetKind;
use crate::error::{Error, Result};

/// Downloads `kind` into `dir` with the system's `curl` (and `tar` for archives), so the
/// library carries no HTTP stack for a one-off step.
pub fn download(kind: DatasetKind, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    kind.format().download(dir)
}

/// Unpacks a `.tar.gz` into `dir`, dropping its top folder.
pub(crate) fn untar(archive: &Path, dir: &Path) -> Result<()> {
    run(
        Command::new("tar")
            .arg("xzf")
            .arg(archive)
            .arg("-C")
            .arg(dir)
            .arg("--strip-components=1"),
        dir,
    )
}

pub(crate) fn fetch(url: &str, dest: &Path) -> Result<()> {
    let part = dest.with_extension("part");
    run(
        Command::new("curl")
            .args(["--fail", "--location", "--silent", "--show-error", "-o"])
            .arg(&part)
            .arg(url),
        dest,
    )?;
    std::fs::rename(&part, dest).map_err(|e| Error::io(dest, e))
}

fn run(cmd: &mut Command, what: &Path) -> Result<()> {
    let status = cmd.status().map_err(|e| Error::io(what, e))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::io(
            what,
            std::io::Error::other(format!("{cmd:?} failed with {status}")),
        ))
    }
}
