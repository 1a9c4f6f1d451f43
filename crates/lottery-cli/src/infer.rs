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
    /// Dataset whose test split to classify: mnist, mnist-format, cifar10.
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
    let (shape, classes) = kind.example_shape();
    if model.input != shape || model.classes() != classes {
        bail!(
            "{}: the model reads {:?} and writes {} classes; {} is {shape:?} with {classes}",
            a.model.display(),
            model.input,
            model.classes(),
            kind.name()
        );
    }
    let dir = kind.dir(a.data_dir.as_deref())?;
    let data = lottery::data::load(kind, &dir, 0)
        .with_context(|| format!("cannot load {} from {}", kind.name(), dir.display()))?;
    let test = &data.test;
    let Some(labels) = test.targets.labels() else {
        bail!(
            "{}: infer reports accuracy, and {} holds values to predict",
            a.model.display(),
            kind.name()
        );
    };
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
    let predicted: Vec<usize> = logits.chunks(classes).map(argmax).collect();
    let correct = predicted
        .iter()
        .zip(labels)
        .filter(|(p, l)| **p == **l as usize)
        .count();
    outln!(
        "{} ({}, {} live weights): test accuracy {:.2}% ({correct}/{}), {:.0} examples/s on {} threads{}",
        a.model.display(),
        engine.model().source,
        engine.model().nnz(),
        correct as f64 / test.len() as f64 * 100.0,
        test.len(),
        test.len() as f64 / seconds,
        engine.threads(),
        if engine.simd() { " with AVX2/FMA" } else { "" }
    );

    if let Some(reference) = &a.reference {
        let recorded = ticket::parse_provenance(&engine.model().source);
        let t = ticket::load(&SourceArgs {
            source: reference.clone(),
            level: a.level.or(recorded.as_ref().map(|r| r.0)),
            variant: a
                .variant
                .clone()
                .or(recorded.map(|r| r.1))
                .unwrap_or_else(|| "ticket".into()),
            mask: None,
            model: None,
            dataset: Some(kind.name().into()),
        })?;
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
        outln!(
            "against the dense masked network ({}): same class on {same}/{} images, largest relative logit difference {worst:.2e}",
            t.weights.display(),
            test.len()
        );
        if same != test.len() || worst > TOLERANCE {
            bail!("the compact model does not reproduce its reference (tolerance {TOLERANCE:e})");
        }
    }
    Ok(())
}

fn argmax(row: &[f32]) -> usize {
    (0..row.len()).fold(0, |b, i| if row[i] > row[b] { i } else { b })
}
