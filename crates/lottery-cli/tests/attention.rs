//! End-to-end: a small vision transformer through IMP on the bundled MNIST, then the `attention`
//! branch on its levels (weights kept per part, the metric without attention).

mod common;

use common::{assert_clean_error, lottery, stdout, temp};

#[test]
fn vit_tickets_and_what_attention_contributes() {
    let dir = temp("vit");
    let exp = dir.join("exp");
    let o = lottery(&[
        "run",
        "--preset",
        "vit-mnist",
        "--model",
        "vit_1x16h2",
        "--iterations",
        "150",
        "--eval-every",
        "150",
        "--levels",
        "2",
        "--out",
        exp.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert!(stdout(&o).contains("reinit acc%"), "{}", stdout(&o));

    let o = lottery(&["branch", "attention", exp.to_str().unwrap()]);
    let text = stdout(&o);
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert!(
        text.contains("no_attention acc%") && text.contains("kept/attn"),
        "{text}"
    );
    let branches = std::fs::read_dir(exp.join("branches")).unwrap();
    let out = branches.map(|e| e.unwrap().path()).find(|p| {
        p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("attention-")
    });
    let out = out.expect("the branch's directory");
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    for l in s["levels"].as_array().unwrap() {
        let m = &l["measures"];
        let (with, without) = (
            l["ticket"]["test_accuracy"].as_f64().unwrap(),
            l["no_attention"]["test_accuracy"].as_f64().unwrap(),
        );
        let drop = m["attention_drop"].as_f64().unwrap();
        assert!((drop - (with - without)).abs() < 1e-12, "{l}");
        // One block: zeroing its attention alone is zeroing all of it.
        let one = l["no_attention_0"]["test_accuracy"].as_f64().unwrap();
        assert_eq!(one, without, "{l}");
        assert!((m["attention_drop/blocks.0"].as_f64().unwrap() - drop).abs() < 1e-12);
        for part in ["kept/attn", "kept/mlp", "kept/head"] {
            let k = m[part].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&k), "{part}: {k}");
        }
        // Level 0 keeps everything; IMP has pruned attention weights at the later levels.
        let level = l["level"].as_u64().unwrap();
        if level == 0 {
            assert_eq!(m["kept/attn"].as_f64().unwrap(), 1.0);
        } else {
            assert!(m["kept/attn"].as_f64().unwrap() < 1.0);
        }
    }
    for plot in ["attention_kept.svg", "attention_drop.png"] {
        assert!(out.join("plots").join(plot).is_file(), "{plot}");
    }

    // The last ticket deploys: compacted, and the same classifier as the masked network on
    // every MNIST test image; bench infer times it (PyTorch is not in the test environment).
    let lsm = dir.join("vit.lsm");
    let o = lottery(&[
        "compact",
        exp.to_str().unwrap(),
        "-o",
        lsm.to_str().unwrap(),
    ]);
    let text = stdout(&o);
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert!(
        text.contains("blocks.0.attn.qkv") && text.contains("blocks.0.mlp.fc2"),
        "{text}"
    );
    let o = lottery(&[
        "infer",
        lsm.to_str().unwrap(),
        "--reference",
        exp.to_str().unwrap(),
    ]);
    let text = stdout(&o);
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert!(text.contains("same class on 10000/10000"), "{text}");
    let o = lottery(&[
        "bench",
        "infer",
        lsm.to_str().unwrap(),
        "--calls",
        "20",
        "--json",
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let b: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(
        b["sparse"]["batch1_latency_us"].as_f64().unwrap() > 0.0,
        "{b}"
    );

    // A network without attention is refused, in one line.
    let mlp = dir.join("mlp");
    let o = lottery(&[
        "run",
        "--model",
        "mlp_20",
        "--iterations",
        "50",
        "--eval-every",
        "50",
        "--levels",
        "1",
        "--out",
        mlp.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let o = lottery(&["branch", "attention", mlp.to_str().unwrap()]);
    assert_clean_error(&o, &["attention studies networks with attention", "mlp_20"]);
    std::fs::remove_dir_all(&dir).unwrap();
}
