//! Handing a sweep to Slurm: one job array whose task `i` runs `lottery sweep --task i DIR`,
//! the batch script that says so, `sbatch` to submit it, and `sacct` to read the tasks' states
//! back. We schedule nothing ourselves: Slurm queues, places, preempts and requeues.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::Args;
use lottery::layout::SweepDir;

use super::plan::SlurmSettings;

/// Resources each array task asks for; each overrides the sweep file's `[slurm]` table.
#[derive(Args, Debug, Clone, Default)]
pub struct SlurmArgs {
    /// Slurm partition.
    #[arg(long)]
    partition: Option<String>,
    /// Wall-time limit per task (`2:00:00`).
    #[arg(long)]
    time: Option<String>,
    /// CPUs per task; each task trains with this many threads.
    #[arg(long)]
    cpus: Option<u32>,
    /// Memory per task's node (`8G`).
    #[arg(long)]
    mem: Option<String>,
    /// Tasks running at once (`--array=…%P`).
    #[arg(long)]
    parallel: Option<usize>,
    /// A further `#SBATCH` line (`--sbatch=--account=lab`); repeatable.
    #[arg(long = "sbatch", value_name = "OPTION", allow_hyphen_values = true)]
    sbatch: Vec<String>,
    /// Do not let Slurm requeue a task after a node failure or preemption.
    #[arg(long)]
    no_requeue: bool,
}

impl SlurmArgs {
    /// The file's settings with these flags laid over them.
    pub fn over(&self, file: &SlurmSettings) -> SlurmSettings {
        let mut s = file.clone();
        s.partition = self.partition.clone().or(s.partition);
        s.time = self.time.clone().or(s.time);
        s.cpus = self.cpus.or(s.cpus);
        s.mem = self.mem.clone().or(s.mem);
        s.parallel = self.parallel.or(s.parallel);
        if self.no_requeue {
            s.requeue = Some(false);
        }
        s.extra.extend(self.sbatch.iter().cloned());
        s
    }
}

/// What the batch script runs and for which tasks.
pub struct Job<'a> {
    /// The sweep directory, absolute (tasks may start anywhere on a shared filesystem).
    pub sweep: &'a Path,
    /// The `lottery` binary, absolute.
    pub exe: &'a Path,
    pub device: &'a str,
    /// The points to run: the array's task ids.
    pub tasks: &'a [usize],
    pub settings: &'a SlurmSettings,
}

/// The batch script of a job array over `job.tasks`.
pub fn script(job: &Job<'_>) -> String {
    let s = job.settings;
    let logs = job.sweep.join("slurm");
    let mut array = ranges(job.tasks);
    if let Some(p) = s.parallel {
        array.push_str(&format!("%{p}"));
    }
    let mut lines = vec![
        "#!/bin/bash".to_string(),
        "#SBATCH --job-name=lottery-sweep".to_string(),
        format!("#SBATCH --array={array}"),
        format!("#SBATCH --output={}/%A_%a.out", logs.display()),
        // A requeued task appends to its log instead of replacing what it said before.
        "#SBATCH --open-mode=append".to_string(),
    ];
    let option =
        |name: &str, v: &Option<String>| v.as_ref().map(|v| format!("#SBATCH --{name}={v}"));
    lines.extend(option("partition", &s.partition));
    lines.extend(option("time", &s.time));
    lines.extend(option("cpus-per-task", &s.cpus.map(|c| c.to_string())));
    lines.extend(option("mem", &s.mem));
    lines.push(if s.requeue.unwrap_or(true) {
        "#SBATCH --requeue".into()
    } else {
        "#SBATCH --no-requeue".into()
    });
    for e in &s.extra {
        let e = e.trim();
        lines.push(if e.starts_with("#SBATCH") {
            e.to_string()
        } else {
            format!("#SBATCH {e}")
        });
    }
    lines.push(String::new());
    lines.push(
        "# Each task runs one point of the plan; it resumes whatever the point's directory holds."
            .into(),
    );
    lines.push(
        "# `exec`: Slurm's SIGTERM (preemption, requeue, time limit) reaches lottery, which stops"
            .into(),
    );
    lines.push("# at its next step with every finished training kept.".into());
    lines.push(format!(
        "exec {} sweep --task \"$SLURM_ARRAY_TASK_ID\" --jobs \"${{SLURM_CPUS_PER_TASK:-1}}\" --device {} {}",
        quote(&job.exe.display().to_string()),
        quote(job.device),
        quote(&job.sweep.display().to_string())
    ));
    lines.join("\n") + "\n"
}

/// `0-3,5,7-9`: task ids as sbatch's `--array` takes them.
fn ranges(ids: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < ids.len() {
        let mut j = i;
        while j + 1 < ids.len() && ids[j + 1] == ids[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            ids[i].to_string()
        } else {
            format!("{}-{}", ids[i], ids[j])
        });
        i = j + 1;
    }
    parts.join(",")
}

/// `s` as one shell word.
fn quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Fails unless `sbatch` can be run.
pub fn require_sbatch() -> Result<()> {
    match Command::new("sbatch").arg("--version").output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => bail!(
            "sbatch does not work here: {}",
            last_line(&String::from_utf8_lossy(&o.stderr))
        ),
        Err(_) => bail!(
            "sbatch not found: --slurm needs Slurm's commands on PATH (run on a login node, or use --local)"
        ),
    }
}

/// The last non-empty line of a command's error output: Slurm's commands end with the fatal one.
fn last_line(text: &str) -> &str {
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
}

/// Writes the script into the sweep, submits it and records the job id; returns the id.
pub fn submit(sweep: &SweepDir, script: &str) -> Result<String> {
    let path = sweep.slurm_script();
    lottery::files::write_atomic(&path, script.as_bytes())?;
    let out = Command::new("sbatch")
        .arg("--parsable")
        .arg(&path)
        .output()
        .context("cannot run sbatch")?;
    if !out.status.success() {
        bail!(
            "sbatch refused {}: {}",
            path.display(),
            last_line(&String::from_utf8_lossy(&out.stderr))
        );
    }
    // `--parsable` prints `ID` or `ID;cluster`.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let id = stdout
        .trim()
        .split(';')
        .next()
        .filter(|s| !s.is_empty())
        .with_context(|| format!("sbatch printed no job id ({})", stdout.trim()))?
        .to_string();
    let mut jobs = std::fs::read_to_string(sweep.slurm_jobs()).unwrap_or_default();
    jobs.push_str(&format!("{id}\n"));
    lottery::files::write_atomic(&sweep.slurm_jobs(), jobs.as_bytes())?;
    Ok(id)
}

/// The job arrays submitted for this sweep, oldest first.
pub fn jobs(sweep: &SweepDir) -> Vec<String> {
    std::fs::read_to_string(sweep.slurm_jobs())
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// Each task's state as Slurm reports it (`COMPLETED`, `RUNNING`, `PENDING`, …), by task id:
/// `sacct`'s record, overridden by `squeue` for tasks still queued or running (accounting
/// lags behind the controller). `None` when there is no job or neither command runs.
pub fn states(sweep: &SweepDir) -> Option<BTreeMap<usize, String>> {
    let jobs = jobs(sweep);
    if jobs.is_empty() {
        return None;
    }
    let run = |cmd: &str, args: &[&str]| {
        Command::new(cmd)
            .args(args)
            .arg(jobs.join(","))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| parse_states(&String::from_utf8_lossy(&o.stdout), &jobs))
    };
    let finished = run("sacct", &["-n", "-P", "-X", "--format=JobID,State", "-j"]);
    let live = run("squeue", &["-h", "-r", "-o", "%i|%T", "-j"]);
    if finished.is_none() && live.is_none() {
        return None;
    }
    let mut states = finished.unwrap_or_default();
    states.extend(live.unwrap_or_default());
    Some(states)
}

/// `sacct -P -X` or `squeue -o %i|%T` lines (`12_3|COMPLETED`, `12_[4-7%2]|PENDING`) → state
/// by task id; a later job's line wins over an earlier job's (a resubmission).
fn parse_states(text: &str, jobs: &[String]) -> BTreeMap<usize, String> {
    let mut rows: Vec<(usize, usize, String)> = Vec::new();
    for line in text.lines() {
        let Some((id, state)) = line.split_once('|') else {
            continue;
        };
        // `CANCELLED by 0` → CANCELLED.
        let state = state.split_whitespace().next().unwrap_or("").to_string();
        let Some((job, task)) = id.split_once('_') else {
            continue;
        };
        let order = jobs.iter().position(|j| j == job).unwrap_or(0);
        let task = task.trim_start_matches('[').trim_end_matches(']');
        let task = task.split('%').next().unwrap_or("");
        for part in task.split(',') {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
                for t in a..=b {
                    rows.push((order, t, state.clone()));
                }
            }
        }
    }
    rows.sort_by_key(|r| r.0);
    rows.into_iter().map(|(_, t, s)| (t, s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_ranges_and_shell_words() {
        assert_eq!(ranges(&[0, 1, 2, 3, 5, 7, 8, 9]), "0-3,5,7-9");
        assert_eq!(ranges(&[4]), "4");
        assert_eq!(quote("/runs/a-b_1"), "/runs/a-b_1");
        assert_eq!(quote("/my runs/it's"), r"'/my runs/it'\''s'");
    }

    #[test]
    fn the_script_asks_for_what_the_settings_say_and_runs_each_task() {
        let settings = SlurmSettings {
            partition: Some("gpu".into()),
            time: Some("1:00:00".into()),
            cpus: Some(4),
            parallel: Some(2),
            extra: vec!["--account=lab".into()],
            ..Default::default()
        };
        let s = script(&Job {
            sweep: Path::new("/shared/runs/s"),
            exe: Path::new("/shared/bin/lottery"),
            device: "cpu",
            tasks: &[0, 1, 2, 3],
            settings: &settings,
        });
        for line in [
            "#SBATCH --array=0-3%2",
            "#SBATCH --output=/shared/runs/s/slurm/%A_%a.out",
            "#SBATCH --partition=gpu",
            "#SBATCH --time=1:00:00",
            "#SBATCH --cpus-per-task=4",
            "#SBATCH --requeue",
            "#SBATCH --account=lab",
            "exec /shared/bin/lottery sweep --task \"$SLURM_ARRAY_TASK_ID\" --jobs \"${SLURM_CPUS_PER_TASK:-1}\" --device cpu /shared/runs/s",
        ] {
            assert!(s.lines().any(|l| l == line), "missing `{line}` in\n{s}");
        }
        assert!(s.starts_with("#!/bin/bash\n"));
        assert!(!s.contains("--mem"));
    }

    #[test]
    fn sacct_lines_give_each_tasks_latest_state() {
        let text =
            "7_0|COMPLETED\n7_1|FAILED\n7_[2-3%2]|PENDING\n9_1|RUNNING\n9_2|CANCELLED by 0\n";
        let jobs = ["7".to_string(), "9".to_string()];
        let s = parse_states(text, &jobs);
        assert_eq!(s[&0], "COMPLETED");
        assert_eq!(s[&1], "RUNNING", "the resubmission wins");
        assert_eq!(s[&2], "CANCELLED");
        assert_eq!(s[&3], "PENDING");
    }
}
