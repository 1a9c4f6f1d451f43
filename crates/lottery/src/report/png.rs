//! Charts as PNG, for viewers that show no SVG: the chart's SVG text rendered by `resvg`, with
//! DejaVu Sans embedded (the `dejavu` crate) as the only font — no system font is looked up, so
//! a plot reads the same on every machine.

use std::sync::{Arc, OnceLock};

use resvg::{tiny_skia, usvg};

use super::chart::Chart;

/// The font database, loaded once: DejaVu Sans, standing in for every generic family.
fn fonts() -> Arc<usvg::fontdb::Database> {
    static FONTS: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
    FONTS
        .get_or_init(|| {
            let mut db = usvg::fontdb::Database::new();
            db.load_font_data(dejavu::sans::regular().to_vec());
            for set in [
                usvg::fontdb::Database::set_sans_serif_family,
                usvg::fontdb::Database::set_serif_family,
                usvg::fontdb::Database::set_monospace_family,
            ] {
                set(&mut db, "DejaVu Sans");
            }
            Arc::new(db)
        })
        .clone()
}

/// The chart as PNG bytes.
pub fn render(chart: &Chart<'_>) -> Vec<u8> {
    from_svg(&super::svg::render(chart))
}

/// An SVG document of ours as PNG bytes, at its own size.
pub fn from_svg(svg: &str) -> Vec<u8> {
    let options = usvg::Options {
        fontdb: fonts(),
        font_family: "DejaVu Sans".into(),
        ..Default::default()
    };
    let tree = usvg::Tree::from_str(svg, &options).expect("our SVG parses");
    let size = tree.size().to_int_size();
    let mut pixmap =
        tiny_skia::Pixmap::new(size.width(), size.height()).expect("a chart has a size");
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    pixmap.encode_png().expect("an in-memory pixmap encodes")
}

#[cfg(test)]
mod tests {
    use super::super::chart::{HEIGHT, Point, Series, WIDTH, XAxis};
    use super::*;

    fn decode(png: &[u8]) -> tiny_skia::Pixmap {
        tiny_skia::Pixmap::decode_png(png).unwrap()
    }

    #[test]
    fn a_chart_renders_with_its_curve_band_and_text() {
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
        let chart = Chart {
            title: "Test accuracy",
            xlabel: "weights remaining (%)",
            ylabel: "accuracy",
            axis: XAxis::Remaining,
            series: &series,
        };
        let png = render(&chart);
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let img = decode(&png);
        assert_eq!((img.width(), img.height()), (WIDTH as u32, HEIGHT as u32));
        let pixels = img.pixels();
        let colour = |p: &tiny_skia::PremultipliedColorU8| (p.red(), p.green(), p.blue());
        // The first series colour (#1f77b4) for the curve, and lighter blue for its band.
        assert!(pixels.iter().any(|p| colour(p) == (0x1f, 0x77, 0xb4)));
        assert!(
            pixels.iter().any(|p| {
                let (r, g, b) = colour(p);
                b > 200 && r > 180 && r < 240 && b > g
            }),
            "no band"
        );
        // Text is drawn: the title's row holds dark pixels, anti-aliased (grey levels between).
        let title_row = &pixels[(20 * WIDTH as usize)..(22 * WIDTH as usize)];
        assert!(title_row.iter().any(|p| p.red() < 80));
        assert!(title_row.iter().any(|p| p.red() > 100 && p.red() < 200));
    }
}
