//! The plug-in points from the command line: pruning criteria on a PyTorch state_dict,
//! branches on an experiment, settings from flags, and no panic on any flag value.

mod common;

use std::path::Path;

use common::{assert_clean_error, lottery, stderr, stdout, temp};
use lottery::tensors::{HostTensor, StateDict, load};

/// A LeNet trained briefly: `DIR/init.safetensors` and `DIR/weights.safetensors` (PyTorch
/// names and layouts, as a PyTorch user's own export would be).
fn trained(dir: &Path) {
    let o = lottery(&[
        "train",
        "--iterations",
        "100",
        "--eval-every",
        "100",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

fn prune(src: &Path, out: &Path, extra: &[&str]) -> StateDict {
    let mut args = vec![
        "prune",
        src.to_str().unwrap(),
        "--sparsity",
        "0.5",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    let o = lottery(&args);
    assert!(o.status.success(), "{extra:?}: {}", stderr(&o));
    load(&out.join("mask.safetensors")).unwrap().0
}

/// Within each tensor, every pruned entry scores at most what every kept entry scores.
fn pruned_score_lowest(mask: &StateDict, score: impl Fn(&str, usize) -> f32) {
    for (name, m) in mask {
        let (mut max_pruned, mut min_kept) = (f32::NEG_INFINITY, f32::INFINITY);
        for (i, &k) in m.data.iter().enumerate() {
            let s = score(name, i);
            if k == 0.0 {
                max_pruned = max_pruned.max(s);
            } else {
                min_kept = min_kept.min(s);
            }
        }
        assert!(max_pruned <= min_kept, "{name}: {max_pruned} > {min_kept}");
        let kept = m.data.iter().filter(|&&k| k != 0.0).count();
        assert_eq!(
            kept,
            m.len() - (m.len() as f64 * 0.5).round() as usize,
            "{name}"
        );
    }
}

#[test]
fn criteria_prune_a_pytorch_state_dict() {
    let root = temp("criteria");
    let run = root.join("run");
    trained(&run);
    let (w, init) = (
        run.join("weights.safetensors"),
        run.join("init.safetensors"),
    );
    let (wd, id) = (load(&w).unwrap().0, load(&init).unwrap().0);
    let at = |d: &StateDict, n: &str, i: usize| d[n].data[i];

    let same_sign = prune(
        &w,
        &root.join("same_sign"),
        &[
            "--criterion",
            "large_final_same_sign",
            "--init",
            init.to_str().unwrap(),
        ],
    );
    pruned_score_lowest(&same_sign, |n, i| {
        let (f, s) = (at(&wd, n, i), at(&id, n, i));
        if s == 0.0 {
            0.0
        } else {
            (f * s.signum()).max(0.0)
        }
    });
    let movement = prune(
        &w,
        &root.join("movement"),
        &["--criterion", "movement", "--init", init.to_str().unwrap()],
    );
    pruned_score_lowest(&movement, |n, i| (at(&wd, n, i) - at(&id, n, i)).abs());
    let magnitude = prune(&w, &root.join("magnitude"), &[]);
    pruned_score_lowest(&magnitude, |n, i| at(&wd, n, i).abs());
    assert_ne!(magnitude, same_sign);

    // SNIP needs data: the bundled MNIST by default.
    let snip = prune(
        &w,
        &root.join("snip"),
        &[
            "--criterion",
            "snip",
            "--init",
            init.to_str().unwrap(),
            "--scope",
            "global",
        ],
    );
    let kept: usize = snip.values().map(HostTensor::count_nonzero).sum();
    let total: usize = snip.values().map(HostTensor::len).sum();
    assert_eq!(kept, total - (total as f64 * 0.5).round() as usize);
    assert_ne!(snip, magnitude);
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("snip/ticket.json")).unwrap()).unwrap();
    assert_eq!(info["criterion"], "snip");

    let o = lottery(&[
        "prune",
        w.to_str().unwrap(),
        "--sparsity",
        "0.5",
        "--criterion",
        "movement",
        "--out",
        root.join("x").to_str().unwrap(),
    ]);
    assert_clean_error(&o, &["--init"]);
    std::fs::remove_dir_all(root).ok();
}

const TINY: &[&str] = &[
    "run",
    "--model",
    "mlp_20",
    "--iterations",
    "60",
    "--eval-every",
    "30",
    "--levels",
    "2",
    "--controls",
    "",
];

#[test]
fn a_branch_runs_on_an_experiment_and_the_report_shows_it() {
    let root = temp("branch");
    let exp = root.join("exp");
    let mut args = TINY.to_vec();
    args.extend(["--out", exp.to_str().unwrap()]);
    let o = lottery(&args);
    assert!(o.status.success(), "{}", stderr(&o));

    let o = lottery(&["branch", "--list"]);
    assert!(stdout(&o).contains("reinit") && stdout(&o).contains("random_prune"));
    let o = lottery(&[
        "branch",
        "random-prune",
        exp.to_str().unwrap(),
        "--levels",
        "1,2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = stdout(&o);
    assert!(table.contains("random_prune acc%"), "{table}");
    let branches: Vec<_> = std::fs::read_dir(exp.join("branches"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(branches.len(), 1);
    let name = branches[0].file_name().to_string_lossy().into_owned();
    assert!(name.starts_with("random_prune-"), "{name}");

    // Zhou et al.'s variants of the ticket's starting values, beside the ticket.
    let o = lottery(&["branch", "signs", exp.to_str().unwrap(), "--levels", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = stdout(&o);
    for v in ["signed_constant", "random_sign", "shuffled", "ticket"] {
        assert!(table.contains(&format!("{v} acc%")), "{v}: {table}");
    }
    let o = lottery(&["report", exp.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("branch {name}")),
        "{}",
        stdout(&o)
    );

    let o = lottery(&[
        "branch",
        "reinit",
        exp.to_str().unwrap(),
        "--iterations",
        "5",
    ]);
    assert_clean_error(&o, &["--iterations", "no settings"]);
    let o = lottery(&["branch", "reinit", exp.to_str().unwrap(), "--levels", "7"]);
    assert_clean_error(&o, &["level 7"]);
    std::fs::remove_dir_all(root).ok();
}

#[test]
fn the_study_branches_run_from_the_command_line() {
    let root = temp("study");
    let exp = root.join("exp");
    let e = exp.to_str().unwrap();
    let mut args = TINY.to_vec();
    args.extend(["--out", e]);
    let o = lottery(&args);
    assert!(o.status.success(), "{}", stderr(&o));

    // `--data-dir` is the transfer's own data; here MNIST itself, under the dataset's name.
    let mnist = common::mnist_dir();
    let o = lottery(&[
        "branch",
        "transfer",
        e,
        "--levels",
        "1",
        "--data-dir",
        mnist.to_str().unwrap(),
        "--dataset",
        "mnist",
        "--controls",
        "reinit",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("reinit acc%"), "{}", stdout(&o));
    let o = lottery(&["branch", "transfer", e]);
    assert_clean_error(&o, &["--data-dir"]);

    let o = lottery(&["branch", "stability", e, "--levels", "1", "--points", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for s in ["copy_1 acc%", "other_init acc%", "instability_two_inits"] {
        assert!(stdout(&o).contains(s), "{s}: {}", stdout(&o));
    }
    let o = lottery(&["branch", "stability", e, "--copies", "1"]);
    assert_clean_error(&o, &["copies"]);

    let o = lottery(&[
        "branch",
        "supermask",
        e,
        "--levels",
        "0",
        "--fractions",
        "0.5",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("oneshot_50/random/init"),
        "{}",
        stdout(&o)
    );
    let o = lottery(&["branch", "supermask", e, "--fractions", "[1.5]"]);
    assert_clean_error(&o, &["1.5"]);

    let o = lottery(&["report", e, e, "--labels", "one"]);
    assert_clean_error(&o, &["--labels"]);
    let o = lottery(&["branch", "supermask", root.to_str().unwrap()]);
    assert_clean_error(&o, &["not an experiment directory"]);
    std::fs::remove_dir_all(root).ok();
}

#[test]
fn print_config_shows_what_flags_set() {
    let o = lottery(&[
        "run",
        "--print-config",
        "--optimizer",
        "sgd",
        "--momentum",
        "0.9",
        "--criterion",
        "movement",
        "--set",
        "train.eval_every=7",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    for want in [
        "momentum = 0.9",
        "criterion = \"movement\"",
        "eval_every = 7",
        "name = \"sgd\"",
    ] {
        assert!(text.contains(want), "{want} in {text}");
    }
    // Global pruning refuses the preset's layer-wise output rate until it is unset.
    let o = lottery(&["run", "--print-config", "--scope", "global"]);
    assert_clean_error(&o, &["output-rate", "layer-wise"]);
    let o = lottery(&[
        "run",
        "--print-config",
        "--scope",
        "global",
        "--output-rate",
        "none",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Every command with boundary values of its flags: a one-line error or success, never a panic.
#[test]
fn no_flag_value_panics() {
    let root = temp("boundary");
    let dir = root.to_str().unwrap();
    let json = root.join("x.json");
    std::fs::write(&json, "{}").unwrap();
    let json = json.to_str().unwrap();
    let out = root.join("o");
    let out = out.to_str().unwrap();
    let one = ["--iterations", "1"];
    let cases: Vec<Vec<&str>> = vec![
        vec!["train", "--batch-size", "100000"],
        vec!["train", "--batch-size", "0"],
        vec!["train", "--batch-size", "-3"],
        vec!["train", "--iterations", "0"],
        vec!["train", "--epochs", "0"],
        vec!["train", "--lr", "nan"],
        vec!["train", "--lr", "inf"],
        vec!["train", "--eval-every", "0"],
        vec!["train", "--val-size", "60000"],
        vec!["train", "--val-size", "-1"],
        vec!["train", "--seed", "-1"],
        vec!["train", "--seed", "99999999999999999999999"],
        vec!["train", "--momentum", "0.9"],
        vec!["train", "--optimizer", "rmsprop"],
        vec!["train", "--warmup", "nan"],
        vec!["train", "--gamma", "nan"],
        vec!["train", "--milestones", "x"],
        vec!["train", "--from", dir],
        vec!["train", "--mask", json],
        vec!["train", "--data-dir", json],
        vec!["train", "--dataset", "imagenet"],
        vec!["train", "--device", "tpu"],
        vec!["train", "--set", "train.lr"],
        vec!["train", "--set", "nope=1"],
        vec!["run", "--prune-rate", "1.5"],
        vec!["run", "--prune-rate", "nan"],
        vec!["run", "--output-rate", "-1"],
        vec!["run", "--replicates", "0"],
        vec!["run", "--jobs", "0"],
        vec!["run", "--jobs", "-1"],
        vec!["run", "--rewind", "iter:-1"],
        vec!["run", "--rewind", "iter:1000000"],
        vec!["run", "--criterion", "biggest"],
        vec!["run", "--controls", "nope"],
        vec!["run", "--preset", "nope"],
        vec!["run", "--config", dir],
        vec!["run", "--config", json],
        vec!["prune", json, "--sparsity", "0.5", "--out", out],
        vec!["prune", dir, "--sparsity", "0.5", "--out", out],
        vec!["prune", "/nonexistent", "--sparsity", "nan", "--out", out],
        vec!["prune", "/nonexistent", "--sparsity", "1", "--out", out],
        vec!["compact", json, "-o", out],
        vec!["compact", dir, "-o", out],
        vec!["infer", json],
        vec!["infer", dir],
        vec!["export", json, "-o", out],
        vec!["report", dir],
        vec!["report", json],
        vec!["branch", "reinit", dir],
        vec!["branch", "nope", dir],
        vec!["data", "--dataset", "nope"],
        vec!["bench", "train", "--steps", "0"],
        vec!["bench", "train", "--batch-size", "100000"],
        vec!["bench", "train", "--sparsity", "nan"],
        vec!["bench", "train", "--model", "nope"],
        vec!["bench", "eval", "--model", "nope"],
        vec!["bench", "eval", "--rounds", "0", "--examples", "10"],
        vec!["bench", "eval", "--examples", "0"],
        vec!["bench", "eval", "--sparsity", "nan", "--examples", "10"],
        vec!["bench", "eval", "--input", "0,0,0", "--examples", "10"],
        vec!["bench", "infer", json],
    ];
    for case in cases {
        let mut args = case.clone();
        if case[0] == "train" || case[0] == "run" {
            if !case.contains(&"--iterations") && !case.contains(&"--epochs") {
                args.extend(one);
            }
            args.extend(["--out", out]);
        }
        let o = lottery(&args);
        let err = stderr(&o);
        assert!(!err.contains("panicked"), "{case:?} panicked: {err}");
        if !o.status.success() {
            assert_eq!(err.trim_end().lines().count(), 1, "{case:?}: {err}");
        }
        let _ = std::fs::remove_dir_all(out);
    }
    std::fs::remove_dir_all(root).ok();
}
