//! `summary.md`: a short Markdown table for CI logs and pull-request comments.

use crate::summary::Summary;
use std::fmt::Write;

fn pct(v: f64) -> String {
    format!("{:.2} %", 100.0 * v)
}

fn ci(c: [f64; 2]) -> String {
    format!("{} – {}", pct(c[0]), pct(c[1]))
}

/// An AUC's bootstrap interval, or nothing without a bootstrap.
fn auc_ci(c: Option<&memscan_metrics::mia::AttackCi95>) -> String {
    c.map_or(String::new(), |c| {
        format!("{:.4} – {:.4}", c.auc[0], c.auc[1])
    })
}

/// Renders `summary.md`.
pub fn render_markdown(s: &Summary) -> String {
    let mut md = String::new();
    let m = &s.metrics;
    let _ = writeln!(md, "## memscan audit\n");
    let _ = writeln!(
        md,
        "**Verdict: {}** — {}\n",
        s.verdict.status, s.verdict.message
    );
    let _ = writeln!(
        md,
        "train {} · synthetic {} · holdout {} · embedder `{}` · seed {}\n",
        s.inputs.train.count,
        s.inputs.synthetic.count,
        s.inputs
            .holdout
            .as_ref()
            .map_or("—".to_string(), |h| h.count.to_string()),
        s.embedder
            .get("name")
            .and_then(|n| n.as_str())
            .unwrap_or("?"),
        s.seed
    );
    let _ = writeln!(md, "| metric | value | 95 % CI | detail |");
    let _ = writeln!(md, "|---|---:|---|---|");
    if let Some(rates) = &m.copy_rate {
        for r in rates {
            let c = &r.value.rate;
            let _ = writeln!(
                md,
                "| copy_rate@fpr={} | {} | {} | {} of {} below d1 threshold {:.4}{} |",
                c.fpr.unwrap_or(f64::NAN),
                pct(c.rate),
                ci(c.ci95),
                c.count,
                c.n,
                c.threshold,
                if r.value.resolvable {
                    ""
                } else {
                    " (holdout too small for this FPR)"
                }
            );
        }
    }
    if let Some(f) = &m.fixed_threshold {
        let c = &f.value;
        let _ = writeln!(
            md,
            "| cosine > {} | {} | {} | {} of {} |",
            c.threshold,
            pct(c.rate),
            ci(c.ci95),
            c.count,
            c.n
        );
    }
    if let Some(r) = &m.ratio {
        let r = &r.value;
        let _ = writeln!(
            md,
            "| ratio_rate (d1/d2 < {:.4}) | {} | {} | {} of {} |",
            r.threshold,
            pct(r.rate),
            ci(r.ci95),
            r.count,
            r.n
        );
    }
    if let Some(t) = &m.train_copied {
        let _ = writeln!(
            md,
            "| train_copied_fraction | {} | | {} of {} training images copied |",
            pct(t.value.fraction),
            t.value.count,
            t.value.n_train
        );
    }
    if let Some(p) = &m.similarity.value.synthetic {
        let _ = writeln!(
            md,
            "| top-1 cosine, synthetic (median / p99) | {:.4} / {:.4} | | {} |",
            p.p50,
            p.p99,
            m.similarity
                .value
                .holdout
                .as_ref()
                .map_or(String::new(), |h| format!(
                    "holdout: {:.4} / {:.4}",
                    h.p50, h.p99
                ))
        );
    }
    if let Some(mia) = &m.mia {
        for (name, a) in mia.attacks() {
            let a = &a.value;
            let auc_ci = auc_ci(a.ci95.as_ref());
            let strongest = if mia.strongest.as_deref() == Some(name) {
                " (strongest)"
            } else {
                ""
            };
            let _ = writeln!(
                md,
                "| MIA `{name}`{strongest} AUC | {:.4} | {auc_ci} | TPR@1 %FPR {:.4}, TPR@0.1 %FPR {:.4}, {} members / {} non-members |",
                a.auc, a.tpr_at_fpr_0_01, a.tpr_at_fpr_0_001, a.n_members, a.n_nonmembers
            );
        }
    }
    if let Some(a) = &m.authpct {
        let a = &a.value;
        let _ = writeln!(
            md,
            "| AuthPct synthetic | {:.2} % | | holdout {}; difference {} |",
            a.synthetic,
            a.holdout.map_or("—".into(), |h| format!("{h:.2} %")),
            a.difference.map_or("—".into(), |d| format!("{d:+.2} pp")),
        );
    }
    if let Some(c) = &m.c_t {
        let _ = writeln!(
            md,
            "| C_T | {:.3} | | {} of {} cells kept (≪ 0 = data-copying) |",
            c.value.value, c.value.cells, c.value.k
        );
    }
    if let Some(d) = &m.dcr {
        let _ = writeln!(
            md,
            "| DCR closer-to-train share | {:.4} | | binomial p = {:.3e} (0.5 ideal) |",
            d.value.closer_to_train_share, d.value.p_value
        );
    }
    if let Some(i) = &m.identifiability {
        let _ = writeln!(
            md,
            "| identifiability | {} | | {} of {} training images |",
            pct(i.value.score),
            i.value.count,
            i.value.n_train
        );
    }
    if let Some(x) = &m.mdcr {
        let _ = writeln!(
            md,
            "| mDCR | {:.4} | | < 1 = synthetic closer than real–real |",
            x.value.value
        );
    }
    if let Some(g) = &m.groups {
        let _ = writeln!(
            md,
            "| patients ({}) | {} train, {} holdout | | {} in both train and holdout |",
            g.value.source,
            g.value.n_train_groups,
            g.value.n_holdout_groups,
            g.value.overlap_train_holdout
        );
        for (name, a) in &g.value.mia {
            let _ = writeln!(
                md,
                "| patient-level mia.{name}.auc | {:.4} | {} | {} / {} patients |",
                a.auc,
                auc_ci(a.ci95.as_ref()),
                a.n_members,
                a.n_nonmembers
            );
        }
        if let Some(c) = &g.value.copied {
            let _ = writeln!(
                md,
                "| patients with a copied image | {} | | {} of {} patients |",
                pct(c.fraction),
                c.count,
                c.n_groups
            );
        }
    }
    if let Some(l) = &m.metadata_leakage {
        let _ = writeln!(
            md,
            "| synthetic DICOM with identifying attributes | {} of {} | | {} match the training set |",
            l.value.n_with_identifying, l.value.n_synthetic_dicom, l.value.n_matching_training
        );
    }
    for (name, why) in &m.absent {
        let _ = writeln!(md, "| {name} | — | | absent: {why} |");
    }
    if !s.budgets.is_empty() {
        let _ = writeln!(md, "\n| budget | value | result |\n|---|---:|---|");
        for b in &s.budgets {
            let _ = writeln!(
                md,
                "| `{}` | {} | {} |",
                b.expression,
                b.value,
                if b.exceeded { "**exceeded**" } else { "ok" }
            );
        }
    }
    if !s.warnings.is_empty() {
        let _ = writeln!(md, "\nWarnings:\n");
        for w in &s.warnings {
            let _ = writeln!(md, "- {w}");
        }
    }
    md
}
