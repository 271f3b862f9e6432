//! `memscan demo`: generates the built-in dataset with known copies, audits it like `scan`
//! would, and scores the audit against the ground truth.

use crate::cli::{audit_config, print_verdict, run_audit, DemoArgs};
use anyhow::{Context, Result};
use memscan_datasets::demo::{write_demo, DemoSpec};
use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Instant;

/// Strips a leading `role/` from a ground-truth path so it matches the audit's ids, which are
/// relative to each set's folder.
fn strip_role<'a>(path: &'a str, role: &str) -> &'a str {
    path.strip_prefix(role)
        .and_then(|p| p.strip_prefix('/'))
        .unwrap_or(path)
}

pub fn run(args: &DemoArgs) -> Result<ExitCode> {
    let t0 = Instant::now();
    let data = args.out.join("data");
    // A 1,000-image holdout so that fpr = 0.001 is resolvable.
    let spec = DemoSpec {
        size: args.audit.size.unwrap_or(64),
        seed: args.audit.seed,
        n_holdout: 1000,
        ..DemoSpec::default()
    };
    let truth = write_demo(&data, &spec)
        .with_context(|| format!("writing the demo dataset to {}", data.display()))?;
    println!(
        "demo data: {} (train, holdout, synthetic with {} injected copies; ground truth in truth.csv)",
        data.display(),
        truth.n_copies()
    );
    let mut cfg = audit_config(
        data.join("train"),
        data.join("synthetic"),
        Some(data.join("holdout")),
        &args.audit,
    )?;
    cfg.groups = Some(data.join("groups.csv"));
    let (audit, code) = run_audit(&cfg, &args.out, args.audit.quiet)?;
    print!("{}", memscan_report::render_markdown(&audit.output.summary));

    // Score the primary `copy` flag against the truth.
    let by_syn: HashMap<&str, Option<&str>> = truth
        .rows
        .iter()
        .map(|r| {
            (
                strip_role(&r.synthetic, "synthetic"),
                r.train.as_deref().map(|t| strip_role(t, "train")),
            )
        })
        .collect();
    let (mut tp, mut fp, mut fn_, mut tn, mut matched) = (0usize, 0usize, 0usize, 0usize, 0usize);
    for row in &audit.output.synthetic {
        let source = by_syn
            .get(row.synthetic.as_str())
            .with_context(|| format!("{} is not in the demo ground truth", row.synthetic))?;
        match (row.copy.unwrap_or(false), source) {
            (true, Some(src)) => {
                tp += 1;
                matched += usize::from(row.train == *src);
            }
            (true, None) => fp += 1,
            (false, Some(_)) => fn_ += 1,
            (false, None) => tn += 1,
        }
    }
    println!(
        "\nground truth: {tp}/{} injected copies flagged ({matched} matched to the right training \
         image); {fp}/{} novel images flagged ({:.2} % at target FPR {} %)",
        tp + fn_,
        fp + tn,
        100.0 * fp as f64 / (fp + tn).max(1) as f64,
        100.0 * cfg.metrics.primary_fpr
    );
    print_verdict(&audit, &args.out);
    println!("demo wall time: {:.2} s", t0.elapsed().as_secs_f64());
    Ok(code)
}
