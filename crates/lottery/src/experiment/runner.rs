//! One training of a level, written to its variant directory — or read back from there when an
//! earlier run finished it. The ticket, the controls and every branch's trainings go through
//! here, so resuming works the same for all of them.

use crate::error::Result;
use crate::files::{read_json, write_json, write_jsonl};
use crate::layout::RunDir;
use crate::masks::MaskSet;
use crate::models::Network;
use crate::results::VariantResult;
use crate::tensors::{self, StateDict};
use crate::train::{self, Segment, TrainConfig};

use super::Observer;
use super::level::Setup;

/// How long a training took (`time.json`).
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Timing {
    pub seconds: f64,
}

/// Trains variants of one replicate into `dir`.
pub struct Runner<'a> {
    pub setup: &'a Setup<'a>,
    pub dir: RunDir,
    pub replicate: usize,
}

/// One training to run.
pub struct Job<'a> {
    pub level: usize,
    pub name: &'a str,
    pub net: Network,
    pub mask: &'a MaskSet,
    pub train: &'a TrainConfig,
    pub segment: Segment,
}

/// What a finished training leaves: its result, final weights and (at level 0 with late
/// rewinding) the weights at the rewind point.
pub struct Trained {
    pub result: VariantResult,
    pub weights: StateDict,
    pub snapshot: Option<StateDict>,
    /// Read back from disk rather than trained now.
    pub resumed: bool,
}

impl Runner<'_> {
    /// Whether `name` at `level` is already complete on disk.
    pub fn is_done(&self, level: usize, name: &str) -> bool {
        self.dir.variant(level, name).is_complete()
    }

    /// Trains `jobs` side by side, one thread each (a LeNet step keeps one core busy): the first
    /// on this thread, reporting its progress to `obs`; every one's end reported. In the order
    /// given.
    pub fn run_all(&self, jobs: Vec<Job>, obs: &mut dyn Observer) -> Result<Vec<Trained>> {
        let mut jobs = jobs.into_iter();
        let Some(first) = jobs.next() else {
            return Ok(Vec::new());
        };
        std::thread::scope(|s| {
            let handles: Vec<_> = jobs
                .map(|job| {
                    let (level, name) = (job.level, job.name);
                    (
                        level,
                        name,
                        s.spawn(move || self.run(job, &mut train::Silent)),
                    )
                })
                .collect();
            let first = self.run(first, obs);
            let mut out = Vec::with_capacity(handles.len() + 1);
            out.push(first);
            for (level, name, h) in handles {
                let done = h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
                if let Ok(t) = &done {
                    obs.finished(self.replicate, level, name, t.resumed);
                }
                out.push(done);
            }
            out.into_iter().collect()
        })
    }

    /// Trains `job`, or reads it back if a previous run finished it.
    pub fn run(&self, job: Job, obs: &mut dyn Observer) -> Result<Trained> {
        let vdir = self.dir.variant(job.level, job.name);
        let rewind_ready = job.segment.snapshot_at.is_none() || self.dir.rewind_point().exists();
        if vdir.is_complete() && rewind_ready {
            let result: VariantResult = read_json(&vdir.result())?;
            let (weights, _) = tensors::load(&vdir.weights())?;
            obs.finished(self.replicate, job.level, job.name, true);
            return Ok(Trained {
                result,
                weights,
                snapshot: None,
                resumed: true,
            });
        }
        obs.begin(self.replicate, job.level, job.name);
        let started = std::time::Instant::now();
        let outcome = train::train(
            job.net,
            self.setup.data,
            Some(job.mask),
            job.train,
            self.setup.device,
            job.segment,
            obs,
        )?;
        let weights = outcome.network.state_dict();
        job.mask.save(&vdir.mask())?;
        tensors::save(&vdir.weights(), &weights, None)?;
        write_jsonl(&vdir.metrics(), &outcome.records)?;
        let result = VariantResult::from_outcome(&outcome);
        // Beside the result, not in it: timings differ between reruns, results must not.
        write_json(
            &vdir.timing(),
            &Timing {
                seconds: started.elapsed().as_secs_f64(),
            },
        )?;
        if let Some(s) = &outcome.snapshot {
            tensors::save(&self.dir.rewind_point(), s, None)?;
        }
        // Written last: its presence means the variant is complete.
        write_json(&vdir.result(), &result)?;
        obs.finished(self.replicate, job.level, job.name, false);
        Ok(Trained {
            result,
            weights,
            snapshot: outcome.snapshot,
            resumed: false,
        })
    }
}
