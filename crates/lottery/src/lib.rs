//! Find, study and deploy lottery tickets.
//!
//! Data flows one way: [`data`] → [`models`] (+ initialisation) → [`train`] under a
//! [`masks::MaskSet`] → checkpoints in [`tensors`] files; [`deploy`] hands a pruned network to
//! `lottery-sparse` for compaction and sparse inference.

pub mod branch;
pub mod conv;
mod cpu;
pub mod data;
pub mod deploy;
pub mod device;
pub mod experiment;
pub mod layout;
pub mod models;
pub mod report;
pub mod results;
pub mod sparse;
pub mod train;

// The burn-free core, re-exported under the paths the library has always used.
pub use lottery_core::{error, files, masks, prune, registry, rng, stop, tensors};

pub use error::{Error, Result};
