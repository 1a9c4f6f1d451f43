//! `lottery sweep` on this machine: a 3-seed × 2-init grid of tiny experiments on the bundled
//! MNIST, run with a pool of 2, resumed without recomputing, reported as 2 settings with their
//! seed spread; and the one-line errors of bad sweeps.

mod common;

use std::path::{Path, PathBuf};

use common::{assert_clean_error, lottery, stdout, temp};

/// The quick preset made tiny: a 20-unit MLP, 150 iterations, 2 levels.
const TINY: &str = r#"
preset = "quick"
[set]
model = "mlp_20"
iterations = 150
eval-every = 50
levels = 2
[grid]
seed = [0, 1, 2]
init = ["glorot_normal", "kaiming_normal"]
"#;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn modified(root: &Path) -> Vec<(PathBuf, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push((e.path(), e.metadata().unwrap().modified().unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_local_sweep_runs_resumes_without_recomputing_and_reports_each_setting_over_its_seeds() {
    let tmp = temp("sweep-local");
    let file = write(&tmp, "grid.toml", TINY);
    let out = tmp.join("out");
    let (f, o) = (file.to_str().unwrap(), out.to_str().unwrap());
    let run = lottery(&["sweep", f, "--out", o, "--jobs", "2"]);
    assert!(run.status.success(), "{}", common::stderr(&run));
    assert!(
        stdout(&run).contains("6 points: 0 done, 6 to run, 2 at a time"),
        "{}",
        stdout(&run)
    );

    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("plan.json")).unwrap()).unwrap();
    let points = plan["points"].as_array().unwrap();
    assert_eq!(points.len(), 6);
    for p in points {
        let dir = out.join(p["dir"].as_str().unwrap());
        assert!(dir.join("summary.json").is_file(), "{}", dir.display());
    }

    // Again: everything is done, nothing is written.
    let before = modified(&out);
    let again = lottery(&["sweep", f, "--out", o, "--jobs", "2"]);
    assert!(again.status.success(), "{}", common::stderr(&again));
    assert!(
        stdout(&again).contains("6 points: 6 done, 0 to run"),
        "{}",
        stdout(&again)
    );
    assert_eq!(
        modified(&out),
        before,
        "a finished sweep recomputed something"
    );

    let status = lottery(&["sweep", "--status", o]);
    assert!(
        stdout(&status).contains("6 points: 6 done, 0 running"),
        "{}",
        stdout(&status)
    );

    let report = lottery(&["report", o]);
    assert!(report.status.success(), "{}", common::stderr(&report));
    let text = stdout(&report);
    assert!(
        text.contains("init=glorot_normal — mean of 3 points"),
        "{text}"
    );
    assert!(
        text.contains("init=kaiming_normal — mean of 3 points"),
        "{text}"
    );
    let csv = std::fs::read_to_string(out.join("comparison.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(&header[..3], ["init", "seeds", "level"]);
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    // 2 settings × (level 0: ticket; levels 1–2: ticket and reinit).
    assert_eq!(rows.len(), 2 * 5, "{csv}");
    assert!(rows.iter().all(|r| r[col("seeds")] == "3"));
    // Three seeds spread: somewhere the worst seed is below the best.
    let spread = rows.iter().any(|r| {
        let lo: f64 = r[col("test_accuracy_min")].parse().unwrap();
        let hi: f64 = r[col("test_accuracy_max")].parse().unwrap();
        lo < hi
    });
    assert!(spread, "{csv}");
    // The mean lies within its spread.
    for r in &rows {
        let (lo, mean, hi): (f64, f64, f64) = (
            r[col("test_accuracy_min")].parse().unwrap(),
            r[col("test_accuracy")].parse().unwrap(),
            r[col("test_accuracy_max")].parse().unwrap(),
        );
        assert!(lo <= mean + 1e-12 && mean <= hi + 1e-12, "{r:?}");
    }
    let svg = std::fs::read_to_string(out.join("plots/accuracy.svg")).unwrap();
    for curve in ["init=glorot_normal: ticket", "init=kaiming_normal: ticket"] {
        assert!(svg.contains(curve), "{curve} not drawn");
    }

    // The same as one page: both settings' tables and the comparison plots, well-formed.
    let page = out.join("report.html");
    let o = lottery(&["report", o, "--html", page.to_str().unwrap()]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let html = std::fs::read_to_string(&page).unwrap();
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(&html, options).unwrap();
    assert_eq!(
        doc.descendants().filter(|n| n.has_tag_name("svg")).count(),
        2
    );
    assert!(html.contains("init=kaiming_normal — mean of 3 points"));
    std::fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn bad_sweeps_are_one_line_errors_and_overwrite_nothing() {
    let tmp = temp("sweep-bad");
    let out = tmp.join("out");
    let o = out.to_str().unwrap();
    let run = |name: &str, text: &str, extra: &[&str]| {
        let f = write(&tmp, name, text);
        let mut args = vec!["sweep", f.to_str().unwrap(), "--out", o];
        args.extend(extra);
        lottery(&args)
    };
    assert_clean_error(
        &run("unknown.toml", "[grid]\nlearning-rate = [0.1]\n", &[]),
        &["unknown grid key `learning-rate`"],
    );
    assert_clean_error(&run("empty.toml", "[grid]\n", &[]), &["[grid] is empty"]);
    assert_clean_error(
        &run("typo.toml", "preset = \"quick\"\n[gird]\nseed = [1]\n", &[]),
        &["unknown field `gird`"],
    );

    // --slurm without Slurm's commands.
    let no_slurm = std::process::Command::new(env!("CARGO_BIN_EXE_lottery"))
        .args([
            "sweep",
            write(&tmp, "a.toml", TINY).to_str().unwrap(),
            "--out",
            o,
            "--slurm",
        ])
        .env("PATH", tmp.join("empty-path"))
        .output()
        .unwrap();
    assert_clean_error(&no_slurm, &["sbatch not found"]);
    assert!(
        !out.exists(),
        "a refused submission wrote {}",
        out.display()
    );

    // A directory holding another plan is refused, and its plan stays as it was.
    std::fs::create_dir_all(&out).unwrap();
    let other = "[grid]\nseed = [7]\n";
    let plan = serde_json::json!({"keys": ["seed"], "points": [], "branches": {}});
    std::fs::write(out.join("plan.json"), plan.to_string()).unwrap();
    assert_clean_error(&run("other.toml", other, &[]), &["holds another sweep"]);
    assert_eq!(
        std::fs::read_to_string(out.join("plan.json")).unwrap(),
        plan.to_string()
    );
    // A directory with other things in it and no plan is not taken either.
    let busy = tmp.join("busy");
    std::fs::create_dir_all(&busy).unwrap();
    std::fs::write(busy.join("notes.txt"), "mine").unwrap();
    let f = write(&tmp, "b.toml", other);
    assert_clean_error(
        &lottery(&[
            "sweep",
            f.to_str().unwrap(),
            "--out",
            busy.to_str().unwrap(),
        ]),
        &["is not empty and holds no sweep plan"],
    );
    assert_clean_error(
        &lottery(&["sweep", "--status", tmp.to_str().unwrap()]),
        &["not a sweep directory"],
    );
    std::fs::remove_dir_all(&tmp).unwrap();
}
