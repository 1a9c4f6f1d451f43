//! `lottery report DIR [DIR…]`: the level table of finished experiments, and their plots.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use lottery::experiment::Summary;
use lottery::files::read_json;
use lottery::report;

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
        let s: Summary = read_json(&d.join("summary.json"))?;
        let variants = report::variants(&s);
        println!("{}", d.display());
        println!("{}", report::table_header(&variants));
        for l in &s.levels {
            println!("{}", report::table_row(l, &variants));
        }
        println!();
        report::learning_curves(d, &s)?;
        runs.push((
            d.file_name().map_or_else(
                || d.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
            s,
        ));
    }
    let out = a.out.unwrap_or_else(|| a.dirs[0].clone());
    report::plot_dir(&out, &runs)?;
    println!("plots in {}", out.join("plots").display());
    Ok(())
}
