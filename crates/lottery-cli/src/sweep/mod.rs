//! `lottery sweep`: a grid of experiments from a `SWEEP.toml`, planned into one directory
//! (`plan.json`, one hashed experiment directory per point) and run on this machine (`--local`,
//! a pool of `--jobs` points) or handed to Slurm as one job array (`--slurm`), whose tasks come
//! back here as `--task I DIR`. `--status DIR` says where each point stands; `lottery report
//! DIR` aggregates them.

mod aggregate;
mod plan;
mod pool;
mod slurm;
mod status;
mod task;

pub use aggregate::{Group, report};
pub use plan::Plan;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use lottery::layout::SweepDir;

use crate::progress::LevelTable;

#[derive(Args, Debug)]
pub struct SweepArgs {
    /// The sweep file (SWEEP.toml); with --task or --status, the sweep directory.
    target: PathBuf,
    /// The sweep directory (default: runs/<the sweep file's name>).
    #[arg(long, conflicts_with_all = ["task", "status"])]
    out: Option<PathBuf>,
    /// Run the points on this machine (the default).
    #[arg(long, conflicts_with = "slurm")]
    local: bool,
    /// Submit the points as one Slurm job array (sbatch), one task per unfinished point.
    #[arg(long, conflicts_with_all = ["task", "status"])]
    slurm: bool,
    /// With --slurm: print the batch script and submit nothing.
    #[arg(long, requires = "slurm")]
    dry_run: bool,
    /// Locally, points at once (default 1; each gets the cores divided among them); with
    /// --task, trainings at once within the point (default: every core).
    #[arg(long)]
    jobs: Option<usize>,
    /// Run one point of the plan in DIR (what each Slurm array task does).
    #[arg(long, value_name = "INDEX", conflicts_with = "status")]
    task: Option<usize>,
    /// Print where each point of the sweep in DIR stands.
    #[arg(long)]
    status: bool,
    /// cpu, wgpu or cuda (the last two need the matching build feature).
    #[arg(long, default_value = "cpu")]
    device: String,
    #[command(flatten)]
    resources: slurm::SlurmArgs,
}

pub fn run(a: SweepArgs) -> Result<()> {
    if a.jobs == Some(0) {
        bail!("invalid --jobs: must be at least 1");
    }
    // Slurm's SIGTERM (preemption, requeue, time limit) and a plain `kill` stop every training
    // at its next step, so finished ones stay and a rerun resumes.
    signal_hook::flag::register(signal_hook::consts::SIGTERM, lottery::stop::flag())
        .context("cannot install the SIGTERM handler")?;
    if a.status {
        return status::print(&SweepDir::new(&a.target));
    }
    if let Some(index) = a.task {
        return run_task(&a, index);
    }
    let file = plan::SweepFile::read(&a.target)?;
    let plan = Plan::of(&file, &a.target).with_context(|| a.target.display().to_string())?;
    let out = a.out.clone().unwrap_or_else(|| default_dir(&a.target));
    let sweep = SweepDir::new(&out);
    let device = lottery::device::parse(&a.device)?;
    if a.slurm {
        return submit(&a, &file, &plan, &sweep);
    }
    plan.claim(&sweep)?;
    outln!("{} → {}", a.target.display(), out.display());
    let points_at_once = a.jobs.unwrap_or(1);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let opts = task::Options {
        device,
        jobs: (cores / points_at_once).max(1),
    };
    pool::run(&sweep, &plan, points_at_once, &opts)?;
    outln!(
        "every point done; `lottery report {}` compares them",
        out.display()
    );
    Ok(())
}

/// `runs/<stem of the sweep file>`.
fn default_dir(file: &Path) -> PathBuf {
    let stem = file
        .file_stem()
        .map_or_else(|| "sweep".into(), |s| s.to_string_lossy().into_owned());
    PathBuf::from("runs").join(stem)
}

/// One point, as a Slurm array task runs it: the live level table in its log.
fn run_task(a: &SweepArgs, index: usize) -> Result<()> {
    let sweep = SweepDir::new(&a.target);
    let plan = Plan::read(&sweep)?;
    let p = plan.point(index)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let opts = task::Options {
        device: lottery::device::parse(&a.device)?,
        jobs: a.jobs.unwrap_or(cores),
    };
    outln!(
        "point {index} of {} ({}) → {}",
        plan.points.len(),
        p.label(),
        sweep.point(&p.dir).root().display()
    );
    let mut live =
        LevelTable::new(None, p.config.replicates).with_metric(p.config.dataset.metric());
    task::run_point(&sweep, &plan, index, &opts, &mut live)?;
    outln!("point {index} done");
    Ok(())
}

/// Writes the plan and submits its unfinished points as one job array.
fn submit(a: &SweepArgs, file: &plan::SweepFile, plan: &Plan, sweep: &SweepDir) -> Result<()> {
    if !a.dry_run {
        slurm::require_sbatch()?;
    }
    let tasks: Vec<usize> = (0..plan.points.len())
        .filter(|&i| !task::is_done(sweep, plan, &plan.points[i]))
        .collect();
    if tasks.is_empty() {
        outln!(
            "every point of {} is done; nothing to submit",
            sweep.root().display()
        );
        return Ok(());
    }
    let root = std::path::absolute(sweep.root())
        .with_context(|| format!("cannot resolve {}", sweep.root().display()))?;
    let exe = std::env::current_exe().context("cannot find the lottery binary")?;
    let settings = a.resources.over(&file.slurm);
    let script = slurm::script(&slurm::Job {
        sweep: &root,
        exe: &exe,
        device: &a.device,
        tasks: &tasks,
        settings: &settings,
    });
    if a.dry_run {
        out!("{script}");
        return Ok(());
    }
    plan.claim(sweep)?;
    let id = slurm::submit(sweep, &script)?;
    outln!(
        "submitted job array {id}: {} tasks ({}); `lottery sweep --status {}` follows them",
        tasks.len(),
        sweep.slurm_script().display(),
        sweep.root().display()
    );
    Ok(())
}
