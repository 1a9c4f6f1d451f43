//! End-to-end: train → prune → compact → infer → export → bench, and damaged model files.

mod common;

use common::{assert_clean_error, lottery, stderr, stdout, temp};

/// A LeNet trained briefly and pruned to 4% of its weights, as the deploy commands see it.
fn pruned_lenet(dir: &std::path::Path) -> std::path::PathBuf {
    let trained = dir.join("trained");
    let o = lottery(&[
        "train",
        "--iterations",
        "300",
        "--eval-every",
        "300",
        "--out",
        trained.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let pruned = dir.join("pruned");
    let o = lottery(&[
        "prune",
        trained.to_str().unwrap(),
        "--sparsity",
        "0.96",
        "--output-sparsity",
        "0.8",
        "--finetune",
        "100",
        "--out",
        pruned.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // 4% of fc1 and fc2, 20% of fc3: (9408 + 1200 + 200) / 266200.
    assert!(
        stdout(&o).contains("4.06% of prunable weights kept"),
        "{}",
        stdout(&o)
    );
    pruned
}

#[test]
fn a_pruned_lenet_compacts_runs_exports_and_benches() {
    let dir = temp("deploy");
    let pruned = pruned_lenet(&dir);
    let p = pruned.to_str().unwrap();

    // Pruning twice into the same place would overwrite a result.
    let o = lottery(&["prune", p, "--sparsity", "0.99", "--out", p]);
    assert_clean_error(&o, &["already holds a pruned network"]);

    let lsm = dir.join("model.lsm");
    let l = lsm.to_str().unwrap();
    let o = lottery(&["compact", p, "-o", l]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report = stdout(&o);
    assert!(
        report.contains("linear (layer 1)") && report.contains("smaller"),
        "{report}"
    );
    let dense_bytes = 266_610 * 4;
    let file_bytes = std::fs::metadata(&lsm).unwrap().len() as usize;
    assert!(
        file_bytes * 10 < dense_bytes,
        "{file_bytes} bytes for a 4% ticket"
    );
    let o = lottery(&["compact", p, "-o", l]);
    assert_clean_error(&o, &["exists", "--force"]);

    // The compact model classifies the test set exactly as the dense masked one.
    let o = lottery(&["infer", l, "--reference", p]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("same class on 10000/10000 examples"),
        "{}",
        stdout(&o)
    );

    let exported = dir.join("export.safetensors");
    let o = lottery(&["export", p, "-o", exported.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (exported, meta) = lottery::tensors::load(&exported).unwrap();
    let (written, _) = lottery::tensors::load(&pruned.join("weights.safetensors")).unwrap();
    assert_eq!(
        exported, written,
        "prune already writes the masked state_dict"
    );
    assert_eq!(meta["model"], "lenet_300_100");
    let live = exported["fc1.weight"].count_nonzero();
    assert_eq!(live, 9408, "4% of fc1's 235,200 weights");

    let o = lottery(&["bench", "infer", l, "--calls", "40", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    for side in ["sparse", "dense"] {
        for key in ["batch1_latency_us", "batch256_samples_per_s"] {
            assert!(v[side][key].as_f64().unwrap() > 0.0, "{side}.{key} in {v}");
        }
    }
    assert!(v["floor"]["memory_bandwidth_gb_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn damaged_model_files_are_refused_with_one_line() {
    let dir = temp("damaged");
    let pruned = pruned_lenet(&dir);
    let lsm = dir.join("model.lsm");
    let o = lottery(&[
        "compact",
        pruned.to_str().unwrap(),
        "-o",
        lsm.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = std::fs::read(&lsm).unwrap();

    let cut = dir.join("cut.lsm");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    assert_clean_error(
        &lottery(&["infer", cut.to_str().unwrap()]),
        &["cut.lsm", "payload"],
    );

    let flipped = dir.join("flipped.lsm");
    let mut b = bytes.clone();
    let at = b.len() - 100;
    b[at] ^= 0x10;
    std::fs::write(&flipped, &b).unwrap();
    assert_clean_error(
        &lottery(&["infer", flipped.to_str().unwrap()]),
        &["flipped.lsm", "checksum"],
    );

    let text = dir.join("text.lsm");
    std::fs::write(&text, "not a model").unwrap();
    assert_clean_error(
        &lottery(&["bench", "infer", text.to_str().unwrap()]),
        &["not a compact"],
    );

    let o = lottery(&[
        "prune",
        pruned.to_str().unwrap(),
        "--sparsity",
        "1.5",
        "--out",
        "x",
    ]);
    assert_clean_error(&o, &["--sparsity", "1.5"]);
}
