//! `large_init`: the largest *initial* weights survive, whatever training did (Zhou et al.).

use crate::error::Result;
use crate::prune::criterion::{Context, Criterion, Needs};

pub struct LargeInit;

impl Criterion for LargeInit {
    fn name(&self) -> &'static str {
        "large_init"
    }
    fn about(&self) -> &'static str {
        "|w_init| (Zhou et al.)"
    }
    fn needs(&self) -> Needs {
        Needs::REWIND
    }
    fn score(&self, ctx: &Context, name: &str) -> Result<Vec<f32>> {
        Ok(ctx
            .rewind(name, self.name())?
            .iter()
            .map(|w| w.abs())
            .collect())
    }
}
