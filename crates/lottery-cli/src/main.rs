//! `lottery`: the command-line front end. Each subcommand lives in its own module and is a
//! thin layer over the `lottery` library.

/// Prints to stdout like `print!`, but a closed pipe (`lottery run | head`) is not an error:
/// the output is dropped and the command goes on — an experiment never dies because its table
/// could not be printed, and a report ends quietly.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

/// `println!` through [`out!`].
macro_rules! outln {
    () => { out!("\n") };
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod alloc;
mod args;
mod bench;
mod branch;
mod compact;
mod data;
mod export;
mod html;
mod infer;
mod progress;
mod prune;
mod prune_any;
mod report;
mod run;
mod seeds;
mod settings;
mod sweep;
mod ticket;
mod train;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "lottery",
    version,
    about = "Find, study and deploy lottery tickets",
    max_term_width = 100
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Find a winning ticket: iterative magnitude pruning with rewinding, with controls.
    Run(run::RunArgs),
    /// The init lottery: one experiment from many initial seeds, the spread of their dense
    /// networks, and whether better and worse initialisations give tickets alike.
    Seeds(seeds::SeedsArgs),
    /// A grid of experiments (seeds, inits, rewinds, any setting) from a SWEEP.toml, run here
    /// with a pool of jobs or handed to Slurm as one job array; --status follows it.
    Sweep(sweep::SweepArgs),
    /// Run a study on an experiment's levels (a control after the fact, …); --list shows them.
    Branch(branch::BranchArgs),
    /// Print the level table of finished experiments and redraw their plots (compared if several).
    Report(report::ReportArgs),
    /// Train a network (optionally under a mask) and save its weights and metrics.
    Train(train::TrainArgs),
    /// Prune a trained network once, by magnitude (optionally fine-tuning it after).
    Prune(prune::PruneArgs),
    /// Remove a ticket's dead weights and units and write a compact `.lsm` model.
    Compact(compact::CompactArgs),
    /// Classify a test set with a compact model (and check it against its dense source).
    Infer(infer::InferArgs),
    /// Write a ticket as a PyTorch state_dict (safetensors), mask applied.
    Export(export::ExportArgs),
    /// List the datasets found on disk and check their files (or download them). Exits 1 only
    /// for broken files or a failed download; a missing dataset is listed as missing.
    Data(data::DataArgs),
    /// Measure speed: training steps (masked and unmasked), compact-model inference.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version go to stdout in full; a usage error is one line, like every error.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            let text = e.to_string();
            let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            eprintln!("{} (see --help)", first.trim_end());
            return ExitCode::from(2);
        }
    };
    alloc::keep_freed_memory();
    let result = match cli.command {
        Command::Run(a) => run::run(a),
        Command::Seeds(a) => seeds::run(a),
        Command::Sweep(a) => sweep::run(a),
        Command::Branch(a) => branch::run(a),
        Command::Report(a) => report::run(a),
        Command::Train(a) => train::run(a),
        Command::Prune(a) => prune::run(a),
        Command::Compact(a) => compact::run(a),
        Command::Infer(a) => infer::run(a),
        Command::Export(a) => export::run(a),
        Command::Data(a) => data::run(a),
        Command::Bench(c) => bench::run(c),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the context, then each cause.
            // A cause that its context already quotes (an I/O error after its path) once.
            let mut causes: Vec<String> = Vec::new();
            for c in e.chain().map(|c| c.to_string()) {
                if !causes.last().is_some_and(|prev| prev.ends_with(&c)) {
                    causes.push(c);
                }
            }
            eprintln!("error: {}", causes.join(": "));
            ExitCode::FAILURE
        }
    }
}
