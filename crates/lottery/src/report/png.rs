//! Charts as PNG, for viewers that show no SVG: a small rasteriser (lines, dots and the public
//! domain 8×8 bitmap font of `font8x8`) and an uncompromising minimal PNG encoder (8-bit RGB,
//! one zlib stream).

use std::io::Write;

use flate2::Crc;
use flate2::write::ZlibEncoder;
use font8x8::legacy::BASIC_LEGACY;

use super::chart::{Anchor, Canvas, Chart, HEIGHT, Rgb, WIDTH};

struct Raster {
    w: usize,
    h: usize,
    rgb: Vec<u8>,
}

impl Raster {
    fn set(&mut self, x: i64, y: i64, c: Rgb) {
        if x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h {
            let i = (y as usize * self.w + x as usize) * 3;
            self.rgb[i..i + 3].copy_from_slice(&[c.0, c.1, c.2]);
        }
    }

    /// A square of `width` pixels centred on (x, y).
    fn brush(&mut self, x: f64, y: f64, width: f64, c: Rgb) {
        let n = width.round().max(1.0) as i64;
        let (x0, y0) = (
            (x - (n - 1) as f64 / 2.0).round() as i64,
            (y - (n - 1) as f64 / 2.0).round() as i64,
        );
        for dy in 0..n {
            for dx in 0..n {
                self.set(x0 + dx, y0 + dy, c);
            }
        }
    }

    /// One 8×8 glyph scaled by `s`, its top-left at (x, y); `vertical` turns it a quarter
    /// anticlockwise about that corner.
    fn glyph(&mut self, ch: char, x: i64, y: i64, s: i64, vertical: bool) {
        let bits = BASIC_LEGACY
            .get(ch as usize)
            .copied()
            .unwrap_or(BASIC_LEGACY[b'?' as usize]);
        for (row, byte) in bits.iter().enumerate() {
            for col in 0..8 {
                if byte >> col & 1 == 0 {
                    continue;
                }
                for (dy, dx) in (0..s).flat_map(|a| (0..s).map(move |b| (a, b))) {
                    let (gx, gy) = (col as i64 * s + dx, row as i64 * s + dy);
                    if vertical {
                        self.set(x + gy, y - gx, BLACK_TEXT);
                    } else {
                        self.set(x + gx, y + gy, BLACK_TEXT);
                    }
                }
            }
        }
    }
}

const BLACK_TEXT: Rgb = Rgb(0x22, 0x22, 0x22);

impl Canvas for Raster {
    fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, fill: Option<Rgb>, stroke: Option<Rgb>) {
        if let Some(c) = fill {
            for py in y.round() as i64..(y + h).round() as i64 {
                for px in x.round() as i64..(x + w).round() as i64 {
                    self.set(px, py, c);
                }
            }
        }
        if let Some(c) = stroke {
            let (x1, y1) = (x + w, y + h);
            for (a, b) in [
                ((x, y), (x1, y)),
                ((x1, y), (x1, y1)),
                ((x1, y1), (x, y1)),
                ((x, y1), (x, y)),
            ] {
                self.line(a, b, c, 1.0);
            }
        }
    }

    fn line(&mut self, from: (f64, f64), to: (f64, f64), colour: Rgb, width: f64) {
        let (dx, dy) = (to.0 - from.0, to.1 - from.1);
        let steps = dx.abs().max(dy.abs()).ceil().max(1.0) as usize;
        for i in 0..=steps {
            let t = i as f64 / steps as f64;
            self.brush(from.0 + dx * t, from.1 + dy * t, width, colour);
        }
    }

    fn polyline(&mut self, points: &[(f64, f64)], colour: Rgb, width: f64) {
        for pair in points.windows(2) {
            self.line(pair[0], pair[1], colour, width);
        }
    }

    fn dot(&mut self, centre: (f64, f64), radius: f64, colour: Rgb) {
        let r = radius.ceil() as i64;
        let (cx, cy) = (centre.0.round() as i64, centre.1.round() as i64);
        for dy in -r..=r {
            for dx in -r..=r {
                if ((dx * dx + dy * dy) as f64) <= radius * radius + 0.5 {
                    self.set(cx + dx, cy + dy, colour);
                }
            }
        }
    }

    fn text(&mut self, at: (f64, f64), text: &str, anchor: Anchor, size: f64, vertical: bool) {
        // The font is 8 pixels a cell: twice that for titles that fit.
        let chars = text.chars().count() as i64;
        let s = if size >= 14.0 && chars * 16 <= self.w as i64 - 4 {
            2
        } else {
            1
        };
        let advance = 8 * s;
        let len = chars * advance;
        let shift = match anchor {
            Anchor::Start => 0,
            Anchor::Middle => len / 2,
            Anchor::End => len,
        };
        let (mut x, y) = (at.0.round() as i64, at.1.round() as i64);
        if !vertical {
            // A bitmap font runs wider than SVG's; keep a long title inside the image.
            x = x.clamp(shift + 2, (self.w as i64 - len + shift - 2).max(shift + 2));
        }
        for (i, ch) in text.chars().enumerate() {
            let along = i as i64 * advance - shift;
            if vertical {
                // Reads upwards; (x, y) is the baseline's middle, the glyph tops to the left.
                self.glyph(ch, x - 7 * s, y - along, s, true);
            } else {
                self.glyph(ch, x + along, y - 7 * s, s, false);
            }
        }
    }
}

/// The chart as PNG bytes.
pub fn render(chart: &Chart<'_>) -> Vec<u8> {
    let (w, h) = (WIDTH as usize, HEIGHT as usize);
    let mut r = Raster {
        w,
        h,
        rgb: vec![255; w * h * 3],
    };
    chart.draw(&mut r);
    encode(w, h, &r.rgb)
}

/// 8-bit RGB PNG: signature, IHDR, one IDAT (filter 0 on every row), IEND.
fn encode(w: usize, h: usize, rgb: &[u8]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(h * (w * 3 + 1));
    for row in rgb.chunks_exact(w * 3) {
        raw.push(0);
        raw.extend_from_slice(row);
    }
    let mut z = ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&raw).expect("writing to memory");
    let idat = z.finish().expect("writing to memory");
    let mut ihdr = Vec::new();
    ihdr.extend((w as u32).to_be_bytes());
    ihdr.extend((h as u32).to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let mut out = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    for (kind, data) in [(b"IHDR", &ihdr), (b"IDAT", &idat), (b"IEND", &Vec::new())] {
        out.extend((data.len() as u32).to_be_bytes());
        out.extend(kind);
        out.extend(data.iter());
        let mut crc = Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend(crc.sum().to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::chart::{Point, Series, XAxis};

    #[test]
    fn a_chart_encodes_as_a_png_that_decompresses_to_its_pixels() {
        let series = [Series {
            name: "ticket".into(),
            points: (0..5)
                .map(|i| Point {
                    x: 100.0 * 0.5f64.powi(i),
                    y: 98.0 - i as f64 * 0.1,
                    lo: 97.5,
                    hi: 98.5,
                })
                .collect(),
        }];
        let png = render(&Chart {
            title: "Test accuracy",
            xlabel: "weights remaining (%)",
            ylabel: "accuracy",
            axis: XAxis::Remaining,
            series: &series,
        });
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&png[12..16], b"IHDR");
        assert_eq!(
            u32::from_be_bytes(png[16..20].try_into().unwrap()),
            WIDTH as u32
        );
        // The IDAT payload inflates to one filter byte and a row of pixels per line, and the
        // series colour appears among them.
        let len = u32::from_be_bytes(png[33..37].try_into().unwrap()) as usize;
        assert_eq!(&png[37..41], b"IDAT");
        let mut raw = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::ZlibDecoder::new(&png[41..41 + len]),
            &mut raw,
        )
        .unwrap();
        assert_eq!(raw.len(), HEIGHT as usize * (WIDTH as usize * 3 + 1));
        assert!(raw.windows(3).any(|p| p == [0x1f, 0x77, 0xb4]));
        assert!(
            png.ends_with(&[0xAE, 0x42, 0x60, 0x82]),
            "IEND's CRC closes the file"
        );
    }
}
