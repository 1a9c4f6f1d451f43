//! `--local`: a sweep's unfinished points on this machine, `--jobs` at a time, with one bar
//! over every training they hold. A failed point does not stop the others; a finished one is
//! never run again.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use lottery::experiment::{ExperimentConfig, Observer};
use lottery::layout::SweepDir;
use lottery::train::Progress;

use super::plan::Plan;
use super::task::{self, Options};

/// Counts finished trainings on the shared bar.
struct Counter {
    bar: ProgressBar,
}

impl Progress for Counter {}

impl Observer for Counter {
    fn finished(&mut self, _replicate: usize, _level: usize, _variant: &str, _resumed: bool) {
        self.bar.inc(1);
    }
}

/// Trainings an experiment holds (branches not counted: their size depends on the branch).
fn trainings(c: &ExperimentConfig) -> u64 {
    ((1 + c.levels * (1 + c.controls.len())) * c.replicates) as u64
}

/// Runs every unfinished point, `points_at_once` at a time, each with `opts`.
pub fn run(sweep: &SweepDir, plan: &Plan, points_at_once: usize, opts: &Options) -> Result<()> {
    let todo: Vec<usize> = (0..plan.points.len())
        .filter(|&i| !task::is_done(sweep, plan, &plan.points[i]))
        .collect();
    outln!(
        "{} points: {} done, {} to run, {} at a time",
        plan.points.len(),
        plan.points.len() - todo.len(),
        todo.len(),
        points_at_once.min(todo.len().max(1))
    );
    if todo.is_empty() {
        return Ok(());
    }
    let total: u64 = todo
        .iter()
        .map(|&i| trainings(&plan.points[i].config))
        .sum();
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "sweep [{bar:30}] {pos}/{len} trainings  {elapsed_precise}  eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    let next = AtomicUsize::new(0);
    let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..points_at_once.min(todo.len()) {
            s.spawn(|| {
                let mut counter = Counter { bar: bar.clone() };
                loop {
                    let k = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&i) = todo.get(k) else { break };
                    if lottery::stop::requested() {
                        break;
                    }
                    let label = plan.points[i].label();
                    match task::run_point(sweep, plan, i, opts, &mut counter) {
                        Ok(()) => bar.suspend(|| outln!("point {i} ({label}): done")),
                        Err(_) if lottery::stop::requested() => {
                            bar.suspend(|| outln!("point {i} ({label}): stopped"));
                        }
                        Err(e) => {
                            // The error names the point already.
                            let line = format!("{e:#}");
                            bar.suspend(|| outln!("failed: {line}"));
                            failures.lock().expect("no panics hold it").push(line);
                        }
                    }
                }
            });
        }
    });
    bar.finish_and_clear();
    let failures = failures.into_inner().expect("no panics hold it");
    if lottery::stop::requested() {
        bail!(
            "stopped on request; finished trainings are kept (rerun to resume {})",
            sweep.root().display()
        );
    }
    if let Some(first) = failures.first() {
        bail!(
            "{} of {} points failed (first: {first}); `lottery sweep --status {}` lists them, and a rerun retries them",
            failures.len(),
            todo.len(),
            sweep.root().display()
        );
    }
    Ok(())
}
