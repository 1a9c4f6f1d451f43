//! Settings from the command line, in one place: every flag that changes a result is a name for
//! a key of the library's typed configs, and `--set KEY=VALUE` reaches every key. Defaults live
//! in the configs (presets, `TrainConfig::lenet_paper`), never here, so a flag, a TOML file and
//! `--set` always agree.
//!
//! The base config is turned into JSON, the TOML file and then the flags are laid over it, and
//! the result is read back through the type — so a misspelt or misplaced key is an error that
//! names it, not a silent no-op.

use std::marker::PhantomData;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Arg, ArgAction, ArgMatches, Args, Command, FromArgMatches};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// How a flag's text becomes a JSON value.
#[derive(Clone, Copy)]
pub enum Kind {
    /// A number, boolean or TOML value; anything else is a string.
    Value,
    /// A switch: present means `true`.
    Switch,
    /// Comma-separated strings (`""` for none).
    Strings,
    /// Comma-separated numbers.
    Numbers,
    /// The value names the choice of a tagged table, which is replaced with the choice's
    /// defaults (`--optimizer sgd` → `train.optimizer = {name = "sgd"}`).
    Tagged,
    /// The value is put into an object with this key, replacing what was there
    /// (`--iterations 200` → `train.length = {iterations = 200}`).
    Wrap(&'static str),
    /// Parsed by the library's own reader (`--rewind iter:500`, `--init kaiming_normal`).
    Parse(fn(&str) -> lottery::Result<Value>),
}

/// One flag: its name, help, and the config keys it sets (dotted).
pub struct Flag {
    pub name: &'static str,
    pub help: &'static str,
    pub keys: &'static [&'static str],
    pub kind: Kind,
    /// The registry the values come from, listed after the help (so a new plug-in shows up).
    pub choices: Option<fn() -> String>,
}

const fn flag(
    name: &'static str,
    keys: &'static [&'static str],
    kind: Kind,
    help: &'static str,
) -> Flag {
    Flag {
        name,
        help,
        keys,
        kind,
        choices: None,
    }
}

/// A flag whose values are the names in a registry.
const fn from_registry(
    name: &'static str,
    keys: &'static [&'static str],
    kind: Kind,
    help: &'static str,
    choices: fn() -> String,
) -> Flag {
    Flag {
        choices: Some(choices),
        ..flag(name, keys, kind, help)
    }
}

fn parsed<T: Serialize>(r: lottery::Result<T>) -> lottery::Result<Value> {
    r.map(|v| serde_json::to_value(v).expect("configs serialise"))
}

/// The model, its initialisation and the data (top-level keys of experiment and training configs).
pub const MODEL: &[Flag] = &[
    from_registry(
        "model",
        &["model"],
        Kind::Value,
        "Architecture",
        lottery::models::known,
    ),
    flag(
        "init",
        &["init"],
        Kind::Parse(|s| parsed(lottery::models::init::InitScheme::parse(s))),
        "Weight initialisation: glorot_normal, glorot_uniform, kaiming_normal, kaiming_uniform",
    ),
    flag(
        "seed",
        &["seed", "train.data_seed"],
        Kind::Value,
        "Seed of the initial weights and of the data order",
    ),
    from_registry(
        "dataset",
        &["dataset"],
        Kind::Parse(|s| parsed(lottery::data::DatasetKind::parse(s))),
        "Dataset format (mnist-format: any IDX set, e.g. Fashion-MNIST)",
        || {
            let names: Vec<&str> = lottery::data::DatasetKind::all()
                .map(|k| k.name())
                .collect();
            names.join(", ")
        },
    ),
    flag(
        "data-dir",
        &["data_dir"],
        Kind::Value,
        "Directory holding the dataset files (default: the bundled data/ or $LOTTERY_DATA)",
    ),
    flag(
        "val-size",
        &["val_size"],
        Kind::Value,
        "Training examples held out for validation (the early-stopping point)",
    ),
];

/// The optimizer and its schedule (keys under `train`).
pub const OPTIM: &[Flag] = &[
    flag(
        "optimizer",
        &["train.optimizer"],
        Kind::Tagged,
        "adam or sgd (each with its defaults: Adam β 0.9/0.999, SGD momentum 0)",
    ),
    flag("lr", &["train.lr"], Kind::Value, "Learning rate"),
    flag(
        "batch-size",
        &["train.batch_size"],
        Kind::Value,
        "Examples per step",
    ),
    flag(
        "momentum",
        &["train.optimizer.momentum"],
        Kind::Value,
        "SGD momentum (with --optimizer sgd)",
    ),
    flag(
        "nesterov",
        &["train.optimizer.nesterov"],
        Kind::Switch,
        "Nesterov momentum (SGD)",
    ),
    flag(
        "weight-decay",
        &["train.optimizer.weight_decay"],
        Kind::Value,
        "L2 weight decay, added to the gradient",
    ),
    flag(
        "warmup",
        &["train.schedule.warmup"],
        Kind::Value,
        "Linear learning-rate warm-up over this many iterations",
    ),
    flag(
        "milestones",
        &["train.schedule.milestones"],
        Kind::Numbers,
        "Iterations at which the rate is multiplied by --gamma (comma-separated)",
    ),
    flag(
        "gamma",
        &["train.schedule.gamma"],
        Kind::Value,
        "Learning-rate decay factor at each milestone",
    ),
    flag(
        "augment",
        &["train.augment"],
        Kind::Switch,
        "Random flips and pad-4 crops (CIFAR)",
    ),
    flag(
        "sparse-max-density",
        &["train.sparse_max_density"],
        Kind::Value,
        "Under a mask, linear weights keeping at most this fraction train as sparse products on the CPU (0: always dense)",
    ),
];

/// How long a training runs and how often it is evaluated (keys under `train`).
pub const LENGTH: &[Flag] = &[
    flag(
        "iterations",
        &["train.length"],
        Kind::Wrap("iterations"),
        "Training length in iterations",
    ),
    flag(
        "epochs",
        &["train.length"],
        Kind::Wrap("epochs"),
        "Training length in epochs instead of iterations",
    ),
    flag(
        "eval-every",
        &["train.eval_every"],
        Kind::Value,
        "Evaluate on the validation and test sets every this many iterations",
    ),
];

/// A time series (`--dataset series`): where it comes from and how it becomes examples (keys
/// under `series`, a table configs leave out while it holds its defaults).
pub const SERIES: &[Flag] = &[
    flag(
        "data-file",
        &["series.file"],
        Kind::Value,
        "A CSV file of your own series (header optional); without it, the generated series",
    ),
    flag(
        "column",
        &["series.columns"],
        Kind::Strings,
        "Columns of --data-file to read, by header name or 0-based index (comma-separated; default: all)",
    ),
    flag(
        "target",
        &["series.target"],
        Kind::Value,
        "The column to predict (default: the first read)",
    ),
    flag(
        "window",
        &["series.window.window"],
        Kind::Value,
        "Past values each prediction reads",
    ),
    flag(
        "horizon",
        &["series.window.horizon"],
        Kind::Value,
        "Steps ahead of the window's last value to predict",
    ),
    flag(
        "val-fraction",
        &["series.window.val_fraction"],
        Kind::Value,
        "Fraction of the series before the test period held out for validation",
    ),
    flag(
        "test-fraction",
        &["series.window.test_fraction"],
        Kind::Value,
        "Fraction at the end of the series held out for test",
    ),
    flag(
        "series-length",
        &["series.generator.length"],
        Kind::Value,
        "Generated series: values",
    ),
    flag(
        "trend-scale",
        &["series.generator.trend_scale"],
        Kind::Value,
        "Generated series: the exponential trend's value at the start",
    ),
    flag(
        "trend-rate",
        &["series.generator.trend_rate"],
        Kind::Value,
        "Generated series: the trend grows by exp(this) over the series",
    ),
    flag(
        "amplitudes",
        &["series.generator.amplitudes"],
        Kind::Numbers,
        "Generated series: one sine per amplitude (comma-separated)",
    ),
    flag(
        "periods",
        &["series.generator.periods"],
        Kind::Numbers,
        "Generated series: the sines' periods in steps (one per amplitude)",
    ),
    flag(
        "walk-std",
        &["series.generator.walk_std"],
        Kind::Value,
        "Generated series: standard deviation of each random-walk step",
    ),
    flag(
        "series-seed",
        &["series.generator.seed"],
        Kind::Value,
        "Generated series: seed of the random walk",
    ),
];

/// Tables only some configs have (`series`, for series data): a flag may add them.
const OPTIONAL_TABLES: &[&str] = &["series"];

/// Pruning, rewinding and controls (keys of an experiment config).
pub const EXPERIMENT: &[Flag] = &[
    flag(
        "levels",
        &["levels"],
        Kind::Value,
        "Pruning levels after the dense network",
    ),
    from_registry(
        "criterion",
        &["prune.criterion"],
        Kind::Value,
        "Pruning criterion",
        || lottery::prune::criterion::names().join(", "),
    ),
    flag(
        "scope",
        &["prune.scope"],
        Kind::Parse(|s| parsed(lottery::prune::Scope::parse(s))),
        "layerwise (each layer at its rate) or global (one threshold)",
    ),
    flag(
        "prune-rate",
        &["prune.rate"],
        Kind::Value,
        "Fraction of the remaining weights pruned per level",
    ),
    flag(
        "output-rate",
        &["prune.output_rate"],
        Kind::Value,
        "Rate for the output layer (layer-wise pruning)",
    ),
    flag(
        "conv-rate",
        &["prune.conv_rate"],
        Kind::Value,
        "Rate for convolution weights (layer-wise pruning)",
    ),
    flag(
        "prune-include",
        &["prune.include"],
        Kind::Strings,
        "Also prune tensors whose names contain these (comma-separated), e.g. bias",
    ),
    flag(
        "prune-exclude",
        &["prune.exclude"],
        Kind::Strings,
        "Never prune tensors whose names contain these (comma-separated), e.g. fc3",
    ),
    flag(
        "rewind",
        &["rewind"],
        Kind::Parse(|s| parsed(lottery::experiment::Rewind::parse(s))),
        "init, iter:K (late resetting), none (fine-tune) or lr (learning-rate rewinding)",
    ),
    from_registry(
        "controls",
        &["controls"],
        Kind::Strings,
        "Controls trained beside the ticket (comma-separated; \"\" for none)",
        || lottery::experiment::controls::names().join(", "),
    ),
    flag(
        "replicates",
        &["replicates"],
        Kind::Value,
        "Independent replicates (replicate r: seed + r for the initial weights, data order + r), aggregated as mean and min/max",
    ),
];

/// A set of flag tables a command offers.
pub trait Tables: Send + Sync + 'static {
    const TABLES: &'static [&'static [Flag]];
    /// Whose defaults `--help` shows (the preset's name for `run`).
    fn defaults_from() -> String;
    /// The settings the flags are laid over when none are given, as JSON.
    fn defaults() -> Value;
}

/// What `--help` shows as flag `f`'s default in `defaults`, read at its first key.
fn shown_default(defaults: &Value, f: &Flag) -> Option<String> {
    let at = f.keys[0].split('.').try_fold(defaults, |v, k| v.get(k))?;
    let v = match f.kind {
        Kind::Wrap(k) => at.get(k)?,
        Kind::Tagged => at.get("name")?,
        _ => at,
    };
    Some(match v {
        Value::Null => "none".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) if a.is_empty() => "none".into(),
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().map_or_else(|| x.to_string(), String::from))
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    })
}

/// Flags of the tables `T`, plus `--set KEY=VALUE`; what the user gave, in order.
#[derive(Debug, Clone)]
pub struct Overrides<T: Tables> {
    /// (flag name or `set`, raw value), in command-line order.
    given: Vec<(String, String)>,
    _tables: PhantomData<T>,
}

impl<T: Tables> Overrides<T> {
    fn flags() -> impl Iterator<Item = &'static Flag> {
        T::TABLES.iter().flat_map(|t| t.iter())
    }

    /// Whether `name` is one of these flags (without its dashes).
    pub fn is_flag(name: &str) -> bool {
        Self::flags().any(|f| f.name == name)
    }

    /// Settings given by name rather than on a command line (a sweep's grid), in order: a
    /// flag's name takes what the flag would (`seed = 1` sets the seed and the data order, as
    /// `--seed 1` does; a list is the flag's comma-separated text); any other name is a dotted
    /// config key, as `--set` takes it.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a toml::Value)>) -> Self {
        let given = pairs
            .into_iter()
            .flat_map(|(key, value)| {
                let flag = Self::flags().find(|f| f.name == key);
                if let Some(f) = flag.filter(|f| matches!(f.kind, Kind::Switch)) {
                    // A switch on the command line can only turn on; here it may be false.
                    return f
                        .keys
                        .iter()
                        .map(|k| ("set".to_string(), format!("{k}={value}")))
                        .collect();
                }
                if flag.is_some() {
                    let text = |v: &toml::Value| match v {
                        toml::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    let raw = match value {
                        toml::Value::Array(items) => {
                            items.iter().map(text).collect::<Vec<_>>().join(",")
                        }
                        v => text(v),
                    };
                    vec![(key.to_string(), raw)]
                } else {
                    vec![("set".to_string(), format!("{key}={value}"))]
                }
            })
            .collect();
        Overrides {
            given,
            _tables: PhantomData,
        }
    }

    /// Lays the flags over `base` and reads the result back as `C`.
    pub fn apply<C: Serialize + DeserializeOwned>(&self, base: &C) -> Result<C> {
        let mut json = serde_json::to_value(base)?;
        self.apply_json(&mut json)?;
        serde_json::from_value(json).map_err(|e| anyhow!("the settings do not fit: {e}"))
    }

    pub fn apply_json(&self, json: &mut Value) -> Result<()> {
        // A choice (`--optimizer sgd`) replaces its table, so it goes first: the flags that
        // tune the choice (`--momentum`) then apply wherever they stand on the line.
        let is_choice =
            |n: &str| Self::flags().any(|f| f.name == n && matches!(f.kind, Kind::Tagged));
        let ordered = self
            .given
            .iter()
            .filter(|(n, _)| is_choice(n))
            .chain(self.given.iter().filter(|(n, _)| !is_choice(n)));
        for (name, raw) in ordered {
            if name == "set" {
                let (key, value) = raw
                    .split_once('=')
                    .ok_or_else(|| anyhow!("invalid --set `{raw}`: expected KEY=VALUE"))?;
                let value =
                    toml_value(value).with_context(|| format!("invalid --set {}", key.trim()))?;
                set(json, key.trim(), value, true)
                    .with_context(|| format!("invalid --set {}", key.trim()))?;
                continue;
            }
            let f = Self::flags()
                .find(|f| f.name == name)
                .expect("only our flags are recorded");
            let value = match f.kind {
                Kind::Value => toml_value(raw).with_context(|| format!("invalid --{name}"))?,
                Kind::Switch => Value::Bool(true),
                Kind::Strings => Value::Array(
                    raw.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| Value::String(s.into()))
                        .collect(),
                ),
                Kind::Numbers => Value::Array(
                    raw.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| {
                            s.parse::<u64>().map(Value::from).map_err(|_| {
                                anyhow!("invalid --{name}: `{s}` is not a whole number")
                            })
                        })
                        .collect::<Result<_>>()?,
                ),
                Kind::Tagged => serde_json::json!({ "name": raw.trim() }),
                Kind::Wrap(k) => serde_json::json!({ k: toml_value(raw)? }),
                Kind::Parse(p) => p(raw.trim())?,
            };
            for key in f.keys {
                let optional = OPTIONAL_TABLES
                    .iter()
                    .any(|t| key.starts_with(&format!("{t}.")));
                set(json, key, value.clone(), optional)
                    .with_context(|| format!("invalid --{name}"))?;
            }
        }
        Ok(())
    }
}

/// A flag's text as TOML would read it on the right of `=`; a bare word is a string.
/// `none` unsets an optional setting (`--output-rate none`; TOML has no null). NaN and
/// infinities are refused: no setting means them, and JSON cannot hold them.
pub fn toml_value(raw: &str) -> Result<Value> {
    let raw = raw.trim();
    if raw == "none" {
        return Ok(Value::Null);
    }
    match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => {
            let v = t.remove("v").expect("parsed key");
            if let toml::Value::Float(f) = v
                && !f.is_finite()
            {
                bail!("{raw} is not a finite number");
            }
            Ok(serde_json::to_value(v)?)
        }
        Err(_) => Ok(Value::String(raw.into())),
    }
}

/// Sets dotted `key` in `json` to `value`. With `create`, missing objects on the way are made
/// (`--set` may add an optional key); without, every step but the last must exist, so a flag
/// that does not apply (`--momentum` with Adam) is an error naming the key.
pub fn set(json: &mut Value, key: &str, value: Value, create: bool) -> Result<()> {
    let parts: Vec<&str> = key.split('.').collect();
    let mut at = json;
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let obj = at
            .as_object_mut()
            .ok_or_else(|| anyhow!("`{}` is not a table", parts[..i].join(".")))?;
        let part = part.to_string();
        if last {
            obj.insert(part, value);
            return Ok(());
        }
        if !obj.contains_key(&part) {
            if !create {
                let here = if i == 0 {
                    part.clone()
                } else {
                    format!("{}.{part}", parts[..i].join("."))
                };
                let options: Vec<&String> = obj.keys().collect();
                bail!("`{here}` does not apply here (this table has {options:?})");
            }
            obj.insert(part.clone(), Value::Object(Default::default()));
        }
        at = obj.get_mut(&part).expect("inserted above");
        if at.is_null() {
            *at = Value::Object(Default::default());
        }
    }
    unreachable!("the loop returns at the last part")
}

impl<T: Tables> FromArgMatches for Overrides<T> {
    fn from_arg_matches(m: &ArgMatches) -> std::result::Result<Self, clap::Error> {
        let switches: Vec<&str> = Self::flags()
            .filter(|f| matches!(f.kind, Kind::Switch))
            .map(|f| f.name)
            .collect();
        let mut given: Vec<(usize, String, String)> = Vec::new();
        for name in Self::flags().map(|f| f.name).chain(["set"]) {
            if m.value_source(name) != Some(clap::parser::ValueSource::CommandLine) {
                continue;
            }
            if switches.contains(&name) {
                let i = m.index_of(name).unwrap_or(0);
                given.push((i, name.to_string(), "true".into()));
            } else if let (Some(vals), Some(idx)) = (m.get_raw(name), m.indices_of(name)) {
                for (v, i) in vals.zip(idx) {
                    given.push((i, name.to_string(), v.to_string_lossy().into_owned()));
                }
            }
        }
        given.sort_by_key(|g| g.0);
        Ok(Overrides {
            given: given.into_iter().map(|(_, n, v)| (n, v)).collect(),
            _tables: PhantomData,
        })
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> std::result::Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl<T: Tables> Args for Overrides<T> {
    fn augment_args(mut cmd: Command) -> Command {
        let defaults = T::defaults();
        for f in Self::flags() {
            let mut help = match f.choices {
                Some(names) => format!("{}: {}", f.help, names()),
                None => f.help.to_string(),
            };
            if let Some(d) = shown_default(&defaults, f)
                && !matches!(f.kind, Kind::Switch)
            {
                help.push_str(&format!(" [{}: {d}]", T::defaults_from()));
            }
            let arg = Arg::new(f.name).long(f.name).help(help);
            let arg = match f.kind {
                Kind::Switch => arg.action(ArgAction::SetTrue),
                _ => arg
                    .action(ArgAction::Append)
                    .value_name("VALUE")
                    .allow_negative_numbers(true),
            };
            cmd = cmd.arg(arg);
        }
        cmd.arg(
            Arg::new("set")
                .long("set")
                .value_name("KEY=VALUE")
                .action(ArgAction::Append)
                .help("Any config key (as --print-config shows it, dotted: train.lr=0.1); repeatable, applied in order"),
        )
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

/// The preset whose values `lottery run --help` shows: the one named on the command line
/// (`lottery run --preset conv2-cifar10 --help`), else `quick`. Help is drawn before the
/// arguments are parsed, so this reads them itself.
fn help_preset() -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--preset")
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| {
            args.iter()
                .find_map(|a| a.strip_prefix("--preset=").map(String::from))
        })
        .filter(|p| lottery::experiment::presets::preset(p).is_ok())
        .unwrap_or_else(|| "quick".into())
}

/// `lottery run`: every table.
#[derive(Debug, Clone)]
pub struct ExperimentFlags;
impl Tables for ExperimentFlags {
    const TABLES: &'static [&'static [Flag]] = &[MODEL, SERIES, OPTIM, LENGTH, EXPERIMENT];
    fn defaults_from() -> String {
        help_preset()
    }
    fn defaults() -> Value {
        let preset = lottery::experiment::presets::preset(&help_preset()).expect("a known preset");
        serde_json::to_value(preset).expect("configs serialise")
    }
}

/// `lottery train`: the model, optimizer and length.
#[derive(Debug, Clone)]
pub struct TrainFlags;
impl Tables for TrainFlags {
    const TABLES: &'static [&'static [Flag]] = &[MODEL, SERIES, OPTIM, LENGTH];
    fn defaults_from() -> String {
        "default".into()
    }
    fn defaults() -> Value {
        serde_json::to_value(crate::train::TrainJob::default()).expect("configs serialise")
    }
}

/// Commands that train for a length of their own (`prune --finetune`, `bench train`).
#[derive(Debug, Clone)]
pub struct OptimFlags;
impl Tables for OptimFlags {
    const TABLES: &'static [&'static [Flag]] = &[OPTIM];
    fn defaults_from() -> String {
        "default".into()
    }
    fn defaults() -> Value {
        let train = lottery::train::TrainConfig::lenet_paper(1);
        serde_json::to_value(TrainOnly { train }).expect("configs serialise")
    }
}

/// A training config alone, under the `train` key the flags name.
#[derive(Serialize, serde::Deserialize)]
pub struct TrainOnly {
    pub train: lottery::train::TrainConfig,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use lottery::experiment::presets;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        o: Overrides<ExperimentFlags>,
    }

    fn apply(args: &[&str]) -> Result<lottery::experiment::ExperimentConfig> {
        let cli = Cli::try_parse_from(std::iter::once("x").chain(args.iter().copied()))?;
        cli.o.apply(&presets::preset("quick").unwrap())
    }

    #[test]
    fn flags_and_set_reach_the_config() {
        let c = apply(&[
            "--lr",
            "0.01",
            "--iterations",
            "300",
            "--seed",
            "4",
            "--rewind",
            "iter:20",
            "--controls",
            "reinit,random_prune",
            "--criterion",
            "movement",
            "--set",
            "prune.rate=0.3",
            "--milestones",
            "100,200",
        ])
        .unwrap();
        assert_eq!(c.train.lr, 0.01);
        assert_eq!(c.train.length, lottery::train::Length::Iterations(300));
        assert_eq!((c.seed, c.train.data_seed), (4, 4));
        assert_eq!(c.rewind, lottery::experiment::Rewind::Iteration(20));
        assert_eq!(c.controls, vec!["reinit", "random_prune"]);
        assert_eq!(c.prune.criterion, "movement");
        assert_eq!(c.prune.rate, 0.3);
        assert_eq!(c.train.schedule.milestones, vec![100, 200]);
    }

    #[test]
    fn sgd_from_a_flag_has_the_configs_defaults() {
        // `run --optimizer sgd` and `train --optimizer sgd` agree: momentum 0 unless asked.
        let c = apply(&["--optimizer", "sgd"]).unwrap();
        assert_eq!(
            c.train.optimizer,
            lottery::train::OptimizerConfig::sgd(0.0, false, 0.0)
        );
        let c = apply(&[
            "--momentum",
            "0.9",
            "--optimizer",
            "sgd",
            "--weight-decay",
            "1e-4",
        ])
        .unwrap();
        assert_eq!(
            c.train.optimizer,
            lottery::train::OptimizerConfig::sgd(0.9, false, 1e-4)
        );
        // Later flags win, in command-line order.
        let c = apply(&["--epochs", "2", "--iterations", "7"]).unwrap();
        assert_eq!(c.train.length, lottery::train::Length::Iterations(7));
    }

    #[test]
    fn flags_that_do_not_apply_and_unknown_keys_are_errors() {
        let e = format!("{:#}", apply(&["--momentum", "0.9"]).unwrap_err());
        assert!(e.contains("momentum") && e.contains("beta1"), "{e}");
        let e = format!("{:#}", apply(&["--set", "train.lrr=1"]).unwrap_err());
        assert!(e.contains("lrr"), "{e}");
        let e = format!("{:#}", apply(&["--set", "nokey"]).unwrap_err());
        assert!(e.contains("KEY=VALUE"), "{e}");
    }
}
