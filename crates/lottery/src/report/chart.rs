//! A line chart, laid out once and drawn on any [`Canvas`]: SVG for browsers and papers, PNG
//! for places that show no SVG. Weights remaining on a reversed log axis with the replicates'
//! range as a band (an error bar for a lone level), or training iterations on a linear one.

/// A colour, 8 bits a channel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rgb(pub u8, pub u8, pub u8);

pub const BLACK: Rgb = Rgb(0, 0, 0);
pub const WHITE: Rgb = Rgb(255, 255, 255);
const FRAME: Rgb = Rgb(0x44, 0x44, 0x44);
const GRID_X: Rgb = Rgb(0xdd, 0xdd, 0xdd);
const GRID_Y: Rgb = Rgb(0xee, 0xee, 0xee);
const COLOURS: [Rgb; 8] = [
    Rgb(0x1f, 0x77, 0xb4),
    Rgb(0xd6, 0x27, 0x28),
    Rgb(0x2c, 0xa0, 0x2c),
    Rgb(0xff, 0x7f, 0x0e),
    Rgb(0x94, 0x67, 0xbd),
    Rgb(0x8c, 0x56, 0x4b),
    Rgb(0xe3, 0x77, 0xc2),
    Rgb(0x7f, 0x7f, 0x7f),
];

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Anchor {
    Start,
    Middle,
    End,
}

/// What a chart needs from a drawing surface; coordinates in pixels from the top left.
pub trait Canvas {
    fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, fill: Option<Rgb>, stroke: Option<Rgb>);
    fn line(&mut self, from: (f64, f64), to: (f64, f64), colour: Rgb, width: f64);
    fn polyline(&mut self, points: &[(f64, f64)], colour: Rgb, width: f64);
    fn dot(&mut self, centre: (f64, f64), radius: f64, colour: Rgb);
    /// A translucent area of `colour` inside the closed `outline` (replicates' spread).
    fn band(&mut self, outline: &[(f64, f64)], colour: Rgb);
    /// `vertical` text reads bottom to top, anchored at (x, y).
    fn text(&mut self, at: (f64, f64), text: &str, anchor: Anchor, size: f64, vertical: bool);
}

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
    /// A histogram: each point is a bin (`x` its centre, `y` its count, bins evenly spaced)
    /// drawn as a bar from zero, on a linear axis that spans the bins.
    Bins,
}

pub struct Chart<'a> {
    pub title: &'a str,
    pub xlabel: &'a str,
    pub ylabel: &'a str,
    pub axis: XAxis,
    pub series: &'a [Series],
}

pub const WIDTH: f64 = 720.0;
pub const HEIGHT: f64 = 440.0;

impl Chart<'_> {
    pub fn draw(&self, c: &mut dyn Canvas) {
        let (w, h, top, bottom) = (WIDTH, HEIGHT, 40.0, 50.0);
        // Room for the longest legend name (about 7 px a character at 12 px), within limits;
        // a longer one is cut short with an ellipsis.
        let longest = (self.series.iter())
            .map(|s| s.name.chars().count())
            .max()
            .unwrap_or(0);
        let right = (44.0 + LEGEND_CHAR * longest as f64).clamp(170.0, MAX_LEGEND);
        let pts = self.series.iter().flat_map(|s| &s.points);
        // Bins: the axis runs from the first bin's left edge to the last one's right edge.
        let (bin0, bin1) = {
            let xs: Vec<f64> = pts.clone().map(|p| p.x).collect();
            let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let half = if xs.len() > 1 {
                (hi - lo) / (xs.len() - 1) as f64 / 2.0
            } else {
                0.5
            };
            (lo - half, hi + half)
        };
        let xlo = pts
            .clone()
            .map(|p| p.x)
            .fold(f64::INFINITY, f64::min)
            .max(1e-3);
        let xhi = pts.clone().map(|p| p.x).fold(0.0, f64::max);
        // One level alone (a branch run at one level) sits in the middle, not on the frame.
        let (xmin, xmax) = if xhi > xlo * 1.001 {
            (xlo, xhi)
        } else {
            (xlo / 1.25, xlo * 1.25)
        };
        let mut ymin = pts.clone().map(|p| p.lo).fold(f64::INFINITY, f64::min);
        let mut ymax = pts.map(|p| p.hi).fold(f64::NEG_INFINITY, f64::max);
        if !ymin.is_finite() {
            (ymin, ymax) = (0.0, 1.0);
        }
        // A margin of 8% of the range; a flat series (every early stop at the same iteration)
        // gets 5% of its value, so it still has distinct labels.
        let pad = if ymax > ymin {
            (ymax - ymin) * 0.08
        } else {
            (ymax.abs() * 0.05).max(1e-6)
        };
        // Bars stand on zero. The axis ends on round ticks (1-2-5 steps) around the padded range.
        let (lo, hi) = match self.axis {
            XAxis::Bins => (0.0, ymax + pad),
            _ => (ymin - pad, ymax + pad),
        };
        let ystep = nice_step((hi - lo) / 5.0);
        let (ymin, ymax) = ((lo / ystep).floor() * ystep, (hi / ystep).ceil() * ystep);
        let yticks: Vec<f64> = (0..=((ymax - ymin) / ystep).round() as usize)
            .map(|i| ymin + ystep * i as f64)
            .collect();
        // Room for the widest tick label (about 7 px a character) beside the axis title.
        let widest = (yticks.iter())
            .map(|&y| fmt(y, ystep).len())
            .max()
            .unwrap_or(0);
        let left = 70.0f64.max(32.0 + 7.0 * widest as f64);
        let (pw, ph) = (w - left - right, h - top - bottom);
        let axis = self.axis;
        let sx = |x: f64| match axis {
            XAxis::Remaining => {
                left + (xmax.ln() - x.max(xmin).ln()) / (xmax.ln() - xmin.ln()) * pw
            }
            XAxis::Iterations => left + x / xmax * pw,
            XAxis::Bins => left + (x - bin0) / (bin1 - bin0) * pw,
        };
        let sy = |y: f64| top + (ymax - y) / (ymax - ymin) * ph;

        c.rect(0.0, 0.0, w, h, Some(WHITE), None);
        c.text(
            (left + pw / 2.0, 22.0),
            self.title,
            Anchor::Middle,
            14.0,
            false,
        );
        // Remaining: every level's own value (labels that would touch are left out);
        // iterations: five even steps.
        let ticks: Vec<f64> = match axis {
            XAxis::Remaining => {
                let mut xs: Vec<f64> = self
                    .series
                    .iter()
                    .flat_map(|s| s.points.iter().map(|p| p.x))
                    .collect();
                xs.sort_by(|a, b| b.total_cmp(a));
                xs.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
                xs
            }
            XAxis::Iterations => (0..=5).map(|i| xmax * i as f64 / 5.0).collect(),
            XAxis::Bins => (0..=5)
                .map(|i| bin0 + (bin1 - bin0) * i as f64 / 5.0)
                .collect(),
        };
        let mut last_label = f64::NEG_INFINITY;
        for t in ticks {
            let x = sx(t);
            c.line((x, top), (x, top + ph), GRID_X, 1.0);
            let label = match axis {
                XAxis::Iterations => format!("{t:.0}"),
                XAxis::Remaining if t >= 10.0 => format!("{t:.0}"),
                XAxis::Remaining => format!("{t:.1}"),
                XAxis::Bins => fmt(t, (bin1 - bin0) / 5.0),
            };
            if x - last_label >= 30.0 {
                c.text((x, top + ph + 16.0), &label, Anchor::Middle, 12.0, false);
                last_label = x;
            }
        }
        for &y in &yticks {
            let py = sy(y);
            c.line((left, py), (left + pw, py), GRID_Y, 1.0);
            let label = fmt(y, ystep);
            c.text((left - 6.0, py + 4.0), &label, Anchor::End, 12.0, false);
        }
        c.rect(left, top, pw, ph, None, Some(FRAME));
        c.text(
            (left + pw / 2.0, h - 10.0),
            self.xlabel,
            Anchor::Middle,
            12.0,
            false,
        );
        c.text(
            (16.0, top + ph / 2.0),
            self.ylabel,
            Anchor::Middle,
            12.0,
            true,
        );
        // The replicates' range of each curve as a band under every line: along the tops,
        // back along the bottoms.
        for (i, se) in self.series.iter().enumerate() {
            let spread = se.points.iter().any(|p| p.hi > p.lo);
            if axis == XAxis::Remaining && spread && se.points.len() > 1 {
                let outline: Vec<(f64, f64)> = (se.points.iter())
                    .map(|p| (sx(p.x), sy(p.hi)))
                    .chain(se.points.iter().rev().map(|p| (sx(p.x), sy(p.lo))))
                    .collect();
                c.band(&outline, COLOURS[i % COLOURS.len()]);
            }
        }
        let n = self.series.len();
        for (i, se) in self.series.iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            if axis == XAxis::Bins {
                let width = pw / se.points.len().max(1) as f64;
                for p in &se.points {
                    let (x, y) = (sx(p.x) - width / 2.0, sy(p.y));
                    c.rect(x + 1.0, y, width - 2.0, sy(0.0) - y, Some(colour), None);
                }
            } else {
                let path: Vec<(f64, f64)> = se.points.iter().map(|p| (sx(p.x), sy(p.y))).collect();
                // Earlier series are drawn wider, so a later one lying on top of them (a control
                // that matches the ticket) leaves their colour visible at both edges.
                c.polyline(&path, colour, 2.0 + 1.5 * (n - 1 - i).min(3) as f64);
                // Curves with few evaluations get dots, so a single evaluation is seen at all.
                if axis == XAxis::Iterations && se.points.len() <= 20 {
                    for &p in &path {
                        c.dot(p, 3.0, colour);
                    }
                }
            }
            if axis == XAxis::Remaining {
                for p in &se.points {
                    c.dot((sx(p.x), sy(p.y)), 3.0, colour);
                    if p.hi > p.lo && se.points.len() == 1 {
                        c.line((sx(p.x), sy(p.lo)), (sx(p.x), sy(p.hi)), colour, 1.0);
                    }
                }
            }
            let ly = top + 10.0 + i as f64 * 18.0;
            c.line((w - right + 12.0, ly), (w - right + 32.0, ly), colour, 2.0);
            c.text(
                (w - right + 38.0, ly + 4.0),
                &fit(&se.name, ((right - 44.0) / LEGEND_CHAR) as usize),
                Anchor::Start,
                12.0,
                false,
            );
        }
    }
}

/// Width of a legend character, and the widest the legend may get.
const LEGEND_CHAR: f64 = 7.0;
const MAX_LEGEND: f64 = 300.0;

/// `name` in at most `max` characters, its end replaced by `…` when cut.
fn fit(name: &str, max: usize) -> String {
    if name.chars().count() <= max {
        return name.to_string();
    }
    let kept: String = name.chars().take(max.saturating_sub(1)).collect();
    format!("{kept}…")
}

/// The round step (1, 2 or 5 times a power of ten) nearest above `raw`, so ticks read 97.0,
/// 97.5, 98.0 rather than 97.39, 97.69.
fn nice_step(raw: f64) -> f64 {
    let raw = raw.abs().max(1e-12);
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .find(|&m| m * magnitude >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0);
    step * magnitude
}

/// A tick at a multiple of `step`, with as many decimals as the step has: 97.5 for half
/// points, 250 for steps of 50, 0.0008 for steps of 2e-4.
fn fmt(y: f64, step: f64) -> String {
    let decimals = (-step.abs().max(1e-12).log10().floor()).clamp(0.0, 10.0) as usize;
    // Rounding noise next to zero prints as 0, not -0.0.
    let y = if y.abs() < step * 1e-9 { 0.0 } else { y };
    format!("{y:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn y_ticks_are_round_and_have_the_decimals_their_step_needs() {
        assert_eq!(nice_step(0.46), 0.5);
        assert_eq!(nice_step(0.5), 0.5);
        assert_eq!(nice_step(1.2), 2.0);
        assert_eq!(nice_step(38.0), 50.0);
        assert!((nice_step(0.00017) - 0.0002).abs() < 1e-15);
        assert_eq!(fmt(97.5, 0.5), "97.5");
        assert_eq!(fmt(97.0, 0.5), "97.0");
        assert_eq!(fmt(250.0, 50.0), "250");
        assert_eq!(fmt(4.0, 1.0), "4");
        assert_eq!(fmt(-1e-17, 0.5), "0.0");
        let labels: Vec<String> = (0..=5)
            .map(|i| fmt(0.0008 + 0.0002 * i as f64, 0.0002))
            .collect();
        assert_eq!(
            labels,
            ["0.0008", "0.0010", "0.0012", "0.0014", "0.0016", "0.0018"]
        );
    }

    /// Records what a chart draws.
    #[derive(Default)]
    struct Record {
        texts: Vec<String>,
        dots: usize,
        widths: Vec<f64>,
    }

    impl Canvas for Record {
        fn rect(&mut self, _: f64, _: f64, _: f64, _: f64, _: Option<Rgb>, _: Option<Rgb>) {}
        fn line(&mut self, _: (f64, f64), _: (f64, f64), _: Rgb, _: f64) {}
        fn polyline(&mut self, _: &[(f64, f64)], _: Rgb, width: f64) {
            self.widths.push(width);
        }
        fn band(&mut self, _: &[(f64, f64)], _: Rgb) {}
        fn dot(&mut self, _: (f64, f64), _: f64, _: Rgb) {
            self.dots += 1;
        }
        fn text(&mut self, _: (f64, f64), text: &str, _: Anchor, _: f64, _: bool) {
            self.texts.push(text.to_string());
        }
    }

    fn series(name: &str, pts: &[(f64, f64)]) -> Series {
        Series {
            name: name.into(),
            points: pts
                .iter()
                .map(|&(x, y)| Point { x, y, lo: y, hi: y })
                .collect(),
        }
    }

    #[test]
    fn every_level_is_labelled_flat_values_get_distinct_labels_and_overlaps_stay_visible() {
        // Two levels, every early stop at 200, a control on top of the ticket.
        let s = [
            series("ticket", &[(100.0, 200.0), (64.0, 200.0), (41.0, 200.0)]),
            series("reinit", &[(64.0, 200.0), (41.0, 200.0)]),
        ];
        let mut r = Record::default();
        Chart {
            title: "t",
            xlabel: "x",
            ylabel: "y",
            axis: XAxis::Remaining,
            series: &s,
        }
        .draw(&mut r);
        for level in ["100", "64", "41"] {
            assert!(r.texts.iter().any(|t| t == level), "{level}: {:?}", r.texts);
        }
        let mut ylabels: Vec<&String> = r.texts.iter().filter(|t| t.len() == 3).collect();
        ylabels.sort();
        ylabels.dedup();
        assert!(ylabels.len() >= 4, "distinct y labels: {:?}", r.texts);
        assert!(r.widths[0] > r.widths[1], "{:?}", r.widths);
    }

    #[test]
    fn a_curve_with_one_evaluation_is_drawn_as_a_dot() {
        let s = [series("ticket 100%", &[(200.0, 91.0)])];
        let mut r = Record::default();
        Chart {
            title: "t",
            xlabel: "x",
            ylabel: "y",
            axis: XAxis::Iterations,
            series: &s,
        }
        .draw(&mut r);
        assert_eq!(r.dots, 1);
    }

    #[test]
    fn accuracy_axes_end_on_round_ticks() {
        let s = [series(
            "ticket",
            &[(100.0, 97.39), (50.0, 97.69), (20.0, 98.02)],
        )];
        let mut r = Record::default();
        Chart {
            title: "t",
            xlabel: "x",
            ylabel: "y",
            axis: XAxis::Remaining,
            series: &s,
        }
        .draw(&mut r);
        let ticks: Vec<&String> = r.texts.iter().filter(|t| t.starts_with("9")).collect();
        assert!(ticks.len() >= 4, "{ticks:?}");
        for t in &ticks {
            // Steps of 0.1, 0.2 or 0.5 around 97–98: every label is a round tenth.
            let v: f64 = t.parse().unwrap();
            assert!(
                ((v * 10.0).round() - v * 10.0).abs() < 1e-9,
                "{t} is not a round tick"
            );
            assert!((97.0..=98.5).contains(&v), "{t}: the axis hugs the data");
        }
    }
}
