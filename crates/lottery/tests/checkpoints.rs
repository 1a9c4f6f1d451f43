//! Checkpoints load from PyTorch: names, layouts and the forward pass agree.

use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};
use lottery::models::Architecture;
use lottery::tensors;

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn pytorch_state_dict_loads_and_computes_the_same_logits() {
    let device = Device::flex();
    let (dict, meta) = tensors::load(&fixture("torch_mlp_16.safetensors")).unwrap();
    assert_eq!(meta.get("format").map(String::as_str), Some("pt"));
    let net = Architecture::parse("mlp_16")
        .unwrap()
        .build([1, 28, 28], 10, &device)
        .unwrap();
    let net = net.load_state_dict(&dict).unwrap();
    assert_eq!(net.state_dict(), dict, "saving gives back PyTorch's layout");

    let (io, _) = tensors::load(&fixture("torch_mlp_16_io.safetensors")).unwrap();
    let x = &io["input"];
    let x = Tensor::<4>::from_data(TensorData::new(x.data.clone(), [2, 1, 28, 28]), &device);
    let got = net.forward(x).into_data().try_to_vec::<f32>().unwrap();
    for (g, e) in got.iter().zip(&io["logits"].data) {
        assert!((g - e).abs() <= 1e-4 * e.abs().max(1.0), "{g} vs {e}");
    }
}

#[test]
fn wrong_architecture_is_refused_by_name() {
    let device = Device::flex();
    let (dict, _) = tensors::load(&fixture("torch_mlp_16.safetensors")).unwrap();
    let net = Architecture::parse("mlp_32")
        .unwrap()
        .build([1, 28, 28], 10, &device)
        .unwrap();
    let e = net.load_state_dict(&dict).unwrap_err().to_string();
    assert!(
        e.contains("fc1.weight") && e.contains("[16, 784]") && e.contains("[32, 784]"),
        "{e}"
    );
    let lenet = Architecture::parse("lenet_300_100")
        .unwrap()
        .build([1, 28, 28], 10, &device)
        .unwrap();
    let e = lenet.load_state_dict(&dict).unwrap_err().to_string();
    assert!(e.contains("fc1.weight") && e.contains("[300, 784]"), "{e}");
}
