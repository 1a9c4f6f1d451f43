//! The measurement behind `lottery::sparse`'s `MAX_INPUT_DENSITY`: the products that skip an
//! input's background against the `gemm` crate's dense ones (the kernels burn's CPU backend
//! uses), on one thread, across the share of entries off the background:
//! `cargo run --release -p lottery-sparse --example background [reps]` (pin it to one core with
//! `taskset -c 1`). Shapes are LeNet-300-100's two hidden layers at a training batch (60) and
//! an evaluation batch (1000).

use std::time::Instant;

use gemm::{Parallelism, gemm};
use lottery_sparse::background::{background, sparse_t_times_dense, sparse_times_dense};

/// `c = a b` for row-major `a` (`m × k`, or `k × m` read transposed when `at`), `b` `k × n`.
fn dense(m: usize, k: usize, n: usize, a: &[f32], at: bool, b: &[f32], c: &mut [f32]) {
    assert!(a.len() == m * k && b.len() == k * n && c.len() == m * n);
    let (a_cs, a_rs) = if at { (m, 1) } else { (1, k) };
    // SAFETY: the strides describe the asserted slices.
    unsafe {
        gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            a_cs as isize,
            a_rs as isize,
            b.as_ptr(),
            1,
            n as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        )
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Microseconds per call of `f`, the median of `reps`.
fn time(reps: usize, mut f: impl FnMut()) -> f64 {
    median(
        (0..reps)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1e6
            })
            .collect(),
    )
}

fn main() {
    let reps: usize = std::env::args()
        .nth(1)
        .map_or(200, |r| r.parse().expect("reps"));
    // MNIST's black after the paper's normalisation.
    let bg = -0.1307f32 / 0.3081;
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    let mut uniform = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    println!("rows×in→out  off-bg   forward: skip  dense  gain   weight grad: skip  dense  gain");
    for (rows, k, n) in [
        (60, 784, 300),
        (60, 300, 100),
        (1000, 784, 300),
        (1000, 300, 100),
    ] {
        let reps = if rows > 100 { reps / 10 } else { reps }.max(3);
        for share in [0.1, 0.2, 0.3, 0.4, 0.5] {
            let x: Vec<f32> = (0..rows * k)
                .map(|_| {
                    if uniform() < share {
                        uniform() as f32
                    } else {
                        bg
                    }
                })
                .collect();
            let w: Vec<f32> = (0..k * n).map(|_| uniform() as f32 - 0.5).collect();
            let dy: Vec<f32> = (0..rows * n).map(|_| uniform() as f32 - 0.5).collect();
            let (mut y, mut dw) = (vec![0.0; rows * n], vec![0.0; k * n]);
            let fs = time(reps, || {
                let (c, _) = background(&x);
                sparse_times_dense(&x, rows, k, c, &w, n, &mut y)
            });
            let fd = time(reps, || dense(rows, k, n, &x, false, &w, &mut y));
            let gs = time(reps, || {
                let (c, _) = background(&x);
                sparse_t_times_dense(&x, rows, k, c, &dy, n, &mut dw)
            });
            let gd = time(reps, || dense(k, rows, n, &x, true, &dy, &mut dw));
            println!(
                "{rows:>4}×{k}→{n:<4} {share:>6.1}   {fs:>13.0} {fd:>6.0} {:>5.2}×   {gs:>17.0} {gd:>6.0} {:>5.2}×",
                fd / fs,
                gd / gs
            );
        }
    }
}
