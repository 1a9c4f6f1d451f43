//! Pruning strategies: from trained weights and the current mask, the next mask.
//!
//! Each level removes a fraction of the weights that *remain*; weights pruned before stay
//! pruned. Ties in magnitude are broken by position, so the same weights give the same mask.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::masks::MaskSet;
use crate::rng::Rng;
use crate::tensors::StateDict;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Lowest |w| within each layer, at the layer's own rate (the LTH paper).
    Layerwise,
    /// Lowest |w| across all prunable layers, one threshold (OpenLTH).
    Global,
    /// Random weights, as many per layer as layer-wise magnitude pruning would take (a control).
    Random,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PruneConfig {
    pub strategy: Strategy,
    /// Fraction of the remaining weights pruned per level.
    pub rate: f64,
    /// Rate for the output layer (layer-wise only); the LTH paper uses half the hidden rate.
    /// `None` prunes it at `rate`; 0 leaves it dense.
    #[serde(default)]
    pub output_rate: Option<f64>,
    /// Rate for convolution weights (layer-wise only); the LTH paper prunes Conv-2/4/6's
    /// convolutions at 10–15% and their fully connected layers at 20%. `None` prunes them at `rate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conv_rate: Option<f64>,
    /// Tensors excluded by name (substring match), e.g. `fc3` or `conv1.`.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Further tensors pruned although not prunable by default (substring match), e.g. `bias`.
    #[serde(default)]
    pub include: Vec<String>,
}

impl PruneConfig {
    pub fn validate(&self) -> Result<()> {
        for (field, r) in [
            ("prune-rate", Some(self.rate)),
            ("output-rate", self.output_rate),
            ("conv-rate", self.conv_rate),
        ] {
            if let Some(r) = r
                && !(0.0..1.0).contains(&r)
            {
                return Err(Error::config(field, format!("{r} is outside [0, 1)")));
            }
        }
        Ok(())
    }

    /// The names this configuration prunes: the model's prunable tensors and those `include`
    /// names among `all`, less those `exclude` names. Running statistics are never pruned.
    pub fn targets(&self, prunable: &[String], all: &[String]) -> Vec<String> {
        let matches = |n: &str, pats: &[String]| pats.iter().any(|p| n.contains(p.as_str()));
        all.iter()
            .filter(|n| {
                prunable.contains(n) || (matches(n, &self.include) && !n.contains("running_"))
            })
            .filter(|n| !matches(n, &self.exclude))
            .cloned()
            .collect()
    }

    /// The layer-wise rate of tensor `name` with `dims` dimensions (4: a convolution kernel).
    fn rate_for(&self, name: &str, dims: usize, output: &str) -> f64 {
        if name == output {
            self.output_rate.unwrap_or(self.rate)
        } else if dims == 4 {
            self.conv_rate.unwrap_or(self.rate)
        } else {
            self.rate
        }
    }
}

/// How many of `remaining` weights a level at `rate` prunes (rounded half away from zero).
pub fn prune_count(remaining: usize, rate: f64) -> usize {
    ((remaining as f64 * rate).round() as usize).min(remaining)
}

/// The next mask. `weights` are the trained weights (PyTorch layout); `output` names the output
/// layer's weight; `seed` drives random pruning only.
pub fn prune(
    weights: &StateDict,
    mask: &MaskSet,
    cfg: &PruneConfig,
    output: &str,
    seed: u64,
) -> MaskSet {
    let mut next = mask.clone();
    match cfg.strategy {
        Strategy::Layerwise => {
            for (name, m) in next.masks.iter_mut() {
                let rate = cfg.rate_for(name, weights[name].shape.len(), output);
                let n = prune_count(m.count_nonzero(), rate);
                let w = &weights[name].data;
                let order = lowest_first(
                    m.data
                        .iter()
                        .enumerate()
                        .filter(|(_, k)| **k != 0.0)
                        .map(|(i, _)| (w[i].abs(), i)),
                );
                for &(_, i) in order.iter().take(n) {
                    m.data[i] = 0.0;
                }
            }
        }
        Strategy::Global => {
            let names: Vec<&String> = next.masks.keys().collect();
            let mut all = Vec::new();
            for (l, name) in names.iter().enumerate() {
                let (m, w) = (&mask.masks[*name], &weights[*name].data);
                all.extend(
                    m.data
                        .iter()
                        .enumerate()
                        .filter(|(_, k)| **k != 0.0)
                        .map(|(i, _)| (w[i].abs(), l, i)),
                );
            }
            let n = prune_count(all.len(), cfg.rate);
            all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
            let names: Vec<String> = names.into_iter().cloned().collect();
            for &(_, l, i) in all.iter().take(n) {
                next.masks
                    .get_mut(&names[l])
                    .expect("name from the same map")
                    .data[i] = 0.0;
            }
        }
        Strategy::Random => {
            for (name, m) in next.masks.iter_mut() {
                let rate = cfg.rate_for(name, weights[name].shape.len(), output);
                let n = prune_count(m.count_nonzero(), rate);
                remove_random(&mut m.data, n, &mut Rng::derive(seed, name));
            }
        }
    }
    next
}

/// A random mask with the same number of kept weights per tensor as `like`.
pub fn random_like(like: &MaskSet, seed: u64) -> MaskSet {
    let mut out = like.clone();
    for (name, m) in out.masks.iter_mut() {
        let keep = m.count_nonzero();
        m.data.iter_mut().for_each(|k| *k = 1.0);
        let n = m.data.len() - keep;
        remove_random(
            &mut m.data,
            n,
            &mut Rng::derive(seed, &format!("random mask {name}")),
        );
    }
    out
}

/// Sets `n` of the ones in `mask` to zero, uniformly at random.
fn remove_random(mask: &mut [f32], n: usize, rng: &mut Rng) {
    let mut alive: Vec<usize> = (0..mask.len()).filter(|&i| mask[i] != 0.0).collect();
    rng.shuffle(&mut alive);
    for &i in alive.iter().take(n) {
        mask[i] = 0.0;
    }
}

fn lowest_first(items: impl Iterator<Item = (f32, usize)>) -> Vec<(f32, usize)> {
    let mut v: Vec<(f32, usize)> = items.collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    v
}

/// Kept and total weights per tensor, for reports.
pub fn per_layer(mask: &MaskSet) -> BTreeMap<String, (usize, usize)> {
    mask.masks
        .iter()
        .map(|(k, m)| (k.clone(), (m.count_nonzero(), m.len())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensors::HostTensor;

    fn setup() -> (StateDict, MaskSet) {
        let mut w = StateDict::new();
        let mut m = MaskSet::default();
        for (name, n) in [
            ("fc1.weight", 1000usize),
            ("fc2.weight", 300),
            ("fc3.weight", 50),
        ] {
            let mut rng = Rng::derive(1, name);
            w.insert(
                name.into(),
                HostTensor::new(vec![n], (0..n).map(|_| rng.normal() as f32).collect()),
            );
            m.masks
                .insert(name.into(), HostTensor::new(vec![n], vec![1.0; n]));
        }
        (w, m)
    }

    #[test]
    fn targets_follow_include_and_exclude() {
        let all: Vec<String> = [
            "fc1.bias",
            "fc1.weight",
            "fc2.bias",
            "fc2.weight",
            "bn1.running_mean",
        ]
        .map(String::from)
        .to_vec();
        let prunable: Vec<String> = vec!["fc1.weight".into(), "fc2.weight".into()];
        let mut cfg = PruneConfig {
            strategy: Strategy::Layerwise,
            rate: 0.2,
            output_rate: None,
            conv_rate: None,
            exclude: vec!["fc2".into()],
            include: vec![],
        };
        assert_eq!(cfg.targets(&prunable, &all), vec!["fc1.weight"]);
        cfg.include = vec!["bias".into(), "running".into()];
        assert_eq!(cfg.targets(&prunable, &all), vec!["fc1.bias", "fc1.weight"]);
    }

    #[test]
    fn layerwise_counts_follow_the_formula_level_after_level() {
        let (w, mut m) = setup();
        let cfg = PruneConfig {
            strategy: Strategy::Layerwise,
            rate: 0.2,
            output_rate: Some(0.1),
            conv_rate: None,
            exclude: vec![],
            include: vec![],
        };
        let mut expect: BTreeMap<&str, usize> = [
            ("fc1.weight", 1000),
            ("fc2.weight", 300),
            ("fc3.weight", 50),
        ]
        .into();
        for _ in 0..12 {
            let next = prune(&w, &m, &cfg, "fc3.weight", 0);
            for (name, left) in expect.iter_mut() {
                let rate = if *name == "fc3.weight" { 0.1 } else { 0.2 };
                *left -= prune_count(*left, rate);
                assert_eq!(next.masks[*name].count_nonzero(), *left, "{name}");
                // Pruned stays pruned.
                for (a, b) in m.masks[*name].data.iter().zip(&next.masks[*name].data) {
                    assert!(*a != 0.0 || *b == 0.0);
                }
            }
            m = next;
        }
        // 0.8^12 of the hidden weights, as the paper's schedule.
        assert_eq!(expect["fc1.weight"], 69);
    }

    #[test]
    fn convolutions_fully_connected_and_output_layers_take_their_own_rates() {
        // Conv-2's shapes: the paper prunes 10% / 20% / 10% per round.
        let mut w = StateDict::new();
        let mut m = MaskSet::default();
        for (name, shape) in [
            ("conv1.weight", vec![64, 3, 3, 3]),
            ("fc1.weight", vec![256, 1000]),
            ("fc3.weight", vec![10, 256]),
        ] {
            let n: usize = shape.iter().product();
            let mut rng = Rng::derive(2, name);
            w.insert(
                name.into(),
                HostTensor::new(shape.clone(), (0..n).map(|_| rng.normal() as f32).collect()),
            );
            m.masks
                .insert(name.into(), HostTensor::new(shape, vec![1.0; n]));
        }
        for strategy in [Strategy::Layerwise, Strategy::Random] {
            let cfg = PruneConfig {
                strategy,
                rate: 0.2,
                output_rate: Some(0.1),
                conv_rate: Some(0.1),
                exclude: vec![],
                include: vec![],
            };
            let mut mask = m.clone();
            let mut expect = [
                ("conv1.weight", 1728, 0.1),
                ("fc1.weight", 256_000, 0.2),
                ("fc3.weight", 2560, 0.1),
            ];
            for _ in 0..3 {
                mask = prune(&w, &mask, &cfg, "fc3.weight", 0);
                for (name, left, rate) in expect.iter_mut() {
                    *left -= prune_count(*left, *rate);
                    assert_eq!(
                        mask.masks[*name].count_nonzero(),
                        *left,
                        "{strategy:?} {name}"
                    );
                }
            }
        }
    }

    #[test]
    fn magnitude_pruning_removes_the_smallest_and_ties_break_by_position() {
        let mut w = StateDict::new();
        w.insert(
            "a.weight".into(),
            HostTensor::new(vec![6], vec![0.5, -0.1, 0.1, 3.0, -0.1, 2.0]),
        );
        let mut m = MaskSet::default();
        m.masks
            .insert("a.weight".into(), HostTensor::new(vec![6], vec![1.0; 6]));
        let cfg = PruneConfig {
            strategy: Strategy::Layerwise,
            rate: 0.5,
            output_rate: None,
            conv_rate: None,
            exclude: vec![],
            include: vec![],
        };
        let next = prune(&w, &m, &cfg, "none", 0);
        assert_eq!(
            next.masks["a.weight"].data,
            vec![1.0, 0.0, 0.0, 1.0, 0.0, 1.0]
        );
    }

    #[test]
    fn global_uses_one_threshold() {
        let (w, m) = setup();
        let cfg = PruneConfig {
            strategy: Strategy::Global,
            rate: 0.5,
            output_rate: None,
            conv_rate: None,
            exclude: vec![],
            include: vec![],
        };
        let next = prune(&w, &m, &cfg, "fc3.weight", 0);
        assert_eq!(next.kept(), 675);
        let max_pruned = w
            .iter()
            .flat_map(|(k, t)| {
                t.data
                    .iter()
                    .zip(&next.masks[k].data)
                    .filter(|(_, m)| **m == 0.0)
                    .map(|(x, _)| x.abs())
            })
            .fold(0.0, f32::max);
        let min_kept = w
            .iter()
            .flat_map(|(k, t)| {
                t.data
                    .iter()
                    .zip(&next.masks[k].data)
                    .filter(|(_, m)| **m != 0.0)
                    .map(|(x, _)| x.abs())
            })
            .fold(f32::INFINITY, f32::min);
        assert!(max_pruned <= min_kept);
    }

    #[test]
    fn random_pruning_matches_counts_and_is_seeded() {
        let (w, m) = setup();
        let cfg = PruneConfig {
            strategy: Strategy::Random,
            rate: 0.3,
            output_rate: None,
            conv_rate: None,
            exclude: vec![],
            include: vec![],
        };
        let a = prune(&w, &m, &cfg, "fc3.weight", 5);
        let b = prune(&w, &m, &cfg, "fc3.weight", 5);
        let c = prune(&w, &m, &cfg, "fc3.weight", 6);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.masks["fc1.weight"].count_nonzero(), 700);
        let r = random_like(&a, 9);
        assert_eq!(per_layer(&r), per_layer(&a));
        assert_ne!(r, a);
    }
}
