//! Branches: studies that run on a finished experiment's levels without touching it.
//!
//! A branch reads each chosen level's ticket (mask, starting weights, trained weights), runs its
//! own trainings or evaluations, and writes `DIR/branches/<name>-<hash>/` — its own
//! `config.json`, per-level variant directories, and a `summary.json` of the experiment's shape
//! (the experiment's ticket beside the branch's variants). Settings are a typed config; the
//! hash of the config names the directory, so a rerun resumes and other settings get their own.
//! Each branch is one file and one line of [`REGISTRY`]; every control
//! ([`crate::experiment::controls`]) is a branch too.

pub mod attention;
pub mod control;
pub mod signs;
pub mod stability;
pub mod supermask;
pub mod transfer;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::device::Device;
use crate::error::{Error, Result};
use crate::experiment::{
    ExperimentConfig, Job, Level, Observer, Runner, Setup, Targets, controls, level::Start,
    load_data,
};
use crate::files::{read_json, stable_hash, write_json};
use crate::layout::{DataId, RunDir};
use crate::masks::MaskSet;
use crate::models::Network;
use crate::results::{LevelSummary, Summary, VariantResult, aggregate};
use crate::tensors::{self, StateDict};
use crate::train::{Segment, TrainConfig};

/// A study of an experiment's levels, with typed settings.
pub trait Branch: Sync {
    /// Its settings; `Default` gives every default once, serde gives `config.json` and flags.
    type Config: Serialize + DeserializeOwned + Default + Sync;
    /// The registry name (`lottery branch NAME`).
    fn name(&self) -> &'static str;
    fn about(&self) -> &'static str;
    /// The settings the branch trains and evaluates under: the experiment's own, or (for
    /// `transfer`) the experiment's on other data.
    fn trains_on(&self, _cfg: &Self::Config, exp: &ExperimentConfig) -> Result<ExperimentConfig> {
        Ok(exp.clone())
    }
    /// Refuses settings that cannot work with this experiment, before anything is written:
    /// `setup` is what the branch trains with, `init` the experiment's initial weights.
    fn validate(&self, _cfg: &Self::Config, _setup: &Setup, _init: &StateDict) -> Result<()> {
        Ok(())
    }
    /// Plots beyond the accuracy and early-stopping ones, into `out.plots()`.
    fn plots(&self, _cfg: &Self::Config, _out: &RunDir, _summary: &Summary) -> Result<()> {
        Ok(())
    }
    /// The branch's variants at one level. Trainings go through [`LevelContext::train`], which
    /// resumes finished ones.
    fn level(
        &self,
        cfg: &Self::Config,
        ctx: &mut LevelContext,
    ) -> Result<BTreeMap<String, VariantResult>>;
}

/// One level of one replicate, as a branch sees it.
pub struct LevelContext<'a, 'o> {
    /// The ticket's mask, starting weights and training at this level.
    pub level: Level<'a>,
    /// The ticket's weights after training at this level.
    pub trained: &'a StateDict,
    /// The experiment's replicate directory, for what earlier levels left.
    source: &'a RunDir,
    runner: &'a Runner<'a>,
    obs: &'o mut dyn Observer,
    measures: BTreeMap<String, f64>,
}

impl LevelContext<'_, '_> {
    /// Trains `net` under `mask` as the ticket trains at this level, into the branch's
    /// `level_<L>/<name>/`, or reads it back if finished.
    pub fn train(&mut self, name: &str, net: Network, mask: &MaskSet) -> Result<VariantResult> {
        let t = Training::new(name, net, mask.clone());
        let mut done = self.train_all(vec![t])?;
        Ok(done.remove(0).1)
    }

    /// Trains each of `trainings` as [`LevelContext::train`] does, side by side (one thread
    /// each): `(name, result, trained weights)` in the order given.
    pub fn train_all(
        &mut self,
        trainings: Vec<Training>,
    ) -> Result<Vec<(String, VariantResult, StateDict)>> {
        let configs: Vec<TrainConfig> = trainings
            .iter()
            .map(|t| TrainConfig {
                data_seed: t.data_seed.unwrap_or(self.level.train.data_seed),
                ..self.level.train.clone()
            })
            .collect();
        let (mut names, mut nets, mut masks) = (Vec::new(), Vec::new(), Vec::new());
        for t in trainings {
            names.push(t.name);
            nets.push(t.net);
            masks.push(t.mask);
        }
        let jobs = names
            .iter()
            .zip(nets)
            .zip(masks.iter().zip(&configs))
            .map(|((name, net), (mask, train))| Job {
                level: self.level.level,
                name,
                net,
                mask,
                train,
                segment: self.level.segment,
            })
            .collect();
        let done = self.runner.run_all(jobs, self.obs)?;
        Ok(names
            .into_iter()
            .zip(done)
            .map(|(n, t)| (n, t.result, t.weights))
            .collect())
    }

    /// Records a number measured at this level (see [`LevelSummary::measures`]).
    pub fn measure(&mut self, name: impl Into<String>, value: f64) {
        self.measures.insert(name.into(), value);
    }

    /// The branch's directory for this level and replicate, for files of its own.
    pub fn dir(&self) -> PathBuf {
        self.runner.dir.level(self.level.level)
    }

    /// The weights of the experiment's dense training (the ticket at level 0).
    pub fn dense_trained(&self) -> Result<StateDict> {
        if self.level.level == 0 {
            return Ok(self.trained.clone());
        }
        Ok(tensors::load(&self.source.variant(0, "ticket").weights())?.0)
    }
}

/// One training a branch asks for at a level.
pub struct Training {
    /// Its variant name (and directory).
    pub name: String,
    pub net: Network,
    pub mask: MaskSet,
    /// Another data order than the ticket's (`stability`'s copies); `None`: the ticket's.
    pub data_seed: Option<u64>,
}

impl Training {
    pub fn new(name: impl Into<String>, net: Network, mask: MaskSet) -> Self {
        Training {
            name: name.into(),
            net,
            mask,
            data_seed: None,
        }
    }
}

/// How to run a branch: which levels, where, on which data.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Levels to run (default: every level the experiment finished).
    pub levels: Option<Vec<usize>>,
    pub device: Device,
    /// Where the experiment's data lives now, if it moved.
    pub data_dir: Option<PathBuf>,
}

/// A branch as the registry holds it: settings as JSON, for any branch.
pub trait AnyBranch: Sync {
    fn name(&self) -> &'static str;
    fn about(&self) -> &'static str;
    /// The default settings (the typed config's `Default`, as JSON).
    fn defaults(&self) -> serde_json::Value;
    /// The directory `settings` would write to, or an error if they do not parse.
    fn dir(&self, experiment: &RunDir, settings: &serde_json::Value) -> Result<RunDir>;
    fn run(
        &self,
        experiment: &RunDir,
        settings: serde_json::Value,
        opts: &RunOptions,
        obs: &mut dyn Observer,
    ) -> Result<Summary>;
}

/// The test result of `weights` evaluated as they are (nothing trains): what branches that
/// only evaluate report per variant.
pub fn evaluate(setup: &Setup, weights: &StateDict) -> Result<VariantResult> {
    let net = setup.network(weights)?;
    let test = &setup.data.test;
    let outputs = crate::train::eval::outputs_valid(&net, test);
    let (loss, metric) = crate::train::eval::score(&outputs, test);
    Ok(VariantResult {
        test_accuracy: metric,
        test_loss: loss,
        best_val_iteration: None,
        test_accuracy_at_best_val: None,
        test_accuracy_min: metric,
        test_accuracy_max: metric,
        test_mae: test.targets.mae(&outputs),
    })
}

/// Every branch by name, beyond the controls. A new one: a file here and a line in this list.
pub static REGISTRY: &[&dyn AnyBranch] = &[
    &signs::Signs,
    &supermask::Supermask,
    &stability::Stability,
    &transfer::Transfer,
    &attention::Attention,
];

/// The registry's branches, then one per control.
pub fn all() -> Vec<&'static dyn AnyBranch> {
    static CONTROLS: OnceLock<Vec<control::ControlBranch>> = OnceLock::new();
    let controls = CONTROLS.get_or_init(|| {
        controls::REGISTRY
            .iter()
            .map(|c| control::ControlBranch(*c))
            .collect()
    });
    REGISTRY
        .iter()
        .copied()
        .chain(controls.iter().map(|c| c as &dyn AnyBranch))
        .collect()
}

pub fn lookup(name: &str) -> Result<&'static dyn AnyBranch> {
    crate::registry::find(&all(), name, "branch", |b| b.name())
}

fn typed<C: DeserializeOwned>(name: &str, settings: &serde_json::Value) -> Result<C> {
    serde_json::from_value(settings.clone())
        .map_err(|e| Error::config(name, format!("settings do not fit: {e}")))
}

impl<B: Branch> AnyBranch for B {
    fn name(&self) -> &'static str {
        Branch::name(self)
    }
    fn about(&self) -> &'static str {
        Branch::about(self)
    }
    fn defaults(&self) -> serde_json::Value {
        serde_json::to_value(B::Config::default()).expect("configs serialise")
    }
    fn dir(&self, experiment: &RunDir, settings: &serde_json::Value) -> Result<RunDir> {
        let cfg: B::Config = typed(Branch::name(self), settings)?;
        let json = serde_json::to_string(&cfg).expect("configs serialise");
        Ok(experiment.branch(Branch::name(self), stable_hash(&json)))
    }
    fn run(
        &self,
        experiment: &RunDir,
        settings: serde_json::Value,
        opts: &RunOptions,
        obs: &mut dyn Observer,
    ) -> Result<Summary> {
        let cfg: B::Config = typed(Branch::name(self), &settings)?;
        let out = self.dir(experiment, &settings)?;
        let mut source: ExperimentConfig = read_json(&experiment.config())?;
        if opts.data_dir.is_some() {
            source.data_dir = opts.data_dir.clone();
        }
        let exp = self.trains_on(&cfg, &source)?;
        // The levels asked for, and those an earlier run of this branch began: the summary
        // covers everything the branch has, not only this run's levels.
        let mut levels = levels(experiment, &exp, opts.levels.as_deref())?;
        let earlier = out.first_replicate().levels_started();
        levels.extend(
            earlier
                .into_iter()
                .filter(|&l| ticket_finished(experiment, &exp, l)),
        );
        levels.sort_unstable();
        levels.dedup();
        let data = load_data(&exp)?;
        // The experiment's data must be the data it ran on; a branch that trains on other
        // data (`transfer`) is checked by its own `validate`.
        let own_data = exp.dataset == source.dataset && exp.data_dir == source.data_dir;
        if own_data && experiment.data_id().is_file() {
            let recorded: DataId = read_json(&experiment.data_id())?;
            if recorded != data.id() {
                return Err(Error::config(
                    "data-dir",
                    format!(
                        "{} was computed on other data than {} holds now; give --data-dir",
                        experiment.root().display(),
                        recorded.name
                    ),
                ));
            }
        }
        let setup = Setup::new(&exp, &data, &opts.device)?;
        let (init, _) = tensors::load(&experiment.first_replicate().init())?;
        self.validate(&cfg, &setup, &init)?;
        out.claim(&cfg, &[])?;
        let mut per_replicate = Vec::new();
        for r in 0..exp.replicates {
            let runner = Runner {
                setup: &setup,
                dir: out.replicate(r, exp.replicates),
                replicate: r,
            };
            let source = experiment.replicate(r, exp.replicates);
            let mut rows = Vec::new();
            for &l in &levels {
                let row = run_level(self, &cfg, &runner, &source, l, obs)?;
                obs.level(r, &row);
                rows.push(row);
            }
            per_replicate.push(rows);
        }
        let summary = Summary {
            metric: exp.dataset.metric(),
            baseline: data.test.targets.baseline(),
            ..aggregate(&per_replicate)
        };
        write_json(&out.summary(), &summary)?;
        crate::report::plot_dir(&out, &[(Branch::name(self).to_string(), summary.clone())])?;
        self.plots(&cfg, &out, &summary)?;
        Ok(summary)
    }
}

/// The levels to run: those asked for (each must have finished), or every finished one.
fn levels(dir: &RunDir, exp: &ExperimentConfig, asked: Option<&[usize]>) -> Result<Vec<usize>> {
    let first = dir.first_replicate();
    let finished = |l: usize| ticket_finished(dir, exp, l);
    match asked {
        Some(ls) => {
            for &l in ls {
                if !finished(l) {
                    return Err(Error::config(
                        "levels",
                        format!(
                            "level {l} of {} has not finished (levels run 0..={})",
                            dir.root().display(),
                            exp.levels
                        ),
                    ));
                }
            }
            Ok(ls.to_vec())
        }
        None => {
            let ls: Vec<usize> = first
                .levels_started()
                .into_iter()
                .filter(|&l| finished(l))
                .collect();
            if ls.is_empty() {
                return Err(Error::config(
                    "levels",
                    format!("{} has no finished level yet", dir.root().display()),
                ));
            }
            Ok(ls)
        }
    }
}

/// Whether the experiment's ticket finished `level` in every replicate.
fn ticket_finished(dir: &RunDir, exp: &ExperimentConfig, level: usize) -> bool {
    (0..exp.replicates).all(|r| {
        dir.replicate(r, exp.replicates)
            .variant(level, "ticket")
            .is_complete()
    })
}

/// Reads one level of the experiment back and runs `branch` on it.
fn run_level<B: Branch>(
    branch: &B,
    cfg: &B::Config,
    runner: &Runner,
    source: &RunDir,
    level: usize,
    obs: &mut dyn Observer,
) -> Result<LevelSummary> {
    let setup = runner.setup;
    let exp = setup.config;
    let ticket = source.variant(level, "ticket");
    let mask = MaskSet::load(&ticket.mask())?;
    let (trained, _) = tensors::load(&ticket.weights())?;
    let ticket_result: VariantResult = read_json(&ticket.result())?;
    let train = exp.replicate_train(runner.replicate);
    let start = level_start(source, exp, &train, level, setup.data.train.len())?;
    let lvl = Level {
        setup,
        level,
        seed: exp.seed + runner.replicate as u64,
        mask: &mask,
        start: &start.weights,
        train: &start.train,
        segment: start.segment,
    };
    let mut ctx = LevelContext {
        level: lvl,
        trained: &trained,
        source,
        runner,
        obs,
        measures: BTreeMap::new(),
    };
    let mut variants = branch.level(cfg, &mut ctx)?;
    let measures = std::mem::take(&mut ctx.measures);
    // A branch that trains a ticket of its own (`transfer`) shows it in the ticket's place.
    variants.entry("ticket".into()).or_insert(ticket_result);
    let targets = Targets::of(&setup.fresh(0)?, &exp.prune);
    Ok(LevelSummary {
        measures,
        ..targets.row(level, &mask, variants)
    })
}

/// Where the experiment's ticket started at `level` (trained as `train` says: the replicate's
/// settings), read from its files.
fn level_start(
    source: &RunDir,
    exp: &ExperimentConfig,
    train: &TrainConfig,
    level: usize,
    train_len: usize,
) -> Result<Start> {
    let (init, _) = tensors::load(&source.init())?;
    if level == 0 {
        return Ok(Start {
            weights: init,
            train: train.clone(),
            segment: Segment::default(),
        });
    }
    let rewind_point = match exp.rewind.snapshot_at() {
        Some(_) => tensors::load(&source.rewind_point())?.0,
        None => init,
    };
    let (previous, _) = tensors::load(&source.variant(level - 1, "ticket").weights())?;
    Ok(exp.rewind.start(&rewind_point, &previous, train, train_len))
}
