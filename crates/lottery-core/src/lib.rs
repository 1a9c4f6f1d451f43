//! What a lottery ticket is, with no training engine behind it: state dicts of host tensors in
//! PyTorch's names and layouts and their safetensors files ([`tensors`]), masks ([`masks`]),
//! pruning criteria and scopes ([`prune`]), the seeded random numbers random pruning draws
//! ([`rng`]), the process-wide stop request a scheduler's signal sets ([`stop`]), and the one
//! error type. The training library (`lottery`) re-exports these
//! modules; the Python package and the deploy path use them without compiling burn.

pub mod error;
pub mod files;
pub mod masks;
pub mod prune;
pub mod registry;
pub mod rng;
pub mod stop;
pub mod tensors;

pub use error::{Error, Result};
