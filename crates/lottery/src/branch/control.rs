//! Every control as a branch: `lottery branch reinit DIR` trains the `reinit` control at the
//! experiment's levels after the fact, exactly as `lottery run --controls reinit` would have.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::experiment::controls::Control;
use crate::results::VariantResult;

use super::{Branch, LevelContext};

/// A control, run as a branch.
pub struct ControlBranch(pub &'static dyn Control);

/// A control has no settings of its own: it trains as the ticket trained.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoSettings {}

impl Branch for ControlBranch {
    type Config = NoSettings;

    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn about(&self) -> &'static str {
        self.0.about()
    }
    fn level(
        &self,
        _cfg: &NoSettings,
        ctx: &mut LevelContext,
    ) -> Result<BTreeMap<String, VariantResult>> {
        let (net, mask) = self.0.start(&ctx.level)?;
        let result = ctx.train(self.0.name(), net, &mask)?;
        Ok([(self.0.name().to_string(), result)].into())
    }
}
