//! A terminal progress bar for training (hidden when stderr is not a terminal).

use indicatif::{ProgressBar, ProgressStyle};
use lottery::train::{EvalRecord, Progress};

pub struct Bar {
    bar: ProgressBar,
    label: String,
}

impl Bar {
    pub fn new(label: impl Into<String>) -> Self {
        Bar {
            bar: ProgressBar::hidden(),
            label: label.into(),
        }
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
        let val = r
            .val_accuracy
            .map(|a| format!("val {:.2}%  ", a * 100.0))
            .unwrap_or_default();
        self.bar.set_message(format!(
            "loss {:.4}  {val}test {:.2}%",
            r.train_loss,
            r.test_accuracy * 100.0
        ));
    }

    fn finish(&mut self) {
        self.bar.finish_and_clear();
    }
}
