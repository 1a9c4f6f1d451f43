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
pub mod error;
pub mod experiment;
pub mod files;
pub mod layout;
pub mod masks;
pub mod models;
pub mod prune;
pub mod registry;
pub mod report;
pub mod results;
pub mod rng;
pub mod sparse;
pub mod tensors;
pub mod train;

pub use error::{Error, Result};
