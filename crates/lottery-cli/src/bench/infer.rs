//! `lottery bench infer`: the compact sparse model against the dense network it came from, on
//! one machine in one run, beside the machine's floor.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::{Tensor, TensorData};
use clap::Args;
use lottery::device::Device;
use lottery::models::{Architecture, init};
use lottery::rng::Rng;
use lottery_sparse::{CompactModel, Engine, Scratch, format};
use serde::{Deserialize, Serialize};

use super::{floor, median};

#[derive(Args, Debug)]
pub struct BenchInferArgs {
    /// A compact model written by `lottery compact`.
    pub model: PathBuf,
    /// A Python with torch (and safetensors) installed: also time the dense network in PyTorch
    /// with bench/torch_infer.py.
    #[arg(long)]
    pub torch: Option<PathBuf>,
    /// Weights PyTorch loads for its dense network (a `lottery export` file); without it
    /// PyTorch keeps its own initialisation, which times the same.
    #[arg(long)]
    pub torch_weights: Option<PathBuf>,
    /// Batch-1 calls timed per network; batches get proportionally fewer.
    #[arg(long, default_value_t = 2000)]
    pub calls: usize,
    /// Threads for the sparse kernels (default: all cores).
    #[arg(long, visible_alias = "jobs")]
    pub threads: Option<usize>,
    /// Use the portable kernels even where AVX2/FMA are available, to see what SIMD brings.
    #[arg(long)]
    pub scalar: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Medians for one network, and how far the timed rounds spread.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Speed {
    pub batch1_latency_us: f64,
    pub batch64_samples_per_s: f64,
    pub batch256_samples_per_s: f64,
    /// Slowest over fastest round, the worst of the three measurements (1 = steady; not
    /// reported by the PyTorch script or for floors).
    #[serde(default = "steady")]
    pub spread: f64,
}

fn steady() -> f64 {
    1.0
}

/// Timed rounds vary more than this (slowest / fastest): the numbers are not to be trusted.
const WIDE_SPREAD: f64 = 1.5;

/// What bench/torch_infer.py reports: its speed, and PyTorch's own GEMM rate.
#[derive(Debug, Deserialize)]
struct TorchReport {
    #[serde(flatten)]
    speed: Speed,
    gemm_gflop_s: f64,
}

pub fn run(a: BenchInferArgs) -> Result<()> {
    if a.calls < 20 {
        bail!("invalid --calls: at least 20 are needed for a median");
    }
    let model = format::load(&a.model)?;
    let mut engine = Engine::new(model.clone())?.with_simd(!a.scalar);
    if let Some(t) = a.threads {
        engine = engine.with_threads(t);
    }
    let mut rng = Rng::new(5);
    let inputs: Vec<f32> = (0..256 * model.input_len())
        .map(|_| rng.normal() as f32)
        .collect();

    let load = load_average();
    eprintln!("timing the compact model…");
    let sparse = time_sparse(&engine, &inputs, a.calls);
    eprintln!("timing the dense network in burn…");
    let dense = time_dense(&model, &inputs, a.calls)?;
    let torch = match &a.torch {
        Some(python) => {
            eprintln!("timing the dense network in PyTorch…");
            Some(time_torch(
                python,
                &model,
                a.torch_weights.as_deref(),
                a.calls,
            )?)
        }
        None => None,
    };
    // Bytes the kernels read per call and the multiply-adds they do per example.
    let sparse_bytes = model.weight_bytes();
    let (dense_params, dense_macs) = dense_parameters(&model)?;
    let dense_bytes = dense_params * 4;
    eprintln!("measuring memory bandwidth and GEMM rate…");
    let dram = floor::read_bandwidth(256 << 20);
    let (sparse_bw, dense_bw) = (
        floor::read_bandwidth(sparse_bytes),
        floor::read_bandwidth(dense_bytes),
    );
    // The best dense matrix product this machine runs, burn's or PyTorch's.
    let gemm = torch
        .as_ref()
        .map_or(0.0, |t| t.gemm_gflop_s * 1e9)
        .max(floor::gemm_rate());
    let torch = torch.map(|t| t.speed);
    let floor_of = |bytes: usize, bandwidth: f64, macs: usize| {
        let per_call =
            |batch: f64| (bytes as f64 / bandwidth).max(2.0 * batch * macs as f64 / gemm);
        Speed {
            batch1_latency_us: per_call(1.0) * 1e6,
            batch64_samples_per_s: 64.0 / per_call(64.0),
            batch256_samples_per_s: 256.0 / per_call(256.0),
            spread: 1.0,
        }
    };
    let sparse_macs = model.macs();
    let sparse_floor = floor_of(sparse_bytes, sparse_bw, sparse_macs);
    let dense_floor = floor_of(dense_bytes, dense_bw, dense_macs);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut measured = vec![
        ("compact sparse", &sparse, &sparse_floor),
        ("dense (burn)", &dense, &dense_floor),
    ];
    if let Some(t) = &torch {
        measured.push(("dense (PyTorch)", t, &dense_floor));
    }
    let cautions = cautions(&measured, load, cores);

    if a.json {
        outln!(
            "{}",
            serde_json::json!({
                "model": a.model,
                "source": model.source,
                "live_weights": model.nnz(),
                "threads": engine.threads(),
                "simd": engine.simd(),
                "sparse": sparse,
                "dense": dense,
                "torch": torch,
                "cautions": cautions,
                "load_average": load,
                "floor": {
                    "memory_bandwidth_gb_s": dram / 1e9,
                    "sparse_weights_bytes": sparse_bytes,
                    "sparse_read_gb_s": sparse_bw / 1e9,
                    "dense_weights_bytes": dense_bytes,
                    "dense_read_gb_s": dense_bw / 1e9,
                    "gemm_gflop_s": gemm / 1e9,
                    "sparse": sparse_floor,
                    "dense": dense_floor,
                },
            })
        );
        return Ok(());
    }
    outln!(
        "{} ({}, {} live weights; dense: {} parameters; {} threads{})",
        a.model.display(),
        model.source,
        model.nnz(),
        dense_params,
        engine.threads(),
        if engine.simd() { ", AVX2/FMA" } else { "" }
    );
    outln!(
        "{:<28} {:>16} {:>18} {:>18} {:>8}",
        "",
        "batch-1 µs",
        "batch-64 ex/s",
        "batch-256 ex/s",
        "spread"
    );
    let row = |name: &str, s: &Speed| {
        outln!(
            "{:<28} {:>16.2} {:>18.0} {:>18.0} {:>7.2}×",
            name,
            s.batch1_latency_us,
            s.batch64_samples_per_s,
            s.batch256_samples_per_s,
            s.spread
        )
    };
    row("compact sparse (ours)", &sparse);
    row("dense (burn flex)", &dense);
    if let Some(t) = &torch {
        row("dense (PyTorch)", t);
        outln!(
            "sparse vs PyTorch: batch-1 latency {:.1}× lower, batch-256 throughput {:.1}× higher",
            t.batch1_latency_us / sparse.batch1_latency_us,
            sparse.batch256_samples_per_s / t.batch256_samples_per_s
        );
    }
    row("floor, sparse", &sparse_floor);
    row("floor, dense", &dense_floor);
    outln!(
        "floor = max(weight bytes / read bandwidth at that size, FLOPs / GEMM rate), measured now: \
         sparse {sparse_bytes} B at {:.1} GB/s, dense {dense_bytes} B at {:.1} GB/s \
         (DRAM {:.1} GB/s), GEMM {:.1} GFLOP/s",
        sparse_bw / 1e9,
        dense_bw / 1e9,
        dram / 1e9,
        gemm / 1e9
    );
    outln!("spread = slowest / fastest timed round; medians are shown");
    for c in &cautions {
        outln!("caution: {c}");
    }
    Ok(())
}

/// Median seconds per call of `f`, timing blocks of `block` calls, and the rounds' spread
/// (slowest / fastest).
fn per_call(calls: usize, block: usize, mut f: impl FnMut()) -> (f64, f64) {
    for _ in 0..(calls / 10).max(3) {
        f();
    }
    let times: Vec<f64> = (0..(calls / block).max(5))
        .map(|_| {
            let start = Instant::now();
            for _ in 0..block {
                f();
            }
            start.elapsed().as_secs_f64() / block as f64
        })
        .collect();
    let fastest = times.iter().copied().fold(f64::INFINITY, f64::min);
    let slowest = times.iter().copied().fold(0.0, f64::max);
    (median(times), slowest / fastest.max(1e-12))
}

/// Batch-1 latency over `calls` calls (timed in blocks of 20) and batch-64/256 throughput over
/// proportionally fewer; `at_batch(batch, calls, block)` returns median seconds per call and
/// the rounds' spread.
fn speed(calls: usize, mut at_batch: impl FnMut(usize, usize, usize) -> (f64, f64)) -> Speed {
    let (one, s1) = at_batch(1, calls, 20);
    let (b64, s64) = at_batch(64, (calls * 4 / 64).max(20), 2);
    let (b256, s256) = at_batch(256, (calls * 4 / 256).max(20), 2);
    Speed {
        batch1_latency_us: one * 1e6,
        batch64_samples_per_s: 64.0 / b64,
        batch256_samples_per_s: 256.0 / b256,
        spread: s1.max(s64).max(s256),
    }
}

/// What a reader should know before trusting the table: wide spreads, a busy machine,
/// measurements faster than their floor (an estimate that is off, not a faster machine).
fn cautions(measured: &[(&str, &Speed, &Speed)], load: Option<f64>, cores: usize) -> Vec<String> {
    let mut out = Vec::new();
    for (name, s, floor) in measured {
        if s.spread > WIDE_SPREAD {
            out.push(format!(
                "{name}: rounds differ up to {:.1}× (slowest / fastest); the medians are unreliable, rerun on a quiet machine",
                s.spread
            ));
        }
        if s.batch1_latency_us < floor.batch1_latency_us
            || s.batch256_samples_per_s > floor.batch256_samples_per_s
        {
            out.push(format!(
                "{name}: measured faster than its floor, so the floor estimate (bandwidth at this size, GEMM rate) is off here, not the measurement"
            ));
        }
    }
    if let Some(l) = load
        && l > cores as f64 * 0.5
    {
        out.push(format!(
            "the machine was busy (load average {l:.1} on {cores} cores): other work shares the cores being timed"
        ));
    }
    out
}

/// The 1-minute load average, where the OS tells it (Linux).
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn time_sparse(engine: &Engine, inputs: &[f32], calls: usize) -> Speed {
    let (n_in, n_out) = (engine.model().input_len(), engine.model().classes());
    let mut scratch = Scratch::default();
    let mut out = vec![0.0; 256 * n_out];
    let at_batch = |b: usize, calls: usize, block: usize| {
        per_call(calls, block, || {
            engine.forward_into(&inputs[..b * n_in], b, &mut out[..b * n_out], &mut scratch);
            std::hint::black_box(&out);
        })
    };
    speed(calls, at_batch)
}

/// The dense architecture the model was compacted from, in burn on the CPU. Its weights are a
/// fresh initialisation: dense arithmetic takes the same time whatever the values.
fn time_dense(model: &CompactModel, inputs: &[f32], calls: usize) -> Result<Speed> {
    let device = Device::flex();
    let classes = model.classes();
    let net = init::initialise(
        Architecture::parse(crate::ticket::architecture_of(&model.source))?.build(
            model.input,
            classes,
            &device,
        )?,
        init::InitScheme::KaimingNormal,
        0,
    );
    let [c, h, w] = model.input;
    let n_in = model.input_len();
    let at_batch = |b: usize, calls: usize, block: usize| {
        per_call(calls, block, || {
            let x = Tensor::<4>::from_data(
                TensorData::new(inputs[..b * n_in].to_vec(), [b, c, h, w]),
                &device,
            );
            std::hint::black_box(net.forward(x).into_data());
        })
    };
    Ok(speed(calls, at_batch))
}

/// Parameters and multiply-adds per example of the dense network.
fn dense_parameters(model: &CompactModel) -> Result<(usize, usize)> {
    let device = Device::flex();
    let net = init::initialise(
        Architecture::parse(crate::ticket::architecture_of(&model.source))?.build(
            model.input,
            model.classes(),
            &device,
        )?,
        init::InitScheme::KaimingNormal,
        0,
    );
    let params = net
        .tensors()
        .iter()
        .map(|t| t.shape.iter().product::<usize>())
        .sum();
    // The unpruned network compacts to itself (a fresh initialisation has no zero weight),
    // so its multiply-adds count as the compact model's do.
    let (dense, _) = lottery::deploy::compact(&net, None, &model.source, model.input)?;
    let macs = dense.macs();
    Ok((params, macs))
}

fn time_torch(
    python: &Path,
    model: &CompactModel,
    weights: Option<&Path>,
    calls: usize,
) -> Result<TorchReport> {
    let script = [
        "bench/torch_infer.py",
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../bench/torch_infer.py"),
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
    .context("cannot find bench/torch_infer.py (run from the repository root)")?;
    let [c, h, w] = model.input;
    let mut cmd = Command::new(python);
    cmd.arg(&script)
        .args(["--model", crate::ticket::architecture_of(&model.source)])
        .args(["--input", &format!("{c},{h},{w}")])
        .args(["--classes", &model.classes().to_string()])
        .args(["--calls", &calls.to_string()]);
    if let Some(w) = weights {
        cmd.arg("--weights").arg(w);
    }
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {}", python.display()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        bail!(
            "{} failed: {}",
            script.display(),
            err.lines().last().unwrap_or("no message")
        );
    }
    serde_json::from_slice(&out.stdout)
        .with_context(|| format!("{} printed no result JSON", script.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn speed(us: f64, per_s: f64, spread: f64) -> Speed {
        Speed {
            batch1_latency_us: us,
            batch64_samples_per_s: per_s,
            batch256_samples_per_s: per_s,
            spread,
        }
    }

    #[test]
    fn wide_spreads_busy_machines_and_sub_floor_numbers_are_called_out() {
        let floor = speed(10.0, 1e6, 1.0);
        let fine = speed(20.0, 5e5, 1.1);
        assert!(cautions(&[("x", &fine, &floor)], Some(0.1), 2).is_empty());
        let wide = speed(20.0, 5e5, 20.0);
        let c = cautions(&[("x", &wide, &floor)], Some(0.1), 2);
        assert!(c.len() == 1 && c[0].contains("20.0×"), "{c:?}");
        let below = speed(5.0, 5e5, 1.0);
        let c = cautions(&[("x", &below, &floor)], None, 2);
        assert!(c.len() == 1 && c[0].contains("floor"), "{c:?}");
        let c = cautions(&[("x", &fine, &floor)], Some(3.0), 2);
        assert!(c.len() == 1 && c[0].contains("busy"), "{c:?}");
    }
}
