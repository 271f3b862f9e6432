//! `cargo xtask sweep`: every metric of `memscan scan` against the injected exact-copy
//! fraction p (issue 4's monotonicity check).
//!
//! Runs `memscan bench datasets/suites/inject-p-sweep.toml --keep-data` (CT phantoms, inject
//! identity cells at p = 0, 0.1, 0.5, 1), audits every kept cell with `memscan scan --groups`
//! (the bench's patient file), and writes `reports/reference/inject-p-sweep.md`: one row per
//! metric, its documented direction under more memorization, the value at each p (95 %
//! bootstrap interval for the attacks) and whether the row is monotone in that direction.

use crate::{cargo, root};
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

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

fn run_memscan(bin: &Path, args: &[&str]) -> Result<()> {
    eprintln!("$ memscan {}", args.join(" "));
    let status = Command::new(bin)
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

/// `+1` when `v` is non-decreasing, `-1` when non-increasing (both when constant).
fn monotone(v: &[f64], dir: i8) -> bool {
    v.windows(2).all(|w| match dir {
        1 => w[1] >= w[0],
        _ => w[1] <= w[0],
    })
}

pub fn run(args: &[&str]) -> Result<()> {
    if !args.is_empty() {
        bail!("usage: cargo xtask sweep");
    }
    let root = root();
    cargo(&["build", "--release", "-p", "memscan"])?;
    let bin = root.join("target/release/memscan");
    let out = root.join("target/sweep");
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("removing {}", out.display()))?;
    }
    let suite = root.join("datasets/suites/inject-p-sweep.toml");
    let out_s = out.to_str().context("UTF-8 path")?;
    run_memscan(
        &bin,
        &[
            "bench",
            suite.to_str().context("UTF-8 path")?,
            "--keep-data",
            "--out",
            out_s,
            "-q",
        ],
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
    let s = |p: &Path| p.to_str().expect("UTF-8 path").to_string();
    let mut summaries = Vec::new();
    for (_, cell) in &cells {
        let audit = cell.join("audit");
        run_memscan(
            &bin,
            &[
                "scan",
                "--train",
                &s(&data.join("train.npy")),
                "--synthetic",
                &s(&cell.join("synthetic.npy")),
                "--holdout",
                &s(&data.join("holdout.npy")),
                "--groups",
                &s(&data.join("groups.csv")),
                "--size",
                "32",
                "--seed",
                "0",
                "--no-images",
                "--out",
                &s(&audit),
                "-q",
            ],
        )?;
        let path = audit.join("summary.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let v: Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        summaries.push(v);
    }
    let md = table(&cells, &summaries)?;
    let dest = root.join("reports/reference/inject-p-sweep.md");
    std::fs::write(&dest, &md).with_context(|| format!("writing {}", dest.display()))?;
    print!("{md}");
    eprintln!("wrote {}", dest.display());
    Ok(())
}

fn table(cells: &[(f64, PathBuf)], sums: &[Value]) -> Result<String> {
    let get = |v: &Value, ptr: &str| -> Result<f64> {
        v.pointer(ptr)
            .and_then(Value::as_f64)
            .with_context(|| format!("summary.json has no number at {ptr}"))
    };
    let first = &sums[0];
    let mia = |k: &str| first.pointer(&format!("/metrics/mia/{k}"));
    let mut md = String::new();
    writeln!(md, "# Every metric vs the injected exact-copy fraction p\n")?;
    writeln!(
        md,
        "Generated by `cargo xtask sweep`: `memscan bench datasets/suites/inject-p-sweep.toml \
         --keep-data` (CT phantoms 32×32, pixel embedder; {} train / {} holdout images from \
         disjoint patients of 3 slices; {} synthetic images of which round(p·n) are exact copies \
         of distinct training images, the rest novel patients), then per cell `memscan scan \
         --train train.npy --synthetic synthetic.npy --holdout holdout.npy --groups groups.csv \
         --size 32 --seed 0`. MIA setup: {}. Members {}, non-members {}, reference {}. \
         Attack cells give the value and its 95 % stratified bootstrap interval (1000 \
         resamples).\n",
        get(first, "/metrics/train_copied/n_train")?,
        get(first, "/metrics/similarity/holdout/n")?,
        get(first, "/metrics/similarity/synthetic/n")?,
        mia("setup").and_then(Value::as_str).unwrap_or("?"),
        get(first, "/metrics/mia/n_members")?,
        get(first, "/metrics/mia/n_nonmembers")?,
        get(first, "/metrics/mia/n_reference")?,
    )?;
    write!(md, "| metric | direction |")?;
    for (p, _) in cells {
        write!(md, " p = {} |", fmt(*p))?;
    }
    writeln!(md, " monotone |")?;
    write!(md, "|---|:-:|")?;
    for _ in cells {
        write!(md, "---:|")?;
    }
    writeln!(md, ":-:|")?;
    let mut bad = Vec::new();
    let mut row = |md: &mut String, name: String, dir: i8, vals: Vec<f64>, shown: Vec<String>| {
        let ok = monotone(&vals, dir);
        if !ok {
            bad.push(name.clone());
        }
        let arrow = if dir > 0 { "↑" } else { "↓" };
        let cells: String = shown.iter().map(|s| format!(" {s} |")).collect();
        let mark = if ok { "yes" } else { "**no**" };
        writeln!(md, "| {name} | {arrow} |{cells} {mark} |").expect("write to String");
    };
    for (name, ptr, dir) in ROWS {
        let vals = sums
            .iter()
            .map(|s| get(s, ptr))
            .collect::<Result<Vec<f64>>>()?;
        let shown = vals.iter().map(|&v| fmt(v)).collect();
        row(&mut md, (*name).to_string(), *dir, vals, shown);
    }
    for a in ATTACKS {
        for (label, key) in ATTACK_KEYS {
            let ptr = format!("/metrics/mia/{a}/{key}");
            let vals = sums
                .iter()
                .map(|s| get(s, &ptr))
                .collect::<Result<Vec<f64>>>()?;
            let shown = sums
                .iter()
                .zip(&vals)
                .map(|(s, &v)| {
                    let ci = s.pointer(&format!("/metrics/mia/{a}/ci95/{key}"));
                    match ci
                        .and_then(Value::as_array)
                        .map(|c| c.iter().filter_map(Value::as_f64).collect::<Vec<f64>>())
                    {
                        Some(c) if c.len() == 2 => {
                            format!("{} [{}, {}]", fmt(v), fmt(c[0]), fmt(c[1]))
                        }
                        _ => fmt(v),
                    }
                })
                .collect();
            row(&mut md, format!("MIA {a} {label}"), 1, vals, shown);
        }
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
