//! A terminal progress bar for training (hidden when stderr is not a terminal), and the live
//! level table `run` and `branch` print above it.

use indicatif::{ProgressBar, ProgressStyle};
use lottery::data::Metric;
use lottery::experiment::Observer;
use lottery::report;
use lottery::results::LevelSummary;
use lottery::train::{EvalRecord, Progress};

pub struct Bar {
    bar: ProgressBar,
    label: String,
    metric: Metric,
}

impl Bar {
    pub fn new(label: impl Into<String>) -> Self {
        Bar {
            bar: ProgressBar::hidden(),
            label: label.into(),
            metric: Metric::default(),
        }
    }

    /// A bar whose evaluations are `metric` (accuracy unless said).
    pub fn with_metric(self, metric: Metric) -> Self {
        Bar { metric, ..self }
    }

    /// Runs `f` (which prints) with the bar cleared, then redraws it.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }
}

impl Progress for Bar {
    fn start(&mut self, iterations: usize) {
        self.bar = ProgressBar::new(iterations as u64);
        self.bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} it  {per_sec}  eta {eta}  {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        self.bar.set_prefix(self.label.clone());
    }

    fn step(&mut self, iteration: usize, _loss: f32) {
        self.bar.set_position(iteration as u64);
    }

    fn eval(&mut self, r: &EvalRecord) {
        let m = self.metric;
        let val = r
            .val_accuracy
            .map(|a| format!("val {}  ", m.describe(a)))
            .unwrap_or_default();
        self.bar.set_message(format!(
            "loss {:.4}  {val}test {}",
            r.train_loss,
            m.describe(r.test_accuracy)
        ));
    }

    fn finish(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// Prints a table row per finished level and a progress bar per training.
pub struct LevelTable {
    bar: Bar,
    /// The columns; `None` until the first row shows them (the header is printed then).
    variants: Option<Vec<String>>,
    replicates: usize,
    /// What the accuracy columns hold.
    metric: Metric,
    /// Trainings in the whole job, when known, for an estimate of the time left.
    total: Option<usize>,
    /// Trainings finished (trained now or read back), and those trained now.
    finished: usize,
    trained: usize,
    started: std::time::Instant,
}

impl LevelTable {
    /// With `variants`, the caller has printed the header; without, the first row decides the
    /// columns and the header is printed above it.
    /// Tables of `metric` (accuracy unless said).
    pub fn with_metric(self, metric: Metric) -> Self {
        LevelTable { metric, ..self }
    }

    pub fn new(variants: Option<Vec<String>>, replicates: usize) -> Self {
        LevelTable {
            bar: Bar::new(""),
            variants,
            replicates,
            metric: Metric::default(),
            total: None,
            finished: 0,
            trained: 0,
            started: std::time::Instant::now(),
        }
    }

    /// The job runs `total` trainings: bars then say how many are done and the time left.
    pub fn with_total(mut self, total: usize) -> Self {
        self.total = Some(total);
        self
    }

    /// `7/23, ~4 min left` from the pace of the trainings run so far (concurrent ones
    /// included, so the pace already counts the cores).
    fn overall(&self) -> String {
        let Some(total) = self.total else {
            return String::new();
        };
        let left = total.saturating_sub(self.finished);
        if self.trained == 0 || left == 0 {
            return format!(" [{}/{total}]", self.finished);
        }
        let per = self.started.elapsed().as_secs_f64() / self.trained as f64;
        let mins = (per * left as f64 / 60.0).round().max(1.0);
        format!(" [{}/{total}, ~{mins:.0} min left]", self.finished)
    }

    /// `r3  ` before a replicate's rows and bars, as wide as the header's indent.
    fn tag(&self, replicate: usize) -> String {
        if self.replicates > 1 {
            format!("r{replicate:<3}")
        } else {
            String::new()
        }
    }
}

impl Progress for LevelTable {
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

impl Observer for LevelTable {
    fn begin(&mut self, replicate: usize, level: usize, variant: &str) {
        let tag = self.tag(replicate);
        let overall = self.overall();
        self.bar =
            Bar::new(format!("{tag}level {level} {variant:<12}{overall}")).with_metric(self.metric);
    }

    fn finished(&mut self, replicate: usize, level: usize, variant: &str, resumed: bool) {
        self.finished += 1;
        if !resumed {
            self.trained += 1;
        }
        // Without a terminal there are no bars: a log line per training shows progress.
        if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            let how = if resumed { "read back" } else { "trained" };
            outln!("# {}level {level} {variant}: {how}", self.tag(replicate));
        }
    }

    fn level(&mut self, replicate: usize, s: &LevelSummary) {
        let header = match &self.variants {
            Some(_) => None,
            None => {
                let mut v: Vec<String> = s.variants.keys().cloned().collect();
                v.sort_by_key(|n| (n != "ticket", n.clone()));
                let indent = if self.replicates > 1 { "    " } else { "" };
                let header = format!("{indent}{}", report::table_header(&v, self.metric));
                self.variants = Some(v);
                Some(header)
            }
        };
        let variants = self.variants.as_deref().unwrap_or_default();
        let row = format!(
            "{}{}",
            self.tag(replicate),
            report::table_row(s, variants, self.metric)
        );
        // Other replicates finish levels while this bar runs: print above it.
        self.bar.suspend(|| {
            if let Some(h) = header {
                outln!("{h}");
            }
            outln!("{row}");
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_follows_the_pace_of_trainings_run_now() {
        let mut t = LevelTable::new(None, 1).with_total(10);
        assert_eq!(t.overall(), " [0/10]");
        t.finished = 4;
        t.trained = 2; // two were read back from disk: they say nothing of the pace
        t.started = std::time::Instant::now() - std::time::Duration::from_secs(60);
        assert_eq!(t.overall(), " [4/10, ~3 min left]");
        assert_eq!(LevelTable::new(None, 1).overall(), "");
    }
}
