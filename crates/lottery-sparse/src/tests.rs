//! Compaction and kernels against a plain dense forward pass of the uncompacted network.

use crate::compact::{DenseKind, DenseLayer, DenseModel, compact};
use crate::error::Problem;
use crate::format::{self, Encoding};
use crate::infer::Engine;
use crate::model::Pool;

/// A small deterministic generator, so the tests need no dependency.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

/// The dense network computed the obvious way, example by example.
fn reference(m: &DenseModel, x: &[f32]) -> Vec<f32> {
    let mut a = x.to_vec();
    let [mut c, mut h, mut w] = m.input;
    for l in &m.layers {
        let act = |v: f32| if l.relu { v.max(0.0) } else { v };
        match l.kind {
            DenseKind::Linear => {
                let n = a.len();
                a = (0..l.outputs)
                    .map(|o| {
                        act(l.bias[o] + (0..n).map(|i| l.weight[o * n + i] * a[i]).sum::<f32>())
                    })
                    .collect();
            }
            DenseKind::Conv {
                kernel: [kh, kw],
                padding: [py, px],
                pool,
            } => {
                let (ho, wo) = (h + 2 * py + 1 - kh, w + 2 * px + 1 - kw);
                let mut y = vec![0.0; l.outputs * ho * wo];
                for o in 0..l.outputs {
                    for oy in 0..ho {
                        for ox in 0..wo {
                            let mut s = l.bias[o];
                            for ic in 0..c {
                                for ky in 0..kh {
                                    for kx in 0..kw {
                                        let (iy, ix) = (oy + ky, ox + kx);
                                        if iy < py || ix < px || iy - py >= h || ix - px >= w {
                                            continue;
                                        }
                                        s += l.weight[((o * c + ic) * kh + ky) * kw + kx]
                                            * a[(ic * h + iy - py) * w + ix - px];
                                    }
                                }
                            }
                            y[(o * ho + oy) * wo + ox] = act(s);
                        }
                    }
                }
                (c, h, w) = (l.outputs, ho, wo);
                if pool != Pool::None {
                    let (ph, pw) = (h / 2, w / 2);
                    let mut z = vec![0.0; c * ph * pw];
                    for ch in 0..c {
                        for py in 0..ph {
                            for px in 0..pw {
                                let at = |dy: usize, dx: usize| {
                                    y[(ch * h + 2 * py + dy) * w + 2 * px + dx]
                                };
                                let b = [at(0, 0), at(0, 1), at(1, 0), at(1, 1)];
                                z[(ch * ph + py) * pw + px] = match pool {
                                    Pool::Max => b.into_iter().fold(f32::NEG_INFINITY, f32::max),
                                    _ => b.iter().sum::<f32>() / 4.0,
                                };
                            }
                        }
                    }
                    (h, w) = (ph, pw);
                    y = z;
                }
                a = y;
            }
        }
    }
    a
}

fn layer(
    g: &mut Gen,
    kind: DenseKind,
    outputs: usize,
    fan_in: usize,
    keep: f32,
    relu: bool,
) -> DenseLayer {
    DenseLayer {
        kind,
        weight: (0..outputs * fan_in)
            .map(|_| {
                let v = g.next();
                if (g.next() + 1.0) / 2.0 < keep {
                    v
                } else {
                    0.0
                }
            })
            .collect(),
        bias: (0..outputs).map(|_| g.next() * 0.5).collect(),
        outputs,
        relu,
    }
}

/// An MLP with units that are unread, unfed (positive and negative bias) and inputs nobody reads.
fn mlp(seed: u64) -> DenseModel {
    let mut g = Gen(seed);
    let mut l1 = layer(&mut g, DenseKind::Linear, 12, 20, 0.3, true);
    let mut l2 = layer(&mut g, DenseKind::Linear, 8, 12, 0.4, true);
    let l3 = layer(&mut g, DenseKind::Linear, 4, 8, 0.6, false);
    // Unit 0 of layer 1: fed by nothing, positive bias → folded. Unit 1: negative → dropped.
    l1.weight[..20].fill(0.0);
    l1.bias[0] = 0.7;
    l1.weight[20..40].fill(0.0);
    l1.bias[1] = -0.3;
    // Unit 2 of layer 1: read by nothing.
    for o in 0..8 {
        l2.weight[o * 12 + 2] = 0.0;
    }
    // Input 5 read by nothing.
    for o in 0..12 {
        l1.weight[o * 20 + 5] = 0.0;
    }
    // Unit 3 of layer 2: its only inputs were unit 0 (folded), so it becomes constant too.
    l2.weight[3 * 12..4 * 12].fill(0.0);
    l2.weight[3 * 12] = 0.9;
    DenseModel {
        source: "test_mlp".into(),
        input: [1, 4, 5],
        layers: vec![l1, l2, l3],
    }
}

fn convnet(seed: u64) -> DenseModel {
    convnet_pooled(seed, Pool::Max)
}

/// Two convolutions, the second followed by `pool`, then two linear layers.
fn convnet_pooled(seed: u64, pool: Pool) -> DenseModel {
    let mut g = Gen(seed);
    let conv = |pool| DenseKind::Conv {
        kernel: [3, 3],
        padding: [1, 1],
        pool,
    };
    let mut c1 = layer(&mut g, conv(Pool::None), 5, 2 * 9, 0.5, true);
    let mut c2 = layer(&mut g, conv(pool), 4, 5 * 9, 0.4, true);
    let mut f1 = layer(&mut g, DenseKind::Linear, 6, 4 * 4 * 4, 0.3, true);
    let f2 = layer(&mut g, DenseKind::Linear, 3, 6, 0.8, false);
    // Channel 1 of conv 1: unfed with a positive bias, before a padded conv → must stay.
    c1.weight[9 * 2..9 * 4].fill(0.0);
    c1.bias[1] = 0.4;
    // Channel 2 of conv 1: unread.
    for o in 0..4 {
        c2.weight[(o * 5 + 2) * 9..(o * 5 + 3) * 9].fill(0.0);
    }
    // Channel 3 of conv 2: unfed, positive bias, before the flatten → folded.
    c2.weight[3 * 45..4 * 45].fill(0.0);
    c2.bias[3] = 0.25;
    // Unit 4 of fc 1: unread.
    f1.weight
        .iter_mut()
        .skip(4 * 64)
        .take(64)
        .for_each(|v| *v = 0.0);
    let mut f2 = f2;
    for o in 0..3 {
        f2.weight[o * 6 + 4] = 0.0;
    }
    DenseModel {
        source: "test_conv".into(),
        input: [2, 8, 8],
        layers: vec![c1, c2, f1, f2],
    }
}

/// The time-series CNN's shape: `1 × 5` convolutions with padding `0 × 2` on `[3, 1, 11]`
/// windows (a `Conv1d` stack), then a linear head without ReLU.
fn cnn1d(seed: u64) -> DenseModel {
    let mut g = Gen(seed);
    let conv = DenseKind::Conv {
        kernel: [1, 5],
        padding: [0, 2],
        pool: Pool::None,
    };
    let mut c1 = layer(&mut g, conv, 4, 3 * 5, 0.5, true);
    let mut c2 = layer(&mut g, conv, 4, 4 * 5, 0.5, true);
    let head = layer(&mut g, DenseKind::Linear, 2, 4 * 11, 0.4, false);
    // Channel 0 of conv 1 unread, channel 3 of conv 2 unfed: both leave.
    for o in 0..4 {
        c2.weight[(o * 4) * 5..(o * 4 + 1) * 5].fill(0.0);
    }
    c2.weight[3 * 20..4 * 20].fill(0.0);
    c2.bias[3] = -0.5;
    c1.bias[1] = 0.1;
    DenseModel {
        source: "cnn1d_2x4".into(),
        input: [3, 1, 11],
        layers: vec![c1, c2, head],
    }
}

/// A two-block vision transformer on `[1, 4, 4]` images with 2×2 patches (5 tokens of 4
/// features, 2 heads), its matrices half pruned, built directly as compact layers.
fn tiny_vit(seed: u64) -> crate::CompactModel {
    use crate::{BlockLayer, EmbedLayer, Norm, Projection, ReadoutLayer};
    let mut g = Gen(seed);
    let mut projection = |rows: usize, cols: usize| {
        let l = layer(&mut g, DenseKind::Linear, rows, cols, 0.5, false);
        Projection {
            weights: crate::Csr::from_dense(rows, cols, &l.weight).unwrap(),
            bias: l.bias,
        }
    };
    let norm = |shift: f32| Norm {
        gamma: vec![1.0 + shift, 0.9, 1.1, 1.0],
        beta: vec![shift, -0.1, 0.0, 0.2],
        eps: 1e-6,
    };
    let embed = projection(4, 4);
    let mut layers = vec![crate::Layer::Embed(EmbedLayer {
        channels: 1,
        height: 4,
        width: 4,
        patch: 2,
        proj: embed,
        class_token: vec![0.1, -0.2, 0.3, 0.0],
        position: (0..20).map(|i| (i as f32 * 0.37).sin() * 0.1).collect(),
    })];
    for b in 0..2 {
        layers.push(crate::Layer::Block(Box::new(BlockLayer {
            heads: 2,
            norm1: norm(0.1 * b as f32),
            qkv: projection(12, 4),
            proj: projection(4, 4),
            norm2: norm(-0.1),
            fc1: projection(8, 4),
            fc2: projection(4, 8),
            hidden_kept: (0..8).collect(),
        })));
    }
    layers.push(crate::Layer::Readout(ReadoutLayer { norm: norm(0.0) }));
    let head = projection(3, 4);
    layers.push(crate::Layer::Linear(crate::LinearLayer {
        gather: None,
        weights: head.weights,
        bias: head.bias,
        relu: false,
        kept: vec![0, 1, 2],
    }));
    crate::CompactModel {
        source: "vit_2x4h2".into(),
        input: [1, 4, 4],
        layers,
    }
}

fn inputs(n: usize, len: usize, seed: u64) -> Vec<f32> {
    let mut g = Gen(seed);
    (0..n * len).map(|_| g.next()).collect()
}

fn assert_close(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len());
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!(
            (a - b).abs() <= 1e-5 * b.abs().max(1.0),
            "logit {i}: {a} vs {b}"
        );
    }
}

#[test]
fn compaction_removes_dead_units_and_keeps_the_function() {
    let dense = mlp(1);
    let (model, report) = compact(&dense).unwrap();
    assert_eq!(report[0].units_before, 12);
    // Units 0 (folded), 1 (zero constant) and 2 (unread) go.
    assert!(report[0].units_after <= 9, "{report:?}");
    assert!(report[0].folded >= 1);
    assert!(report[0].inputs_dropped >= 1);
    assert_eq!(report[2].units_after, 4, "logits are never removed");
    assert!(!model.layers[0].kept().contains(&0));
    assert!(!model.layers[0].kept().contains(&2));
    assert!(
        Engine::new(model.clone())
            .unwrap()
            .forward(&[], 0)
            .is_empty()
    );
    for batch in [1, 3, 64, 70, 130] {
        let x = inputs(batch, 20, batch as u64);
        let want: Vec<f32> = x.chunks(20).flat_map(|e| reference(&dense, e)).collect();
        for threads in [1, 2] {
            for simd in [false, true] {
                let engine = Engine::new(model.clone())
                    .unwrap()
                    .with_threads(threads)
                    .with_simd(simd);
                assert_close(&engine.forward(&x, batch), &want);
            }
        }
    }
}

#[test]
fn compaction_of_convolutions_keeps_the_function() {
    for pool in [Pool::Max, Pool::Avg] {
        convolutions_keep_the_function(pool);
    }
}

fn convolutions_keep_the_function(pool: Pool) {
    let dense = convnet_pooled(7, pool);
    let (model, report) = compact(&dense).unwrap();
    let kept0 = model.layers[0].kept();
    assert!(
        kept0.contains(&1),
        "a constant channel before a padded conv stays"
    );
    assert!(!kept0.contains(&2), "an unread channel goes");
    assert!(
        !model.layers[1].kept().contains(&3),
        "a constant channel before flatten folds"
    );
    assert_eq!(report[1].folded, 1);
    assert!(!model.layers[2].kept().contains(&4));
    let len = 2 * 8 * 8;
    for batch in [1, 5, 66] {
        let x = inputs(batch, len, 40 + batch as u64);
        let want: Vec<f32> = x.chunks(len).flat_map(|e| reference(&dense, e)).collect();
        for simd in [false, true] {
            let engine = Engine::new(model.clone())
                .unwrap()
                .with_threads(2)
                .with_simd(simd);
            assert_close(&engine.forward(&x, batch), &want);
        }
    }
}

#[test]
fn one_dimensional_convolutions_keep_the_function() {
    let dense = cnn1d(11);
    let (model, report) = compact(&dense).unwrap();
    assert!(
        !model.layers[0].kept().contains(&0),
        "an unread channel goes"
    );
    assert!(!model.layers[1].kept().contains(&3), "a dead channel goes");
    assert_eq!(report[2].units_after, 2);
    let bytes = format::to_bytes(&model);
    assert_eq!(bytes[HEADER_AND_SOURCE + "cnn1d_2x4".len()], 3, "kind 3");
    assert_eq!(format::from_bytes(&bytes).unwrap(), model);
    let len = 3 * 11;
    for batch in [1, 7, 70] {
        let x = inputs(batch, len, 60 + batch as u64);
        let want: Vec<f32> = x.chunks(len).flat_map(|e| reference(&dense, e)).collect();
        for simd in [false, true] {
            let engine = Engine::new(model.clone())
                .unwrap()
                .with_threads(2)
                .with_simd(simd);
            assert_close(&engine.forward(&x, batch), &want);
        }
    }
}

/// Bytes before the first layer's kind: the header, the source's length, then (after the
/// source itself) the input shape and the layer count.
const HEADER_AND_SOURCE: usize = 24 + 2 + 12 + 4;

#[test]
fn files_round_trip_in_every_encoding() {
    for dense in [mlp(3), convnet(4), convnet_pooled(4, Pool::Avg), cnn1d(4)] {
        let (model, _) = compact(&dense).unwrap();
        let bytes = format::to_bytes(&model);
        assert_eq!(format::from_bytes(&bytes).unwrap(), model);
    }
    // Each encoding written and read back at several densities; the writer's choice is the
    // smallest.
    let mut g = Gen(9);
    for keep in [0.02, 0.3, 0.99, 1.0] {
        let dense = DenseModel {
            source: "bands".into(),
            input: [1, 1, 300],
            layers: vec![layer(&mut g, DenseKind::Linear, 40, 300, keep, false)],
        };
        // Compaction would drop unread inputs; build the layer directly instead.
        let (mut model, _) = compact(&dense).unwrap();
        if let crate::Layer::Linear(l) = &mut model.layers[0] {
            l.gather = None;
            l.weights = crate::Csr::from_dense(40, 300, &dense.layers[0].weight).unwrap();
        }
        let m = model.layers[0].matrices()[0].clone();
        let all = [
            Encoding::Dense,
            Encoding::Csr16,
            Encoding::Csr32,
            Encoding::Bitmask,
            Encoding::Packed,
        ];
        for enc in all {
            let bytes = format::write(&model, Some(enc));
            assert_eq!(
                format::from_bytes(&bytes).unwrap(),
                model,
                "{enc:?} at {keep}"
            );
        }
        let best = Encoding::best(&m);
        assert!(all.iter().all(|e| best.bytes(&m) <= e.bytes(&m)), "{keep}");
        assert_eq!(format::to_bytes(&model), format::write(&model, Some(best)));
    }
}

#[test]
fn trained_like_values_pack_smaller() {
    // Weights of similar magnitude share sign-exponent bytes, which deflate packs.
    let mut g = Gen(21);
    let mut l = layer(&mut g, DenseKind::Linear, 64, 256, 0.1, false);
    l.weight.iter_mut().for_each(|w| *w *= 0.05);
    let dense = DenseModel {
        source: "packed".into(),
        input: [1, 1, 256],
        layers: vec![l],
    };
    let (model, _) = compact(&dense).unwrap();
    let m = model.layers[0].matrices()[0];
    assert_eq!(Encoding::best(m), Encoding::Packed);
    assert!(Encoding::Packed.bytes(m) < Encoding::Bitmask.bytes(m) * 9 / 10);
    let bytes = format::to_bytes(&model);
    assert_eq!(format::from_bytes(&bytes).unwrap(), model);
    // A packed stream that inflates to the wrong length is refused, checksum fixed or not.
    let at = bytes.len() - 3;
    let mut bad = bytes.clone();
    bad[at] ^= 0x55;
    let err = format::from_bytes(&reseal(bad)).unwrap_err();
    assert!(
        err.to_string().contains("packed") || err.to_string().contains("bitmask"),
        "{err}"
    );
}

#[test]
fn damaged_files_are_refused_not_panicked_on() {
    for bytes in [
        format::to_bytes(&compact(&convnet(5)).unwrap().0),
        format::to_bytes(&tiny_vit(4)),
    ] {
        damaged_bytes_are_refused(&bytes);
    }
}

fn damaged_bytes_are_refused(bytes: &[u8]) {
    for cut in 0..bytes.len() {
        assert!(
            format::from_bytes(&bytes[..cut]).is_err(),
            "truncated at {cut}"
        );
    }
    for at in 0..bytes.len() {
        for bit in [0, 3, 7] {
            let mut b = bytes.to_vec();
            b[at] ^= 1 << bit;
            assert!(
                format::from_bytes(&b).is_err(),
                "bit {bit} of byte {at} flipped"
            );
        }
    }
    assert_eq!(
        format::from_bytes(b"PK\x03\x04 not a model")
            .unwrap_err()
            .problem(),
        Some(&Problem::NotLsm)
    );
}

/// Recomputes the checksum after an edit, as a careless hand-editor's tool would.
fn reseal(mut b: Vec<u8>) -> Vec<u8> {
    let crc = crate::crc32::crc32(&b[24..]);
    b[20..24].copy_from_slice(&crc.to_le_bytes());
    b
}

#[test]
fn hand_edits_with_a_fixed_checksum_are_caught_by_validation() {
    let (model, _) = compact(&mlp(2)).unwrap();
    let bytes = format::to_bytes(&model);
    // Offset of layer 0's first gather index: header, source, input, count, tag, gather count.
    let gather = 24 + 2 + "test_mlp".len() + 12 + 4 + 4 + 4;
    let mut b = bytes.clone();
    b[gather..gather + 4].copy_from_slice(&999u32.to_le_bytes());
    let err = format::from_bytes(&reseal(b)).unwrap_err();
    assert!(err.to_string().contains("gathers an index beyond"), "{err}");
    // One more layer than the file holds.
    let count = 24 + 2 + "test_mlp".len() + 12;
    let mut b = bytes.clone();
    b[count] += 1;
    let err = format::from_bytes(&reseal(b)).unwrap_err();
    assert!(
        matches!(err.problem(), Some(Problem::Truncated { .. })),
        "{err}"
    );
    // A value turned into NaN.
    let mut b = bytes.clone();
    let at = b.len() - 4;
    b[at..].copy_from_slice(&f32::NAN.to_le_bytes());
    let err = format::from_bytes(&reseal(b)).unwrap_err();
    assert!(err.to_string().contains("NaN"), "{err}");
    // The writer refuses what the reader would.
    let mut edited = model;
    if let crate::Layer::Linear(l) = &mut edited.layers[2] {
        l.bias[0] = f32::NAN;
    }
    let path = std::env::temp_dir().join(format!("lsm-test-{}.lsm", std::process::id()));
    assert!(format::save(&edited, &path).is_err());
    assert!(!path.exists());
}
