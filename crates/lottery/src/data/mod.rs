//! Datasets: reading them from disk, normalising, holding out a validation split, and serving
//! shuffled (and, for CIFAR, augmented) batches in a deterministic order.

pub mod cifar;
pub mod download;
pub mod idx;
pub mod mnist;
pub mod series;
pub mod targets;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::rng::Rng;
pub use targets::{Metric, Targets};

/// A dataset format: the files a directory holds and how they become training and test sets.
/// Each format lives in its own file and is one line of [`FORMATS`].
pub trait Format: Sync {
    /// The name configs and `--dataset` use.
    fn name(&self) -> &'static str;
    /// Other names `--dataset` accepts for it.
    fn aliases(&self) -> &'static [&'static str] {
        &[]
    }
    /// `[channels, height, width]` of one example, and the number of classes, for building a
    /// model without reading the data.
    fn example_shape(&self) -> ([usize; 3], usize);
    /// The folder under `$LOTTERY_DATA` or `data/` where it lives by default; `None` for a
    /// format that reads whatever dataset the user names (`--data-dir` is then required).
    fn folder(&self) -> Option<&'static str>;
    /// The training and test sets in `dir`, normalised.
    fn load(&self, dir: &Path) -> Result<(Dataset, Dataset)>;
    /// Fetches the files into `dir` (users with internet access only; never in tests).
    fn download(&self, dir: &Path) -> Result<()>;
    /// What evaluation reports beside the loss on this kind of data.
    fn metric(&self) -> Metric {
        Metric::Accuracy
    }
}

/// Every dataset format. A new one: a file in `data/` and a line here.
pub static FORMATS: &[&dyn Format] = &[
    &mnist::Mnist,
    &mnist::MnistFormat,
    &cifar::Cifar10,
    &series::SeriesFormat,
];

/// Which dataset format to read from a directory; in configs, its name.
#[derive(Clone, Copy)]
pub struct DatasetKind(&'static dyn Format);

impl DatasetKind {
    /// MNIST itself: the paper's normalisation constants.
    pub const MNIST: DatasetKind = DatasetKind(&mnist::Mnist);
    /// Any other dataset in MNIST's IDX layout (Fashion-MNIST, KMNIST…), normalised with its
    /// own training images' mean and standard deviation.
    pub const MNIST_FORMAT: DatasetKind = DatasetKind(&mnist::MnistFormat);
    pub const CIFAR10: DatasetKind = DatasetKind(&cifar::Cifar10);
    /// A time series (generated, or a user's CSV) as windows and values to predict, split by
    /// time; its settings are a config's `series` table.
    pub const SERIES: DatasetKind = DatasetKind(&series::SeriesFormat);

    pub fn parse(name: &str) -> Result<Self> {
        FORMATS
            .iter()
            .find(|f| f.name() == name || f.aliases().contains(&name))
            .map(|&f| DatasetKind(f))
            .ok_or_else(|| {
                let names: Vec<&str> = FORMATS.iter().map(|f| f.name()).collect();
                Error::config(
                    "dataset",
                    format!("`{name}` is not one of {}", names.join(", ")),
                )
            })
    }

    pub fn all() -> impl Iterator<Item = DatasetKind> {
        FORMATS.iter().map(|&f| DatasetKind(f))
    }

    pub fn name(self) -> &'static str {
        self.0.name()
    }

    pub fn format(self) -> &'static dyn Format {
        self.0
    }

    pub fn metric(self) -> Metric {
        self.0.metric()
    }

    /// `[channels, height, width]` of one example, and the number of classes.
    pub fn example_shape(self) -> ([usize; 3], usize) {
        self.0.example_shape()
    }

    /// `given`, or the default directory; a format with no default folder needs `given`.
    pub fn dir(self, given: Option<&Path>) -> Result<PathBuf> {
        match (given, self.0.folder()) {
            (Some(d), _) => Ok(d.to_path_buf()),
            (None, Some(_)) => Ok(self.default_dir()),
            (None, None) => Err(Error::config(
                "data-dir",
                format!(
                    "--dataset {} reads the dataset you name: give its directory with --data-dir",
                    self.name()
                ),
            )),
        }
    }

    /// Where the data lives when the user does not say: `$LOTTERY_DATA/<folder>`, else
    /// `./data/<folder>` if present, else the `data/` of the source checkout (MNIST ships there).
    pub fn default_dir(self) -> PathBuf {
        let sub = self.0.folder().unwrap_or(self.name());
        if let Some(root) = std::env::var_os("LOTTERY_DATA") {
            return PathBuf::from(root).join(sub);
        }
        let local = Path::new("data").join(sub);
        if local.is_dir() {
            return local;
        }
        let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data");
        bundled.canonicalize().unwrap_or(bundled).join(sub)
    }
}

impl PartialEq for DatasetKind {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Eq for DatasetKind {}

impl std::fmt::Debug for DatasetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for DatasetKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for DatasetKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        DatasetKind::parse(&name).map_err(serde::de::Error::custom)
    }
}

/// Examples stored normalised, one after another in C×H×W order (a series window is
/// `[channels, 1, window]`), and their targets.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub images: Vec<f32>,
    pub targets: Targets,
    /// (channels, height, width)
    pub shape: [usize; 3],
}

impl Dataset {
    /// A classification set: `labels` out of `classes`.
    pub fn classified(
        images: Vec<f32>,
        labels: Vec<u32>,
        shape: [usize; 3],
        classes: usize,
    ) -> Self {
        Dataset {
            images,
            targets: Targets::Classes { labels, classes },
            shape,
        }
    }

    pub fn len(&self) -> usize {
        self.targets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// The network's outputs per example: classes, or 1 for a value to predict.
    pub fn outputs(&self) -> usize {
        self.targets.outputs()
    }

    pub fn example_len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn image(&self, i: usize) -> &[f32] {
        let n = self.example_len();
        &self.images[i * n..(i + 1) * n]
    }

    fn subset(&self, indices: &[usize]) -> Dataset {
        let n = self.example_len();
        let mut images = Vec::with_capacity(indices.len() * n);
        for &i in indices {
            images.extend_from_slice(self.image(i));
        }
        Dataset {
            images,
            targets: self.targets.subset(indices),
            shape: self.shape,
        }
    }
}

/// Training, validation and test sets, ready for training.
#[derive(Debug, Clone)]
pub struct Splits {
    pub kind: DatasetKind,
    pub train: Dataset,
    pub val: Dataset,
    pub test: Dataset,
}

impl Splits {
    /// The dataset's name and a hash of every example and label, so a run directory can tell
    /// the same data at another path from other data.
    pub fn id(&self) -> crate::layout::DataId {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut mix = |x: u32| h = (h ^ x as u64).wrapping_mul(0x0000_0100_0000_01b3);
        for set in [&self.train, &self.val, &self.test] {
            set.shape.iter().for_each(|&d| mix(d as u32));
            set.images.iter().for_each(|v| mix(v.to_bits()));
            set.targets.bits().into_iter().for_each(&mut mix);
        }
        crate::layout::DataId {
            name: self.kind.name().to_string(),
            content_hash: h,
        }
    }
}

/// Fixed so that every seed and replicate sees the same validation images; variation between
/// replicates then comes from initialisation and data order only.
const SPLIT_SEED: u64 = 0x5eed;

/// The splits a config names: a series from its `series` table (split by time), any other
/// dataset from `data_dir` (or its default directory) with `val_size` examples held out.
pub fn load_for(
    kind: DatasetKind,
    data_dir: Option<&Path>,
    val_size: usize,
    series: Option<&series::SeriesConfig>,
) -> Result<Splits> {
    if kind == DatasetKind::SERIES {
        return series.cloned().unwrap_or_default().splits();
    }
    load(kind, &kind.dir(data_dir)?, val_size)
}

/// Loads a dataset, normalises it and holds `val_size` training examples out for validation.
pub fn load(kind: DatasetKind, dir: &Path, val_size: usize) -> Result<Splits> {
    let (train, test) = kind.format().load(dir)?;
    if val_size >= train.len() {
        return Err(Error::config(
            "val-size",
            format!(
                "{val_size} leaves no training examples (the training set has {})",
                train.len()
            ),
        ));
    }
    let order = Rng::derive(SPLIT_SEED, "validation split").permutation(train.len());
    let (val_idx, train_idx) = order.split_at(val_size);
    let mut train_idx = train_idx.to_vec();
    let mut val_idx = val_idx.to_vec();
    // Keep the original order within each part: stable, and easy to reason about.
    train_idx.sort_unstable();
    val_idx.sort_unstable();
    Ok(Splits {
        kind,
        val: train.subset(&val_idx),
        train: train.subset(&train_idx),
        test,
    })
}

pub(crate) fn mean_std(pixels: &[u8]) -> (f32, f32) {
    let n = pixels.len().max(1) as f64;
    let mean = pixels.iter().map(|&p| p as f64 / 255.0).sum::<f64>() / n;
    let var = pixels
        .iter()
        .map(|&p| (p as f64 / 255.0 - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean as f32, (var.sqrt() as f32).max(1e-6))
}

/// Scales bytes to [0, 1] and standardises per channel (`mean.len()` channels, C×H×W order).
pub(crate) fn normalise(pixels: &[u8], mean: &[f32], std: &[f32], example: usize) -> Vec<f32> {
    let per_channel = (example / mean.len()).max(1);
    pixels
        .iter()
        .enumerate()
        .map(|(i, &p)| {
            let c = (i % example) / per_channel;
            (p as f32 / 255.0 - mean[c]) / std[c]
        })
        .collect()
}

/// Serves training batches: a fresh permutation each epoch, drawn from the data seed, with
/// the last incomplete batch of an epoch dropped so every step has the same shape.
#[derive(Debug, Clone)]
pub struct BatchOrder {
    seed: u64,
    batch: usize,
    len: usize,
    epoch: usize,
    order: Vec<usize>,
    cursor: usize,
}

impl BatchOrder {
    pub fn new(len: usize, batch: usize, seed: u64) -> Self {
        let mut b = BatchOrder {
            seed,
            batch,
            len,
            epoch: 0,
            order: Vec::new(),
            cursor: 0,
        };
        b.order = b.epoch_order(0);
        b
    }

    fn epoch_order(&self, epoch: usize) -> Vec<usize> {
        Rng::derive(
            self.seed ^ (epoch as u64).wrapping_mul(0x9e37_79b9),
            "data order",
        )
        .permutation(self.len)
    }

    pub fn steps_per_epoch(&self) -> usize {
        self.len / self.batch
    }

    /// The example indices of the next batch.
    pub fn next_batch(&mut self) -> &[usize] {
        if self.cursor + self.batch > self.len {
            self.epoch += 1;
            self.order = self.epoch_order(self.epoch);
            self.cursor = 0;
        }
        let s = &self.order[self.cursor..self.cursor + self.batch];
        self.cursor += self.batch;
        s
    }
}

/// CIFAR augmentation: a random horizontal flip and a random crop of the image padded by 4 on
/// each side. The padding is zero after normalisation, i.e. the dataset's mean colour.
pub fn augment_into(src: &[f32], shape: [usize; 3], rng: &mut Rng, out: &mut Vec<f32>) {
    let [c, h, w] = shape;
    let (flip, dy, dx) = augmentation_draw(rng);
    for ch in 0..c {
        for y in 0..h as isize {
            for x in 0..w as isize {
                let sy = y + dy;
                let sx0 = x + dx;
                let sx = if flip { w as isize - 1 - sx0 } else { sx0 };
                let v = if sy < 0 || sy >= h as isize || sx0 < 0 || sx0 >= w as isize {
                    0.0
                } else {
                    src[ch * h * w + sy as usize * w + sx as usize]
                };
                out.push(v);
            }
        }
    }
}

/// The random choices of one augmented image: flip, vertical and horizontal shift. Skipping an
/// image's augmentation (to resume a data order mid-run) draws exactly these.
pub fn augmentation_draw(rng: &mut Rng) -> (bool, isize, isize) {
    let flip = rng.below(2) == 1;
    let dy = rng.below(9) as isize - 4;
    let dx = rng.below(9) as isize - 4;
    (flip, dy, dx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_order_covers_each_epoch_once_and_is_deterministic() {
        let mut a = BatchOrder::new(10, 3, 1);
        let mut b = BatchOrder::new(10, 3, 1);
        let mut seen = Vec::new();
        for _ in 0..3 {
            let x = a.next_batch().to_vec();
            assert_eq!(x, b.next_batch());
            seen.extend(x);
        }
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 9, "one epoch serves distinct examples");
        let next = a.next_batch().to_vec();
        assert_eq!(next.len(), 3, "a new epoch starts instead of a short batch");
    }

    #[test]
    fn augmentation_keeps_shape_and_zero_shift_without_flip_is_identity() {
        let src: Vec<f32> = (0..3 * 32 * 32).map(|i| i as f32).collect();
        let mut rng = Rng::new(0);
        for _ in 0..20 {
            let mut out = Vec::new();
            augment_into(&src, [3, 32, 32], &mut rng, &mut out);
            assert_eq!(out.len(), src.len());
            // Every kept value comes from the same channel plane.
            for (i, &v) in out.iter().enumerate() {
                if v != 0.0 {
                    assert_eq!(i / 1024, v as usize / 1024);
                }
            }
        }
    }

    #[test]
    fn normalise_per_channel() {
        let px = vec![255u8; 3 * 1024];
        let out = normalise(&px, &[0.5, 0.0, 1.0], &[0.5, 1.0, 1.0], 3 * 1024);
        assert_eq!(out[0], 1.0);
        assert_eq!(out[1024], 1.0);
        assert_eq!(out[2048], 0.0);
    }
}
