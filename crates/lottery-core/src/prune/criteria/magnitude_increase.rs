//! `magnitude_increase`: weights whose magnitude grew most in training survive (Zhou et al.):
//! `|w_final| − |w_init|`.

use crate::error::Result;
use crate::prune::criterion::{Context, Criterion, Needs, zip_scores};

pub struct MagnitudeIncrease;

impl Criterion for MagnitudeIncrease {
    fn name(&self) -> &'static str {
        "magnitude_increase"
    }
    fn about(&self) -> &'static str {
        "|w_final| − |w_init| (Zhou et al.)"
    }
    fn needs(&self) -> Needs {
        Needs::REWIND
    }
    fn score(&self, ctx: &Context, name: &str) -> Result<Vec<f32>> {
        let (f, i) = (ctx.trained(name)?, ctx.rewind(name, self.name())?);
        Ok(zip_scores(f, i, |wf, wi| wf.abs() - wi.abs()))
    }
}
