//! Pruning: a *criterion* scores every prunable weight, a *scope* decides how many of the
//! lowest scores go in each tensor (layer-wise at per-kind rates) or across all of them (global).
//!
//! Each level removes a fraction of the weights that *remain*; weights pruned before stay
//! pruned. Ties in score are broken by position, so the same inputs give the same mask.

pub mod any;
pub mod criteria;
pub mod criterion;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::masks::MaskSet;
use crate::rng::Rng;
pub use criterion::{Context, Criterion, Needs};

/// Where the weights to prune are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Each tensor loses its own rate of what it keeps (the LTH paper).
    Layerwise,
    /// One threshold across all pruned tensors (OpenLTH).
    Global,
}

impl Scope {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "layerwise" | "layer-wise" => Ok(Scope::Layerwise),
            "global" => Ok(Scope::Global),
            _ => Err(Error::config(
                "scope",
                format!("`{s}` is not one of layerwise, global"),
            )),
        }
    }
}

/// How each level prunes. Its JSON is the `prune` table of an experiment's config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "PruneConfigFile")]
pub struct PruneConfig {
    pub scope: Scope,
    /// The scoring rule, by registry name (`magnitude`, `movement`, `snip`, …).
    pub criterion: String,
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

/// `config.json` as written before criteria and scopes were separate: `strategy` was one of
/// layerwise / global (magnitude) or random (layer-wise counts). Read so old runs still resume.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PruneConfigFile {
    #[serde(default)]
    scope: Option<Scope>,
    #[serde(default)]
    criterion: Option<String>,
    #[serde(default)]
    strategy: Option<String>,
    rate: f64,
    #[serde(default)]
    output_rate: Option<f64>,
    #[serde(default)]
    conv_rate: Option<f64>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    include: Vec<String>,
}

impl From<PruneConfigFile> for PruneConfig {
    fn from(f: PruneConfigFile) -> Self {
        let (scope, criterion) = match f.strategy.as_deref() {
            Some("global") => (Scope::Global, "magnitude"),
            Some("random") => (Scope::Layerwise, "random"),
            _ => (Scope::Layerwise, "magnitude"),
        };
        PruneConfig {
            scope: f.scope.unwrap_or(scope),
            criterion: f.criterion.unwrap_or_else(|| criterion.to_string()),
            rate: f.rate,
            output_rate: f.output_rate,
            conv_rate: f.conv_rate,
            exclude: f.exclude,
            include: f.include,
        }
    }
}

impl PruneConfig {
    /// Layer-wise magnitude pruning at `rate` (the LTH paper's rule, without per-kind rates).
    pub fn layerwise(rate: f64) -> Self {
        PruneConfig {
            scope: Scope::Layerwise,
            criterion: "magnitude".into(),
            rate,
            output_rate: None,
            conv_rate: None,
            exclude: vec![],
            include: vec![],
        }
    }

    /// Global magnitude pruning at `rate` (OpenLTH's rule).
    pub fn global(rate: f64) -> Self {
        PruneConfig {
            scope: Scope::Global,
            ..Self::layerwise(rate)
        }
    }

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
        if self.scope == Scope::Global {
            for (field, r) in [
                ("output-rate", self.output_rate),
                ("conv-rate", self.conv_rate),
            ] {
                if r.is_some() {
                    return Err(Error::config(
                        field,
                        format!(
                            "{} applies to layer-wise pruning only; global pruning has one rate (pass --{field} none, or --prune-exclude to keep a layer dense)",
                            r.unwrap_or_default()
                        ),
                    ));
                }
            }
        }
        criterion::lookup(&self.criterion)?;
        Ok(())
    }

    pub fn criterion(&self) -> Result<&'static dyn Criterion> {
        criterion::lookup(&self.criterion)
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

/// The next mask: `ctx.mask` less the lowest-scoring weights under `cfg`'s criterion and scope.
/// `output` names the output layer's weight (its own rate, layer-wise).
pub fn prune(ctx: &Context, cfg: &PruneConfig, output: &str) -> Result<MaskSet> {
    let criterion = cfg.criterion()?;
    let mut next = ctx.mask.clone();
    let mut scored = Vec::with_capacity(next.masks.len());
    for (name, m) in &next.masks {
        let s = criterion.score(ctx, name)?;
        if s.len() != m.len() {
            return Err(Error::config(
                "criterion",
                format!(
                    "{} scored {} entries of `{name}`, which has {}",
                    criterion.name(),
                    s.len(),
                    m.len()
                ),
            ));
        }
        scored.push(s);
    }
    // Candidates are the weights the mask still keeps: (score, tensor, position).
    let alive = |l: usize, m: &crate::tensors::HostTensor| -> Vec<(f32, usize, usize)> {
        m.data
            .iter()
            .enumerate()
            .filter(|(_, k)| **k != 0.0)
            .map(|(i, _)| (scored[l][i], l, i))
            .collect()
    };
    let lowest_first = |v: &mut Vec<(f32, usize, usize)>| {
        v.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)))
    };
    match cfg.scope {
        Scope::Layerwise => {
            for (l, (name, m)) in next.masks.iter_mut().enumerate() {
                let rate = cfg.rate_for(name, m.shape.len(), output);
                let mut order = alive(l, m);
                let n = prune_count(order.len(), rate);
                lowest_first(&mut order);
                for &(_, _, i) in order.iter().take(n) {
                    m.data[i] = 0.0;
                }
            }
        }
        Scope::Global => {
            let mut all: Vec<(f32, usize, usize)> = Vec::new();
            for (l, m) in next.masks.values().enumerate() {
                all.extend(alive(l, m));
            }
            let n = prune_count(all.len(), cfg.rate);
            lowest_first(&mut all);
            let mut tensors: Vec<&mut crate::tensors::HostTensor> =
                next.masks.values_mut().collect();
            for &(_, l, i) in all.iter().take(n) {
                tensors[l].data[i] = 0.0;
            }
        }
    }
    Ok(next)
}

/// The mask that keeps, in each tensor of `like`, as many of the weights `ctx.mask` keeps as
/// `like` keeps there: those `criterion` scores highest (equal scores: the lower position is
/// pruned first, as in [`prune`]). One-shot pruning to another mask's per-layer counts.
pub fn keep_like(ctx: &Context, criterion: &dyn Criterion, like: &MaskSet) -> Result<MaskSet> {
    let mut out = like.clone();
    for (name, m) in out.masks.iter_mut() {
        let keep = m.count_nonzero();
        let scores = criterion.score(ctx, name)?;
        let mut alive: Vec<usize> = match ctx.mask.masks.get(name) {
            Some(c) => (0..c.len()).filter(|&i| c.data[i] != 0.0).collect(),
            None => (0..m.len()).collect(),
        };
        if scores.len() != m.len() || alive.len() < keep {
            return Err(Error::config(
                "criterion",
                format!(
                    "`{name}` has {} weights to choose from, {keep} to keep",
                    alive.len()
                ),
            ));
        }
        alive.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(a.cmp(&b)));
        m.data.iter_mut().for_each(|k| *k = 0.0);
        for &i in &alive[alive.len() - keep..] {
            m.data[i] = 1.0;
        }
    }
    Ok(out)
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

/// The fraction of what a mask of `density` keeps that must go for `target` sparsity overall
/// (rates are fractions of what is left, so an already pruned network ends at `target`).
pub fn rate(target: f64, density: f64) -> Result<f64> {
    let keep = 1.0 - target;
    if keep > density + 1e-12 {
        return Err(Error::config(
            "sparsity",
            format!(
                "the network already keeps only {:.2}% of its weights; sparsity {target} would add some back",
                density * 100.0
            ),
        ));
    }
    Ok(1.0 - keep / density)
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
    use crate::tensors::{HostTensor, StateDict};

    fn ctx<'a>(w: &'a StateDict, m: &'a MaskSet, seed: u64) -> Context<'a> {
        Context {
            trained: w,
            rewind: None,
            mask: m,
            gradients: None,
            seed,
        }
    }

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
            exclude: vec!["fc2".into()],
            ..PruneConfig::layerwise(0.2)
        };
        assert_eq!(cfg.targets(&prunable, &all), vec!["fc1.weight"]);
        cfg.include = vec!["bias".into(), "running".into()];
        assert_eq!(cfg.targets(&prunable, &all), vec!["fc1.bias", "fc1.weight"]);
    }

    #[test]
    fn layerwise_counts_follow_the_formula_level_after_level() {
        let (w, mut m) = setup();
        let cfg = PruneConfig {
            output_rate: Some(0.1),
            ..PruneConfig::layerwise(0.2)
        };
        let mut expect: BTreeMap<&str, usize> = [
            ("fc1.weight", 1000),
            ("fc2.weight", 300),
            ("fc3.weight", 50),
        ]
        .into();
        for _ in 0..12 {
            let next = prune(&ctx(&w, &m, 0), &cfg, "fc3.weight").unwrap();
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
        for criterion in ["magnitude", "random"] {
            let cfg = PruneConfig {
                criterion: criterion.into(),
                output_rate: Some(0.1),
                conv_rate: Some(0.1),
                ..PruneConfig::layerwise(0.2)
            };
            let mut mask = m.clone();
            let mut expect = [
                ("conv1.weight", 1728, 0.1),
                ("fc1.weight", 256_000, 0.2),
                ("fc3.weight", 2560, 0.1),
            ];
            for _ in 0..3 {
                mask = prune(&ctx(&w, &mask, 0), &cfg, "fc3.weight").unwrap();
                for (name, left, rate) in expect.iter_mut() {
                    *left -= prune_count(*left, *rate);
                    assert_eq!(
                        mask.masks[*name].count_nonzero(),
                        *left,
                        "{criterion} {name}"
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
        let cfg = PruneConfig::layerwise(0.5);
        let next = prune(&ctx(&w, &m, 0), &cfg, "none").unwrap();
        assert_eq!(
            next.masks["a.weight"].data,
            vec![1.0, 0.0, 0.0, 1.0, 0.0, 1.0]
        );
    }

    #[test]
    fn global_uses_one_threshold() {
        let (w, m) = setup();
        let cfg = PruneConfig::global(0.5);
        let next = prune(&ctx(&w, &m, 0), &cfg, "fc3.weight").unwrap();
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
            criterion: "random".into(),
            ..PruneConfig::layerwise(0.3)
        };
        let a = prune(&ctx(&w, &m, 5), &cfg, "fc3.weight").unwrap();
        let b = prune(&ctx(&w, &m, 5), &cfg, "fc3.weight").unwrap();
        let c = prune(&ctx(&w, &m, 6), &cfg, "fc3.weight").unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.masks["fc1.weight"].count_nonzero(), 700);
        let r = random_like(&a, 9);
        assert_eq!(per_layer(&r), per_layer(&a));
        assert_ne!(r, a);
    }

    fn one(name: &str, data: Vec<f32>) -> StateDict {
        let n = data.len();
        [(name.to_string(), HostTensor::new(vec![n], data))].into()
    }

    #[test]
    fn each_criterion_scores_by_its_formula() {
        let trained = one("a.weight", vec![0.5, -2.0, 0.1, -0.3]);
        let init = one("a.weight", vec![-1.0, -0.5, 0.4, 0.0]);
        let grads = one("a.weight", vec![2.0, 1.0, -3.0, 5.0]);
        let mask = MaskSet {
            masks: one("a.weight", vec![1.0; 4]),
        };
        let c = Context {
            trained: &trained,
            rewind: Some(&init),
            mask: &mask,
            gradients: Some(&grads),
            seed: 0,
        };
        let expect: [(&str, Vec<f32>); 6] = [
            ("magnitude", vec![0.5, 2.0, 0.1, 0.3]),
            ("large_init", vec![1.0, 0.5, 0.4, 0.0]),
            // Same sign keeps |w_final|; a flip or an initial zero scores 0.
            ("large_final_same_sign", vec![0.0, 2.0, 0.1, 0.0]),
            ("magnitude_increase", vec![-0.5, 1.5, -0.3, 0.3]),
            ("movement", vec![1.5, 1.5, 0.3, 0.3]),
            // |g · w| at the rewind point, not at the trained weights.
            ("snip", vec![2.0, 0.5, 1.2, 0.0]),
        ];
        for (name, want) in expect {
            let got = criterion::lookup(name)
                .unwrap()
                .score(&c, "a.weight")
                .unwrap();
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-6, "{name}: {got:?} vs {want:?}");
            }
        }
        let r = criterion::lookup("random").unwrap();
        let a = r.score(&c, "a.weight").unwrap();
        assert_eq!(a, r.score(&c, "a.weight").unwrap());
        assert!(a.iter().all(|x| (0.0..1.0).contains(x)));
    }

    #[test]
    fn criteria_name_what_they_miss() {
        let trained = one("a.weight", vec![0.5, -2.0]);
        let mask = MaskSet {
            masks: one("a.weight", vec![1.0; 2]),
        };
        for (name, missing) in [("movement", "--init"), ("snip", "gradients")] {
            let cfg = PruneConfig {
                criterion: name.into(),
                ..PruneConfig::layerwise(0.5)
            };
            let err = prune(&ctx(&trained, &mask, 0), &cfg, "x")
                .unwrap_err()
                .to_string();
            assert!(err.contains(missing), "{name}: {err}");
        }
        let bad = PruneConfig {
            criterion: "biggest".into(),
            ..PruneConfig::layerwise(0.5)
        };
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("large_final_same_sign"), "{err}");
    }

    #[test]
    fn movement_prunes_what_moved_least() {
        let trained = one("a.weight", vec![3.0, 0.1, -1.0, 0.2]);
        let init = one("a.weight", vec![3.0, 2.0, -1.1, 0.2]);
        let mask = MaskSet {
            masks: one("a.weight", vec![1.0; 4]),
        };
        let cfg = PruneConfig {
            criterion: "movement".into(),
            ..PruneConfig::layerwise(0.5)
        };
        let c = Context {
            rewind: Some(&init),
            ..ctx(&trained, &mask, 0)
        };
        // Moved 0, 1.9, 0.1, 0: the two that stayed put go (ties by position).
        assert_eq!(
            prune(&c, &cfg, "x").unwrap().masks["a.weight"].data,
            vec![0.0, 1.0, 1.0, 0.0]
        );
    }

    #[test]
    fn global_scope_refuses_layerwise_rates() {
        for cfg in [
            PruneConfig {
                output_rate: Some(0.1),
                ..PruneConfig::global(0.2)
            },
            PruneConfig {
                conv_rate: Some(0.1),
                ..PruneConfig::global(0.2)
            },
        ] {
            let err = cfg.validate().unwrap_err().to_string();
            assert!(err.contains("layer-wise pruning only"), "{err}");
        }
        PruneConfig::global(0.2).validate().unwrap();
    }

    #[test]
    fn configs_written_with_a_strategy_still_read() {
        let old: PruneConfig = serde_json::from_str(
            r#"{"strategy":"global","rate":0.2,"output_rate":null,"exclude":["fc3"],"include":[]}"#,
        )
        .unwrap();
        assert_eq!(
            old,
            PruneConfig {
                exclude: vec!["fc3".into()],
                ..PruneConfig::global(0.2)
            }
        );
        let random: PruneConfig =
            serde_json::from_str(r#"{"strategy":"random","rate":0.2}"#).unwrap();
        assert_eq!(random.criterion, "random");
        assert_eq!(random.scope, Scope::Layerwise);
        // And the new shape round-trips.
        let json = serde_json::to_string(&random).unwrap();
        assert_eq!(serde_json::from_str::<PruneConfig>(&json).unwrap(), random);
    }
}
