//! Time series for next-value prediction: the users' synthetic series (an exponential trend, a
//! sum of sines and a Gaussian random walk), a reader for a user's own CSV file, windows of past
//! values paired with the value to predict, and chronological train / validation / test splits
//! normalised with the training part's statistics only.
//!
//! Splits follow time: an example belongs to the part its *target* falls in, so no training
//! example reads or predicts a value from the validation or test period (a validation or test
//! example may read the past before its period, as a forecast does).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Dataset, DatasetKind, Format, Metric, Splits, Targets};
use crate::error::{Error, Result};
use crate::rng::Rng;

/// The synthetic series: `trend_scale · exp(trend_rate · t / length) + Σ amplitudeₖ ·
/// sin(2π t / periodₖ) + walk(t)`, `walk` a Gaussian random walk of step `walk_std` from 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Generator {
    /// Values in the series.
    pub length: usize,
    pub trend_scale: f64,
    /// The trend grows by `exp(trend_rate)` over the whole series.
    pub trend_rate: f64,
    /// One sine per amplitude; `periods` has as many entries (in steps).
    pub amplitudes: Vec<f64>,
    pub periods: Vec<f64>,
    /// Standard deviation of each random-walk step.
    pub walk_std: f64,
    pub seed: u64,
}

impl Default for Generator {
    fn default() -> Self {
        Generator {
            length: 2000,
            trend_scale: 1.0,
            trend_rate: 1.5,
            amplitudes: vec![1.0, 0.4],
            periods: vec![40.0, 11.0],
            walk_std: 0.02,
            seed: 0,
        }
    }
}

impl Generator {
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, message: String| Err(Error::config(field, message));
        if self.amplitudes.len() != self.periods.len() {
            return bad(
                "periods",
                format!(
                    "{} periods for {} amplitudes: give one period per sine",
                    self.periods.len(),
                    self.amplitudes.len()
                ),
            );
        }
        if let Some(p) = self.periods.iter().find(|p| !(p.is_finite() && **p > 0.0)) {
            return bad("periods", format!("{p} is not a positive number of steps"));
        }
        let finite = [
            ("trend-scale", self.trend_scale),
            ("trend-rate", self.trend_rate),
            ("walk-std", self.walk_std),
        ];
        if let Some((field, v)) = finite.iter().find(|(_, v)| !v.is_finite()) {
            return bad(field, format!("{v} is not a finite number"));
        }
        if self.walk_std < 0.0 {
            return bad("walk-std", format!("{} is negative", self.walk_std));
        }
        if self.length == 0 {
            return bad("length", "a series needs at least one value".into());
        }
        Ok(())
    }

    /// The series, the same for the same settings and seed.
    pub fn generate(&self) -> Result<Series> {
        self.validate()?;
        let mut rng = Rng::derive(self.seed, "series random walk");
        let n = self.length as f64;
        let mut walk = 0.0;
        let values = (0..self.length)
            .map(|t| {
                let t = t as f64;
                let sines: f64 = (self.amplitudes.iter().zip(&self.periods))
                    .map(|(a, p)| a * (std::f64::consts::TAU * t / p).sin())
                    .sum();
                let v = self.trend_scale * (self.trend_rate * t / n).exp() + sines + walk;
                walk += self.walk_std * rng.normal();
                v as f32
            })
            .collect();
        Ok(Series {
            names: vec!["value".into()],
            columns: vec![values],
        })
    }
}

/// One or more aligned series (channels), each a column of values in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub names: Vec<String>,
    pub columns: Vec<Vec<f32>>,
}

impl Series {
    /// Values per channel.
    pub fn len(&self) -> usize {
        self.columns.first().map_or(0, Vec::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `columns` of the CSV file at `path` (by header name, or by 0-based index when the file
    /// has no header); every column when `columns` is empty.
    pub fn read_csv(path: &Path, columns: &[String]) -> Result<Series> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse_csv(&text, columns).map_err(|m| Error::format(path, m))
    }

    /// [`Series::read_csv`] on the file's text; the error is the message for the file. A first
    /// line with any field that is not a number is the header. Fields are separated by commas
    /// (quotes around a field are dropped; a quoted comma is not supported).
    pub fn parse_csv(text: &str, columns: &[String]) -> Result<Series, String> {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let Some((_, first)) = lines.next() else {
            return Err("the file is empty".into());
        };
        let fields = |line: &str| -> Vec<String> {
            line.split(',')
                .map(|f| f.trim().trim_matches('"').to_string())
                .collect()
        };
        let head = fields(first);
        let has_header = head.iter().any(|f| f.parse::<f32>().is_err());
        let names: Vec<String> = if has_header {
            head.clone()
        } else {
            (0..head.len()).map(|i| i.to_string()).collect()
        };
        let picked: Vec<usize> = if columns.is_empty() {
            (0..names.len()).collect()
        } else {
            let find = |c: &String| {
                names.iter().position(|n| n == c).ok_or_else(|| {
                    let what = if has_header {
                        "header"
                    } else {
                        "column indices (no header)"
                    };
                    format!("no column `{c}`; its {what}: {}", names.join(", "))
                })
            };
            columns.iter().map(find).collect::<Result<_, _>>()?
        };
        let mut out = vec![Vec::new(); picked.len()];
        let rows = (!has_header).then_some((0, first)).into_iter().chain(lines);
        for (i, line) in rows {
            let row = fields(line);
            for (col, &j) in out.iter_mut().zip(&picked) {
                let field = row.get(j).ok_or_else(|| {
                    format!(
                        "line {}: {} fields, column {} missing",
                        i + 1,
                        row.len(),
                        names[j]
                    )
                })?;
                let v: f32 = field
                    .parse()
                    .ok()
                    .filter(|v: &f32| v.is_finite())
                    .ok_or_else(|| {
                        format!(
                            "line {}, column {}: `{field}` is not a number",
                            i + 1,
                            names[j]
                        )
                    })?;
                col.push(v);
            }
        }
        if out[0].is_empty() {
            return Err("the file has a header but no values".into());
        }
        Ok(Series {
            names: picked.iter().map(|&j| names[j].clone()).collect(),
            columns: out,
        })
    }
}

/// How a series becomes examples: `window` past values of every channel predict one channel
/// `horizon` steps after the window's last value; the last `test_fraction` of the series is the
/// test period and the `val_fraction` before it the validation period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Windowing {
    pub window: usize,
    pub horizon: usize,
    pub val_fraction: f64,
    pub test_fraction: f64,
}

impl Default for Windowing {
    fn default() -> Self {
        Windowing {
            window: 32,
            horizon: 1,
            val_fraction: 0.1,
            test_fraction: 0.2,
        }
    }
}

/// Examples of one split: inputs `[channels, 1, window]` one after another, and targets.
#[derive(Debug, Clone, PartialEq)]
pub struct Windows {
    pub inputs: Vec<f32>,
    pub targets: Vec<f32>,
    /// `[channels, 1, window]`.
    pub shape: [usize; 3],
    /// The target channel's index, for the naive forecast.
    pub target: usize,
}

impl Windows {
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// The naive forecast of each example: the target channel's last value in its window.
    pub fn naive(&self) -> Vec<f32> {
        let w = self.shape[2];
        let per = self.shape.iter().product::<usize>();
        (0..self.len())
            .map(|i| self.inputs[i * per + self.target * w + w - 1])
            .collect()
    }
}

/// The three parts of a windowed series, normalised, and the statistics used (per channel,
/// from the training period only).
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSplits {
    pub train: Windows,
    pub val: Windows,
    pub test: Windows,
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Windowing {
    /// Where the validation and the test periods start, for a series of `len` values.
    fn boundaries(&self, len: usize) -> (usize, usize) {
        let test = len - (self.test_fraction * len as f64).round() as usize;
        let val = test - (self.val_fraction * len as f64).round().min(test as f64) as usize;
        (val, test)
    }

    fn validate(&self, series: &Series, target: usize) -> Result<()> {
        let bad = |field: &str, message: String| Err(Error::config(field, message));
        if self.window == 0 || self.horizon == 0 {
            return bad("window", "the window and the horizon are at least 1".into());
        }
        if target >= series.columns.len() {
            return bad(
                "target",
                format!(
                    "channel {target} to predict, of a series with {} column(s)",
                    series.columns.len()
                ),
            );
        }
        for (field, f) in [
            ("val-fraction", self.val_fraction),
            ("test-fraction", self.test_fraction),
        ] {
            if !(f > 0.0 && f < 1.0) {
                return bad(field, format!("{f} is not a fraction in (0, 1)"));
            }
        }
        if self.val_fraction + self.test_fraction >= 1.0 {
            return bad(
                "val-fraction",
                format!(
                    "validation {} + test {} leave no training period",
                    self.val_fraction, self.test_fraction
                ),
            );
        }
        // Each part needs at least one example: the training period must hold a window and its
        // horizon, and the other two at least one target each.
        let (val, test) = self.boundaries(series.len());
        if val < self.window + self.horizon || test <= val || series.len() <= test {
            return Err(Error::config(
                "window",
                format!(
                    "a series of {} values is too short for a window of {} and horizon {} with \
                     {:.0}% validation and {:.0}% test",
                    series.len(),
                    self.window,
                    self.horizon,
                    100.0 * self.val_fraction,
                    100.0 * self.test_fraction
                ),
            ));
        }
        Ok(())
    }

    /// The series windowed to predict channel `target`, split by time and normalised with the
    /// training period's mean and standard deviation per channel.
    pub fn split(&self, series: &Series, target: usize) -> Result<SeriesSplits> {
        self.validate(series, target)?;
        let (val, test) = self.boundaries(series.len());
        let (mean, std): (Vec<f32>, Vec<f32>) =
            series.columns.iter().map(|c| mean_std(&c[..val])).unzip();
        let norm: Vec<Vec<f32>> = (series.columns.iter().enumerate())
            .map(|(ch, c)| c.iter().map(|v| (v - mean[ch]) / std[ch]).collect())
            .collect();
        // Example `i` reads values `i .. i + window` and predicts value `i + window + horizon − 1`.
        let lead = self.window + self.horizon - 1;
        let part = |targets: std::ops::Range<usize>| {
            let mut w = Windows {
                inputs: Vec::with_capacity(targets.len() * norm.len() * self.window),
                targets: Vec::with_capacity(targets.len()),
                shape: [norm.len(), 1, self.window],
                target,
            };
            for t in targets {
                let start = t - lead;
                for c in &norm {
                    w.inputs.extend_from_slice(&c[start..start + self.window]);
                }
                w.targets.push(norm[target][t]);
            }
            w
        };
        Ok(SeriesSplits {
            train: part(lead..val),
            val: part(val..test),
            test: part(test..series.len()),
            mean,
            std,
        })
    }
}

/// Where a series comes from and how it becomes examples: the `series` table of an experiment's
/// or a training job's config (present only in configs of series data).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SeriesConfig {
    /// A CSV file of the user's own series; without one, the generator's series.
    pub file: Option<PathBuf>,
    /// Columns of `file` to read, by header name (or 0-based index without a header); every
    /// column when empty.
    pub columns: Vec<String>,
    /// The column to predict; the first one read when absent.
    pub target: Option<String>,
    pub generator: Generator,
    pub window: Windowing,
}

impl SeriesConfig {
    /// Series settings mean nothing for other data: say so rather than ignore them.
    pub fn validate_for(series: Option<&SeriesConfig>, dataset: DatasetKind) -> Result<()> {
        if dataset != DatasetKind::SERIES && series.is_some() {
            return Err(Error::config(
                "dataset",
                format!(
                    "series settings (--data-file, --window, …) apply to --dataset series, not {}",
                    dataset.name()
                ),
            ));
        }
        Ok(())
    }

    /// The series, from the file or the generator.
    pub fn series(&self) -> Result<Series> {
        match &self.file {
            Some(path) => Series::read_csv(path, &self.columns),
            None => self.generator.generate(),
        }
    }

    /// `[columns, 1, window]`: what one example of this series holds (the network's input).
    pub fn example_shape(&self) -> Result<[usize; 3]> {
        let columns = match &self.file {
            Some(_) => self.series()?.names.len(),
            None => 1,
        };
        Ok([columns, 1, self.window.window])
    }

    /// The windowed, chronologically split series as training, validation and test sets of
    /// values to predict.
    pub fn splits(&self) -> Result<Splits> {
        let series = self.series()?;
        let target = match &self.target {
            None => 0,
            Some(name) => series.names.iter().position(|n| n == name).ok_or_else(|| {
                Error::config(
                    "target",
                    format!(
                        "`{name}` is not one of the columns read ({})",
                        series.names.join(", ")
                    ),
                )
            })?,
        };
        let parts = self.window.split(&series, target)?;
        let scale = parts.std[target];
        let set = |w: Windows| Dataset {
            targets: Targets::Values {
                naive: w.naive(),
                values: w.targets,
                scale,
            },
            images: w.inputs,
            shape: w.shape,
        };
        Ok(Splits {
            kind: DatasetKind::SERIES,
            train: set(parts.train),
            val: set(parts.val),
            test: set(parts.test),
        })
    }
}

/// The `series` dataset kind: its data comes from the config's `series` table, not a directory.
pub struct SeriesFormat;

impl Format for SeriesFormat {
    fn name(&self) -> &'static str {
        "series"
    }
    fn example_shape(&self) -> ([usize; 3], usize) {
        ([1, 1, Windowing::default().window], 1)
    }
    fn folder(&self) -> Option<&'static str> {
        None
    }
    fn load(&self, _: &Path) -> Result<(Dataset, Dataset)> {
        Err(Error::config(
            "dataset",
            "series data is generated, or read with --data-file; it has no directory",
        ))
    }
    fn download(&self, _: &Path) -> Result<()> {
        Err(Error::config(
            "dataset",
            "series data is generated, or read with --data-file: there is nothing to download",
        ))
    }
    fn metric(&self) -> Metric {
        Metric::Mse
    }
}

/// Mean and (population) standard deviation, the latter floored so a constant channel does not
/// divide by zero.
fn mean_std(v: &[f32]) -> (f32, f32) {
    let n = v.len().max(1) as f64;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
    (mean as f32, (var.sqrt() as f32).max(1e-6))
}

/// How good a forecast is, in the series' own units: mean squared and absolute error, and the
/// ratio of the squared error to the naive forecast's ("repeat the last value"), which says at
/// once whether a model learned anything (below 1) or not.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    pub mse: f64,
    pub mae: f64,
    pub naive_mse: f64,
}

impl Forecast {
    /// Of `predicted` (normalised, one per example of `set`), scaled back by `std` (the target
    /// channel's).
    pub fn of(predicted: &[f32], set: &Windows, std: f32) -> Forecast {
        assert_eq!(predicted.len(), set.len(), "one prediction per example");
        let n = set.len().max(1) as f64;
        let s = std as f64;
        let errors = |p: &[f32]| -> (f64, f64) {
            p.iter()
                .zip(&set.targets)
                .fold((0.0, 0.0), |(sq, abs), (&p, &t)| {
                    let e = (p as f64 - t as f64) * s;
                    (sq + e * e, abs + e.abs())
                })
        };
        let (sq, abs) = errors(predicted);
        let (naive_sq, _) = errors(&set.naive());
        Forecast {
            mse: sq / n,
            mae: abs / n,
            naive_mse: naive_sq / n,
        }
    }

    /// The squared error against the naive forecast's: below 1 means better than repeating the
    /// last value.
    pub fn naive_ratio(&self) -> f64 {
        self.mse / self.naive_mse
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn generator_is_deterministic_per_seed_and_follows_its_formula() {
        let g = Generator::default();
        assert_eq!(g.generate().unwrap(), g.generate().unwrap());
        let other = Generator {
            seed: 1,
            ..g.clone()
        };
        assert_ne!(g.generate().unwrap(), other.generate().unwrap());
        // Without the walk, the formula itself.
        let plain = Generator {
            walk_std: 0.0,
            length: 100,
            ..g.clone()
        };
        let s = plain.generate().unwrap();
        for t in [0usize, 7, 99] {
            let tf = t as f64;
            let want = (1.5 * tf / 100.0).exp()
                + (std::f64::consts::TAU * tf / 40.0).sin()
                + 0.4 * (std::f64::consts::TAU * tf / 11.0).sin();
            assert!((s.columns[0][t] as f64 - want).abs() < 1e-5, "t = {t}");
        }
        // The walk's steps have the standard deviation asked for.
        let walk = Generator {
            length: 20_000,
            trend_scale: 0.0,
            amplitudes: vec![],
            periods: vec![],
            walk_std: 0.5,
            ..g
        };
        let v = &walk.generate().unwrap().columns[0];
        let steps: Vec<f32> = v.windows(2).map(|w| w[1] - w[0]).collect();
        let (m, sd) = mean_std(&steps);
        assert!(
            m.abs() < 0.02 && (sd - 0.5).abs() < 0.02,
            "mean {m}, sd {sd}"
        );
    }

    #[test]
    fn generator_settings_are_checked() {
        let g = Generator::default();
        let bad = [
            Generator {
                periods: vec![3.0],
                ..g.clone()
            },
            Generator {
                periods: vec![3.0, 0.0],
                ..g.clone()
            },
            Generator {
                walk_std: -1.0,
                ..g.clone()
            },
            Generator {
                trend_rate: f64::NAN,
                ..g.clone()
            },
            Generator { length: 0, ..g },
        ];
        for b in bad {
            let e = b.generate().unwrap_err().to_string();
            assert!(e.starts_with("invalid ") && !e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn csv_with_and_without_header_and_its_errors() {
        let s = Series::parse_csv(
            "date,price,volume\n2020-01-01,1.5,10\n2020-01-02,2,11\n",
            &strings(&["price"]),
        )
        .unwrap();
        assert_eq!(s.names, ["price"]);
        assert_eq!(s.columns, [vec![1.5, 2.0]]);
        let all = Series::parse_csv("\"a\",\"b\"\n1,2\n3,4\n\n", &[]).unwrap();
        assert_eq!(all.names, ["a", "b"]);
        assert_eq!(all.columns, [vec![1.0, 3.0], vec![2.0, 4.0]]);
        let bare = Series::parse_csv("1,2\n3,4\n", &strings(&["1"])).unwrap();
        assert_eq!(bare.columns, [vec![2.0, 4.0]]);
        let cases = [
            ("", &[][..], "the file is empty"),
            ("a,b\n", &[][..], "the file has a header but no values"),
            (
                "a,b\n1,x\n",
                &[][..],
                "line 2, column b: `x` is not a number",
            ),
            (
                "a,b\n1,2\n3\n",
                &[][..],
                "line 3: 1 fields, column b missing",
            ),
            ("a,b\n1,2\n", &["c"][..], "no column `c`; its header: a, b"),
            (
                "1,2\n",
                &["b"][..],
                "no column `b`; its column indices (no header): 0, 1",
            ),
            (
                "a\n1\nNaN\n",
                &[][..],
                "line 3, column a: `NaN` is not a number",
            ),
        ];
        for (text, cols, want) in cases {
            let cols: Vec<String> = cols.iter().map(|c: &&str| c.to_string()).collect();
            assert_eq!(Series::parse_csv(text, &cols).unwrap_err(), want);
        }
    }

    #[test]
    fn csv_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("lottery-series-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.csv");
        std::fs::write(&path, "v\n1\noops\n").unwrap();
        let e = Series::read_csv(&path, &[]).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "{}: line 3, column v: `oops` is not a number",
                path.display()
            )
        );
        let missing = Series::read_csv(&dir.join("none.csv"), &[])
            .unwrap_err()
            .to_string();
        assert!(missing.starts_with(&dir.join("none.csv").display().to_string()));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A series whose value is its time step, so every example says where it came from.
    fn ramp(len: usize, channels: usize) -> Series {
        Series {
            names: (0..channels).map(|c| c.to_string()).collect(),
            columns: (0..channels)
                .map(|c| (0..len).map(|t| (t * (c + 1)) as f32).collect())
                .collect(),
        }
    }

    #[test]
    fn splits_follow_time_and_never_leak() {
        let w = Windowing {
            window: 5,
            horizon: 3,
            val_fraction: 0.1,
            test_fraction: 0.2,
        };
        let series = ramp(100, 2);
        let s = w.split(&series, 1).unwrap();
        // Back to time steps: channel 1 is 2t, normalised with the training period's statistics.
        let time = |v: f32| ((v * s.std[1] + s.mean[1]) / 2.0).round() as usize;
        let (val, test) = (70, 80);
        let (m, _) = mean_std(&series.columns[1][..val]);
        assert!(
            (s.mean[1] - m).abs() < 1e-4,
            "statistics from the training period only"
        );
        for (part, range) in [
            (&s.train, 7..val),
            (&s.val, val..test),
            (&s.test, test..100),
        ] {
            let targets: Vec<usize> = part.targets.iter().map(|&v| time(v)).collect();
            assert_eq!(targets, range.clone().collect::<Vec<_>>());
            for (i, t) in range.enumerate() {
                // The window of channel 1 ends `horizon` steps before its target.
                let per = 2 * 5;
                let last = part.inputs[i * per + 5 + 4];
                assert_eq!(time(last), t - 3);
                if part == &s.train {
                    assert!(
                        t < val,
                        "a training example predicts from the training period"
                    );
                }
            }
            assert_eq!(part.shape, [2, 1, 5]);
            assert_eq!(
                part.naive().iter().map(|&v| time(v)).collect::<Vec<_>>(),
                (0..part.len())
                    .map(|i| time(part.targets[i]) - 3)
                    .collect::<Vec<_>>()
            );
        }
        // The training examples' inputs (channel 0 is t) stop before the validation period.
        let last = (0..s.train.len()).map(|i| s.train.inputs[i * 10 + 4] * s.std[0] + s.mean[0]);
        assert!(last.fold(f32::MIN, f32::max) < val as f32);
    }

    #[test]
    fn windowing_settings_are_checked() {
        let series = ramp(40, 1);
        let ok = Windowing::default();
        let e = Windowing {
            window: 4,
            ..ok.clone()
        }
        .split(&series, 1)
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "invalid target: channel 1 to predict, of a series with 1 column(s)"
        );
        let cases = [
            Windowing {
                window: 0,
                ..ok.clone()
            },
            Windowing {
                val_fraction: 0.0,
                ..ok.clone()
            },
            Windowing {
                test_fraction: 1.0,
                ..ok.clone()
            },
            Windowing {
                val_fraction: 0.5,
                test_fraction: 0.5,
                ..ok.clone()
            },
            // 40 values: 28 before validation, less than a window of 32 and its horizon.
            ok,
        ];
        for w in cases {
            let e = w.split(&series, 0).unwrap_err().to_string();
            assert!(e.starts_with("invalid ") && !e.contains('\n'), "{e}");
        }
        let e = Windowing::default()
            .split(&series, 0)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "invalid window: a series of 40 values is too short for a window of 32 and horizon 1 \
             with 10% validation and 20% test"
        );
    }

    #[test]
    fn forecast_metrics_in_the_series_units() {
        let set = Windows {
            inputs: vec![0.0, 1.0, 1.0, 3.0],
            targets: vec![2.0, 2.0],
            shape: [1, 1, 2],
            target: 0,
        };
        // Naive: 1 and 3, errors 1 and 1 (×2 in units). Predictions 2 and 1.5: errors 0 and 0.5.
        let f = Forecast::of(&[2.0, 1.5], &set, 2.0);
        assert!((f.mse - (0.0 + 1.0) / 2.0).abs() < 1e-12);
        assert!((f.mae - (0.0 + 1.0) / 2.0).abs() < 1e-12);
        assert!((f.naive_mse - (4.0 + 4.0) / 2.0).abs() < 1e-12);
        assert!((f.naive_ratio() - 0.125).abs() < 1e-12);
    }
}
