//! What bothered a new user in the first hour, each as a test on small runs.

mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{assert_clean_error, lottery, stderr, stdout, temp};

fn tiny(out: &Path, levels: &str) -> Vec<String> {
    [
        "run",
        "--model",
        "mlp_20",
        "--iterations",
        "60",
        "--eval-every",
        "30",
        "--controls",
        "reinit",
        "--levels",
        levels,
        "--out",
        out.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec()
}

/// Runs [`tiny`] with `extra` flags, asserting it succeeds.
fn run_tiny(out: &Path, levels: &str, extra: &[&str]) -> std::process::Output {
    let mut args = tiny(out, levels);
    args.extend(extra.iter().map(|s| s.to_string()));
    let o = lottery(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    o
}

/// Runs `args` with stdout a pipe that is closed after the first line is read.
fn with_closed_pipe(args: &[String]) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lottery"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut first = [0u8; 1];
    // One byte is enough: the pipe was written to; then the reader goes away.
    let _ = out.read(&mut first);
    drop(out);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (child.wait().unwrap(), err)
}

#[test]
fn a_closed_pipe_neither_kills_an_experiment_nor_a_report() {
    let root = temp("pipe");
    let exp = root.join("exp");
    let (status, err) = with_closed_pipe(&tiny(&exp, "2"));
    assert!(status.success(), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // The experiment went on to the end though nobody read its table.
    assert!(exp.join("summary.json").is_file());
    assert!(exp.join("level_2/reinit/result.json").is_file());
    let (status, err) = with_closed_pipe(&["report".into(), exp.display().to_string()]);
    assert!(status.success() && !err.contains("panicked"), "{err}");
    std::fs::remove_dir_all(root).ok();
}

#[test]
fn a_failed_start_writes_nothing_a_refusal_names_the_keys_and_more_levels_extend() {
    let root = temp("start");
    let exp = root.join("exp");
    let mut args = tiny(&exp, "1");
    args.extend(["--data-dir".into(), "/nonexistent".into()]);
    let o = lottery(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_clean_error(&o, &["/nonexistent"]);
    assert!(
        !exp.join("config.json").exists(),
        "nothing written before the data loaded"
    );

    run_tiny(&exp, "1", &[]);
    let level1 = std::fs::read(exp.join("level_1/ticket/weights.safetensors")).unwrap();

    // Other settings: refused, naming each differing key with both values.
    let mut other = tiny(&exp, "1");
    other.extend(["--lr".into(), "0.01".into(), "--seed".into(), "3".into()]);
    let o = lottery(&other.iter().map(String::as_str).collect::<Vec<_>>());
    assert_clean_error(&o, &["train.lr: 0.0012 → 0.01", "seed: 0 → 3"]);

    // More levels: the same computation, extended.
    run_tiny(&exp, "2", &[]);
    assert!(exp.join("level_2/ticket/result.json").is_file());
    assert_eq!(
        std::fs::read(exp.join("level_1/ticket/weights.safetensors")).unwrap(),
        level1,
        "level 1 was read back, not retrained"
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(exp.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["levels"].as_array().unwrap().len(), 3);
    std::fs::remove_dir_all(root).ok();
}

#[test]
fn report_shows_an_unfinished_experiment_and_what_is_left() {
    let root = temp("unfinished");
    let exp = root.join("exp");
    run_tiny(&exp, "3", &[]);
    // As a kill would leave it: no summary, level 2's control and level 3 unfinished.
    std::fs::remove_file(exp.join("summary.json")).unwrap();
    std::fs::remove_file(exp.join("level_2/reinit/result.json")).unwrap();
    std::fs::remove_dir_all(exp.join("level_3")).unwrap();
    let o = lottery(&["report", exp.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with(char::is_numeric))
        .collect();
    assert_eq!(rows.len(), 3, "{text}");
    assert!(
        rows[2].contains(" - "),
        "level 2's control is not done: {text}"
    );
    assert!(
        text.contains("level 2: reinit") && text.contains("level 3"),
        "{text}"
    );

    // A folder that is no experiment says so, once.
    let o = lottery(&["report", root.to_str().unwrap()]);
    assert_clean_error(&o, &["no experiment"]);
    std::fs::remove_dir_all(root).ok();
}

#[test]
fn rare_evaluation_is_pointed_out() {
    let root = temp("rare");
    let o = lottery(&[
        "train",
        "--model",
        "mlp_20",
        "--iterations",
        "20",
        "--out",
        root.join("t").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("--eval-every 100 is more than --iterations 20"),
        "{}",
        stdout(&o)
    );
    // --print-config stays pure TOML.
    let o = lottery(&["run", "--print-config", "--iterations", "200"]);
    assert!(!stdout(&o).contains("note") && !stderr(&o).contains("eval-every"));
    std::fs::remove_dir_all(root).ok();
}

#[test]
fn errors_say_their_cause_once_with_the_next_step() {
    let root = temp("errors");
    let o = lottery(&["train", "--data-dir", "/nonexistent", "--iterations", "1"]);
    assert_clean_error(&o, &["t10k-labels-idx1-ubyte", "raw or .gz"]);
    assert_eq!(stderr(&o).matches("not found").count(), 1, "{}", stderr(&o));

    let exp = root.join("exp");
    run_tiny(&exp, "1", &[]);
    let o = lottery(&["infer", exp.to_str().unwrap()]);
    assert_clean_error(&o, &["is a directory", "lottery compact"]);

    // Compacting the dense level grows the file, and says so; compacting a compact model is
    // answered with what to do instead.
    let lsm = root.join("dense.lsm");
    let o = lottery(&[
        "compact",
        exp.to_str().unwrap(),
        "--level",
        "0",
        "-o",
        lsm.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let dense_bytes = (784 * 20 + 20 + 20 * 10 + 10) * 4;
    let file_bytes = std::fs::metadata(&lsm).unwrap().len() as usize;
    let says = if file_bytes > dense_bytes {
        "larger"
    } else {
        "smaller"
    };
    assert!(
        stdout(&o).contains(says),
        "{file_bytes} vs {dense_bytes}: {}",
        stdout(&o)
    );
    let o = lottery(&[
        "compact",
        lsm.to_str().unwrap(),
        "-o",
        root.join("again.lsm").to_str().unwrap(),
    ]);
    assert_clean_error(&o, &["already a compact model", "lottery infer"]);

    // A `lottery train` folder is not an experiment: report says which it is.
    let trained = root.join("trained");
    let o = lottery(&[
        "train",
        "--model",
        "mlp_20",
        "--iterations",
        "20",
        "--eval-every",
        "20",
        "--out",
        trained.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = lottery(&["report", trained.to_str().unwrap()]);
    assert_clean_error(&o, &["lottery train"]);
    std::fs::remove_dir_all(root).ok();
}

#[test]
fn an_idx_dataset_needs_its_directory() {
    let o = lottery(&["train", "--dataset", "mnist-format", "--iterations", "1"]);
    assert_clean_error(&o, &["--data-dir", "mnist-format"]);
    let o = lottery(&[
        "run",
        "--dataset",
        "fashion-mnist",
        "--iterations",
        "1",
        "--levels",
        "0",
    ]);
    assert_clean_error(&o, &["--data-dir"]);
}

#[test]
fn data_exit_codes_are_consistent() {
    let empty = temp("nodata");
    // Missing, listed or asked for: exit 0, said on the line.
    for args in [
        vec![
            "data",
            "--dataset",
            "cifar10",
            "--data-dir",
            empty.to_str().unwrap(),
        ],
        vec![
            "data",
            "--dataset",
            "mnist",
            "--data-dir",
            empty.to_str().unwrap(),
        ],
    ] {
        let o = lottery(&args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert!(stdout(&o).contains("missing"), "{}", stdout(&o));
    }
    // Broken: exit 1.
    std::fs::write(empty.join("train-images-idx3-ubyte.gz"), b"junk").unwrap();
    let o = lottery(&[
        "data",
        "--dataset",
        "mnist",
        "--data-dir",
        empty.to_str().unwrap(),
    ]);
    assert!(
        !o.status.success() && stdout(&o).contains("BROKEN"),
        "{}",
        stdout(&o)
    );
    std::fs::remove_dir_all(empty).ok();
}

#[test]
fn infer_checks_against_the_variant_it_was_compacted_from() {
    let root = temp("provenance");
    let exp = root.join("exp");
    run_tiny(&exp, "1", &[]);
    let lsm = root.join("reinit.lsm");
    let o = lottery(&[
        "compact",
        exp.to_str().unwrap(),
        "--variant",
        "reinit",
        "-o",
        lsm.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = lottery(&[
        "infer",
        lsm.to_str().unwrap(),
        "--reference",
        exp.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("level_1/reinit"), "{}", stdout(&o));
    std::fs::remove_dir_all(root).ok();
}

#[test]
fn what_a_researcher_looks_for_is_there() {
    let root = temp("researcher");
    let exp = root.join("exp");
    let o = run_tiny(&exp, "1", &[]);
    let text = stdout(&o);
    // Piped: a line per training; the early-stop accuracy beside the final one; the time taken.
    assert!(text.contains("# level 1 reinit: trained"), "{text}");
    assert!(text.contains("stop acc%"), "{text}");
    assert!(text.contains(" min ") && text.contains(" s"), "{text}");

    let o = lottery(&["report", exp.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = std::fs::read_to_string(exp.join("results.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("level,weights_remaining"), "{csv}");
    assert_eq!(
        lines.len(),
        1 + 3,
        "level 0 ticket, level 1 ticket and reinit: {csv}"
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(exp.join("summary.json")).unwrap()).unwrap();
    let acc = summary["levels"][1]["reinit"]["test_accuracy"]
        .as_f64()
        .unwrap();
    let row: Vec<&str> = lines
        .iter()
        .find(|l| l.starts_with("1,") && l.contains(",reinit,"))
        .unwrap()
        .split(',')
        .collect();
    assert_eq!(row[4].parse::<f64>().unwrap(), acc);
    assert!(
        row[9].parse::<f64>().unwrap() > 0.0,
        "seconds recorded: {row:?}"
    );
    std::fs::remove_dir_all(root).ok();
}

/// Every flag the README shows in a `lottery …` command line exists in that command's `--help`,
/// and the help shows the defaults the README's training section states.
#[test]
fn readme_and_help_agree() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    let mut checked = 0;
    for line in readme.lines() {
        let line = line.trim().trim_end_matches('\\');
        let Some(rest) = line
            .strip_prefix("lottery ")
            .or_else(|| line.strip_prefix("cargo run --release -- "))
        else {
            continue;
        };
        let words: Vec<&str> = rest.split_whitespace().collect();
        // `bench` has subcommands; everything else is one word.
        let cmd: Vec<&str> = if words.first() == Some(&"bench") {
            words[..2].to_vec()
        } else {
            words[..1].to_vec()
        };
        let mut args = cmd.clone();
        args.push("--help");
        let mut help = stdout(&lottery(&args));
        assert!(!help.is_empty(), "`lottery {}` has no help", cmd.join(" "));
        if cmd == ["branch"] {
            // A branch's own settings are listed by `lottery branch --list`.
            help += &stdout(&lottery(&["branch", "--list"]));
        }
        for w in words.iter().take_while(|w| !w.starts_with('#')) {
            if let Some(flag) = w.strip_prefix("--") {
                let flag = flag.split('=').next().unwrap();
                assert!(
                    help.contains(&format!("--{flag}")),
                    "README's `lottery {}` uses --{flag}, which its --help does not list",
                    cmd.join(" ")
                );
                checked += 1;
            }
        }
    }
    assert!(
        checked > 20,
        "only {checked} flags found in README command lines"
    );
    // Every flag of `run` says what it does, and the settings show the quick preset's value.
    let help = stdout(&lottery(&["run", "--help"]));
    for line in help.lines().filter(|l| l.trim_start().starts_with("--")) {
        let described = line.trim_start().split_once("  ").map(|(_, d)| d.trim());
        assert!(
            described.is_some_and(|d| !d.is_empty()),
            "undescribed: {line}"
        );
    }
    assert!(
        help.contains("[quick: 2500]") && help.contains("[quick: 11]"),
        "{help}"
    );
    let help = stdout(&lottery(&["run", "--preset", "conv2-cifar10", "--help"]));
    assert!(help.contains("[conv2-cifar10: 20000]"), "{help}");
    // One name per concept: a file or directory to write is --out everywhere, a batch is
    // --batch-size, parallelism is --jobs.
    for (cmd, flags) in [
        (vec!["compact"], vec!["--out"]),
        (vec!["export"], vec!["--out"]),
        (vec!["prune"], vec!["--out", "--batch-size"]),
        (vec!["infer"], vec!["--batch-size", "--jobs"]),
        (vec!["bench", "infer"], vec!["--jobs"]),
        (vec!["run"], vec!["--out", "--jobs", "--batch-size"]),
    ] {
        let mut args = cmd.clone();
        args.push("--help");
        let help = stdout(&lottery(&args));
        for f in flags {
            assert!(help.contains(f), "`lottery {}` lacks {f}", cmd.join(" "));
        }
    }
    // The README's training defaults: LeNet-300-100, Adam 1.2e-3, batch 60, 50,000 iterations,
    // 5,000 held out, evaluation every 100.
    let help = stdout(&lottery(&["train", "--help"]));
    for want in [
        "[default: lenet_300_100]",
        "[default: adam]",
        "[default: 0.0012]",
        "[default: 60]",
        "[default: 50000]",
        "[default: 5000]",
        "[default: 100]",
    ] {
        assert!(help.contains(want), "train --help lacks {want}");
    }
}
