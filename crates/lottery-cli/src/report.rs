//! `lottery report DIR [DIR…]`: the level table of experiments and their branches, and plots.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use lottery::files::read_json;
use lottery::layout::RunDir;
use lottery::report;
use lottery::results::Summary;

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Experiment directories (each holding summary.json).
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// Where to write comparison plots when several directories are given (default: the first).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(a: ReportArgs) -> Result<()> {
    let mut runs = Vec::new();
    for d in &a.dirs {
        let dir = RunDir::new(d);
        let s: Summary = read_json(&dir.summary())?;
        print_table(&d.display().to_string(), &s);
        for (name, branch) in dir.branch_dirs() {
            if let Ok(bs) = read_json::<Summary>(&branch.summary()) {
                print_table(&format!("  branch {name}"), &bs);
            }
        }
        report::learning_curves(&dir, &s)?;
        runs.push((
            d.file_name().map_or_else(
                || d.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
            s,
        ));
    }
    let out = RunDir::new(a.out.unwrap_or_else(|| a.dirs[0].clone()));
    report::plot_dir(&out, &runs)?;
    println!("plots in {}", out.plots().display());
    Ok(())
}

fn print_table(title: &str, s: &Summary) {
    let variants = report::variants(s);
    println!("{title}");
    println!("{}", report::table_header(&variants));
    for l in &s.levels {
        println!("{}", report::table_row(l, &variants));
    }
    println!();
}
