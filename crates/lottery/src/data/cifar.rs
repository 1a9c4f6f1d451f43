//! The CIFAR-10 binary format: records of one label byte followed by 3×32×32 pixel bytes
//! (red plane, green plane, blue plane), 10,000 records per batch file.

use std::path::Path;

use super::Dataset;
use crate::error::{Error, Result};

pub const RECORD: usize = 1 + 3 * 32 * 32;
pub const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
pub const TEST_FILE: &str = "test_batch.bin";

/// Reads one batch file into (pixels in CHW order, labels).
pub fn read_batch(path: &Path) -> Result<(Vec<u8>, Vec<u8>)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_batch(&bytes).map_err(|m| Error::format(path, m))
}

pub fn parse_batch(bytes: &[u8]) -> std::result::Result<(Vec<u8>, Vec<u8>), String> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(RECORD) {
        return Err(format!(
            "{} bytes is not a whole number of {RECORD}-byte CIFAR-10 records (truncated?)",
            bytes.len()
        ));
    }
    let n = bytes.len() / RECORD;
    let mut pixels = Vec::with_capacity(n * (RECORD - 1));
    let mut labels = Vec::with_capacity(n);
    for (i, rec) in bytes.chunks_exact(RECORD).enumerate() {
        if rec[0] > 9 {
            return Err(format!(
                "record {i} has label {} (CIFAR-10 labels are 0–9)",
                rec[0]
            ));
        }
        labels.push(rec[0]);
        pixels.extend_from_slice(&rec[1..]);
    }
    Ok((pixels, labels))
}

/// Reads the five training batches and the test batch from `dir`.
pub fn read_cifar10(dir: &Path) -> Result<((Vec<u8>, Vec<u8>), (Vec<u8>, Vec<u8>))> {
    let (mut px, mut lb) = (Vec::new(), Vec::new());
    for f in TRAIN_FILES {
        let (p, l) = read_batch(&dir.join(f))?;
        px.extend(p);
        lb.extend(l);
    }
    Ok(((px, lb), read_batch(&dir.join(TEST_FILE))?))
}

const URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";

/// CIFAR-10 in its binary batches (`data_batch_1.bin` … `test_batch.bin`).
pub struct Cifar10;

impl super::Format for Cifar10 {
    fn name(&self) -> &'static str {
        "cifar10"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["cifar-10"]
    }
    fn example_shape(&self) -> ([usize; 3], usize) {
        ([3, 32, 32], 10)
    }
    fn folder(&self) -> Option<&'static str> {
        Some("cifar10")
    }
    fn load(&self, dir: &Path) -> Result<(Dataset, Dataset)> {
        load_cifar10(dir)
    }
    fn download(&self, dir: &Path) -> Result<()> {
        let archive = dir.join("cifar-10-binary.tar.gz");
        super::download::fetch(URL, &archive)?;
        super::download::untar(&archive, dir)
    }
}

fn load_cifar10(dir: &Path) -> Result<(Dataset, Dataset)> {
    let ((trp, trl), (tep, tel)) = read_cifar10(dir)?;
    const MEAN: [f32; 3] = [0.4914, 0.4822, 0.4465];
    const STD: [f32; 3] = [0.2470, 0.2435, 0.2616];
    let make = |px: Vec<u8>, lb: Vec<u8>| {
        let images = super::normalise(&px, &MEAN, &STD, 3 * 32 * 32);
        Dataset::classified(
            images,
            lb.iter().map(|&l| l as u32).collect(),
            [3, 32, 32],
            10,
        )
    };
    Ok((make(trp, trl), make(tep, tel)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_records_and_rejects_partial_ones() {
        let mut b = vec![3u8];
        b.extend((0..3072).map(|i| (i % 251) as u8));
        b.push(9);
        b.extend(std::iter::repeat_n(1u8, 3072));
        let (px, lb) = parse_batch(&b).unwrap();
        assert_eq!(lb, vec![3, 9]);
        assert_eq!(px.len(), 2 * 3072);
        assert_eq!(px[5], 5);
        assert!(
            parse_batch(&b[..b.len() - 1])
                .unwrap_err()
                .contains("truncated")
        );
        b[0] = 10;
        assert!(parse_batch(&b).unwrap_err().contains("label 10"));
    }
}
