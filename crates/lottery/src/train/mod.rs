//! Training a network, optionally under a mask, with periodic evaluation.

pub mod eval;
pub mod optimizer;
pub mod schedule;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::data::{BatchOrder, Splits, augment_into};
use crate::error::{Error, Result};
use crate::masks::MaskSet;
use crate::models::Network;
use crate::rng::Rng;
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
        match self.length {
            Length::Iterations(0) => return Err(Error::config("iterations", "must be at least 1")),
            Length::Epochs(0) => return Err(Error::config("epochs", "must be at least 1")),
            _ => {}
        }
        self.optimizer.validate()?;
        self.schedule.validate()
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

/// Trains `net` on `device`. With `mask`, masked weights are zero before the first step and
/// after every step, and no optimizer state can revive them. With `snapshot_at = Some(k)`, the
/// weights after k iterations are kept (k = 0: the starting weights).
pub fn train(
    net: Network,
    data: &Splits,
    mask: Option<&MaskSet>,
    cfg: &TrainConfig,
    device: &Device,
    snapshot_at: Option<usize>,
    progress: &mut dyn Progress,
) -> Result<Outcome> {
    let path = EvalPath::choose(&net, mask, device);
    let mut trainer = Trainer::new(net, data, mask, cfg, device)?;
    let iterations = trainer.iterations();
    let mut records = Vec::new();
    let (mut loss_sum, mut loss_n) = (0.0f64, 0usize);
    let mut snapshot = None;
    progress.start(iterations);
    while trainer.done() < iterations {
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
            let record =
                eval::evaluate_splits(trainer.network(), mask, path, data, done, train_loss, lr);
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
    loss_fn: burn::nn::loss::CrossEntropyLoss,
    iterations: usize,
    done: usize,
    pixels: Vec<f32>,
    labels: Vec<i64>,
}

impl<'a> Trainer<'a> {
    pub fn new(
        net: Network,
        data: &'a Splits,
        mask: Option<&MaskSet>,
        cfg: &TrainConfig,
        device: &Device,
    ) -> Result<Self> {
        cfg.validate()?;
        let device = device.clone().autodiff();
        // `train()` re-enables gradient tracking, which a model built on a plain device lacks.
        let mut net = net.to_device(&device).train();
        let resident = match mask {
            Some(m) => {
                let mut dict = net.state_dict();
                m.apply(&mut dict);
                net = net
                    .load_state_dict(&dict)
                    .expect("a model's own tensors fit it");
                m.resident(&net)
            }
            None => Default::default(),
        };
        let loss_fn = CrossEntropyLossConfig::new().init(&device);
        let per_batch = cfg.batch_size * data.train.example_len();
        Ok(Trainer {
            net: Some(net),
            data,
            iterations: cfg.iterations(data.train.len()),
            order: BatchOrder::new(data.train.len(), cfg.batch_size, cfg.data_seed),
            aug_rng: Rng::derive(cfg.data_seed, "augmentation"),
            opt: Optimizer::new(cfg.optimizer.clone()),
            cfg: cfg.clone(),
            device,
            resident,
            loss_fn,
            done: 0,
            pixels: Vec::with_capacity(per_batch),
            labels: Vec::with_capacity(cfg.batch_size),
        })
    }

    pub fn iterations(&self) -> usize {
        self.iterations
    }

    pub fn done(&self) -> usize {
        self.done
    }

    pub fn network(&self) -> &Network {
        self.net.as_ref().expect("present between steps")
    }

    pub fn into_network(self) -> Network {
        self.net.expect("present between steps")
    }

    /// One optimisation step on the next batch; returns its loss.
    pub fn step(&mut self) -> Result<f32> {
        let data = &self.data.train;
        let [c, h, w] = data.shape;
        let b = self.cfg.batch_size;
        self.pixels.clear();
        self.labels.clear();
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
            self.labels.push(data.labels[i] as i64);
        }
        let x = Tensor::<4>::from_data(
            TensorData::new(self.pixels.clone(), [b, c, h, w]),
            &self.device,
        );
        let y =
            Tensor::<1, Int>::from_data(TensorData::new(self.labels.clone(), [b]), &self.device);
        let net = self.net.take().expect("present between steps");
        let loss = self.loss_fn.forward(net.forward(x), y);
        let value: f32 = loss.clone().into_scalar::<f32>();
        if !value.is_finite() {
            // Keep the network: the caller may still want to inspect or save it.
            self.net = Some(net);
            return Err(Error::Diverged {
                iteration: self.done + 1,
                value,
            });
        }
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        let lr = self.cfg.schedule.lr(self.cfg.lr, self.done);
        self.net = Some(self.opt.step(net, grads, lr, &self.resident));
        self.done += 1;
        Ok(value)
    }
}
