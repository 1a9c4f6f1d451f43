//! `random_prune`: a random mask with the ticket's per-layer counts, rewound like the ticket
//! (the LTH paper's second control). If the ticket's advantage is *which* weights it keeps,
//! this loses it.

use crate::error::Result;
use crate::experiment::level::Level;
use crate::masks::MaskSet;
use crate::models::Network;
use crate::prune;

use super::Control;

pub struct RandomPrune;

impl Control for RandomPrune {
    fn name(&self) -> &'static str {
        "random_prune"
    }
    fn about(&self) -> &'static str {
        "a random mask with the ticket's per-layer counts, from the ticket's starting weights"
    }
    fn start(&self, l: &Level) -> Result<(Network, MaskSet)> {
        let mask = prune::random_like(l.mask, l.seed ^ 0xa11 ^ (l.level as u64) << 20);
        Ok((l.setup.network(l.start)?, mask))
    }
}
