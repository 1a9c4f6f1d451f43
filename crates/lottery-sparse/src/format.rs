//! The `.lsm` file: a compacted model, versioned and checksummed.
//!
//! ```text
//! header, 24 bytes
//!   0   magic     8 bytes  89 4C 53 4D 0D 0A 1A 0A  ("\x89LSM\r\n\x1a\n", PNG-style)
//!   8   version   u32      1
//!   12  length    u64      bytes of payload that follow the header
//!   20  crc32     u32      CRC-32 (IEEE) of the payload
//! payload (all integers little-endian)
//!   source        u16 length + UTF-8   the architecture it came from
//!   input         3 × u32              channels, height, width
//!   layer count   u32
//!   per layer
//!     tag          kind u8 · relu u8 (0/1) · pool u8 (0 none, 1 max, 2 avg) · encoding u8
//!     kind 1, conv (square):  in_channels, height, width, kernel, padding      5 × u32
//!     kind 3, conv:           in_channels, height, width, kernel height, kernel
//!                             width, padding rows, padding columns             7 × u32
//!     kind 2, linear:         gather count u32 (0xFFFFFFFF: no gather), then that many u32
//!     kinds 1–3 go on:        rows, cols, nnz 3 × u32 · bias rows × f32
//!                             · kept rows × u32 (original index of each surviving output)
//!                             · weights in the tag's encoding
//!     kind 4, patch embedding (tag flags and encoding 0):
//!                             channels, height, width, patch 4 × u32 · projection
//!                             · class token dim × f32 · position embeddings tokens·dim × f32
//!     kind 5, transformer block: heads, dim, hidden 3 × u32 · norm1 · qkv · attention
//!                             output · norm2 · MLP fc1 · fc2 · hidden units kept hidden × u32
//!     kind 6, read-out:       dim u32 · norm
//!     norm                    scales dim × f32 · shifts dim × f32 · epsilon f32
//!     projection              encoding u8 · rows, cols, nnz 3 × u32 · bias rows × f32
//!                             · weights in that encoding
//!     weights, by encoding
//!       0 dense     rows·cols × f32 (zeros included)
//!       1 csr16     (rows+1) × u32 row starts, nnz × u16 columns, nnz × f32 values
//!       2 csr32     (rows+1) × u32 row starts, nnz × u32 columns, nnz × f32 values
//!       3 bitmask   ⌈rows·cols/8⌉ bytes (row-major, least significant bit first), nnz × f32
//!       4 packed    u32 length + a raw deflate stream (RFC 1951) of: the bitmask as in 3, then
//!                   the values' bytes by plane (byte 0 of every little-endian value, then
//!                   byte 1, …) — exponents and high mantissa bits repeat, so those planes
//!                   shrink; inflated to exactly the expected length or refused
//! ```
//!
//! Square convolutions are written as kind 1, so files of the image nets read in any version;
//! kinds added later (3–6) are refused by older readers as unknown kinds, never misread.
//!
//! The writer picks, per layer, the encoding with the fewest bytes. The reader checks every
//! length against the bytes present before allocating, then the whole model with
//! [`CompactModel::check`], so a truncated, flipped or edited file is an error, never a panic.

use std::path::Path;

use crate::crc32::crc32;
use crate::csr::Csr;
use crate::error::{Error, Problem};
use crate::model::{CompactModel, ConvLayer, Layer, LinearLayer, Pool};
use crate::transformer::{BlockLayer, EmbedLayer, Norm, Projection, ReadoutLayer};

pub const MAGIC: [u8; 8] = *b"\x89LSM\r\n\x1a\n";
pub const VERSION: u32 = 1;
const HEADER: usize = 24;
const NO_GATHER: u32 = u32::MAX;

/// How a layer's weights are laid out in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Dense = 0,
    Csr16 = 1,
    Csr32 = 2,
    Bitmask = 3,
    Packed = 4,
}

impl Encoding {
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Dense => "dense",
            Encoding::Csr16 => "csr16",
            Encoding::Csr32 => "csr32",
            Encoding::Bitmask => "bitmask",
            Encoding::Packed => "packed",
        }
    }

    /// Bytes this encoding spends on the weights of `m`.
    pub fn bytes(self, m: &Csr) -> usize {
        let (cells, nnz) = (m.rows * m.cols, m.nnz());
        match self {
            Encoding::Dense => cells * 4,
            Encoding::Csr16 => (m.rows + 1) * 4 + nnz * 6,
            Encoding::Csr32 => (m.rows + 1) * 4 + nnz * 8,
            Encoding::Bitmask => cells.div_ceil(8) + nnz * 4,
            Encoding::Packed => 4 + packed(m).len(),
        }
    }

    /// The smallest encoding for `m` (ties go to the earlier, simpler one).
    pub fn best(m: &Csr) -> Encoding {
        Encoding::smallest(m).0
    }

    /// The smallest encoding for `m` and its bytes, each size computed once (`packed` deflates).
    pub fn smallest(m: &Csr) -> (Encoding, usize) {
        let mut options = vec![
            Encoding::Dense,
            Encoding::Bitmask,
            Encoding::Csr32,
            Encoding::Packed,
        ];
        if m.cols <= 1 << 16 {
            options.push(Encoding::Csr16);
        }
        options
            .into_iter()
            .map(|e| (e, e.bytes(m)))
            .min_by_key(|&(_, bytes)| bytes)
            .expect("options are never empty")
    }
}

/// The bitmask of `m`'s live entries (row-major, least significant bit first).
fn bitmask(m: &Csr) -> Vec<u8> {
    let mut bits = vec![0u8; (m.rows * m.cols).div_ceil(8)];
    for r in 0..m.rows {
        for &c in m.row(r).0 {
            let i = r * m.cols + c as usize;
            bits[i / 8] |= 1 << (i % 8);
        }
    }
    bits
}

/// The bitmask and the values' byte planes, deflated (encoding 4).
fn packed(m: &Csr) -> Vec<u8> {
    let mut raw = bitmask(m);
    for plane in 0..4 {
        raw.extend(m.val.iter().map(|v| v.to_le_bytes()[plane]));
    }
    let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut z, &raw).expect("writing to memory");
    z.finish().expect("writing to memory")
}

/// The file's bytes. `model` must pass [`CompactModel::check`] ([`save`] makes sure).
pub fn to_bytes(model: &CompactModel) -> Vec<u8> {
    write(model, None)
}

/// [`to_bytes`], every matrix in encoding `force` when given (tests write each encoding).
pub(crate) fn write(model: &CompactModel, force: Option<Encoding>) -> Vec<u8> {
    let choose = |m: &Csr| force.unwrap_or_else(|| Encoding::best(m));
    let mut p = Vec::new();
    let source = model.source.as_bytes();
    let source = &source[..source.len().min(u16::MAX as usize)];
    p.extend((source.len() as u16).to_le_bytes());
    p.extend(source);
    for d in model.input {
        put_u32(&mut p, d);
    }
    put_u32(&mut p, model.layers.len());
    for layer in &model.layers {
        match layer {
            Layer::Conv(c) => {
                let pool = match c.pool {
                    Pool::None => 0,
                    Pool::Max => 1,
                    Pool::Avg => 2,
                };
                let ([kh, kw], [ph, pw]) = (c.kernel, c.padding);
                let square = kh == kw && ph == pw;
                let enc = choose(&c.weights);
                p.extend([if square { 1 } else { 3 }, c.relu as u8, pool, enc as u8]);
                put_u32(&mut p, c.in_channels);
                put_u32(&mut p, c.height);
                put_u32(&mut p, c.width);
                let shape = if square {
                    &[kh, ph][..]
                } else {
                    &[kh, kw, ph, pw]
                };
                shape.iter().for_each(|&d| put_u32(&mut p, d));
                put_units(&mut p, &c.weights, &c.bias, &c.kept, enc);
            }
            Layer::Linear(l) => {
                let enc = choose(&l.weights);
                p.extend([2, l.relu as u8, 0, enc as u8]);
                match &l.gather {
                    None => p.extend(NO_GATHER.to_le_bytes()),
                    Some(g) => {
                        put_u32(&mut p, g.len());
                        g.iter().for_each(|&j| p.extend(j.to_le_bytes()));
                    }
                }
                put_units(&mut p, &l.weights, &l.bias, &l.kept, enc);
            }
            Layer::Embed(e) => {
                p.extend([4, 0, 0, 0]);
                for d in [e.channels, e.height, e.width, e.patch] {
                    put_u32(&mut p, d);
                }
                put_projection(&mut p, &e.proj, choose(&e.proj.weights));
                put_f32s(&mut p, &e.class_token);
                put_f32s(&mut p, &e.position);
            }
            Layer::Block(b) => {
                p.extend([5, 0, 0, 0]);
                for d in [b.heads, b.dim(), b.hidden()] {
                    put_u32(&mut p, d);
                }
                put_norm(&mut p, &b.norm1);
                put_projection(&mut p, &b.qkv, choose(&b.qkv.weights));
                put_projection(&mut p, &b.proj, choose(&b.proj.weights));
                put_norm(&mut p, &b.norm2);
                put_projection(&mut p, &b.fc1, choose(&b.fc1.weights));
                put_projection(&mut p, &b.fc2, choose(&b.fc2.weights));
                b.hidden_kept.iter().for_each(|k| p.extend(k.to_le_bytes()));
            }
            Layer::Readout(r) => {
                p.extend([6, 0, 0, 0]);
                put_u32(&mut p, r.dim());
                put_norm(&mut p, &r.norm);
            }
        }
    }
    let mut out = Vec::with_capacity(HEADER + p.len());
    out.extend(MAGIC);
    out.extend(VERSION.to_le_bytes());
    out.extend((p.len() as u64).to_le_bytes());
    out.extend(crc32(&p).to_le_bytes());
    out.extend(p);
    out
}

fn put_u32(p: &mut Vec<u8>, v: usize) {
    p.extend(
        u32::try_from(v)
            .expect("model dimensions fit u32")
            .to_le_bytes(),
    );
}

fn put_f32s(p: &mut Vec<u8>, v: &[f32]) {
    v.iter().for_each(|x| p.extend(x.to_le_bytes()));
}

/// A convolution's or linear layer's matrix shape, biases, kept indices and weights.
fn put_units(p: &mut Vec<u8>, m: &Csr, bias: &[f32], kept: &[u32], enc: Encoding) {
    for d in [m.rows, m.cols, m.nnz()] {
        put_u32(p, d);
    }
    put_f32s(p, bias);
    kept.iter().for_each(|k| p.extend(k.to_le_bytes()));
    put_weights(p, m, enc);
}

/// A transformer projection: its encoding, shape, biases and weights.
fn put_projection(p: &mut Vec<u8>, proj: &Projection, enc: Encoding) {
    let m = &proj.weights;
    p.push(enc as u8);
    for d in [m.rows, m.cols, m.nnz()] {
        put_u32(p, d);
    }
    put_f32s(p, &proj.bias);
    put_weights(p, m, enc);
}

fn put_norm(p: &mut Vec<u8>, n: &Norm) {
    put_f32s(p, &n.gamma);
    put_f32s(p, &n.beta);
    p.extend(n.eps.to_le_bytes());
}

/// The matrix's entries in encoding `enc`.
fn put_weights(p: &mut Vec<u8>, m: &Csr, enc: Encoding) {
    match enc {
        Encoding::Dense => put_f32s(p, &m.to_dense()),
        Encoding::Csr16 | Encoding::Csr32 => {
            m.row_start.iter().for_each(|s| p.extend(s.to_le_bytes()));
            for &c in &m.col {
                if enc == Encoding::Csr16 {
                    p.extend((c as u16).to_le_bytes());
                } else {
                    p.extend(c.to_le_bytes());
                }
            }
            put_f32s(p, &m.val);
        }
        Encoding::Bitmask => {
            p.extend(bitmask(m));
            put_f32s(p, &m.val);
        }
        Encoding::Packed => {
            let z = packed(m);
            put_u32(p, z.len());
            p.extend(z);
        }
    }
}

/// Parses and validates a file's bytes.
pub fn from_bytes(bytes: &[u8]) -> Result<CompactModel, Error> {
    Ok(parse(bytes)?)
}

fn parse(bytes: &[u8]) -> Result<CompactModel, Problem> {
    if bytes.len() < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
        return Err(Problem::NotLsm);
    }
    let mut h = Reader::new(&bytes[..bytes.len().min(HEADER)]);
    h.take(MAGIC.len(), "magic")?;
    let version = h.u32("version")?;
    if version != VERSION {
        return Err(Problem::Version(version));
    }
    let length = h.u64("payload length")?;
    let stored = h.u32("checksum")?;
    let payload = &bytes[HEADER..];
    if length != payload.len() as u64 {
        return Err(Problem::Invalid(format!(
            "header promises {length} bytes of payload, the file has {}",
            payload.len()
        )));
    }
    let computed = crc32(payload);
    if computed != stored {
        return Err(Problem::Checksum { stored, computed });
    }
    let model = parse_payload(&mut Reader::new(payload))?;
    model.problems().map_err(Problem::Invalid)?;
    Ok(model)
}

fn parse_payload(r: &mut Reader<'_>) -> Result<CompactModel, Problem> {
    let n = u16::from_le_bytes(r.array("source length")?) as usize;
    let source = std::str::from_utf8(r.take(n, "source")?)
        .map_err(|_| Problem::Invalid("the source name is not UTF-8".into()))?
        .to_string();
    let input = [r.dim("input")?, r.dim("input")?, r.dim("input")?];
    let count = r.dim("layer count")?;
    let mut layers = Vec::new();
    for i in 0..count {
        let at = |m: &str| Problem::Invalid(format!("layer {i}: {m}"));
        let tag = r.array::<4>("layer tag")?;
        layers.push(match tag[0] {
            1..=3 => units_layer(r, tag, &at)?,
            4..=6 if tag[1..] != [0, 0, 0] => return Err(at("stray flags on a transformer part")),
            4 => {
                let [channels, height, width, patch] = [
                    r.dim("embed")?,
                    r.dim("embed")?,
                    r.dim("embed")?,
                    r.dim("embed")?,
                ];
                let proj = projection(r, &at)?;
                let dim = proj.weights.rows;
                let tokens = (height / patch.max(1))
                    .checked_mul(width / patch.max(1))
                    .and_then(|t| (t + 1).checked_mul(dim))
                    .ok_or_else(|| at("too many tokens"))?;
                Layer::Embed(EmbedLayer {
                    channels,
                    height,
                    width,
                    patch,
                    proj,
                    class_token: r.f32s(dim, "class token")?,
                    position: r.f32s(tokens, "position embeddings")?,
                })
            }
            5 => {
                let [heads, dim, hidden] = [r.dim("block")?, r.dim("block")?, r.dim("block")?];
                Layer::Block(Box::new(BlockLayer {
                    heads,
                    norm1: norm(r, dim)?,
                    qkv: projection(r, &at)?,
                    proj: projection(r, &at)?,
                    norm2: norm(r, dim)?,
                    fc1: projection(r, &at)?,
                    fc2: projection(r, &at)?,
                    hidden_kept: r.u32s(hidden, "hidden units kept")?,
                }))
            }
            6 => {
                let dim = r.dim("read-out")?;
                Layer::Readout(ReadoutLayer {
                    norm: norm(r, dim)?,
                })
            }
            k => return Err(at(&format!("unknown layer kind {k}"))),
        });
    }
    if r.remaining() != 0 {
        return Err(Problem::Invalid(format!(
            "{} bytes follow the last layer",
            r.remaining()
        )));
    }
    Ok(CompactModel {
        source,
        input,
        layers,
    })
}

/// A convolution (kinds 1 and 3) or a linear layer (kind 2) after its tag.
fn units_layer(
    r: &mut Reader<'_>,
    [kind, relu, pool, enc]: [u8; 4],
    at: &dyn Fn(&str) -> Problem,
) -> Result<Layer, Problem> {
    let relu = match relu {
        0 => false,
        1 => true,
        v => return Err(at(&format!("relu flag is {v}, not 0 or 1"))),
    };
    let pool = match pool {
        0 => Pool::None,
        1 => Pool::Max,
        2 => Pool::Avg,
        p => return Err(at(&format!("pool kind is {p}, not 0, 1 or 2"))),
    };
    let enc = encoding(enc, at)?;
    enum Head {
        /// Input `[channels, height, width]`, kernel, padding.
        Conv([usize; 3], [usize; 2], [usize; 2]),
        Linear(Option<Vec<u32>>),
    }
    let head = if kind == 2 {
        if pool != Pool::None {
            return Err(at("a linear layer cannot pool"));
        }
        let g = r.u32("gather count")?;
        Head::Linear(if g == NO_GATHER {
            None
        } else {
            Some(r.u32s(g as usize, "gather indices")?)
        })
    } else {
        let input = [r.dim("conv")?, r.dim("conv")?, r.dim("conv")?];
        if kind == 1 {
            let (k, p) = (r.dim("conv")?, r.dim("conv")?);
            Head::Conv(input, [k, k], [p, p])
        } else {
            let k = [r.dim("conv")?, r.dim("conv")?];
            Head::Conv(input, k, [r.dim("conv")?, r.dim("conv")?])
        }
    };
    let (rows, cols, nnz) = (r.dim("rows")?, r.dim("cols")?, r.dim("nnz")?);
    let bias = r.f32s(rows, "bias")?;
    let kept = r.u32s(rows, "kept indices")?;
    let weights = weights(r, enc, [rows, cols, nnz], at)?;
    Ok(match head {
        Head::Conv([in_channels, height, width], kernel, padding) => Layer::Conv(ConvLayer {
            in_channels,
            height,
            width,
            kernel,
            padding,
            weights,
            bias,
            relu,
            pool,
            kept,
        }),
        Head::Linear(gather) => Layer::Linear(LinearLayer {
            gather,
            weights,
            bias,
            relu,
            kept,
        }),
    })
}

fn encoding(e: u8, at: &dyn Fn(&str) -> Problem) -> Result<Encoding, Problem> {
    Ok(match e {
        0 => Encoding::Dense,
        1 => Encoding::Csr16,
        2 => Encoding::Csr32,
        3 => Encoding::Bitmask,
        4 => Encoding::Packed,
        e => return Err(at(&format!("unknown weight encoding {e}"))),
    })
}

/// A transformer projection: encoding, shape, biases, weights.
fn projection(r: &mut Reader<'_>, at: &dyn Fn(&str) -> Problem) -> Result<Projection, Problem> {
    let enc = encoding(r.array::<1>("encoding")?[0], at)?;
    let (rows, cols, nnz) = (r.dim("rows")?, r.dim("cols")?, r.dim("nnz")?);
    let bias = r.f32s(rows, "bias")?;
    Ok(Projection {
        weights: weights(r, enc, [rows, cols, nnz], at)?,
        bias,
    })
}

fn norm(r: &mut Reader<'_>, dim: usize) -> Result<Norm, Problem> {
    Ok(Norm {
        gamma: r.f32s(dim, "norm scales")?,
        beta: r.f32s(dim, "norm shifts")?,
        eps: f32::from_le_bytes(r.array("norm epsilon")?),
    })
}

/// The matrix whose live entries `bits` marks, holding `val` in row-major order.
fn from_bitmask(
    bits: &[u8],
    val: Vec<f32>,
    [rows, cols, nnz]: [usize; 3],
    at: &dyn Fn(&str) -> Problem,
) -> Result<Csr, Problem> {
    let cells = rows * cols;
    let live: usize = bits.iter().map(|b| b.count_ones() as usize).sum();
    let stray = cells % 8 != 0 && bits[bits.len() - 1] >> (cells % 8) != 0;
    if live != nnz || stray || val.len() != nnz {
        return Err(at("bitmask does not hold exactly the live weights"));
    }
    let (mut row_start, mut col) = (vec![0u32], Vec::with_capacity(nnz));
    for row in 0..rows {
        for c in 0..cols {
            let i = row * cols + c;
            if bits[i / 8] >> (i % 8) & 1 == 1 {
                col.push(c as u32);
            }
        }
        row_start.push(col.len() as u32);
    }
    Ok(Csr {
        rows,
        cols,
        row_start,
        col,
        val,
    })
}

/// A `rows × cols` matrix with `nnz` live entries, stored in encoding `enc`.
fn weights(
    r: &mut Reader<'_>,
    enc: Encoding,
    [rows, cols, nnz]: [usize; 3],
    at: &dyn Fn(&str) -> Problem,
) -> Result<Csr, Problem> {
    let cells = rows
        .checked_mul(cols)
        .filter(|&c| c <= u32::MAX as usize)
        .ok_or_else(|| at("weight matrix is too large"))?;
    if nnz > cells {
        return Err(at("more live weights than cells"));
    }
    let m = match enc {
        Encoding::Dense => {
            let dense = r.f32s(cells, "dense weights")?;
            let m = Csr::from_dense(rows, cols, &dense).map_err(|e| at(&e.to_string()))?;
            if m.nnz() != nnz {
                return Err(at("live weight count does not match the dense values"));
            }
            m
        }
        Encoding::Csr16 | Encoding::Csr32 => {
            let row_start = r.u32s(rows + 1, "row starts")?;
            let col = if enc == Encoding::Csr16 {
                let raw = r.take(nnz * 2, "columns")?;
                raw.chunks_exact(2)
                    .map(|b| u16::from_le_bytes([b[0], b[1]]) as u32)
                    .collect()
            } else {
                r.u32s(nnz, "columns")?
            };
            let val = r.f32s(nnz, "values")?;
            Csr {
                rows,
                cols,
                row_start,
                col,
                val,
            }
        }
        Encoding::Bitmask => {
            let bits = r.take(cells.div_ceil(8), "bitmask")?;
            let val = r.f32s(nnz, "values")?;
            from_bitmask(bits, val, [rows, cols, nnz], at)?
        }
        Encoding::Packed => {
            let n = r.u32("packed length")? as usize;
            let z = r.take(n, "packed weights")?;
            let want = cells.div_ceil(8) + 4 * nnz;
            // Inflate at most one byte past what the shape says, so a crafted stream cannot
            // make us allocate more.
            let mut raw = Vec::with_capacity(want);
            let read = std::io::Read::read_to_end(
                &mut std::io::Read::take(flate2::read::DeflateDecoder::new(z), want as u64 + 1),
                &mut raw,
            );
            if read.is_err() || raw.len() != want {
                return Err(at(
                    "packed weights do not inflate to the bitmask and values",
                ));
            }
            let (bits, planes) = raw.split_at(cells.div_ceil(8));
            let val = (0..nnz)
                .map(|i| f32::from_le_bytes([0, 1, 2, 3].map(|p| planes[p * nnz + i])))
                .collect();
            from_bitmask(bits, val, [rows, cols, nnz], at)?
        }
    };
    m.invariants().map_err(|e| at(&e))?;
    Ok(m)
}

/// Writes `model` to `path` through a temporary file and a rename, so a crash never leaves a
/// half-written model where a good one was.
pub fn save(model: &CompactModel, path: &Path) -> Result<(), Error> {
    model.check().map_err(|e| e.in_file(path))?;
    let tmp = path.with_extension("lsm.tmp");
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut file, &to_bytes(model))?;
        file.sync_all()
    };
    write().map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Reads and validates the model in the file at `path`; every error names the file.
pub fn load(path: &Path) -> Result<CompactModel, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse(&bytes).map_err(|p| Error::from(p).in_file(path))
}

/// A cursor that never reads past its slice.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, at: 0 }
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, need: usize, what: &'static str) -> Result<&'a [u8], Problem> {
        if need > self.remaining() {
            return Err(Problem::Truncated {
                what,
                at: self.at,
                need,
                have: self.remaining(),
            });
        }
        let s = &self.bytes[self.at..self.at + need];
        self.at += need;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], Problem> {
        Ok(self.take(N, what)?.try_into().expect("took N bytes"))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, Problem> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, Problem> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A dimension: a u32 below 2^24 (no layer of a real ticket comes near it), so products
    /// of two stay far from overflow.
    fn dim(&mut self, what: &'static str) -> Result<usize, Problem> {
        let v = self.u32(what)?;
        if v >= 1 << 24 {
            return Err(Problem::Invalid(format!(
                "{what} of {v} is implausibly large"
            )));
        }
        Ok(v as usize)
    }

    fn words(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Problem> {
        let need = n.checked_mul(4).ok_or(Problem::Truncated {
            what,
            at: self.at,
            need: usize::MAX,
            have: self.remaining(),
        })?;
        self.take(need, what)
    }

    fn u32s(&mut self, n: usize, what: &'static str) -> Result<Vec<u32>, Problem> {
        Ok(self
            .words(n, what)?
            .chunks_exact(4)
            .map(le_word)
            .map(u32::from_le_bytes)
            .collect())
    }

    fn f32s(&mut self, n: usize, what: &'static str) -> Result<Vec<f32>, Problem> {
        Ok(self
            .words(n, what)?
            .chunks_exact(4)
            .map(le_word)
            .map(f32::from_le_bytes)
            .collect())
    }
}

fn le_word(b: &[u8]) -> [u8; 4] {
    [b[0], b[1], b[2], b[3]]
}
