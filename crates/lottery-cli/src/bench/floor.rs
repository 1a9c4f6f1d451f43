//! The machine's own limits, measured: how fast it reads memory (at a given working-set size)
//! and multiplies dense matrices. A kernel's floor is its bytes over the first or its FLOPs over the second.

use std::time::Instant;

use lottery::device::Device;
use lottery::rng::Rng;

/// Bytes per second reading a buffer of `bytes` over and over on all cores: from DRAM for a
/// large buffer, from the caches for one that fits, as a model's weights do on repeated calls.
pub fn read_bandwidth(bytes: usize) -> f64 {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let floats = (bytes / 4).max(1024 * threads);
    let buf = vec![1.0f32; floats];
    // Enough passes that each timing reads at least 256 MiB.
    let passes = ((256usize << 20) / (floats * 4)).max(1);
    let mut best = f64::INFINITY;
    let mut checksum = 0.0;
    for _ in 0..5 {
        let start = Instant::now();
        let total: f32 = std::thread::scope(|s| {
            let parts: Vec<_> = buf
                .chunks(floats.div_ceil(threads))
                .map(|part| s.spawn(move || (0..passes).map(|_| sum(part)).sum::<f32>()))
                .collect();
            parts.into_iter().map(|p| p.join().unwrap_or(0.0)).sum()
        });
        best = best.min(start.elapsed().as_secs_f64());
        checksum += total;
    }
    // Keeps the sums observable so the reads cannot be optimised away.
    std::hint::black_box(checksum);
    (floats * 4 * passes) as f64 / best
}

/// Eight independent lanes, so the adds never wait on each other.
fn sum(xs: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let mut chunks = xs.chunks_exact(8);
    for c in &mut chunks {
        for k in 0..8 {
            acc[k] += c[k];
        }
    }
    acc.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

/// FLOP/s of a 1024³ f32 matrix product in burn on the CPU, the best of a few.
pub fn gemm_rate() -> f64 {
    use burn::tensor::{Tensor, TensorData};
    const N: usize = 1024;
    let device = Device::flex();
    let mut rng = Rng::new(11);
    let mut matrix = || {
        let v: Vec<f32> = (0..N * N).map(|_| rng.normal() as f32).collect();
        Tensor::<2>::from_data(TensorData::new(v, [N, N]), &device)
    };
    let (a, b) = (matrix(), matrix());
    let mut best = f64::INFINITY;
    for _ in 0..4 {
        let start = Instant::now();
        let c = a.clone().matmul(b.clone());
        std::hint::black_box(c.into_data());
        best = best.min(start.elapsed().as_secs_f64());
    }
    2.0 * (N * N * N) as f64 / best
}
