//! Learning-rate schedules: linear warm-up, then step decay at milestones.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// Iterations over which the rate rises linearly from lr/warmup to lr (0: none).
    #[serde(default)]
    pub warmup: usize,
    /// Iterations at which the rate is multiplied by `gamma` (empty: constant).
    #[serde(default)]
    pub milestones: Vec<usize>,
    #[serde(default = "gamma")]
    pub gamma: f64,
}

fn gamma() -> f64 {
    0.1
}

impl Schedule {
    pub fn constant() -> Self {
        Schedule {
            warmup: 0,
            milestones: Vec::new(),
            gamma: gamma(),
        }
    }

    pub fn validate(&self) -> Result<()> {
        if !(self.gamma > 0.0 && self.gamma.is_finite()) {
            return Err(Error::config(
                "gamma",
                format!("{} must be positive", self.gamma),
            ));
        }
        if self.milestones.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Error::config(
                "milestones",
                format!("{:?} must be increasing", self.milestones),
            ));
        }
        Ok(())
    }

    /// The rate for (0-based) iteration `it`.
    pub fn lr(&self, base: f64, it: usize) -> f64 {
        let warm = if self.warmup > 0 && it < self.warmup {
            (it + 1) as f64 / self.warmup as f64
        } else {
            1.0
        };
        let decays = self.milestones.iter().filter(|&&m| it >= m).count();
        base * warm * self.gamma.powi(decays as i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_steps() {
        let s = Schedule {
            warmup: 4,
            milestones: vec![10, 20],
            gamma: 0.5,
        };
        assert_eq!(s.lr(1.0, 0), 0.25);
        assert_eq!(s.lr(1.0, 3), 1.0);
        assert_eq!(s.lr(1.0, 9), 1.0);
        assert_eq!(s.lr(1.0, 10), 0.5);
        assert_eq!(s.lr(1.0, 25), 0.25);
        assert_eq!(Schedule::constant().lr(0.3, 1000), 0.3);
        assert!(
            Schedule {
                warmup: 0,
                milestones: vec![5, 5],
                gamma: 0.1
            }
            .validate()
            .is_err()
        );
    }
}
