//! `lottery report DIR [DIR…]`: the level table of experiments (finished or not) and their
//! branches, and plots — of one run in its own folder, of several in a comparison folder; of a
//! sweep directory, its points grouped and averaged over seeds (`sweep::report`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use lottery::experiment;
use lottery::files::read_json;
use lottery::layout::{RunDir, SweepDir};
use lottery::report;
use lottery::report::html::Page;
use lottery::results::Summary;

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Experiment directories (from `lottery run`; an unfinished one shows what it has), or
    /// one sweep directory (from `lottery sweep`).
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// Where comparison plots of several directories go (default: `compare-<A>-<B>…` beside
    /// the first). A single directory's plots go to its own `plots/`.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Names for the directories in plot legends, comma-separated, one per directory (default:
    /// the folder names).
    #[arg(long, value_delimiter = ',')]
    labels: Option<Vec<String>>,
    /// Also write everything as one self-contained HTML page (tables, every plot, branches).
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

pub fn run(a: ReportArgs) -> Result<()> {
    if let [one] = a.dirs.as_slice() {
        let sweep = SweepDir::new(one);
        if sweep.plan().is_file() {
            let plan = crate::sweep::Plan::read(&sweep)?;
            let groups = crate::sweep::report(&sweep, &plan)?;
            if let Some(path) = &a.html {
                let mut page = Page::new(&format!("sweep {}", one.display()));
                crate::html::sweep(&mut page, &sweep, &plan, &groups);
                crate::html::write(page, path)?;
            }
            return Ok(());
        }
    }
    if let Some(l) = &a.labels
        && l.len() != a.dirs.len()
    {
        anyhow::bail!(
            "--labels names {} runs but {} directories were given",
            l.len(),
            a.dirs.len()
        );
    }
    let mut runs = Vec::new();
    // What the HTML page shows of each run, gathered until its plots are drawn.
    let mut sections = Vec::new();
    for (i, d) in a.dirs.iter().enumerate() {
        let dir = RunDir::new(d);
        let so_far = experiment::so_far(&dir).with_context(|| format!("report {}", d.display()))?;
        let s = so_far.summary;
        print_table(&d.display().to_string(), &s);
        if !so_far.left.is_empty() {
            outln!(
                "unfinished: still to run {} (rerun the same `lottery run` to resume)\n",
                so_far.left.join("; ")
            );
        }
        for (name, branch) in dir.branch_dirs() {
            if let Ok(bs) = read_json::<Summary>(&branch.summary()) {
                print_table(&format!("  branch {name}"), &bs);
                let measures = report::measures_table(&bs);
                if !measures.is_empty() {
                    outln!("{measures}\n");
                }
            }
        }
        if !s.levels.is_empty() {
            report::learning_curves(&dir, &s)?;
            let csv = report::csv(&s, &|level, variant| seconds(&dir, level, variant));
            lottery::files::write_atomic(&dir.results_csv(), csv.as_bytes())?;
            outln!("table as CSV: {}", dir.results_csv().display());
        }
        sections.push((dir.clone(), s.clone(), so_far.left.clone()));
        let label = a
            .labels
            .as_ref()
            .map_or_else(|| legend_name(d), |l| l[i].clone());
        runs.push((label, s));
    }
    let out = match (&a.out, a.dirs.as_slice()) {
        (Some(o), _) => RunDir::new(o),
        (None, [one]) => RunDir::new(one),
        (None, many) => RunDir::new(comparison_dir(many)),
    };
    runs.retain(|(_, s)| !s.levels.is_empty());
    if !runs.is_empty() {
        report::plot_dir(&out, &runs)?;
        outln!("plots in {}", out.plots().display());
    }
    if let Some(path) = &a.html {
        let mut page = Page::new(&match a.dirs.as_slice() {
            [one] => format!("lottery report {}", one.display()),
            many => format!("lottery report: {} experiments", many.len()),
        });
        if runs.len() > 1 {
            crate::html::comparison(&mut page, &out.plots());
        }
        for (dir, summary, left) in &sections {
            crate::html::experiment(
                &mut page,
                &dir.root().display().to_string(),
                dir,
                summary,
                left,
            );
        }
        crate::html::write(page, path)?;
    }
    Ok(())
}

/// Mean training seconds of `variant` at `level` over the replicates that recorded it.
fn seconds(dir: &RunDir, level: usize, variant: &str) -> Option<f64> {
    let replicates = read_json::<experiment::ExperimentConfig>(&dir.config())
        .ok()?
        .replicates;
    let times: Vec<f64> = (0..replicates)
        .map(|r| {
            read_json::<experiment::runner::Timing>(
                &dir.replicate(r, replicates)
                    .variant(level, variant)
                    .timing(),
            )
            .map(|t| t.seconds)
        })
        .collect::<Result<_, _>>()
        .ok()?;
    Some(times.iter().sum::<f64>() / times.len().max(1) as f64)
}

fn print_table(title: &str, s: &Summary) {
    let variants = report::variants(s);
    outln!("{title}");
    outln!("{}", report::table_header(&variants, s.metric));
    for l in &s.levels {
        outln!("{}", report::table_row(l, &variants, s.metric));
    }
    if let Some(line) = report::baseline_line(s) {
        outln!("{line}");
    }
    outln!();
}

/// A run's name in a legend: its folder's name, shortened to fit beside the swatch.
fn legend_name(d: &Path) -> String {
    let name = d.file_name().map_or_else(
        || d.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    shorten(&name, 24)
}

/// `name` in at most `max` characters: its start and end with `…` between (the end is where
/// run names differ: the hash of their settings).
fn shorten(name: &str, max: usize) -> String {
    let chars: Vec<char> = name.chars().collect();
    if chars.len() <= max {
        return name.to_string();
    }
    let tail = (max - 1) / 2;
    let head = max - 1 - tail;
    let start: String = chars[..head].iter().collect();
    let end: String = chars[chars.len() - tail..].iter().collect();
    format!("{start}…{end}")
}

/// `compare-<A>-<B>…` beside the first run, so no run's own plots are replaced.
fn comparison_dir(dirs: &[PathBuf]) -> PathBuf {
    let names: Vec<String> = dirs
        .iter()
        .map(|d| {
            let n = d
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            shorten(&n, 16).replace('…', "_")
        })
        .collect();
    let parent = dirs[0].parent().unwrap_or(Path::new("."));
    parent.join(format!("compare-{}", names.join("-")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_keep_their_start_and_end() {
        assert_eq!(
            shorten("quick-0123456789abcdef", 24),
            "quick-0123456789abcdef"
        );
        let s = shorten("lenet-mnist-paper-0123456789abcdef", 16);
        assert_eq!(s.chars().count(), 16);
        assert!(s.starts_with("lenet-m") && s.ends_with("abcdef"), "{s}");
        assert_eq!(
            comparison_dir(&[PathBuf::from("runs/a"), PathBuf::from("runs/b")]),
            PathBuf::from("runs/compare-a-b")
        );
    }
}
