//! Controls: trainings derived from a level's ticket that tell whether the ticket's result is
//! owed to its mask, its initialisation, or neither. Each lives in its own file and is one line
//! of [`REGISTRY`]; `lottery run` trains the configured ones beside the ticket, and every
//! control is also a branch (`lottery branch reinit DIR`).

pub mod random_prune;
pub mod reinit;

use crate::error::Result;
use crate::masks::MaskSet;
use crate::models::Network;

use super::level::Level;

pub trait Control: Sync {
    /// The registry name: the variant's directory and column.
    fn name(&self) -> &'static str;
    fn about(&self) -> &'static str;
    /// The network (starting weights) and the mask this control trains under at `level`.
    fn start(&self, level: &Level) -> Result<(Network, MaskSet)>;
}

/// Every control by name. A new one: a file here and a line in this list.
pub static REGISTRY: &[&dyn Control] = &[&reinit::Reinit, &random_prune::RandomPrune];

/// The control called `name` (`random-prune` is read as `random_prune`).
pub fn lookup(name: &str) -> Result<&'static dyn Control> {
    crate::registry::find(REGISTRY, name, "controls", |c| c.name())
}

pub fn names() -> Vec<&'static str> {
    REGISTRY.iter().map(|c| c.name()).collect()
}
