//! The convolution kernels: direct convolutions over a zero-padded image (any stride, through
//! [`super::shifted`]'s column phases), in AVX2 or AVX-512 registers.
//!
//! Forward: a tile of 6 output channels × two runs of output positions stays in twelve
//! registers while the sum runs over every kernel offset and input channel — `kh·kw·c_in` steps
//! of two loads, six broadcasts and twelve FMAs — and is stored once, straight into the output.
//! A run is 8 (AVX2) or 16 (AVX-512) consecutive positions of one output row, read from the
//! padded row the kernel offset shifts it to, so no arithmetic is spent on the padding columns
//! when the output width is a multiple of the run (32, 16 and 8 in the CIFAR networks; rows
//! 8 wide take AVX2's runs). (Nine GEMMs of `c_in` steps each, one per offset, store and reload
//! the output nine times and pay the GEMM's set-up each time: at ResNet-20's 16 channels that
//! was no faster than im2col.)
//!
//! Weight gradient: a tile of 6 output channels × 16 (AVX2) or 32 (AVX-512) input channels,
//! summed over output positions, the image and the output gradient both position-major.
//!
//! Detected at run time: AVX-512 F where the CPU has it (twice the arithmetic per cycle on
//! CPUs with 512-bit FMA units, such as AMD Zen 5 and Intel's server cores), else AVX2 with
//! FMA; other CPUs keep im2col and the `gemm` crate.

use std::sync::atomic::Ordering::Relaxed;

/// Output channels per tile.
pub(super) const CO: usize = 6;
/// Positions per run: one vector.
const RUN: usize = 8;
/// Input channels per weight-gradient tile: two vectors.
pub(super) const CT: usize = 16;
/// Floats either kernel may read past the end of its operands (a run's tail past a row's end,
/// a tile's channels past the last output channel): callers allocate this much more.
pub(super) const SLACK: usize = WIDE_RUN;
/// Positions per run of the AVX-512 forward: one 16-lane vector.
const WIDE_RUN: usize = 16;

/// Whether the kernels take 16-lane registers: the CPU has AVX-512 (F) and no test asked for
/// AVX2 — twice the arithmetic per instruction, and on CPUs with 512-bit FMA units (AMD Zen 5,
/// Intel's server cores) twice the arithmetic per cycle.
fn wide() -> bool {
    has_avx512() && !NARROW_ONLY.load(Relaxed)
}

/// Whether the CPU has AVX-512 (F).
fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static YES: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *YES.get_or_init(|| is_x86_feature_detected!("avx512f"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Lanes of the kernels' registers on this CPU: 16 with AVX-512, else 8.
pub(super) fn lanes() -> usize {
    if wide() { WIDE_RUN } else { RUN }
}

/// Whether runs of this CPU's full register width cover rows `wo` wide with at most a quarter
/// more lanes than outputs: the forward's rows fill its registers.
pub(super) fn rows_fill(wo: usize) -> bool {
    fits(wo, lanes())
}

/// Set by tests to run the AVX2 kernels on a CPU that has AVX-512, so that both are checked.
/// (Tests running meanwhile still compute the same numbers, through the AVX2 kernels.)
static NARROW_ONLY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Runs `f` with the AVX2 kernels only.
#[cfg(test)]
pub(super) fn narrow<T>(f: impl FnOnce() -> T) -> T {
    NARROW_ONLY.store(true, Relaxed);
    let out = f();
    NARROW_ONLY.store(false, Relaxed);
    out
}

/// Whether this CPU runs the kernels.
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

/// `[c_out, c_in, taps]` weights as the forward reads them: blocks of [`CO`] output channels,
/// each `[tap][c_in][CO]`, the last block padded with zeros.
pub(super) fn pack(w: &[f32], c_out: usize, c_in: usize, taps: usize) -> Vec<f32> {
    assert_eq!(w.len(), c_out * c_in * taps, "weights of the shape given");
    let blocks = c_out.div_ceil(CO);
    let mut packed = vec![0.0; blocks * taps * c_in * CO];
    // In the order written: a block's weights (`CO · c_in · taps`) stay in L2 while its taps
    // gather from them, where scattered writes missed the cache at every one.
    for (b, dst) in packed.chunks_exact_mut(taps * c_in * CO).enumerate() {
        let rows = &w[b * CO * c_in * taps..w.len().min((b + 1) * CO * c_in * taps)];
        for (tap, dst) in dst.chunks_exact_mut(c_in * CO).enumerate() {
            for (c, dst) in dst.chunks_exact_mut(CO).enumerate() {
                for (d, row) in dst.iter_mut().zip(rows.chunks_exact(c_in * taps)) {
                    *d = row[c * taps + tap];
                }
            }
        }
    }
    packed
}

/// Output rows and where they sit in the padded image.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rows {
    pub ho: usize,
    pub wo: usize,
    /// Distance between output rows in the padded image.
    pub step: usize,
}

impl Rows {
    /// The runs of an image: `(padded position, output position, valid lanes)`, row by row.
    fn runs(self, run: usize) -> impl Iterator<Item = (usize, usize, usize)> {
        (0..self.ho).flat_map(move |oh| {
            (0..self.wo).step_by(run).map(move |ow| {
                (
                    oh * self.step + ow,
                    oh * self.wo + ow,
                    run.min(self.wo - ow),
                )
            })
        })
    }
}

/// The operands of one image's forward.
pub(super) struct Tiles<'a> {
    /// The padded image: `c_in` planes `plane` apart, [`SLACK`] more at the end.
    pub xp: &'a [f32],
    pub plane: usize,
    pub c_in: usize,
    /// Each kernel offset as a shift of the padded plane.
    pub offsets: &'a [usize],
    /// From [`pack`].
    pub packed: &'a [f32],
    pub c_out: usize,
    pub rows: Rows,
}

impl Tiles<'_> {
    /// `y[o][oh][ow] = Σ_(tap, c) w[o][c][tap] · xp[c·plane + oh·wp + ow + offsets[tap]]`.
    pub(super) fn run(&self, y: &mut [f32]) {
        let Rows { ho, wo, step } = self.rows;
        let reach = self.offsets.iter().max().copied().unwrap_or(0);
        // The furthest read: the last run's last lane, at the largest offset, in the last plane.
        let last = (ho.max(1) - 1) * step + wo.next_multiple_of(WIDE_RUN) - 1 + reach;
        assert!(
            self.packed.len() == self.c_out.div_ceil(CO) * self.offsets.len() * self.c_in * CO
                && y.len() == self.c_out * ho * wo
                && (self.c_in == 0 || (self.c_in - 1) * self.plane + last < self.xp.len()),
            "operands of the sizes the tiles read and write"
        );
        #[cfg(target_arch = "x86_64")]
        if available() {
            // SAFETY: the CPU has AVX-512 / AVX2 and FMA; the assertion bounds every read.
            return unsafe {
                match wide() && fits(self.rows.wo, WIDE_RUN) {
                    true => self.run_avx512(y),
                    false => self.run_avx2(y),
                }
            };
        }
        unreachable!("the direct kernels run only where `available()`");
    }

    /// Two runs of `L::N` per tile, a register each.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn tiles<L: Lanes>(&self, y: &mut [f32]) {
        let per_block = self.offsets.len() * self.c_in * CO;
        let plane_out = self.rows.ho * self.rows.wo;
        let runs: Vec<_> = self.rows.runs(L::N).collect();
        // Two runs per tile; an odd last run is paired with itself and stored once.
        for pair in runs.chunks(2) {
            let (a, b) = (pair[0], pair[pair.len() - 1]);
            for (blk, block) in self.packed.chunks_exact(per_block).enumerate() {
                // SAFETY (all intrinsics): the caller's CPU has `L`'s features.
                let mut acc = [[unsafe { L::zero() }; 2]; CO];
                let mut w = block.as_ptr();
                for &off in self.offsets {
                    // SAFETY (all reads below): inside `xp` by `run`'s assertion; `w` walks
                    // `block` exactly once.
                    let (mut xa, mut xb) = unsafe {
                        (
                            self.xp.as_ptr().add(a.0 + off),
                            self.xp.as_ptr().add(b.0 + off),
                        )
                    };
                    for _ in 0..self.c_in {
                        let (va, vb) = unsafe { (L::load(xa), L::load(xb)) };
                        for (j, acc) in acc.iter_mut().enumerate() {
                            let wj = unsafe { L::splat(w.add(j)) };
                            acc[0] = unsafe { L::fma(wj, va, acc[0]) };
                            acc[1] = unsafe { L::fma(wj, vb, acc[1]) };
                        }
                        unsafe {
                            w = w.add(CO);
                            xa = xa.add(self.plane);
                            xb = xb.add(self.plane);
                        }
                    }
                }
                let outs = (self.c_out - blk * CO).min(CO);
                for (j, acc) in acc.iter().enumerate().take(outs) {
                    let plane = &mut y[(blk * CO + j) * plane_out..][..plane_out];
                    for (&(_, at, len), v) in pair.iter().zip(*acc) {
                        unsafe { L::store_first(v, &mut plane[at..at + len]) };
                    }
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_avx2(&self, y: &mut [f32]) {
        unsafe { self.tiles::<Avx2>(y) }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn run_avx512(&self, y: &mut [f32]) {
        unsafe { self.tiles::<Avx512>(y) }
    }
}

/// Input channels per pass of [`ImageTiles`]: each pass reloads and stores the tile's sums
/// and picks each offset's loop again, which at 16 channels (a tile's windows in L1) cost more
/// than reading them from L2 does at 128. Measured on VGG's layers at batch 128 (AVX-512,
/// passes of 16 / 64 / 128 / 512 channels, forward ms): 512→512 on 4×4 37.7 / 31.4 / 30.6 /
/// 32.0, on 2×2 13.7 / 10.1 / 8.8 / 7.7, but the 4×4 input gradient 44.6 / 37.5 / 34.5 / 49.9.
pub(super) const CHANNELS_PER_PASS: usize = 128;

/// The operands of a forward with a group of images across the lanes: for planes whose rows
/// are narrower than a register (VGG's 8-, 4- and 2-wide ones), the same position of
/// [`lanes`] images fills it instead.
pub(super) struct ImageTiles<'a> {
    /// 8 or 16: the group's images, the lanes of the registers the caller laid `xb` out for.
    pub lanes: usize,
    /// The group's padded images position-major, images innermost: `xb[(pos·c_in + c)·lanes
    /// + b]`.
    pub xb: &'a [f32],
    pub c_in: usize,
    /// Each kernel offset as a shift of padded positions.
    pub offsets: &'a [usize],
    /// From [`pack`].
    pub packed: &'a [f32],
    pub c_out: usize,
    /// Each output position's window: the padded position its first kernel offset reads.
    pub windows: &'a [usize],
    /// Whether offset `tap` of position `p` reads inside the image: `live[p·taps + tap]`
    /// ([`super::kernels::Geometry::live_taps`]). The others read zeros and are skipped.
    pub live: &'a [bool],
}

impl ImageTiles<'_> {
    /// `yb[(o·P + p)·lanes + b] = Σ_(tap, c) w[o][c][tap] · xb[((windows[p] + offsets[tap])·c_in
    /// + c)·lanes + b]`, `P` the output positions.
    pub(super) fn run(&self, yb: &mut [f32]) {
        let reach = self.offsets.iter().max().copied().unwrap_or(0);
        let furthest = self.windows.iter().max().map_or(0, |&w| w + reach + 1);
        assert!(
            self.packed.len() == self.c_out.div_ceil(CO) * self.offsets.len() * self.c_in * CO
                && yb.len() == self.c_out * self.windows.len() * self.lanes
                && furthest * self.c_in * self.lanes <= self.xb.len()
                && self.live.len() == self.windows.len() * self.offsets.len(),
            "operands of the sizes the image tiles read and write"
        );
        #[cfg(target_arch = "x86_64")]
        if available() {
            // SAFETY: the CPU has AVX2 and FMA, and AVX-512 for 16 lanes; the assertion bounds
            // every read and write.
            return unsafe {
                match self.lanes {
                    WIDE_RUN if has_avx512() => self.images_avx512(yb),
                    RUN => self.images_avx2(yb),
                    lanes => panic!("no kernel of {lanes} lanes on this CPU"),
                }
            };
        }
        unreachable!("the direct kernels run only where `available()`");
    }

    /// For each tile of `p` positions and each offset, which of its positions read inside the
    /// image (bit `k` for position `k` of the tile): `masks[tile·taps + tap]`.
    fn tile_masks(&self, p: usize) -> Vec<u8> {
        let taps = self.offsets.len();
        let positions = self.windows.len();
        (0..positions)
            .step_by(p)
            .flat_map(|p0| {
                (0..taps).map(move |tap| {
                    (p0..positions.min(p0 + p))
                        .enumerate()
                        .filter(|&(_, q)| self.live[q * taps + tap])
                        .fold(0u8, |m, (k, _)| m | 1 << k)
                })
            })
            .collect()
    }

    /// Tiles of 6 output channels × `P` positions, a register each; the input channels in
    /// passes of [`CHANNELS_PER_PASS`], the tile's sums kept in `yb` between passes. Each
    /// offset adds only to the positions it reads inside the image for.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn tiles<L: Lanes, const P: usize>(&self, yb: &mut [f32]) {
        let (c_in, n, positions) = (self.c_in, L::N, self.windows.len());
        let taps = self.offsets.len();
        let per_block = taps * c_in * CO;
        let masks = self.tile_masks(P);
        for c0 in (0..c_in).step_by(CHANNELS_PER_PASS) {
            let cc = CHANNELS_PER_PASS.min(c_in - c0);
            for (blk, block) in self.packed.chunks_exact(per_block).enumerate() {
                for p0 in (0..positions).step_by(P) {
                    let count = (positions - p0).min(P);
                    // A short last tile repeats its last position, computed and not stored.
                    let mut window = [0; P];
                    for (k, w) in window.iter_mut().enumerate() {
                        *w = self.windows[p0 + k.min(count - 1)];
                    }
                    let outs = (self.c_out - blk * CO).min(CO);
                    let at = |j: usize, k: usize| ((blk * CO + j) * positions + p0 + k) * n;
                    // SAFETY (all intrinsics): the caller's CPU has `L`'s features; `yb`
                    // holds every (output, position) stored or reloaded, by `run`'s assertion.
                    let mut acc = [[unsafe { L::zero() }; P]; CO];
                    if c0 > 0 {
                        for (j, acc) in acc.iter_mut().enumerate().take(outs) {
                            for (k, a) in acc.iter_mut().enumerate().take(count) {
                                *a = unsafe { L::load(yb.as_ptr().add(at(j, k))) };
                            }
                        }
                    }
                    let tile_masks = &masks[(p0 / P) * taps..][..taps];
                    for ((tap, &off), &mask) in self.offsets.iter().enumerate().zip(tile_masks) {
                        if mask == 0 {
                            continue;
                        }
                        // SAFETY (reads): inside `packed` and `xb` by `run`'s assertion.
                        let w = unsafe { block.as_ptr().add((tap * c_in + c0) * CO) };
                        let mut x = [self.xb.as_ptr(); P];
                        for (x, &p) in x.iter_mut().zip(&window) {
                            *x = unsafe { x.add(((p + off) * c_in + c0) * n) };
                        }
                        // SAFETY: as above; `mask` has bits below `P` only.
                        unsafe { masked_sums::<L, P>(mask, &mut acc, x, w, cc) };
                    }
                    for (j, acc) in acc.iter().enumerate().take(outs) {
                        for (k, &a) in acc.iter().enumerate().take(count) {
                            unsafe { L::store_first(a, &mut yb[at(j, k)..at(j, k) + n]) };
                        }
                    }
                }
            }
        }
    }

    /// Two positions per tile: twelve of AVX2's sixteen registers hold the sums.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn images_avx2(&self, yb: &mut [f32]) {
        unsafe { self.tiles::<Avx2, 2>(yb) }
    }

    /// Four positions per tile: twenty-four of AVX-512's thirty-two registers hold the sums.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn images_avx512(&self, yb: &mut [f32]) {
        unsafe { self.tiles::<Avx512, 4>(yb) }
    }
}

/// `acc[j][k] += Σ_c w[c·CO + j] · x[k][c·N]` over `cc` channels, for the positions `k` whose
/// bit is set in `mask`: one instance of the loop for each of the masks, so that the positions
/// an offset skips cost nothing.
///
/// # Safety
/// The CPU has `L`'s features; `w` is valid for `cc·CO` values and each `x[k]` of `mask` for
/// `cc·N`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn masked_sums<L: Lanes, const P: usize>(
    mask: u8,
    acc: &mut [[L::V; P]; CO],
    x: [*const f32; P],
    w: *const f32,
    cc: usize,
) {
    macro_rules! by_mask {
        ($($m:literal)*) => {
            match mask {
                $($m => unsafe { sums_of::<L, P, $m>(acc, x, w, cc) },)*
                _ => unreachable!("masks of up to four positions"),
            }
        };
    }
    by_mask!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15)
}

/// [`masked_sums`] for one mask, `M`, known when compiled.
///
/// # Safety
/// As for [`masked_sums`].
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn sums_of<L: Lanes, const P: usize, const M: u8>(
    acc: &mut [[L::V; P]; CO],
    mut x: [*const f32; P],
    mut w: *const f32,
    cc: usize,
) {
    let on = |k: usize| k < 8 && M & (1 << k) != 0;
    for _ in 0..cc {
        // SAFETY (all intrinsics and reads): by the caller's contract.
        let mut v = [unsafe { L::zero() }; P];
        for (k, (v, x)) in v.iter_mut().zip(x.iter_mut()).enumerate() {
            if on(k) {
                unsafe {
                    *v = L::load(*x);
                    *x = x.add(L::N);
                }
            }
        }
        for (j, acc) in acc.iter_mut().enumerate() {
            let wj = unsafe { L::splat(w.add(j)) };
            for (k, (a, &v)) in acc.iter_mut().zip(&v).enumerate() {
                if on(k) {
                    *a = unsafe { L::fma(wj, v, *a) };
                }
            }
        }
        w = unsafe { w.add(CO) };
    }
}

/// Whether runs of 8 cover rows `wo` wide with at most a quarter more lanes than outputs.
pub(super) fn runs_fit(wo: usize) -> bool {
    fits(wo, RUN)
}

/// Whether runs of `run` cover rows `wo` wide with at most a quarter more lanes than outputs.
fn fits(wo: usize, run: usize) -> bool {
    wo > 0 && 4 * wo.next_multiple_of(run) <= 5 * wo
}

/// Output channels as the weight-gradient sums are laid out: rounded up to whole tiles.
pub(super) fn padded_outputs(c_out: usize) -> usize {
    c_out.next_multiple_of(CO)
}

/// Input channels per weight-gradient tile for `c_in` channels on this CPU: two registers, 32
/// with AVX-512 where they divide `c_in`, else [`CT`].
pub(super) fn weight_tile(c_in: usize) -> usize {
    if wide() && c_in.is_multiple_of(2 * CT) {
        2 * CT
    } else {
        CT
    }
}

/// The operands of the weight-gradient sums over a group of images, both laid out in the
/// panels the tiles read, so that a tile reads consecutive addresses: its input channels'
/// panel stays in L1 while every block of output channels passes over it.
pub(super) struct WeightTiles<'a> {
    /// Input channels per tile, from [`weight_tile`]: the caller laid `xt` out for it.
    pub ct: usize,
    /// The padded images in panels of `ct` channels, position-major, images `image` positions
    /// apart: channel `t·ct + c` of position `pos` of image `b` at `xt[t·panel + (b·image +
    /// pos)·ct + c]`.
    pub xt: &'a [f32],
    pub panel: usize,
    pub image: usize,
    pub images: usize,
    /// A multiple of `ct`.
    pub c_in: usize,
    /// The output gradients in blocks of [`CO`] channels, position-major, zero past `c_out`:
    /// channel `k·CO + j` of output position `q` of image `b` at `dyt[k·block + (b·ho·wo +
    /// q)·CO + j]`.
    pub dyt: &'a [f32],
    pub block: usize,
    pub c_out: usize,
    pub rows: Rows,
    pub offsets: &'a [usize],
    /// Whether offset `tap` of an image's output position `q` reads inside the image:
    /// `live[q·taps + tap]` ([`super::kernels::Geometry::live_taps`]). The others read zeros
    /// and are skipped.
    pub live: &'a [bool],
}

/// Places image `b`'s output gradient (`dy[o][q]`, `p` positions) into [`WeightTiles`]'
/// blocks: channel `k·CO + j` of position `q` at `dyt[k·block + (b·p + q)·CO + j]`.
pub(super) fn place_outputs(dy: &[f32], p: usize, b: usize, dyt: &mut [f32], block: usize) {
    for (o, plane) in dy.chunks_exact(p).enumerate() {
        let (k, j) = (o / CO, o % CO);
        let dst = &mut dyt[k * block + b * p * CO..][..p * CO];
        for (d, &v) in dst[j..].iter_mut().step_by(CO).zip(plane) {
            *d = v;
        }
    }
}

/// Output positions per pass over the taps and tiles. A tile's panel of one tap (256 positions
/// × 32 channels × 4 bytes = 32 KB) stays in L1 while every block of output channels passes
/// over it, and each pass loads and stores every tile's sums once (9 MB at 512 channels), so
/// small planes take many images per pass. 256 where 64 ran the 512-channel 4×4 and 2×2
/// weight gradients at 150–200 and 100–150 GFLOP/s (now 270–290 and 225–230, with the flat
/// list of positions).
pub(super) const PASS: usize = 256;

/// Tiles per pass (channel tiles × output blocks) from which the weight gradient skips the
/// positions that read the padding; below, it sums over them.
const SKIP_TILES: usize = 8;

impl WeightTiles<'_> {
    /// `sums[tap][o][c] += Σ_(b, oh, ow) dy[b][o][oh][ow] · x[b][c][oh·step + ow + offsets[tap]]`
    /// (padded positions); `sums` is `taps · padded_outputs(c_out) · c_in` long.
    pub(super) fn add_to(&self, sums: &mut [f32]) {
        let Rows { ho, wo, step } = self.rows;
        let reach = self.offsets.iter().max().copied().unwrap_or(0);
        let outs = padded_outputs(self.c_out);
        let (tiles, blocks) = (self.c_in / self.ct.max(1), outs / CO);
        // The furthest position a tile reads, past its panel's start, plus one.
        let furthest = (self.images.max(1) - 1) * self.image + (ho.max(1) - 1) * step + wo + reach;
        let positions = self.images * ho * wo;
        assert!(
            (self.ct == CT || self.ct == 2 * CT)
                && self.c_in.is_multiple_of(self.ct)
                && (positions == 0
                    || (furthest * self.ct <= self.panel
                        && (tiles.max(1) - 1) * self.panel + furthest * self.ct <= self.xt.len()
                        && positions * CO <= self.block
                        && (blocks.max(1) - 1) * self.block + positions * CO <= self.dyt.len()))
                && sums.len() == self.offsets.len() * outs * self.c_in
                && self.live.len() == ho * wo * self.offsets.len(),
            "operands of the sizes the weight tiles read and write"
        );
        #[cfg(target_arch = "x86_64")]
        if available() {
            // SAFETY: the CPU has AVX2 and FMA, and AVX-512 for 32-channel tiles; the
            // assertion bounds every read and write.
            return unsafe {
                match self.ct {
                    32 if has_avx512() => self.add_avx512(sums, outs),
                    CT => self.add_avx2(sums, outs),
                    ct => panic!("no weight tiles of {ct} channels on this CPU"),
                }
            };
        }
        unreachable!("the direct kernels run only where `available()`");
    }

    /// Tiles of 6 output × `2·L::N` input channels, two registers per row.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn sums<L: Lanes>(&self, sums: &mut [f32], outs: usize) {
        let Rows { ho, wo, step } = self.rows;
        let (c_in, ct, taps, p) = (self.c_in, 2 * L::N, self.offsets.len(), ho * wo);
        // Each output position's padded position, image after image, row after row: the
        // sums run over a flat list, which small planes (rows of 2 and 4) would otherwise
        // spend on loop overhead.
        let starts: Vec<usize> = (0..self.images)
            .flat_map(|b| (0..ho).flat_map(move |oh| (0..wo).map(move |ow| (b, oh, ow))))
            .map(|(b, oh, ow)| b * self.image + oh * step + ow)
            .collect();
        // Per offset, the pass's positions it reads inside the image for, as (panel, block)
        // offsets in floats: where that is every position, the sums walk the pass itself. A
        // list serves every tile of the pass, and where there are few tiles (ResNet's 16
        // channels: 3) building it cost more than the padded positions it skips (6% of a
        // 32×32 plane's): there the sums walk every pass whole.
        let skip = (c_in / ct) * (outs / CO) >= SKIP_TILES;
        let mut lists: Vec<Vec<(usize, usize)>> = vec![Vec::with_capacity(PASS); taps];
        for (pass, first) in starts.chunks(PASS).zip((0..).step_by(PASS)) {
            let build = lists.iter_mut().enumerate().zip(self.offsets);
            for ((tap, list), &off) in build.filter(|_| skip) {
                list.clear();
                let live = |i: usize| self.live[((first + i) % p.max(1)) * taps + tap];
                list.extend(
                    (pass.iter().enumerate())
                        .filter(|&(i, _)| live(i))
                        .map(|(i, &at)| ((at + off) * ct, (first + i) * CO)),
                );
            }
            for c0 in (0..c_in).step_by(ct) {
                let panel = &self.xt[(c0 / ct) * self.panel..];
                for ((tap, &off), list) in self.offsets.iter().enumerate().zip(&lists) {
                    if skip && list.is_empty() {
                        continue;
                    }
                    for o0 in (0..outs).step_by(CO) {
                        let block = &self.dyt[(o0 / CO) * self.block..];
                        let at = (tap * outs + o0) * c_in + c0;
                        let tile = &mut sums[at..at + (CO - 1) * c_in + ct];
                        // SAFETY (all intrinsics): the caller's CPU has `L`'s features.
                        let mut acc = [[unsafe { L::zero() }; 2]; CO];
                        for (j, acc) in acc.iter_mut().enumerate() {
                            // SAFETY: row `j` of the tile is inside `tile`.
                            unsafe {
                                let p = tile.as_ptr().add(j * c_in);
                                *acc = [L::load(p), L::load(p.add(L::N))];
                            }
                        }
                        // SAFETY (reads): inside the panel and the block by `add_to`'s
                        // assertion, as every entry of `list` is one of `pass`'s positions.
                        let (x, g) = (panel.as_ptr(), block.as_ptr());
                        if !skip || list.len() == pass.len() {
                            let at = pass.iter().zip(first..);
                            let at = at.map(|(&at, q)| ((at + off) * ct, q * CO));
                            unsafe { weight_sums::<L>(&mut acc, x, g, at) };
                        } else {
                            unsafe { weight_sums::<L>(&mut acc, x, g, list.iter().copied()) };
                        }
                        for (j, acc) in acc.iter().enumerate() {
                            // SAFETY: as for the loads.
                            unsafe {
                                let p = tile.as_mut_ptr().add(j * c_in);
                                L::store_first(acc[0], std::slice::from_raw_parts_mut(p, L::N));
                                L::store_first(
                                    acc[1],
                                    std::slice::from_raw_parts_mut(p.add(L::N), L::N),
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn add_avx2(&self, sums: &mut [f32], outs: usize) {
        unsafe { self.sums::<Avx2>(sums, outs) }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn add_avx512(&self, sums: &mut [f32], outs: usize) {
        unsafe { self.sums::<Avx512>(sums, outs) }
    }
}

/// `acc[j] += g[q + j] · x[at..at + 2·N]` over the `(at, q)` of `at`: one weight-gradient tile's
/// sum over the positions given, as offsets in floats into the panel `x` and the block `g`.
///
/// # Safety
/// The CPU has `L`'s features; each `x + at` is valid for `2·N` values and `g + q` for `CO`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn weight_sums<L: Lanes>(
    acc: &mut [[L::V; 2]; CO],
    x: *const f32,
    g: *const f32,
    at: impl Iterator<Item = (usize, usize)>,
) {
    for (at, q) in at {
        // SAFETY (all intrinsics and reads): by the caller's contract.
        let (x, g) = unsafe { (x.add(at), g.add(q)) };
        let (a0, a1) = unsafe { (L::load(x), L::load(x.add(L::N))) };
        for (j, acc) in acc.iter_mut().enumerate() {
            let gj = unsafe { L::splat(g.add(j)) };
            acc[0] = unsafe { L::fma(gj, a0, acc[0]) };
            acc[1] = unsafe { L::fma(gj, a1, acc[1]) };
        }
    }
}

/// One register width's operations, for the kernels written once over both.
#[cfg(target_arch = "x86_64")]
trait Lanes {
    /// Lanes per register.
    const N: usize;
    type V: Copy;
    /// # Safety (every method)
    /// The CPU has the width's features; pointers are valid for `N` values.
    unsafe fn zero() -> Self::V;
    unsafe fn load(p: *const f32) -> Self::V;
    /// `*p` in every lane.
    unsafe fn splat(p: *const f32) -> Self::V;
    /// `a·b + c`.
    unsafe fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// The first `out.len()` (at most `N`) lanes of `v`.
    unsafe fn store_first(v: Self::V, out: &mut [f32]);
}

#[cfg(target_arch = "x86_64")]
struct Avx2;

#[cfg(target_arch = "x86_64")]
impl Lanes for Avx2 {
    const N: usize = RUN;
    type V = std::arch::x86_64::__m256;
    #[inline(always)]
    unsafe fn zero() -> Self::V {
        unsafe { std::arch::x86_64::_mm256_setzero_ps() }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self::V {
        unsafe { std::arch::x86_64::_mm256_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn splat(p: *const f32) -> Self::V {
        unsafe { std::arch::x86_64::_mm256_broadcast_ss(&*p) }
    }
    #[inline(always)]
    unsafe fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V {
        unsafe { std::arch::x86_64::_mm256_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    unsafe fn store_first(v: Self::V, out: &mut [f32]) {
        use std::arch::x86_64::_mm256_storeu_ps;
        if out.len() == RUN {
            unsafe { _mm256_storeu_ps(out.as_mut_ptr(), v) };
        } else {
            let mut lanes = [0.0f32; RUN];
            unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), v) };
            out.copy_from_slice(&lanes[..out.len()]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
struct Avx512;

#[cfg(target_arch = "x86_64")]
impl Lanes for Avx512 {
    const N: usize = WIDE_RUN;
    type V = std::arch::x86_64::__m512;
    #[inline(always)]
    unsafe fn zero() -> Self::V {
        unsafe { std::arch::x86_64::_mm512_setzero_ps() }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self::V {
        unsafe { std::arch::x86_64::_mm512_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn splat(p: *const f32) -> Self::V {
        unsafe { std::arch::x86_64::_mm512_set1_ps(*p) }
    }
    #[inline(always)]
    unsafe fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V {
        unsafe { std::arch::x86_64::_mm512_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    unsafe fn store_first(v: Self::V, out: &mut [f32]) {
        // A mask of the first `len` ≤ 16 lanes: the store writes only inside `out`.
        let mask = ((1u32 << out.len()) - 1) as u16;
        unsafe { std::arch::x86_64::_mm512_mask_storeu_ps(out.as_mut_ptr(), mask, v) };
    }
}
