//! Reading experiments back: the level table, the plots, and the HTML page that holds them.

pub mod chart;
pub mod html;
pub mod png;
pub mod svg;

use std::fmt::Write;
use std::path::Path;

use crate::data::Metric;
use crate::error::Result;
use crate::files::{read_jsonl, write_atomic};
use crate::layout::RunDir;
use crate::results::{LevelSummary, Summary, VariantResult};
use chart::{Chart, Point, Series, XAxis};

/// For values to predict, the line that says whether the network learned anything: the naive
/// forecast's test metric and the dense ticket's as a multiple of it.
pub fn baseline_line(s: &Summary) -> Option<String> {
    let naive = s.baseline?;
    let dense = s.levels.first()?.variants.get("ticket")?.test_accuracy;
    Some(versus_naive(s.metric, naive, "the dense network's", dense))
}

/// `naive forecast (repeat the last value): test MSE …; <whose> is 0.023× that`.
pub fn versus_naive(metric: Metric, naive: f64, whose: &str, value: f64) -> String {
    format!(
        "naive forecast (repeat the last value): test {}; {whose} is {:.3}× that",
        metric.describe(naive),
        value / naive
    )
}

/// The header and one row per level, as printed live and by `lottery report`.
pub fn table_header(variants: &[String], metric: Metric) -> String {
    aligned(&header_cells(variants, metric), variants)
}

pub fn table_row(l: &LevelSummary, variants: &[String], metric: Metric) -> String {
    aligned(&row_cells(l, variants, metric), variants)
}

/// The level table's column names (an HTML report's table head).
pub fn header_cells(variants: &[String], metric: Metric) -> Vec<String> {
    let mut cells: Vec<String> = vec!["level".into(), "weights%".into(), "params%".into()];
    cells.extend(variants.iter().map(|v| metric.column(v)));
    cells.push("stop iter".into());
    cells.push(metric.column("stop"));
    cells
}

/// One level's cells: the metric of each variant (± half the replicates' spread), and the
/// ticket at its early-stopping point (minimum validation loss): the paper's numbers.
pub fn row_cells(l: &LevelSummary, variants: &[String], metric: Metric) -> Vec<String> {
    let mut cells = vec![
        l.level.to_string(),
        format!("{:.2}", l.remaining * 100.0),
        format!("{:.2}", l.remaining_all * 100.0),
    ];
    for v in variants {
        cells.push(match l.variants.get(v) {
            Some(r) if r.test_accuracy_max > r.test_accuracy_min => format!(
                "{}±{}",
                metric.cell(r.test_accuracy),
                metric.half_spread(r.test_accuracy_min, r.test_accuracy_max)
            ),
            Some(r) => metric.cell(r.test_accuracy),
            None => "-".into(),
        });
    }
    let ticket = l.variants.get("ticket");
    cells.push(
        ticket
            .and_then(|t| t.best_val_iteration)
            .map_or("-".into(), |i| i.to_string()),
    );
    cells.push(
        ticket
            .and_then(|t| t.test_accuracy_at_best_val)
            .map_or("-".into(), |a| metric.cell(a)),
    );
    cells
}

/// Cells right-aligned in the level table's column widths.
fn aligned(cells: &[String], variants: &[String]) -> String {
    let widths = [5, 9, 9]
        .into_iter()
        .chain(variants.iter().map(|v| width(v)))
        .chain([10, 9]);
    let mut s = String::new();
    for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{cell:>w$}");
    }
    s
}

/// The table as CSV, one row per level and variant, for a user's own tools: accuracies as
/// fractions (or, for a series, squared errors in its units, in `test_mse…` columns), `seconds`
/// of training where the variant recorded it (empty otherwise), and for a series the test mean
/// absolute error (`test_mae`).
pub fn csv(summary: &Summary, seconds: &dyn Fn(usize, &str) -> Option<f64>) -> String {
    let m = summary.metric.key();
    let mae = !summary.metric.is_accuracy();
    let mut out = format!(
        "level,weights_remaining,params_remaining,variant,test_{m},test_{m}_min,test_{m}_max,best_val_iteration,test_{m}_at_best_val,seconds{}\n",
        if mae { ",test_mae" } else { "" }
    );
    let opt = |x: Option<String>| x.unwrap_or_default();
    for l in &summary.levels {
        for v in variants(summary) {
            let Some(r) = l.variants.get(&v) else {
                continue;
            };
            let _ = write!(
                out,
                "{},{},{},{v},{},{},{},{},{},{}",
                l.level,
                l.remaining,
                l.remaining_all,
                r.test_accuracy,
                r.test_accuracy_min,
                r.test_accuracy_max,
                opt(r.best_val_iteration.map(|i| i.to_string())),
                opt(r.test_accuracy_at_best_val.map(|a| a.to_string())),
                opt(seconds(l.level, &v).map(|s| format!("{s:.3}"))),
            );
            if mae {
                let _ = write!(out, ",{}", opt(r.test_mae.map(|a| a.to_string())));
            }
            out.push('\n');
        }
    }
    out
}

/// The measures of a summary's levels (instability, one-shot supermasks…) as a table, one row
/// per measure and one column per level that has any; empty when there are none.
pub fn measures_table(summary: &Summary) -> String {
    let levels: Vec<&LevelSummary> = summary
        .levels
        .iter()
        .filter(|l| !l.measures.is_empty())
        .collect();
    let mut names: Vec<&String> = levels.iter().flat_map(|l| l.measures.keys()).collect();
    names.sort();
    names.dedup();
    if names.is_empty() {
        return String::new();
    }
    let w = names.iter().map(|n| n.len()).max().unwrap_or(0).max(7);
    let mut s = format!("{:<w$}", "measure");
    for l in &levels {
        let _ = write!(
            s,
            " {:>9}",
            format!("L{} {:.1}%", l.level, l.remaining * 100.0)
        );
    }
    for n in names {
        let _ = write!(s, "\n{n:<w$}");
        for l in &levels {
            match l.measures.get(n) {
                Some(v) => {
                    let _ = write!(s, " {v:>9.4}");
                }
                None => {
                    let _ = write!(s, " {:>9}", "-");
                }
            }
        }
    }
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

/// Writes `DIR/plots/accuracy.{svg,png}` and `DIR/plots/early_stop.{svg,png}` for one or more
/// runs.
pub fn plot_dir(dir: &RunDir, runs: &[(String, Summary)]) -> Result<()> {
    let plots = dir.plots();
    let metric = runs.first().map_or(Metric::default(), |(_, s)| s.metric);
    let mut acc = Vec::new();
    let mut stop = Vec::new();
    for (label, s) in runs {
        for v in variants(s) {
            let name = if runs.len() > 1 {
                format!("{label}: {v}")
            } else {
                v.clone()
            };
            let pts = |f: &dyn Fn(&VariantResult) -> Option<(f64, f64, f64)>| -> Vec<Point> {
                s.levels
                    .iter()
                    .filter_map(|l| {
                        let r = l.variants.get(&v)?;
                        let (y, lo, hi) = f(r)?;
                        Some(Point {
                            x: l.remaining * 100.0,
                            y,
                            lo,
                            hi,
                        })
                    })
                    .collect()
            };
            acc.push(Series {
                name: name.clone(),
                points: pts(&|r| {
                    Some((
                        metric.plotted(r.test_accuracy),
                        metric.plotted(r.test_accuracy_min),
                        metric.plotted(r.test_accuracy_max),
                    ))
                }),
            });
            stop.push(Series {
                name,
                points: pts(&|r| r.best_val_iteration.map(|i| (i as f64, i as f64, i as f64))),
            });
        }
    }
    save_chart(
        &plots.join("accuracy"),
        &Chart {
            title: &format!("{} at the end of training", metric.title()),
            xlabel: "weights remaining (%)",
            ylabel: metric.axis(),
            axis: XAxis::Remaining,
            series: &acc,
        },
    )?;
    save_chart(
        &plots.join("early_stop"),
        &Chart {
            title: "Early-stopping iteration (minimum validation loss)",
            xlabel: "weights remaining (%)",
            ylabel: "iteration",
            axis: XAxis::Remaining,
            series: &stop,
        },
    )
}

/// Levels whose learning curves are drawn: the dense one and those nearest the LTH paper's
/// Figure 3 points (51.3%, 21.1%, 7.0%, 3.6% of weights remaining) that the run reached.
pub fn curve_levels(summary: &Summary) -> Vec<usize> {
    let mut chosen = Vec::new();
    for target in [1.0, 0.513, 0.211, 0.07, 0.036] {
        let nearest = summary.levels.iter().min_by(|a, b| {
            let d = |r: f64| (r.ln() - f64::ln(target)).abs();
            d(a.remaining).total_cmp(&d(b.remaining))
        });
        if let Some(l) = nearest
            && (l.remaining.ln() - f64::ln(target)).abs() < 0.25
            && !chosen.contains(&l.level)
        {
            chosen.push(l.level);
        }
    }
    chosen
}

/// Writes `DIR/plots/learning_curves.{svg,png}`: test accuracy over training for the ticket at
/// [`curve_levels`], and each control at the sparsest of them. Replicated runs draw replicate 0.
pub fn learning_curves(dir: &RunDir, summary: &Summary) -> Result<()> {
    let root = dir.first_replicate();
    let levels = curve_levels(summary);
    let mut wanted: Vec<(usize, String)> = levels.iter().map(|&l| (l, "ticket".into())).collect();
    if let Some(&sparsest) = levels.last() {
        for v in variants(summary).into_iter().filter(|v| v != "ticket") {
            wanted.push((sparsest, v));
        }
    }
    let mut series = Vec::new();
    for (level, variant) in wanted {
        let path = root.variant(level, &variant).metrics();
        if !path.is_file() {
            continue;
        }
        let records: Vec<crate::train::EvalRecord> = read_jsonl(&path)?;
        let remaining = summary
            .levels
            .iter()
            .find(|l| l.level == level)
            .map_or(f64::NAN, |l| l.remaining * 100.0);
        series.push(Series {
            name: format!("{variant} {remaining:.1}%"),
            points: records
                .iter()
                .map(|r| {
                    let y = summary.metric.plotted(r.test_accuracy);
                    Point {
                        x: r.iteration as f64,
                        y,
                        lo: y,
                        hi: y,
                    }
                })
                .collect(),
        });
    }
    save_chart(
        &dir.plots().join("learning_curves"),
        &Chart {
            title: &format!("{} during training", summary.metric.title()),
            xlabel: "training iteration",
            ylabel: summary.metric.axis(),
            axis: XAxis::Iterations,
            series: &series,
        },
    )
}

/// Writes `stem.svg` and `stem.png`.
pub fn save_chart(stem: &Path, chart: &Chart<'_>) -> Result<()> {
    write_atomic(&stem.with_extension("svg"), svg::render(chart).as_bytes())?;
    write_atomic(&stem.with_extension("png"), &png::render(chart))
}
