//! `movement`: weights that moved furthest from where they started survive: `|w_final − w_init|`.

use crate::error::Result;
use crate::prune::criterion::{Context, Criterion, Needs, zip_scores};

pub struct Movement;

impl Criterion for Movement {
    fn name(&self) -> &'static str {
        "movement"
    }
    fn about(&self) -> &'static str {
        "|w_final − w_init|"
    }
    fn needs(&self) -> Needs {
        Needs::REWIND
    }
    fn score(&self, ctx: &Context, name: &str) -> Result<Vec<f32>> {
        let (f, i) = (ctx.trained(name)?, ctx.rewind(name, self.name())?);
        Ok(zip_scores(f, i, |wf, wi| (wf - wi).abs()))
    }
}
