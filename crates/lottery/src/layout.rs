//! Every path inside a run directory or a sweep directory, in one place.
//!
//! An experiment directory (`lottery run`), a training directory (`lottery train`), a pruned
//! network (`lottery prune`) and a branch (`DIR/branches/<name>-<hash>/`) share one vocabulary:
//! `config.json` claims the directory for one configuration, a variant's `result.json` is written
//! last and marks it complete, `summary.json` is the table a report reads. Code elsewhere asks
//! this module for a path and never spells a file name itself.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::files::{read_json, write_json};

/// A run directory: an experiment, one of its replicates, a training run or a branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RunDir { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The settings that produced the directory; its presence claims it.
    pub fn config(&self) -> PathBuf {
        self.root.join("config.json")
    }

    /// The identity (name and content hash) of the data the directory was computed on.
    pub fn data_id(&self) -> PathBuf {
        self.root.join("data.json")
    }

    pub fn summary(&self) -> PathBuf {
        self.root.join("summary.json")
    }

    /// The network's starting weights.
    pub fn init(&self) -> PathBuf {
        self.root.join("init.safetensors")
    }

    /// The weights after K iterations of the dense run (`--rewind iter:K`).
    pub fn rewind_point(&self) -> PathBuf {
        self.root.join("rewind.safetensors")
    }

    pub fn plots(&self) -> PathBuf {
        self.root.join("plots")
    }

    /// The level table as CSV (`lottery report`).
    pub fn results_csv(&self) -> PathBuf {
        self.root.join("results.csv")
    }

    /// `lottery prune`'s report on a state dict of an unknown architecture; written last.
    pub fn prune_report(&self) -> PathBuf {
        self.root.join("report.json")
    }

    /// `lottery prune`'s record of what it pruned; marks a pruned-network directory.
    pub fn ticket_info(&self) -> PathBuf {
        self.root.join("ticket.json")
    }

    /// The files of a single training written straight into this directory (`lottery train`,
    /// `lottery prune`).
    pub fn as_variant(&self) -> VariantDir {
        VariantDir {
            dir: self.root.clone(),
        }
    }

    /// Replicate `r` of an experiment with `replicates` of them: the root itself when there is one.
    pub fn replicate(&self, r: usize, replicates: usize) -> RunDir {
        if replicates > 1 {
            RunDir::new(self.root.join(format!("replicate_{r}")))
        } else {
            self.clone()
        }
    }

    /// The replicate whose files stand for the experiment in plots of single trainings.
    pub fn first_replicate(&self) -> RunDir {
        let r0 = self.root.join("replicate_0");
        if r0.is_dir() {
            RunDir::new(r0)
        } else {
            self.clone()
        }
    }

    pub fn level(&self, level: usize) -> PathBuf {
        self.root.join(format!("level_{level}"))
    }

    pub fn variant(&self, level: usize, name: &str) -> VariantDir {
        VariantDir {
            dir: self.level(level).join(name),
        }
    }

    /// Levels with a directory, in order (a level's directory exists once a training began).
    pub fn levels_started(&self) -> Vec<usize> {
        (0..).take_while(|&l| self.level(l).is_dir()).collect()
    }

    /// The highest level at which `variant` finished.
    pub fn last_finished(&self, variant: &str) -> Option<usize> {
        self.levels_started()
            .into_iter()
            .rev()
            .find(|&l| self.variant(l, variant).is_complete())
    }

    pub fn branches(&self) -> PathBuf {
        self.root.join("branches")
    }

    /// `DIR/branches/<name>-<hash>`: where a branch with these settings writes.
    pub fn branch(&self, name: &str, hash: u64) -> RunDir {
        RunDir::new(self.branches().join(format!("{name}-{hash:016x}")))
    }

    /// The branch directories present, as (directory name, path), sorted by name.
    pub fn branch_dirs(&self) -> Vec<(String, RunDir)> {
        let mut found: Vec<(String, RunDir)> = std::fs::read_dir(self.branches())
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("config.json").is_file())
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    RunDir::new(e.path()),
                )
            })
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found
    }

    /// Claims the directory for `config`: writes `config.json`, or accepts an existing one with
    /// the same settings. A different one is refused naming each differing key (old → new), and
    /// nothing is written. `ignored` keys may differ (settings that cannot change a result).
    pub fn claim<C>(&self, config: &C, ignored: &[&str]) -> Result<()>
    where
        C: Serialize + DeserializeOwned,
    {
        let unchanged = self.check(config, ignored)?
            && read_json::<serde_json::Value>(&self.config())?
                == serde_json::to_value(config).expect("configs serialise");
        if !unchanged {
            // New, or the same run with an ignored key changed (the data moved): record it.
            write_json(&self.config(), config)?;
        }
        Ok(())
    }

    /// [`RunDir::claim`] without writing: `Ok(true)` if `config.json` holds these settings
    /// (up to `ignored` keys), `Ok(false)` if there is none, an error if it holds others.
    pub fn check<C>(&self, config: &C, ignored: &[&str]) -> Result<bool>
    where
        C: Serialize + DeserializeOwned,
    {
        let path = self.config();
        let new = serde_json::to_value(config).expect("configs serialise");
        if path.exists() {
            // Read through the type, so a file in an older spelling of the same settings
            // compares equal.
            let old: C = read_json(&path)?;
            let old = serde_json::to_value(&old).expect("configs serialise");
            let diffs: Vec<String> = differences(&old, &new, "")
                .into_iter()
                .filter(|(k, _, _)| !ignored.contains(&k.as_str()))
                .map(|(k, o, n)| format!("{k}: {o} → {n}"))
                .collect();
            if !diffs.is_empty() {
                return Err(Error::config(
                    "out",
                    format!(
                        "{} holds a run with other settings ({}); choose another --out or remove it (nothing was overwritten)",
                        self.root.display(),
                        diffs.join(", ")
                    ),
                ));
            }
            return Ok(true);
        }
        Ok(false)
    }

    /// Claims the directory for data with identity `id`: the same name and content hash as
    /// recorded, wherever the files now live. Data that changed is refused.
    pub fn claim_data(&self, id: &DataId) -> Result<()> {
        let path = self.data_id();
        if path.exists() {
            let old: DataId = read_json(&path)?;
            if old != *id {
                return Err(Error::config(
                    "data-dir",
                    format!(
                        "{} was computed on {} (content {:016x}); the data given now is {} (content {:016x})",
                        self.root.display(),
                        old.name,
                        old.content_hash,
                        id.name,
                        id.content_hash
                    ),
                ));
            }
            return Ok(());
        }
        write_json(&path, id)
    }
}

/// What identifies a dataset across machines and moves: its name and a hash of its contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DataId {
    pub name: String,
    pub content_hash: u64,
}

/// One training's files: weights, mask, metrics, and `result.json`, written last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantDir {
    dir: PathBuf,
}

impl VariantDir {
    pub fn path(&self) -> &Path {
        &self.dir
    }
    pub fn weights(&self) -> PathBuf {
        self.dir.join("weights.safetensors")
    }
    pub fn mask(&self) -> PathBuf {
        self.dir.join("mask.safetensors")
    }
    pub fn metrics(&self) -> PathBuf {
        self.dir.join("metrics.jsonl")
    }
    /// How long the training took (kept apart from the result, which reruns reproduce).
    pub fn timing(&self) -> PathBuf {
        self.dir.join("time.json")
    }
    /// Written last: its presence means every other file of the variant is complete.
    pub fn result(&self) -> PathBuf {
        self.dir.join("result.json")
    }
    pub fn is_complete(&self) -> bool {
        self.result().is_file()
    }
}

/// A sweep directory (`lottery sweep`): its plan, one experiment directory per point, what each
/// task last reported, the Slurm job's script and logs, and the aggregate a report writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepDir {
    root: PathBuf,
}

impl SweepDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        SweepDir { root: root.into() }
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// The points and their settings; its presence claims the directory for one sweep.
    pub fn plan(&self) -> PathBuf {
        self.root.join("plan.json")
    }
    /// Point `name`'s experiment directory (names are hashes of the point's settings).
    pub fn point(&self, name: &str) -> RunDir {
        RunDir::new(self.root.join(name))
    }
    /// What the task of point `index` last said (running on a host, failed with an error).
    pub fn task_state(&self, index: usize) -> PathBuf {
        self.root.join("tasks").join(format!("{index}.json"))
    }
    pub fn slurm(&self) -> PathBuf {
        self.root.join("slurm")
    }
    /// The batch script `--slurm` submits.
    pub fn slurm_script(&self) -> PathBuf {
        self.slurm().join("array.sh")
    }
    /// The ids of the job arrays submitted for this sweep, one per line, oldest first.
    pub fn slurm_jobs(&self) -> PathBuf {
        self.slurm().join("jobs")
    }
    /// The grouped comparison, one row per setting, level and variant.
    pub fn comparison_csv(&self) -> PathBuf {
        self.root.join("comparison.csv")
    }
    pub fn plots(&self) -> PathBuf {
        self.root.join("plots")
    }
}

/// Keys (dotted paths) whose values differ between two JSON values, with both values.
fn differences(
    old: &serde_json::Value,
    new: &serde_json::Value,
    prefix: &str,
) -> Vec<(String, String, String)> {
    use serde_json::Value::Object;
    match (old, new) {
        (Object(a), Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            let null = serde_json::Value::Null;
            keys.into_iter()
                .flat_map(|k| {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    differences(a.get(k).unwrap_or(&null), b.get(k).unwrap_or(&null), &path)
                })
                .collect()
        }
        (a, b) if a == b => vec![],
        (a, b) => vec![(prefix.to_string(), a.to_string(), b.to_string())],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn differences_name_nested_keys_with_both_values() {
        let d = differences(
            &json!({"seed": 0, "train": {"lr": 0.1, "batch_size": 60}, "gone": 1}),
            &json!({"seed": 0, "train": {"lr": 0.2, "batch_size": 60}}),
            "",
        );
        assert_eq!(
            d,
            vec![
                ("gone".into(), "1".into(), "null".into()),
                ("train.lr".into(), "0.1".into(), "0.2".into()),
            ]
        );
    }

    #[test]
    fn claim_refuses_other_settings_and_accepts_ignored_keys() {
        let dir = std::env::temp_dir().join(format!("lottery-claim-{}", std::process::id()));
        let run = RunDir::new(&dir);
        run.claim(&json!({"seed": 0, "data_dir": "a"}), &["data_dir"])
            .unwrap();
        run.claim(&json!({"seed": 0, "data_dir": "b"}), &["data_dir"])
            .unwrap();
        let err = run
            .claim(&json!({"seed": 1, "data_dir": "a"}), &["data_dir"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("seed: 0 → 1"), "{err}");
        // The refused claim left the first config in place.
        let kept: serde_json::Value = read_json(&run.config()).unwrap();
        assert_eq!(kept["seed"], 0);
        let id = DataId {
            name: "mnist".into(),
            content_hash: 7,
        };
        run.claim_data(&id).unwrap();
        run.claim_data(&id).unwrap();
        let other = DataId {
            content_hash: 8,
            ..id
        };
        assert!(run.claim_data(&other).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn variant_paths_and_replicates() {
        let run = RunDir::new("/x");
        assert_eq!(
            run.variant(3, "reinit").result(),
            PathBuf::from("/x/level_3/reinit/result.json")
        );
        assert_eq!(run.replicate(2, 1), run);
        assert_eq!(run.replicate(2, 3).root(), Path::new("/x/replicate_2"));
        assert_eq!(
            run.branch("signs", 0xab).root(),
            Path::new("/x/branches/signs-00000000000000ab")
        );
    }
}
