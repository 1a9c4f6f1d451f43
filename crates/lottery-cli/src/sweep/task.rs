//! One point of a sweep, run to the end: its experiment, then each of the sweep's branches on
//! it — resumed from whatever its directory holds — with what the task is doing written to
//! `tasks/<index>.json` for `--status`. Both the local pool and a Slurm array task come here.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use lottery::branch::{self, RunOptions};
use lottery::device::Device;
use lottery::experiment::{Experiment, Observer};
use lottery::files::{read_json, write_json};
use lottery::layout::{RunDir, SweepDir};
use serde::{Deserialize, Serialize};

use super::plan::{Plan, Point};

/// What a task last said about its point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Running,
    Done,
    /// Stopped on request (SIGTERM): a rerun or a requeue resumes it.
    Stopped,
    Failed,
}

/// `tasks/<index>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskState {
    pub state: State,
    pub host: String,
    pub pid: u32,
    /// Seconds since the Unix epoch when the state was written.
    pub at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `SLURM_JOB_ID` of the array task, when Slurm ran it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_job: Option<String>,
}

impl TaskState {
    fn now(state: State, error: Option<String>) -> Self {
        TaskState {
            state,
            host: host(),
            pid: std::process::id(),
            at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            error,
            slurm_job: std::env::var("SLURM_JOB_ID").ok(),
        }
    }

    pub fn read(sweep: &SweepDir, index: usize) -> Option<TaskState> {
        read_json(&sweep.task_state(index)).ok()
    }
}

/// This machine's name (where a running task can be looked for).
pub fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::env::var("HOSTNAME"))
        .map_or_else(|_| "unknown".into(), |h| h.trim().to_string())
}

/// Where a point runs and with how many trainings at once.
pub struct Options {
    pub device: Device,
    pub jobs: usize,
}

/// Whether point `p` and every branch of the plan on it have their summaries.
pub fn is_done(sweep: &SweepDir, plan: &Plan, p: &Point) -> bool {
    let exp = sweep.point(&p.dir);
    exp.summary().is_file()
        && plan.branches.iter().all(|(name, settings)| {
            branch_dir(&exp, name, settings).is_ok_and(|d| d.summary().is_file())
        })
}

fn branch_dir(exp: &RunDir, name: &str, settings: &serde_json::Value) -> Result<RunDir> {
    Ok(branch::lookup(name)?.dir(exp, settings)?)
}

/// Runs point `index` to the end, recording its state; a finished point returns at once.
pub fn run_point(
    sweep: &SweepDir,
    plan: &Plan,
    index: usize,
    opts: &Options,
    obs: &mut (dyn Observer + Send),
) -> Result<()> {
    let p = plan.point(index)?;
    if is_done(sweep, plan, p) {
        return Ok(());
    }
    let write = |s: TaskState| write_json(&sweep.task_state(index), &s);
    write(TaskState::now(State::Running, None))?;
    let result = run_unrecorded(sweep, plan, p, opts, obs)
        .with_context(|| format!("point {index} ({})", p.label()));
    let state = match &result {
        Ok(()) => TaskState::now(State::Done, None),
        Err(_) if lottery::stop::requested() => TaskState::now(State::Stopped, None),
        Err(e) => TaskState::now(State::Failed, Some(format!("{e:#}"))),
    };
    write(state)?;
    result
}

fn run_unrecorded(
    sweep: &SweepDir,
    plan: &Plan,
    p: &Point,
    opts: &Options,
    obs: &mut (dyn Observer + Send),
) -> Result<()> {
    let exp = sweep.point(&p.dir);
    if !exp.summary().is_file() {
        Experiment::new(p.config.clone(), exp.root(), opts.device.clone())?
            .with_jobs(opts.jobs)
            .run(obs)?;
    }
    for (name, settings) in &plan.branches {
        let b = branch::lookup(name)?;
        if b.dir(&exp, settings)?.summary().is_file() {
            continue;
        }
        let run = RunOptions {
            levels: None,
            device: opts.device.clone(),
            data_dir: None,
        };
        b.run(&exp, settings.clone(), &run, obs)
            .with_context(|| format!("branch {name}"))?;
    }
    Ok(())
}
