//! What a level offers to the ticket, its controls and branches: the model it builds, the
//! ticket's mask, where the ticket starts and (once trained) where it ended.

use crate::data::Splits;
use crate::device::Device;
use crate::error::Result;
use crate::masks::MaskSet;
use crate::models::{Architecture, Network, init};
use crate::tensors::StateDict;
use crate::train::{Schedule, Segment, TrainConfig};

use super::{ExperimentConfig, Rewind};

/// An experiment's fixed parts: its settings, data and device, and the model they build.
pub struct Setup<'a> {
    pub config: &'a ExperimentConfig,
    pub data: &'a Splits,
    pub device: &'a Device,
    arch: Architecture,
}

impl<'a> Setup<'a> {
    pub fn new(config: &'a ExperimentConfig, data: &'a Splits, device: &'a Device) -> Result<Self> {
        Ok(Setup {
            arch: Architecture::parse(&config.model)?,
            config,
            data,
            device,
        })
    }

    /// The network initialised from `seed` with the configured scheme.
    pub fn fresh(&self, seed: u64) -> Result<Network> {
        let net = self.arch.build(
            self.data.train.shape,
            self.data.train.outputs(),
            self.device,
        )?;
        Ok(init::initialise(net, self.config.init, seed))
    }

    /// The network holding `weights`.
    pub fn network(&self, weights: &StateDict) -> Result<Network> {
        self.fresh(0)?.load_state_dict(weights)
    }
}

/// One level of one replicate, as controls and branches see it.
pub struct Level<'a> {
    pub setup: &'a Setup<'a>,
    pub level: usize,
    /// The replicate's seed.
    pub seed: u64,
    /// The ticket's mask.
    pub mask: &'a MaskSet,
    /// The weights the ticket starts from (rewound, or the previous level's for `lr`/`none`).
    pub start: &'a StateDict,
    /// How the ticket trains from there.
    pub train: &'a TrainConfig,
    pub segment: Segment,
}

/// Where a level after the dense one starts.
pub struct Start {
    pub weights: StateDict,
    pub train: TrainConfig,
    pub segment: Segment,
}

impl Rewind {
    /// The iteration whose weights the dense run keeps as the rewind point, if any.
    pub fn snapshot_at(self) -> Option<usize> {
        match self {
            Rewind::Iteration(k) => Some(k),
            _ => None,
        }
    }

    /// Where a pruned network starts: `rewind_point` holds the weights at the initialisation or
    /// at iteration K, `trained` the previous level's trained weights. A ticket rewound to K
    /// trains from K to the end (schedule and data order continuing); fine-tuning runs the
    /// full length at the schedule's final rate; learning-rate rewinding replays the schedule
    /// from the start on the trained weights.
    pub fn start(
        self,
        rewind_point: &StateDict,
        trained: &StateDict,
        cfg: &TrainConfig,
        train_len: usize,
    ) -> Start {
        let (weights, train, start) = match self {
            Rewind::Init => (rewind_point.clone(), cfg.clone(), 0),
            Rewind::Iteration(k) => (rewind_point.clone(), cfg.clone(), k),
            Rewind::LearningRate => (trained.clone(), cfg.clone(), 0),
            Rewind::None => (trained.clone(), finetune(cfg, train_len), 0),
        };
        Start {
            weights,
            train,
            segment: Segment::from(start),
        }
    }
}

/// Fine-tuning after pruning: the schedule's final learning rate, held constant.
fn finetune(cfg: &TrainConfig, train_len: usize) -> TrainConfig {
    let last = cfg.iterations(train_len).saturating_sub(1);
    TrainConfig {
        lr: cfg.schedule.lr(cfg.lr, last),
        schedule: Schedule::constant(),
        ..cfg.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensors::HostTensor;
    use crate::train::Length;

    fn dict(x: f32) -> StateDict {
        [("w".to_string(), HostTensor::new(vec![1], vec![x]))].into()
    }

    #[test]
    fn each_rewind_mode_starts_where_and_when_it_should() {
        let (point, trained) = (dict(1.0), dict(2.0));
        let mut cfg = TrainConfig::lenet_paper(1000);
        cfg.schedule = Schedule {
            warmup: 0,
            milestones: vec![500],
            gamma: 0.1,
        };
        let s = Rewind::Init.start(&point, &trained, &cfg, 100);
        assert_eq!((s.weights, s.segment.start), (point.clone(), 0));
        assert_eq!(s.train, cfg);
        let s = Rewind::Iteration(300).start(&point, &trained, &cfg, 100);
        assert_eq!((s.weights, s.segment.start), (point.clone(), 300));
        assert_eq!(s.train, cfg, "the schedule continues from 300, unchanged");
        let s = Rewind::LearningRate.start(&point, &trained, &cfg, 100);
        assert_eq!((s.weights, s.segment.start), (trained.clone(), 0));
        assert_eq!(s.train, cfg);
        let s = Rewind::None.start(&point, &trained, &cfg, 100);
        assert_eq!((s.weights, s.segment.start), (trained.clone(), 0));
        assert_eq!(s.train.length, Length::Iterations(1000));
        assert!(
            (s.train.lr - 1.2e-4).abs() < 1e-12,
            "the final rate: {}",
            s.train.lr
        );
        assert_eq!(s.train.schedule, Schedule::constant());
        assert_eq!(Rewind::Iteration(300).snapshot_at(), Some(300));
        assert_eq!(Rewind::Init.snapshot_at(), None);
    }
}
