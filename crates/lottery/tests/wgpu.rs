//! The GPU path for real (`cargo test --workspace --test wgpu -- --ignored`: it needs a GPU
//! adapter, so the plain `cargo test --workspace` builds it and leaves it out; CI runs it on
//! Mesa's software Vulkan driver, lavapipe, from the same build): LeNet-300-100 with 90% of its
//! weights pruned trains on the `wgpu` device and on the CPU from the same init and data order.
//! Every pruned weight is exactly 0.0 on the device after every step, no parameter goes through
//! the host, and the two reach the same test accuracy within a point.
#![cfg(feature = "wgpu")]

use lottery::device::{self, Device};
use lottery::experiment::{load_data, presets};
use lottery::masks::MaskSet;
use lottery::models::Architecture;
use lottery::models::init::{InitScheme, initialise};
use lottery::train::eval::evaluate_valid;
use lottery::train::{Length, Trainer};

#[test]
#[ignore = "needs a GPU adapter (Vulkan, Metal or DX12): cargo test --workspace --test wgpu -- --ignored"]
fn lenet_trains_on_wgpu_as_on_the_cpu_and_pruned_weights_stay_zero() {
    let mut cfg = presets::preset("quick").unwrap();
    let data = load_data(&cfg).unwrap();
    cfg.train.length = Length::Iterations(300);
    let cpu = Device::flex();
    let gpu = device::parse("wgpu").unwrap();
    let net = Architecture::parse("lenet_300_100")
        .unwrap()
        .build(data.train.shape, data.train.outputs(), &cpu)
        .unwrap();
    let net = initialise(net, InitScheme::GlorotNormal, 0);
    // Every tenth weight kept.
    let mut mask = MaskSet::ones(&net.shapes(), &net.prunable());
    for m in mask.masks.values_mut() {
        for (i, k) in m.data.iter_mut().enumerate() {
            *k = if i % 10 == 0 { 1.0 } else { 0.0 };
        }
    }

    let mut on_cpu = Trainer::new(net.clone(), &data, Some(&mask), &cfg.train, &cpu).unwrap();
    let mut on_gpu = Trainer::new(net, &data, Some(&mask), &cfg.train, &gpu).unwrap();
    for step in 1..=300 {
        on_cpu.step().unwrap();
        on_gpu.step().unwrap();
        // A host copy for the check only: the weights as they are on the device.
        let w = on_gpu.network().state_dict();
        for (name, m) in &mask.masks {
            let revived = m
                .data
                .iter()
                .zip(&w[name].data)
                .filter(|(k, x)| **k == 0.0 && **x != 0.0)
                .count();
            assert_eq!(revived, 0, "step {step}: {name} has pruned weights ≠ 0.0");
        }
    }
    assert_eq!(on_gpu.host_updates(), 0, "parameters stayed on the device");
    let (_, acc_cpu) = evaluate_valid(on_cpu.network(), &data.test);
    let (_, acc_gpu) = evaluate_valid(on_gpu.network(), &data.test);
    // A 90%-pruned LeNet after 300 steps from init: well above chance (10%), not yet converged.
    assert!(acc_cpu > 0.5, "the CPU run learned: {acc_cpu}");
    assert!(
        (acc_cpu - acc_gpu).abs() <= 0.01,
        "wgpu {acc_gpu} vs cpu {acc_cpu}"
    );
}
