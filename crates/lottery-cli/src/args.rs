//! Flags shared by the commands that train: the typed configs of the library, as CLI flags.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use lottery::data::{self, DatasetKind, Splits};
use lottery::models::{Architecture, Network, init::InitScheme};
use lottery::train::{Length, OptimizerConfig, Schedule, TrainConfig};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerName {
    Adam,
    Sgd,
}

/// The model, its initialisation and the data it sees.
#[derive(Args, Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelArgs {
    /// Architecture: lenet_300_100, mlp_N1_N2_…, conv2/4/6, vgg11/13/16/19, resnet20, resnet_D.
    #[arg(long, default_value = "lenet_300_100")]
    pub model: String,
    /// Weight initialisation: glorot_normal, glorot_uniform, kaiming_normal, kaiming_uniform.
    #[arg(long, default_value = "glorot_normal")]
    pub init: String,
    /// Seed of the initial weights and of the data order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Dataset format: mnist, mnist-format (Fashion-MNIST, KMNIST…), cifar10.
    #[arg(long, default_value = "mnist")]
    pub dataset: String,
    /// Directory holding the dataset files (default: the bundled data/ or $LOTTERY_DATA).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Training examples held out for validation (early-stopping point).
    #[arg(long, default_value_t = 5000)]
    pub val_size: usize,
    /// Where to compute: cpu, wgpu, cuda (the last two need the matching build feature).
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

/// Optimisation settings; defaults are the LTH paper's LeNet-300-100 ones.
#[derive(Args, Debug, Clone, Serialize, Deserialize)]
pub struct OptimArgs {
    #[arg(long, value_enum, default_value_t = OptimizerName::Adam)]
    pub optimizer: OptimizerName,
    /// Learning rate.
    #[arg(long, default_value_t = 1.2e-3, allow_negative_numbers = true)]
    pub lr: f64,
    #[arg(long, default_value_t = 60)]
    pub batch_size: usize,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub momentum: f64,
    /// Nesterov momentum (SGD).
    #[arg(long)]
    pub nesterov: bool,
    /// L2 weight decay, added to the gradient.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub weight_decay: f64,
    /// Linear learning-rate warm-up over this many iterations.
    #[arg(long, default_value_t = 0)]
    pub warmup: usize,
    /// Iterations at which the rate is multiplied by --gamma (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub milestones: Vec<usize>,
    #[arg(long, default_value_t = 0.1)]
    pub gamma: f64,
    /// Random flips and pad-4 crops (CIFAR).
    #[arg(long)]
    pub augment: bool,
}

impl ModelArgs {
    pub fn dataset_kind(&self) -> Result<DatasetKind> {
        Ok(DatasetKind::parse(&self.dataset)?)
    }

    pub fn load_data(&self) -> Result<Splits> {
        let kind = self.dataset_kind()?;
        let dir = self.data_dir.clone().unwrap_or_else(|| kind.default_dir());
        data::load(kind, &dir, self.val_size)
            .with_context(|| format!("cannot load {} from {}", kind.name(), dir.display()))
    }

    pub fn device(&self) -> Result<lottery::device::Device> {
        Ok(lottery::device::parse(&self.device)?)
    }

    /// The initialised network for `data`.
    pub fn build(&self, data: &Splits, device: &lottery::device::Device) -> Result<Network> {
        let arch = Architecture::parse(&self.model)?;
        let scheme = InitScheme::parse(&self.init)?;
        let net = arch.build(data.train.shape, data.train.classes, device)?;
        Ok(lottery::models::init::initialise(net, scheme, self.seed))
    }
}

impl OptimArgs {
    pub fn config(&self, length: Length, eval_every: usize, seed: u64) -> TrainConfig {
        let optimizer = match self.optimizer {
            OptimizerName::Adam => OptimizerConfig::Adam {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: self.weight_decay,
            },
            OptimizerName::Sgd => {
                OptimizerConfig::sgd(self.momentum, self.nesterov, self.weight_decay)
            }
        };
        TrainConfig {
            optimizer,
            lr: self.lr,
            schedule: Schedule {
                warmup: self.warmup,
                milestones: self.milestones.clone(),
                gamma: self.gamma,
            },
            batch_size: self.batch_size,
            length,
            eval_every,
            data_seed: seed,
            augment: self.augment,
        }
    }
}

/// A file a command writes, never silently over an existing one.
#[derive(Args, Debug, Clone)]
pub struct OutputArgs {
    /// The file to write.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Replace the output file if it exists.
    #[arg(long)]
    pub force: bool,
}

impl OutputArgs {
    /// Refuses to go on when the file exists and `--force` was not given.
    pub fn check(&self) -> Result<()> {
        if self.output.exists() && !self.force {
            anyhow::bail!(
                "{} exists; pass --force to replace it",
                self.output.display()
            );
        }
        Ok(())
    }
}
