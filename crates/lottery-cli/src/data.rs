//! `lottery data`: what datasets are on disk, whether their files are sound; download on request.
//! Exit status: 0 when every dataset found is sound (missing ones are listed as missing), 1 when
//! a dataset's files are broken or a download failed.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use lottery::data::{self, DatasetKind};

#[derive(Args, Debug)]
pub struct DataArgs {
    /// Check only this dataset (mnist, mnist-format, cifar10, series).
    #[arg(long)]
    dataset: Option<String>,
    /// Look here instead of the default directory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Download the dataset into the directory first (needs internet access and curl).
    #[arg(long, requires = "dataset")]
    download: bool,
}

pub fn run(a: DataArgs) -> Result<()> {
    let kinds = match &a.dataset {
        Some(name) => vec![DatasetKind::parse(name)?],
        None => vec![DatasetKind::MNIST, DatasetKind::CIFAR10],
    };
    let mut failures = 0;
    for kind in kinds {
        if kind == DatasetKind::SERIES {
            // Nothing on disk: the series is generated, or read from the CSV a run names.
            outln!(
                "{:<8} ok       generated, or read with --data-file when a run names one",
                kind.name()
            );
            continue;
        }
        let dir = a.data_dir.clone().unwrap_or_else(|| kind.default_dir());
        if a.download {
            outln!("downloading {} into {} …", kind.name(), dir.display());
            data::download::download(kind, &dir)?;
        }
        match data::load(kind, &dir, 0) {
            Ok(s) => outln!(
                "{:<8} ok       {}: {} training and {} test images of {:?}, {} classes",
                kind.name(),
                dir.display(),
                s.train.len(),
                s.test.len(),
                s.train.shape,
                s.train.outputs()
            ),
            Err(e) => {
                // Missing data is a state to report (CIFAR-10 is not bundled), never a failure;
                // files that are there but broken are, whether listed or asked for.
                // A folder holding some of the files is incomplete: broken, not missing.
                let empty = std::fs::read_dir(&dir).map_or(true, |mut d| d.next().is_none());
                let missing = empty
                    && matches!(&e, lottery::Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound);
                if !missing {
                    failures += 1;
                }
                outln!(
                    "{:<8} {}  {e}",
                    kind.name(),
                    if missing { "missing" } else { "BROKEN " }
                );
            }
        }
    }
    if failures > 0 {
        anyhow::bail!("{failures} dataset(s) could not be read");
    }
    Ok(())
}
