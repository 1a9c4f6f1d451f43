//! The deployable side of a lottery ticket: sparse weight matrices and the kernels that run
//! them, with no training stack behind them. A user shipping a ticket links only this crate.

pub mod csr;

pub use csr::Csr;
