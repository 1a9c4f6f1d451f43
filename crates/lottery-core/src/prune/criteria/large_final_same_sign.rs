//! `large_final_same_sign`: large trained weights that kept their initial sign (Zhou et al.):
//! `max(0, w_final · sign(w_init))`, so a weight whose sign flipped scores 0 and goes first.

use crate::error::Result;
use crate::prune::criterion::{Context, Criterion, Needs, zip_scores};

pub struct LargeFinalSameSign;

impl Criterion for LargeFinalSameSign {
    fn name(&self) -> &'static str {
        "large_final_same_sign"
    }
    fn about(&self) -> &'static str {
        "|w_final| where sign(w_final) = sign(w_init), else 0 (Zhou et al.)"
    }
    fn needs(&self) -> Needs {
        Needs::REWIND
    }
    fn score(&self, ctx: &Context, name: &str) -> Result<Vec<f32>> {
        let (f, i) = (ctx.trained(name)?, ctx.rewind(name, self.name())?);
        // An initial zero has no sign to keep: it scores 0, like a flip.
        Ok(zip_scores(f, i, |wf, wi| {
            if wi == 0.0 {
                0.0
            } else {
                (wf * wi.signum()).max(0.0)
            }
        }))
    }
}
