//! burn's CPU tensors (`flex`) as host memory, for the kernels of our own that plug into burn
//! (`conv`, `sparse`): a tensor's f32 elements, and a tensor made from a vector.

use std::borrow::Cow;

use burn::backend::flex::FlexTensor;
use burn::tensor::TensorData;

/// A flex tensor's f32 elements in row-major order: borrowed when the tensor is contiguous,
/// copied when it is a view. Our kernels run on f32 tensors only (their callers check).
pub(crate) fn f32s(t: &FlexTensor) -> Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(
            t.to_contiguous()
                .as_slice::<f32>()
                .expect("our CPU kernels run on f32 tensors")
                .to_vec(),
        ),
    }
}

/// A flex tensor of `shape` holding `data` (row-major), without copying it.
pub(crate) fn tensor<const D: usize>(data: Vec<f32>, shape: [usize; D]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, shape))
}
