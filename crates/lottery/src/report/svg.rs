//! Charts as SVG text.

use std::fmt::Write;

use super::chart::{Anchor, Canvas, Chart, HEIGHT, Rgb, WIDTH};

struct Svg(String);

fn hex(c: Rgb) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

fn paint(c: Option<Rgb>) -> String {
    c.map_or_else(|| "none".into(), hex)
}

impl Canvas for Svg {
    fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, fill: Option<Rgb>, stroke: Option<Rgb>) {
        let _ = writeln!(
            self.0,
            r#"<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="{}" stroke="{}"/>"#,
            paint(fill),
            paint(stroke)
        );
    }

    fn line(&mut self, from: (f64, f64), to: (f64, f64), colour: Rgb, width: f64) {
        let _ = writeln!(
            self.0,
            r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{}" stroke-width="{width}"/>"#,
            from.0,
            from.1,
            to.0,
            to.1,
            hex(colour)
        );
    }

    fn polyline(&mut self, points: &[(f64, f64)], colour: Rgb, width: f64) {
        let path: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = writeln!(
            self.0,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="{width}"/>"#,
            path.join(" "),
            hex(colour)
        );
    }

    fn band(&mut self, outline: &[(f64, f64)], colour: Rgb) {
        let points: Vec<String> = outline
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = writeln!(
            self.0,
            r#"<polygon points="{}" fill="{}" fill-opacity="0.18" stroke="none"/>"#,
            points.join(" "),
            hex(colour)
        );
    }

    fn dot(&mut self, centre: (f64, f64), radius: f64, colour: Rgb) {
        let _ = writeln!(
            self.0,
            r#"<circle cx="{:.1}" cy="{:.1}" r="{radius}" fill="{}"/>"#,
            centre.0,
            centre.1,
            hex(colour)
        );
    }

    fn text(&mut self, at: (f64, f64), text: &str, anchor: Anchor, size: f64, vertical: bool) {
        let anchor = match anchor {
            Anchor::Start => "start",
            Anchor::Middle => "middle",
            Anchor::End => "end",
        };
        let place = if vertical {
            format!(r#"transform="translate({} {}) rotate(-90)""#, at.0, at.1)
        } else {
            format!(r#"x="{:.1}" y="{:.1}""#, at.0, at.1)
        };
        let _ = writeln!(
            self.0,
            r#"<text {place} text-anchor="{anchor}" font-size="{size}">{}</text>"#,
            esc(text)
        );
    }
}

/// The chart as an SVG document.
pub fn render(chart: &Chart<'_>) -> String {
    let mut svg = Svg(format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif">"#
    ));
    svg.0.push('\n');
    chart.draw(&mut svg);
    svg.0.push_str("</svg>\n");
    svg.0
}

fn esc(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::super::chart::{Point, Series, XAxis};
    use super::*;

    #[test]
    fn chart_places_points_and_escapes_text() {
        let series = [Series {
            name: "ticket".into(),
            points: vec![
                Point {
                    x: 100.0,
                    y: 98.0,
                    lo: 97.0,
                    hi: 99.0,
                },
                Point {
                    x: 10.0,
                    y: 97.0,
                    lo: 97.0,
                    hi: 97.0,
                },
            ],
        }];
        let s = render(&Chart {
            title: "a<b",
            xlabel: "x",
            ylabel: "y",
            axis: XAxis::Remaining,
            series: &series,
        });
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        assert!(s.contains("a&lt;b") && s.contains("ticket"));
        assert_eq!(s.matches("<circle").count(), 2);
    }
}
