//! A real Slurm: `slurm/cluster.sh` installs Debian's Slurm, munge and MariaDB when missing and
//! starts a one-node cluster on this machine (2 CPUs, accounting on, so `sacct` answers). A
//! 4-task array of tiny experiments goes through `lottery sweep --slurm` and must come back
//! COMPLETED with 4 summaries and their aggregate; then a running task is requeued
//! (`scontrol requeue`) and its resumed summary must equal an uninterrupted run's. Every daemon
//! the script started is stopped by its pid, whatever happens. Installing and starting daemons
//! needs root: as any other user the test says why and passes.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{stderr, stdout, temp};

/// The cluster the script started; stopping it is dropping it.
struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slurm/cluster.sh")
}

impl Cluster {
    fn start(dir: &Path) -> Cluster {
        let o = Command::new(script())
            .arg("start")
            .arg(dir)
            .output()
            .unwrap();
        // Even a failed start may have left daemons: the guard stops them.
        let cluster = Cluster {
            dir: dir.to_path_buf(),
            conf: dir.join("slurm.conf"),
        };
        assert!(
            o.status.success(),
            "the cluster did not start: {}{}",
            stdout(&o),
            stderr(&o)
        );
        cluster
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf);
        c
    }

    fn lottery(&self, args: &[&str]) -> Output {
        self.command(env!("CARGO_BIN_EXE_lottery"))
            .args(args)
            .output()
            .unwrap()
    }

    /// The states `sacct` lists for the tasks of `job`.
    fn sacct(&self, job: &str) -> Vec<String> {
        let o = self
            .command("sacct")
            .args(["-n", "-P", "-X", "--format=JobID,State", "-j", job])
            .output()
            .unwrap();
        stdout(&o)
            .lines()
            .filter_map(|l| l.split_once('|'))
            .map(|(id, s)| format!("{id} {s}"))
            .collect()
    }

    /// Waits until `sacct` shows `n` tasks of `job` COMPLETED; fails on any that ended
    /// otherwise, or after five minutes.
    fn wait_completed(&self, job: &str, n: usize) {
        let start = Instant::now();
        loop {
            let states = self.sacct(job);
            let done = states.iter().filter(|s| s.ends_with(" COMPLETED")).count();
            if done == n {
                return;
            }
            let ended_badly = states.iter().find(|s| {
                [
                    "FAILED",
                    "CANCELLED",
                    "TIMEOUT",
                    "NODE_FAIL",
                    "OUT_OF_MEMORY",
                ]
                .iter()
                .any(|bad| s.contains(bad))
            });
            assert!(
                ended_badly.is_none(),
                "{ended_badly:?}; logs in {}",
                self.dir.display()
            );
            assert!(
                start.elapsed() < Duration::from_secs(300),
                "job {job} not done after 5 minutes: {states:?}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").arg(&self.dir).output();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| stdout(&o).trim() == "0")
}

fn job_id(sweep: &Path) -> String {
    std::fs::read_to_string(sweep.join("slurm/jobs"))
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_string()
}

fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap()
}

/// The only point's experiment directory in a sweep.
fn point_dir(sweep: &Path, index: usize) -> PathBuf {
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sweep.join("plan.json")).unwrap()).unwrap();
    sweep.join(plan["points"][index]["dir"].as_str().unwrap())
}

#[test]
fn a_sweep_runs_as_a_slurm_job_array_and_a_requeued_task_resumes_to_the_same_summary() {
    if !is_root() {
        eprintln!(
            "skipped: a real Slurm needs root to install Debian's slurm-wlm and to start its daemons"
        );
        return;
    }
    let tmp = temp("slurm");
    let cluster = Cluster::start(&tmp.join("cluster"));

    // Four tiny experiments as one array.
    let grid = tmp.join("grid.toml");
    std::fs::write(
        &grid,
        "[set]\nmodel = \"mlp_20\"\niterations = 150\neval-every = 50\nlevels = 2\n\
         [grid]\nseed = [0, 1]\ninit = [\"glorot_normal\", \"kaiming_normal\"]\n",
    )
    .unwrap();
    let sweep = tmp.join("sweep");
    let (g, s) = (grid.to_str().unwrap(), sweep.to_str().unwrap());
    let o = cluster.lottery(&["sweep", g, "--out", s, "--slurm", "--time", "10:00"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("4 tasks"), "{}", stdout(&o));
    let job = job_id(&sweep);
    cluster.wait_completed(&job, 4);
    for i in 0..4 {
        assert!(
            point_dir(&sweep, i).join("summary.json").is_file(),
            "point {i}"
        );
    }
    let status = cluster.lottery(&["sweep", "--status", s]);
    assert!(
        stdout(&status).contains("4 points: 4 done"),
        "{}",
        stdout(&status)
    );
    let report = cluster.lottery(&["report", s]);
    assert!(report.status.success(), "{}", stderr(&report));
    let csv = std::fs::read_to_string(sweep.join("comparison.csv")).unwrap();
    assert_eq!(
        csv.lines()
            .skip(1)
            .filter(|l| l.split(',').nth(1) == Some("2"))
            .count(),
        2 * 5,
        "two settings of two seeds each, 5 rows apiece: {csv}"
    );
    // The submission again: nothing left to run, nothing submitted.
    let again = cluster.lottery(&["sweep", g, "--out", s, "--slurm"]);
    assert!(
        stdout(&again).contains("nothing to submit"),
        "{}",
        stdout(&again)
    );

    // A task long enough to requeue while it runs.
    let long = tmp.join("long.toml");
    std::fs::write(
        &long,
        "[set]\nmodel = \"mlp_20\"\niterations = 2000\neval-every = 500\nlevels = 2\n\
         [grid]\nseed = [3]\n",
    )
    .unwrap();
    let requeued = tmp.join("requeued");
    let r = requeued.to_str().unwrap();
    let o = cluster.lottery(&["sweep", long.to_str().unwrap(), "--out", r, "--slurm"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let job = job_id(&requeued);
    let task = format!("{job}_0");
    let dense = point_dir(&requeued, 0).join("level_0/ticket/result.json");
    let start = Instant::now();
    while !dense.is_file() {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "level 0 never finished"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let o = cluster
        .command("scontrol")
        .args(["requeue", &task])
        .output()
        .unwrap();
    assert!(o.status.success(), "scontrol requeue: {}", stderr(&o));
    // Slurm holds a requeued job back for a while (its begin time); let it start now.
    let start = Instant::now();
    loop {
        let o = cluster
            .command("scontrol")
            .args(["update", &format!("JobId={task}"), "StartTime=now"])
            .output()
            .unwrap();
        if o.status.success() {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{}", stderr(&o));
        std::thread::sleep(Duration::from_millis(500));
    }
    cluster.wait_completed(&job, 1);
    let log = std::fs::read_to_string(requeued.join(format!("slurm/{job}_0.out"))).unwrap();
    assert!(
        log.contains("stopped on request before the training finished"),
        "the requeue did not interrupt a training: {log}"
    );
    assert_eq!(log.matches("point 0 of 1").count(), 2, "{log}");

    // The same point without interruption, on this machine.
    let straight = tmp.join("straight");
    let o = cluster.lottery(&[
        "sweep",
        long.to_str().unwrap(),
        "--out",
        straight.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        summary(&point_dir(&requeued, 0)),
        summary(&point_dir(&straight, 0)),
        "the requeued task's summary differs from an uninterrupted run's"
    );
    drop(cluster);
    let pids = tmp.join("cluster/pids");
    assert!(!pids.exists(), "daemons left running: {}", pids.display());
    std::fs::remove_dir_all(&tmp).unwrap();
}
