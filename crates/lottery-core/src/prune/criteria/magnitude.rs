//! `magnitude`: the largest trained weights survive (Zhou et al.'s `large_final`; the LTH paper).

use crate::error::Result;
use crate::prune::criterion::{Context, Criterion};

pub struct Magnitude;

impl Criterion for Magnitude {
    fn name(&self) -> &'static str {
        "magnitude"
    }
    fn about(&self) -> &'static str {
        "|w_final| (the LTH paper; Zhou et al.'s large_final)"
    }
    fn score(&self, ctx: &Context, name: &str) -> Result<Vec<f32>> {
        Ok(ctx.trained(name)?.iter().map(|w| w.abs()).collect())
    }
}
