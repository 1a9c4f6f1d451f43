//! The pruning criteria, one file each; [`super::criterion::REGISTRY`] lists them.

pub mod large_final_same_sign;
pub mod large_init;
pub mod magnitude;
pub mod magnitude_increase;
pub mod movement;
pub mod random;
pub mod snip;
