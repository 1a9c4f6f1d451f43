//! Running a compacted model: the layer kernels, SIMD selected at run time, and examples split
//! across threads when the batch is large enough to pay for them.

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
mod conv;
mod linear;
mod one;
mod tokens;

pub(crate) use linear::fma;

use crate::csr::Csr;
use crate::model::{CompactModel, Layer};

/// Below this many examples per thread, starting a thread costs more than it saves.
const MIN_PER_THREAD: usize = 32;

/// Examples that go through the convolutions together: enough that small planes fill the
/// kernels' register tiles, few enough that a group's activations stay in cache.
const CONV_GROUP: usize = 32;

/// A model ready to run.
pub struct Engine {
    model: CompactModel,
    /// Per layer, a linear layer's weights with its gather folded into the column indices, so
    /// it reads the previous output in place (`None` for convolutions).
    remapped: Vec<Option<Csr>>,
    threads: usize,
    fma: bool,
}

/// Buffers one thread reuses between calls, so a batch of one allocates nothing.
#[derive(Default)]
pub struct Scratch {
    a: Vec<f32>,
    b: Vec<f32>,
    plane: Vec<f32>,
    col: Vec<f32>,
    flat: Vec<f32>,
    tokens: tokens::Buffers,
}

impl Engine {
    /// Uses every core the OS gives us and AVX2+FMA when the CPU has them. The model is
    /// checked first ([`CompactModel::check`]): the kernels index without bounds checks.
    pub fn new(model: CompactModel) -> Result<Self, crate::Error> {
        model.check()?;
        Ok(Engine {
            remapped: remap(&model),
            model,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            fma: simd_available(),
        })
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
        if batch == 0 {
            return;
        }
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
                return run_avx2(self, x, nb, out, s);
            }
        }
        run_generic::<false>(self, x, nb, out, s)
    }
}

pub(crate) fn simd_available() -> bool {
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
fn run_avx2(e: &Engine, x: &[f32], nb: usize, out: &mut [f32], s: &mut Scratch) {
    run_generic::<true>(e, x, nb, out, s)
}

/// The whole network on `nb` examples. Convolutions (or a transformer's layers) run on groups
/// of examples and leave flat `[example][feature]` rows; those are transposed into
/// feature-major order for the linear layers, where activations stay until the logits are
/// transposed back.
#[inline(always)]
fn run_generic<const FMA: bool>(
    e: &Engine,
    x: &[f32],
    nb: usize,
    out: &mut [f32],
    s: &mut Scratch,
) {
    let m = &e.model;
    let n_in = m.input_len();
    // Layers before the linear part, run group by group.
    let convs = m
        .layers
        .iter()
        .take_while(|l| !matches!(l, Layer::Linear(_)))
        .count();
    let shapes = m.shapes();
    // Example-major rows the first linear layer reads.
    let (rows, row_len): (&[f32], usize) = if convs == 0 {
        (x, n_in)
    } else {
        let flat_len = shapes[convs].iter().product();
        s.flat.resize(nb * flat_len, 0.0);
        // Groups of examples through the convolutions, `[channel][example][pixel]`.
        for (xs, fs) in x
            .chunks(CONV_GROUP * n_in)
            .zip(s.flat.chunks_mut(CONV_GROUP * flat_len))
        {
            let g = xs.len() / n_in;
            let pixels = m.input[1] * m.input[2];
            s.a.resize(xs.len(), 0.0);
            for (e, xe) in xs.chunks_exact(n_in).enumerate() {
                for (ch, plane) in xe.chunks_exact(pixels).enumerate() {
                    s.a[(ch * g + e) * pixels..][..pixels].copy_from_slice(plane);
                }
            }
            for (i, layer) in m.layers[..convs].iter().enumerate() {
                s.b.resize(g * shapes[i + 1].iter().product::<usize>(), 0.0);
                // Tokens between transformer layers: `[1, tokens, dim]`.
                let t = shapes[i][1];
                match layer {
                    Layer::Conv(c) => {
                        conv::forward::<FMA>(c, &s.a, g, &mut s.b, &mut s.col, &mut s.plane)
                    }
                    Layer::Embed(e) => tokens::embed::<FMA>(e, &s.a, g, &mut s.b, &mut s.tokens),
                    Layer::Block(b) => {
                        tokens::block::<FMA>(b, &mut s.a, g, t, &mut s.tokens);
                        continue;
                    }
                    Layer::Readout(r) => tokens::readout(r, &s.a, g, t, &mut s.b),
                    Layer::Linear(_) => unreachable!("counted above"),
                }
                std::mem::swap(&mut s.a, &mut s.b);
            }
            // Back to one flat row per example, as the linear part reads them (a read-out
            // writes `[dim][example]`, planes of one pixel).
            let shape = shapes[convs];
            let pixels = shape[1] * shape[2];
            for (e, fe) in fs.chunks_exact_mut(flat_len).enumerate() {
                for (ch, out) in fe.chunks_exact_mut(pixels).enumerate() {
                    out.copy_from_slice(&s.a[(ch * g + e) * pixels..][..pixels]);
                }
            }
        }
        (&s.flat, flat_len)
    };
    if convs == m.layers.len() {
        out.copy_from_slice(rows);
        return;
    }
    if nb == 1 {
        // One example: feature-major and example-major agree.
        for (i, (layer, w)) in m.layers.iter().zip(&e.remapped).enumerate().skip(convs) {
            let (Layer::Linear(l), Some(w)) = (layer, w) else {
                unreachable!("linear part")
            };
            s.b.resize(l.outputs(), 0.0);
            let input = if i == convs { rows } else { &s.a[..] };
            one::linear::<FMA>(w, &l.bias, l.relu, input, &mut s.b);
            std::mem::swap(&mut s.a, &mut s.b);
        }
        out.copy_from_slice(&s.a[..out.len()]);
        return;
    }
    // Feature-major activations of the linear part, alternating between two buffers.
    s.a.resize(row_len * nb, 0.0);
    transpose::<FMA>(rows, nb, row_len, &mut s.a);
    for (layer, w) in m.layers.iter().zip(&e.remapped).skip(convs) {
        let (Layer::Linear(l), Some(w)) = (layer, w) else {
            unreachable!("linear part")
        };
        s.b.resize(l.outputs() * nb, 0.0);
        linear_layer::<FMA>(w.view(), &l.bias, l.relu, &s.a, nb, &mut s.b);
        std::mem::swap(&mut s.a, &mut s.b);
    }
    let classes = m.classes();
    for (c, logits) in s.a.chunks_exact(nb).enumerate() {
        for (e, &v) in logits.iter().enumerate() {
            out[e * classes + c] = v;
        }
    }
}

/// One linear layer with the best kernel this build and CPU allow.
#[inline(always)]
pub(crate) fn linear_layer<const FMA: bool>(
    m: crate::csr::CsrRef<'_>,
    bias: &[f32],
    relu: bool,
    x: &[f32],
    nb: usize,
    y: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if FMA {
        // SAFETY: FMA is true only on the path `Engine::run` takes after detecting AVX2 and FMA.
        unsafe {
            avx2::linear_batch(m, bias, relu, x, nb, y);
        }
        return;
    }
    linear::forward::<FMA>(m, bias, relu, x, nb, y)
}

/// Example-major rows to feature-major columns, with the fastest code the CPU allows.
#[inline(always)]
pub(crate) fn transpose<const FMA: bool>(src: &[f32], nb: usize, len: usize, dst: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if FMA {
        // SAFETY: as in `linear_layer`.
        unsafe { avx2::transpose(src, nb, len, dst) };
        return;
    }
    for (e, row) in src.chunks_exact(len).enumerate() {
        for (k, &v) in row.iter().enumerate() {
            dst[k * nb + e] = v;
        }
    }
}

/// The linear layers with their gather lists folded into the column indices: column `c` of a
/// layer with gather `g` becomes `g[c]`, an index into the previous layer's whole output.
fn remap(m: &CompactModel) -> Vec<Option<Csr>> {
    let shapes = m.shapes();
    m.layers
        .iter()
        .zip(&shapes)
        .map(|(layer, shape)| match layer {
            Layer::Linear(l) => Some(Csr {
                cols: shape.iter().product(),
                col: match &l.gather {
                    Some(g) => l.weights.col.iter().map(|&c| g[c as usize]).collect(),
                    None => l.weights.col.clone(),
                },
                ..l.weights.clone()
            }),
            _ => None,
        })
        .collect()
}
