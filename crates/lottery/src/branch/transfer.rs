//! `transfer`: do tickets found on one dataset train well on another? (Morcos et al. 2019, "One
//! ticket to win them all"). Each level's ticket — its mask and its starting weights — trains
//! on other data of the same shape, with the experiment's training settings, beside controls
//! (`reinit`, `random_prune`) trained on that data. In the branch's table `ticket` is the
//! transferred ticket; the experiment's own numbers stay in its own summary.
//!
//! A dataset whose examples or classes do not fit the model is refused, naming the tensor that
//! differs; `--new-head` re-initialises the output layer instead (weights and bias, from the
//! experiment's init scheme and the replicate's seed, and kept dense), for data with other
//! classes.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Branch, LevelContext, Training};
use crate::data::DatasetKind;
use crate::error::{Error, Result};
use crate::experiment::{ExperimentConfig, Level, Setup, controls};
use crate::results::VariantResult;
use crate::tensors::{HostTensor, StateDict};

pub struct Transfer;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferConfig {
    /// The dataset format to train on (`mnist-format` reads Fashion-MNIST and other IDX data).
    pub dataset: String,
    /// Its directory.
    pub data_dir: Option<PathBuf>,
    /// Re-initialise the output layer (dense) for data with other classes.
    pub new_head: bool,
    /// Controls trained on the new data beside the ticket.
    pub controls: Vec<String>,
}

impl Default for TransferConfig {
    fn default() -> Self {
        TransferConfig {
            dataset: DatasetKind::MNIST_FORMAT.name().into(),
            data_dir: None,
            new_head: false,
            controls: vec!["reinit".into(), "random_prune".into()],
        }
    }
}

impl Branch for Transfer {
    type Config = TransferConfig;

    fn name(&self) -> &'static str {
        "transfer"
    }
    fn about(&self) -> &'static str {
        "each level's ticket trained on another dataset, beside controls trained there (Morcos et al.)"
    }
    fn trains_on(&self, cfg: &TransferConfig, exp: &ExperimentConfig) -> Result<ExperimentConfig> {
        let Some(dir) = &cfg.data_dir else {
            return Err(Error::config(
                "data-dir",
                "transfer needs --data-dir: the directory of the data to train the tickets on",
            ));
        };
        Ok(ExperimentConfig {
            dataset: DatasetKind::parse(&cfg.dataset)?,
            data_dir: Some(dir.clone()),
            ..exp.clone()
        })
    }
    fn validate(&self, cfg: &TransferConfig, setup: &Setup, init: &StateDict) -> Result<()> {
        for c in &cfg.controls {
            controls::lookup(c)?;
        }
        let net = setup.fresh(0)?;
        let fresh = net.state_dict();
        let head = head(&net.output_layer());
        let differing: Vec<&String> = init
            .iter()
            .filter(|(n, t)| fresh.get(*n).is_none_or(|f| f.shape != t.shape))
            .map(|(n, _)| n)
            .collect();
        let Some(first) = differing.first() else {
            return Ok(());
        };
        let only_head = differing.iter().all(|n| head.contains(n));
        if cfg.new_head && only_head {
            return Ok(());
        }
        let train = &setup.data.train;
        let shape =
            |d: Option<&HostTensor>| d.map_or("absent".into(), |t| format!("{:?}", t.shape));
        Err(Error::config(
            "dataset",
            format!(
                "{} holds {}×{}×{} examples in {} classes, which `{}` does not fit (`{first}` is {} in the experiment, {} here){}",
                setup
                    .config
                    .data_dir
                    .as_deref()
                    .unwrap_or("?".as_ref())
                    .display(),
                train.shape[0],
                train.shape[1],
                train.shape[2],
                train.outputs(),
                setup.config.model,
                shape(init.get(*first)),
                shape(fresh.get(*first)),
                if only_head {
                    "; --new-head re-initialises the output layer for these classes"
                } else {
                    ""
                }
            ),
        ))
    }
    fn level(
        &self,
        cfg: &TransferConfig,
        ctx: &mut LevelContext,
    ) -> Result<BTreeMap<String, VariantResult>> {
        let setup = ctx.level.setup;
        let (mut start, mut mask) = (ctx.level.start.clone(), ctx.level.mask.clone());
        if cfg.new_head {
            let net = setup.fresh(ctx.level.seed)?;
            let output = net.output_layer();
            let fresh = net.state_dict();
            for name in head(&output) {
                if let Some(t) = fresh.get(&name) {
                    start.insert(name, t.clone());
                }
            }
            let shape = fresh[&output].shape.clone();
            let n = shape.iter().product();
            mask.masks
                .insert(output, HostTensor::new(shape, vec![1.0; n]));
        }
        let level = Level {
            setup,
            level: ctx.level.level,
            seed: ctx.level.seed,
            mask: &mask,
            start: &start,
            train: ctx.level.train,
            segment: ctx.level.segment,
        };
        let mut trainings = vec![Training::new(
            "ticket",
            setup.network(&start)?,
            mask.clone(),
        )];
        for name in &cfg.controls {
            let control = controls::lookup(name)?;
            let (net, m) = control.start(&level)?;
            trainings.push(Training::new(control.name(), net, m));
        }
        let done = ctx.train_all(trainings)?;
        Ok(done.into_iter().map(|(n, r, _)| (n, r)).collect())
    }
}

/// The output layer's weight and bias names.
fn head(output: &str) -> [String; 2] {
    let stem = output.strip_suffix(".weight").unwrap_or(output);
    [output.to_string(), format!("{stem}.bias")]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_is_the_output_weight_and_its_bias() {
        assert_eq!(head("fc3.weight"), ["fc3.weight", "fc3.bias"]);
    }

    #[test]
    fn transfer_needs_a_directory_and_a_known_format() {
        let exp = crate::experiment::presets::preset("quick").unwrap();
        let err = Transfer
            .trains_on(&TransferConfig::default(), &exp)
            .unwrap_err();
        assert!(err.to_string().contains("--data-dir"), "{err}");
        let cfg = TransferConfig {
            dataset: "imagenet".into(),
            data_dir: Some("x".into()),
            ..TransferConfig::default()
        };
        assert!(Transfer.trains_on(&cfg, &exp).is_err());
        let cfg = TransferConfig {
            data_dir: Some("fashion".into()),
            ..TransferConfig::default()
        };
        let t = Transfer.trains_on(&cfg, &exp).unwrap();
        assert_eq!(t.dataset, DatasetKind::MNIST_FORMAT);
        assert_eq!(t.train, exp.train, "trains as the experiment trained");
    }
}
