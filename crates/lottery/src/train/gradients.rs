//! Reading gradients out of burn by PyTorch name and layout, without changing the network.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

use crate::masks::transpose;
use crate::models::Network;
use crate::tensors::{HostTensor, StateDict};

/// The gradient of every parameter that has one, keyed like `Network::state_dict`.
pub fn collect(net: Network, grads: GradientsParams) -> (Network, StateDict) {
    let mut c = Collect {
        grads,
        out: HashMap::new(),
    };
    let net = net.map(&mut c);
    let dict = net
        .tensors()
        .into_iter()
        .filter_map(|t| {
            let data = c.out.remove(&t.id)?;
            let shape = t.torch_shape();
            // burn keeps linear weights as [in, out]; PyTorch as [out, in].
            let data = if t.shape.len() == 2 {
                transpose(&data, t.shape[0], t.shape[1])
            } else {
                data
            };
            Some((t.name, HostTensor::new(shape, data)))
        })
        .collect();
    (net, dict)
}

struct Collect {
    grads: GradientsParams,
    out: HashMap<ParamId, Vec<f32>>,
}

impl ModuleMapper for Collect {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        if let Some(g) = self.grads.remove::<D>(id)
            && let Ok(v) = g.into_data().try_into_vec::<f32>()
        {
            self.out.insert(id, v);
        }
        Param::from_mapped_value(id, tensor, mapper)
    }
}
