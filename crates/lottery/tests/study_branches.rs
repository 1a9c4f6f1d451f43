//! The study branches on a tiny experiment with the bundled MNIST: each checks its arithmetic
//! against the experiment's own files (supermasks against the init network evaluated here,
//! stability paths against the copies' own test errors, a transfer to the source data against
//! the experiment's ticket), and bad input leaves the experiment untouched.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use lottery::branch::{self, RunOptions, stability};
use lottery::device::Device;
use lottery::experiment::{Experiment, ExperimentConfig, Setup, load_data, presets};
use lottery::files::read_json;
use lottery::layout::RunDir;
use lottery::masks::MaskSet;
use lottery::results::{Summary, VariantResult};
use lottery::tensors;
use lottery::train::eval::evaluate_valid;
use lottery::train::{Length, Silent};
use serde_json::json;

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lottery-study-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// An MLP for 100 steps, two levels, with the reinit control.
fn tiny() -> ExperimentConfig {
    let mut c = presets::preset("quick").unwrap();
    c.model = "mlp_20".into();
    c.train.length = Length::Iterations(100);
    c.train.eval_every = 50;
    c.levels = 2;
    c.controls = vec!["reinit".into()];
    c
}

fn experiment(name: &str) -> PathBuf {
    let dir = temp(name);
    Experiment::new(tiny(), &dir, Device::flex())
        .unwrap()
        .run(&mut Silent)
        .unwrap();
    dir
}

fn branch(name: &str, dir: &Path, settings: serde_json::Value) -> lottery::error::Result<Summary> {
    let b = branch::lookup(name).unwrap();
    let mut s = b.defaults();
    for (k, v) in settings.as_object().unwrap() {
        s[k] = v.clone();
    }
    let opts = RunOptions {
        levels: None,
        device: Device::flex(),
        data_dir: None,
    };
    b.run(&RunDir::new(dir), s, &opts, &mut Silent)
}

fn ticket(dir: &Path, level: usize) -> VariantResult {
    read_json(&RunDir::new(dir).variant(level, "ticket").result()).unwrap()
}

#[test]
fn supermasks_equal_the_masked_init_evaluated_directly() {
    let dir = experiment("supermask");
    let s = branch("supermask", &dir, json!({"fractions": [0.5, 0.9]})).unwrap();
    let cfg = tiny();
    let data = load_data(&cfg).unwrap();
    let device = Device::flex();
    let setup = Setup::new(&cfg, &data, &device).unwrap();
    let run = RunDir::new(&dir);
    let (init, _) = tensors::load(&run.init()).unwrap();
    let accuracy = |mask: Option<&MaskSet>| {
        let mut w = init.clone();
        if let Some(m) = mask {
            m.apply(&mut w);
        }
        evaluate_valid(&setup.network(&w).unwrap(), &data.test).1
    };
    // Level 0: every mask keeps everything, so each criterion's supermask is the init network.
    let dense = accuracy(None);
    for c in ["ticket", "magnitude", "large_final_same_sign", "random"] {
        assert_eq!(
            s.levels[0].variants[&format!("{c}/init")].test_accuracy,
            dense,
            "{c}"
        );
    }
    // Level 1: the ticket's mask on the init, evaluated here; and since the first pruning is
    // one-shot magnitude pruning of the dense training, `magnitude` chooses that same mask.
    let mask = MaskSet::load(&run.variant(1, "ticket").mask()).unwrap();
    let at1 = &s.levels[1].variants;
    assert_eq!(at1["ticket/init"].test_accuracy, accuracy(Some(&mask)));
    assert_eq!(at1["magnitude/init"], at1["ticket/init"]);
    assert_eq!(
        at1["magnitude/signed_constant"],
        at1["ticket/signed_constant"]
    );
    assert_ne!(at1["random/init"], at1["ticket/init"]);
    // One-shot masks from the dense training, at each fraction, criterion and value kind.
    let m = &s.levels[0].measures;
    assert_eq!(m.len(), 2 * 3 * 2, "{m:?}");
    for v in m.values() {
        assert!((0.0..=1.0).contains(v));
    }
    assert!(m.contains_key("oneshot_90/large_final_same_sign/signed_constant"));
    assert!(s.levels[1].measures.is_empty());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn stability_paths_end_at_the_copies_errors() {
    let dir = experiment("stability");
    let s = branch("stability", &dir, json!({"points": 5})).unwrap();
    for l in &s.levels {
        let path: stability::PathErrors = read_json(
            &branch_dir(&dir, "stability")
                .level(l.level)
                .join("path.json"),
        )
        .unwrap();
        assert_eq!(path.alpha, vec![0.0, 0.25, 0.5, 0.75, 1.0]);
        // The path's ends are the experiment's ticket and copy 1, evaluated on the same test set.
        let copy = &l.variants["copy_1"];
        assert!((path.error[0] - (1.0 - ticket(&dir, l.level).test_accuracy)).abs() < 1e-12);
        assert!((path.error[4] - (1.0 - copy.test_accuracy)).abs() < 1e-12);
        let inst = l.measures["instability"];
        assert_eq!(inst, stability::instability(&path.error));
        assert!(inst >= 0.0);
        let two = path.error_two_inits.as_ref().unwrap();
        assert!((two[4] - (1.0 - l.variants["other_init"].test_accuracy)).abs() < 1e-12);
        assert_eq!(
            l.measures["instability_two_inits"],
            stability::instability(two)
        );
    }
    assert!(
        branch_dir(&dir, "stability")
            .plots()
            .join("stability.png")
            .is_file()
    );

    // Two identical solutions: a flat path, instability exactly 0.
    let cfg = tiny();
    let data = load_data(&cfg).unwrap();
    let device = Device::flex();
    let setup = Setup::new(&cfg, &data, &device).unwrap();
    let (w, _) = tensors::load(&RunDir::new(&dir).variant(1, "ticket").weights()).unwrap();
    let errors = stability::path_errors(&setup, &w, &w, 4).unwrap();
    assert!(errors.iter().all(|&e| e == errors[0]));
    assert_eq!(stability::instability(&errors), 0.0);
    std::fs::remove_dir_all(dir).unwrap();
}

/// The one directory a branch of that name wrote.
fn branch_dir(dir: &Path, name: &str) -> RunDir {
    let mut found: Vec<RunDir> = RunDir::new(dir)
        .branch_dirs()
        .into_iter()
        .filter(|(n, _)| n.starts_with(name))
        .map(|(_, d)| d)
        .collect();
    assert_eq!(found.len(), 1);
    found.pop().unwrap().first_replicate()
}

/// The bundled MNIST rewritten: images cut to `side`×`side`, labels mapped by `label`.
fn derived_mnist(name: &str, side: usize, label: impl Fn(u8) -> u8) -> PathBuf {
    let src = tiny().dataset.default_dir();
    let out = temp(name);
    std::fs::create_dir_all(&out).unwrap();
    let read = |f: &str| {
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(src.join(f)).unwrap())
            .read_to_end(&mut raw)
            .unwrap();
        raw
    };
    let write = |f: &str, bytes: &[u8]| {
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(out.join(f)).unwrap(),
            flate2::Compression::fast(),
        );
        gz.write_all(bytes).unwrap();
        gz.finish().unwrap();
    };
    for split in ["train", "t10k"] {
        let images = read(&format!("{split}-images-idx3-ubyte.gz"));
        let n = u32::from_be_bytes(images[4..8].try_into().unwrap()) as usize;
        let mut cut = images[..8].to_vec();
        cut.extend((side as u32).to_be_bytes());
        cut.extend((side as u32).to_be_bytes());
        for i in 0..n {
            let img = &images[16 + i * 784..16 + (i + 1) * 784];
            for r in 0..side {
                cut.extend(&img[r * 28..r * 28 + side]);
            }
        }
        write(&format!("{split}-images-idx3-ubyte.gz"), &cut);
        let mut labels = read(&format!("{split}-labels-idx1-ubyte.gz"));
        for l in &mut labels[8..] {
            *l = label(*l);
        }
        write(&format!("{split}-labels-idx1-ubyte.gz"), &labels);
    }
    out
}

#[test]
fn a_transfer_to_the_source_data_reproduces_the_ticket_and_other_shapes_are_refused() {
    let dir = experiment("transfer");
    let mnist = tiny().dataset.default_dir();
    let s = branch(
        "transfer",
        &dir,
        json!({"dataset": "mnist", "data_dir": mnist, "controls": ["reinit"]}),
    )
    .unwrap();
    let exp: Summary = read_json(&RunDir::new(&dir).summary()).unwrap();
    for (t, e) in s.levels.iter().zip(&exp.levels) {
        assert_eq!(
            t.variants["ticket"], e.variants["ticket"],
            "level {}",
            t.level
        );
        // The experiment trains its controls from level 1 on.
        if let Some(r) = e.variants.get("reinit") {
            assert_eq!(&t.variants["reinit"], r, "level {}", t.level);
        }
    }

    let before = common::snapshot(&dir, None);
    // Smaller images: the first layer does not fit, and a new head would not help.
    let small = derived_mnist("mnist-14", 14, |l| l);
    let err = branch(
        "transfer",
        &dir,
        json!({"data_dir": small, "new_head": true}),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("1×14×14") && err.contains("fc1.weight"),
        "{err}"
    );
    assert!(!err.contains("--new-head"), "{err}");
    // Five classes: only the head differs; refused unless asked for a new head.
    let five = derived_mnist("mnist-5", 28, |l| l % 5);
    let err = branch("transfer", &dir, json!({"data_dir": five}))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("5 classes") && err.contains("--new-head"),
        "{err}"
    );
    assert_eq!(
        common::snapshot(&dir, None),
        before,
        "refusals write nothing"
    );

    let s = branch(
        "transfer",
        &dir,
        json!({"data_dir": five, "new_head": true, "controls": []}),
    )
    .unwrap();
    let t = &s.levels[1].variants["ticket"];
    assert!(
        t.test_accuracy > 0.3,
        "five classes learned: {}",
        t.test_accuracy
    );
    for d in [dir, small, five] {
        std::fs::remove_dir_all(d).unwrap();
    }
}
