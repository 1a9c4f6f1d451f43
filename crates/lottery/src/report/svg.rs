//! A small SVG line chart: weights remaining on a reversed log axis with error bars, or
//! training iterations on a linear one.

use std::fmt::Write;

pub struct Point {
    pub x: f64,
    pub y: f64,
    /// Error bar ends (equal to `y` for none).
    pub lo: f64,
    pub hi: f64,
}

pub struct Series {
    pub name: String,
    pub points: Vec<Point>,
}

/// What the x axis shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum XAxis {
    /// Percent of weights remaining: log-scaled and reversed (100% on the left), as in the papers;
    /// points are marked.
    Remaining,
    /// Training iterations from 0, linear; lines only (curves have many points).
    Iterations,
}

const COLOURS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
];

pub fn line_chart(
    title: &str,
    xlabel: &str,
    ylabel: &str,
    axis: XAxis,
    series: &[Series],
) -> String {
    let (w, h, left, right, top, bottom) = (720.0, 440.0, 70.0, 170.0, 40.0, 50.0);
    let pts = series.iter().flat_map(|s| &s.points);
    let xmin = pts
        .clone()
        .map(|p| p.x)
        .fold(f64::INFINITY, f64::min)
        .max(1e-3);
    let xmax = pts
        .clone()
        .map(|p| p.x)
        .fold(0.0, f64::max)
        .max(xmin * 1.01);
    let mut ymin = pts.clone().map(|p| p.lo).fold(f64::INFINITY, f64::min);
    let mut ymax = pts.map(|p| p.hi).fold(f64::NEG_INFINITY, f64::max);
    if !ymin.is_finite() {
        (ymin, ymax) = (0.0, 1.0);
    }
    let pad = ((ymax - ymin) * 0.08).max(1e-6);
    let (ymin, ymax) = (ymin - pad, ymax + pad);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let sx = |x: f64| match axis {
        XAxis::Remaining => left + (xmax.ln() - x.max(xmin).ln()) / (xmax.ln() - xmin.ln()) * pw,
        XAxis::Iterations => left + x / xmax * pw,
    };
    let sy = |y: f64| top + (ymax - y) / (ymax - ymin) * ph;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="14">{}</text>"#,
        left + pw / 2.0,
        esc(title)
    );
    let _ = writeln!(
        s,
        r##"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>"##
    );
    // Remaining: the papers' levels (each 20% below the last); iterations: five even steps.
    let ticks: Vec<f64> = match axis {
        XAxis::Remaining => [100.0, 51.2, 26.2, 13.4, 6.9, 3.5, 1.8, 0.9, 0.5, 0.2, 0.1]
            .into_iter()
            .filter(|&t| t <= xmax * 1.0001 && t >= xmin * 0.9999)
            .collect(),
        XAxis::Iterations => (0..=5).map(|i| xmax * i as f64 / 5.0).collect(),
    };
    for t in ticks {
        let x = sx(t);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{}" stroke="#ddd"/>"##,
            top + ph
        );
        let _ = writeln!(
            s,
            r#"<text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"#,
            top + ph + 16.0,
            if axis == XAxis::Iterations {
                format!("{t:.0}")
            } else {
                t.to_string()
            }
        );
    }
    for i in 0..=5 {
        let y = ymin + (ymax - ymin) * i as f64 / 5.0;
        let py = sy(y);
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{py:.1}" x2="{}" y2="{py:.1}" stroke="#eee"/>"##,
            left + pw
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            left - 6.0,
            py + 4.0,
            fmt(y)
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        left + pw / 2.0,
        h - 10.0,
        esc(xlabel)
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(16 {}) rotate(-90)" text-anchor="middle">{}</text>"#,
        top + ph / 2.0,
        esc(ylabel)
    );
    for (i, se) in series.iter().enumerate() {
        let c = COLOURS[i % COLOURS.len()];
        let path: Vec<String> = se
            .points
            .iter()
            .map(|p| format!("{:.1},{:.1}", sx(p.x), sy(p.y)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="2"/>"#,
            path.join(" ")
        );
        for p in se.points.iter().filter(|_| axis == XAxis::Remaining) {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{c}"/>"#,
                sx(p.x),
                sy(p.y)
            );
            if p.hi > p.lo {
                let _ = writeln!(
                    s,
                    r#"<line x1="{0:.1}" y1="{1:.1}" x2="{0:.1}" y2="{2:.1}" stroke="{c}"/>"#,
                    sx(p.x),
                    sy(p.lo),
                    sy(p.hi)
                );
            }
        }
        let ly = top + 10.0 + i as f64 * 18.0;
        let _ = writeln!(
            s,
            r#"<line x1="{0}" y1="{ly}" x2="{1}" y2="{ly}" stroke="{c}" stroke-width="2"/>"#,
            w - right + 12.0,
            w - right + 32.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}">{}</text>"#,
            w - right + 38.0,
            ly + 4.0,
            esc(&se.name)
        );
    }
    s.push_str("</svg>\n");
    s
}

fn fmt(y: f64) -> String {
    if y.abs() >= 100.0 {
        format!("{y:.0}")
    } else {
        format!("{y:.2}")
    }
}

fn esc(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_places_points_and_escapes_text() {
        let s = line_chart(
            "a<b",
            "x",
            "y",
            XAxis::Remaining,
            &[Series {
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
            }],
        );
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        assert!(s.contains("a&lt;b") && s.contains("ticket"));
        assert_eq!(s.matches("<circle").count(), 2);
    }
}
