//! Which tensors of any state dict are prunable, without knowing its architecture (the first
//! step of "prune my own model"): the weights of linear and convolution layers — floating
//! tensors named `*.weight` of rank 2 (linear), 3 (conv1d), 4 (conv2d) or 5 (conv3d) — and never
//! biases, normalisation parameters, running statistics or embeddings (token or patch), unless
//! named by an include pattern. Each tensor left dense carries the reason, for the report.

use crate::error::{Error, Result};
use crate::masks::MaskSet;
use crate::prune::{self, PruneConfig, Scope};
use crate::tensors::{HostTensor, StateDict};

/// The prunable tensors of a state dict, and why each other tensor stays dense.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub prunable: Vec<String>,
    pub dense: Vec<(String, &'static str)>,
}

/// Splits `dict`'s tensors into prunable and dense. `include` patterns (substrings) add tensors
/// the defaults leave dense, except running statistics; `exclude` patterns remove any.
pub fn select(dict: &StateDict, include: &[String], exclude: &[String]) -> Selection {
    let matches = |n: &str, pats: &[String]| pats.iter().any(|p| n.contains(p.as_str()));
    let mut out = Selection {
        prunable: vec![],
        dense: vec![],
    };
    for (name, t) in dict {
        let default = default_reason(name, t.shape.len());
        let reason = if matches(name, exclude) {
            Some("excluded by name")
        } else if default.is_some() && matches(name, include) && !is_running_stat(name) {
            None
        } else {
            default
        };
        match reason {
            None => out.prunable.push(name.clone()),
            Some(why) => out.dense.push((name.clone(), why)),
        }
    }
    out
}

/// How to prune a state dict of any architecture: the settings `lottery prune FILE` and
/// Python's `lottery.prune` share, so both give the same masks bit for bit.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// Fraction of the selected weights pruned in the end (an earlier `mask`'s zeros count).
    pub sparsity: f64,
    pub scope: Scope,
    pub criterion: &'a str,
    pub include: &'a [String],
    pub exclude: &'a [String],
    /// One prunable tensor pruned to its own sparsity (a classifier, as the LTH paper does).
    pub output: Option<(&'a str, f64)>,
    /// Seed of the random criterion.
    pub seed: u64,
    /// Initial weights, for criteria that compare with them.
    pub init: Option<&'a StateDict>,
    /// An earlier mask to prune further; without one every selected weight starts kept.
    pub mask: Option<&'a MaskSet>,
}

/// The mask `r` asks for on `dict`, and which tensors were selected (the rest stay dense, each
/// with its reason). Every error is one sentence naming the setting at fault.
pub fn prune_dict(dict: &StateDict, r: &Request) -> Result<(MaskSet, Selection)> {
    for (what, s) in [
        ("sparsity", Some(r.sparsity)),
        ("output sparsity", r.output.map(|o| o.1)),
    ] {
        if let Some(s) = s
            && !(0.0..1.0).contains(&s)
        {
            return Err(Error::config(what, format!("{s} is outside [0, 1)")));
        }
    }
    for pattern in r.exclude {
        if !dict.keys().any(|n| n.contains(pattern.as_str())) {
            return Err(Error::config(
                "exclude",
                format!("`{pattern}` matches no tensor"),
            ));
        }
    }
    let selection = select(dict, r.include, r.exclude);
    if selection.prunable.is_empty() {
        return Err(Error::config(
            "state dict",
            "no prunable tensor (no linear or convolution `*.weight`; include names others)",
        ));
    }
    let current = match r.mask {
        Some(m) => {
            if let Some((n, _)) =
                (m.masks.iter()).find(|(n, t)| dict.get(*n).is_none_or(|w| w.shape != t.shape))
            {
                return Err(Error::config(
                    "mask",
                    format!("mask `{n}` fits no tensor of the state dict"),
                ));
            }
            m.clone()
        }
        None => MaskSet {
            masks: (selection.prunable.iter())
                .map(|n| {
                    let t = &dict[n];
                    (
                        n.clone(),
                        HostTensor::new(t.shape.clone(), vec![1.0; t.len()]),
                    )
                })
                .collect(),
        },
    };
    let (output, output_rate) = match r.output {
        Some((name, s)) => {
            let Some(m) = current.masks.get(name) else {
                return Err(Error::config(
                    "output layer",
                    format!("`{name}` is not a prunable tensor of the state dict"),
                ));
            };
            let density = m.count_nonzero() as f64 / m.len().max(1) as f64;
            (name, Some(prune::rate(s, density)?))
        }
        None => ("", None),
    };
    let cfg = PruneConfig {
        scope: r.scope,
        criterion: r.criterion.to_string(),
        rate: prune::rate(r.sparsity, current.density())?,
        output_rate,
        ..PruneConfig::layerwise(0.0)
    };
    cfg.validate()?;
    let needs = cfg.criterion()?.needs();
    if needs.gradients {
        return Err(Error::config(
            "criterion",
            format!(
                "{} needs gradients of a model lottery can run; for a bare state dict use a weight-based criterion",
                r.criterion
            ),
        ));
    }
    if needs.rewind && r.init.is_none() {
        return Err(Error::config(
            "criterion",
            format!(
                "{} compares with the initial weights; give them (init)",
                r.criterion
            ),
        ));
    }
    let ctx = prune::Context {
        trained: dict,
        rewind: r.init,
        mask: &current,
        gradients: None,
        seed: r.seed,
    };
    Ok((prune::prune(&ctx, &cfg, output)?, selection))
}

fn is_running_stat(name: &str) -> bool {
    name.contains("running_") || name.ends_with("num_batches_tracked")
}

/// Why a tensor is not prunable by default, or `None` if it is.
fn default_reason(name: &str, rank: usize) -> Option<&'static str> {
    let last = name.rsplit('.').next().unwrap_or(name);
    if is_running_stat(name) {
        return Some("running statistics");
    }
    if last == "bias" {
        return Some("bias");
    }
    if last != "weight" {
        return Some("not a layer weight");
    }
    let lower = name.to_lowercase();
    match rank {
        1 => Some("normalisation parameter"),
        // Token embeddings and a vision transformer's patch embedding (a convolution), as
        // lottery's own models leave them dense.
        2..=5 if lower.contains("embed") => Some("embedding"),
        2..=5 => None,
        _ => Some("not a linear or convolution weight"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensors::HostTensor;

    fn dict(entries: &[(&str, &[usize])]) -> StateDict {
        entries
            .iter()
            .map(|(n, shape)| {
                let len = shape.iter().product();
                (
                    n.to_string(),
                    HostTensor::new(shape.to_vec(), vec![0.5; len]),
                )
            })
            .collect()
    }

    #[test]
    fn a_resnet_like_dict_prunes_convolutions_and_the_classifier_only() {
        let d = dict(&[
            ("conv1.weight", &[64, 3, 7, 7]),
            ("bn1.weight", &[64]),
            ("bn1.bias", &[64]),
            ("bn1.running_mean", &[64]),
            ("bn1.num_batches_tracked", &[]),
            ("layer1.0.downsample.0.weight", &[64, 64, 1, 1]),
            ("fc.weight", &[1000, 512]),
            ("fc.bias", &[1000]),
            ("tok_embed.weight", &[100, 16]),
            ("conv3d.weight", &[8, 4, 3, 3, 3]),
            ("seq.0.weight", &[8, 4, 5]),
        ]);
        let s = select(&d, &[], &[]);
        assert_eq!(
            s.prunable,
            vec![
                "conv1.weight",
                "conv3d.weight",
                "fc.weight",
                "layer1.0.downsample.0.weight",
                "seq.0.weight"
            ]
        );
        let why = |n: &str| s.dense.iter().find(|(m, _)| m == n).map(|(_, w)| *w);
        assert_eq!(why("bn1.weight"), Some("normalisation parameter"));
        assert_eq!(why("bn1.bias"), Some("bias"));
        assert_eq!(why("bn1.running_mean"), Some("running statistics"));
        assert_eq!(why("tok_embed.weight"), Some("embedding"));
        assert_eq!(s.prunable.len() + s.dense.len(), d.len());
    }

    #[test]
    fn include_and_exclude_patterns_move_tensors() {
        let d = dict(&[
            ("0.weight", &[64, 20]),
            ("0.bias", &[64]),
            ("2.weight", &[3, 64]),
            ("bn.running_var", &[64]),
        ]);
        let s = select(&d, &["bias".into(), "running".into()], &["2.".into()]);
        assert_eq!(s.prunable, vec!["0.bias", "0.weight"]);
        assert!(s.dense.contains(&("2.weight".into(), "excluded by name")));
        assert!(
            s.dense
                .contains(&("bn.running_var".into(), "running statistics"))
        );
    }
}
