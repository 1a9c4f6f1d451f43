//! Running a compacted model: the layer kernels, SIMD selected at run time, and examples split
//! across threads when the batch is large enough to pay for them.

mod conv;
mod linear;

use crate::model::{CompactModel, Layer};

/// Below this many examples per thread, starting a thread costs more than it saves.
const MIN_PER_THREAD: usize = 32;

/// A model ready to run.
pub struct Engine {
    model: CompactModel,
    threads: usize,
    fma: bool,
}

/// Buffers one thread reuses between calls, so a batch of one allocates nothing.
#[derive(Default)]
pub struct Scratch {
    a: Vec<f32>,
    b: Vec<f32>,
    plane: Vec<f32>,
    flat: Vec<f32>,
}

impl Engine {
    /// Uses every core the OS gives us and AVX2+FMA when the CPU has them.
    pub fn new(model: CompactModel) -> Self {
        Engine {
            model,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            fma: simd_available(),
        }
    }

    /// At most `n` threads per call (1: never spawn).
    pub fn with_threads(mut self, n: usize) -> Self {
        self.threads = n.max(1);
        self
    }

    /// Turns the AVX2+FMA kernels off, to measure what they bring or to match a scalar run.
    pub fn with_simd(mut self, on: bool) -> Self {
        self.fma = on && simd_available();
        self
    }

    pub fn model(&self) -> &CompactModel {
        &self.model
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    pub fn simd(&self) -> bool {
        self.fma
    }

    /// Logits `[batch][classes]` for inputs `[batch][channels·height·width]`.
    pub fn forward(&self, x: &[f32], batch: usize) -> Vec<f32> {
        let mut out = vec![0.0; batch * self.model.classes()];
        self.forward_into(x, batch, &mut out, &mut Scratch::default());
        out
    }

    /// As [`Engine::forward`], into `out`, reusing `scratch` on the calling thread.
    pub fn forward_into(&self, x: &[f32], batch: usize, out: &mut [f32], scratch: &mut Scratch) {
        let (n_in, n_out) = (self.model.input_len(), self.model.classes());
        assert_eq!(x.len(), batch * n_in, "input is not batch × {n_in}");
        assert_eq!(out.len(), batch * n_out, "output is not batch × {n_out}");
        let threads = self.threads.min(batch / MIN_PER_THREAD).max(1);
        if threads == 1 {
            return self.run(x, batch, out, scratch);
        }
        let per = batch.div_ceil(threads);
        std::thread::scope(|s| {
            let mut parts = x.chunks(per * n_in).zip(out.chunks_mut(per * n_out));
            let first = parts.next().expect("batch is not empty");
            for (xs, os) in parts {
                s.spawn(move || self.run(xs, xs.len() / n_in, os, &mut Scratch::default()));
            }
            self.run(first.0, first.0.len() / n_in, first.1, scratch);
        });
    }

    fn run(&self, x: &[f32], nb: usize, out: &mut [f32], s: &mut Scratch) {
        if self.fma {
            // SAFETY: `fma` is only set when the CPU reports AVX2 and FMA.
            #[cfg(target_arch = "x86_64")]
            unsafe {
                return run_avx2(&self.model, x, nb, out, s);
            }
        }
        run_generic::<false>(&self.model, x, nb, out, s)
    }
}

fn simd_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn run_avx2(m: &CompactModel, x: &[f32], nb: usize, out: &mut [f32], s: &mut Scratch) {
    run_generic::<true>(m, x, nb, out, s)
}

/// The whole network on `nb` examples. Convolutions run example by example and leave flat
/// `[example][feature]` rows; the first linear layer gathers those into feature-major order,
/// where the rest stay until the logits are transposed back.
#[inline(always)]
fn run_generic<const FMA: bool>(
    m: &CompactModel,
    x: &[f32],
    nb: usize,
    out: &mut [f32],
    s: &mut Scratch,
) {
    let n_in = m.input_len();
    let convs = m
        .layers
        .iter()
        .take_while(|l| matches!(l, Layer::Conv(_)))
        .count();
    // Example-major rows the first linear layer reads.
    let (rows, row_len): (&[f32], usize) = if convs == 0 {
        (x, n_in)
    } else {
        let flat_len = m.layers[convs - 1].output_len();
        s.flat.resize(nb * flat_len, 0.0);
        for (xe, fe) in x.chunks_exact(n_in).zip(s.flat.chunks_exact_mut(flat_len)) {
            s.a.clear();
            s.a.extend_from_slice(xe);
            for layer in &m.layers[..convs] {
                let Layer::Conv(c) = layer else {
                    unreachable!("counted above")
                };
                s.b.resize(c.output_shape().iter().product(), 0.0);
                conv::forward::<FMA>(c, &s.a, &mut s.b, &mut s.plane);
                std::mem::swap(&mut s.a, &mut s.b);
            }
            fe.copy_from_slice(&s.a);
        }
        (&s.flat, flat_len)
    };
    // Feature-major activations of the linear part, alternating between two buffers.
    let mut first = true;
    for layer in &m.layers[convs..] {
        let Layer::Linear(l) = layer else {
            unreachable!("checked: no conv after linear")
        };
        let width = l.weights.cols;
        s.b.resize(width * nb, 0.0);
        if first {
            for (k, dst) in s.b.chunks_exact_mut(nb).enumerate() {
                let j = l.gather.as_ref().map_or(k, |g| g[k] as usize);
                for (e, d) in dst.iter_mut().enumerate() {
                    *d = rows[e * row_len + j];
                }
            }
        } else if let Some(g) = &l.gather {
            for (k, dst) in s.b.chunks_exact_mut(nb).enumerate() {
                let j = g[k] as usize;
                dst.copy_from_slice(&s.a[j * nb..(j + 1) * nb]);
            }
        } else {
            std::mem::swap(&mut s.a, &mut s.b);
        }
        first = false;
        s.a.resize(l.outputs() * nb, 0.0);
        linear::forward::<FMA>(&l.weights, &l.bias, l.relu, &s.b, nb, &mut s.a);
    }
    let classes = m.classes();
    if convs == m.layers.len() {
        out.copy_from_slice(rows);
        return;
    }
    for (c, logits) in s.a.chunks_exact(nb).enumerate() {
        for (e, &v) in logits.iter().enumerate() {
            out[e * classes + c] = v;
        }
    }
}
