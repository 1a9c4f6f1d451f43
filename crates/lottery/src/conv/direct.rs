//! The stride-1 forward's inner kernel: a direct convolution over a zero-padded image. A tile
//! of 6 output channels × 16 positions stays in twelve AVX2 registers while the sum runs over
//! every kernel offset and input channel — `kh·kw·c_in` steps of two loads, six broadcasts and
//! twelve FMAs — and is stored once. (Nine GEMMs of `c_in` steps each, one per offset, store and
//! reload the output nine times and pay the GEMM's set-up each time: at ResNet-20's 16 channels
//! that was no faster than im2col.) AVX2 with FMA only, detected at run time; other CPUs keep
//! im2col and the `gemm` crate.

/// Output channels per tile.
const CO: usize = 6;
/// Positions per tile: two vectors of eight.
pub(super) const QT: usize = 16;

/// Whether this CPU runs the kernel.
pub(super) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static YES: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *YES.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `[c_out, c_in, taps]` weights as the kernel reads them: blocks of [`CO`] output channels,
/// each `[tap][c_in][CO]`, the last block padded with zeros.
pub(super) fn pack(w: &[f32], c_out: usize, c_in: usize, taps: usize) -> Vec<f32> {
    assert_eq!(w.len(), c_out * c_in * taps, "weights of the shape given");
    let blocks = c_out.div_ceil(CO);
    let mut packed = vec![0.0; blocks * taps * c_in * CO];
    for o in 0..c_out {
        let (b, j) = (o / CO, o % CO);
        for c in 0..c_in {
            for tap in 0..taps {
                packed[((b * taps + tap) * c_in + c) * CO + j] = w[(o * c_in + c) * taps + tap];
            }
        }
    }
    packed
}

/// The operands of one image's tiles.
pub(super) struct Tiles<'a> {
    /// The padded image: `c_in` planes `plane` apart.
    pub xp: &'a [f32],
    pub plane: usize,
    pub c_in: usize,
    /// Each kernel offset as a shift of the padded plane.
    pub offsets: &'a [usize],
    /// From [`pack`].
    pub packed: &'a [f32],
    pub c_out: usize,
    /// Positions computed per channel, a multiple of [`QT`]; the row length of `wide`.
    pub positions: usize,
}

impl Tiles<'_> {
    /// `wide[o][q] = Σ_(tap, c) w[o][c][tap] · xp[c·plane + q + offsets[tap]]` for every `q`
    /// below `positions`.
    pub(super) fn run(&self, wide: &mut [f32]) {
        let taps = self.offsets.len();
        let reach = self.offsets.iter().max().copied().unwrap_or(0);
        assert!(
            self.positions.is_multiple_of(QT)
                && self.packed.len() == self.c_out.div_ceil(CO) * taps * self.c_in * CO
                && wide.len() >= self.c_out * self.positions
                && (self.c_in == 0
                    || (self.c_in - 1) * self.plane + self.positions + reach <= self.xp.len()),
            "operands of the sizes the tiles read and write"
        );
        #[cfg(target_arch = "x86_64")]
        if available() {
            // SAFETY: the CPU has AVX2 and FMA; the assertion bounds every read and write.
            return unsafe { self.run_avx2(wide) };
        }
        unreachable!("the direct kernel runs only where `available()`");
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_avx2(&self, wide: &mut [f32]) {
        use std::arch::x86_64::*;
        let per_block = self.offsets.len() * self.c_in * CO;
        for q0 in (0..self.positions).step_by(QT) {
            for (b, block) in self.packed.chunks_exact(per_block).enumerate() {
                let mut acc = [[_mm256_setzero_ps(); 2]; CO];
                let mut w = block.as_ptr();
                for &off in self.offsets {
                    // SAFETY (all reads below): `q0 + 15 + off + (c_in − 1)·plane` is inside
                    // `xp` by `run`'s assertion, and `w` walks `block` exactly once.
                    let mut x = unsafe { self.xp.as_ptr().add(q0 + off) };
                    for _ in 0..self.c_in {
                        let (a0, a1) = unsafe { (_mm256_loadu_ps(x), _mm256_loadu_ps(x.add(8))) };
                        for (j, acc) in acc.iter_mut().enumerate() {
                            let wj = unsafe { _mm256_broadcast_ss(&*w.add(j)) };
                            acc[0] = _mm256_fmadd_ps(wj, a0, acc[0]);
                            acc[1] = _mm256_fmadd_ps(wj, a1, acc[1]);
                        }
                        unsafe {
                            w = w.add(CO);
                            x = x.add(self.plane);
                        }
                    }
                }
                for (j, acc) in acc.iter().enumerate().take(self.c_out - b * CO) {
                    let out = &mut wide[(b * CO + j) * self.positions + q0..][..QT];
                    // SAFETY: `out` holds 16 values.
                    unsafe {
                        _mm256_storeu_ps(out.as_mut_ptr(), acc[0]);
                        _mm256_storeu_ps(out.as_mut_ptr().add(8), acc[1]);
                    }
                }
            }
        }
    }
}
