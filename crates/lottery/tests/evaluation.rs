//! Evaluating through the sparse kernels gives what burn's dense forward gives, and training
//! takes that path exactly when the mask is sparse enough and the architecture compacts.

use burn::module::Module;
use burn::tensor::Device;
use lottery::data::{self, Dataset, DatasetKind};
use lottery::masks::MaskSet;
use lottery::models::{Architecture, Network, init};
use lottery::rng::Rng;
use lottery::train::eval::{EvalPath, SPARSE_BELOW_DENSITY, SPARSE_BELOW_DENSITY_OVER_BACKGROUND};
use lottery::train::{self, Silent, TrainConfig};

fn network(name: &str, input: [usize; 3]) -> Network {
    let arch = Architecture::parse(name).unwrap();
    init::initialise(
        arch.build(input, 10, &Device::flex()).unwrap(),
        init::InitScheme::GlorotNormal,
        1,
    )
}

fn random_mask(net: &Network, keep: f64, seed: u64) -> MaskSet {
    let mut set = MaskSet::ones(&net.shapes(), &net.prunable());
    let mut rng = Rng::new(seed);
    for m in set.masks.values_mut() {
        for x in m.data.iter_mut() {
            *x = if rng.uniform() < keep { 1.0 } else { 0.0 };
        }
    }
    set
}

#[test]
fn a_sparse_lenet_is_evaluated_sparse_and_agrees_with_burn() {
    let splits = data::load(DatasetKind::MNIST, &DatasetKind::MNIST.default_dir(), 5000).unwrap();
    let net = network("lenet_300_100", [1, 28, 28]);
    let mask = random_mask(&net, 0.1, 2);
    assert_eq!(
        EvalPath::choose(&net, Some(&mask), &Device::flex(), &splits.test),
        EvalPath::Sparse
    );
    let mut cfg = TrainConfig::lenet_paper(300);
    cfg.eval_every = 300;
    let out = train::train(
        net,
        &splits,
        Some(&mask),
        &cfg,
        &Device::flex(),
        lottery::train::Segment::default(),
        &mut Silent,
    )
    .unwrap();
    let record = out.last();
    // A trained network, so the comparison is between meaningful logits.
    assert!(record.test_accuracy > 0.85, "{record:?}");

    let dense = out.network.valid();
    for (set, loss, accuracy) in [
        (&splits.test, record.test_loss, record.test_accuracy),
        (
            &splits.val,
            record.val_loss.unwrap(),
            record.val_accuracy.unwrap(),
        ),
    ] {
        // The record is the sparse path's, to the bit...
        let sparse = train::eval::evaluate_sparse(&dense, &mask, set).unwrap();
        assert_eq!(sparse, (loss, accuracy));
        // ...and burn's dense forward agrees with it to rounding.
        let (l, a) = train::evaluate(&dense, set);
        assert!((loss - l).abs() <= 1e-5 * l, "loss {loss} vs burn {l}");
        // Float rounding may flip a near-tie, never more than a couple of examples.
        let flipped = ((accuracy - a) * set.len() as f64).abs();
        assert!(flipped < 2.5, "accuracy {accuracy} vs burn {a}");
    }
}

/// `n` examples of `shape` in [-1, 1), `background` of their entries 0.
fn examples(n: usize, shape: [usize; 3], background: f64) -> Dataset {
    let mut rng = Rng::new(6);
    let len = n * shape.iter().product::<usize>();
    let images = (0..len)
        .map(|_| {
            let v = rng.uniform() as f32 * 2.0 - 1.0;
            if rng.uniform() < background { 0.0 } else { v }
        })
        .collect();
    Dataset::classified(images, vec![0; n], shape, 10)
}

#[test]
fn the_path_follows_the_density_the_inputs_and_the_architecture() {
    let mlp = network("lenet_300_100", [1, 28, 28]);
    let (plain, mnist_like) = (
        examples(20, [1, 28, 28], 0.0),
        examples(20, [1, 28, 28], 0.81),
    );
    let path =
        |mask: &MaskSet, set: &Dataset| EvalPath::choose(&mlp, Some(mask), &Device::flex(), set);
    for (set, below) in [
        (&plain, SPARSE_BELOW_DENSITY),
        (&mnist_like, SPARSE_BELOW_DENSITY_OVER_BACKGROUND),
    ] {
        let sparse = random_mask(&mlp, below * 0.8, 3);
        let dense = random_mask(&mlp, below * 1.2, 3);
        assert_eq!(path(&sparse, set), EvalPath::Sparse, "{below}");
        assert_eq!(path(&dense, set), EvalPath::Dense, "{below}");
        assert_eq!(
            EvalPath::choose(&mlp, None, &Device::flex(), set),
            EvalPath::Dense
        );
    }
    // Between the two thresholds the inputs decide: a background makes burn's pass the faster.
    let between = random_mask(&mlp, 0.2, 3);
    assert_eq!(path(&between, &plain), EvalPath::Sparse);
    assert_eq!(path(&between, &mnist_like), EvalPath::Dense);

    let cifar_like = examples(2, [3, 32, 32], 0.0);
    let conv = network("conv2", [3, 32, 32]);
    let mask = random_mask(&conv, 0.1, 4);
    assert_eq!(
        EvalPath::choose(&conv, Some(&mask), &Device::flex(), &cifar_like),
        EvalPath::Sparse
    );
    // VGG compacts but runs faster through burn; residual blocks do not compact: both are
    // evaluated dense however sparse.
    let vgg = network("vgg11", [3, 32, 32]);
    let mask = random_mask(&vgg, 0.1, 5);
    assert_eq!(
        EvalPath::choose(&vgg, Some(&mask), &Device::flex(), &cifar_like),
        EvalPath::Dense
    );
    let resnet = network("resnet20", [3, 32, 32]);
    let mask = random_mask(&resnet, 0.1, 5);
    assert_eq!(
        EvalPath::choose(&resnet, Some(&mask), &Device::flex(), &cifar_like),
        EvalPath::Dense
    );
}
