//! `lottery seeds`: the init lottery. The same experiment from `--n` initial seeds (data order
//! fixed), the spread of the dense networks' validation and test metric, and — seeds split at
//! the median validation metric — each half's tickets against random reinitialisations.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use lottery::experiment::seeds::{SeedRun, Study, seed_config};
use lottery::experiment::{Experiment, Observer};
use lottery::files::{read_jsonl, write_json};
use lottery::layout::RunDir;
use lottery::report::chart::{Chart, Point, Series, XAxis};
use lottery::train::{EvalRecord, Progress};

use crate::progress::Bar;
use crate::run::RunArgs;

#[derive(Args, Debug)]
pub struct SeedsArgs {
    /// Initial seeds to train: the experiment's seed, then the next n − 1.
    #[arg(long, default_value_t = 16)]
    n: usize,
    /// The experiment each seed runs (preset, config file, flags), as `lottery run` takes it.
    /// --out is the study's directory (default: runs/seeds-<preset>-<hash>); each seed's
    /// experiment lives in its seed-<k> folder and resumes as any experiment does.
    #[command(flatten)]
    run: RunArgs,
}

/// A bar per training, labelled with the seed, level and variant.
struct SeedsProgress {
    bar: Bar,
    seed: String,
    metric: lottery::data::Metric,
}

impl Progress for SeedsProgress {
    fn start(&mut self, iterations: usize) {
        self.bar.start(iterations);
    }
    fn step(&mut self, iteration: usize, loss: f32) {
        self.bar.step(iteration, loss);
    }
    fn eval(&mut self, record: &EvalRecord) {
        self.bar.eval(record);
    }
    fn finish(&mut self) {
        self.bar.finish();
    }
}

impl Observer for SeedsProgress {
    fn begin(&mut self, _replicate: usize, level: usize, variant: &str) {
        let label = format!("{} level {level} {variant:<8}", self.seed);
        self.bar = Bar::new(label).with_metric(self.metric);
    }
}

pub fn run(a: SeedsArgs) -> Result<()> {
    if a.n < 2 {
        bail!("invalid --n: a study needs at least 2 seeds, not {}", a.n);
    }
    let base = a.run.config()?;
    if a.run.print_config {
        out!("{}", toml::to_string(&base)?);
        return Ok(());
    }
    if base.replicates != 1 {
        bail!("invalid --replicates: seeds are the replicates of this study (give --n instead)");
    }
    let out = a.run.out.clone().unwrap_or_else(|| {
        PathBuf::from("runs").join(format!("seeds-{}-{:016x}", a.run.preset, base.hash()))
    });
    let device = lottery::device::parse(&a.run.device)?;
    let metric = base.dataset.metric();
    outln!("{} seeds of {} → {}", a.n, a.run.preset, out.display());
    outln!(
        "{:>6} {:>15} {:>15}",
        "seed",
        metric.column("dense val"),
        metric.column("dense test")
    );
    let mut runs = Vec::with_capacity(a.n);
    for i in 0..a.n {
        let cfg = seed_config(&base, i);
        let seed = cfg.seed;
        let mut exp = Experiment::new(cfg, out.join(format!("seed-{seed}")), device.clone())?;
        if let Some(j) = a.run.jobs {
            exp = exp.with_jobs(j);
        }
        let mut progress = SeedsProgress {
            bar: Bar::new(""),
            seed: format!("seed {seed} ({}/{})", i + 1, a.n),
            metric,
        };
        let summary = exp
            .run(&mut progress)
            .with_context(|| format!("seed {seed} in {} (rerun to resume)", out.display()))?;
        let run = SeedRun {
            seed,
            dense_val: dense_val(&exp.dir)?,
            summary,
        };
        outln!(
            "{seed:>6} {:>15} {:>15}",
            metric.cell(run.dense_val),
            metric.cell(run.dense_test())
        );
        runs.push(run);
    }
    let study = Study::of(runs);
    write_json(&out.join("seeds.json"), &study)?;
    plot(&out, &study)?;
    print_findings(&study);
    outln!(
        "wrote {}/seeds.json and seeds, seeds_histogram and seeds_halves (.svg/.png)",
        out.display()
    );
    Ok(())
}

/// The dense network's validation metric at the end of its training.
fn dense_val(dir: &RunDir) -> Result<f64> {
    let path = dir.first_replicate().variant(0, "ticket").metrics();
    let records: Vec<EvalRecord> = read_jsonl(&path)?;
    records
        .last()
        .and_then(|r| r.val_accuracy)
        .with_context(|| format!("{}: no validation evaluation", path.display()))
}

/// The spread, then each half's tickets and reinitialisations level by level.
fn print_findings(s: &Study) {
    let m = s.metric;
    let tests = s.dense_tests();
    let pick = |q: f64| tests[((tests.len() - 1) as f64 * q).round() as usize];
    outln!(
        "\ndense test {} over {} seeds: best {}, quartiles {} / {} / {}, worst {}",
        m.name(),
        tests.len(),
        m.cell(tests[0]),
        m.cell(pick(0.25)),
        m.cell(pick(0.5)),
        m.cell(pick(0.75)),
        m.cell(tests[tests.len() - 1])
    );
    if let Some(b) = s.baseline {
        outln!(
            "naive forecast (repeat the last value): test {}",
            m.describe(b)
        );
    }
    outln!(
        "\nmean test {} per half (seeds split at the median dense validation {}):",
        m.name(),
        m.name()
    );
    outln!(
        "{:>5} {:>9} {:>18} {:>18} {:>18} {:>18}",
        "level",
        "weights%",
        m.column("better ticket"),
        m.column("better reinit"),
        m.column("worse ticket"),
        m.column("worse reinit")
    );
    let (better, worse) = (&s.groups[0], &s.groups[1]);
    for (b, w) in better.levels.iter().zip(&worse.levels) {
        let opt = |v: Option<f64>| v.map_or("-".into(), |v| m.cell(v));
        outln!(
            "{:>5} {:>9.2} {:>18} {:>18} {:>18} {:>18}",
            b.level,
            b.remaining * 100.0,
            m.cell(b.ticket),
            opt(b.reinit),
            m.cell(w.ticket),
            opt(w.reinit)
        );
    }
}

/// `seeds.{svg,png}`: the dense test metric of every seed, best first (the distribution), and
/// each half's mean ticket and reinitialisation against weights remaining.
fn plot(out: &std::path::Path, s: &Study) -> Result<()> {
    let m = s.metric;
    let point = |x: f64, y: f64| Point { x, y, lo: y, hi: y };
    let spread = vec![Series {
        name: "dense network, seeds best first".into(),
        points: (s.dense_tests().iter().enumerate())
            .map(|(i, &v)| point(i as f64 + 1.0, m.plotted(v)))
            .collect(),
    }];
    let title = format!(
        "{} of the dense network over {} initial seeds",
        m.title(),
        s.runs.len()
    );
    lottery::report::save_chart(
        &out.join("seeds"),
        &Chart {
            title: &title,
            xlabel: "seed rank",
            ylabel: m.axis(),
            axis: XAxis::Iterations,
            series: &spread,
        },
    )?;
    // The same values as a histogram (Sturges' rule: ⌈log₂ n⌉ + 1 even bins).
    let values: Vec<f64> = s.dense_tests().iter().map(|&v| m.plotted(v)).collect();
    let histogram = vec![Series {
        name: "seeds per bin".into(),
        points: bins(&values)
            .into_iter()
            .map(|(centre, count)| point(centre, count as f64))
            .collect(),
    }];
    let title = format!("Distribution of the dense {} over seeds", m.name());
    lottery::report::save_chart(
        &out.join("seeds_histogram"),
        &Chart {
            title: &title,
            xlabel: m.axis(),
            ylabel: "seeds",
            axis: XAxis::Bins,
            series: &histogram,
        },
    )?;
    let mut halves = Vec::new();
    for g in &s.groups {
        halves.push(Series {
            name: format!("{}: ticket", g.name),
            points: g
                .levels
                .iter()
                .map(|l| point(l.remaining * 100.0, m.plotted(l.ticket)))
                .collect(),
        });
        halves.push(Series {
            name: format!("{}: reinit", g.name),
            points: (g.levels.iter())
                .filter_map(|l| Some(point(l.remaining * 100.0, m.plotted(l.reinit?))))
                .collect(),
        });
    }
    let title = format!("{} by initialisation half", m.title());
    lottery::report::save_chart(
        &out.join("seeds_halves"),
        &Chart {
            title: &title,
            xlabel: "weights remaining (%)",
            ylabel: m.axis(),
            axis: XAxis::Remaining,
            series: &halves,
        },
    )?;
    Ok(())
}

/// Even bins over the range of `values` (Sturges' rule for their number): each bin's centre
/// and how many values fall in it (the top edge belongs to the last bin).
fn bins(values: &[f64]) -> Vec<(f64, usize)> {
    if values.is_empty() {
        return Vec::new();
    }
    let n = (values.len() as f64).log2().ceil() as usize + 1;
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let width = ((hi - lo) / n as f64).max(f64::MIN_POSITIVE);
    let mut counts = vec![0; n];
    for v in values {
        counts[(((v - lo) / width) as usize).min(n - 1)] += 1;
    }
    (counts.into_iter().enumerate())
        .map(|(i, c)| (lo + width * (i as f64 + 0.5), c))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn bins_count_every_value_once() {
        let b = super::bins(&[1.0, 2.0, 2.5, 3.0, 9.0, 10.0, 10.0, 4.0]);
        assert_eq!(b.len(), 4, "{b:?}");
        assert_eq!(b.iter().map(|x| x.1).sum::<usize>(), 8);
        assert_eq!(b.iter().map(|x| x.1).collect::<Vec<_>>(), [4, 1, 0, 3]);
        assert!((b[0].0 - 2.125).abs() < 1e-12 && (b[3].0 - 8.875).abs() < 1e-12);
        // Every seed alike: one full bin, no division by zero.
        let same = super::bins(&[0.5, 0.5]);
        assert_eq!(same[0].1, 2, "{same:?}");
        assert!(same.iter().all(|b| b.0.is_finite()));
    }
}
