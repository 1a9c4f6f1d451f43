//! MNIST and every dataset in its IDX layout (Fashion-MNIST, KMNIST…): four files, raw or
//! gzip, in the bundled `data/mnist/` or any directory.

use std::path::{Path, PathBuf};

use super::download::fetch;
use super::{Dataset, Format, idx, mean_std, normalise};
use crate::error::{Error, Result};

const MIRROR: &str = "https://storage.googleapis.com/cvdf-datasets/mnist";

/// MNIST itself, normalised with the paper's constants (mean 0.1307, std 0.3081).
pub struct Mnist;

/// Any IDX dataset of single-channel images, normalised with its own training mean and std.
pub struct MnistFormat;

impl Format for Mnist {
    fn name(&self) -> &'static str {
        "mnist"
    }
    fn example_shape(&self) -> ([usize; 3], usize) {
        ([1, 28, 28], 10)
    }
    fn folder(&self) -> Option<&'static str> {
        Some("mnist")
    }
    fn load(&self, dir: &Path) -> Result<(Dataset, Dataset)> {
        load_idx(dir, Some((0.1307, 0.3081)))
    }
    fn download(&self, dir: &Path) -> Result<()> {
        download_idx(dir)
    }
}

impl Format for MnistFormat {
    fn name(&self) -> &'static str {
        "mnist-format"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["fashion-mnist", "kmnist"]
    }
    fn example_shape(&self) -> ([usize; 3], usize) {
        ([1, 28, 28], 10)
    }
    /// Any IDX dataset: the bundled MNIST would be a silent stand-in, so there is no default.
    fn folder(&self) -> Option<&'static str> {
        None
    }
    fn load(&self, dir: &Path) -> Result<(Dataset, Dataset)> {
        load_idx(dir, None)
    }
    fn download(&self, dir: &Path) -> Result<()> {
        download_idx(dir)
    }
}

fn download_idx(dir: &Path) -> Result<()> {
    for f in MNIST_FILES {
        let name = format!("{f}.gz");
        fetch(&format!("{MIRROR}/{name}"), &dir.join(&name))?;
    }
    Ok(())
}

/// Finds `stem` or `stem.gz`, also accepting the `train-images.idx3-ubyte` spelling.
fn find_idx(dir: &Path, stem: &str) -> Result<PathBuf> {
    let dotted = stem.replacen("-idx", ".idx", 1);
    for name in [
        stem.to_string(),
        format!("{stem}.gz"),
        dotted.clone(),
        format!("{dotted}.gz"),
    ] {
        let p = dir.join(&name);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(Error::io(
        dir.join(format!("{stem}.gz")),
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "not found (nor without .gz); an IDX dataset directory holds train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, raw or .gz",
        ),
    ))
}

pub const MNIST_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// Reads the four IDX files; `stats` gives the normalisation, else the training images' own.
fn load_idx(dir: &Path, stats: Option<(f32, f32)>) -> Result<(Dataset, Dataset)> {
    let read_pair = |images: &str, labels: &str| -> Result<(idx::IdxArray, idx::IdxArray)> {
        let ip = find_idx(dir, images)?;
        let lp = find_idx(dir, labels)?;
        let im = idx::read_idx(&ip)?;
        let lb = idx::read_idx(&lp)?;
        if im.dims.len() != 3 {
            return Err(Error::format(
                &ip,
                format!(
                    "expected rank 3 (count, rows, columns), found dims {:?}",
                    im.dims
                ),
            ));
        }
        if lb.dims.len() != 1 || lb.dims[0] != im.dims[0] {
            return Err(Error::format(
                &lp,
                format!("labels {:?} do not match {} images", lb.dims, im.dims[0]),
            ));
        }
        Ok((im, lb))
    };
    let (tri, trl) = read_pair(MNIST_FILES[0], MNIST_FILES[1])?;
    let (tei, tel) = read_pair(MNIST_FILES[2], MNIST_FILES[3])?;
    if tri.dims[1..] != tei.dims[1..] {
        return Err(Error::format(
            dir,
            format!(
                "train images are {:?} but test images {:?}",
                &tri.dims[1..],
                &tei.dims[1..]
            ),
        ));
    }
    let classes = trl.data.iter().chain(&tel.data).copied().max().unwrap_or(0) as usize + 1;
    let (mean, std) = stats.unwrap_or_else(|| mean_std(&tri.data));
    let shape = [1, tri.dims[1], tri.dims[2]];
    let make = |im: idx::IdxArray, lb: idx::IdxArray| {
        let images = normalise(&im.data, &[mean], &[std], shape.iter().product());
        Dataset::classified(
            images,
            lb.data.iter().map(|&l| l as u32).collect(),
            shape,
            classes,
        )
    };
    Ok((make(tri, trl), make(tei, tel)))
}
