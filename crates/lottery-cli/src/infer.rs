//! `lottery infer`: a compact model on a test set, with no training stack in the loop; with
//! `--reference`, checked against the dense masked network it came from.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use lottery::data::DatasetKind;
use lottery_sparse::{Engine, format};

use crate::ticket::{self, SourceArgs};

#[derive(Args, Debug)]
pub struct InferArgs {
    /// A compact model written by `lottery compact`.
    pub model: PathBuf,
    /// Dataset whose test split to run on: mnist, mnist-format, cifar10, series (the
    /// generated series; a run's own series settings come with --reference).
    #[arg(long, default_value = "mnist")]
    pub dataset: String,
    /// Directory holding the dataset files (default: the bundled data/ or $LOTTERY_DATA).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Threads for inference (default: all cores).
    #[arg(long, visible_alias = "jobs")]
    pub threads: Option<usize>,
    /// Examples per call.
    #[arg(long = "batch-size", visible_alias = "batch", default_value_t = 256)]
    pub batch: usize,
    /// Also run the dense masked network from this source (experiment directory, pruned
    /// directory or weights file) and check logits and classes agree.
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// Level of the reference experiment directory (default: the one the model was compacted
    /// from, else the last finished one).
    #[arg(long)]
    pub level: Option<usize>,
    /// Variant of the reference experiment directory (default: the one the model was
    /// compacted from, else ticket).
    #[arg(long)]
    pub variant: Option<String>,
}

/// Largest relative logit difference allowed between compact and dense.
const TOLERANCE: f32 = 1e-4;

pub fn run(a: InferArgs) -> Result<()> {
    if a.batch == 0 {
        bail!("invalid --batch-size: must be at least 1");
    }
    if a.model.is_dir() {
        bail!(
            "{} is a directory; infer runs a compact model: make one with `lottery compact {} -o model.lsm`",
            a.model.display(),
            a.model.display()
        );
    }
    let model = format::load(&a.model)?;
    let kind = DatasetKind::parse(&a.dataset)?;
    // The reference also says how a series was windowed, so it is read before the data.
    let reference = match &a.reference {
        Some(r) => Some(load_reference(&a, r, &model.source, kind)?),
        None => None,
    };
    let series = reference.as_ref().and_then(|t| t.series.as_ref());
    let (shape, classes) = ticket::example_shape(kind, series)?;
    if model.input != shape || model.classes() != classes {
        bail!(
            "{}: the model reads {:?} and writes {} outputs; {} examples are {shape:?} with {classes}",
            a.model.display(),
            model.input,
            model.classes(),
            kind.name()
        );
    }
    let data = lottery::data::load_for(kind, a.data_dir.as_deref(), 0, series)
        .with_context(|| format!("cannot load the {} data", kind.name()))?;
    let test = &data.test;
    let mut engine = Engine::new(model)?;
    if let Some(t) = a.threads {
        engine = engine.with_threads(t);
    }
    let per = test.example_len();
    let started = Instant::now();
    let mut logits = Vec::with_capacity(test.len() * classes);
    for chunk in test.images.chunks(a.batch * per) {
        logits.extend(engine.forward(chunk, chunk.len() / per));
    }
    let seconds = started.elapsed().as_secs_f64();
    outln!(
        "{} ({}, {} live weights): {}, {:.0} examples/s on {} threads{}",
        a.model.display(),
        engine.model().source,
        engine.model().nnz(),
        describe(test, &logits),
        test.len() as f64 / seconds,
        engine.threads(),
        if engine.simd() { " with AVX2/FMA" } else { "" }
    );

    if let Some(t) = reference {
        let mut dict = t.net.state_dict();
        if let Some(m) = &t.mask {
            m.apply(&mut dict);
        }
        let net = t
            .net
            .load_state_dict(&dict)
            .map_err(|m| anyhow::anyhow!("{m}"))?;
        let dense = net.logits(test);
        let mut worst = 0.0f32;
        let mut same = 0;
        for (s, d) in logits.chunks(classes).zip(dense.chunks(classes)) {
            same += (argmax(s) == argmax(d)) as usize;
            for (x, y) in s.iter().zip(d) {
                worst = worst.max((x - y).abs() / y.abs().max(1.0));
            }
        }
        let classes_agree = if test.targets.labels().is_some() {
            format!("same class on {same}/{} examples, ", test.len())
        } else {
            String::new()
        };
        outln!(
            "against the dense masked network ({}): {classes_agree}largest relative output difference {worst:.2e}",
            t.weights.display(),
        );
        if same != test.len() || worst > TOLERANCE {
            bail!("the compact model does not reproduce its reference (tolerance {TOLERANCE:e})");
        }
    }
    Ok(())
}

/// The dense masked network `reference` names, at the level and variant the model records
/// unless the flags say otherwise.
fn load_reference(
    a: &InferArgs,
    reference: &std::path::Path,
    source: &str,
    kind: DatasetKind,
) -> Result<ticket::Ticket> {
    let recorded = ticket::parse_provenance(source);
    ticket::load(&SourceArgs {
        source: reference.to_path_buf(),
        level: a.level.or(recorded.as_ref().map(|r| r.0)),
        variant: a
            .variant
            .clone()
            .or(recorded.map(|r| r.1))
            .unwrap_or_else(|| "ticket".into()),
        mask: None,
        model: None,
        dataset: Some(kind.name().into()),
    })
}

/// Test accuracy, or for values to predict the squared and absolute errors in the data's
/// units and how the naive forecast does.
fn describe(test: &lottery::data::Dataset, outputs: &[f32]) -> String {
    let (_, metric) = test.targets.score(outputs);
    let kind = test.targets.metric();
    match (test.targets.labels(), test.targets.baseline()) {
        (Some(_), _) => format!(
            "test accuracy {:.2}% ({}/{})",
            metric * 100.0,
            (metric * test.len() as f64).round(),
            test.len()
        ),
        (None, naive) => {
            let mae = test.targets.mae(outputs).unwrap_or(f64::NAN);
            let mut s = format!("test {}, MAE {mae:.3e}", kind.describe(metric));
            if let Some(naive) = naive {
                s += &format!(
                    " ({})",
                    lottery::report::versus_naive(kind, naive, "the model's", metric)
                );
            }
            s
        }
    }
}

fn argmax(row: &[f32]) -> usize {
    (0..row.len()).fold(0, |b, i| if row[i] > row[b] { i } else { b })
}
