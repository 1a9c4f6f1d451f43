//! End-to-end tests of the `lottery` binary on the bundled MNIST.

mod common;

use std::path::Path;

use common::{assert_clean_error, lottery, mnist_dir, stderr, stdout, temp};

#[test]
fn train_lenet_1000_iterations_reaches_95_percent_and_writes_its_files() {
    let out = temp("train");
    let o = lottery(&[
        "train",
        "--model",
        "lenet_300_100",
        "--iterations",
        "1000",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("test accuracy"), "{}", stdout(&o));
    for f in [
        "weights.safetensors",
        "init.safetensors",
        "metrics.jsonl",
        "config.json",
        "summary.json",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let acc = summary["test_accuracy"].as_f64().unwrap();
    assert!(acc >= 0.95, "test accuracy {acc}");
    let lines = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 10, "evaluation every 100 iterations");

    // Same settings: reported, not recomputed. Different settings: refused, nothing touched.
    let again = lottery(&[
        "train",
        "--iterations",
        "1000",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        stdout(&again).contains("already trained"),
        "{}",
        stdout(&again)
    );
    let before = std::fs::read(out.join("weights.safetensors")).unwrap();
    let other = lottery(&[
        "train",
        "--iterations",
        "10",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_clean_error(&other, &["other settings", out.to_str().unwrap()]);
    assert_eq!(
        std::fs::read(out.join("weights.safetensors")).unwrap(),
        before
    );

    // A mask and a starting checkpoint from that run: masked weights stay zero.
    let mask_dir = temp("mask");
    write_half_mask(
        &out.join("weights.safetensors"),
        &mask_dir.join("mask.safetensors"),
    );
    let masked = temp("masked");
    let o = lottery(&[
        "train",
        "--iterations",
        "50",
        "--eval-every",
        "50",
        "--optimizer",
        "sgd",
        "--lr",
        "0.05",
        "--momentum",
        "0.9",
        "--from",
        out.join("weights.safetensors").to_str().unwrap(),
        "--mask",
        mask_dir.join("mask.safetensors").to_str().unwrap(),
        "--out",
        masked.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (w, _) = lottery::tensors::load(&masked.join("weights.safetensors")).unwrap();
    let (m, _) = lottery::tensors::load(&mask_dir.join("mask.safetensors")).unwrap();
    for (name, mask) in &m {
        for (x, k) in w[name].data.iter().zip(&mask.data) {
            assert!(*k == 1.0 || *x == 0.0, "{name}: pruned weight {x}");
        }
    }
    for d in [out, mask_dir, masked] {
        std::fs::remove_dir_all(d).ok();
    }
}

/// Prunes every other weight of each layer.
fn write_half_mask(weights: &Path, dest: &Path) {
    let (w, _) = lottery::tensors::load(weights).unwrap();
    let masks = w
        .into_iter()
        .filter(|(k, _)| k.ends_with(".weight"))
        .map(|(k, t)| {
            let data = (0..t.len()).map(|i| (i % 2) as f32).collect();
            (k, lottery::tensors::HostTensor::new(t.shape, data))
        })
        .collect();
    lottery::tensors::save(dest, &masks, None).unwrap();
}

#[test]
fn bad_input_gives_one_line_errors_naming_the_culprit() {
    let o = lottery(&["train", "--model", "lenet5", "--iterations", "1"]);
    assert_clean_error(&o, &["lenet5", "lenet_300_100"]);

    let o = lottery(&["train", "--lr", "-0.1", "--iterations", "1"]);
    assert_clean_error(&o, &["lr", "-0.1"]);

    let o = lottery(&["train", "--init", "orthogonal", "--iterations", "1"]);
    assert_clean_error(&o, &["init", "orthogonal"]);

    let diverged = temp("diverged");
    let o = lottery(&[
        "train",
        "--optimizer",
        "sgd",
        "--lr",
        "1e4",
        "--iterations",
        "100",
        "--out",
        diverged.to_str().unwrap(),
    ]);
    assert_clean_error(&o, &["diverged", "NaN", "iteration"]);
    assert!(
        diverged.join("config.json").is_file() && !diverged.join("weights.safetensors").exists()
    );
    std::fs::remove_dir_all(diverged).ok();

    // Truncated and corrupt dataset files.
    let data = temp("data");
    for f in std::fs::read_dir(mnist_dir()).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, data.join(f.file_name().unwrap())).unwrap();
    }
    let labels = data.join("t10k-labels-idx1-ubyte.gz");
    let bytes = std::fs::read(&labels).unwrap();
    std::fs::write(&labels, &bytes[..bytes.len() / 2]).unwrap();
    let o = lottery(&[
        "train",
        "--iterations",
        "1",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert_clean_error(&o, &["t10k-labels-idx1-ubyte.gz"]);
    let o = lottery(&[
        "data",
        "--dataset",
        "mnist",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert!(
        !o.status.success() && stdout(&o).contains("BROKEN"),
        "{}",
        stdout(&o)
    );

    // A raw (uncompressed) IDX whose header promises more than it holds.
    std::fs::remove_file(&labels).unwrap();
    let mut raw = vec![0u8, 0, 8, 1];
    raw.extend_from_slice(&10_000u32.to_be_bytes());
    raw.extend(vec![1u8; 100]);
    std::fs::write(data.join("t10k-labels-idx1-ubyte"), raw).unwrap();
    let o = lottery(&[
        "train",
        "--iterations",
        "1",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert_clean_error(&o, &["t10k-labels-idx1-ubyte", "truncated"]);

    // Corrupt and wrong-shaped checkpoints.
    let bogus = data.join("bogus.safetensors");
    std::fs::write(&bogus, b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all").unwrap();
    let o = lottery(&[
        "train",
        "--iterations",
        "1",
        "--from",
        bogus.to_str().unwrap(),
    ]);
    assert_clean_error(&o, &["bogus.safetensors"]);
    let torch = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../lottery/tests/fixtures/torch_mlp_16.safetensors");
    let o = lottery(&[
        "train",
        "--iterations",
        "1",
        "--from",
        torch.to_str().unwrap(),
    ]);
    assert_clean_error(&o, &["torch_mlp_16.safetensors", "fc1.weight", "[16, 784]"]);
    std::fs::remove_dir_all(data).ok();
}

#[test]
fn data_lists_the_bundled_mnist() {
    let o = lottery(&["data"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    assert!(
        s.contains("mnist") && s.contains("60000 training and 10000 test images"),
        "{s}"
    );
}

#[test]
fn bench_train_prints_json() {
    let o = lottery(&[
        "bench",
        "train",
        "--steps",
        "5",
        "--warmup-steps",
        "1",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert!(v["ms_per_step"].as_f64().unwrap() > 0.0);
    assert!(v["ms_per_step_masked"].as_f64().unwrap() > 0.0);
}

/// Writes a small CIFAR-10 directory in the binary format: five training batches and a test batch.
fn write_cifar(dir: &Path, per_file: usize) {
    let mut k = 0u32;
    for name in [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
        "test_batch.bin",
    ] {
        let mut bytes = Vec::new();
        for _ in 0..per_file {
            let label = (k % 10) as u8;
            bytes.push(label);
            // Class-dependent brightness, so there is something to learn.
            bytes.extend((0..3072u32).map(|i| ((label as u32 * 25 + i % 7 + k % 3) % 256) as u8));
            k += 1;
        }
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

#[test]
fn conv2_trains_on_cifar10_files_in_the_binary_format() {
    let dir = temp("cifar");
    write_cifar(&dir, 20);
    let o = lottery(&[
        "data",
        "--dataset",
        "cifar10",
        "--data-dir",
        dir.to_str().unwrap(),
    ]);
    assert!(
        stdout(&o).contains("100 training and 20 test images of [3, 32, 32]"),
        "{}",
        stdout(&o)
    );
    let out = dir.join("run");
    let o = lottery(&[
        "train",
        "--model",
        "conv2",
        "--dataset",
        "cifar10",
        "--data-dir",
        dir.to_str().unwrap(),
        "--val-size",
        "20",
        "--batch-size",
        "10",
        "--iterations",
        "4",
        "--eval-every",
        "2",
        "--augment",
        "--optimizer",
        "adam",
        "--lr",
        "2e-4",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (w, _) = lottery::tensors::load(&out.join("weights.safetensors")).unwrap();
    assert_eq!(w["conv1.weight"].shape, vec![64, 3, 3, 3]);
    assert_eq!(w["fc1.weight"].shape, vec![256, 64 * 16 * 16]);

    // A batch file cut mid-record is named in the error.
    let f = dir.join("data_batch_3.bin");
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..bytes.len() - 100]).unwrap();
    let o = lottery(&[
        "train",
        "--model",
        "conv2",
        "--dataset",
        "cifar10",
        "--data-dir",
        dir.to_str().unwrap(),
        "--iterations",
        "1",
    ]);
    assert_clean_error(&o, &["data_batch_3.bin", "truncated"]);
    std::fs::remove_dir_all(dir).ok();
}
