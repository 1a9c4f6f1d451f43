//! A sweep's file (`SWEEP.toml`) and its plan (`plan.json`): the base settings, the grid of
//! settings to vary, the branches to run on each experiment, and one point per combination with
//! its full experiment config. Tasks read only the plan, so a preset changed after submission
//! changes no running sweep.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use lottery::experiment::ExperimentConfig;
use lottery::files::{read_json, write_json};
use lottery::layout::SweepDir;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::run::{base_config, one_line};
use crate::settings::{ExperimentFlags, Overrides};

/// `SWEEP.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepFile {
    /// The starting settings, as `lottery run --preset` names them.
    #[serde(default = "quick")]
    pub preset: String,
    /// A TOML file of settings laid over the preset (relative to the sweep file).
    pub config: Option<PathBuf>,
    /// Settings for every point, by flag name or dotted config key.
    #[serde(default)]
    pub set: toml::Table,
    /// Each key's values; the points are every combination.
    #[serde(default)]
    pub grid: toml::Table,
    /// Branches to run on each point's experiment, each with its settings (`[branches.signs]`).
    #[serde(default)]
    pub branches: toml::Table,
    /// How `--slurm` asks for resources (flags override these).
    #[serde(default)]
    pub slurm: SlurmSettings,
}

fn quick() -> String {
    "quick".into()
}

/// The `[slurm]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmSettings {
    pub partition: Option<String>,
    /// Wall-time limit per task, as sbatch takes it (`2:00:00`).
    pub time: Option<String>,
    /// CPUs per task (each task trains with this many threads).
    pub cpus: Option<u32>,
    /// Memory per node, as sbatch takes it (`8G`).
    pub mem: Option<String>,
    /// Tasks running at once (`--array=…%P`).
    pub parallel: Option<usize>,
    /// Requeue a task after a node failure or preemption (default true).
    pub requeue: Option<bool>,
    /// Further `#SBATCH` lines (`--account=lab`, `--qos=short`).
    #[serde(default)]
    pub extra: Vec<String>,
}

impl SweepFile {
    pub fn read(path: &Path) -> Result<SweepFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        toml::from_str(&text)
            .map_err(|e| anyhow!("{}: {}", path.display(), one_line(&e.to_string())))
    }
}

/// One experiment of the sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Its folder in the sweep directory: the hash of its settings.
    pub dir: String,
    /// The swept keys' values at this point, in the grid's order.
    pub settings: Vec<(String, Value)>,
    pub config: ExperimentConfig,
}

impl Point {
    /// `init=kaiming_normal seed=1`.
    pub fn label(&self) -> String {
        label(&self.settings)
    }
}

/// `key=value` pairs separated by spaces; strings without their quotes.
pub fn label(settings: &[(String, Value)]) -> String {
    let parts: Vec<String> = settings
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            v => format!("{k}={v}"),
        })
        .collect();
    if parts.is_empty() {
        "base".into()
    } else {
        parts.join(" ")
    }
}

/// `plan.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The swept keys, in the grid's order.
    pub keys: Vec<String>,
    pub points: Vec<Point>,
    /// Branch name → its full settings (defaults with the sweep's laid over).
    pub branches: BTreeMap<String, Value>,
}

impl Plan {
    /// The plan of `file` (read from `file_path`, for relative paths in it).
    pub fn of(file: &SweepFile, file_path: &Path) -> Result<Plan> {
        let config_path = file.config.as_ref().map(|c| {
            file_path
                .parent()
                .unwrap_or(Path::new("."))
                .join(c)
                .to_path_buf()
        });
        let mut base = base_config(&file.preset, config_path.as_deref())?;
        let base_json = serde_json::to_value(&base)?;
        for key in file.set.keys() {
            check_key("[set]", key, &base_json)?;
        }
        for key in file.grid.keys() {
            check_key("grid", key, &base_json)?;
        }
        base =
            Overrides::<ExperimentFlags>::from_pairs(file.set.iter().map(|(k, v)| (k.as_str(), v)))
                .apply(&base)
                .context("sweep [set]")?;
        if file.grid.is_empty() {
            bail!("the sweep's [grid] is empty: give at least one key and its values");
        }
        let mut axes: Vec<(String, Vec<toml::Value>)> = Vec::new();
        for (key, values) in &file.grid {
            let values = match values {
                toml::Value::Array(v) if !v.is_empty() => v.clone(),
                toml::Value::Array(_) => bail!("grid key `{key}` has no values"),
                other => vec![other.clone()],
            };
            axes.push((key.clone(), values));
        }
        let mut points: Vec<Point> = Vec::new();
        for combo in combinations(&axes) {
            let settings = axes
                .iter()
                .zip(&combo)
                .map(|((k, _), v)| Ok((k.clone(), serde_json::to_value(v)?)))
                .collect::<Result<Vec<_>>>()?;
            let pairs = axes
                .iter()
                .map(|(k, _)| k.as_str())
                .zip(combo.iter().copied());
            let config = Overrides::<ExperimentFlags>::from_pairs(pairs)
                .apply(&base)
                .and_then(|c: ExperimentConfig| {
                    c.validate()?;
                    Ok(c)
                })
                .with_context(|| format!("grid point {}", label(&settings)))?;
            let dir = format!("{:016x}", config.hash());
            if let Some(same) = points.iter().find(|p| p.dir == dir) {
                bail!(
                    "grid points {} and {} are the same experiment (a key that changes no result?)",
                    same.label(),
                    label(&settings)
                );
            }
            points.push(Point {
                dir,
                settings,
                config,
            });
        }
        let mut branches = BTreeMap::new();
        for (name, given) in &file.branches {
            let b = lottery::branch::lookup(name)?;
            let mut settings = b.defaults();
            let toml::Value::Table(given) = given else {
                bail!("branches.{name}: expected a table of its settings ([branches.{name}])");
            };
            for (k, v) in given {
                crate::settings::set(&mut settings, k, serde_json::to_value(v)?, false)
                    .with_context(|| format!("branches.{name}"))?;
            }
            // The branch reads its settings as its typed config: a misspelt key fails here.
            b.dir(&lottery::layout::RunDir::new("."), &settings)
                .with_context(|| format!("branches.{name}"))?;
            branches.insert(name.clone(), settings);
        }
        Ok(Plan {
            keys: axes.into_iter().map(|(k, _)| k).collect(),
            points,
            branches,
        })
    }

    pub fn read(sweep: &SweepDir) -> Result<Plan> {
        if !sweep.plan().is_file() {
            bail!(
                "{}: not a sweep directory (no plan.json; `lottery sweep SWEEP.toml` makes one)",
                sweep.root().display()
            );
        }
        Ok(read_json(&sweep.plan())?)
    }

    /// Writes the plan into `sweep`, or finds the same plan there (a resumed sweep). A
    /// directory holding anything else is refused, so no result is overwritten.
    pub fn claim(&self, sweep: &SweepDir) -> Result<()> {
        let root = sweep.root();
        if sweep.plan().is_file() {
            let old = Plan::read(sweep)?;
            if !old.same_sweep(self) {
                bail!(
                    "{} holds another sweep ({} points there, {} here, or other settings); give another --out",
                    root.display(),
                    old.points.len(),
                    self.points.len()
                );
            }
            return Ok(());
        }
        let occupied = std::fs::read_dir(root).is_ok_and(|mut d| d.next().is_some());
        if occupied {
            bail!(
                "{} is not empty and holds no sweep plan; give another --out",
                root.display()
            );
        }
        Ok(write_json(&sweep.plan(), self)?)
    }

    /// Whether `other` runs the same experiments and branches: where the data lives may
    /// differ (it is checked by content).
    fn same_sweep(&self, other: &Plan) -> bool {
        let strip = |p: &Plan| {
            let mut p = p.clone();
            for pt in &mut p.points {
                pt.config.data_dir = None;
            }
            p
        };
        strip(self) == strip(other)
    }

    /// The point of a task's index.
    pub fn point(&self, index: usize) -> Result<&Point> {
        self.points.get(index).ok_or_else(|| {
            anyhow!(
                "task {index} is not in the plan (it has points 0 to {})",
                self.points.len().saturating_sub(1)
            )
        })
    }
}

/// A key of `[set]` or `[grid]` must be a flag of `lottery run` or a config key the base has.
fn check_key(table: &str, key: &str, base: &Value) -> Result<()> {
    if Overrides::<ExperimentFlags>::is_flag(key) {
        return Ok(());
    }
    if key.split('.').try_fold(base, |v, k| v.get(k)).is_some() {
        return Ok(());
    }
    bail!(
        "unknown {table} key `{key}`: neither a flag of `lottery run` (without its dashes) nor a config key (`lottery run --print-config` lists them)"
    )
}

/// Every combination of the axes' values, the last axis varying fastest.
fn combinations(axes: &[(String, Vec<toml::Value>)]) -> Vec<Vec<&toml::Value>> {
    let mut out: Vec<Vec<&toml::Value>> = vec![vec![]];
    for (_, values) in axes {
        out = out
            .into_iter()
            .flat_map(|prefix| {
                values.iter().map(move |v| {
                    let mut next = prefix.clone();
                    next.push(v);
                    next
                })
            })
            .collect();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(text: &str) -> Result<Plan> {
        let file: SweepFile = toml::from_str(text)?;
        Plan::of(&file, Path::new("sweep.toml"))
    }

    #[test]
    fn a_grid_is_every_combination_with_flags_meaning_what_they_mean_on_the_command_line() {
        let p = plan(
            r#"
            preset = "quick"
            [set]
            levels = 2
            [grid]
            seed = [0, 1, 2]
            init = ["glorot_normal", "kaiming_normal"]
            "train.lr" = [0.001]
            "#,
        )
        .unwrap();
        assert_eq!(p.keys, ["init", "seed", "train.lr"]);
        assert_eq!(p.points.len(), 6);
        let last = &p.points[5];
        assert_eq!(last.label(), "init=kaiming_normal seed=2 train.lr=0.001");
        assert_eq!(last.config.seed, 2);
        // `seed` as a flag: the data order follows it.
        assert_eq!(last.config.train.data_seed, 2);
        assert_eq!(last.config.levels, 2);
        assert_eq!(last.config.train.lr, 0.001);
        let dirs: std::collections::BTreeSet<&str> =
            p.points.iter().map(|p| p.dir.as_str()).collect();
        assert_eq!(dirs.len(), 6, "one directory per point");
        // The same file gives the same plan: a rerun resumes.
        let again = plan(
            "preset = \"quick\"\n[set]\nlevels = 2\n[grid]\nseed = [0, 1, 2]\ninit = [\"glorot_normal\", \"kaiming_normal\"]\n\"train.lr\" = [0.001]\n",
        )
        .unwrap();
        assert!(p.same_sweep(&again));
    }

    #[test]
    fn bad_grids_are_one_line_errors() {
        let err = |t: &str| format!("{:#}", plan(t).unwrap_err());
        let e = err("[grid]\nlearning_rate = [0.1]\n");
        assert!(e.contains("unknown grid key `learning_rate`"), "{e}");
        assert!(!e.contains('\n'), "{e}");
        let e = err("[grid]\n");
        assert!(e.contains("[grid] is empty"), "{e}");
        let e = err("[grid]\nseed = []\n");
        assert!(e.contains("grid key `seed` has no values"), "{e}");
        let e = err("[grid]\ninit = [\"zeros\"]\n");
        assert!(e.contains("grid point init=zeros"), "{e}");
        let e = err("[grid]\nseed = [0]\n[branches.nonesuch]\n");
        assert!(e.contains("nonesuch"), "{e}");
        let e = err("[grid]\nseed = [0]\n[branches.signs]\nwhatever = 1\n");
        assert!(e.contains("branches.signs"), "{e}");
    }

    #[test]
    fn a_directory_of_another_plan_is_refused_and_nothing_in_it_changes() {
        let tmp = std::env::temp_dir().join(format!("lottery-plan-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let sweep = SweepDir::new(&tmp);
        let a = plan("[grid]\nseed = [0, 1]\n").unwrap();
        a.claim(&sweep).unwrap();
        a.claim(&sweep).unwrap();
        let before = std::fs::read(sweep.plan()).unwrap();
        let b = plan("[grid]\nseed = [0, 1, 2]\n").unwrap();
        let e = format!("{:#}", b.claim(&sweep).unwrap_err());
        assert!(e.contains("holds another sweep"), "{e}");
        assert_eq!(std::fs::read(sweep.plan()).unwrap(), before);
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
