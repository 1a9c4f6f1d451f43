//! Weight initialisation from our own seeded generator (biases start at zero).

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::{Network, current, push_path, replace_values, torch_name};
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::tensors::HostTensor;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitScheme {
    /// N(0, 2/(fan_in+fan_out)): the LTH paper's choice (as PyTorch's `xavier_normal_`).
    GlorotNormal,
    /// U(±√(6/(fan_in+fan_out))).
    GlorotUniform,
    /// N(0, 2/fan_in): He et al., OpenLTH's default (as PyTorch's `kaiming_normal_`).
    KaimingNormal,
    /// U(±√(6/fan_in)).
    KaimingUniform,
}

impl InitScheme {
    pub const NAMES: &'static str =
        "glorot_normal, glorot_uniform, kaiming_normal, kaiming_uniform";

    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "glorot_normal" | "xavier_normal" => Self::GlorotNormal,
            "glorot_uniform" | "xavier_uniform" => Self::GlorotUniform,
            "kaiming_normal" | "he_normal" => Self::KaimingNormal,
            "kaiming_uniform" | "he_uniform" => Self::KaimingUniform,
            _ => {
                return Err(Error::config(
                    "init",
                    format!("`{s}` is not one of {}", Self::NAMES),
                ));
            }
        })
    }

    /// Draws a weight of PyTorch shape `[out, in, k…]`.
    pub fn sample(self, shape: &[usize], rng: &mut Rng) -> HostTensor {
        let receptive: usize = shape[2..].iter().product();
        let fan_out = (shape[0] * receptive) as f64;
        let fan_in = (shape[1] * receptive) as f64;
        let n: usize = shape.iter().product();
        let data: Vec<f32> = match self {
            Self::GlorotNormal | Self::KaimingNormal => {
                let var = if self == Self::GlorotNormal {
                    2.0 / (fan_in + fan_out)
                } else {
                    2.0 / fan_in
                };
                let std = var.sqrt();
                (0..n).map(|_| (rng.normal() * std) as f32).collect()
            }
            Self::GlorotUniform | Self::KaimingUniform => {
                let bound = if self == Self::GlorotUniform {
                    (6.0 / (fan_in + fan_out)).sqrt()
                } else {
                    (6.0 / fan_in).sqrt()
                };
                (0..n)
                    .map(|_| ((rng.uniform() * 2.0 - 1.0) * bound) as f32)
                    .collect()
            }
        };
        HostTensor::new(shape.to_vec(), data)
    }
}

/// Gives every conv and linear weight fresh values. Each tensor draws from its own stream
/// (seed, name), so adding a layer does not change the others' initial values.
pub fn initialise(net: Network, scheme: InitScheme, seed: u64) -> Network {
    net.map(&mut Init {
        path: Vec::new(),
        scheme,
        seed,
    })
}

struct Init {
    path: Vec<String>,
    scheme: InitScheme,
    seed: u64,
}

impl ModuleMapper for Init {
    fn enter_module(&mut self, name: &str, container: &str) {
        push_path(&mut self.path, name, container);
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let name = torch_name(&current(&self.path));
        if !name.ends_with(".weight") || D < 2 {
            return param;
        }
        let (scheme, seed) = (self.scheme, self.seed);
        param.map(|old| {
            let dims: Vec<usize> = old.shape().iter().copied().collect();
            let torch = super::torch_shape(&dims);
            let values = scheme.sample(&torch, &mut Rng::derive(seed, &name));
            replace_values(&old, &values)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variances_follow_the_fans() {
        let mut rng = Rng::new(1);
        for (scheme, expect) in [
            (InitScheme::GlorotNormal, 2.0 / (300.0 + 100.0)),
            (InitScheme::KaimingNormal, 2.0 / 300.0),
            (InitScheme::GlorotUniform, 2.0 / (300.0 + 100.0)),
            (InitScheme::KaimingUniform, 2.0 / 300.0),
        ] {
            let t = scheme.sample(&[100, 300], &mut rng);
            let var = t.data.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / t.len() as f64;
            assert!(
                (var / expect - 1.0).abs() < 0.03,
                "{scheme:?}: {var} vs {expect}"
            );
        }
        // Conv fans include the receptive field.
        let t = InitScheme::KaimingNormal.sample(&[64, 3, 3, 3], &mut rng);
        let var = t.data.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / t.len() as f64;
        assert!((var / (2.0 / 27.0) - 1.0).abs() < 0.1, "{var}");
    }
}
