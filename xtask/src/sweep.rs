//! `cargo xtask sweep [--replicates N]`: every metric of `memscan scan` against the injected
//! exact-copy fraction p (issue 4's monotonicity check).
//!
//! Runs `memscan bench datasets/suites/inject-p-sweep.toml --keep-data --seed S` (CT
//! phantoms, inject identity cells at p = 0, 0.1, 0.5, 1), audits every kept cell with
//! `memscan scan --groups --seed S` (the bench's patient file), and writes
//! `reports/reference/inject-p-sweep.md`:
//!
//! - for seed 0, one row per metric: its documented direction under more memorization, the
//!   value at each p (95 % bootstrap interval for the attacks) and whether the row is
//!   monotone in that direction;
//! - with `--replicates N` (default 10), the same sweep at seeds 0 to N − 1: per row the mean at
//!   each p, whether the means are monotone, and in how many of the N runs the row was. A
//!   seed re-draws everything random: the phantoms, the copied images, the novel subset, the
//!   member sample and the holdout split. A row whose effect is smaller than its sampling
//!   noise shows up here, where one seed's table cannot tell luck from signal.
//!
//! The seed-0 run keeps its data under `target/sweep/seed-0`; the replicates keep only their
//! audits. A `## Notes` section already in the report (hand-written analysis) is kept.

use crate::{cargo, root};
use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Up (`+1`): grows with memorization; down (`-1`): shrinks.
const ROWS: &[(&str, &str, i8)] = &[
    ("copy rate @ FPR 1 %", "/metrics/copy_rate/0/rate", 1),
    ("copy rate @ FPR 0.1 %", "/metrics/copy_rate/1/rate", 1),
    ("ratio-test rate (d1/d2 < 1/3)", "/metrics/ratio_rate", 1),
    (
        "training images copied",
        "/metrics/train_copied_fraction",
        1,
    ),
    (
        "top-1 cosine, median",
        "/metrics/similarity/synthetic/p50",
        1,
    ),
    ("AuthPct of synthetic", "/metrics/authpct/synthetic", -1),
    ("C_T", "/metrics/c_t/value", -1),
    (
        "DCR: share closer to train",
        "/metrics/dcr/closer_to_train_share",
        1,
    ),
    ("identifiability", "/metrics/identifiability/score", 1),
    ("mDCR", "/metrics/mdcr/value", -1),
    (
        "patients with a copied image",
        "/metrics/groups/copied/fraction",
        1,
    ),
];

const ATTACKS: &[&str] = &[
    "distance",
    "distance_calibrated",
    "monte_carlo",
    "density_ratio",
];
const ATTACK_KEYS: &[(&str, &str)] = &[
    ("AUC", "auc"),
    ("TPR @ FPR ≤ 1 %", "tpr_at_fpr_0_01"),
    ("TPR @ FPR ≤ 0.1 %", "tpr_at_fpr_0_001"),
];

/// Replicates when `--replicates` is not given.
const DEFAULT_REPLICATES: u64 = 10;

/// One table row: its name, where its value is in summary.json, its direction, and where
/// its 95 % interval is (attacks only).
struct Row {
    name: String,
    ptr: String,
    dir: i8,
    ci: Option<String>,
}

fn rows() -> Vec<Row> {
    let plain = ROWS.iter().map(|&(name, ptr, dir)| Row {
        name: name.to_string(),
        ptr: ptr.to_string(),
        dir,
        ci: None,
    });
    let attacks = ATTACKS.iter().flat_map(|a| {
        ATTACK_KEYS.iter().map(move |(label, key)| Row {
            name: format!("MIA {a} {label}"),
            ptr: format!("/metrics/mia/{a}/{key}"),
            dir: 1,
            ci: Some(format!("/metrics/mia/{a}/ci95/{key}")),
        })
    });
    plain.chain(attacks).collect()
}

/// One sweep: the fraction p of every cell (ascending) and its summary.json.
struct Sweep {
    fractions: Vec<f64>,
    summaries: Vec<Value>,
}

fn run_memscan(bin: &Path, args: &[&str], quiet: bool) -> Result<()> {
    let mut cmd = Command::new(bin);
    if quiet {
        // The verdict lines of 40 scans would bury the progress lines.
        cmd.stdout(Stdio::null());
    } else {
        eprintln!("$ memscan {}", args.join(" "));
    }
    let status = cmd
        .args(args)
        .status()
        .with_context(|| format!("running {}", bin.display()))?;
    // 0: no budget exceeded; 1: a budget (none here) or memorization verdict is not an error.
    if !matches!(status.code(), Some(0) | Some(1)) {
        bail!("`memscan {}` failed with {status}", args.join(" "));
    }
    Ok(())
}

fn fraction_of(cell: &Path) -> Option<f64> {
    let name = cell.file_name()?.to_str()?;
    name.strip_prefix("inject_p")?
        .split('_')
        .next()?
        .parse()
        .ok()
}

fn fmt(v: f64) -> String {
    if v == 0.0 || (v.abs() >= 1e-3 && v.abs() < 1e4) {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{v:.3e}")
    }
}

/// `true` when `v` never moves against `dir` (`+1`: non-decreasing, `-1`: non-increasing).
fn monotone(v: &[f64], dir: i8) -> bool {
    v.windows(2).all(|w| match dir {
        1 => w[1] >= w[0],
        _ => w[1] <= w[0],
    })
}

fn get(v: &Value, ptr: &str) -> Result<f64> {
    v.pointer(ptr)
        .and_then(Value::as_f64)
        .with_context(|| format!("summary.json has no number at {ptr}"))
}

/// The row's value in every cell of a sweep.
fn values(sweep: &Sweep, row: &Row) -> Result<Vec<f64>> {
    sweep.summaries.iter().map(|s| get(s, &row.ptr)).collect()
}

fn parse_replicates(args: &[&str]) -> Result<u64> {
    match args {
        [] => Ok(DEFAULT_REPLICATES),
        ["--replicates", n] => {
            let n: u64 = n
                .parse()
                .with_context(|| format!("--replicates {n}: not a whole number"))?;
            ensure!(n >= 1, "--replicates must be at least 1");
            Ok(n)
        }
        _ => bail!("usage: cargo xtask sweep [--replicates N]"),
    }
}

pub fn run(args: &[&str]) -> Result<()> {
    let replicates = parse_replicates(args)?;
    let root = root();
    cargo(&["build", "--release", "-p", "memscan"])?;
    let bin = root.join("target/release/memscan");
    let out = root.join("target/sweep");
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("removing {}", out.display()))?;
    }
    let suite = root.join("datasets/suites/inject-p-sweep.toml");
    let mut sweeps = Vec::new();
    for seed in 0..replicates {
        if seed > 0 {
            eprintln!("replicate {} of {replicates} (seed {seed})", seed + 1);
        }
        let dir = out.join(format!("seed-{seed}"));
        let replicate = seed > 0;
        sweeps.push(sweep(&bin, &suite, &dir, seed, replicate)?);
        if replicate {
            // Keep the summaries, drop the images (about 120 MB per seed).
            remove_npy(&dir)?;
        }
    }
    let mut md = table(&sweeps[0])?;
    if sweeps.len() > 1 {
        md.push_str(&replicate_table(&sweeps)?);
    }
    let dest = root.join("reports/reference/inject-p-sweep.md");
    if let Ok(old) = std::fs::read_to_string(&dest) {
        if let Some(at) = old.find("\n## Notes") {
            md.push_str(&old[at..]);
        }
    }
    std::fs::write(&dest, &md).with_context(|| format!("writing {}", dest.display()))?;
    print!("{md}");
    eprintln!("wrote {}", dest.display());
    Ok(())
}

/// Removes every `.npy` file under `dir`.
fn remove_npy(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            remove_npy(&path)?;
        } else if path.extension().is_some_and(|e| e == "npy") {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(())
}

/// Runs the bench suite at `seed` into `out` and audits every cell.
fn sweep(bin: &Path, suite: &Path, out: &Path, seed: u64, quiet: bool) -> Result<Sweep> {
    let s = |p: &Path| p.to_str().context("UTF-8 path").map(str::to_string);
    let seed_s = seed.to_string();
    run_memscan(
        bin,
        &[
            "bench",
            &s(suite)?,
            "--keep-data",
            "--seed",
            &seed_s,
            "--out",
            &s(out)?,
            "-q",
        ],
        quiet,
    )?;
    let data = out.join("data/ct-phantom-sweep");
    let mut cells: Vec<(f64, PathBuf)> = std::fs::read_dir(&data)
        .with_context(|| format!("reading {}", data.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| fraction_of(&p).map(|f| (f, p)))
        .collect();
    cells.sort_by(|a, b| a.0.total_cmp(&b.0));
    if cells.len() < 2 {
        bail!("expected the sweep's inject cells under {}", data.display());
    }
    let mut summaries = Vec::new();
    for (_, cell) in &cells {
        let audit = cell.join("audit");
        run_memscan(
            bin,
            &[
                "scan",
                "--train",
                &s(&data.join("train.npy"))?,
                "--synthetic",
                &s(&cell.join("synthetic.npy"))?,
                "--holdout",
                &s(&data.join("holdout.npy"))?,
                "--groups",
                &s(&data.join("groups.csv"))?,
                "--size",
                "32",
                "--seed",
                &seed_s,
                "--no-images",
                "--out",
                &s(&audit)?,
                "-q",
            ],
            quiet,
        )?;
        let path = audit.join("summary.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let v: Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        summaries.push(v);
    }
    Ok(Sweep {
        fractions: cells.into_iter().map(|(f, _)| f).collect(),
        summaries,
    })
}

/// The header row and rule of a table with one column per fraction.
fn header(md: &mut String, first: &str, fractions: &[f64], last: &[&str]) -> Result<()> {
    write!(md, "| {first} | direction |")?;
    for p in fractions {
        write!(md, " p = {} |", fmt(*p))?;
    }
    writeln!(md, " {} |", last.join(" | "))?;
    write!(md, "|---|:-:|")?;
    for _ in fractions {
        write!(md, "---:|")?;
    }
    writeln!(md, "{}", ":-:|".repeat(last.len()))?;
    Ok(())
}

fn arrow(dir: i8) -> &'static str {
    if dir > 0 {
        "↑"
    } else {
        "↓"
    }
}

fn table(sweep: &Sweep) -> Result<String> {
    let first = &sweep.summaries[0];
    let mia = |k: &str| first.pointer(&format!("/metrics/mia/{k}"));
    let mut md = String::new();
    writeln!(md, "# Every metric vs the injected exact-copy fraction p\n")?;
    writeln!(
        md,
        "Generated by `cargo xtask sweep`: `memscan bench datasets/suites/inject-p-sweep.toml \
         --keep-data --seed 0` (CT phantoms 32×32, pixel embedder; {} train / {} holdout images \
         from disjoint patients of 3 slices; {} synthetic images of which round(p·n) are exact \
         copies of distinct training images, the rest novel patients), then per cell `memscan \
         scan --train train.npy --synthetic synthetic.npy --holdout holdout.npy --groups \
         groups.csv --size 32 --seed 0`. MIA setup: {}. Members {}, non-members {}, reference \
         {}. Attack cells give the value and its 95 % stratified bootstrap interval (1000 \
         resamples).\n",
        get(first, "/metrics/train_copied/n_train")?,
        get(first, "/metrics/similarity/holdout/n")?,
        get(first, "/metrics/similarity/synthetic/n")?,
        mia("setup").and_then(Value::as_str).unwrap_or("?"),
        get(first, "/metrics/mia/n_members")?,
        get(first, "/metrics/mia/n_nonmembers")?,
        get(first, "/metrics/mia/n_reference")?,
    )?;
    writeln!(md, "## Seed 0\n")?;
    header(&mut md, "metric", &sweep.fractions, &["monotone"])?;
    let mut bad = Vec::new();
    for row in rows() {
        let vals = values(sweep, &row)?;
        let shown: String = sweep
            .summaries
            .iter()
            .zip(&vals)
            .map(|(s, &v)| {
                let ci = row
                    .ci
                    .as_deref()
                    .and_then(|p| s.pointer(p))
                    .and_then(Value::as_array)
                    .map(|c| c.iter().filter_map(Value::as_f64).collect::<Vec<f64>>());
                match ci {
                    Some(c) if c.len() == 2 => {
                        format!(" {} [{}, {}] |", fmt(v), fmt(c[0]), fmt(c[1]))
                    }
                    _ => format!(" {} |", fmt(v)),
                }
            })
            .collect();
        let ok = monotone(&vals, row.dir);
        if !ok {
            bad.push(row.name.clone());
        }
        let mark = if ok { "yes" } else { "**no**" };
        writeln!(md, "| {} | {} |{shown} {mark} |", row.name, arrow(row.dir))?;
    }
    writeln!(md)?;
    if bad.is_empty() {
        writeln!(
            md,
            "Every row moves monotonically in its documented direction as p grows."
        )?;
    } else {
        writeln!(
            md,
            "Not monotone in the documented direction: {}.",
            bad.join(", ")
        )?;
    }
    Ok(md)
}

/// Per row over all sweeps: the mean at each p, whether the means are monotone, and in how
/// many sweeps the row was.
fn replicate_table(sweeps: &[Sweep]) -> Result<String> {
    let fractions = &sweeps[0].fractions;
    for s in sweeps {
        ensure!(
            &s.fractions == fractions,
            "replicates have different cells: {:?} vs {fractions:?}",
            s.fractions
        );
    }
    let n = sweeps.len();
    let mut md = String::new();
    writeln!(md, "\n## {n} replicates (seeds 0–{})\n", n - 1)?;
    writeln!(
        md,
        "The same sweep at `--seed 0` to `--seed {}` (bench and scan): every seed re-draws the \
         phantoms, the copied images, the novel subset, the member sample and the holdout \
         split. Per row: the mean over the {n} runs at each p (± the standard deviation of one \
         run), whether the means move in the documented direction, and in how many runs the \
         row itself did.\n",
        n - 1
    )?;
    header(
        &mut md,
        "metric",
        fractions,
        &["means monotone", "runs monotone"],
    )?;
    let rows = rows();
    let mut always = 0;
    for row in &rows {
        let per_run = sweeps
            .iter()
            .map(|s| values(s, row))
            .collect::<Result<Vec<_>>>()?;
        let stats: Vec<(f64, f64)> = (0..fractions.len())
            .map(|i| mean_sd(per_run.iter().map(|v| v[i])))
            .collect();
        let means: Vec<f64> = stats.iter().map(|s| s.0).collect();
        let runs_ok = per_run.iter().filter(|v| monotone(v, row.dir)).count();
        if runs_ok == n {
            always += 1;
        }
        let cells: String = stats
            .iter()
            .map(|(m, sd)| format!(" {} ± {} |", fmt(*m), fmt(*sd)))
            .collect();
        let mean_mark = if monotone(&means, row.dir) {
            "yes"
        } else {
            "**no**"
        };
        let runs = if runs_ok == n {
            format!("{runs_ok}/{n}")
        } else {
            format!("**{runs_ok}/{n}**")
        };
        writeln!(
            md,
            "| {} | {} |{cells} {mean_mark} | {runs} |",
            row.name,
            arrow(row.dir)
        )?;
    }
    writeln!(
        md,
        "\n{always} of {} rows are monotone in every one of the {n} runs.",
        rows.len()
    )?;
    Ok(md)
}

/// Mean and sample standard deviation (0 for one value).
fn mean_sd(xs: impl Iterator<Item = f64>) -> (f64, f64) {
    let v: Vec<f64> = xs.collect();
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    // Rounding leaves ~1e-17 where every run has the same value: that is 0.
    let sd = var.sqrt();
    (mean, if sd <= 1e-12 * mean.abs() { 0.0 } else { sd })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotone_follows_the_direction_and_allows_ties() {
        assert!(monotone(&[0.0, 0.1, 0.1, 1.0], 1));
        assert!(!monotone(&[0.007, 0.004, 0.01, 1.0], 1));
        assert!(monotone(&[1.2, 1.2, 0.4, 0.0], -1));
        assert!(!monotone(&[1.2, 1.3, 0.4, 0.0], -1));
    }

    #[test]
    fn mean_sd_matches_hand_values() {
        let (m, sd) = mean_sd([1.0, 2.0, 3.0, 4.0].into_iter());
        assert!((m - 2.5).abs() < 1e-12);
        // Sample variance: (2.25 + 0.25 + 0.25 + 2.25) / 3 = 5/3.
        assert!((sd - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(mean_sd([0.3].into_iter()), (0.3, 0.0));
        assert_eq!(mean_sd([0.1; 10].into_iter()).1, 0.0);
    }

    /// Sets the number at `ptr`, making the objects and arrays on the way.
    fn put(root: &mut Value, ptr: &str, value: f64) {
        let mut at = root;
        for seg in ptr.trim_start_matches('/').split('/') {
            at = match seg.parse::<usize>() {
                Ok(i) => {
                    if !at.is_array() {
                        *at = Value::Array(Vec::new());
                    }
                    let arr = at.as_array_mut().expect("array");
                    arr.resize(arr.len().max(i + 1), Value::Null);
                    &mut arr[i]
                }
                Err(_) => {
                    if !at.is_object() {
                        *at = Value::Object(Default::default());
                    }
                    let obj = at.as_object_mut().expect("object");
                    obj.entry(seg).or_insert(Value::Null)
                }
            };
        }
        *at = Value::from(value);
    }

    const MC: &str = "/metrics/mia/monte_carlo/tpr_at_fpr_0_01";

    /// Three cells; every row moves in its direction except `MC`, which takes `mc`.
    fn sweep(mc: [f64; 3]) -> Sweep {
        let dirs: std::collections::HashMap<String, i8> =
            rows().into_iter().map(|r| (r.ptr, r.dir)).collect();
        Sweep {
            fractions: vec![0.0, 0.5, 1.0],
            summaries: (0..3)
                .map(|i| {
                    let mut v = Value::Null;
                    for (ptr, dir) in &dirs {
                        let x = if ptr == MC {
                            mc[i]
                        } else {
                            f64::from(*dir) * i as f64
                        };
                        put(&mut v, ptr, x);
                    }
                    for ptr in [
                        "/metrics/train_copied/n_train",
                        "/metrics/similarity/holdout/n",
                        "/metrics/similarity/synthetic/n",
                        "/metrics/mia/n_members",
                        "/metrics/mia/n_nonmembers",
                        "/metrics/mia/n_reference",
                    ] {
                        put(&mut v, ptr, 10.0);
                    }
                    v
                })
                .collect(),
        }
    }

    #[test]
    fn replicate_table_counts_monotone_runs_and_averages() {
        let sweeps = [
            sweep([0.01, 0.005, 1.0]),
            sweep([0.01, 0.02, 1.0]),
            sweep([0.01, 0.02, 1.0]),
        ];
        let md = replicate_table(&sweeps).unwrap();
        let line = md
            .lines()
            .find(|l| l.starts_with("| MIA monte_carlo TPR @ FPR ≤ 1 % |"))
            .unwrap();
        // Means 0.01, 0.015, 1: monotone; one run of three is not.
        assert!(line.contains(" 0.015 ± 0.0087 |"), "{line}");
        assert!(line.ends_with(" yes | **2/3** |"), "{line}");
        let c_t = md.lines().find(|l| l.starts_with("| C_T | ↓ |")).unwrap();
        assert!(c_t.ends_with(" -2 ± 0 | yes | 3/3 |"), "{c_t}");
        assert!(md.contains("22 of 23 rows are monotone in every one of the 3 runs."));
        // The seed-0 table marks the first run's dip, and only it.
        let t = table(&sweeps[0]).unwrap();
        assert!(t.contains("| MIA monte_carlo TPR @ FPR ≤ 1 % | ↑ | 0.01 | 0.005 | 1 | **no** |"));
        assert!(t.contains(
            "Not monotone in the documented direction: MIA monte_carlo TPR @ FPR ≤ 1 %."
        ));
        assert!(table(&sweeps[1])
            .unwrap()
            .contains("Every row moves monotonically"));
    }
}
