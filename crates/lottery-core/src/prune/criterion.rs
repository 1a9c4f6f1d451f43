//! What a pruning criterion is: a rule that scores every prunable weight; the lowest scores are
//! pruned first. The scope (layer-wise or global) decides how many go where, so a criterion
//! only scores. Each criterion lives in `criteria/<name>.rs` and is one line of [`REGISTRY`].

use crate::error::{Error, Result};
use crate::masks::MaskSet;
use crate::tensors::StateDict;

use super::criteria;

/// Everything a criterion may read, in PyTorch names and layouts.
pub struct Context<'a> {
    /// The weights at the end of training (what magnitude pruning looks at).
    pub trained: &'a StateDict,
    /// The weights at the rewind point (the initialisation, or iteration K). Criteria that
    /// compare the trained weights with where they started need it.
    pub rewind: Option<&'a StateDict>,
    /// The current mask: only weights it keeps are candidates.
    pub mask: &'a MaskSet,
    /// Gradients of the training loss at the rewind point on one batch (SNIP), same names.
    pub gradients: Option<&'a StateDict>,
    /// Seed of any randomness a criterion draws (derived per level by the caller).
    pub seed: u64,
}

/// What a criterion needs beyond the trained weights and the mask.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// The weights at the rewind point or initialisation.
    pub rewind: bool,
    /// Gradients on a batch at the rewind point.
    pub gradients: bool,
}

impl Needs {
    /// The weights at the rewind point, for criteria comparing them with the trained ones.
    pub const REWIND: Needs = Needs {
        rewind: true,
        gradients: false,
    };
}

pub trait Criterion: Sync {
    /// The registry name, as `--criterion` takes it.
    fn name(&self) -> &'static str;
    /// One line for `--help` and error messages.
    fn about(&self) -> &'static str;
    fn needs(&self) -> Needs {
        Needs::default()
    }
    /// One score per entry of tensor `name` (row-major, PyTorch layout). Entries the mask has
    /// already pruned may hold anything; ties are broken by position.
    fn score(&self, ctx: &Context, name: &str) -> Result<Vec<f32>>;
}

/// Every criterion by name. A new one: a file in `criteria/` and a line here.
pub static REGISTRY: &[&dyn Criterion] = &[
    &criteria::magnitude::Magnitude,
    &criteria::large_init::LargeInit,
    &criteria::large_final_same_sign::LargeFinalSameSign,
    &criteria::magnitude_increase::MagnitudeIncrease,
    &criteria::movement::Movement,
    &criteria::random::Random,
    &criteria::snip::Snip,
];

/// The criterion called `name`, or an error listing the known ones.
pub fn lookup(name: &str) -> Result<&'static dyn Criterion> {
    crate::registry::find(REGISTRY, name, "criterion", |c| c.name())
}

pub fn names() -> Vec<&'static str> {
    REGISTRY.iter().map(|c| c.name()).collect()
}

impl Context<'_> {
    /// The trained weights of `name`.
    pub fn trained(&self, name: &str) -> Result<&[f32]> {
        tensor(self.trained, name, "trained weights")
    }

    /// The rewind-point weights of `name`; an error naming `criterion` when absent.
    pub fn rewind(&self, name: &str, criterion: &str) -> Result<&[f32]> {
        let dict = self.rewind.ok_or_else(|| {
            Error::config(
                "criterion",
                format!("{criterion} compares with the initial weights; give them (--init FILE)"),
            )
        })?;
        tensor(dict, name, "initial weights")
    }

    /// The gradients of `name`; an error naming `criterion` when absent.
    pub fn gradients(&self, name: &str, criterion: &str) -> Result<&[f32]> {
        let dict = self.gradients.ok_or_else(|| {
            Error::config(
                "criterion",
                format!("{criterion} needs gradients on a batch of training data"),
            )
        })?;
        tensor(dict, name, "gradients")
    }
}

fn tensor<'a>(dict: &'a StateDict, name: &str, what: &str) -> Result<&'a [f32]> {
    dict.get(name)
        .map(|t| t.data.as_slice())
        .ok_or_else(|| Error::config("criterion", format!("the {what} have no tensor `{name}`")))
}

/// Scores from two tensors of the same shape, entry by entry.
pub fn zip_scores(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> Vec<f32> {
    a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect()
}
