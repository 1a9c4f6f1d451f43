//! End-to-end tests of time-series prediction: `lottery run --preset ts-cnn` (shortened) on the
//! generated series, `lottery train` on a user's CSV file, and the errors of bad series input.

mod common;

use common::{assert_clean_error, lottery, stdout, temp};

/// The test MSE of the ticket at each level, and the naive forecast's, from `summary.json`.
fn mses(dir: &std::path::Path) -> (Vec<f64>, f64) {
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["metric"], "mse", "the summary names its metric");
    let levels = s["levels"].as_array().unwrap();
    let ticket = levels
        .iter()
        .map(|l| l["ticket"]["test_accuracy"].as_f64().unwrap())
        .collect();
    (ticket, s["baseline"].as_f64().unwrap())
}

/// `lottery compact RUN -o LSM`, then `lottery infer LSM --dataset series --reference RUN`:
/// what infer printed (both must succeed).
fn compact_and_infer(run: &std::path::Path, lsm: &std::path::Path) -> String {
    let (run, lsm) = (run.to_str().unwrap(), lsm.to_str().unwrap());
    let o = lottery(&["compact", run, "-o", lsm]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let o = lottery(&["infer", lsm, "--dataset", "series", "--reference", run]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    stdout(&o)
}

#[test]
fn ts_cnn_learns_the_series_and_its_tickets_keep_up() {
    let out = temp("ts-cnn");
    let o = lottery(&[
        "run",
        "--preset",
        "ts-cnn",
        "--model",
        "cnn1d_2x16",
        "--iterations",
        "400",
        "--levels",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    let text = stdout(&o);
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert!(
        text.contains("ticket MSE") && text.contains("reinit MSE") && !text.contains("acc%"),
        "{text}"
    );
    assert!(
        text.contains("naive forecast (repeat the last value): test MSE"),
        "{text}"
    );
    let (ticket, naive) = mses(&out);
    assert_eq!(ticket.len(), 3);
    // The mean absolute error beside the MSE, in the summary and in `lottery report`'s CSV.
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let mae = s["levels"][0]["ticket"]["test_mae"].as_f64().unwrap();
    assert!(
        mae > 0.0 && mae * mae <= ticket[0] * 1.0001,
        "MAE {mae}, MSE {}",
        ticket[0]
    );
    let o = lottery(&["report", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    assert!(
        header.starts_with("level,") && header.ends_with(",seconds,test_mae"),
        "{csv}"
    );
    assert!(csv.lines().skip(1).all(|l| !l.ends_with(',')), "{csv}");
    // Far better than repeating the last value, dense and pruned.
    for (level, mse) in ticket.iter().enumerate() {
        assert!(
            *mse < 0.5 * naive,
            "level {level}: MSE {mse} vs naive {naive}"
        );
    }
    let plots = out.join("plots");
    let svg = std::fs::read_to_string(plots.join("accuracy.svg")).unwrap();
    assert!(
        svg.contains("test MSE (lower is better)"),
        "the plot names the metric"
    );

    // The last ticket deploys: compacted, run on the series' test windows, and equal to the
    // masked network it came from.
    let text = compact_and_infer(&out, &out.join("ticket.lsm"));
    assert!(
        text.contains("test MSE") && text.contains("naive forecast") && text.contains("MAE"),
        "{text}"
    );
    assert!(
        text.contains("against the dense masked network") && !text.contains("same class"),
        "{text}"
    );
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn train_on_a_users_csv_column() {
    let dir = temp("csv");
    let csv = dir.join("prices.csv");
    let mut text = String::from("day,price,volume\n");
    for t in 0..400 {
        let v = (t as f64 / 6.0).sin() + 0.002 * t as f64;
        text.push_str(&format!("d{t},{v:.5},{}\n", 100 + t % 7));
    }
    std::fs::write(&csv, text).unwrap();
    let out = dir.join("run");
    let o = lottery(&[
        "train",
        "--dataset",
        "series",
        "--data-file",
        csv.to_str().unwrap(),
        "--column",
        "price,volume",
        "--target",
        "price",
        "--window",
        "16",
        "--model",
        "cnn1d_1x8",
        "--iterations",
        "200",
        "--batch-size",
        "16",
        "--out",
        out.to_str().unwrap(),
    ]);
    let text = stdout(&o);
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert!(
        text.contains("test MSE") && text.contains("test MAE") && text.contains("naive forecast"),
        "{text}"
    );
    let config = std::fs::read_to_string(out.join("config.json")).unwrap();
    assert!(config.contains("\"target\": \"price\""), "{config}");
    // Two columns of 16 steps: the run's own settings shape the compact model's input.
    let lsm = dir.join("csv.lsm");
    let text = compact_and_infer(&out, &lsm);
    assert!(
        text.contains("largest relative output difference"),
        "{text}"
    );
    // Without the run, the default series (one column of 32) does not fit this model.
    let o = lottery(&["infer", lsm.to_str().unwrap(), "--dataset", "series"]);
    assert_clean_error(&o, &["csv.lsm", "[2, 1, 16]", "[1, 1, 32]"]);

    // Bad input: one line that says what and where.
    let bad = dir.join("bad.csv");
    std::fs::write(&bad, "price\n1.0\n2.0\nabc\n").unwrap();
    let bad_run = dir.join("bad-run");
    let run = |extra: &[&str]| {
        let mut args = vec!["train", "--dataset", "series", "--model", "cnn1d_1x8"];
        args.extend(extra);
        args.extend(["--out", bad_run.to_str().unwrap()]);
        lottery(&args)
    };
    let o = run(&["--data-file", bad.to_str().unwrap()]);
    assert_clean_error(&o, &["bad.csv", "line 4", "`abc` is not a number"]);
    let o = run(&["--data-file", csv.to_str().unwrap(), "--column", "cost"]);
    assert_clean_error(&o, &["no column `cost`", "day, price, volume"]);
    let o = run(&[
        "--data-file",
        csv.to_str().unwrap(),
        "--column",
        "price",
        "--window",
        "300",
    ]);
    assert_clean_error(&o, &["too short", "window of 300"]);
    let o = lottery(&[
        "train",
        "--window",
        "8",
        "--out",
        dir.join("x").to_str().unwrap(),
    ]);
    assert_clean_error(&o, &["apply to --dataset series"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn seeds_study_spreads_and_splits_the_initialisations() {
    let out = temp("seeds");
    let o = lottery(&[
        "seeds",
        "--preset",
        "ts-cnn",
        "--n",
        "3",
        "--model",
        "cnn1d_1x8",
        "--iterations",
        "200",
        "--levels",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    let text = stdout(&o);
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert!(text.contains("dense test MSE over 3 seeds"), "{text}");
    assert!(
        text.contains("better ticket MSE") && text.contains("worse reinit MSE"),
        "{text}"
    );
    let study: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("seeds.json")).unwrap()).unwrap();
    let runs = study["runs"].as_array().unwrap();
    let mut seeds: Vec<u64> = runs.iter().map(|r| r["seed"].as_u64().unwrap()).collect();
    seeds.sort_unstable();
    assert_eq!(seeds, [0, 1, 2], "seeds 0, 1, 2 of the preset's seed 0");
    // One better and two worse seeds, together all of them.
    let halves: Vec<usize> = (0..2)
        .map(|g| study["groups"][g]["seeds"].as_array().unwrap().len())
        .collect();
    assert_eq!(halves, [1, 2]);
    // The seeds differ in their initial weights only: the data order is the preset's.
    for s in &seeds {
        let config = std::fs::read_to_string(out.join(format!("seed-{s}/config.json"))).unwrap();
        let c: serde_json::Value = serde_json::from_str(&config).unwrap();
        assert_eq!(c["seed"].as_u64().unwrap(), *s);
        assert_eq!(c["train"]["data_seed"].as_u64().unwrap(), 0);
    }
    for plot in ["seeds.svg", "seeds_halves.png", "seeds_histogram.svg"] {
        assert!(out.join(plot).is_file(), "{plot}");
    }
    // Rerun: every seed's experiment resumes (finished: read back) to the same study.
    let again = lottery(&[
        "seeds",
        "--preset",
        "ts-cnn",
        "--n",
        "3",
        "--model",
        "cnn1d_1x8",
        "--iterations",
        "200",
        "--levels",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(again.status.success(), "{}", common::stderr(&again));
    let reread: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("seeds.json")).unwrap()).unwrap();
    assert_eq!(reread, study, "a rerun gives the same study");
    let o = lottery(&["seeds", "--n", "1"]);
    assert_clean_error(&o, &["--n", "at least 2"]);
    std::fs::remove_dir_all(&out).unwrap();
}
