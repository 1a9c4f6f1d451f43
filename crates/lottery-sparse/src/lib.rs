//! The deployable side of a lottery ticket, with no training stack behind it: compaction of a
//! pruned network ([`compact`]), the `.lsm` file ([`format`]) and the kernels that run it
//! ([`infer::Engine`]), for chains of convolutions and linear layers and for small vision
//! transformers ([`transformer`]). A user shipping a ticket links only this crate.

pub mod background;
pub mod compact;
pub mod crc32;
pub mod csr;
pub mod dict;
pub mod error;
pub mod format;
pub mod infer;
pub mod model;
pub mod plans;
#[cfg(test)]
mod tests;
pub mod train;
pub mod transformer;

pub use compact::{DenseKind, DenseLayer, DenseModel, LayerReport, compact, compact_transformer};
pub use csr::Csr;
pub use error::{Error, Problem};
pub use format::Encoding;
pub use infer::{Engine, Scratch};
pub use model::{CompactModel, ConvLayer, Layer, LinearLayer, Pool};
pub use transformer::{BlockLayer, EmbedLayer, Norm, Projection, ReadoutLayer};
