//! End-to-end tests of `lottery run` and `lottery report` on the bundled MNIST, with a tiny MLP.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const TINY: &[&str] = &[
    "--model",
    "mlp_20",
    "--iterations",
    "150",
    "--eval-every",
    "50",
    "--levels",
    "3",
    "--controls",
    "reinit,random_prune",
];

fn lottery(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lottery"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lottery-run-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn run_to(dir: &Path) -> Output {
    let mut args = TINY.to_vec();
    args.extend(["--out", dir.to_str().unwrap()]);
    let mut full = vec!["run"];
    full.extend(args);
    lottery(&full)
}

#[test]
fn killed_run_resumes_to_the_same_summary_and_masks_are_reproducible() {
    let (a, b) = (temp("a"), temp("b"));
    let o = run_to(&a);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("ticket acc%") && table.contains("reinit acc%"),
        "{table}"
    );
    assert_eq!(
        table
            .lines()
            .filter(|l| l.trim_start().starts_with(char::is_numeric))
            .count(),
        4,
        "{table}"
    );

    // Start the same experiment elsewhere and kill it (SIGKILL) once level 1's ticket is done.
    let mut child = Command::new(env!("CARGO_BIN_EXE_lottery"))
        .arg("run")
        .args(TINY)
        .args(["--out", b.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let marker = b.join("level_1/ticket/result.json");
    let start = Instant::now();
    while !marker.exists() && start.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(marker.exists(), "level 1 never finished");
    assert!(!b.join("summary.json").exists(), "killed before the end");
    let dense = std::fs::metadata(b.join("level_0/ticket/weights.safetensors"))
        .unwrap()
        .modified()
        .unwrap();

    let o = run_to(&b);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::metadata(b.join("level_0/ticket/weights.safetensors"))
            .unwrap()
            .modified()
            .unwrap(),
        dense,
        "finished levels are read, not recomputed"
    );
    let read = |d: &Path, f: &str| std::fs::read(d.join(f)).unwrap();
    assert_eq!(
        read(&a, "summary.json"),
        read(&b, "summary.json"),
        "resumed summary equals the uninterrupted one"
    );
    for level in 1..=3 {
        for variant in ["ticket", "reinit", "random_prune"] {
            let f = format!("level_{level}/{variant}/mask.safetensors");
            assert_eq!(
                read(&a, &f),
                read(&b, &f),
                "{f} differs between runs with the same seed"
            );
        }
    }

    // Remaining fractions follow the per-layer formula: fc1 (15,680) at 20%, fc2 (output, 200) at 10%.
    let summary: serde_json::Value = serde_json::from_slice(&read(&a, "summary.json")).unwrap();
    let (mut fc1, mut fc2) = (15_680usize, 200usize);
    for level in 1..=3 {
        fc1 -= lottery::prune::prune_count(fc1, 0.2);
        fc2 -= lottery::prune::prune_count(fc2, 0.1);
        let remaining = summary["levels"][level]["remaining"].as_f64().unwrap();
        assert_eq!(remaining, (fc1 + fc2) as f64 / 15_880.0, "level {level}");
        let (m, _) =
            lottery::tensors::load(&a.join(format!("level_{level}/ticket/mask.safetensors")))
                .unwrap();
        assert_eq!(m["fc1.weight"].count_nonzero(), fc1);
        assert_eq!(m["fc2.weight"].count_nonzero(), fc2);
    }

    // The report redraws a run's plots; a comparison goes to its own folder, leaving A's alone.
    std::fs::remove_dir_all(a.join("plots")).unwrap();
    let o = lottery(&["report", a.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(a.join("plots/accuracy.svg").is_file() && a.join("plots/early_stop.svg").is_file());
    let own = std::fs::read(a.join("plots/accuracy.svg")).unwrap();
    let o = lottery(&["report", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let names = |d: &Path| d.file_name().unwrap().to_string_lossy().into_owned();
    let compare = a
        .parent()
        .unwrap()
        .join(format!("compare-{}-{}", names(&a), names(&b)).replace('…', "_"));
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(stdout.contains("plots in"), "{stdout}");
    let written = stdout
        .lines()
        .last()
        .unwrap()
        .trim_start_matches("plots in ")
        .to_string();
    assert!(
        Path::new(&written).join("accuracy.svg").is_file(),
        "{written}"
    );
    assert!(
        written.contains("compare-"),
        "{written} (expected near {})",
        compare.display()
    );
    assert_eq!(std::fs::read(a.join("plots/accuracy.svg")).unwrap(), own);

    // A different setting in the same directory is refused, and nothing is touched.
    let o = lottery(&[
        "run",
        "--model",
        "mlp_20",
        "--iterations",
        "99",
        "--out",
        a.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("other settings"));
    for d in [a, b] {
        std::fs::remove_dir_all(d).ok();
    }
}

#[test]
fn printed_config_round_trips_through_a_config_file() {
    let dir = temp("cfg");
    std::fs::create_dir_all(&dir).unwrap();
    let o = lottery(&[
        "run",
        "--preset",
        "lenet-mnist-paper",
        "--levels",
        "12",
        "--rewind",
        "iter:500",
        "--print-config",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        text.contains("levels = 12") && text.contains("iteration = 500"),
        "{text}"
    );
    let file = dir.join("c.toml");
    std::fs::write(&file, &text).unwrap();
    let again = lottery(&[
        "run",
        "--preset",
        "quick",
        "--config",
        file.to_str().unwrap(),
        "--print-config",
    ]);
    assert_eq!(String::from_utf8_lossy(&again.stdout), text);

    std::fs::write(&file, "levels = \"many\"\n").unwrap();
    let bad = lottery(&["run", "--config", file.to_str().unwrap(), "--print-config"]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success() && err.contains("c.toml") && err.trim_end().lines().count() == 1,
        "{err}"
    );
    let bad = lottery(&["run", "--prune-rate", "1.5", "--print-config"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("prune-rate"));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn replicates_side_by_side_give_what_they_give_one_after_another() {
    let (one, two) = (temp("jobs1"), temp("jobs2"));
    let run = |dir: &Path, jobs: &str| {
        let o = lottery(&[
            "run",
            "--model",
            "mlp_20",
            "--iterations",
            "100",
            "--eval-every",
            "50",
            "--levels",
            "2",
            "--controls",
            "reinit",
            "--replicates",
            "3",
            "--jobs",
            jobs,
            "--out",
            dir.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    // 4 jobs cover two replicates (ticket + reinit each) at once; 1 runs them in turn.
    let table = run(&two, "4");
    run(&one, "1");
    let read = |d: &Path, f: &str| std::fs::read(d.join(f)).unwrap();
    assert_eq!(read(&one, "summary.json"), read(&two, "summary.json"));
    for r in 0..3 {
        let f = format!("replicate_{r}/level_2/reinit/weights.safetensors");
        assert_eq!(read(&one, &f), read(&two, &f), "{f}");
    }
    // Every replicate's rows are printed, then the means.
    for r in 0..3 {
        let rows = table
            .lines()
            .filter(|l| l.starts_with(&format!("r{r:<3}")))
            .count();
        assert_eq!(rows, 3, "{table}");
    }
    assert!(table.contains("mean over 3 replicates"), "{table}");

    let o = lottery(&["run", "--jobs", "0", "--out", one.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("--jobs"), "{err}");
    for d in [one, two] {
        std::fs::remove_dir_all(d).ok();
    }
}
