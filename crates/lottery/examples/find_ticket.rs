//! Find a lottery ticket from Rust: the quick preset, shortened to three pruning levels.
//!
//! cargo run --release -p lottery --example find_ticket

use lottery::experiment::{Experiment, presets};

fn main() -> lottery::Result<()> {
    let mut config = presets::preset("quick")?;
    config.levels = 3;
    let device = lottery::device::parse("cpu")?;
    let summary =
        Experiment::new(config, "runs/example", device)?.run(&mut lottery::train::Silent)?;
    for level in &summary.levels {
        let acc = |v: &str| {
            level
                .variants
                .get(v)
                .map_or(f64::NAN, |r| r.test_accuracy * 100.0)
        };
        println!(
            "level {}: {:.1}% of weights, ticket {:.2}%, reinit {:.2}%",
            level.level,
            level.remaining * 100.0,
            acc("ticket"),
            acc("reinit")
        );
    }
    Ok(())
}
