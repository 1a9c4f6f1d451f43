//! The native half of the Python package `lottery` (`lottery._native`): pruning a state dict
//! with the same code as `lottery prune`, compacting it, and running the compact model with
//! `lottery-sparse`'s kernels. Tensors cross as `(name, shape, bytes)` — little-endian float32
//! for weights, uint8 for masks — which the Python half makes from anything numpy reads, so
//! this module needs no numpy headers. Every error is a `ValueError` (or `OSError` for files)
//! carrying the Rust side's one-line message.

use std::path::PathBuf;
use std::sync::Mutex;

use lottery_core::masks::MaskSet;
use lottery_core::prune::{Scope, any};
use lottery_core::tensors::{HostTensor, StateDict};
use lottery_sparse::{CompactModel, Engine, Scratch, format};
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// Tensors as they cross from Python: name, shape, raw little-endian bytes.
type Tensors<'py> = Vec<(String, Vec<usize>, Bound<'py, PyBytes>)>;
/// Tensors as they go back to Python.
type Out<'py> = Vec<(String, Vec<usize>, Bound<'py, PyBytes>)>;

fn value_error(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// Float32 tensors into a state dict, each checked against its shape.
fn state_dict(tensors: &Tensors<'_>) -> PyResult<StateDict> {
    let mut dict = StateDict::new();
    for (name, shape, bytes) in tensors {
        let raw = bytes.as_bytes();
        let n: usize = shape.iter().product();
        if raw.len() != n * 4 {
            return Err(value_error(format!(
                "tensor `{name}`: {} bytes of float32 do not fill shape {shape:?}",
                raw.len()
            )));
        }
        let data = raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        dict.insert(name.clone(), HostTensor::new(shape.clone(), data));
    }
    Ok(dict)
}

/// 0/1 uint8 masks into a mask set.
fn mask_set(tensors: &Tensors<'_>) -> PyResult<MaskSet> {
    let mut masks = MaskSet::default();
    for (name, shape, bytes) in tensors {
        let raw = bytes.as_bytes();
        if raw.len() != shape.iter().product::<usize>() {
            return Err(value_error(format!(
                "mask `{name}`: {} values do not fill shape {shape:?}",
                raw.len()
            )));
        }
        if let Some(v) = raw.iter().find(|&&v| v > 1) {
            return Err(value_error(format!(
                "mask `{name}` holds {v}; masks hold only 0 and 1"
            )));
        }
        let data = raw.iter().map(|&v| v as f32).collect();
        masks
            .masks
            .insert(name.clone(), HostTensor::new(shape.clone(), data));
    }
    Ok(masks)
}

/// The masks of `lottery prune FILE` for this state dict, and the tensors left dense with the
/// reason for each.
#[pyfunction]
#[pyo3(signature = (tensors, sparsity, scope, criterion, include, exclude, seed, output_layer, output_sparsity, init, mask))]
#[allow(clippy::too_many_arguments)] // Python's keyword arguments, one to one.
fn prune<'py>(
    py: Python<'py>,
    tensors: Tensors<'py>,
    sparsity: f64,
    scope: &str,
    criterion: &str,
    include: Vec<String>,
    exclude: Vec<String>,
    seed: u64,
    output_layer: Option<String>,
    output_sparsity: Option<f64>,
    init: Option<Tensors<'py>>,
    mask: Option<Tensors<'py>>,
) -> PyResult<(Out<'py>, Vec<(String, String)>)> {
    let dict = state_dict(&tensors)?;
    let init = init.map(|t| state_dict(&t)).transpose()?;
    let mask = mask.map(|t| mask_set(&t)).transpose()?;
    let output = match (&output_layer, output_sparsity) {
        (Some(name), Some(s)) => Some((name.as_str(), s)),
        (None, Some(_)) => {
            return Err(value_error(
                "output_sparsity needs output_layer, the name of a prunable tensor",
            ));
        }
        (_, None) => None,
    };
    let request = any::Request {
        sparsity,
        scope: Scope::parse(scope).map_err(value_error)?,
        criterion,
        include: &include,
        exclude: &exclude,
        output,
        seed,
        init: init.as_ref(),
        mask: mask.as_ref(),
    };
    let (masks, selection) = any::prune_dict(&dict, &request).map_err(value_error)?;
    let out = (masks.masks.into_iter())
        .map(|(name, t)| {
            let bytes: Vec<u8> = t.data.iter().map(|&v| (v != 0.0) as u8).collect();
            (name, t.shape, PyBytes::new(py, &bytes))
        })
        .collect();
    let dense = (selection.dense.into_iter())
        .map(|(n, why)| (n, why.to_string()))
        .collect();
    Ok((out, dense))
}

/// A compact model ready to run: the engine, and scratch buffers reused between calls so a
/// batch of one allocates nothing.
#[pyclass(module = "lottery._native", frozen)]
struct Model {
    engine: Engine,
    scratch: Mutex<Scratch>,
    /// Bytes of its `.lsm` file.
    nbytes: usize,
}

impl Model {
    /// `nbytes`: the size of the model's `.lsm` file (the file read, or the bytes it would be).
    fn new(model: CompactModel, nbytes: usize) -> PyResult<Self> {
        Ok(Model {
            engine: Engine::new(model).map_err(value_error)?,
            scratch: Mutex::new(Scratch::default()),
            nbytes,
        })
    }
}

#[pymethods]
impl Model {
    /// Reads and validates a `.lsm` file (written by `lottery compact` or `save`).
    #[staticmethod]
    fn load(path: PathBuf) -> PyResult<Self> {
        let os_error = |e: &dyn std::fmt::Display| PyOSError::new_err(e.to_string());
        let model = format::load(&path).map_err(|e| os_error(&e))?;
        // The file's own size: encoding it again (deflate included) would only recompute it.
        let nbytes = std::fs::metadata(&path).map_err(|e| os_error(&e))?.len() as usize;
        Model::new(model, nbytes)
    }

    fn save(&self, path: PathBuf) -> PyResult<()> {
        format::save(self.engine.model(), &path).map_err(|e| PyOSError::new_err(e.to_string()))
    }

    /// Outputs (`batch × outputs` float32 bytes) for `batch` examples of float32 bytes; the
    /// interpreter lock is released while the kernels run.
    fn predict<'py>(
        &self,
        py: Python<'py>,
        x: &[u8],
        batch: usize,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let m = self.engine.model();
        let (n_in, n_out) = (m.input_len(), m.classes());
        if x.len() != batch * n_in * 4 {
            return Err(value_error(format!(
                "{} bytes are not {batch} examples of {n_in} float32 values",
                x.len()
            )));
        }
        let out = py.detach(|| {
            let input: Vec<f32> = x
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            let mut out = vec![0.0f32; batch * n_out];
            match self.scratch.try_lock() {
                Ok(mut s) => self.engine.forward_into(&input, batch, &mut out, &mut s),
                // Another thread is using the buffers: this call brings its own.
                Err(_) => {
                    self.engine
                        .forward_into(&input, batch, &mut out, &mut Scratch::default())
                }
            }
            out.iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<u8>>()
        });
        Ok(PyBytes::new(py, &out))
    }

    #[getter]
    fn live_weights(&self) -> usize {
        self.engine.model().nnz()
    }

    #[getter]
    fn nbytes(&self) -> usize {
        self.nbytes
    }

    #[getter]
    fn input_shape(&self) -> (usize, usize, usize) {
        let [c, h, w] = self.engine.model().input;
        (c, h, w)
    }

    #[getter]
    fn outputs(&self) -> usize {
        self.engine.model().classes()
    }

    #[getter]
    fn source(&self) -> String {
        self.engine.model().source.clone()
    }
}

/// Compacts a state dict under `masks` (pruned weights become 0 first). Architectures:
/// `mlp` (linear layers, ReLU between), `cnn1d` (Conv1d layers then linear ones), the LTH
/// `conv2/4/6` and `vgg11/13/16/19` (batch norm folded, ε 1e-5) in lottery's names, and vision
/// transformers in timm's names (`vit_tiny`, `vit_DxWhH`: H heads; layer norms with ε 1e-6).
#[pyfunction]
fn compact<'py>(
    tensors: Tensors<'py>,
    masks: Option<Tensors<'py>>,
    arch: &str,
    input_shape: [usize; 3],
) -> PyResult<Model> {
    let mut dict = state_dict(&tensors)?;
    if let Some(m) = masks {
        let m = mask_set(&m)?;
        m.check(&shapes(&dict), std::path::Path::new("masks"))
            .map_err(value_error)?;
        m.apply(&mut dict);
    }
    if input_shape.contains(&0) {
        return Err(value_error(format!(
            "input_shape {input_shape:?} has a zero dimension"
        )));
    }
    let model = if let Some(heads) = vit_heads(arch) {
        let layers = lottery_sparse::dict::transformer(&dict, heads, 1e-6, arch, input_shape)
            .map_err(value_error)?;
        lottery_sparse::compact_transformer(layers)
            .map_err(value_error)?
            .0
    } else {
        let dense = match arch {
            "mlp" => lottery_sparse::dict::mlp(&dict, arch, input_shape),
            a if a == "cnn1d" || a.starts_with("cnn1d_") => {
                lottery_sparse::dict::cnn1d(&dict, arch, input_shape)
            }
            other => match lottery_sparse::plans::conv_plan(other) {
                // PyTorch's BatchNorm2d epsilon.
                Some((plan, _)) => {
                    let pools: Vec<_> = plan.iter().map(|s| s.pool).collect();
                    lottery_sparse::dict::conv_net(&dict, &pools, 1e-5, arch, input_shape)
                }
                None => {
                    return Err(value_error(format!(
                        "arch `{other}` is not one compact knows: mlp, cnn1d, conv2, conv4, \
                         conv6, vgg11, vgg13, vgg16, vgg19, vit_tiny, vit_DxWhH"
                    )));
                }
            },
        }
        .map_err(value_error)?;
        lottery_sparse::compact(&dense).map_err(value_error)?.0
    };
    let nbytes = format::to_bytes(&model).len();
    Model::new(model, nbytes)
}

/// Attention heads of a vision transformer named as lottery names them: `vit_tiny` (4) or
/// `vit_DxWhH`; `None` for other names.
fn vit_heads(arch: &str) -> Option<usize> {
    if arch == "vit_tiny" {
        return Some(4);
    }
    let (_, heads) = arch.strip_prefix("vit_")?.split_once('h')?;
    heads.parse().ok().filter(|&h| h > 0)
}

fn shapes(dict: &StateDict) -> lottery_core::masks::Shapes {
    (dict.iter())
        .map(|(n, t)| (n.clone(), t.shape.clone()))
        .collect()
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(prune, m)?)?;
    m.add_function(wrap_pyfunction!(compact, m)?)?;
    m.add_class::<Model>()?;
    Ok(())
}
