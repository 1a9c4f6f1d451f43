//! Iterative magnitude pruning with rewinding: the lottery-ticket experiment, with controls.
//!
//! Level 0 trains the dense network. Each later level prunes the previous ticket's trained
//! weights, rewinds the survivors, and trains the ticket and each control under the same
//! hyperparameters and data order. Every finished variant is on disk before the next starts,
//! so a killed run resumes at the level in progress.

mod parallel;
pub mod presets;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::{self, DatasetKind, Splits};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::files::{read_json, write_json, write_jsonl};
use crate::masks::MaskSet;
use crate::models::{Architecture, Network, init};
use crate::prune::{self, PruneConfig};
use crate::tensors::{self, StateDict};
use crate::train::{self, Progress, Schedule, TrainConfig};

/// Where the survivors restart after each pruning.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rewind {
    /// To their initial values (the LTH paper).
    Init,
    /// To their values after k iterations of the dense run (late resetting, Frankle et al. 2019).
    Iteration(usize),
    /// Not at all: fine-tune the trained weights at the schedule's final learning rate.
    None,
    /// Keep the trained weights but replay the learning-rate schedule from the start (Renda et al. 2020).
    LearningRate,
}

impl Rewind {
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "init" | "0" => Rewind::Init,
            "none" | "finetune" => Rewind::None,
            "lr" | "learning-rate" => Rewind::LearningRate,
            _ => match s
                .strip_prefix("iter:")
                .or(s.strip_prefix("iteration:"))
                .and_then(|k| k.parse().ok())
            {
                Some(k) => Rewind::Iteration(k),
                None => {
                    return Err(Error::config(
                        "rewind",
                        format!("`{s}` is not one of init, iter:K, none, lr"),
                    ));
                }
            },
        })
    }
}

/// A control trained beside the ticket at every level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Control {
    /// The ticket's mask on a fresh initialisation from another seed.
    Reinit,
    /// A random mask with the ticket's per-layer counts, rewound like the ticket.
    RandomPrune,
}

impl Control {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "reinit" => Ok(Control::Reinit),
            "random_prune" | "random-prune" => Ok(Control::RandomPrune),
            _ => Err(Error::config(
                "controls",
                format!("`{s}` is not one of reinit, random_prune"),
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Control::Reinit => "reinit",
            Control::RandomPrune => "random_prune",
        }
    }
}

/// Every setting that decides an experiment's results. Its JSON is `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    pub model: String,
    pub init: init::InitScheme,
    pub seed: u64,
    pub dataset: DatasetKind,
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    pub val_size: usize,
    pub train: TrainConfig,
    pub prune: PruneConfig,
    /// Pruning levels after the dense one.
    pub levels: usize,
    pub rewind: Rewind,
    #[serde(default)]
    pub controls: Vec<Control>,
    #[serde(default = "one")]
    pub replicates: usize,
}

fn one() -> usize {
    1
}

impl ExperimentConfig {
    pub fn validate(&self) -> Result<()> {
        Architecture::parse(&self.model)?;
        self.train.validate()?;
        self.prune.validate()?;
        if self.replicates == 0 {
            return Err(Error::config("replicates", "must be at least 1"));
        }
        if let Rewind::Iteration(k) = self.rewind
            && let train::Length::Iterations(n) = self.train.length
            && k > n
        {
            return Err(Error::config(
                "rewind",
                format!("iteration {k} is past the end of training ({n})"),
            ));
        }
        Ok(())
    }

    /// A short stable hash of the settings, for default directory names.
    pub fn hash(&self) -> u64 {
        let json = serde_json::to_string(self).expect("serialisable");
        json.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
        })
    }
}

/// One variant's result at one level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantResult {
    pub test_accuracy: f64,
    pub test_loss: f64,
    pub best_val_iteration: Option<usize>,
    pub test_accuracy_at_best_val: Option<f64>,
    /// Spread over replicates (equal to `test_accuracy` with one replicate).
    #[serde(default)]
    pub test_accuracy_min: f64,
    #[serde(default)]
    pub test_accuracy_max: f64,
}

impl VariantResult {
    /// The result of one training: final test accuracy and the early-stopping point.
    pub fn from_outcome(outcome: &train::Outcome) -> Self {
        let last = outcome.last();
        let best = outcome.best_val();
        VariantResult {
            test_accuracy: last.test_accuracy,
            test_loss: last.test_loss,
            best_val_iteration: best.map(|b| b.iteration),
            test_accuracy_at_best_val: best.map(|b| b.test_accuracy),
            test_accuracy_min: last.test_accuracy,
            test_accuracy_max: last.test_accuracy,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelSummary {
    pub level: usize,
    /// Fraction of prunable weights kept.
    pub remaining: f64,
    /// Fraction of all parameters kept (ShrinkBench's second number).
    pub remaining_all: f64,
    #[serde(flatten)]
    pub variants: BTreeMap<String, VariantResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub levels: Vec<LevelSummary>,
}

/// Progress of an experiment, for a terminal or a log.
pub trait Observer: Progress {
    /// A training is about to start.
    fn begin(&mut self, _replicate: usize, _level: usize, _variant: &str) {}
    /// A variant finished or was read back from disk.
    fn finished(&mut self, _replicate: usize, _level: usize, _variant: &str, _resumed: bool) {}
    /// A level of one replicate is complete.
    fn level(&mut self, _replicate: usize, _summary: &LevelSummary) {}
}

impl Observer for train::Silent {}

/// A configured experiment bound to a directory.
pub struct Experiment {
    pub config: ExperimentConfig,
    pub dir: PathBuf,
    pub device: Device,
    /// Trainings to run at once. The ticket and its controls always train side by side;
    /// replicates join them while `jobs` covers whole replicates. Not part of the config:
    /// it changes the wall time, never a result.
    pub jobs: usize,
}

impl Experiment {
    /// Binds `config` to `dir`, refusing a directory that holds a different experiment.
    pub fn new(config: ExperimentConfig, dir: impl Into<PathBuf>, device: Device) -> Result<Self> {
        config.validate()?;
        let dir = dir.into();
        let path = dir.join("config.json");
        if path.exists() {
            let existing: ExperimentConfig = read_json(&path)?;
            if existing != config {
                return Err(Error::config(
                    "out",
                    format!(
                        "{} holds an experiment with different settings; choose another --out or remove it (nothing was overwritten)",
                        dir.display()
                    ),
                ));
            }
        }
        write_json(&path, &config)?;
        Ok(Experiment {
            config,
            dir,
            device,
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
        })
    }

    /// At most `jobs` trainings at once (default: the cores the OS gives us).
    pub fn with_jobs(mut self, jobs: usize) -> Self {
        self.jobs = jobs.max(1);
        self
    }

    /// Replicates that run side by side: as many whole replicates (ticket + controls) as
    /// `jobs` covers, at least one.
    pub fn replicates_at_once(&self) -> usize {
        let per_replicate = 1 + self.config.controls.len();
        (self.jobs / per_replicate).clamp(1, self.config.replicates)
    }

    pub fn run(&self, observer: &mut (dyn Observer + Send)) -> Result<Summary> {
        let c = &self.config;
        let data_dir = c
            .data_dir
            .clone()
            .unwrap_or_else(|| c.dataset.default_dir());
        let data = data::load(c.dataset, &data_dir, c.val_size)?;
        let per_replicate = parallel::replicates(
            c.replicates,
            self.replicates_at_once(),
            observer,
            |r, obs| {
                let dir = if c.replicates > 1 {
                    self.dir.join(format!("replicate_{r}"))
                } else {
                    self.dir.clone()
                };
                self.run_replicate(r, &dir, &data, obs)
            },
        )?;
        let summary = aggregate(&per_replicate);
        write_json(&self.dir.join("summary.json"), &summary)?;
        crate::report::plot_dir(
            &self.dir,
            &[(self.dir.display().to_string(), summary.clone())],
        )?;
        crate::report::learning_curves(&self.dir, &summary)?;
        Ok(summary)
    }

    fn run_replicate(
        &self,
        r: usize,
        dir: &Path,
        data: &Splits,
        obs: &mut dyn Observer,
    ) -> Result<Vec<LevelSummary>> {
        let c = &self.config;
        let seed = c.seed + r as u64;
        let arch = Architecture::parse(&c.model)?;
        let fresh = |seed: u64| -> Result<Network> {
            Ok(init::initialise(
                arch.build(data.train.shape, data.train.classes, &self.device)?,
                c.init,
                seed,
            ))
        };
        let net0 = fresh(seed)?;
        let total_params: usize = net0
            .tensors()
            .iter()
            .filter(|t| !t.name.contains("running_"))
            .map(|t| t.shape.iter().product::<usize>())
            .sum();
        let all: Vec<String> = net0.tensors().into_iter().map(|t| t.name).collect();
        let targets = c.prune.targets(&net0.prunable(), &all);
        let output = net0.output_layer();
        let init_dict = net0.state_dict();
        tensors::save(&dir.join("init.safetensors"), &init_dict, None)?;

        // Level 0: the dense network, and the rewinding point.
        let dense_mask = MaskSet::ones(&net0, &targets);
        let snapshot_at = match c.rewind {
            Rewind::Iteration(k) => Some(k),
            _ => None,
        };
        let (dense, dense_weights, snapshot) = self.variant(
            dir,
            0,
            "ticket",
            r,
            net0,
            &dense_mask,
            &c.train,
            data,
            snapshot_at,
            obs,
        )?;
        let rewind_point: StateDict = match c.rewind {
            Rewind::Iteration(_) => {
                let p = dir.join("rewind.safetensors");
                match snapshot {
                    Some(s) => {
                        tensors::save(&p, &s, None)?;
                        s
                    }
                    None => tensors::load(&p)?.0,
                }
            }
            _ => init_dict.clone(),
        };
        let mut rows = vec![level_row(
            0,
            &dense_mask,
            total_params,
            [("ticket".to_string(), dense)].into(),
        )];
        obs.level(r, &rows[0]);

        let mut mask = dense_mask;
        let mut trained = dense_weights;
        for level in 1..=c.levels {
            mask = prune::prune(
                &trained,
                &mask,
                &c.prune,
                &output,
                seed ^ (level as u64) << 32,
            );
            let (start, cfg) = match c.rewind {
                Rewind::Init | Rewind::Iteration(_) => (rewind_point.clone(), c.train.clone()),
                Rewind::LearningRate => (trained.clone(), c.train.clone()),
                Rewind::None => (trained.clone(), finetune(&c.train, data.train.len())),
            };
            let mut results = BTreeMap::new();
            let net = fresh(seed)?
                .load_state_dict(&start)
                .map_err(|m| Error::config("rewind", m))?;
            // The controls' networks and masks, built here; each trains on its own thread
            // beside the ticket (a LeNet step keeps one core busy), without a progress display.
            let mut jobs = Vec::new();
            for control in &c.controls {
                let (net, m) = match control {
                    // Another seed's initialisation, far from the replicate seeds.
                    Control::Reinit => (
                        fresh(seed.wrapping_add(1_000_003 * level as u64))?,
                        mask.clone(),
                    ),
                    Control::RandomPrune => (
                        fresh(seed)?
                            .load_state_dict(&start)
                            .map_err(|m| Error::config("rewind", m))?,
                        prune::random_like(&mask, seed ^ 0xa11 ^ (level as u64) << 20),
                    ),
                };
                let resumed = dir
                    .join(format!("level_{level}"))
                    .join(control.name())
                    .join("result.json")
                    .exists();
                jobs.push((control.name(), net, m, resumed));
            }
            let (ticket_weights, controls) = std::thread::scope(|s| {
                let handles: Vec<_> = jobs
                    .into_iter()
                    .map(|(name, net, m, resumed)| {
                        let cfg = &cfg;
                        let job = move || {
                            self.variant(
                                dir,
                                level,
                                name,
                                r,
                                net,
                                &m,
                                cfg,
                                data,
                                None,
                                &mut train::Silent,
                            )
                        };
                        (name, resumed, s.spawn(job))
                    })
                    .collect();
                let ticket =
                    self.variant(dir, level, "ticket", r, net, &mask, &cfg, data, None, obs);
                let controls: Vec<_> = handles
                    .into_iter()
                    .map(|(name, resumed, h)| {
                        let done = h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
                        (name, resumed, done)
                    })
                    .collect();
                ticket.map(|(result, weights, _)| {
                    results.insert("ticket".to_string(), result);
                    (weights, controls)
                })
            })?;
            for (name, resumed, done) in controls {
                let (res, _, _) = done?;
                obs.finished(r, level, name, resumed);
                results.insert(name.to_string(), res);
            }
            trained = ticket_weights;
            let row = level_row(level, &mask, total_params, results);
            obs.level(r, &row);
            rows.push(row);
        }
        Ok(rows)
    }

    /// Trains one variant, or reads it back if a previous run finished it.
    #[allow(clippy::too_many_arguments)]
    fn variant(
        &self,
        dir: &Path,
        level: usize,
        name: &str,
        replicate: usize,
        net: Network,
        mask: &MaskSet,
        cfg: &TrainConfig,
        data: &Splits,
        snapshot_at: Option<usize>,
        obs: &mut dyn Observer,
    ) -> Result<(VariantResult, StateDict, Option<StateDict>)> {
        let vdir = dir.join(format!("level_{level}")).join(name);
        let result_path = vdir.join("result.json");
        let rewind_ready = snapshot_at.is_none() || dir.join("rewind.safetensors").exists();
        if result_path.exists() && rewind_ready {
            let result: VariantResult = read_json(&result_path)?;
            let (weights, _) = tensors::load(&vdir.join("weights.safetensors"))?;
            obs.finished(replicate, level, name, true);
            return Ok((result, weights, None));
        }
        obs.begin(replicate, level, name);
        let outcome = train::train(net, data, Some(mask), cfg, &self.device, snapshot_at, obs)?;
        let weights = outcome.network.state_dict();
        mask.save(&vdir.join("mask.safetensors"))?;
        tensors::save(&vdir.join("weights.safetensors"), &weights, None)?;
        write_jsonl(&vdir.join("metrics.jsonl"), &outcome.records)?;
        let result = VariantResult::from_outcome(&outcome);
        if let Some(s) = &outcome.snapshot {
            tensors::save(&dir.join("rewind.safetensors"), s, None)?;
        }
        // Written last: its presence means the variant is complete.
        write_json(&result_path, &result)?;
        obs.finished(replicate, level, name, false);
        Ok((result, weights, outcome.snapshot))
    }
}

/// Fine-tuning after pruning: the schedule's final learning rate, held constant.
fn finetune(cfg: &TrainConfig, train_len: usize) -> TrainConfig {
    let last = cfg.iterations(train_len).saturating_sub(1);
    TrainConfig {
        lr: cfg.schedule.lr(cfg.lr, last),
        schedule: Schedule::constant(),
        ..cfg.clone()
    }
}

fn level_row(
    level: usize,
    mask: &MaskSet,
    total_params: usize,
    variants: BTreeMap<String, VariantResult>,
) -> LevelSummary {
    let pruned = mask.total() - mask.kept();
    LevelSummary {
        level,
        remaining: mask.density(),
        remaining_all: (total_params - pruned) as f64 / total_params.max(1) as f64,
        variants,
    }
}

/// Means over replicates, with min and max of the test accuracy.
fn aggregate(reps: &[Vec<LevelSummary>]) -> Summary {
    let levels = (0..reps[0].len())
        .map(|l| {
            let rows: Vec<&LevelSummary> = reps.iter().map(|r| &r[l]).collect();
            let n = rows.len() as f64;
            let mut variants = BTreeMap::new();
            for name in rows[0].variants.keys() {
                let vs: Vec<&VariantResult> = rows.iter().map(|r| &r.variants[name]).collect();
                let mean =
                    |f: &dyn Fn(&VariantResult) -> f64| vs.iter().map(|v| f(v)).sum::<f64>() / n;
                let opt_mean = |f: &dyn Fn(&VariantResult) -> Option<f64>| {
                    vs.iter()
                        .map(|v| f(v))
                        .collect::<Option<Vec<f64>>>()
                        .map(|xs| xs.iter().sum::<f64>() / n)
                };
                variants.insert(
                    name.clone(),
                    VariantResult {
                        test_accuracy: mean(&|v| v.test_accuracy),
                        test_loss: mean(&|v| v.test_loss),
                        best_val_iteration: opt_mean(&|v| v.best_val_iteration.map(|i| i as f64))
                            .map(|x| x.round() as usize),
                        test_accuracy_at_best_val: opt_mean(&|v| v.test_accuracy_at_best_val),
                        test_accuracy_min: vs
                            .iter()
                            .map(|v| v.test_accuracy)
                            .fold(f64::INFINITY, f64::min),
                        test_accuracy_max: vs
                            .iter()
                            .map(|v| v.test_accuracy)
                            .fold(f64::NEG_INFINITY, f64::max),
                    },
                );
            }
            LevelSummary {
                level: rows[0].level,
                remaining: rows[0].remaining,
                remaining_all: rows[0].remaining_all,
                variants,
            }
        })
        .collect();
    Summary { levels }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewind_names() {
        assert_eq!(Rewind::parse("init").unwrap(), Rewind::Init);
        assert_eq!(Rewind::parse("iter:500").unwrap(), Rewind::Iteration(500));
        assert_eq!(Rewind::parse("lr").unwrap(), Rewind::LearningRate);
        assert!(
            Rewind::parse("iter:x")
                .unwrap_err()
                .to_string()
                .contains("rewind")
        );
    }

    #[test]
    fn aggregate_means_and_spreads() {
        let row = |acc: f64| LevelSummary {
            level: 1,
            remaining: 0.8,
            remaining_all: 0.81,
            variants: [(
                "ticket".to_string(),
                VariantResult {
                    test_accuracy: acc,
                    test_loss: 0.1,
                    best_val_iteration: Some(100),
                    test_accuracy_at_best_val: Some(acc),
                    test_accuracy_min: acc,
                    test_accuracy_max: acc,
                },
            )]
            .into(),
        };
        let s = aggregate(&[vec![row(0.9)], vec![row(0.95)]]);
        let t = &s.levels[0].variants["ticket"];
        assert!((t.test_accuracy - 0.925).abs() < 1e-12);
        assert_eq!((t.test_accuracy_min, t.test_accuracy_max), (0.9, 0.95));
    }
}
