//! Evaluating through the sparse kernels gives what burn's dense forward gives, and training
//! takes that path exactly when the mask is sparse enough and the architecture compacts.

use burn::module::Module;
use burn::tensor::Device;
use lottery::data::{self, DatasetKind};
use lottery::masks::MaskSet;
use lottery::models::{Architecture, Network, init};
use lottery::rng::Rng;
use lottery::train::eval::{EvalPath, SPARSE_BELOW_DENSITY};
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
        EvalPath::choose(&net, Some(&mask), &Device::flex()),
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

#[test]
fn the_path_follows_the_density_and_the_architecture() {
    let mlp = network("lenet_300_100", [1, 28, 28]);
    let sparse = random_mask(&mlp, SPARSE_BELOW_DENSITY * 0.8, 3);
    let dense = random_mask(&mlp, SPARSE_BELOW_DENSITY * 1.2, 3);
    assert_eq!(
        EvalPath::choose(&mlp, Some(&sparse), &Device::flex()),
        EvalPath::Sparse
    );
    assert_eq!(
        EvalPath::choose(&mlp, Some(&dense), &Device::flex()),
        EvalPath::Dense
    );
    assert_eq!(
        EvalPath::choose(&mlp, None, &Device::flex()),
        EvalPath::Dense
    );

    let conv = network("conv2", [3, 32, 32]);
    let mask = random_mask(&conv, 0.1, 4);
    assert_eq!(
        EvalPath::choose(&conv, Some(&mask), &Device::flex()),
        EvalPath::Sparse
    );
    // VGG compacts but runs faster through burn; residual blocks do not compact: both are
    // evaluated dense however sparse.
    let vgg = network("vgg11", [3, 32, 32]);
    let mask = random_mask(&vgg, 0.1, 5);
    assert_eq!(
        EvalPath::choose(&vgg, Some(&mask), &Device::flex()),
        EvalPath::Dense
    );
    let resnet = network("resnet20", [3, 32, 32]);
    let mask = random_mask(&resnet, 0.1, 5);
    assert_eq!(
        EvalPath::choose(&resnet, Some(&mask), &Device::flex()),
        EvalPath::Dense
    );
}
