//! `random`: a uniformly random choice of the weights to prune (a control), seeded per tensor.

use crate::error::Result;
use crate::prune::criterion::{Context, Criterion};
use crate::rng::Rng;

pub struct Random;

impl Criterion for Random {
    fn name(&self) -> &'static str {
        "random"
    }
    fn about(&self) -> &'static str {
        "uniform random scores (a control)"
    }
    fn score(&self, ctx: &Context, name: &str) -> Result<Vec<f32>> {
        let n = ctx.trained(name)?.len();
        let mut rng = Rng::derive(ctx.seed, name);
        Ok((0..n).map(|_| rng.uniform() as f32).collect())
    }
}
