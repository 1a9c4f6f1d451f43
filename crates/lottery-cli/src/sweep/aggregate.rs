//! A sweep's results side by side: points grouped by every swept key but the seed, each
//! group's summaries averaged over its seeds (mean, min and max of each variant's metric), the
//! comparison as `comparison.csv`, and one curve per setting and variant in the sweep's plots.

use std::collections::BTreeMap;

use anyhow::Result;
use lottery::files::{read_json, write_atomic};
use lottery::layout::SweepDir;
use lottery::report;
use lottery::results::{Summary, aggregate};
use serde_json::Value;

use super::plan::{Plan, label};

/// Keys whose values are replicates of one setting rather than settings of their own.
const REPLICATE_KEYS: &[&str] = &["seed", "train.data_seed"];

/// The points of one setting.
pub struct Group {
    /// The swept keys but the seed, with this group's values.
    pub settings: Vec<(String, Value)>,
    /// The finished points averaged here.
    pub points: Vec<usize>,
    pub summary: Summary,
}

impl Group {
    pub fn label(&self) -> String {
        label(&self.settings)
    }
}

/// The sweep's finished points grouped and averaged; and the indices of unfinished ones.
pub fn groups(sweep: &SweepDir, plan: &Plan) -> Result<(Vec<Group>, Vec<usize>)> {
    let mut by_setting: BTreeMap<String, (Vec<(String, Value)>, Vec<(usize, Summary)>)> =
        BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut unfinished = Vec::new();
    for (i, p) in plan.points.iter().enumerate() {
        let path = sweep.point(&p.dir).summary();
        if !path.is_file() {
            unfinished.push(i);
            continue;
        }
        let summary: Summary = read_json(&path)?;
        let settings: Vec<(String, Value)> = p
            .settings
            .iter()
            .filter(|(k, _)| !REPLICATE_KEYS.contains(&k.as_str()))
            .cloned()
            .collect();
        let key = label(&settings);
        if !by_setting.contains_key(&key) {
            order.push(key.clone());
        }
        by_setting
            .entry(key)
            .or_insert_with(|| (settings, Vec::new()))
            .1
            .push((i, summary));
    }
    let groups = order
        .into_iter()
        .map(|key| {
            let (settings, runs) = by_setting.remove(&key).expect("every key was inserted");
            // Points of one setting share their levels; an unfinished level would be averaged
            // over fewer seeds, so only the levels every point reached are kept.
            let levels = runs.iter().map(|(_, s)| s.levels.len()).min().unwrap_or(0);
            let reps: Vec<_> = runs
                .iter()
                .map(|(_, s)| s.levels[..levels].to_vec())
                .collect();
            let first = &runs[0].1;
            let summary = Summary {
                metric: first.metric,
                baseline: first.baseline,
                ..aggregate(&reps)
            };
            Group {
                settings,
                points: runs.iter().map(|(i, _)| *i).collect(),
                summary,
            }
        })
        .collect();
    Ok((groups, unfinished))
}

/// One CSV of every group: its settings, how many seeds it averages, then the columns of a
/// run's `results.csv`.
pub fn csv(groups: &[Group]) -> String {
    let keys: Vec<&String> = groups
        .first()
        .map(|g| g.settings.iter().map(|(k, _)| k).collect())
        .unwrap_or_default();
    let mut out = String::new();
    for (gi, g) in groups.iter().enumerate() {
        let table = report::csv(&g.summary, &|_, _| None);
        let mut lines = table.lines();
        let header = lines.next().unwrap_or("");
        if gi == 0 {
            let names: Vec<String> = keys.iter().map(|k| csv_field(k)).collect();
            out.push_str(&format!(
                "{}{}seeds,{header}\n",
                names.join(","),
                if keys.is_empty() { "" } else { "," }
            ));
        }
        let values: Vec<String> = g
            .settings
            .iter()
            .map(|(_, v)| match v {
                Value::String(s) => csv_field(s),
                v => csv_field(&v.to_string()),
            })
            .collect();
        let prefix = if values.is_empty() {
            String::new()
        } else {
            format!("{},", values.join(","))
        };
        for line in lines {
            out.push_str(&format!("{prefix}{},{line}\n", g.points.len()));
        }
    }
    out
}

/// A CSV field, quoted when it holds a comma or a quote.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Prints each group's table, writes `comparison.csv` and the sweep's plots.
pub fn report(sweep: &SweepDir, plan: &Plan) -> Result<Vec<Group>> {
    let (groups, unfinished) = groups(sweep, plan)?;
    for g in &groups {
        let s = &g.summary;
        let variants = report::variants(s);
        outln!(
            "{} — mean of {} point{} (± half the min–max spread)",
            g.label(),
            g.points.len(),
            if g.points.len() == 1 { "" } else { "s" }
        );
        outln!("{}", report::table_header(&variants, s.metric));
        for l in &s.levels {
            outln!("{}", report::table_row(l, &variants, s.metric));
        }
        outln!();
    }
    if !unfinished.is_empty() {
        outln!(
            "unfinished points (left out): {}",
            unfinished
                .iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if groups.is_empty() {
        return Ok(groups);
    }
    write_atomic(&sweep.comparison_csv(), csv(&groups).as_bytes())?;
    outln!("comparison as CSV: {}", sweep.comparison_csv().display());
    let runs: Vec<(String, Summary)> = groups
        .iter()
        .map(|g| (g.label(), g.summary.clone()))
        .collect();
    report::plot_dir(&lottery::layout::RunDir::new(sweep.root()), &runs)?;
    outln!("plots in {}", sweep.plots().display());
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_with_commas_are_quoted() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }
}
