//! `lottery sweep --status DIR`: each point done, running, stopped, failed or pending, read
//! from the directories (summaries and what each task last said), and from `sacct` when the
//! sweep went to Slurm and `sacct` can be run.

use std::collections::BTreeMap;

use anyhow::Result;
use lottery::layout::SweepDir;

use super::plan::Plan;
use super::slurm;
use super::task::{self, State, TaskState};

/// A point's state, in words.
fn state(
    sweep: &SweepDir,
    plan: &Plan,
    index: usize,
    sacct: Option<&BTreeMap<usize, String>>,
) -> (String, String) {
    let p = &plan.points[index];
    if task::is_done(sweep, plan, p) {
        return ("done".into(), String::new());
    }
    let said = TaskState::read(sweep, index);
    let slurm = sacct.and_then(|s| s.get(&index)).map(String::as_str);
    // Slurm knows best whether a task is queued or running; the task's own file says why it
    // stopped.
    match (slurm, said) {
        (Some("PENDING" | "REQUEUED"), _) => ("pending".into(), "queued in Slurm".into()),
        (Some("RUNNING"), s) => (
            "running".into(),
            s.map_or_else(String::new, |s| format!("on {}", s.host)),
        ),
        (_, Some(s)) if s.state == State::Failed => ("failed".into(), s.error.unwrap_or_default()),
        (_, Some(s)) if s.state == State::Stopped => (
            "stopped".into(),
            "stopped on request; rerun or requeue resumes it".into(),
        ),
        (Some(other), _) if other != "COMPLETED" => {
            ("failed".into(), format!("Slurm says {other}"))
        }
        (_, Some(s)) if s.state == State::Running => {
            if s.host == task::host() && !std::path::Path::new(&format!("/proc/{}", s.pid)).exists()
            {
                ("stopped".into(), format!("its process {} is gone", s.pid))
            } else {
                ("running".into(), format!("on {} (pid {})", s.host, s.pid))
            }
        }
        _ => ("pending".into(), String::new()),
    }
}

pub fn print(sweep: &SweepDir) -> Result<()> {
    let plan = Plan::read(sweep)?;
    let sacct = slurm::states(sweep);
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    outln!("{:>5}  {:<8} {:<40} note", "point", "state", "settings");
    for i in 0..plan.points.len() {
        let (s, note) = state(sweep, &plan, i, sacct.as_ref());
        outln!("{i:>5}  {s:<8} {:<40} {note}", plan.points[i].label());
        *counts.entry(s).or_default() += 1;
    }
    let summary: Vec<String> = ["done", "running", "pending", "stopped", "failed"]
        .iter()
        .map(|k| format!("{} {k}", counts.get(*k).copied().unwrap_or(0)))
        .collect();
    outln!("{} points: {}", plan.points.len(), summary.join(", "));
    if sacct.is_none() && !slurm::jobs(sweep).is_empty() {
        outln!("(sacct could not be run: states from the directories only)");
    }
    Ok(())
}
