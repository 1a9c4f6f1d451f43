//! `snip`: connection sensitivity at the rewind point, `|g · w|` on one batch (Lee et al. 2019).
//! The gradient and the weight are both taken at the rewind point, not after training.

use crate::error::Result;
use crate::prune::criterion::{Context, Criterion, Needs, zip_scores};

pub struct Snip;

impl Criterion for Snip {
    fn name(&self) -> &'static str {
        "snip"
    }
    fn about(&self) -> &'static str {
        "|∂L/∂w · w| at the rewind point on one batch (Lee et al. 2019)"
    }
    fn needs(&self) -> Needs {
        Needs {
            rewind: true,
            gradients: true,
        }
    }
    fn score(&self, ctx: &Context, name: &str) -> Result<Vec<f32>> {
        let (g, w) = (
            ctx.gradients(name, self.name())?,
            ctx.rewind(name, self.name())?,
        );
        Ok(zip_scores(g, w, |g, w| (g * w).abs()))
    }
}
