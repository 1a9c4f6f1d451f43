//! `lottery report … --html FILE`: what `lottery report` prints and draws, as one page — for
//! experiments their settings, level tables, every plot and each branch's results; for a sweep
//! its grid, where each point stands, each setting's averaged table and the comparison plots.

use std::path::{Path, PathBuf};

use anyhow::Result;
use lottery::files::{read_json, write_atomic};
use lottery::layout::{RunDir, SweepDir};
use lottery::report::{self, html::Page};
use lottery::results::Summary;

/// The SVG plots in `dir`, by file name (`accuracy`, `early_stop`, …), in a stable order.
fn plots_in(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|p| {
            let svg = std::fs::read_to_string(&p).ok()?;
            let name = p.file_stem()?.to_string_lossy().replace('_', " ");
            Some((name, svg))
        })
        .collect()
}

/// A run's settings as TOML (as `--print-config` shows them), or its JSON when that fails.
fn settings_text(config: &Path) -> Option<String> {
    let json: serde_json::Value = read_json(config).ok()?;
    Some(toml::to_string(&json).unwrap_or_else(|_| json.to_string()))
}

/// One experiment's section: settings, table, plots, and each branch's table and plots.
pub fn experiment(page: &mut Page, title: &str, dir: &RunDir, summary: &Summary, left: &[String]) {
    page.heading(2, title);
    page.level_table(summary);
    if !left.is_empty() {
        page.note(&format!("unfinished: still to run {}", left.join("; ")));
    }
    page.plots(&plots_in(&dir.plots()));
    for (name, branch) in dir.branch_dirs() {
        let Ok(bs) = read_json::<Summary>(&branch.summary()) else {
            continue;
        };
        page.heading(3, &format!("branch {name}"));
        if let Some(settings) = settings_text(&branch.config()) {
            page.preformatted(&settings);
        }
        page.level_table(&bs);
        let measures = report::measures_table(&bs);
        if !measures.is_empty() {
            page.preformatted(&measures);
        }
        page.plots(&plots_in(&branch.plots()));
    }
    if let Some(settings) = settings_text(&dir.config()) {
        page.heading(3, "settings");
        page.preformatted(&settings);
    }
}

/// Plots comparing several experiments (`lottery report A B`).
pub fn comparison(page: &mut Page, plots: &Path) {
    page.heading(2, "comparison");
    page.plots(&plots_in(plots));
}

/// A sweep's page: the grid, each point's state, each setting averaged over its seeds, plots.
pub fn sweep(
    page: &mut Page,
    sweep: &SweepDir,
    plan: &crate::sweep::Plan,
    groups: &[crate::sweep::Group],
) {
    page.paragraph(&format!(
        "{} points over {}; each setting's numbers are the mean over its seeds, ± half the spread between the worst and the best.",
        plan.points.len(),
        if plan.keys.is_empty() {
            "no keys".to_string()
        } else {
            plan.keys.join(", ")
        }
    ));
    page.heading(2, "settings compared");
    page.plots(&plots_in(&sweep.plots()));
    for g in groups {
        page.heading(
            3,
            &format!("{} — mean of {} points", g.label(), g.points.len()),
        );
        page.level_table(&g.summary);
    }
    page.heading(2, "points");
    let rows: Vec<Vec<String>> = plan
        .points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let done = sweep.point(&p.dir).summary().is_file();
            vec![
                i.to_string(),
                p.label(),
                if done { "done" } else { "unfinished" }.into(),
                p.dir.clone(),
            ]
        })
        .collect();
    page.table(
        &["point", "settings", "state", "directory"].map(String::from),
        &rows,
    );
    if let Some(first) = plan.points.first() {
        page.heading(3, "settings of point 0");
        page.preformatted(&toml::to_string(&first.config).unwrap_or_default());
    }
}

/// Writes the page to `path`.
pub fn write(page: Page, path: &Path) -> Result<()> {
    let html = page.finish();
    write_atomic(path, html.as_bytes())?;
    outln!(
        "HTML report: {} ({} KB)",
        path.display(),
        html.len().div_ceil(1024)
    );
    Ok(())
}
