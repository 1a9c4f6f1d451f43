//! `lottery prune` on state dicts of architectures lottery does not know, written by the test:
//! a ResNet-like net (conv, batch norm, downsample, fc) and an `nn.Sequential` MLP.

mod common;

use std::path::Path;

use common::{assert_clean_error, lottery, stderr, temp};
use lottery::rng::Rng;
use lottery::tensors::{HostTensor, StateDict, load, save};

fn random(entries: &[(&str, &[usize])], seed: u64) -> StateDict {
    entries
        .iter()
        .map(|(n, shape)| {
            let mut rng = Rng::derive(seed, n);
            let len = shape.iter().product();
            let data = (0..len).map(|_| rng.normal() as f32).collect();
            (n.to_string(), HostTensor::new(shape.to_vec(), data))
        })
        .collect()
}

const RESNET: &[(&str, &[usize])] = &[
    ("conv1.weight", &[8, 3, 3, 3]),
    ("bn1.weight", &[8]),
    ("bn1.bias", &[8]),
    ("bn1.running_mean", &[8]),
    ("bn1.running_var", &[8]),
    ("layer1.0.conv1.weight", &[16, 8, 3, 3]),
    ("layer1.0.downsample.0.weight", &[16, 8, 1, 1]),
    ("fc.weight", &[10, 16]),
    ("fc.bias", &[10]),
];

const SEQUENTIAL: &[(&str, &[usize])] = &[
    ("0.weight", &[64, 20]),
    ("0.bias", &[64]),
    ("2.weight", &[3, 64]),
    ("2.bias", &[3]),
];

fn prune(src: &Path, out: &Path, scope: &str) -> (StateDict, StateDict) {
    let o = lottery(&[
        "prune",
        src.to_str().unwrap(),
        "--sparsity",
        "0.5",
        "--scope",
        scope,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.join("report.json").is_file());
    (
        load(&out.join("weights.safetensors")).unwrap().0,
        load(&out.join("mask.safetensors")).unwrap().0,
    )
}

#[test]
fn any_state_dict_prunes_globally_and_layerwise_with_exact_counts() {
    let root = temp("any");
    for (name, entries, prunable) in [
        (
            "resnet",
            RESNET,
            &[
                "conv1.weight",
                "fc.weight",
                "layer1.0.conv1.weight",
                "layer1.0.downsample.0.weight",
            ][..],
        ),
        ("sequential", SEQUENTIAL, &["0.weight", "2.weight"][..]),
    ] {
        let dict = random(entries, 3);
        let src = root.join(format!("{name}.safetensors"));
        save(&src, &dict, None).unwrap();

        let (w, m) = prune(&src, &root.join(format!("{name}-layerwise")), "layerwise");
        assert_eq!(m.keys().map(String::as_str).collect::<Vec<_>>(), prunable);
        for (n, mask) in &m {
            let kept = mask.count_nonzero();
            assert_eq!(
                kept,
                mask.len() - (mask.len() as f64 * 0.5).round() as usize,
                "{n}"
            );
        }
        // Every input tensor is there, same shape; pruned entries exactly 0, the rest untouched.
        assert_eq!(w.len(), dict.len());
        for (n, t) in &dict {
            assert_eq!(w[n].shape, t.shape, "{n}");
            for (i, (&x, &y)) in t.data.iter().zip(&w[n].data).enumerate() {
                let kept = m.get(n).is_none_or(|mask| mask.data[i] != 0.0);
                assert_eq!(y, if kept { x } else { 0.0 }, "{n}[{i}]");
            }
        }

        let (_, m) = prune(&src, &root.join(format!("{name}-global")), "global");
        let total: usize = m.values().map(HostTensor::len).sum();
        let kept: usize = m.values().map(HostTensor::count_nonzero).sum();
        assert_eq!(kept, total - (total as f64 * 0.5).round() as usize);
        let (mut max_pruned, mut min_kept) = (0.0f32, f32::INFINITY);
        for (n, mask) in &m {
            for (i, &k) in mask.data.iter().enumerate() {
                let a = dict[n].data[i].abs();
                if k == 0.0 {
                    max_pruned = max_pruned.max(a);
                } else {
                    min_kept = min_kept.min(a);
                }
            }
        }
        assert!(
            max_pruned <= min_kept,
            "one threshold: {max_pruned} vs {min_kept}"
        );

        // Pruned further from that mask to 75% overall: nothing revived, the count as
        // `lottery::prune` computes it (rate = 1 − keep / density of the mask).
        let (out2, first) = (
            root.join(format!("{name}-again")),
            root.join(format!("{name}-global")),
        );
        let o = lottery(&[
            "prune",
            src.to_str().unwrap(),
            "--mask",
            first.join("mask.safetensors").to_str().unwrap(),
            "--sparsity",
            "0.75",
            "--scope",
            "global",
            "--out",
            out2.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let again = load(&out2.join("mask.safetensors")).unwrap().0;
        let kept2: usize = again.values().map(HostTensor::count_nonzero).sum();
        let rate = 1.0 - (1.0 - 0.75) / (kept as f64 / total as f64);
        assert_eq!(kept2, kept - lottery::prune::prune_count(kept, rate));
        for (n, m2) in &again {
            for (a2, a1) in m2.data.iter().zip(&m[n].data) {
                assert!(*a1 != 0.0 || *a2 == 0.0, "{n}: a pruned weight came back");
            }
        }
    }
    std::fs::remove_dir_all(root).ok();
}

#[test]
fn bad_state_dicts_give_one_line_and_write_nothing() {
    let root = temp("any-bad");
    let biases = root.join("biases.safetensors");
    save(
        &biases,
        &random(&[("0.bias", &[4]), ("bn.weight", &[4])], 1),
        None,
    )
    .unwrap();
    let seq = root.join("seq.safetensors");
    save(&seq, &random(SEQUENTIAL, 1), None).unwrap();
    let corrupt = root.join("corrupt.safetensors");
    std::fs::write(&corrupt, b"\x10\x00\x00\x00\x00\x00\x00\x00{not json").unwrap();
    let out = root.join("out");
    let o_s = out.to_str().unwrap();
    for (args, needle) in [
        (
            vec![
                "prune",
                biases.to_str().unwrap(),
                "--sparsity",
                "0.5",
                "--out",
                o_s,
            ],
            "no prunable tensor",
        ),
        (
            vec![
                "prune",
                seq.to_str().unwrap(),
                "--sparsity",
                "0.5",
                "--exclude",
                "nope",
                "--out",
                o_s,
            ],
            "exclude: `nope` matches no tensor",
        ),
        (
            vec![
                "prune",
                seq.to_str().unwrap(),
                "--sparsity",
                "1.0",
                "--out",
                o_s,
            ],
            "--sparsity",
        ),
        (
            vec![
                "prune",
                seq.to_str().unwrap(),
                "--sparsity",
                "0.5",
                "--finetune",
                "10",
                "--out",
                o_s,
            ],
            "--finetune",
        ),
        (
            vec![
                "prune",
                corrupt.to_str().unwrap(),
                "--sparsity",
                "0.5",
                "--out",
                o_s,
            ],
            "corrupt.safetensors",
        ),
    ] {
        let o = lottery(&args);
        assert_clean_error(&o, &[needle]);
        assert!(!out.exists(), "{args:?} wrote {}", out.display());
    }
    std::fs::remove_dir_all(root).ok();
}
