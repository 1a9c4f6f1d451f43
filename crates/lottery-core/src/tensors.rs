//! Tensors on the host, keyed by PyTorch-style names, and their safetensors files.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::error::{Error, Result};
use crate::files::write_atomic;

/// A dense f32 tensor in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl HostTensor {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Self {
        assert_eq!(
            shape.iter().product::<usize>(),
            data.len(),
            "shape {shape:?} does not fit {} values",
            data.len()
        );
        HostTensor { shape, data }
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn count_nonzero(&self) -> usize {
        self.data.iter().filter(|&&x| x != 0.0).count()
    }
}

/// Named tensors in PyTorch's names and layouts: what a `state_dict` holds.
pub type StateDict = BTreeMap<String, HostTensor>;

/// Saves tensors as f32 safetensors, atomically, with optional string metadata.
pub fn save(
    path: &Path,
    dict: &StateDict,
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = dict
        .iter()
        .map(|(k, t)| {
            (
                k.clone(),
                t.data.iter().flat_map(|x| x.to_le_bytes()).collect(),
                t.shape.clone(),
            )
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = bytes
        .iter()
        .map(|(k, b, s)| {
            (
                k.clone(),
                TensorView::new(Dtype::F32, s.clone(), b).expect("sizes agree by construction"),
            )
        })
        .collect();
    let out = safetensors::serialize(views, metadata)
        .map_err(|e| Error::format(path, format!("cannot serialise: {e}")))?;
    write_atomic(path, &out)
}

/// Copies the safetensors file at `src` to `dest` with the entries `masks` prunes set to zero:
/// every tensor keeps its name, shape, dtype and bytes (f16, bf16 and integer tensors such as
/// `num_batches_tracked` included), so the result loads wherever the input did. A float zero is
/// all-zero bytes in every IEEE format, so zeroing needs no conversion.
pub fn write_masked(
    src: &Path,
    dest: &Path,
    masks: &StateDict,
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    let bytes = std::fs::read(src).map_err(|e| Error::io(src, e))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::format(src, format!("not a valid safetensors file ({e})")))?;
    let mut copies: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, view) in st.tensors() {
        let mut data = view.data().to_vec();
        if let Some(m) = masks.get(&name) {
            let n: usize = view.shape().iter().product();
            if m.len() != n || n == 0 {
                return Err(Error::format(
                    src,
                    format!("mask `{name}` has {} entries, the tensor {n}", m.len()),
                ));
            }
            let size = data.len() / n;
            for (i, _) in m.data.iter().enumerate().filter(|(_, k)| **k == 0.0) {
                data[i * size..(i + 1) * size].fill(0);
            }
        }
        copies.push((name, view.dtype(), view.shape().to_vec(), data));
    }
    let views: Vec<(String, TensorView<'_>)> = copies
        .iter()
        .map(|(k, dtype, shape, data)| {
            let view =
                TensorView::new(*dtype, shape.clone(), data).expect("the source file's own sizes");
            (k.clone(), view)
        })
        .collect();
    let out = safetensors::serialize(views, metadata)
        .map_err(|e| Error::format(dest, format!("cannot serialise: {e}")))?;
    write_atomic(dest, &out)
}

/// Loads a safetensors file: f32, f64, f16 and bf16 tensors become f32. Integer tensors named
/// `*.num_batches_tracked` (PyTorch's batch-norm counter) are skipped; other dtypes are refused.
pub fn load(path: &Path) -> Result<(StateDict, HashMap<String, String>)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let bad = |m: String| Error::format(path, m);
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| bad(format!("not a valid safetensors file ({e})")))?;
    let metadata = SafeTensors::read_metadata(&bytes)
        .ok()
        .and_then(|(_, m)| m.metadata().clone())
        .unwrap_or_default();
    let mut dict = StateDict::new();
    for (name, view) in st.tensors() {
        let raw = view.data();
        let data: Vec<f32> = match view.dtype() {
            Dtype::F32 => raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F64 => raw
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
                .collect(),
            Dtype::F16 => raw
                .chunks_exact(2)
                .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
            Dtype::BF16 => raw
                .chunks_exact(2)
                .map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16))
                .collect(),
            _ if name.ends_with("num_batches_tracked") => continue,
            other => {
                return Err(bad(format!(
                    "tensor `{name}` has dtype {other:?}; only float tensors are supported"
                )));
            }
        };
        dict.insert(
            name,
            HostTensor {
                shape: view.shape().to_vec(),
                data,
            },
        );
    }
    Ok((dict, metadata))
}

fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let frac = (h & 0x3ff) as u32;
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            // Subnormal: renormalise.
            let shift = f.leading_zeros() - 21;
            sign | ((113 - shift) << 23) | (((f << shift) & 0x3ff) << 13)
        }
        (0x1f, f) => sign | 0x7f80_0000 | (f << 13),
        (e, f) => sign | ((e + 112) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_conversion() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert!(f16_to_f32(0x7c00).is_infinite());
    }

    #[test]
    fn round_trip_and_corruption() {
        let dir = std::env::temp_dir().join(format!("lottery-st-{}", std::process::id()));
        let path = dir.join("w.safetensors");
        let mut d = StateDict::new();
        d.insert(
            "fc1.weight".into(),
            HostTensor::new(vec![2, 3], vec![1., 2., 3., 4., 5., 6.]),
        );
        d.insert("fc1.bias".into(), HostTensor::new(vec![2], vec![0.5, -0.5]));
        save(
            &path,
            &d,
            Some(HashMap::from([("model".into(), "mlp_2".into())])),
        )
        .unwrap();
        let (back, meta) = load(&path).unwrap();
        assert_eq!(back, d);
        assert_eq!(meta["model"], "mlp_2");
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(
            e.contains("w.safetensors") && e.contains("safetensors"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn masked_copies_keep_every_dtype_and_byte_but_the_pruned_entries() {
        let dir = std::env::temp_dir().join(format!("lottery-masked-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let half: Vec<u8> = [0x3c00u16, 0x4000, 0xc000, 0x3555]
            .iter()
            .flat_map(|h| h.to_le_bytes())
            .collect();
        let count: Vec<u8> = 7i64.to_le_bytes().to_vec();
        let views = vec![
            (
                "a.weight",
                TensorView::new(Dtype::F16, vec![2, 2], &half).unwrap(),
            ),
            (
                "bn.num_batches_tracked",
                TensorView::new(Dtype::I64, vec![], &count).unwrap(),
            ),
        ];
        let src = dir.join("in.safetensors");
        std::fs::write(&src, safetensors::serialize(views, None).unwrap()).unwrap();
        let masks: StateDict = [(
            "a.weight".to_string(),
            HostTensor::new(vec![2, 2], vec![1.0, 0.0, 1.0, 0.0]),
        )]
        .into();
        let dest = dir.join("out.safetensors");
        write_masked(&src, &dest, &masks, None).unwrap();
        let bytes = std::fs::read(&dest).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let a = st.tensor("a.weight").unwrap();
        assert_eq!(a.dtype(), Dtype::F16);
        assert_eq!(a.data(), &[0x00, 0x3c, 0, 0, 0x00, 0xc0, 0, 0][..]);
        let n = st.tensor("bn.num_batches_tracked").unwrap();
        assert_eq!((n.dtype(), n.data()), (Dtype::I64, &count[..]));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
