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
//!     kind u8 (1 conv, 2 linear, 3 conv with a non-square kernel or padding)
//!       · relu u8 (0/1) · pool u8 (0 none, 1 max, 2 avg) · encoding u8
//!     kind 1:      in_channels, height, width, kernel, padding   5 × u32
//!     kind 3:      in_channels, height, width, kernel height, kernel width,
//!                  padding rows, padding columns                 7 × u32
//!     linear only: gather count u32 (0xFFFFFFFF: no gather), then that many u32
//!     rows u32 · cols u32 · nnz u32
//!     bias  rows × f32
//!     kept  rows × u32      original index of each surviving output
//!     weights, by encoding
//!       0 dense     rows·cols × f32 (zeros included)
//!       1 csr16     (rows+1) × u32 row starts, nnz × u16 columns, nnz × f32 values
//!       2 csr32     (rows+1) × u32 row starts, nnz × u32 columns, nnz × f32 values
//!       3 bitmask   ⌈rows·cols/8⌉ bytes (row-major, least significant bit first), nnz × f32
//! ```
//!
//! Square convolutions are written as kind 1, so files of the image nets read in any version;
//! kinds added later (3) are refused by older readers as unknown kinds, never misread.
//!
//! The writer picks, per layer, the encoding with the fewest bytes. The reader checks every
//! length against the bytes present before allocating, then the whole model with
//! [`CompactModel::check`], so a truncated, flipped or edited file is an error, never a panic.

use std::path::Path;

use crate::crc32::crc32;
use crate::csr::Csr;
use crate::error::{Error, Problem};
use crate::model::{CompactModel, ConvLayer, Layer, LinearLayer, Pool};

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
}

impl Encoding {
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Dense => "dense",
            Encoding::Csr16 => "csr16",
            Encoding::Csr32 => "csr32",
            Encoding::Bitmask => "bitmask",
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
        }
    }

    /// The smallest encoding for `m` (ties go to the earlier, simpler one).
    pub fn best(m: &Csr) -> Encoding {
        let mut options = vec![Encoding::Dense, Encoding::Bitmask, Encoding::Csr32];
        if m.cols <= 1 << 16 {
            options.push(Encoding::Csr16);
        }
        options
            .into_iter()
            .min_by_key(|e| e.bytes(m))
            .expect("options are never empty")
    }
}

/// The file's bytes. `model` must pass [`CompactModel::check`] ([`save`] makes sure).
pub fn to_bytes(model: &CompactModel) -> Vec<u8> {
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
        let m = layer.weights();
        let enc = Encoding::best(m);
        match layer {
            Layer::Conv(c) => {
                let pool = match c.pool {
                    Pool::None => 0,
                    Pool::Max => 1,
                    Pool::Avg => 2,
                };
                let ([kh, kw], [ph, pw]) = (c.kernel, c.padding);
                let square = kh == kw && ph == pw;
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
            }
            Layer::Linear(l) => {
                p.extend([2, l.relu as u8, 0, enc as u8]);
                match &l.gather {
                    None => p.extend(NO_GATHER.to_le_bytes()),
                    Some(g) => {
                        put_u32(&mut p, g.len());
                        g.iter().for_each(|&j| p.extend(j.to_le_bytes()));
                    }
                }
            }
        }
        for d in [m.rows, m.cols, m.nnz()] {
            put_u32(&mut p, d);
        }
        layer.bias().iter().for_each(|b| p.extend(b.to_le_bytes()));
        layer.kept().iter().for_each(|k| p.extend(k.to_le_bytes()));
        match enc {
            Encoding::Dense => m.to_dense().iter().for_each(|v| p.extend(v.to_le_bytes())),
            Encoding::Csr16 | Encoding::Csr32 => {
                m.row_start.iter().for_each(|s| p.extend(s.to_le_bytes()));
                for &c in &m.col {
                    if enc == Encoding::Csr16 {
                        p.extend((c as u16).to_le_bytes());
                    } else {
                        p.extend(c.to_le_bytes());
                    }
                }
                m.val.iter().for_each(|v| p.extend(v.to_le_bytes()));
            }
            Encoding::Bitmask => {
                let mut bits = vec![0u8; (m.rows * m.cols).div_ceil(8)];
                for r in 0..m.rows {
                    for &c in m.row(r).0 {
                        let i = r * m.cols + c as usize;
                        bits[i / 8] |= 1 << (i % 8);
                    }
                }
                p.extend(bits);
                m.val.iter().for_each(|v| p.extend(v.to_le_bytes()));
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
    let invalid = |m: String| Problem::Invalid(m);
    let n = u16::from_le_bytes(r.array("source length")?) as usize;
    let source = std::str::from_utf8(r.take(n, "source")?)
        .map_err(|_| invalid("the source name is not UTF-8".into()))?
        .to_string();
    let input = [r.dim("input")?, r.dim("input")?, r.dim("input")?];
    let count = r.dim("layer count")?;
    let mut layers = Vec::new();
    for i in 0..count {
        let at = |m: &str| invalid(format!("layer {i}: {m}"));
        let [kind, relu, pool, enc] = r.array::<4>("layer tag")?;
        let flag = |v: u8, what: &str| match v {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(at(&format!("{what} flag is {v}, not 0 or 1"))),
        };
        let relu = flag(relu, "relu")?;
        let pool = match pool {
            0 => Pool::None,
            1 => Pool::Max,
            2 => Pool::Avg,
            p => return Err(at(&format!("pool kind is {p}, not 0, 1 or 2"))),
        };
        let enc = match enc {
            0 => Encoding::Dense,
            1 => Encoding::Csr16,
            2 => Encoding::Csr32,
            3 => Encoding::Bitmask,
            e => return Err(at(&format!("unknown weight encoding {e}"))),
        };
        enum Head {
            /// Input `[channels, height, width]`, kernel, padding.
            Conv([usize; 3], [usize; 2], [usize; 2]),
            Linear(Option<Vec<u32>>),
        }
        let head = match kind {
            1 | 3 => {
                let input = [r.dim("conv")?, r.dim("conv")?, r.dim("conv")?];
                if kind == 1 {
                    let (k, p) = (r.dim("conv")?, r.dim("conv")?);
                    Head::Conv(input, [k, k], [p, p])
                } else {
                    let k = [r.dim("conv")?, r.dim("conv")?];
                    Head::Conv(input, k, [r.dim("conv")?, r.dim("conv")?])
                }
            }
            2 => {
                if pool != Pool::None {
                    return Err(at("a linear layer cannot pool"));
                }
                let g = r.u32("gather count")?;
                Head::Linear(if g == NO_GATHER {
                    None
                } else {
                    Some(r.u32s(g as usize, "gather indices")?)
                })
            }
            k => return Err(at(&format!("unknown layer kind {k}"))),
        };
        let (rows, cols, nnz) = (r.dim("rows")?, r.dim("cols")?, r.dim("nnz")?);
        let cells = rows
            .checked_mul(cols)
            .filter(|&c| c <= u32::MAX as usize)
            .ok_or_else(|| at("weight matrix is too large"))?;
        if nnz > cells {
            return Err(at("more live weights than cells"));
        }
        let bias = r.f32s(rows, "bias")?;
        let kept = r.u32s(rows, "kept indices")?;
        let weights = match enc {
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
                let live: usize = bits.iter().map(|b| b.count_ones() as usize).sum();
                let stray = cells % 8 != 0 && bits[bits.len() - 1] >> (cells % 8) != 0;
                if live != nnz || stray {
                    return Err(at("bitmask does not hold exactly the live weights"));
                }
                let val = r.f32s(nnz, "values")?;
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
                Csr {
                    rows,
                    cols,
                    row_start,
                    col,
                    val,
                }
            }
        };
        weights.invariants().map_err(|m| at(&m))?;
        layers.push(match head {
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
        });
    }
    if r.remaining() != 0 {
        return Err(invalid(format!(
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
