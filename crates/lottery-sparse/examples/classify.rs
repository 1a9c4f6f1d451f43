//! Loading a compact model and running it, with nothing but this crate:
//! `cargo run --release -p lottery-sparse --example classify -- model.lsm [calls]`.
//! Feeds fixed pseudo-random inputs and prints the predicted classes of a few, the batch-1
//! latency and the batch-256 throughput.

use std::time::Instant;

use lottery_sparse::{Engine, Scratch, format};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: classify MODEL.lsm [CALLS]")?;
    let calls: usize = args.next().map_or(Ok(20_000), |c| c.parse())?;
    let model = format::load(path.as_ref())?;
    let engine = Engine::new(model)?;
    let (n_in, classes) = (engine.model().input_len(), engine.model().classes());
    // A fixed pseudo-random input batch: values do not change the arithmetic's speed.
    let x: Vec<f32> = (0..256 * n_in)
        .map(|i| ((i * 2_654_435_761usize) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    let logits = engine.forward(&x[..8 * n_in], 8);
    let predicted: Vec<usize> = logits
        .chunks(classes)
        .map(|row| (0..classes).fold(0, |b, i| if row[i] > row[b] { i } else { b }))
        .collect();
    println!(
        "{} ({} live weights): classes {predicted:?}",
        engine.model().source,
        engine.model().nnz()
    );
    let (mut scratch, mut out) = (Scratch::default(), vec![0.0; classes]);
    let mut times = Vec::with_capacity(calls / 100);
    for _ in 0..calls / 100 {
        let start = Instant::now();
        for _ in 0..100 {
            engine.forward_into(&x[..n_in], 1, &mut out, &mut scratch);
        }
        times.push(start.elapsed().as_secs_f64() / 100.0);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "batch-1 latency: median {:.2} µs, best {:.2} µs over {} blocks of 100",
        times[times.len() / 2] * 1e6,
        times[0] * 1e6,
        times.len()
    );
    let mut out = vec![0.0; 256 * classes];
    let mut times = Vec::with_capacity(calls / 100);
    for _ in 0..calls / 100 {
        let start = Instant::now();
        engine.forward_into(&x, 256, &mut out, &mut scratch);
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    println!(
        "batch-256 throughput: median {:.0} examples/s, best {:.0} on {} threads",
        256.0 / times[times.len() / 2],
        256.0 / times[0],
        engine.threads()
    );
    Ok(())
}
