//! Training a network, optionally under a mask, with periodic evaluation.

pub mod eval;
mod gradients;
pub mod optimizer;
pub mod schedule;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::data::targets::Batch;
use crate::data::{BatchOrder, Splits, augment_into};
use crate::error::{Error, Result};
use crate::masks::MaskSet;
use crate::models::Network;
use crate::rng::Rng;
use crate::sparse::SparseLayers;
pub use eval::{EvalPath, evaluate};
pub use optimizer::{Optimizer, OptimizerConfig};
pub use schedule::Schedule;

/// How long to train.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Length {
    Iterations(usize),
    Epochs(usize),
}

/// Everything that decides a training run apart from the model and its starting weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub optimizer: OptimizerConfig,
    pub lr: f64,
    #[serde(default)]
    pub schedule: Schedule,
    pub batch_size: usize,
    pub length: Length,
    /// Evaluate on validation and test sets every this many iterations (and at the end).
    pub eval_every: usize,
    /// Seed of the data order (and augmentation).
    pub data_seed: u64,
    /// Random flips and crops (CIFAR).
    #[serde(default)]
    pub augment: bool,
    /// Under a mask, a linear weight keeping at most this fraction of its entries trains as a
    /// sparse product on the CPU backend (`crate::sparse`): the same arithmetic in another
    /// summation order, faster at late levels. 0 keeps every layer dense.
    #[serde(default = "sparse_max_density")]
    pub sparse_max_density: f64,
}

fn sparse_max_density() -> f64 {
    crate::sparse::MAX_DENSITY
}

impl TrainConfig {
    /// The LTH paper's LeNet-300-100 settings: Adam 1.2e-3, batch 60, evaluation every 100.
    pub fn lenet_paper(iterations: usize) -> Self {
        TrainConfig {
            optimizer: OptimizerConfig::adam(),
            lr: 1.2e-3,
            schedule: Schedule::constant(),
            batch_size: 60,
            length: Length::Iterations(iterations),
            eval_every: 100,
            data_seed: 0,
            augment: false,
            sparse_max_density: sparse_max_density(),
        }
    }

    pub fn validate(&self) -> Result<()> {
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(Error::config(
                "lr",
                format!("{} must be a positive number", self.lr),
            ));
        }
        if self.batch_size == 0 {
            return Err(Error::config("batch-size", "must be at least 1"));
        }
        if self.eval_every == 0 {
            return Err(Error::config("eval-every", "must be at least 1"));
        }
        if !(0.0..=1.0).contains(&self.sparse_max_density) {
            return Err(Error::config(
                "sparse-max-density",
                format!("{} is outside [0, 1]", self.sparse_max_density),
            ));
        }
        match self.length {
            Length::Iterations(0) => return Err(Error::config("iterations", "must be at least 1")),
            Length::Epochs(0) => return Err(Error::config("epochs", "must be at least 1")),
            _ => {}
        }
        self.optimizer.validate()?;
        self.schedule.validate()
    }

    /// A warning when evaluation is too rare to draw a learning curve: every `eval_every`
    /// iterations is past the end, so training is evaluated once, at its last step.
    pub fn rare_evaluation(&self) -> Option<String> {
        match self.length {
            Length::Iterations(n) if self.eval_every > n => Some(format!(
                "--eval-every {} is more than --iterations {n}: evaluated once, at the end, so learning curves have one point and the early-stop iteration is always {n}",
                self.eval_every
            )),
            _ => None,
        }
    }

    /// [`TrainConfig::validate`], and whether `data` can serve a batch.
    pub fn validate_for(&self, data: &Splits) -> Result<()> {
        self.validate()?;
        if self.batch_size > data.train.len() {
            return Err(Error::config(
                "batch-size",
                format!(
                    "{} is more than the {} training examples",
                    self.batch_size,
                    data.train.len()
                ),
            ));
        }
        Ok(())
    }

    pub fn iterations(&self, train_len: usize) -> usize {
        match self.length {
            Length::Iterations(n) => n,
            Length::Epochs(e) => e * (train_len / self.batch_size).max(1),
        }
    }
}

/// One evaluation, as written to `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    pub iteration: usize,
    /// Mean training loss since the previous evaluation.
    pub train_loss: f64,
    pub val_loss: Option<f64>,
    pub val_accuracy: Option<f64>,
    pub test_loss: f64,
    pub test_accuracy: f64,
    /// For values to predict: the test mean absolute error in the data's units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_mae: Option<f64>,
    pub lr: f64,
}

/// What training leaves behind.
pub struct Outcome {
    pub network: Network,
    pub records: Vec<EvalRecord>,
    /// The weights after the iteration asked for with `snapshot_at` (the late-rewinding point).
    pub snapshot: Option<crate::tensors::StateDict>,
}

impl Outcome {
    pub fn last(&self) -> &EvalRecord {
        self.records
            .last()
            .expect("training evaluates at least once")
    }

    /// The evaluation of minimum validation loss: the paper's early-stopping point.
    pub fn best_val(&self) -> Option<&EvalRecord> {
        self.records
            .iter()
            .filter(|r| r.val_loss.is_some())
            .min_by(|a, b| a.val_loss.partial_cmp(&b.val_loss).expect("finite losses"))
    }
}

/// Hooks for a progress display; the library prints nothing itself.
pub trait Progress {
    fn start(&mut self, _iterations: usize) {}
    fn step(&mut self, _iteration: usize, _loss: f32) {}
    fn eval(&mut self, _record: &EvalRecord) {}
    fn finish(&mut self) {}
}

/// A progress display that shows nothing.
pub struct Silent;
impl Progress for Silent {}

/// Which part of the schedule a training runs, and which weights it keeps on the way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Segment {
    /// The iteration training starts at: the learning-rate schedule and the data order continue
    /// from here, as if the first `start` steps had run (a ticket rewound to iteration K).
    pub start: usize,
    /// Keep the weights after this many iterations (the late-rewinding point; `start`: the
    /// starting weights).
    pub snapshot_at: Option<usize>,
}

impl Segment {
    /// From iteration `start` to the end.
    pub fn from(start: usize) -> Self {
        Segment {
            start,
            snapshot_at: None,
        }
    }
}

/// Trains `net` on `device` over `segment` of `cfg`'s schedule. With `mask`, masked weights are
/// zero before the first step and after every step, and no optimizer state can revive them.
pub fn train(
    net: Network,
    data: &Splits,
    mask: Option<&MaskSet>,
    cfg: &TrainConfig,
    device: &Device,
    segment: Segment,
    progress: &mut dyn Progress,
) -> Result<Outcome> {
    let evaluator = eval::Evaluator::new(&net, mask, device, data);
    let snapshot_at = segment.snapshot_at;
    let mut trainer = Trainer::new(net, data, mask, cfg, device)?;
    trainer.skip_to(segment.start)?;
    let iterations = trainer.iterations();
    let mut records = Vec::new();
    let (mut loss_sum, mut loss_n) = (0.0f64, 0usize);
    let mut snapshot = None;
    progress.start(iterations);
    while trainer.done() < iterations {
        // Between steps is a safe point: nothing of this training is on disk yet.
        crate::stop::check()?;
        if snapshot_at == Some(trainer.done()) {
            snapshot = Some(trainer.network().state_dict());
        }
        let loss = trainer.step()?;
        loss_sum += loss as f64;
        loss_n += 1;
        let done = trainer.done();
        progress.step(done, loss);
        if done % cfg.eval_every == 0 || done == iterations {
            let lr = cfg.schedule.lr(cfg.lr, done - 1);
            let train_loss = loss_sum / loss_n as f64;
            let record = evaluator.record(trainer.network(), mask, done, train_loss, lr);
            progress.eval(&record);
            records.push(record);
            (loss_sum, loss_n) = (0.0, 0);
        }
    }
    progress.finish();
    if snapshot_at == Some(trainer.done()) {
        snapshot = Some(trainer.network().state_dict());
    }
    Ok(Outcome {
        network: trainer.into_network(),
        records,
        snapshot,
    })
}

/// Training one step at a time: the loop behind [`train`], open for benchmarks and tests.
pub struct Trainer<'a> {
    net: Option<Network>,
    data: &'a Splits,
    cfg: TrainConfig,
    device: Device,
    resident: optimizer::ResidentMasks,
    order: BatchOrder,
    aug_rng: Rng,
    opt: Optimizer,
    /// Layers that train as sparse products, and whether the network's copy of their weights
    /// is behind (written back before anyone reads the network).
    sparse: SparseLayers,
    stale: bool,
    iterations: usize,
    done: usize,
    pixels: Vec<f32>,
    targets: Batch,
}

impl<'a> Trainer<'a> {
    pub fn new(
        net: Network,
        data: &'a Splits,
        mask: Option<&MaskSet>,
        cfg: &TrainConfig,
        device: &Device,
    ) -> Result<Self> {
        cfg.validate_for(data)?;
        // burn's CPU backend hands the optimizer its tensors' memory; elsewhere that is a copy.
        let on_host = *device == Device::flex();
        let device = device.clone().autodiff();
        // `train()` re-enables gradient tracking, which a model built on a plain device lacks.
        let mut net = net.to_device(&device).train();
        let (resident, sparse) = match mask {
            Some(m) => {
                let mut dict = net.state_dict();
                m.apply(&mut dict);
                net = net
                    .load_state_dict(&dict)
                    .expect("a model's own tensors fit it");
                let ids = net.param_ids();
                let sparse = SparseLayers::choose(&dict, &ids, m, cfg.sparse_max_density, &device);
                (optimizer::resident(m, &net), sparse)
            }
            None => Default::default(),
        };
        let per_batch = cfg.batch_size * data.train.example_len();
        Ok(Trainer {
            net: Some(net),
            data,
            iterations: cfg.iterations(data.train.len()),
            order: BatchOrder::new(data.train.len(), cfg.batch_size, cfg.data_seed),
            aug_rng: Rng::derive(cfg.data_seed, "augmentation"),
            opt: Optimizer::new(cfg.optimizer.clone(), on_host),
            cfg: cfg.clone(),
            device,
            resident,
            sparse,
            stale: false,
            done: 0,
            pixels: Vec::with_capacity(per_batch),
            targets: Batch::default(),
        })
    }

    pub fn iterations(&self) -> usize {
        self.iterations
    }

    pub fn done(&self) -> usize {
        self.done
    }

    /// The network with every weight as trained so far.
    pub fn network(&mut self) -> &Network {
        self.write_back();
        self.net.as_ref().expect("present between steps")
    }

    pub fn into_network(mut self) -> Network {
        self.write_back();
        self.net.expect("present between steps")
    }

    /// PyTorch names of the weights training as sparse products, sorted.
    pub fn sparse_layers(&self) -> Vec<&str> {
        self.sparse.names()
    }

    /// The sparse layers' values into the network's weights, when they have moved since.
    fn write_back(&mut self) {
        if !self.stale {
            return;
        }
        let net = self.net.take().expect("present between steps");
        let mut dict = net.state_dict();
        self.sparse.write(&mut dict);
        self.net = Some(
            net.load_state_dict(&dict)
                .expect("a model's own tensors fit it"),
        );
        self.stale = false;
    }

    /// Moves the schedule to iteration `start` without training: the data order (and the
    /// augmentation draws) advance past the batches the first `start` steps would have used, so
    /// the next step sees what step `start + 1` of a full run sees.
    pub fn skip_to(&mut self, start: usize) -> Result<()> {
        if start > 0 && start >= self.iterations {
            return Err(Error::config(
                "rewind",
                format!(
                    "iteration {start} is not before the end of training ({})",
                    self.iterations
                ),
            ));
        }
        while self.done < start {
            let batch = self.order.next_batch().len();
            if self.cfg.augment {
                for _ in 0..batch {
                    crate::data::augmentation_draw(&mut self.aug_rng);
                }
            }
            self.done += 1;
        }
        Ok(())
    }

    /// The loss on the next batch, with the network taken out for the backward pass; the layers
    /// in `sparse` run as sparse products.
    fn next_loss(&mut self, sparse: &SparseLayers) -> Result<(Network, Tensor<1>, f32)> {
        self.fill_batch();
        let [c, h, w] = self.data.train.shape;
        let b = self.cfg.batch_size;
        let x = Tensor::<4>::from_data(
            // The batch's buffer becomes the tensor's; the next batch allocates its own.
            TensorData::new(std::mem::take(&mut self.pixels), [b, c, h, w]),
            &self.device,
        );
        let net = self.net.take().expect("present between steps");
        let loss = self.targets.loss(net.forward_with(x, sparse), &self.device);
        let value: f32 = loss.clone().into_scalar::<f32>();
        if !value.is_finite() {
            // Keep the network: the caller may still want to inspect or save it.
            self.net = Some(net);
            return Err(Error::Diverged {
                iteration: self.done + 1,
                value,
            });
        }
        Ok((net, loss, value))
    }

    /// The next batch's examples (augmented, for CIFAR) and labels into `pixels` and `labels`.
    fn fill_batch(&mut self) {
        let data = &self.data.train;
        self.pixels.clear();
        self.pixels
            .reserve(self.cfg.batch_size * data.example_len());
        self.targets.clear();
        for &i in self.order.next_batch() {
            if self.cfg.augment {
                augment_into(
                    data.image(i),
                    data.shape,
                    &mut self.aug_rng,
                    &mut self.pixels,
                );
            } else {
                self.pixels.extend_from_slice(data.image(i));
            }
            self.targets.push(&data.targets, i);
        }
    }

    /// Gradients of the loss on the next batch, by PyTorch name and layout; no step is taken
    /// (SNIP's connection sensitivity). Masked weights are zero in the forward pass.
    pub fn gradients(&mut self) -> Result<crate::tensors::StateDict> {
        // Dense, so that every weight has its gradient.
        self.write_back();
        let (net, loss, _) = self.next_loss(&SparseLayers::default())?;
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        let (net, dict) = gradients::collect(net, grads);
        self.net = Some(net);
        Ok(dict)
    }

    /// Parameter updates so far that went through the host (see [`Optimizer::host_updates`]).
    pub fn host_updates(&self) -> u64 {
        self.opt.host_updates()
    }

    /// One optimisation step on the next batch; returns its loss.
    pub fn step(&mut self) -> Result<f32> {
        let sparse = std::mem::take(&mut self.sparse);
        let loss = self.next_loss(&sparse);
        self.sparse = sparse;
        let (net, loss, value) = loss?;
        let mut grads = loss.backward();
        let lr = self.cfg.schedule.lr(self.cfg.lr, self.done);
        let opt = &mut self.opt;
        opt.begin_step();
        self.sparse.step(&mut grads, |id, values, g| {
            opt.update_tracked(id, values, g, lr, None)
        });
        let grads = GradientsParams::from_grads(grads, &net);
        self.net = Some(opt.step(net, grads, lr, &self.resident));
        self.stale |= !self.sparse.is_empty();
        self.done += 1;
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Dataset, DatasetKind};

    fn splits(n: usize) -> Splits {
        let set = |n: usize| {
            let images = (0..n * 3 * 8 * 8).map(|i| (i % 251) as f32).collect();
            Dataset::classified(
                images,
                (0..n).map(|i| (i % 10) as u32).collect(),
                [3, 8, 8],
                10,
            )
        };
        Splits {
            kind: DatasetKind::CIFAR10,
            train: set(n),
            val: set(0),
            test: set(4),
        }
    }

    #[test]
    fn skipping_to_k_serves_the_batch_step_k_plus_one_would_see() {
        let data = splits(50);
        let mut cfg = TrainConfig::lenet_paper(40);
        cfg.batch_size = 7;
        cfg.augment = true;
        let device = Device::flex();
        let net = || {
            crate::models::Architecture::parse("mlp_4")
                .unwrap()
                .build([3, 8, 8], 10, &device)
                .unwrap()
        };
        // 9 steps cross an epoch boundary (7 batches of 7 per epoch of 50).
        let mut skipped = Trainer::new(net(), &data, None, &cfg, &device).unwrap();
        skipped.skip_to(9).unwrap();
        assert_eq!(skipped.done(), 9);
        let mut walked = Trainer::new(net(), &data, None, &cfg, &device).unwrap();
        for _ in 0..9 {
            walked.fill_batch();
        }
        skipped.fill_batch();
        walked.fill_batch();
        assert_eq!(skipped.targets, walked.targets);
        assert_eq!(
            skipped.pixels, walked.pixels,
            "augmentation draws continue too"
        );
        assert!(
            skipped.skip_to(40).is_err(),
            "the end of training is no start"
        );
    }

    /// The GPU's update (device tensor ops) run on the CPU beside the host update: the same
    /// weights within float tolerance under every optimizer, pruned weights exactly zero, and
    /// no parameter through the host.
    #[test]
    fn device_updates_match_host_updates_and_keep_pruned_weights_zero() {
        let data = splits(60);
        let device = Device::flex();
        let net = crate::models::Architecture::parse("mlp_16")
            .unwrap()
            .build([3, 8, 8], 10, &device)
            .unwrap();
        let net =
            crate::models::init::initialise(net, crate::models::init::InitScheme::KaimingNormal, 3);
        let names = net.prunable();
        // Every fifth weight kept.
        let mut mask = MaskSet::ones(&net.shapes(), &names);
        for m in mask.masks.values_mut() {
            for (i, k) in m.data.iter_mut().enumerate() {
                *k = if i % 5 == 0 { 1.0 } else { 0.0 };
            }
        }
        for optimizer in [
            OptimizerConfig::Adam {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 1e-3,
            },
            OptimizerConfig::sgd(0.9, true, 1e-3),
            OptimizerConfig::sgd(0.0, false, 0.0),
        ] {
            let mut cfg = TrainConfig::lenet_paper(25);
            cfg.optimizer = optimizer.clone();
            cfg.lr = 1e-3;
            cfg.batch_size = 10;
            // The masked dense updates are under test, not the sparse layers.
            cfg.sparse_max_density = 0.0;
            let mut host = Trainer::new(net.clone(), &data, Some(&mask), &cfg, &device).unwrap();
            let mut gpu = Trainer::new(net.clone(), &data, Some(&mask), &cfg, &device).unwrap();
            gpu.opt = Optimizer::new(optimizer.clone(), false);
            for step in 0..25 {
                host.step().unwrap();
                gpu.step().unwrap();
                let (a, b) = (host.network().state_dict(), gpu.network().state_dict());
                for (name, m) in &mask.masks {
                    for (i, &k) in m.data.iter().enumerate() {
                        if k == 0.0 {
                            assert_eq!(
                                b[name].data[i], 0.0,
                                "{optimizer:?} step {step} {name}[{i}]"
                            );
                        }
                    }
                }
                for (name, t) in &a {
                    for (x, y) in t.data.iter().zip(&b[name].data) {
                        assert!(
                            (x - y).abs() <= 1e-4 * (1.0 + x.abs()),
                            "{optimizer:?} step {step} {name}: {x} vs {y}"
                        );
                    }
                }
            }
            assert!(host.host_updates() > 0);
            assert_eq!(gpu.host_updates(), 0, "no parameter through the host");
        }
    }
}
