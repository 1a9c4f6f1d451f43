//! Training under a mask is exact: pruned weights are 0.0 before and after every step, with
//! dense layers and with sparse products.

use burn::tensor::Device;
use lottery::data::{self, DatasetKind};
use lottery::masks::MaskSet;
use lottery::models::{Architecture, Network, init};
use lottery::rng::Rng;
use lottery::train::{Length, OptimizerConfig, Schedule, TrainConfig, Trainer};

fn random_mask(set: &mut MaskSet, keep: f64, seed: u64) {
    let mut rng = Rng::new(seed);
    for m in set.masks.values_mut() {
        for x in m.data.iter_mut() {
            *x = if rng.uniform() < keep { 1.0 } else { 0.0 };
        }
    }
}

/// LeNet-300-100 from `seed` (Glorot-normal) and a random mask keeping a tenth of each weight.
fn lenet_keeping_a_tenth(seed: u64, mask_seed: u64, device: &Device) -> (Network, MaskSet) {
    let net = init::initialise(
        Architecture::parse("lenet_300_100")
            .unwrap()
            .build([1, 28, 28], 10, device)
            .unwrap(),
        init::InitScheme::GlorotNormal,
        seed,
    );
    let mut mask = MaskSet::ones(&net.shapes(), &net.prunable());
    random_mask(&mut mask, 0.1, mask_seed);
    (net, mask)
}

#[test]
fn pruned_weights_stay_exactly_zero_under_every_optimizer() {
    let splits = data::load(DatasetKind::MNIST, &DatasetKind::MNIST.default_dir(), 5000).unwrap();
    let device = Device::flex();
    let optimizers = [
        OptimizerConfig::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-3,
        },
        OptimizerConfig::sgd(0.9, true, 5e-4),
        OptimizerConfig::sgd(0.0, false, 0.0),
    ];
    for (optimizer, sparse_max_density) in optimizers
        .iter()
        .flat_map(|o| [(o.clone(), 0.0), (o.clone(), 0.2)])
    {
        let (net, mask) = lenet_keeping_a_tenth(1, 2, &device);
        let kept = mask.kept();
        assert!((mask.density() - 0.1).abs() < 0.01);
        let cfg = TrainConfig {
            optimizer: optimizer.clone(),
            lr: 0.05,
            schedule: Schedule::constant(),
            batch_size: 60,
            length: Length::Iterations(25),
            eval_every: 100,
            data_seed: 3,
            augment: false,
            sparse_max_density,
        };
        let mut trainer = Trainer::new(net, &splits, Some(&mask), &cfg, &device).unwrap();
        let expected: &[&str] = if sparse_max_density > 0.0 {
            &["fc1.weight", "fc2.weight", "fc3.weight"]
        } else {
            &[]
        };
        assert_eq!(trainer.sparse_layers(), expected);
        let check = |t: &mut Trainer, when: &str| {
            let dict = t.network().state_dict();
            let mut nonzero = 0;
            for (name, m) in &mask.masks {
                let w = &dict[name];
                for (i, (&wi, &mi)) in w.data.iter().zip(&m.data).enumerate() {
                    assert!(
                        mi == 1.0 || wi == 0.0,
                        "{optimizer:?} (sparse below {sparse_max_density}) {when}: {name}[{i}] = {wi} though pruned"
                    );
                    nonzero += (wi != 0.0) as usize;
                }
            }
            assert!(nonzero <= kept);
            nonzero
        };
        check(&mut trainer, "before training");
        let mut moved = 0;
        for step in 1..=25 {
            trainer.step().unwrap();
            moved = check(&mut trainer, &format!("after step {step}"));
        }
        assert!(
            moved > kept * 9 / 10,
            "surviving weights are trained, not frozen at zero"
        );
    }
}

#[test]
fn state_dict_uses_pytorch_names_and_layouts_and_round_trips() {
    let device = Device::flex();
    let net = Architecture::parse("lenet_300_100")
        .unwrap()
        .build([1, 28, 28], 10, &device)
        .unwrap();
    let net = init::initialise(net, init::InitScheme::KaimingNormal, 9);
    let dict = net.state_dict();
    let shapes: Vec<(String, Vec<usize>)> = dict
        .iter()
        .map(|(k, v)| (k.clone(), v.shape.clone()))
        .collect();
    assert_eq!(
        shapes,
        vec![
            ("fc1.bias".into(), vec![300]),
            ("fc1.weight".into(), vec![300, 784]),
            ("fc2.bias".into(), vec![100]),
            ("fc2.weight".into(), vec![100, 300]),
            ("fc3.bias".into(), vec![10]),
            ("fc3.weight".into(), vec![10, 100]),
        ]
    );
    assert_eq!(
        net.prunable(),
        vec!["fc1.weight", "fc2.weight", "fc3.weight"]
    );
    assert_eq!(net.output_layer(), "fc3.weight");
    let fresh = Architecture::parse("lenet_300_100")
        .unwrap()
        .build([1, 28, 28], 10, &device)
        .unwrap();
    let loaded = fresh.load_state_dict(&dict).unwrap();
    assert_eq!(loaded.state_dict(), dict);
    let mut wrong = dict.clone();
    wrong.get_mut("fc2.weight").unwrap().shape = vec![300, 100];
    let e = net.load_state_dict(&wrong).unwrap_err().to_string();
    assert!(e.contains("fc2.weight") && e.contains("[300, 100]"), "{e}");
}

#[test]
fn every_registered_architecture_builds_and_runs() {
    let device = Device::flex();
    for (name, input, prunable) in [
        ("mlp_20_10", [1, 28, 28], 3),
        ("conv2", [3, 32, 32], 5),
        ("conv4", [3, 32, 32], 7),
        ("conv6", [3, 32, 32], 9),
        ("vgg11", [3, 32, 32], 9),
        ("vgg19", [3, 32, 32], 17),
        ("resnet20", [3, 32, 32], 22),
    ] {
        let net = Architecture::parse(name)
            .unwrap()
            .build(input, 10, &device)
            .unwrap();
        let net = init::initialise(net, init::InitScheme::KaimingNormal, 1);
        assert_eq!(
            net.prunable().len(),
            prunable,
            "{name}: {:?}",
            net.prunable()
        );
        let x = burn::tensor::Tensor::<4>::ones([2, input[0], input[1], input[2]], &device);
        assert_eq!(net.forward(x).dims(), [2, 10], "{name}");
        let dict = net.state_dict();
        assert!(
            dict.keys()
                .all(|k| !k.contains("..") && !k.starts_with('.')),
            "{name}: {:?}",
            dict.keys()
        );
    }
}

/// Sparse products train the same network as the dense masked layers: 200 Adam steps of a
/// LeNet with a tenth of its weights, both ways from the same start and data order.
#[test]
fn sparse_products_train_what_dense_masked_layers_train() {
    let splits = data::load(DatasetKind::MNIST, &DatasetKind::MNIST.default_dir(), 5000).unwrap();
    let device = Device::flex();
    let (net, mask) = lenet_keeping_a_tenth(5, 6, &device);
    let mut cfg = TrainConfig::lenet_paper(200);
    cfg.sparse_max_density = 0.0;
    let mut dense = Trainer::new(net.clone(), &splits, Some(&mask), &cfg, &device).unwrap();
    cfg.sparse_max_density = 0.2;
    let mut sparse = Trainer::new(net, &splits, Some(&mask), &cfg, &device).unwrap();
    assert!(dense.sparse_layers().is_empty());
    assert_eq!(sparse.sparse_layers().len(), 3);
    for _ in 0..200 {
        let (a, b) = (dense.step().unwrap(), sparse.step().unwrap());
        assert!(
            (a - b).abs() <= 1e-3 * a.abs().max(1.0),
            "losses {a} vs {b}"
        );
    }
    let (a, b) = (dense.network().state_dict(), sparse.network().state_dict());
    let mut worst = 0.0f32;
    for (name, t) in &a {
        for (x, y) in t.data.iter().zip(&b[name].data) {
            worst = worst.max((x - y).abs());
        }
    }
    eprintln!("largest weight difference after 200 steps: {worst:e}");
    // Adam's steps are ~1.2e-3 each; rounding differences move a weight by far less than one.
    assert!(worst < 1e-5, "largest weight difference {worst}");
    let (_, acc_dense) = lottery::train::eval::evaluate_valid(dense.network(), &splits.test);
    let (_, acc_sparse) = lottery::train::eval::evaluate_valid(sparse.network(), &splits.test);
    assert!(acc_dense > 0.8, "the dense masked run learned: {acc_dense}");
    assert!(
        (acc_dense - acc_sparse).abs() <= 0.001,
        "test accuracy {acc_dense} vs {acc_sparse}"
    );
}
