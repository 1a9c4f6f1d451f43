//! Every rewind mode executed end to end (where each level starts and for how many steps), and
//! branches on a finished experiment: a control run as a branch gives the control's numbers.

mod common;

use std::path::{Path, PathBuf};

use lottery::branch::{self, RunOptions};
use lottery::device::Device;
use lottery::experiment::{Experiment, ExperimentConfig, Rewind, presets};
use lottery::files::{read_json, read_jsonl};
use lottery::layout::RunDir;
use lottery::results::{Summary, VariantResult};
use lottery::train::{EvalRecord, Length, Schedule, Silent};

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lottery-rw-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A tiny MLP for 60 steps, evaluated every 20, with a warm-up so the schedule shows where a
/// training starts.
fn tiny(rewind: Rewind, controls: &[&str]) -> ExperimentConfig {
    let mut c = presets::preset("quick").unwrap();
    c.model = "mlp_20".into();
    c.train.length = Length::Iterations(60);
    c.train.eval_every = 20;
    c.train.schedule = Schedule {
        warmup: 50,
        milestones: vec![],
        gamma: 0.1,
    };
    c.levels = 1;
    c.rewind = rewind;
    c.controls = controls.iter().map(|s| s.to_string()).collect();
    c
}

fn records(dir: &Path, level: usize, variant: &str) -> Vec<EvalRecord> {
    read_jsonl(&RunDir::new(dir).variant(level, variant).metrics()).unwrap()
}

#[test]
fn each_rewind_mode_trains_the_right_span_on_the_right_schedule() {
    for (rewind, first_eval) in [
        (Rewind::Init, 20),
        (Rewind::Iteration(30), 40),
        (Rewind::LearningRate, 20),
        (Rewind::None, 20),
    ] {
        let dir = temp(&format!("{rewind:?}"));
        let cfg = tiny(rewind, &[]);
        let sched = cfg.train.schedule.clone();
        let base_lr = cfg.train.lr;
        Experiment::new(cfg, &dir, Device::flex())
            .unwrap()
            .run(&mut Silent)
            .unwrap();
        let dense = records(&dir, 0, "ticket");
        assert_eq!(
            dense.iter().map(|r| r.iteration).collect::<Vec<_>>(),
            [20, 40, 60]
        );
        let pruned = records(&dir, 1, "ticket");
        let its: Vec<usize> = pruned.iter().map(|r| r.iteration).collect();
        // Evaluations at the same absolute iterations; a ticket rewound to 30 trains 30 → 60.
        let expect: Vec<usize> = (first_eval..=60).step_by(20).collect();
        assert_eq!(its, expect, "{rewind:?}");
        for r in &pruned {
            let want = match rewind {
                // Fine-tuning holds the schedule's final rate.
                Rewind::None => sched.lr(base_lr, 59),
                _ => sched.lr(base_lr, r.iteration - 1),
            };
            assert!(
                (r.lr - want).abs() < 1e-15,
                "{rewind:?} at {}: {} vs {want}",
                r.iteration,
                r.lr
            );
        }
        // Late rewinding keeps the weights after 30 steps; the others need no such file.
        let point = RunDir::new(&dir).rewind_point();
        assert_eq!(
            point.is_file(),
            matches!(rewind, Rewind::Iteration(_)),
            "{rewind:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn a_control_run_as_a_branch_gives_the_controls_numbers_and_leaves_the_experiment_alone() {
    let (with, without) = (temp("with"), temp("without"));
    for (dir, controls) in [(&with, &["reinit"][..]), (&without, &[][..])] {
        Experiment::new(tiny(Rewind::Iteration(30), controls), dir, Device::flex())
            .unwrap()
            .run(&mut Silent)
            .unwrap();
    }
    let before = common::snapshot(&without, Some("branches"));
    let exp = RunDir::new(&without);
    let b = branch::lookup("reinit").unwrap();
    let opts = RunOptions {
        levels: None,
        device: Device::flex(),
        data_dir: None,
    };
    let summary = b.run(&exp, b.defaults(), &opts, &mut Silent).unwrap();
    assert_eq!(
        common::snapshot(&without, Some("branches")),
        before,
        "the experiment's files are untouched"
    );

    // Same seeds, same start, same schedule: the branch's reinit is the control's, to the bit.
    let control: Summary = read_json(&RunDir::new(&with).summary()).unwrap();
    assert_eq!(summary.levels.len(), 2);
    for (l, c) in summary.levels.iter().zip(&control.levels) {
        assert_eq!(l.remaining, c.remaining);
        assert_eq!(
            l.variants["ticket"], c.variants["ticket"],
            "level {}",
            l.level
        );
        if l.level > 0 {
            assert_eq!(
                l.variants["reinit"], c.variants["reinit"],
                "level {}",
                l.level
            );
        }
    }
    // Its directory: config, summary of the experiment's shape, per-level variants, plots.
    let out = b.dir(&exp, &b.defaults()).unwrap();
    assert!(out.root().starts_with(exp.branches()));
    let written: Summary = read_json(&out.summary()).unwrap();
    assert_eq!(written, summary);
    assert!(out.variant(1, "reinit").is_complete());
    assert!(out.plots().join("accuracy.svg").is_file());

    // A rerun reads everything back; a level that has not run is refused by name.
    let again = b.run(&exp, b.defaults(), &opts, &mut Silent).unwrap();
    assert_eq!(again, summary);
    let r: VariantResult = read_json(&out.variant(1, "reinit").result()).unwrap();
    assert_eq!(r, summary.levels[1].variants["reinit"]);
    let err = b
        .run(
            &exp,
            b.defaults(),
            &RunOptions {
                levels: Some(vec![4]),
                ..opts.clone()
            },
            &mut Silent,
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("level 4"), "{err}");
    // Asking for one level again still reports every level the branch has.
    let one = b
        .run(
            &exp,
            b.defaults(),
            &RunOptions {
                levels: Some(vec![1]),
                ..opts.clone()
            },
            &mut Silent,
        )
        .unwrap();
    assert_eq!(one, summary);
    let err = branch::lookup("nope").err().unwrap().to_string();
    assert!(err.contains("random_prune"), "{err}");
    for d in [with, without] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

/// The bundled MNIST copied to a new folder; with `flip`, one test label changed.
fn copy_mnist(name: &str, src: &Path, flip: bool) -> PathBuf {
    use std::io::Read;
    let copy = temp(name);
    std::fs::create_dir_all(&copy).unwrap();
    for e in std::fs::read_dir(src).unwrap().flatten() {
        std::fs::copy(e.path(), copy.join(e.file_name())).unwrap();
    }
    if flip {
        // The reader detects gzip by content, so a raw file under the same name is read as is.
        let path = copy.join("t10k-labels-idx1-ubyte.gz");
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap())
            .read_to_end(&mut raw)
            .unwrap();
        raw[8] = (raw[8] + 1) % 10;
        std::fs::write(&path, raw).unwrap();
    }
    copy
}

#[test]
fn moved_data_resumes_and_other_data_is_refused() {
    let dir = temp("moved");
    let cfg = tiny(Rewind::Init, &[]);
    Experiment::new(cfg.clone(), &dir, Device::flex())
        .unwrap()
        .run(&mut Silent)
        .unwrap();
    let summary = std::fs::read(RunDir::new(&dir).summary()).unwrap();
    let src = cfg.dataset.default_dir();
    // The same MNIST files under another path: the same experiment, read back.
    let same = copy_mnist("mnist-same", &src, false);
    let mut moved = cfg.clone();
    moved.data_dir = Some(same.clone());
    Experiment::new(moved, &dir, Device::flex())
        .unwrap()
        .run(&mut Silent)
        .unwrap();
    assert_eq!(std::fs::read(RunDir::new(&dir).summary()).unwrap(), summary);
    // One label changed: other data under the same name, refused before anything trains.
    let changed = copy_mnist("mnist-changed", &src, true);
    let mut other = cfg.clone();
    other.data_dir = Some(changed.clone());
    let err = Experiment::new(other, &dir, Device::flex())
        .unwrap()
        .run(&mut Silent)
        .unwrap_err()
        .to_string();
    assert!(err.contains("content"), "{err}");
    for d in [dir, same, changed] {
        std::fs::remove_dir_all(d).unwrap();
    }
}
