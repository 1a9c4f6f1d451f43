//! Choosing where tensors live: burn's CPU backend by default, a GPU when built with one.

pub use burn::tensor::Device;

use crate::error::{Error, Result};

/// Names accepted by `--device`.
pub const DEVICES: &str = "cpu (default), wgpu (feature `wgpu`), cuda (feature `cuda`)";

/// The device for `name`, without autodiff (training adds it).
pub fn parse(name: &str) -> Result<Device> {
    match name {
        "cpu" | "flex" => Ok(Device::flex()),
        #[cfg(feature = "wgpu")]
        "wgpu" | "gpu" => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
        #[cfg(feature = "cuda")]
        "cuda" => Ok(Device::cuda(0)),
        // Names of devices this build lacks (with both features, none reaches here).
        #[allow(unreachable_patterns)]
        "wgpu" | "gpu" | "cuda" => Err(Error::config(
            "device",
            format!(
                "`{name}` needs lottery built with `--features {}`",
                if name == "cuda" { "cuda" } else { "wgpu" }
            ),
        )),
        _ => Err(Error::config(
            "device",
            format!("`{name}` is not one of {DEVICES}"),
        )),
    }
}
