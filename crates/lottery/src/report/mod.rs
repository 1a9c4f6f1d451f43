//! Reading experiments back: the level table and the plots.

pub mod svg;

use std::fmt::Write;
use std::path::Path;

use crate::error::Result;
use crate::experiment::{LevelSummary, Summary};
use crate::files::write_atomic;

/// The header and one row per level, as printed live and by `lottery report`.
pub fn table_header(variants: &[String]) -> String {
    let mut s = format!("{:>5} {:>9} {:>9}", "level", "weights%", "params%");
    for v in variants {
        let _ = write!(s, " {:>w$}", format!("{v} acc%"), w = width(v));
    }
    let _ = write!(s, " {:>10}", "stop iter");
    s
}

pub fn table_row(l: &LevelSummary, variants: &[String]) -> String {
    let mut s = format!(
        "{:>5} {:>9.2} {:>9.2}",
        l.level,
        l.remaining * 100.0,
        l.remaining_all * 100.0
    );
    for v in variants {
        let cell = match l.variants.get(v) {
            Some(r) if r.test_accuracy_max > r.test_accuracy_min => {
                format!(
                    "{:.2}±{:.2}",
                    r.test_accuracy * 100.0,
                    (r.test_accuracy_max - r.test_accuracy_min) * 50.0
                )
            }
            Some(r) => format!("{:.2}", r.test_accuracy * 100.0),
            None => "-".into(),
        };
        let _ = write!(s, " {cell:>w$}", w = width(v));
    }
    let stop = l
        .variants
        .get("ticket")
        .and_then(|t| t.best_val_iteration)
        .map_or("-".into(), |i| i.to_string());
    let _ = write!(s, " {stop:>10}");
    s
}

fn width(variant: &str) -> usize {
    (variant.len() + 5).max(13)
}

/// Variant names in a stable order: the ticket first.
pub fn variants(summary: &Summary) -> Vec<String> {
    let mut v: Vec<String> = summary
        .levels
        .iter()
        .flat_map(|l| l.variants.keys().cloned())
        .collect();
    v.sort_by_key(|n| (n != "ticket", n.clone()));
    v.dedup();
    v
}

/// Writes `DIR/plots/accuracy.svg` and `DIR/plots/early_stop.svg` for one or more runs.
pub fn plot_dir(dir: &Path, runs: &[(String, Summary)]) -> Result<()> {
    let plots = dir.join("plots");
    let mut acc = Vec::new();
    let mut stop = Vec::new();
    for (label, s) in runs {
        for v in variants(s) {
            let name = if runs.len() > 1 {
                format!("{label}: {v}")
            } else {
                v.clone()
            };
            let pts = |f: &dyn Fn(&crate::experiment::VariantResult) -> Option<(f64, f64, f64)>| -> Vec<svg::Point> {
                s.levels
                    .iter()
                    .filter_map(|l| {
                        let r = l.variants.get(&v)?;
                        let (y, lo, hi) = f(r)?;
                        Some(svg::Point { x: l.remaining * 100.0, y, lo, hi })
                    })
                    .collect()
            };
            acc.push(svg::Series {
                name: name.clone(),
                points: pts(&|r| {
                    Some((
                        r.test_accuracy * 100.0,
                        r.test_accuracy_min * 100.0,
                        r.test_accuracy_max * 100.0,
                    ))
                }),
            });
            stop.push(svg::Series {
                name,
                points: pts(&|r| r.best_val_iteration.map(|i| (i as f64, i as f64, i as f64))),
            });
        }
    }
    let a = svg::line_chart(
        "Test accuracy at the end of training",
        "weights remaining (%)",
        "test accuracy (%)",
        &acc,
    );
    write_atomic(&plots.join("accuracy.svg"), a.as_bytes())?;
    let e = svg::line_chart(
        "Early-stopping iteration (minimum validation loss)",
        "weights remaining (%)",
        "iteration",
        &stop,
    );
    write_atomic(&plots.join("early_stop.svg"), e.as_bytes())
}
