//! Iterative magnitude pruning with rewinding: the lottery-ticket experiment, with controls.
//!
//! Level 0 trains the dense network. Each later level prunes the previous ticket's trained
//! weights, rewinds the survivors, and trains the ticket and each control under the same
//! hyperparameters and data order. Every finished variant is on disk before the next starts,
//! so a killed run resumes at the level in progress.

pub mod controls;
pub mod level;
mod parallel;
pub mod presets;
pub mod runner;
pub mod seeds;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::data::series::SeriesConfig;
use crate::data::{self, DatasetKind, Splits};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::files::{stable_hash, write_json};
use crate::layout::RunDir;
use crate::masks::MaskSet;
use crate::models::{Architecture, Network, init};
use crate::prune::{self, PruneConfig};
use crate::results::{LevelSummary, Summary, VariantResult, aggregate};
use crate::tensors::{self, StateDict};
use crate::train::{self, Progress, Segment, TrainConfig};
pub use level::{Level, Setup};
pub use runner::{Job, Runner, Trained};

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
    /// With `dataset = "series"`: the series and its windows (the defaults when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<SeriesConfig>,
    pub train: TrainConfig,
    pub prune: PruneConfig,
    /// Pruning levels after the dense one.
    pub levels: usize,
    pub rewind: Rewind,
    /// Controls trained beside the ticket at every level, by registry name
    /// ([`controls::REGISTRY`]).
    #[serde(default)]
    pub controls: Vec<String>,
    #[serde(default = "one")]
    pub replicates: usize,
}

fn one() -> usize {
    1
}

/// Config keys that may change between runs in one directory: where the data lives (it is
/// identified by content in `data.json`) and how many levels to run (more levels extend a run).
const NOT_IDENTITY: &[&str] = &["data_dir", "levels"];

impl ExperimentConfig {
    /// How replicate `r` trains: the configured settings with the data order shifted by `r`, so
    /// that replicates differ in data order as well as in initialisation, as independent runs
    /// do. Replicate 0 trains exactly as configured.
    pub fn replicate_train(&self, r: usize) -> TrainConfig {
        TrainConfig {
            data_seed: self.train.data_seed.wrapping_add(r as u64),
            ..self.train.clone()
        }
    }

    pub fn validate(&self) -> Result<()> {
        Architecture::parse(&self.model)?;
        SeriesConfig::validate_for(self.series.as_ref(), self.dataset)?;
        self.train.validate()?;
        self.prune.validate()?;
        if self.replicates == 0 {
            return Err(Error::config("replicates", "must be at least 1"));
        }
        for c in &self.controls {
            controls::lookup(c)?;
        }
        if let Rewind::Iteration(k) = self.rewind
            && let train::Length::Iterations(n) = self.train.length
            && k >= n
        {
            return Err(Error::config(
                "rewind",
                format!("iteration {k} is not before the end of training ({n})"),
            ));
        }
        Ok(())
    }

    /// A short stable hash of the settings that decide results, for default directory names.
    /// Neither the data's location nor the number of levels is part of it: the same data moved
    /// elsewhere gives the same results, and more levels extend the same run.
    pub fn hash(&self) -> u64 {
        let mut json = serde_json::to_value(self).expect("serialisable");
        if let Some(o) = json.as_object_mut() {
            for k in NOT_IDENTITY {
                o.remove(*k);
            }
        }
        stable_hash(&json.to_string())
    }
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
    pub dir: RunDir,
    pub device: Device,
    /// Trainings to run at once. The ticket and its controls always train side by side;
    /// replicates join them while `jobs` covers whole replicates. Not part of the config:
    /// it changes the wall time, never a result.
    pub jobs: usize,
}

impl Experiment {
    /// Binds `config` to `dir`, refusing a directory that holds a different experiment. Nothing
    /// is written until [`Experiment::run`] has loaded the data.
    pub fn new(config: ExperimentConfig, dir: impl Into<PathBuf>, device: Device) -> Result<Self> {
        config.validate()?;
        let dir = RunDir::new(dir);
        dir.check(&config, NOT_IDENTITY)?;
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

    /// Loads the experiment's data and claims the directory for it (`config.json`, `data.json`).
    pub fn load_data(&self) -> Result<Splits> {
        let data = load_data(&self.config)?;
        self.config.train.validate_for(&data)?;
        // The data first: other data under the same settings must not rewrite config.json.
        self.dir.check(&self.config, NOT_IDENTITY)?;
        self.dir.claim_data(&data.id())?;
        self.dir.claim(&self.config, NOT_IDENTITY)?;
        Ok(data)
    }

    pub fn run(&self, observer: &mut (dyn Observer + Send)) -> Result<Summary> {
        let c = &self.config;
        let data = self.load_data()?;
        let setup = Setup::new(c, &data, &self.device)?;
        let per_replicate = parallel::replicates(
            c.replicates,
            self.replicates_at_once(),
            observer,
            |r, obs| {
                let runner = Runner {
                    setup: &setup,
                    dir: self.dir.replicate(r, c.replicates),
                    replicate: r,
                };
                run_replicate(&runner, obs)
            },
        )?;
        let summary = Summary {
            metric: c.dataset.metric(),
            baseline: data.test.targets.baseline(),
            ..aggregate(&per_replicate)
        };
        write_json(&self.dir.summary(), &summary)?;
        crate::report::plot_dir(
            &self.dir,
            &[(self.dir.root().display().to_string(), summary.clone())],
        )?;
        crate::report::learning_curves(&self.dir, &summary)?;
        Ok(summary)
    }
}

/// The data an experiment's config names, from its directory or the default one.
pub fn load_data(c: &ExperimentConfig) -> Result<Splits> {
    data::load_for(
        c.dataset,
        c.data_dir.as_deref(),
        c.val_size,
        c.series.as_ref(),
    )
}

/// What a report can show of an experiment directory: the summary, finished or not, and what
/// is still to run (empty when `summary.json` is there).
pub struct SoFar {
    pub summary: Summary,
    pub left: Vec<String>,
}

/// Reads an experiment directory back. A finished one is its `summary.json`; an unfinished one
/// (a killed run) is assembled from the variants that completed — the levels whose ticket
/// finished in every replicate, with the variants that finished there — and lists the rest.
pub fn so_far(dir: &RunDir) -> Result<SoFar> {
    if !dir.config().is_file() {
        return Err(Error::format(
            dir.root(),
            "holds no experiment (no config.json; `lottery run --out` makes one)",
        ));
    }
    let c: ExperimentConfig = crate::files::read_json(&dir.config()).map_err(|_| {
        Error::format(
            dir.config(),
            "is not an experiment's config (a `lottery train` folder? its summary.json is the result)",
        )
    })?;
    if dir.summary().is_file() {
        return Ok(SoFar {
            summary: crate::files::read_json(&dir.summary())?,
            left: vec![],
        });
    }
    let names: Vec<String> = std::iter::once("ticket".to_string())
        .chain(c.controls.iter().cloned())
        .collect();
    let reps: Vec<RunDir> = (0..c.replicates)
        .map(|r| dir.replicate(r, c.replicates))
        .collect();
    let mut per_replicate: Vec<Vec<LevelSummary>> = vec![Vec::new(); reps.len()];
    // Parameters of each replicate's network (running statistics excluded), read once, and
    // only for replicates with a finished level (a later one may not have begun).
    let mut params: Vec<Option<usize>> = vec![None; reps.len()];
    let mut left = Vec::new();
    let mut not_started = Vec::new();
    for level in 0..=c.levels {
        let expected: Vec<&String> = names
            .iter()
            .filter(|n| level > 0 || *n == "ticket")
            .collect();
        let done: Vec<&String> = expected
            .iter()
            .copied()
            .filter(|n| reps.iter().all(|r| r.variant(level, n).is_complete()))
            .collect();
        if done.is_empty() {
            not_started.push(level);
            continue;
        }
        if done.len() < expected.len() {
            let missing: Vec<&str> = expected
                .iter()
                .filter(|n| !done.contains(n))
                .map(|n| n.as_str())
                .collect();
            left.push(format!("level {level}: {}", missing.join(", ")));
        }
        if !done.iter().any(|n| *n == "ticket") {
            continue;
        }
        for (r, rd) in reps.iter().enumerate() {
            let total = match params[r] {
                Some(p) => p,
                None => *params[r].insert(parameter_count(rd)?),
            };
            per_replicate[r].push(partial_row(rd, level, &done, total)?);
        }
    }
    match not_started.as_slice() {
        [] => {}
        [one] => left.push(format!("level {one}")),
        [first, .., last] if last - first + 1 == not_started.len() => {
            left.push(format!("levels {first}–{last}"))
        }
        many => {
            let list: Vec<String> = many.iter().map(|l| l.to_string()).collect();
            left.push(format!("levels {}", list.join(", ")))
        }
    }
    let mut summary = if per_replicate[0].is_empty() {
        Summary {
            levels: vec![],
            metric: Default::default(),
            baseline: None,
        }
    } else {
        aggregate(&per_replicate)
    };
    summary.metric = c.dataset.metric();
    Ok(SoFar { summary, left })
}

/// Parameters of a replicate's network, running statistics excluded, from its `init.safetensors`.
fn parameter_count(rd: &RunDir) -> Result<usize> {
    let (init, _) = tensors::load(&rd.init())?;
    Ok(init
        .iter()
        .filter(|(n, _)| !n.contains("running_"))
        .map(|(_, t)| t.len())
        .sum())
}

/// The row of `level` in replicate directory `rd` from the finished `variants`' files.
fn partial_row(
    rd: &RunDir,
    level: usize,
    variants: &[&String],
    total_params: usize,
) -> Result<LevelSummary> {
    let mask = MaskSet::load(&rd.variant(level, "ticket").mask())?;
    let mut results = BTreeMap::new();
    for n in variants {
        let result = crate::files::read_json(&rd.variant(level, n).result())?;
        results.insert(n.to_string(), result);
    }
    Ok(level_row(level, &mask, total_params, results))
}

/// The table row of a level trained under `mask`, in a network of `total_params` parameters.
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
        measures: BTreeMap::new(),
        variants,
    }
}

/// What every level of a replicate shares: which tensors are pruned, the output layer, the
/// parameter count (for the fraction of all parameters kept).
pub struct Targets {
    pub names: Vec<String>,
    pub output: String,
    pub total_params: usize,
}

impl Targets {
    pub fn of(net: &Network, prune: &PruneConfig) -> Self {
        let total_params: usize = net
            .tensors()
            .iter()
            .filter(|t| !t.name.contains("running_"))
            .map(|t| t.shape.iter().product::<usize>())
            .sum();
        let all: Vec<String> = net.tensors().into_iter().map(|t| t.name).collect();
        Targets {
            names: prune.targets(&net.prunable(), &all),
            output: net.output_layer(),
            total_params,
        }
    }

    /// The table row of a level trained under `mask`.
    pub fn row(
        &self,
        level: usize,
        mask: &MaskSet,
        variants: BTreeMap<String, VariantResult>,
    ) -> LevelSummary {
        level_row(level, mask, self.total_params, variants)
    }
}

/// Level 0 (the dense network, and the rewind point), then each pruning level in turn.
fn run_replicate(runner: &Runner, obs: &mut dyn Observer) -> Result<Vec<LevelSummary>> {
    let setup = runner.setup;
    let c = setup.config;
    let seed = c.seed + runner.replicate as u64;
    let train = c.replicate_train(runner.replicate);
    let net0 = setup.fresh(seed)?;
    let targets = Targets::of(&net0, &c.prune);
    let init_dict = net0.state_dict();
    tensors::save(&runner.dir.init(), &init_dict, None)?;

    let dense_mask = MaskSet::ones(&net0.shapes(), &targets.names);
    let dense = runner.run(
        Job {
            level: 0,
            name: "ticket",
            net: net0,
            mask: &dense_mask,
            train: &train,
            segment: Segment {
                start: 0,
                snapshot_at: c.rewind.snapshot_at(),
            },
        },
        obs,
    )?;
    let rewind_point: StateDict = match (c.rewind, dense.snapshot) {
        (Rewind::Iteration(_), Some(s)) => s,
        (Rewind::Iteration(_), None) => tensors::load(&runner.dir.rewind_point())?.0,
        _ => init_dict,
    };
    let mut rows = vec![targets.row(
        0,
        &dense_mask,
        [("ticket".to_string(), dense.result)].into(),
    )];
    obs.level(runner.replicate, &rows[0]);

    let mut mask = dense_mask;
    let mut trained = dense.weights;
    for level in 1..=c.levels {
        mask = next_mask(setup, &trained, &rewind_point, &mask, &targets, seed, level)?;
        let start = c
            .rewind
            .start(&rewind_point, &trained, &train, setup.data.train.len());
        let lvl = Level {
            setup,
            level,
            seed,
            mask: &mask,
            start: &start.weights,
            train: &start.train,
            segment: start.segment,
        };
        let (results, ticket_weights) = train_level(runner, &lvl, obs)?;
        trained = ticket_weights;
        let row = targets.row(level, &mask, results);
        obs.level(runner.replicate, &row);
        rows.push(row);
    }
    Ok(rows)
}

/// The mask of `level`: the previous one pruned by the configured criterion and scope.
fn next_mask(
    setup: &Setup,
    trained: &StateDict,
    rewind_point: &StateDict,
    mask: &MaskSet,
    targets: &Targets,
    seed: u64,
    level: usize,
) -> Result<MaskSet> {
    let c = setup.config;
    let gradients = if c.prune.criterion()?.needs().gradients {
        let net = setup.network(rewind_point)?;
        let mut t = train::Trainer::new(net, setup.data, Some(mask), &c.train, setup.device)?;
        Some(t.gradients()?)
    } else {
        None
    };
    let ctx = prune::Context {
        trained,
        rewind: Some(rewind_point),
        mask,
        gradients: gradients.as_ref(),
        seed: seed ^ (level as u64) << 32,
    };
    prune::prune(&ctx, &c.prune, &targets.output)
}

/// The ticket on the calling thread (with the progress display) and each control on a thread
/// of its own beside it: a LeNet step keeps one core busy.
fn train_level(
    runner: &Runner,
    l: &Level,
    obs: &mut dyn Observer,
) -> Result<(BTreeMap<String, VariantResult>, StateDict)> {
    let mut starts = vec![("ticket", l.setup.network(l.start)?, l.mask.clone())];
    for name in &l.setup.config.controls {
        let control = controls::lookup(name)?;
        let (net, mask) = control.start(l)?;
        starts.push((control.name(), net, mask));
    }
    let (mut names, mut nets, mut masks) = (Vec::new(), Vec::new(), Vec::new());
    for (name, net, mask) in starts {
        names.push(name);
        nets.push(net);
        masks.push(mask);
    }
    let jobs = names
        .iter()
        .zip(nets)
        .zip(&masks)
        .map(|((name, net), mask)| Job {
            level: l.level,
            name,
            net,
            mask,
            train: l.train,
            segment: l.segment,
        })
        .collect();
    let mut done = runner.run_all(jobs, obs)?.into_iter();
    let ticket = done.next().expect("the ticket trained first");
    let mut results = BTreeMap::from([("ticket".to_string(), ticket.result)]);
    for (name, t) in names.iter().skip(1).zip(done) {
        results.insert(name.to_string(), t.result);
    }
    Ok((results, ticket.weights))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicates_differ_in_data_order_and_the_first_trains_as_configured() {
        let mut c = presets::preset("quick").unwrap();
        c.train.data_seed = 7;
        assert_eq!(c.replicate_train(0), c.train);
        let r2 = c.replicate_train(2);
        assert_eq!(r2.data_seed, 9);
        assert_eq!(TrainConfig { data_seed: 7, ..r2 }, c.train);
    }

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
}
