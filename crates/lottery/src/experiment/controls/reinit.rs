//! `reinit`: the ticket's mask on a fresh initialisation (the LTH paper's control). If the
//! ticket's advantage is its initial values, this loses it.

use crate::error::Result;
use crate::experiment::level::Level;
use crate::masks::MaskSet;
use crate::models::Network;

use super::Control;

pub struct Reinit;

impl Control for Reinit {
    fn name(&self) -> &'static str {
        "reinit"
    }
    fn about(&self) -> &'static str {
        "the ticket's mask on a fresh initialisation from another seed"
    }
    fn start(&self, l: &Level) -> Result<(Network, MaskSet)> {
        // Another seed's initialisation per level, far from the replicate seeds.
        let seed = l.seed.wrapping_add(1_000_003 * l.level as u64);
        Ok((l.setup.fresh(seed)?, l.mask.clone()))
    }
}
