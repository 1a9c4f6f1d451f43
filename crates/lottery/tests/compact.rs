//! A compacted ticket computes what the dense masked network computes: logits within 1e-4
//! (relative) and the same class on every MNIST test image.

use burn::tensor::Device;
use lottery::data::{self, Dataset, DatasetKind};
use lottery::deploy;
use lottery::masks::MaskSet;
use lottery::models::{Architecture, Network, init};
use lottery::prune::{self, PruneConfig};
use lottery::train::{self, TrainConfig};
use lottery_sparse::Engine;

fn argmax(row: &[f32]) -> usize {
    (0..row.len()).fold(0, |b, i| if row[i] > row[b] { i } else { b })
}

/// Compares compact and dense logits; returns the largest relative difference.
fn agree(sparse: &[f32], dense: &[f32], classes: usize) -> f32 {
    assert_eq!(sparse.len(), dense.len());
    let mut worst = 0.0f32;
    for (i, (s, d)) in sparse
        .chunks(classes)
        .zip(dense.chunks(classes))
        .enumerate()
    {
        assert_eq!(argmax(s), argmax(d), "example {i}: {s:?} vs {d:?}");
        for (a, b) in s.iter().zip(d) {
            worst = worst.max((a - b).abs() / b.abs().max(1.0));
        }
    }
    worst
}

fn masked(net: Network, mask: &MaskSet) -> Network {
    let mut dict = net.state_dict();
    mask.apply(&mut dict);
    net.load_state_dict(&dict).unwrap()
}

#[test]
fn a_lenet_ticket_compacts_to_the_same_classifier_on_every_test_image() {
    let splits = data::load(DatasetKind::MNIST, &DatasetKind::MNIST.default_dir(), 5000).unwrap();
    let device = Device::flex();
    let net = init::initialise(
        Architecture::parse("lenet_300_100")
            .unwrap()
            .build([1, 28, 28], 10, &device)
            .unwrap(),
        init::InitScheme::GlorotNormal,
        0,
    );
    let mut cfg = TrainConfig::lenet_paper(400);
    cfg.eval_every = 400;
    let trained = train::train(
        net,
        &splits,
        None,
        &cfg,
        &device,
        train::Segment::default(),
        &mut train::Silent,
    )
    .unwrap()
    .network;
    // One shot to 3.5% of the hidden weights, the output layer at 20%: the LTH paper's 3.6% point.
    let ones = MaskSet::ones(&trained.shapes(), &trained.prunable());
    let pcfg = PruneConfig {
        output_rate: Some(0.8),
        ..PruneConfig::layerwise(0.965)
    };
    let mask = prune_once(&trained, &ones, &pcfg, 0);
    assert!(mask.density() < 0.036, "{}", mask.density());
    let net = masked(trained, &mask);

    let (model, report) = deploy::compact(&net, Some(&mask), "lenet_300_100", [1, 28, 28]).unwrap();
    // Weights into units nothing reads, and out of constant units, go with those units.
    assert!(model.nnz() <= mask.kept() && model.nnz() > mask.kept() * 9 / 10);
    assert_eq!(report.len(), 3);

    let test = &splits.test;
    let n = test.len();
    let dense = net.logits(test);
    for threads in [1, 2] {
        let sparse = Engine::new(model.clone())
            .unwrap()
            .with_threads(threads)
            .forward(&test.images, n);
        let worst = agree(&sparse, &dense, 10);
        assert!(worst <= 1e-4, "largest relative logit difference {worst}");
    }
    // Batch one, the latency path, on a slice of the set.
    let engine = Engine::new(model.clone()).unwrap();
    let per = test.example_len();
    let one: Vec<f32> = (0..200)
        .flat_map(|i| engine.forward(&test.images[i * per..(i + 1) * per], 1))
        .collect();
    assert!(agree(&one, &dense[..2000], 10) <= 1e-4);
}

#[test]
fn a_pruned_conv_net_compacts_to_the_same_function() {
    let splits = data::load(DatasetKind::MNIST, &DatasetKind::MNIST.default_dir(), 5000).unwrap();
    let device = Device::flex();
    let net = init::initialise(
        Architecture::parse("conv2")
            .unwrap()
            .build([1, 28, 28], 10, &device)
            .unwrap(),
        init::InitScheme::GlorotNormal,
        3,
    );
    let mut mask = MaskSet::ones(&net.shapes(), &net.prunable());
    let random = PruneConfig {
        criterion: "random".into(),
        ..PruneConfig::layerwise(0.9)
    };
    mask = prune_once(&net, &mask, &random, 5);
    // Starve some channels of conv1 and cut all reads of some channels of conv2, so compaction
    // has channels to drop on both sides.
    let conv1 = mask.masks.get_mut("conv1.weight").unwrap();
    conv1.data[..9 * 5].fill(0.0);
    let conv2 = mask.masks.get_mut("conv2.weight").unwrap();
    let per_out = 64 * 9;
    for o in 0..64 {
        conv2.data[o * per_out + 9 * 10..o * per_out + 9 * 12].fill(0.0);
    }
    let net = masked(net, &mask);
    let (model, report) = deploy::compact(&net, Some(&mask), "conv2", [1, 28, 28]).unwrap();
    assert!(report[0].units_after < 64, "{report:?}");
    let n = 64;
    let first = Dataset {
        images: splits.test.images[..n * 784].to_vec(),
        targets: splits.test.targets.subset(&(0..n).collect::<Vec<_>>()),
        shape: splits.test.shape,
    };
    let dense = &net.logits(&first);
    let sparse = Engine::new(model)
        .unwrap()
        .forward(&splits.test.images[..n * 784], n);
    let worst = agree(&sparse, dense, 10);
    assert!(worst <= 1e-4, "largest relative logit difference {worst}");
}

#[test]
fn a_pruned_vgg_with_batch_norm_compacts_to_the_same_function() {
    let device = Device::flex();
    let net = init::initialise(
        Architecture::parse("vgg11")
            .unwrap()
            .build([3, 32, 32], 10, &device)
            .unwrap(),
        init::InitScheme::KaimingNormal,
        4,
    );
    // Batch norm as training leaves it: scales, shifts and running statistics far from 1 and 0,
    // so a wrong fold cannot hide.
    let mut rng = lottery::rng::Rng::new(8);
    let mut dict = net.state_dict();
    for (name, t) in dict.iter_mut() {
        let draw = |rng: &mut lottery::rng::Rng, lo: f64, hi: f64| lo + (hi - lo) * rng.uniform();
        let range = if !name.starts_with("bn") {
            continue;
        } else if name.ends_with(".weight") {
            (0.5, 1.5)
        } else if name.ends_with(".running_var") {
            (0.5, 2.0)
        } else {
            (-0.3, 0.3)
        };
        t.data
            .iter_mut()
            .for_each(|x| *x = draw(&mut rng, range.0, range.1) as f32);
    }
    let net = net.load_state_dict(&dict).unwrap();
    let mut mask = MaskSet::ones(&net.shapes(), &net.prunable());
    let random = PruneConfig {
        criterion: "random".into(),
        ..PruneConfig::layerwise(0.8)
    };
    mask = prune_once(&net, &mask, &random, 6);
    let net = masked(net, &mask);
    let (model, _) = deploy::compact(&net, Some(&mask), "vgg11", [3, 32, 32]).unwrap();

    let n = 8;
    let mut rng = lottery::rng::Rng::new(9);
    let images = (0..n * 3 * 32 * 32).map(|_| rng.normal() as f32).collect();
    let set = Dataset::classified(images, vec![0; n], [3, 32, 32], 10);
    let dense = net.logits(&set);
    let sparse = Engine::new(model).unwrap().forward(&set.images, n);
    let worst = agree(&sparse, &dense, 10);
    assert!(worst <= 1e-4, "largest relative logit difference {worst}");
}

#[test]
fn a_pruned_vision_transformer_compacts_to_the_same_function() {
    let device = Device::flex();
    let net = init::initialise(
        Architecture::parse("vit_2x16h2")
            .unwrap()
            .build([1, 28, 28], 10, &device)
            .unwrap(),
        init::InitScheme::GlorotNormal,
        2,
    );
    // Norm scales and shifts and every bias away from 1 and 0, so a misplaced one shows.
    let mut rng = lottery::rng::Rng::new(12);
    let mut dict = net.state_dict();
    for (name, t) in dict.iter_mut() {
        let (lo, hi) = if name.contains("norm") && name.ends_with(".weight") {
            (0.5, 1.5)
        } else if name.ends_with(".bias") {
            (-0.3, 0.3)
        } else {
            continue;
        };
        (t.data.iter_mut()).for_each(|x| *x = (lo + (hi - lo) * rng.uniform()) as f32);
    }
    let net = net.load_state_dict(&dict).unwrap();
    let mut mask = MaskSet::ones(&net.shapes(), &net.prunable());
    let random = PruneConfig {
        criterion: "random".into(),
        ..PruneConfig::global(0.8)
    };
    mask = prune_once(&net, &mask, &random, 3);
    // Block 0: hidden units 0–2 unfed (their constant GELU(bias) folds into fc2's bias), 3–4
    // unread; both kinds leave.
    let fc1 = mask.masks.get_mut("blocks.0.mlp.fc1.weight").unwrap();
    fc1.data[..3 * 16].fill(0.0);
    let fc2 = mask.masks.get_mut("blocks.0.mlp.fc2.weight").unwrap();
    for o in 0..16 {
        fc2.data[o * 32 + 3..o * 32 + 5].fill(0.0);
    }
    let net = masked(net, &mask);
    let (model, report) = deploy::compact(&net, Some(&mask), "vit_2x16h2", [1, 28, 28]).unwrap();
    let fc1 = report
        .iter()
        .find(|r| r.name == "blocks.0.mlp.fc1")
        .unwrap();
    assert!(fc1.units_after <= 32 - 5 && fc1.folded >= 1, "{report:?}");
    assert_eq!(report.len(), 1 + 2 * 4 + 1, "{report:?}");
    assert_eq!(
        model.nnz(),
        report.iter().map(|r| r.live_weights).sum::<usize>()
    );
    let bytes = lottery_sparse::format::to_bytes(&model);
    assert_eq!(lottery_sparse::format::from_bytes(&bytes).unwrap(), model);

    let n = 40;
    let mut rng = lottery::rng::Rng::new(13);
    let images = (0..n * 784).map(|_| rng.normal() as f32).collect();
    let set = Dataset::classified(images, vec![0; n], [1, 28, 28], 10);
    let dense = net.logits(&set);
    for threads in [1, 2] {
        for simd in [false, true] {
            let engine = Engine::new(model.clone())
                .unwrap()
                .with_threads(threads)
                .with_simd(simd);
            let worst = agree(&engine.forward(&set.images, n), &dense, 10);
            assert!(worst <= 1e-4, "largest relative logit difference {worst}");
        }
    }
    let engine = Engine::new(model).unwrap();
    let one = engine.forward(&set.images[..784], 1);
    assert!(agree(&one, &dense[..10], 10) <= 1e-4);
}

/// `net`'s weights pruned once from `mask` under `cfg`.
fn prune_once(
    net: &lottery::models::Network,
    mask: &MaskSet,
    cfg: &PruneConfig,
    seed: u64,
) -> MaskSet {
    let weights = net.state_dict();
    let ctx = prune::Context {
        trained: &weights,
        rewind: None,
        mask,
        gradients: None,
        seed,
    };
    prune::prune(&ctx, cfg, &net.output_layer()).unwrap()
}
