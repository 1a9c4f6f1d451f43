//! SGD and Adam with masks fused into the update.
//!
//! One pass over weight, gradient, moments and mask per parameter, on the host side of the
//! tensor (zero-copy on the CPU backend when the tensor is not shared). burn's own optimizers
//! spend most of a small network's step in a dozen separate elementwise tensor ops per
//! parameter; here that becomes one loop, and masking costs one multiply per element.
//!
//! Exactness: a pruned weight's gradient is multiplied by zero before it reaches any state,
//! so its momentum and Adam moments stay exactly zero, weight decay reads a zero weight, and
//! the weight is multiplied by zero again after the update.
//!
//! On a GPU the same arithmetic runs as device tensor ops (`device_update`): moments and masks
//! stay on the device, and no parameter or gradient is copied to the host —
//! [`Optimizer::host_updates`] counts the updates that were.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::masks::{MaskSet, transpose};
use crate::models::Network;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case", deny_unknown_fields)]
pub enum OptimizerConfig {
    Sgd {
        #[serde(default)]
        momentum: f64,
        #[serde(default)]
        nesterov: bool,
        #[serde(default)]
        weight_decay: f64,
    },
    Adam {
        #[serde(default = "beta1")]
        beta1: f64,
        #[serde(default = "beta2")]
        beta2: f64,
        #[serde(default = "eps")]
        eps: f64,
        #[serde(default)]
        weight_decay: f64,
    },
}

fn beta1() -> f64 {
    0.9
}
fn beta2() -> f64 {
    0.999
}
fn eps() -> f64 {
    1e-8
}

impl OptimizerConfig {
    pub fn adam() -> Self {
        OptimizerConfig::Adam {
            beta1: beta1(),
            beta2: beta2(),
            eps: eps(),
            weight_decay: 0.0,
        }
    }

    pub fn sgd(momentum: f64, nesterov: bool, weight_decay: f64) -> Self {
        OptimizerConfig::Sgd {
            momentum,
            nesterov,
            weight_decay,
        }
    }

    /// `adam` or `sgd`, as configs spell it.
    pub fn name(&self) -> &'static str {
        match self {
            OptimizerConfig::Sgd { .. } => "sgd",
            OptimizerConfig::Adam { .. } => "adam",
        }
    }

    pub fn validate(&self) -> Result<()> {
        let check = |field: &str, v: f64, lo: f64, hi: f64| {
            if !(v >= lo && v < hi) {
                Err(Error::config(field, format!("{v} is outside [{lo}, {hi})")))
            } else {
                Ok(())
            }
        };
        match *self {
            OptimizerConfig::Sgd {
                momentum,
                nesterov,
                weight_decay,
            } => {
                check("momentum", momentum, 0.0, 1.0)?;
                check("weight-decay", weight_decay, 0.0, f64::INFINITY)?;
                if nesterov && momentum == 0.0 {
                    return Err(Error::config(
                        "nesterov",
                        "Nesterov momentum needs --momentum > 0",
                    ));
                }
            }
            OptimizerConfig::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
            } => {
                check("beta1", beta1, 0.0, 1.0)?;
                check("beta2", beta2, 0.0, 1.0)?;
                check("eps", eps, f64::MIN_POSITIVE, f64::INFINITY)?;
                check("weight-decay", weight_decay, 0.0, f64::INFINITY)?;
            }
        }
        Ok(())
    }
}

/// Optimizer state: moments per parameter, kept on the host between steps (CPU), or on the
/// device as tensors (GPU).
pub struct Optimizer {
    config: OptimizerConfig,
    moments: HashMap<ParamId, (Vec<f32>, Vec<f32>)>,
    /// Where the update runs: on the host for burn's CPU backend, as tensor ops otherwise.
    on_host: bool,
    /// Moments (flattened; the second only for Adam) and 0/1 masks, on the device.
    device_moments: HashMap<ParamId, (Tensor<1>, Option<Tensor<1>>)>,
    device_masks: HashMap<ParamId, Tensor<1>>,
    host_updates: u64,
    steps: u64,
}

/// Masks in burn's layout, by parameter id, one byte (0 or 1) per weight: a quarter of the
/// memory traffic of f32 masks in the update loop.
pub type ResidentMasks = HashMap<ParamId, Vec<u8>>;

/// `mask` in burn's layout by parameter id of `net`, for the hot loop (linear weights are
/// `[in, out]` in burn, `[out, in]` in the mask).
pub fn resident(mask: &MaskSet, net: &Network) -> ResidentMasks {
    net.tensors()
        .into_iter()
        .filter_map(|t| {
            let m = mask.masks.get(&t.name)?;
            let data = if t.shape.len() == 2 {
                transpose(&m.data, m.shape[0], m.shape[1])
            } else {
                m.data.clone()
            };
            Some((t.id, data.iter().map(|&k| (k != 0.0) as u8).collect()))
        })
        .collect()
}

impl Optimizer {
    /// `on_host`: update on the host side of the tensors (the CPU backend, where that is free);
    /// otherwise with device tensor ops.
    pub fn new(config: OptimizerConfig, on_host: bool) -> Self {
        Optimizer {
            config,
            moments: HashMap::new(),
            on_host,
            device_moments: HashMap::new(),
            device_masks: HashMap::new(),
            host_updates: 0,
            steps: 0,
        }
    }

    /// Parameter updates that copied the parameter and its gradient to the host and back: every
    /// one on the CPU backend (where the copy is free), none on a GPU.
    pub fn host_updates(&self) -> u64 {
        self.host_updates
    }

    /// Starts a step: updates until the next call use its count (Adam's bias corrections,
    /// SGD's first step).
    pub fn begin_step(&mut self) {
        self.steps += 1;
    }

    /// Applies the current step's update with learning rate `lr` to `net` (after
    /// [`Optimizer::begin_step`]); parameters without a gradient are untouched.
    pub fn step(
        &mut self,
        net: Network,
        grads: GradientsParams,
        lr: f64,
        masks: &ResidentMasks,
    ) -> Network {
        let mut mapper = Step {
            opt: self,
            grads,
            lr,
            masks,
        };
        net.map(&mut mapper)
    }
}

struct Step<'a> {
    opt: &'a mut Optimizer,
    grads: GradientsParams,
    lr: f64,
    masks: &'a ResidentMasks,
}

impl ModuleMapper for Step<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let mask = self.masks.get(&id).map(Vec::as_slice);
        let updated = self.opt.update_tracked(id, tensor, grad, self.lr, mask);
        Param::from_mapped_value(id, updated, mapper)
    }
}

impl Optimizer {
    /// The update of one tracked tensor (a parameter, or the kept values of a sparse layer,
    /// keyed by its weight's id) at the current step: a fresh leaf with the same gradient flag.
    pub fn update_tracked<const D: usize>(
        &mut self,
        id: ParamId,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        lr: f64,
        mask: Option<&[u8]>,
    ) -> Tensor<D> {
        let require_grad = tensor.is_require_grad();
        let updated = Tensor::from_inner(self.update(id, tensor.inner(), grad, lr, mask));
        if require_grad {
            updated.require_grad()
        } else {
            updated
        }
    }

    /// `w` after one step with gradient `g` (both untracked), on the host or the device.
    fn update<const D: usize>(
        &mut self,
        id: ParamId,
        w: Tensor<D>,
        g: Tensor<D>,
        lr: f64,
        mask: Option<&[u8]>,
    ) -> Tensor<D> {
        if !self.on_host {
            return self.device_update(id, w, g, lr, mask);
        }
        self.host_updates += 1;
        let device = g.device();
        let mut w = w.into_data();
        let g = g.into_data();
        let (ws, gs) = match (w.as_mut_slice::<f32>(), g.as_slice::<f32>()) {
            (Ok(w), Ok(g)) => (w, g),
            _ => panic!("the optimizer works on f32 parameters"),
        };
        let n = ws.len();
        let uses_second = matches!(self.config, OptimizerConfig::Adam { .. });
        let (m, v) = self.moments.entry(id).or_insert_with(|| {
            (
                vec![0.0; n],
                if uses_second {
                    vec![0.0; n]
                } else {
                    Vec::new()
                },
            )
        });
        let t = self.steps;
        match self.config.clone() {
            OptimizerConfig::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
            } => {
                let (step, inv_bc2) = adam_scales(lr, beta1, beta2, t);
                let k = AdamStep {
                    b1: beta1 as f32,
                    b2: beta2 as f32,
                    step: step as f32,
                    inv_bc2: inv_bc2 as f32,
                    eps: eps as f32,
                    wd: weight_decay as f32,
                };
                match mask {
                    Some(mk) => k.run::<true>(ws, gs, m, v, mk),
                    None => k.run::<false>(ws, gs, m, v, &[]),
                }
            }
            OptimizerConfig::Sgd {
                momentum,
                nesterov,
                weight_decay,
            } => {
                let k = SgdStep {
                    lr: lr as f32,
                    mu: momentum as f32,
                    nesterov,
                    wd: weight_decay as f32,
                    first: t == 1,
                };
                match mask {
                    Some(mk) => k.run::<true>(ws, gs, m, mk),
                    None => k.run::<false>(ws, gs, m, &[]),
                }
            }
        }
        Tensor::<D>::from_data(w, &device)
    }

    /// The update of one parameter as device tensor ops: the arithmetic of [`AdamStep`] and
    /// [`SgdStep`], with the moments and the mask kept on the device between steps.
    fn device_update<const D: usize>(
        &mut self,
        id: ParamId,
        w: Tensor<D>,
        g: Tensor<D>,
        lr: f64,
        mask: Option<&[u8]>,
    ) -> Tensor<D> {
        let dims = w.dims();
        let n: usize = dims.iter().product();
        let device = w.device();
        let mask = mask.map(|host| {
            let m = self.device_masks.entry(id).or_insert_with(|| {
                let ones: Vec<f32> = host.iter().map(|&k| k as f32).collect();
                Tensor::<1>::from_data(TensorData::new(ones, [n]), &device)
            });
            m.clone().reshape(dims)
        });
        let masked = |t: Tensor<D>| match &mask {
            Some(m) => t * m.clone(),
            None => t,
        };
        let uses_second = matches!(self.config, OptimizerConfig::Adam { .. });
        let (m, v) = self.device_moments.entry(id).or_insert_with(|| {
            let zeros = || Tensor::<1>::zeros([n], &device);
            (zeros(), uses_second.then(zeros))
        });
        let t = self.steps;
        let updated = match self.config.clone() {
            OptimizerConfig::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
            } => {
                let (step, inv_bc2) = adam_scales(lr, beta1, beta2, t);
                let gi = masked(g + w.clone().mul_scalar(weight_decay));
                let mi =
                    m.clone().reshape(dims).mul_scalar(beta1) + gi.clone().mul_scalar(1.0 - beta1);
                let vi = v
                    .take()
                    .expect("Adam keeps a second moment")
                    .reshape(dims)
                    .mul_scalar(beta2)
                    + (gi.clone() * gi).mul_scalar(1.0 - beta2);
                let denom = vi.clone().sqrt().mul_scalar(inv_bc2).add_scalar(eps);
                let w = w - (mi.clone() / denom).mul_scalar(step);
                *m = mi.reshape([n]);
                *v = Some(vi.reshape([n]));
                w
            }
            OptimizerConfig::Sgd {
                momentum,
                nesterov,
                weight_decay,
            } => {
                let d = masked(g + w.clone().mul_scalar(weight_decay));
                if momentum == 0.0 {
                    w - d.mul_scalar(lr)
                } else {
                    let keep = if t == 1 { 0.0 } else { momentum };
                    let b = m.clone().reshape(dims).mul_scalar(keep) + d.clone();
                    *m = b.clone().reshape([n]);
                    let u = if nesterov {
                        d + b.mul_scalar(momentum)
                    } else {
                        b
                    };
                    w - u.mul_scalar(lr)
                }
            }
        };
        masked(updated)
    }
}

/// Adam's bias corrections at step `t` (from 1), shared by the host and device updates:
/// (lr / (1 − β1ᵗ), 1 / √(1 − β2ᵗ)).
fn adam_scales(lr: f64, beta1: f64, beta2: f64, t: u64) -> (f64, f64) {
    (
        lr / (1.0 - beta1.powi(t as i32)),
        1.0 / (1.0 - beta2.powi(t as i32)).sqrt(),
    )
}

/// Adam as PyTorch defines it (L2 weight decay added to the gradient, bias-corrected moments).
struct AdamStep {
    b1: f32,
    b2: f32,
    /// lr / (1 - β1ᵗ)
    step: f32,
    /// 1 / √(1 - β2ᵗ)
    inv_bc2: f32,
    eps: f32,
    wd: f32,
}

impl AdamStep {
    #[inline(always)]
    fn run<const MASKED: bool>(
        &self,
        w: &mut [f32],
        g: &[f32],
        m: &mut [f32],
        v: &mut [f32],
        mask: &[u8],
    ) {
        let n = w.len();
        let (g, m, v) = (&g[..n], &mut m[..n], &mut v[..n]);
        let mask = if MASKED { &mask[..n] } else { mask };
        for i in 0..n {
            let mk = if MASKED { mask[i] as f32 } else { 1.0 };
            let gi = (g[i] + self.wd * w[i]) * mk;
            let mi = self.b1 * m[i] + (1.0 - self.b1) * gi;
            let vi = self.b2 * v[i] + (1.0 - self.b2) * gi * gi;
            m[i] = mi;
            v[i] = vi;
            let wi = w[i] - self.step * mi / (vi.sqrt() * self.inv_bc2 + self.eps);
            w[i] = if MASKED { wi * mk } else { wi };
        }
    }
}

/// SGD as PyTorch defines it: the first step seeds the momentum buffer with the gradient.
struct SgdStep {
    lr: f32,
    mu: f32,
    nesterov: bool,
    wd: f32,
    first: bool,
}

impl SgdStep {
    #[inline(always)]
    fn run<const MASKED: bool>(&self, w: &mut [f32], g: &[f32], buf: &mut [f32], mask: &[u8]) {
        let n = w.len();
        let (g, buf) = (&g[..n], &mut buf[..n]);
        let mask = if MASKED { &mask[..n] } else { mask };
        let (mu, lr) = (self.mu, self.lr);
        // Choosing the loop outside keeps each one branch-free and vectorisable.
        match (mu == 0.0, self.nesterov) {
            (true, _) => {
                for i in 0..n {
                    let mk = if MASKED { mask[i] as f32 } else { 1.0 };
                    let d = (g[i] + self.wd * w[i]) * mk;
                    w[i] = if MASKED {
                        (w[i] - lr * d) * mk
                    } else {
                        w[i] - lr * d
                    };
                }
            }
            (false, nesterov) => {
                let keep = if self.first { 0.0 } else { mu };
                for i in 0..n {
                    let mk = if MASKED { mask[i] as f32 } else { 1.0 };
                    let d = (g[i] + self.wd * w[i]) * mk;
                    let b = keep * buf[i] + d;
                    buf[i] = b;
                    let u = if nesterov { d + mu * b } else { b };
                    w[i] = if MASKED {
                        (w[i] - lr * u) * mk
                    } else {
                        w[i] - lr * u
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference Adam in f64, written out step by step as in PyTorch's documentation.
    #[test]
    fn adam_matches_reference_and_masked_entries_stay_zero() {
        let k = |t: i32| AdamStep {
            b1: 0.9,
            b2: 0.999,
            step: (0.01 / (1.0 - 0.9f64.powi(t))) as f32,
            inv_bc2: (1.0 / (1.0 - 0.999f64.powi(t)).sqrt()) as f32,
            eps: 1e-8,
            wd: 0.1,
        };
        let mut w = vec![0.5f32, -0.3, 0.0];
        let (mut m, mut v) = (vec![0.0; 3], vec![0.0; 3]);
        let mask = vec![1u8, 1, 0];
        let (mut rw, mut rm, mut rv) = (0.5f64, 0.0f64, 0.0f64);
        for t in 1..=5 {
            let g = vec![0.2f32 * t as f32, -0.1, 7.0];
            k(t).run::<true>(&mut w, &g, &mut m, &mut v, &mask);
            let gi = 0.2 * t as f64 + 0.1 * rw;
            rm = 0.9 * rm + 0.1 * gi;
            rv = 0.999 * rv + 0.001 * gi * gi;
            let mhat = rm / (1.0 - 0.9f64.powi(t));
            let vhat = rv / (1.0 - 0.999f64.powi(t));
            rw -= 0.01 * mhat / (vhat.sqrt() + 1e-8);
            assert!(
                (w[0] as f64 - rw).abs() < 1e-6,
                "step {t}: {} vs {rw}",
                w[0]
            );
            assert_eq!((w[2], m[2], v[2]), (0.0, 0.0, 0.0));
        }
    }

    #[test]
    fn sgd_nesterov_matches_reference() {
        let mut w = vec![1.0f32];
        let mut buf = vec![0.0f32];
        let (mut rw, mut rb) = (1.0f64, 0.0f64);
        for t in 0..4 {
            let g = [0.5f32 - t as f32 * 0.1];
            SgdStep {
                lr: 0.1,
                mu: 0.9,
                nesterov: true,
                wd: 0.01,
                first: t == 0,
            }
            .run::<false>(&mut w, &g, &mut buf, &[]);
            let d = g[0] as f64 + 0.01 * rw;
            rb = if t == 0 { d } else { 0.9 * rb + d };
            rw -= 0.1 * (d + 0.9 * rb);
            assert!((w[0] as f64 - rw).abs() < 1e-6);
        }
    }

    #[test]
    fn invalid_settings_are_named() {
        let e = OptimizerConfig::sgd(1.5, false, 0.0)
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("momentum"), "{e}");
        let e = OptimizerConfig::sgd(0.0, true, 0.0)
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("nesterov"), "{e}");
    }
}
