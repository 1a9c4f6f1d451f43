//! `lottery`: the command-line front end. Each subcommand lives in its own module and is a
//! thin layer over the `lottery` library.

mod alloc;
mod args;
mod bench;
mod data;
mod progress;
mod report;
mod run;
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
    /// Print the level table of finished experiments and redraw their plots (compared if several).
    Report(report::ReportArgs),
    /// Train a network (optionally under a mask) and save its weights and metrics.
    Train(train::TrainArgs),
    /// List the datasets found on disk and check their files (or download them).
    Data(data::DataArgs),
    /// Measure speed (training steps, masked and unmasked).
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
    let cli = Cli::parse();
    alloc::keep_freed_memory();
    let result = match cli.command {
        Command::Run(a) => run::run(a),
        Command::Report(a) => report::run(a),
        Command::Train(a) => train::run(a),
        Command::Data(a) => data::run(a),
        Command::Bench(c) => bench::run(c),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the context, then each cause.
            let causes: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("error: {}", causes.join(": "));
            ExitCode::FAILURE
        }
    }
}
