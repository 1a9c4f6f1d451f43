//! `lottery branch NAME DIR`: a study on a finished experiment's levels (controls after the
//! fact, and the branches of `lottery::branch`). A branch's settings are its typed config: each
//! key is a flag (`--key value`), and `--set KEY=VALUE` reaches nested ones.

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use lottery::branch::{self, RunOptions};
use lottery::layout::RunDir;
use lottery::report;
use serde_json::Value;

use crate::progress::LevelTable;
use crate::settings::{set, toml_value};

#[derive(Args, Debug)]
pub struct BranchArgs {
    /// The branch to run (see --list).
    #[arg(required_unless_present = "list")]
    name: Option<String>,
    /// The experiment directory (from `lottery run`).
    #[arg(required_unless_present = "list")]
    dir: Option<PathBuf>,
    /// Levels to run, comma-separated (default: every finished level).
    #[arg(long, value_delimiter = ',')]
    levels: Option<Vec<usize>>,
    /// cpu, wgpu or cuda (the last two need the matching build feature).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Where the experiment's data lives now, if it moved; for a branch that trains on other
    /// data (`transfer`), that data's directory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// List the branches and their settings with defaults, and exit.
    #[arg(long)]
    list: bool,
    /// Print the branch's effective settings as JSON and exit.
    #[arg(long)]
    print_config: bool,
    /// A setting by its key: KEY=VALUE (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// The branch's own settings as flags: --key value (see --list).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    rest: Vec<String>,
}

pub fn run(a: BranchArgs) -> Result<()> {
    if a.list {
        for b in branch::all() {
            outln!("{:<16} {}", b.name(), b.about());
            if let Value::Object(o) = b.defaults() {
                for (k, v) in o {
                    outln!("{:<16}   --{} (default {v})", "", k.replace('_', "-"));
                }
            }
        }
        return Ok(());
    }
    let (name, dir) = (
        a.name.clone().unwrap_or_default(),
        a.dir.clone().unwrap_or_default(),
    );
    let b = branch::lookup(&name)?;
    let mut settings =
        settings(b.defaults(), &a.rest, &a.set).with_context(|| format!("branch {}", b.name()))?;
    // A branch with data of its own takes `--data-dir` as its setting.
    let own_data = settings.get("data_dir").is_some();
    if let (true, Some(d)) = (own_data, &a.data_dir) {
        settings["data_dir"] = Value::String(d.display().to_string());
    }
    let exp = RunDir::new(&dir);
    if !exp.config().is_file() {
        bail!(
            "{}: not an experiment directory (no config.json)",
            dir.display()
        );
    }
    let out = b.dir(&exp, &settings)?;
    if a.print_config {
        outln!("{}", serde_json::to_string_pretty(&settings)?);
        return Ok(());
    }
    let opts = RunOptions {
        levels: a.levels.clone(),
        device: lottery::device::parse(&a.device)?,
        data_dir: a.data_dir.clone().filter(|_| !own_data),
    };
    outln!(
        "{} on {} → {}",
        b.name(),
        dir.display(),
        out.root().display()
    );
    let config = lottery::files::read_json::<lottery::experiment::ExperimentConfig>(&exp.config())?;
    let mut live = LevelTable::new(None, config.replicates).with_metric(config.dataset.metric());
    let summary = b.run(&exp, settings, &opts, &mut live).with_context(|| {
        format!(
            "branch {} in {} (finished trainings are kept; rerun to resume)",
            b.name(),
            out.root().display()
        )
    })?;
    let variants = report::variants(&summary);
    outln!(
        "\nsummary:\n{}",
        report::table_header(&variants, summary.metric)
    );
    for l in &summary.levels {
        outln!("{}", report::table_row(l, &variants, summary.metric));
    }
    let measures = report::measures_table(&summary);
    if !measures.is_empty() {
        outln!("\n{measures}");
    }
    outln!("wrote {}/summary.json and plots/", out.root().display());
    Ok(())
}

/// The branch's defaults with `--key value` flags and `--set KEY=VALUE` laid over them.
fn settings(mut json: Value, rest: &[String], sets: &[String]) -> Result<Value> {
    let keys: Vec<String> = json
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    let mut i = 0;
    while i < rest.len() {
        let arg = &rest[i];
        let Some(flag) = arg.strip_prefix("--") else {
            bail!("unexpected argument `{arg}`");
        };
        let (flag, inline) = match flag.split_once('=') {
            Some((f, v)) => (f, Some(v.to_string())),
            None => (flag, None),
        };
        let key = flag.replace('-', "_");
        if !keys.contains(&key) {
            let known: Vec<String> = keys
                .iter()
                .map(|k| format!("--{}", k.replace('_', "-")))
                .collect();
            bail!(
                "unknown flag --{flag} (this branch takes {})",
                if known.is_empty() {
                    "no settings".into()
                } else {
                    known.join(", ")
                }
            );
        }
        let is_switch = json[&key].is_boolean();
        let is_list = json[&key].is_array();
        let raw = match inline {
            Some(v) => Some(v),
            None if is_switch => None,
            None => {
                i += 1;
                let v = rest
                    .get(i)
                    .ok_or_else(|| anyhow!("--{flag} needs a value"))?;
                Some(v.clone())
            }
        };
        let value = match raw {
            None => Value::Bool(true),
            // A list setting takes `a,b,c` as well as TOML's `[a, b, c]`.
            Some(v) if is_list && !v.trim_start().starts_with('[') => Value::Array(
                v.split(',')
                    .filter(|x| !x.trim().is_empty())
                    .map(toml_value)
                    .collect::<Result<_>>()?,
            ),
            Some(v) => toml_value(&v)?,
        };
        set(&mut json, &key, value, false)?;
        i += 1;
    }
    for s in sets {
        let (k, v) = s
            .split_once('=')
            .ok_or_else(|| anyhow!("invalid --set `{s}`: expected KEY=VALUE"))?;
        set(&mut json, k.trim(), toml_value(v)?, true)?;
    }
    Ok(json)
}
