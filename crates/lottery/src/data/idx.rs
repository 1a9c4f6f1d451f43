//! The IDX format of MNIST and its relatives (Fashion-MNIST, KMNIST, EMNIST): a 4-byte magic
//! (two zero bytes, an element type, the rank), one big-endian u32 per dimension, then the data.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// An IDX array of unsigned bytes, the only element type the image datasets use.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Reads an IDX file, raw or gzip-compressed (detected from its first bytes, not its name).
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 4);
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| {
                Error::format(path, format!("gzip stream is corrupt or truncated ({e})"))
            })?;
        out
    } else {
        raw
    };
    parse_idx(&bytes).map_err(|message| Error::format(path, message))
}

/// Parses IDX bytes; the error says which promise of the header the bytes break.
pub fn parse_idx(bytes: &[u8]) -> std::result::Result<IdxArray, String> {
    if bytes.len() < 4 {
        return Err(format!(
            "too short for an IDX header ({} bytes)",
            bytes.len()
        ));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(format!(
            "not an IDX file (magic starts {:#04x} {:#04x}, expected 0x00 0x00)",
            bytes[0], bytes[1]
        ));
    }
    let element = bytes[2];
    if element != 0x08 {
        let name = match element {
            0x09 => "i8",
            0x0B => "i16",
            0x0C => "i32",
            0x0D => "f32",
            0x0E => "f64",
            _ => "unknown",
        };
        return Err(format!(
            "element type {element:#04x} ({name}) is not supported; image datasets use 0x08 (u8)"
        ));
    }
    let rank = bytes[3] as usize;
    if rank == 0 {
        return Err("rank 0 is not a dataset".into());
    }
    let header = 4 + 4 * rank;
    if bytes.len() < header {
        return Err(format!(
            "truncated header: rank {rank} needs {header} bytes, file has {}",
            bytes.len()
        ));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let count = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format!("dimensions {dims:?} overflow"))?;
    let payload = bytes.len() - header;
    if payload != count {
        return Err(format!(
            "dimensions {dims:?} promise {count} bytes of data but the file holds {payload}{}",
            if payload < count { " (truncated?)" } else { "" }
        ));
    }
    Ok(IdxArray {
        dims,
        data: bytes[header..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend_from_slice(data);
        b
    }

    #[test]
    fn parses_any_rank() {
        let a = parse_idx(&idx(&[2, 3], &[1, 2, 3, 4, 5, 6])).unwrap();
        assert_eq!(a.dims, vec![2, 3]);
        assert_eq!(a.data, vec![1, 2, 3, 4, 5, 6]);
        let b = parse_idx(&idx(&[1, 1, 2, 2], &[9, 8, 7, 6])).unwrap();
        assert_eq!(b.dims, vec![1, 1, 2, 2]);
    }

    #[test]
    fn rejects_bad_headers_and_lengths() {
        assert!(parse_idx(&[0, 0]).unwrap_err().contains("too short"));
        assert!(
            parse_idx(&[1, 0, 8, 1, 0, 0, 0, 0])
                .unwrap_err()
                .contains("not an IDX")
        );
        assert!(
            parse_idx(&[0, 0, 0x0D, 1, 0, 0, 0, 0])
                .unwrap_err()
                .contains("f32")
        );
        assert!(
            parse_idx(&[0, 0, 8, 3, 0, 0])
                .unwrap_err()
                .contains("truncated header")
        );
        assert!(
            parse_idx(&idx(&[4], &[1, 2]))
                .unwrap_err()
                .contains("truncated")
        );
        assert!(
            parse_idx(&idx(&[1], &[1, 2]))
                .unwrap_err()
                .contains("holds 2")
        );
    }

    #[test]
    fn reads_gzip_and_reports_corruption_with_the_path() {
        use std::io::Write;
        let dir = std::env::temp_dir().join(format!("lottery-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&idx(&[3], &[7, 8, 9])).unwrap();
        let gz = enc.finish().unwrap();
        std::fs::write(&path, &gz).unwrap();
        assert_eq!(read_idx(&path).unwrap().data, vec![7, 8, 9]);
        std::fs::write(&path, &gz[..gz.len() - 6]).unwrap();
        let err = read_idx(&path).unwrap_err().to_string();
        assert!(err.contains("x.gz") && err.contains("gzip"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
