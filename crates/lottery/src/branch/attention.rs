//! `attention`: the users' question whether "the value of attention might change or even go away
//! in a pruned network", measured on a transformer's levels. At each level:
//! - which parts IMP has pruned: the fraction of weights kept in the attention layers (qkv and
//!   output projection), the MLPs and the head, and in each layer — measures `kept/attn`,
//!   `kept/mlp`, `kept/head`, `kept/<layer>`;
//! - what attention contributes: the trained ticket evaluated as it is (`ticket`), with every
//!   block's attention output replaced by zero (`no_attention`: its output projection zeroed, so
//!   each block adds only its MLP to the residual stream), and with one block's at a time
//!   (`no_attention_<i>`); `attention_drop` and `attention_drop/blocks.<i>` are the differences
//!   in the metric (accuracy points lost, or squared error gained). With a class-token read-out,
//!   zeroing every block's attention cuts the image off the head (chance accuracy by
//!   construction); the per-block ablations show which block's attention the ticket leans on.
//!
//! Nothing trains: each run evaluates afresh.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Branch, LevelContext, evaluate};
use crate::error::{Error, Result};
use crate::experiment::Setup;
use crate::layout::RunDir;
use crate::masks::MaskSet;
use crate::report::chart::{Chart, Point, Series, XAxis};
use crate::report::save_chart;
use crate::results::{Summary, VariantResult};
use crate::tensors::StateDict;

pub struct Attention;

/// No settings: the study is the same for every transformer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttentionConfig {}

/// The part of a transformer a weight belongs to, by its name: `attn`, `mlp` or `head`.
fn part(name: &str) -> Option<&'static str> {
    ["attn", "mlp"]
        .into_iter()
        .find(|p| name.contains(&format!(".{p}.")))
        .or_else(|| name.starts_with("head.").then_some("head"))
}

/// Whether a tensor is an attention output projection, which the ablation zeroes.
fn attention_output(name: &str) -> bool {
    name.contains(".attn.proj.")
}

/// The blocks that have attention, by name prefix (`blocks.0`, …), in order.
fn blocks(dict: &StateDict) -> Vec<String> {
    let mut out: Vec<String> = (dict.keys())
        .filter_map(|n| Some(n.split_once(".attn.proj.")?.0.to_string()))
        .collect();
    out.dedup();
    out
}

/// `weights` with the attention output of every block `which` accepts set to zero.
fn without_attention(weights: &StateDict, which: impl Fn(&str) -> bool) -> StateDict {
    let mut ablated = weights.clone();
    for (name, t) in ablated.iter_mut() {
        if attention_output(name) && which(name) {
            t.data.iter_mut().for_each(|v| *v = 0.0);
        }
    }
    ablated
}

/// Kept fraction per part and per layer of `mask`, by measure name.
fn kept(mask: &MaskSet) -> BTreeMap<String, f64> {
    let mut parts: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for (name, m) in &mask.masks {
        let k = m.data.iter().filter(|&&v| v != 0.0).count();
        let layer = name.trim_end_matches(".weight");
        out.insert(format!("kept/{layer}"), k as f64 / m.len().max(1) as f64);
        if let Some(p) = part(name) {
            let e = parts.entry(p).or_default();
            *e = (e.0 + k, e.1 + m.len());
        }
    }
    for (p, (k, n)) in parts {
        out.insert(format!("kept/{p}"), k as f64 / n.max(1) as f64);
    }
    out
}

impl Branch for Attention {
    type Config = AttentionConfig;

    fn name(&self) -> &'static str {
        "attention"
    }
    fn about(&self) -> &'static str {
        "per-part weights kept and the metric without attention, per level (transformers)"
    }
    fn validate(&self, _: &AttentionConfig, setup: &Setup, init: &StateDict) -> Result<()> {
        if !init.keys().any(|n| attention_output(n)) {
            return Err(Error::config(
                "branch",
                format!(
                    "attention studies networks with attention (vit_…); {} has none",
                    setup.config.model
                ),
            ));
        }
        Ok(())
    }
    fn level(
        &self,
        _: &AttentionConfig,
        ctx: &mut LevelContext,
    ) -> Result<BTreeMap<String, VariantResult>> {
        let setup = ctx.level.setup;
        let with = evaluate(setup, ctx.trained)?;
        for (name, value) in kept(ctx.level.mask) {
            ctx.measure(name, value);
        }
        let sign = if setup.data.test.targets.metric().higher_is_better() {
            1.0
        } else {
            -1.0
        };
        let without = evaluate(setup, &without_attention(ctx.trained, |_| true))?;
        ctx.measure(
            "attention_drop",
            sign * (with.test_accuracy - without.test_accuracy),
        );
        let mut variants = BTreeMap::from([("no_attention".to_string(), without)]);
        for block in blocks(ctx.trained) {
            let prefix = format!("{block}.");
            let one = evaluate(
                setup,
                &without_attention(ctx.trained, |n| n.starts_with(&prefix)),
            )?;
            ctx.measure(
                format!("attention_drop/{block}"),
                sign * (with.test_accuracy - one.test_accuracy),
            );
            let index = block.rsplit('.').next().unwrap_or(&block);
            variants.insert(format!("no_attention_{index}"), one);
        }
        variants.insert("ticket".to_string(), with);
        Ok(variants)
    }
    fn plots(&self, _: &AttentionConfig, out: &RunDir, summary: &Summary) -> Result<()> {
        let m = summary.metric;
        let line = |name: &str, key: &str, scale: f64| Series {
            name: name.into(),
            points: (summary.levels.iter())
                .filter_map(|l| {
                    let y = l.measures.get(key)? * scale;
                    Some(Point {
                        x: l.remaining * 100.0,
                        y,
                        lo: y,
                        hi: y,
                    })
                })
                .collect(),
        };
        let parts = [
            line("attention (qkv, output)", "kept/attn", 100.0),
            line("MLP", "kept/mlp", 100.0),
            line("head", "kept/head", 100.0),
        ];
        save_chart(
            &out.plots().join("attention_kept"),
            &Chart {
                title: "Weights kept per part of the transformer",
                xlabel: "weights remaining (%)",
                ylabel: "weights kept in the part (%)",
                axis: XAxis::Remaining,
                series: &parts,
            },
        )?;
        let mut drop = vec![line("every block's", "attention_drop", m.plotted(1.0))];
        let mut per_block: Vec<&String> = (summary.levels.iter())
            .flat_map(|l| l.measures.keys())
            .filter(|k| k.starts_with("attention_drop/"))
            .collect();
        per_block.sort();
        per_block.dedup();
        for key in per_block {
            let block = key.trim_start_matches("attention_drop/");
            drop.push(line(&format!("{block}'s only"), key, m.plotted(1.0)));
        }
        let title = format!("{} lost without attention (its output zeroed)", m.title());
        save_chart(
            &out.plots().join("attention_drop"),
            &Chart {
                title: &title,
                xlabel: "weights remaining (%)",
                ylabel: m.axis(),
                axis: XAxis::Remaining,
                series: &drop,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensors::HostTensor;

    #[test]
    fn blocks_with_attention_by_prefix() {
        let t = || crate::tensors::HostTensor::new(vec![1], vec![1.0]);
        let dict: StateDict = [
            "blocks.0.attn.proj.bias",
            "blocks.0.attn.proj.weight",
            "blocks.0.mlp.fc1.weight",
            "blocks.10.attn.proj.weight",
            "blocks.2.attn.qkv.weight",
            "head.weight",
        ]
        .into_iter()
        .map(|n| (n.to_string(), t()))
        .collect();
        assert_eq!(blocks(&dict), ["blocks.0", "blocks.10"]);
        let zeroed = without_attention(&dict, |n| n.starts_with("blocks.10."));
        assert_eq!(zeroed["blocks.10.attn.proj.weight"].data, [0.0]);
        assert_eq!(zeroed["blocks.0.attn.proj.weight"].data, [1.0]);
        assert_eq!(zeroed["blocks.2.attn.qkv.weight"].data, [1.0]);
    }

    #[test]
    fn parts_and_kept_fractions() {
        assert_eq!(part("blocks.0.attn.qkv.weight"), Some("attn"));
        assert_eq!(part("blocks.1.attn.proj.weight"), Some("attn"));
        assert_eq!(part("blocks.0.mlp.fc2.weight"), Some("mlp"));
        assert_eq!(part("head.weight"), Some("head"));
        assert_eq!(part("patch_embed.proj.weight"), None);
        assert!(attention_output("blocks.1.attn.proj.bias"));
        assert!(!attention_output("blocks.1.attn.qkv.weight"));
        let t = |kept: usize, n: usize| {
            let mut v = vec![0.0; n];
            v[..kept].iter_mut().for_each(|x| *x = 1.0);
            HostTensor::new(vec![n], v)
        };
        let mask = MaskSet {
            masks: [
                ("blocks.0.attn.qkv.weight".to_string(), t(3, 12)),
                ("blocks.0.attn.proj.weight".to_string(), t(1, 4)),
                ("blocks.0.mlp.fc1.weight".to_string(), t(8, 8)),
                ("head.weight".to_string(), t(0, 4)),
            ]
            .into(),
        };
        let k = kept(&mask);
        assert_eq!(k["kept/attn"], 4.0 / 16.0);
        assert_eq!(k["kept/mlp"], 1.0);
        assert_eq!(k["kept/head"], 0.0);
        assert_eq!(k["kept/blocks.0.attn.qkv"], 0.25);
    }
}
