//! `report.html`: one self-contained page a reviewer opens from disk.
//!
//! Sections, each left out when it has no data: what the report contains (counts, inputs,
//! whether real images are embedded); the verdict with the `--fail-if` budgets; the metrics
//! table with 95 % intervals, absent metrics with their reasons, and the definitions; the
//! d1 and cosine histograms of synthetic vs holdout images with the calibrated thresholds
//! `t_α` drawn; the membership-inference ROC curves on linear and log–log axes; the most-copied
//! training images; and the gallery of the closest synthetic/train pairs with their
//! amplified absolute-difference image, sortable by distance, cosine or ratio; the per-patient
//! table (with groups); and the metadata leakage table of synthetic DICOM files (attribute
//! names with ✔/✘ for "matches the training set", never the values).
//!
//! Everything is inline: CSS, hand-made SVG plots ([`crate::svg`]), PNG thumbnails as
//! `data:image/png;base64,` URIs and a few lines of JavaScript that only reorder the gallery.
//! The page makes no network request. Output is deterministic (no timestamps, no timings).

use crate::csv_out::SyntheticRow;
use crate::summary::Summary;
use crate::svg::{self, esc, Curve, Series, VLine};
use crate::visuals::{Thumbnail, Visuals};
use crate::AuditOutput;
use base64::Engine;
use std::fmt::Write;

const SYN_COLOR: &str = "#d9480f";
const HOLD_COLOR: &str = "#1c7ed6";
const TH_COLORS: [&str; 3] = ["#c92a2a", "#862e9c", "#5c940d"];
const MIA_COLORS: [&str; 3] = ["#5f3dc4", "#087f5b", "#e67700"];

fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{:.2} %", 100.0 * v)
    } else {
        "—".into()
    }
}

fn ci(c: [f64; 2]) -> String {
    format!("{} – {}", pct(c[0]), pct(c[1]))
}

/// An AUC's bootstrap interval (a number, not a percentage), or nothing without a bootstrap.
fn auc_ci(c: Option<&memscan_metrics::mia::AttackCi95>) -> String {
    c.map_or(String::new(), |c| {
        format!("{} – {}", num(c.auc[0]), num(c.auc[1]))
    })
}

fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.4}")
    } else {
        "—".into()
    }
}

fn opt_num(v: Option<f64>) -> String {
    v.map_or("—".into(), num)
}

/// A data attribute value for sorting: empty when undefined (sorted last).
fn data_num(v: Option<f64>) -> String {
    v.filter(|v| v.is_finite())
        .map_or(String::new(), |v| format!("{v}"))
}

fn img(t: &Thumbnail, class: &str, alt: &str) -> String {
    format!(
        r#"<img class="{class}" width="{}" height="{}" alt="{}" src="data:image/png;base64,{}">"#,
        t.width,
        t.height,
        esc(alt),
        base64::engine::general_purpose::STANDARD.encode(&t.png)
    )
}

fn withheld(what: &str) -> String {
    format!(
        r#"<div class="withheld" title="--no-images">{}<br>withheld</div>"#,
        esc(what)
    )
}

const CSS: &str = r#"
:root{--fg:#1f2430;--muted:#5b6475;--line:#dde1e8;--bg:#f5f6f8;--card:#fff;--accent:#1c5fb8}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
header.top{background:#1f2430;color:#fff;padding:18px 0 14px}
header.top .wrap{display:flex;align-items:baseline;gap:16px;flex-wrap:wrap}
header.top h1{font-size:20px;margin:0;font-weight:650;letter-spacing:.2px}
header.top .meta{color:#b8c0cf;font-size:13px}
nav{background:#2a3140;padding:6px 0}
nav a{color:#dbe4ff;text-decoration:none;margin-right:18px;font-size:13px}
nav a:hover{text-decoration:underline}
.wrap{max-width:1180px;margin:0 auto;padding:0 24px}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;margin:18px 0;padding:18px 22px}
h2{font-size:17px;margin:0 0 10px;font-weight:650}
h3{font-size:14px;margin:14px 0 6px;color:var(--muted);font-weight:600}
p{margin:6px 0}
.muted{color:var(--muted)}
.small{font-size:12px}
code{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f0f2f5;padding:1px 4px;border-radius:3px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-weight:600;color:var(--muted);background:#fafbfc}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.id{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px;word-break:break-all}
tr.absent td{color:var(--muted);font-style:italic}
.verdict{display:flex;gap:16px;align-items:flex-start;border-radius:8px;padding:14px 16px;border:1px solid}
.verdict .status{font-weight:700;font-size:15px;white-space:nowrap;padding:3px 10px;border-radius:999px;color:#fff}
.v-memorization{background:#fff5f5;border-color:#ffc9c9}.v-memorization .status{background:#c92a2a}
.v-no_evidence{background:#ebfbee;border-color:#b2f2bb}.v-no_evidence .status{background:#2b8a3e}
.v-inconclusive{background:#fff9db;border-color:#ffec99}.v-inconclusive .status{background:#e67700}
.pill{display:inline-block;font-size:11px;font-weight:600;padding:1px 8px;border-radius:999px;border:1px solid}
.pill.bad{color:#c92a2a;border-color:#ffa8a8;background:#fff5f5}
.pill.ok{color:#2b8a3e;border-color:#8ce99a;background:#ebfbee}
.pill.info{color:#1c5fb8;border-color:#a5d8ff;background:#e7f5ff}
ul.warn{margin:8px 0 0;padding-left:20px;color:#8a5a00}
.scroll{overflow-x:auto}table.leakage td,table.leakage th{text-align:center}table.leakage td:first-child{text-align:left}td.hit{color:#c92a2a;font-weight:700}td.miss{color:#2b8a3e}
.plots{display:flex;flex-wrap:wrap;gap:16px}
.plots figure{margin:0;flex:1 1 520px;max-width:560px}
.plots figcaption{font-size:12px;color:var(--muted);margin-top:4px}
svg.plot{width:100%;height:auto;border:1px solid var(--line);border-radius:6px}
svg.plot .pt{font:600 13px system-ui,sans-serif;fill:#1f2430}
svg.plot .tk{font:11px system-ui,sans-serif;fill:#5b6475}
svg.plot .al{font:12px system-ui,sans-serif;fill:#3b4252}
svg.plot .lg{font:12px system-ui,sans-serif;fill:#1f2430}
svg.plot .vl{font:600 11px system-ui,sans-serif}
svg.plot .grid{stroke:#eceef2;stroke-width:1}
svg.plot .frame{fill:none;stroke:#aab1bf;stroke-width:1}
img.th{width:96px;height:96px;object-fit:contain;image-rendering:pixelated;background:#000;border-radius:3px;display:block}
.withheld{width:96px;height:96px;display:flex;align-items:center;justify-content:center;text-align:center;font-size:11px;color:var(--muted);background:repeating-linear-gradient(45deg,#f1f3f5,#f1f3f5 6px,#e9ecef 6px,#e9ecef 12px);border-radius:3px}
.toolbar{display:flex;gap:10px;align-items:center;margin:6px 0 12px}
select{font:inherit;padding:3px 6px;border:1px solid var(--line);border-radius:4px;background:#fff}
#pairs{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:12px}
.copied{display:grid;grid-template-columns:repeat(auto-fill,minmax(224px,1fr));gap:12px}
.copied .pair .imgs span{font-size:11px}
.pair{margin:0;border:1px solid var(--line);border-radius:6px;padding:10px;background:#fcfcfd}
.pair .imgs{display:flex;gap:8px}
.pair .imgs div.cell{display:flex;flex-direction:column;align-items:center;gap:2px}
.pair .imgs span{font-size:11px;color:var(--muted)}
.pair figcaption{margin-top:8px;font-size:12px}
.pair .ids{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:11.5px;word-break:break-all}
.pair .stats{display:flex;gap:12px;margin-top:4px;font-variant-numeric:tabular-nums;align-items:center;flex-wrap:wrap}
.pair .rank{float:right;color:var(--muted);font-size:11px}
dl.defs{margin:0}dl.defs dt{font-weight:600;margin-top:8px}dl.defs dd{margin:2px 0 0 0;color:var(--muted)}
footer{color:var(--muted);font-size:12px;padding:6px 0 30px}
@media print{nav,.toolbar{display:none}section{break-inside:avoid}}
"#;

/// Sorts the gallery by a `data-*` key; undefined values go last; ties keep the d1 order.
const JS: &str = r#"
(function(){
  var sel=document.getElementById('gallery-sort');
  var g=document.getElementById('pairs');
  if(!sel||!g)return;
  function val(el,k){var v=el.getAttribute('data-'+k);return v===''||v===null?NaN:parseFloat(v);}
  sel.addEventListener('change',function(){
    var p=sel.value.split(':'),k=p[0],dir=p[1]==='desc'?-1:1;
    var items=Array.prototype.slice.call(g.children);
    items.sort(function(a,b){
      var x=val(a,k),y=val(b,k);
      if(isNaN(x)&&isNaN(y))return val(a,'rank')-val(b,'rank');
      if(isNaN(x))return 1; if(isNaN(y))return -1;
      return (x-y)*dir||val(a,'rank')-val(b,'rank');
    });
    items.forEach(function(el){g.appendChild(el);});
  });
})();
"#;

/// Renders `report.html`.
pub fn render_html(out: &AuditOutput) -> String {
    let s = &out.summary;
    let v = &out.visuals;
    let mut sections: Vec<(&str, &str, String)> = Vec::new();
    sections.push(("verdict", "Verdict", verdict(s)));
    sections.push(("metrics", "Metrics", metrics(s)));
    if let Some(h) = histograms(out) {
        sections.push(("distributions", "Distributions", h));
    }
    if let Some(r) = roc(s) {
        sections.push(("mia", "Membership inference", r));
    }
    if let Some(c) = copied(s, v) {
        sections.push(("copied", "Most-copied training images", c));
    }
    if !v.gallery.is_empty() {
        sections.push(("gallery", "Closest pairs", gallery(out)));
    }
    if let Some(p) = patients(s) {
        sections.push(("patients", "Per patient", p));
    }
    if let Some(l) = leakage(s) {
        sections.push(("leakage", "Metadata leakage", l));
    }

    let mut h = String::with_capacity(64 * 1024);
    let embedder = s
        .embedder
        .get("name")
        .and_then(|n| n.as_str())
        .unwrap_or("?");
    let _ = write!(
        h,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="memscan {ver}">
<title>memscan report — {status}</title>
<style>{CSS}</style></head><body>
<header class="top"><div class="wrap"><h1>memscan audit report</h1><span class="meta">memscan {ver} · schema {schema} · embedder <b>{emb}</b> · seed {seed}</span></div></header>
<nav><div class="wrap">"#,
        ver = esc(&s.memscan.version),
        schema = s.memscan.schema,
        status = esc(&s.verdict.status),
        emb = esc(embedder),
        seed = s.seed,
    );
    let _ = write!(h, r##"<a href="#contents">Contents</a>"##);
    for (id, title, _) in &sections {
        let _ = write!(h, r##"<a href="#{id}">{title}</a>"##);
    }
    h.push_str("</div></nav><main class=\"wrap\">\n");
    h.push_str(&contents(out, &sections));
    for (id, title, body) in &sections {
        let _ = write!(
            h,
            "<section id=\"{id}\"><h2>{title}</h2>\n{body}</section>\n"
        );
    }
    let _ = write!(
        h,
        "</main><footer class=\"wrap\">Generated by memscan {}. This file is self-contained: \
         styles, plots and images are inline and it loads nothing from the network. The \
         numbers are those of <code>summary.json</code>; per-image values are in \
         <code>synthetic.csv</code> and <code>train.csv</code>.</footer>\n<script>{JS}</script>\n\
         </body></html>\n",
        esc(&s.memscan.version)
    );
    h
}

/// What the report contains: counts, inputs, whether real pixels are embedded.
fn contents(out: &AuditOutput, sections: &[(&str, &str, String)]) -> String {
    let s = &out.summary;
    let v = &out.visuals;
    let i = &s.inputs;
    let mut h = String::new();
    h.push_str("<section id=\"contents\"><h2>What this report contains</h2>\n");
    let hold = i.holdout.as_ref().map_or("no holdout".to_string(), |h| {
        format!("<b>{}</b> holdout images", h.count)
    });
    let _ = write!(
        h,
        "<p>An audit of <b>{}</b> synthetic images against <b>{}</b> training images and \
         {hold}. Sections: {}.</p>",
        i.synthetic.count,
        i.train.count,
        sections
            .iter()
            .map(|(_, t, _)| t.to_lowercase())
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !v.gallery.is_empty() {
        let _ = write!(
            h,
            "<p>The gallery shows the <b>{}</b> synthetic images closest to the training set \
             (smallest d1), each with its nearest training image.</p>",
            v.gallery.len()
        );
    }
    if v.real_images {
        let _ = write!(
            h,
            "<p><span class=\"pill bad\">real images embedded</span> This file contains \
             thumbnails (at most {} px) of <b>training images</b> and difference images \
             computed from them. Handle it like the training data itself; rerun with \
             <code>--no-images</code> for a shareable report.</p>",
            v.thumbnail_max
        );
    } else {
        h.push_str(
            "<p><span class=\"pill ok\">no real images</span> Run with \
             <code>--no-images</code>: no pixel of a training or holdout image is in this \
             file. The gallery shows the synthetic thumbnail and the training image's id \
             only. Synthetic images are shown as generated: one that copies a training image \
             reproduces that image's content.</p>",
        );
    }
    h.push_str(
        "<table><thead><tr><th>role</th><th>path</th><th class=\"num\">images</th>\
         <th class=\"num\">skipped</th><th>content hash</th></tr></thead><tbody>",
    );
    for (role, set) in [
        ("train", Some(&i.train)),
        ("synthetic", Some(&i.synthetic)),
        ("holdout", i.holdout.as_ref()),
    ] {
        if let Some(set) = set {
            let _ = write!(
                h,
                "<tr><td>{role}</td><td class=\"id\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td><td class=\"id\" title=\"{}\">{}…</td></tr>",
                esc(&set.path),
                set.count,
                set.skipped,
                esc(&set.content_hash),
                esc(&set.content_hash.chars().take(16).collect::<String>())
            );
        }
    }
    h.push_str("</tbody></table>\n");
    if !s.skipped.is_empty() {
        let _ = write!(
            h,
            "<h3>Skipped inputs ({})</h3><table><thead><tr><th>role</th><th>path</th>\
             <th>reason</th></tr></thead><tbody>",
            s.skipped.len()
        );
        for k in &s.skipped {
            let _ = write!(
                h,
                "<tr><td>{}</td><td class=\"id\">{}</td><td>{}</td></tr>",
                esc(&k.role),
                esc(&k.path),
                esc(&k.reason)
            );
        }
        h.push_str("</tbody></table>\n");
    }
    h.push_str("</section>\n");
    h
}

fn verdict(s: &Summary) -> String {
    let v = &s.verdict;
    let label = match v.status.as_str() {
        "memorization" => "Memorization",
        "no_evidence" => "No evidence",
        "inconclusive" => "Inconclusive",
        other => other,
    };
    let mut h = format!(
        "<div class=\"verdict v-{}\"><span class=\"status\">{}</span><div>{}</div></div>\n",
        esc(&v.status),
        esc(label),
        esc(&v.message)
    );
    if s.budgets.is_empty() {
        h.push_str(
            "<p class=\"muted\">No <code>--fail-if</code> budget was set; the exit status \
             is 0.</p>",
        );
    } else {
        let _ = write!(
            h,
            "<h3>Budgets (<code>--fail-if</code>): {}</h3><table><thead><tr><th>budget</th>\
             <th class=\"num\">value</th><th>result</th></tr></thead><tbody>",
            if v.budget_exceeded {
                "exceeded — exit status 1"
            } else {
                "all within budget — exit status 0"
            }
        );
        for b in &s.budgets {
            let _ = write!(
                h,
                "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td>{}</td></tr>",
                esc(&b.expression),
                num(b.value),
                if b.exceeded {
                    "<span class=\"pill bad\">exceeded</span>"
                } else {
                    "<span class=\"pill ok\">ok</span>"
                }
            );
        }
        h.push_str("</tbody></table>\n");
    }
    if !s.warnings.is_empty() {
        h.push_str("<h3>Warnings</h3><ul class=\"warn\">");
        for w in &s.warnings {
            let _ = write!(h, "<li>{}</li>", esc(w));
        }
        h.push_str("</ul>\n");
    }
    h
}

fn metrics(s: &Summary) -> String {
    let m = &s.metrics;
    let mut rows = String::new();
    let mut defs: Vec<(&str, &str)> = Vec::new();
    let mut row = |name: String, value: String, ci: String, detail: String| {
        let _ = write!(
            rows,
            "<tr><td>{name}</td><td class=\"num\">{value}</td><td class=\"num\">{ci}</td>\
             <td>{detail}</td></tr>"
        );
    };
    if let Some(rates) = &m.copy_rate {
        for r in rates {
            let c = &r.value.rate;
            row(
                format!(
                    "<code>copy_rate@fpr={}</code>{}",
                    c.fpr.unwrap_or(f64::NAN),
                    if r.value.primary {
                        " <span class=\"pill info\">primary</span>"
                    } else {
                        ""
                    }
                ),
                pct(c.rate),
                ci(c.ci95),
                format!(
                    "{} of {} synthetic images have d1 &lt; t = {}; excess over chance {}; \
                     holdout FPR achieved {}{}",
                    c.count,
                    c.n,
                    num(c.threshold),
                    opt_pct(c.excess),
                    opt_pct(c.null_rate),
                    if r.value.resolvable {
                        String::new()
                    } else {
                        format!(
                            " <span class=\"pill bad\">holdout of {} too small for this FPR</span>",
                            r.value.n_holdout
                        )
                    }
                ),
            );
        }
        if let Some(r) = rates.first() {
            defs.push(("copy_rate", &r.definition));
        }
    }
    if let Some(f) = &m.fixed_threshold {
        let c = &f.value;
        row(
            format!("<code>fixed_threshold</code> (cosine &gt; {})", c.threshold),
            pct(c.rate),
            ci(c.ci95),
            format!("{} of {} synthetic images", c.count, c.n),
        );
        defs.push(("fixed_threshold", &f.definition));
    }
    if let Some(r) = &m.ratio {
        let v = &r.value;
        row(
            "<code>ratio_rate</code>".into(),
            pct(v.rate),
            ci(v.ci95),
            format!(
                "{} of {} synthetic images have d1/d2 &lt; {:.4}",
                v.count, v.n, v.threshold
            ),
        );
        defs.push(("ratio_rate", &r.definition));
    }
    if let Some(t) = &m.train_copied {
        row(
            "<code>train_copied_fraction</code>".into(),
            pct(t.value.fraction),
            String::new(),
            format!(
                "{} of {} training images copied",
                t.value.count, t.value.n_train
            ),
        );
        defs.push(("train_copied_fraction", &t.definition));
    }
    let sim = &m.similarity.value;
    if let Some(p) = &sim.synthetic {
        row(
            "top-1 cosine, synthetic".into(),
            num(p.p50),
            String::new(),
            format!(
                "median; p99 {}, mean {}, share &gt; 0.5 {}{}",
                num(p.p99),
                num(p.mean),
                pct(p.fraction_above_0_5),
                sim.holdout.as_ref().map_or(String::new(), |h| format!(
                    "; holdout median {}, p99 {}",
                    num(h.p50),
                    num(h.p99)
                ))
            ),
        );
        defs.push(("similarity", &m.similarity.definition));
    }
    if let Some(mia) = &m.mia {
        for (name, a) in mia.attacks() {
            let v = &a.value;
            row(
                format!("<code>mia.{name}.auc</code>"),
                num(v.auc),
                auc_ci(v.ci95.as_ref()),
                format!(
                    "TPR at FPR ≤ 1 % {}, at ≤ 0.1 % {}; balanced accuracy {}; {} members / \
                     {} non-members",
                    pct(v.tpr_at_fpr_0_01),
                    pct(v.tpr_at_fpr_0_001),
                    num(v.balanced_accuracy),
                    v.n_members,
                    v.n_nonmembers
                ),
            );
            defs.push((name, &a.definition));
        }
        if let Some(best) = &mia.strongest {
            row(
                "strongest attack".into(),
                format!("<code>{}</code>", esc(best)),
                String::new(),
                format!("highest TPR at FPR ≤ 0.1 %; {}", esc(&mia.setup)),
            );
        }
    }
    if let Some(a) = &m.authpct {
        let v = &a.value;
        row(
            "<code>authpct</code>".into(),
            format!("{:.2} %", v.synthetic),
            String::new(),
            format!(
                "holdout-as-synthetic {}; difference {}",
                v.holdout.map_or("—".into(), |h| format!("{h:.2} %")),
                v.difference.map_or("—".into(), |d| format!("{d:+.2} pp"))
            ),
        );
        defs.push(("authpct", &a.definition));
    }
    if let Some(c) = &m.c_t {
        row(
            "<code>c_t</code>".into(),
            num(c.value.value),
            String::new(),
            format!(
                "{} of {} cells kept; ≪ 0 means data-copying",
                c.value.cells, c.value.k
            ),
        );
        defs.push(("c_t", &c.definition));
    }
    if let Some(d) = &m.dcr {
        row(
            "<code>dcr.closer_to_train_share</code>".into(),
            num(d.value.closer_to_train_share),
            String::new(),
            format!("binomial p = {:.3e}; 0.5 is ideal", d.value.p_value),
        );
        defs.push(("dcr", &d.definition));
    }
    if let Some(i) = &m.identifiability {
        row(
            "<code>identifiability</code>".into(),
            pct(i.value.score),
            String::new(),
            format!("{} of {} training images", i.value.count, i.value.n_train),
        );
        defs.push(("identifiability", &i.definition));
    }
    if let Some(x) = &m.mdcr {
        row(
            "<code>mdcr</code>".into(),
            num(x.value.value),
            String::new(),
            "&lt; 1: synthetic images closer to train than train images to each other".into(),
        );
        defs.push(("mdcr", &x.definition));
    }
    if let Some(g) = &m.groups {
        if let Some(c) = &g.value.copied {
            row(
                "patients with a copied image".into(),
                pct(c.fraction),
                String::new(),
                format!("{} of {} patients", c.count, c.n_groups),
            );
        }
        for (name, a) in &g.value.mia {
            row(
                format!("patient-level <code>mia.{name}.auc</code>"),
                num(a.auc),
                auc_ci(a.ci95.as_ref()),
                format!(
                    "{} member / {} non-member patients",
                    a.n_members, a.n_nonmembers
                ),
            );
        }
        defs.push(("groups", &g.definition));
    }
    let mut absent = String::new();
    for (name, why) in &m.absent {
        let _ = write!(
            absent,
            "<tr class=\"absent\"><td><code>{}</code></td><td class=\"num\">—</td><td></td>\
             <td>absent: {}</td></tr>",
            esc(name),
            esc(why)
        );
    }
    let mut h = format!(
        "<table><thead><tr><th>metric</th><th class=\"num\">value</th>\
         <th class=\"num\">95 % CI</th><th>detail</th></tr></thead><tbody>{rows}{absent}\
         </tbody></table>\n"
    );
    if !defs.is_empty() {
        h.push_str("<h3>Definitions</h3><dl class=\"defs small\">");
        for (name, d) in defs {
            let _ = write!(h, "<dt><code>{}</code></dt><dd>{}</dd>", esc(name), esc(d));
        }
        h.push_str("</dl>\n");
    }
    h
}

fn opt_pct(v: Option<f64>) -> String {
    v.map_or("—".into(), pct)
}

/// Histogram range: from `lo` (or the data's minimum) to a little past the data's maximum.
fn range(values: &[&[f64]], lo: Option<f64>, hi: Option<f64>) -> Option<(f64, f64)> {
    let finite = values
        .iter()
        .flat_map(|v| v.iter())
        .filter(|v| v.is_finite());
    let (mn, mx) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
        (a.min(v), b.max(v))
    });
    if !mn.is_finite() {
        return None;
    }
    let lo = lo.unwrap_or(mn);
    let hi = hi.unwrap_or(mx + 0.02 * (mx - lo).max(1e-9));
    Some((lo, hi))
}

fn histograms(out: &AuditOutput) -> Option<String> {
    let s = &out.summary;
    let v = &out.visuals;
    let d_syn: Vec<f64> = out.synthetic.iter().map(|r| r.distance).collect();
    let c_syn: Vec<f64> = out
        .synthetic
        .iter()
        .map(|r: &SyntheticRow| r.cosine.unwrap_or(f64::NAN))
        .collect();
    if d_syn.is_empty() {
        return None;
    }
    let mut d_series = vec![Series {
        name: "synthetic",
        color: SYN_COLOR,
        values: &d_syn,
    }];
    if let Some(hd) = &v.holdout_distance {
        d_series.push(Series {
            name: "holdout",
            color: HOLD_COLOR,
            values: hd,
        });
    }
    let vlines: Vec<VLine> = s
        .metrics
        .copy_rate
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, r)| VLine {
            x: r.value.rate.threshold,
            label: format!(
                "t(fpr={}) = {:.4}",
                r.value.rate.fpr.unwrap_or(f64::NAN),
                r.value.rate.threshold
            ),
            color: TH_COLORS[i % TH_COLORS.len()],
        })
        .collect();
    let all: Vec<&[f64]> = d_series.iter().map(|s| s.values).collect();
    let (lo, hi) = range(&all, Some(0.0), None)?;
    let mut h = String::from("<div class=\"plots\">");
    let _ = write!(
        h,
        "<figure>{}<figcaption>Distance d1 from each image to its nearest training image \
         (embedder space). A synthetic image left of the calibrated threshold t is closer to \
         the training set than all but a share fpr of the holdout images are: it is flagged \
         as a copy. Copies pile up near 0; novel images follow the holdout \
         distribution.</figcaption></figure>",
        svg::histogram(
            "Nearest-training-image distance d1",
            "d1 (distance to nearest training image)",
            &d_series,
            &vlines,
            (lo, hi),
            40
        )
    );
    let mut c_series = vec![Series {
        name: "synthetic",
        color: SYN_COLOR,
        values: &c_syn,
    }];
    if let Some(hc) = &v.holdout_cosine {
        c_series.push(Series {
            name: "holdout",
            color: HOLD_COLOR,
            values: hc,
        });
    }
    let fixed: Vec<VLine> = s
        .metrics
        .fixed_threshold
        .iter()
        .map(|f| VLine {
            x: f.value.threshold,
            label: format!("cosine = {}", f.value.threshold),
            color: TH_COLORS[0],
        })
        .collect();
    let all: Vec<&[f64]> = c_series.iter().map(|s| s.values).collect();
    if let Some((lo, _)) = range(&all, None, Some(1.0)) {
        let lo = fixed.iter().fold(lo, |a, f| a.min(f.x));
        let pad = (1.0 - lo).max(1e-3) * 0.02;
        let _ = write!(
            h,
            "<figure>{}<figcaption>Cosine similarity between each image and its nearest \
             training image (top-1 similarity, Somepalli et al. 2023). Higher is more \
             similar; the synthetic tail beyond the holdout's is the evidence.\
             </figcaption></figure>",
            svg::histogram(
                "Top-1 cosine similarity",
                "cosine similarity to nearest training image",
                &c_series,
                &fixed,
                (lo - pad, 1.0 + pad),
                40
            )
        );
    }
    h.push_str("</div>\n");
    Some(h)
}

fn roc(s: &Summary) -> Option<String> {
    let mia = s.metrics.mia.as_ref()?;
    let attacks = mia.attacks();
    let curves: Vec<Curve> = attacks
        .iter()
        .enumerate()
        .filter(|(_, (_, a))| !a.value.roc.is_empty())
        .map(|(i, (name, a))| Curve {
            name: format!("{name} (AUC {:.3})", a.value.auc),
            color: MIA_COLORS[i % MIA_COLORS.len()],
            points: a.value.roc.iter().map(|p| (p.fpr, p.tpr)).collect(),
        })
        .collect();
    if curves.is_empty() {
        return None;
    }
    let n = attacks
        .iter()
        .map(|(_, a)| a.value.n_members.max(a.value.n_nonmembers))
        .max()
        .unwrap_or(1)
        .max(1);
    let lo = 10f64.powf((0.5 / n as f64).log10().floor());
    Some(format!(
        "<p class=\"small muted\">A membership-inference attacker scores each training image \
         (member) and holdout image (non-member) by how close the synthetic set comes to it. \
         Chance is the diagonal. The log–log plot shows the low-FPR region that matters for \
         privacy (Carlini et al. 2022); rates of 0 are drawn at the axis floor {lo}.</p>\
         <div class=\"plots\"><figure>{}</figure><figure>{}</figure></div>\n",
        svg::roc("MIA ROC (linear)", &curves, false, lo),
        svg::roc("MIA ROC (log–log)", &curves, true, lo)
    ))
}

fn copied(s: &Summary, v: &Visuals) -> Option<String> {
    let t = s.metrics.train_copied.as_ref()?;
    let top: Vec<_> = t.value.top.iter().filter(|c| c.copies > 0).collect();
    if top.is_empty() {
        return None;
    }
    let mut h = format!(
        "<p class=\"small muted\">The {} training images that are the nearest neighbour of \
         the most synthetic images flagged at the primary FPR, each with the closest of those \
         copies. {} of {} training images are copied at least once.</p>\
         <div class=\"copied\">",
        top.len(),
        t.value.count,
        t.value.n_train
    );
    for (i, c) in top.iter().enumerate() {
        let thumbs = v.copied.get(i).filter(|x| x.train == c.train);
        let train_img = match thumbs.and_then(|x| x.train_thumb.as_ref()) {
            Some(t) => img(t, "th train", &c.train),
            None => withheld("training image"),
        };
        let syn_img = thumbs.and_then(|x| x.synthetic_thumb.as_ref()).map_or_else(
            || withheld("synthetic"),
            |t| img(t, "th synthetic", &c.best_synthetic),
        );
        let _ = write!(
            h,
            "<figure class=\"pair copied-item\"><div class=\"imgs\"><div class=\"cell\">\
             {train_img}<span>training</span></div><div class=\"cell\">{syn_img}<span>closest \
             copy</span></div></div><figcaption><span class=\"rank\">#{}</span>\
             <div class=\"ids\">T {}<br>S {}</div><div class=\"stats\"><span>copies <b>{}</b>\
             </span><span>d1 <b>{}</b></span></div></figcaption></figure>",
            i + 1,
            esc(&c.train),
            esc(&c.best_synthetic),
            c.copies,
            num(c.best_distance)
        );
    }
    h.push_str("</div>\n");
    Some(h)
}

/// Rows shown in the per-patient and leakage tables (the full lists are in summary.json).
const TABLE_ROWS: usize = 200;

/// Per-patient table: group counts, the overlap check and the patients with copied images.
fn patients(s: &Summary) -> Option<String> {
    let g = &s.metrics.groups.as_ref()?.value;
    let mut h = format!(
        "<p class=\"small muted\">Groups from <b>{}</b>{}: {} with training images, {} with \
         holdout images; {} in both train and holdout{}.</p>",
        esc(&g.source),
        if g.source == "file" {
            " (--groups)"
        } else {
            " metadata (identifiers replaced by pseudonyms)"
        },
        g.n_train_groups,
        g.n_holdout_groups,
        g.overlap_train_holdout,
        if g.overlap_train_holdout > 0 {
            " <span class=\"pill bad\">the holdout is not independent of the training set</span>"
        } else {
            ""
        }
    );
    if let Some(c) = &g.copied {
        let _ = write!(
            h,
            "<p>{} of {} patients ({}) have at least one training image copied at the primary \
             FPR.</p>",
            c.count,
            c.n_groups,
            pct(c.fraction)
        );
    }
    if g.copied_groups.is_empty() {
        h.push_str("<p class=\"small muted\">No patient has a copied training image.</p>");
        return Some(h);
    }
    h.push_str(
        "<table class=\"patients\"><thead><tr><th>patient</th><th class=\"num\">train images\
         </th><th class=\"num\">holdout images</th><th class=\"num\">copied train images</th>\
         <th class=\"num\">copying synthetic images</th></tr></thead><tbody>",
    );
    for r in g.copied_groups.iter().take(TABLE_ROWS) {
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&r.group),
            r.n_train,
            r.n_holdout,
            r.copied_train,
            r.copying_synthetic
        );
    }
    h.push_str("</tbody></table>");
    if g.copied_groups.len() > TABLE_ROWS {
        let _ = write!(
            h,
            "<p class=\"small muted\">{} more in summary.json.</p>",
            g.copied_groups.len() - TABLE_ROWS
        );
    }
    Some(h)
}

/// Metadata leakage: synthetic files × identifying attribute names, ✔ when the value matches
/// the training set. Never the values.
fn leakage(s: &Summary) -> Option<String> {
    let l = s.metrics.metadata_leakage.as_ref()?;
    let m = &l.value;
    let mut h = format!(
        "<p>{} of {} synthetic DICOM images carry identifying attributes; {} carry a value \
         that also occurs in the training set{}.</p><p class=\"small muted\">{} Only attribute \
         names are shown, never their values.</p>",
        m.n_with_identifying,
        m.n_synthetic_dicom,
        m.n_matching_training,
        if m.n_matching_training > 0 {
            " <span class=\"pill bad\">matches a training patient</span>"
        } else {
            ""
        },
        esc(&l.definition)
    );
    if m.images.is_empty() {
        return Some(h);
    }
    let names: Vec<&String> = m.attributes.keys().collect();
    h.push_str("<div class=\"scroll\"><table class=\"leakage\"><thead><tr><th>synthetic</th>");
    for n in &names {
        let _ = write!(h, "<th>{}</th>", esc(n));
    }
    h.push_str("</tr></thead><tbody>");
    for img in m.images.iter().take(TABLE_ROWS) {
        let _ = write!(h, "<tr><td>{}</td>", esc(&img.synthetic));
        for n in &names {
            let cell = match img.attributes.iter().find(|a| &&a.name == n) {
                Some(a) if a.matches_training => {
                    "<td class=\"hit\" title=\"matches a training patient\">✔</td>"
                }
                Some(_) => "<td class=\"miss\" title=\"present, no training match\">✘</td>",
                None => "<td class=\"muted\">·</td>",
            };
            h.push_str(cell);
        }
        h.push_str("</tr>");
    }
    h.push_str("</tbody><tfoot><tr><td>matches / present</td>");
    for n in &names {
        let c = &m.attributes[*n];
        let _ = write!(h, "<td>{}/{}</td>", c.matches_training, c.present);
    }
    h.push_str("</tr></tfoot></table></div>");
    if m.images.len() > TABLE_ROWS {
        let _ = write!(
            h,
            "<p class=\"small muted\">{} more in summary.json.</p>",
            m.images.len() - TABLE_ROWS
        );
    }
    h.push_str(
        "<p class=\"small muted\">✔ the value equals that attribute's value in some training \
         image (for PatientID and the UIDs: a training patient); ✘ present but not in the \
         training set; · absent.</p>",
    );
    Some(h)
}

fn gallery(out: &AuditOutput) -> String {
    let v = &out.visuals;
    let mut h = format!(
        "<p class=\"small muted\">The {} synthetic images with the smallest d1, each beside \
         its nearest training image{}. Thumbnails are the images as compared (after resizing \
         and channel conversion), at most {} px. {}</p>\
         <div class=\"toolbar\"><label for=\"gallery-sort\">Sort by</label>\
         <select id=\"gallery-sort\"><option value=\"d1:asc\">distance d1 ↑</option>\
         <option value=\"d1:desc\">distance d1 ↓</option><option value=\"cos:desc\">\
         cosine ↓</option><option value=\"ratio:asc\">ratio d1/d2 ↑</option></select></div>\
         <div id=\"pairs\">",
        v.gallery.len(),
        if v.real_images {
            " and their absolute difference"
        } else {
            ""
        },
        v.thumbnail_max,
        if v.real_images {
            format!(
                "Difference image: min(1, {}·|synthetic − training|) per pixel, so black \
                 means identical and white a difference of at least 1/{} of the intensity \
                 range.",
                v.diff_gain, v.diff_gain
            )
        } else {
            "Training images and difference images are withheld (<code>--no-images</code>)."
                .to_string()
        }
    );
    for (rank, p) in v.gallery.iter().enumerate() {
        let syn = p.synthetic_thumb.as_ref().map_or_else(
            || withheld("synthetic"),
            |t| img(t, "th synthetic", &p.synthetic),
        );
        let train = p.train_thumb.as_ref().map_or_else(
            || withheld("training image"),
            |t| img(t, "th train", &p.train),
        );
        let diff = p
            .diff_thumb
            .as_ref()
            .map(|t| img(t, "th diff", "difference"));
        let flag = match p.copy {
            Some(true) => "<span class=\"pill bad\">copy</span>",
            Some(false) => "<span class=\"pill ok\">not flagged</span>",
            None => "",
        };
        let _ = write!(
            h,
            "<figure class=\"pair\" data-rank=\"{rank}\" data-d1=\"{}\" data-cos=\"{}\" \
             data-ratio=\"{}\"><div class=\"imgs\"><div class=\"cell\">{syn}<span>synthetic\
             </span></div><div class=\"cell\">{train}<span>nearest training</span></div>{}\
             </div><figcaption><span class=\"rank\">#{}</span><div class=\"ids\">S {}<br>T {}\
             </div><div class=\"stats\"><span>d1 <b>{}</b></span><span>cos <b>{}</b></span>\
             <span>ratio <b>{}</b></span>{flag}</div></figcaption></figure>",
            data_num(Some(p.distance)),
            data_num(p.cosine),
            data_num(p.ratio),
            diff.map_or(String::new(), |d| format!(
                "<div class=\"cell\">{d}<span>|difference| ×{}</span></div>",
                v.diff_gain
            )),
            rank + 1,
            esc(&p.synthetic),
            esc(&p.train),
            num(p.distance),
            opt_num(p.cosine),
            opt_num(p.ratio),
        );
    }
    h.push_str("</div>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::*;
    use crate::svg::tests::well_formed;
    use crate::visuals::{CopiedThumbs, GalleryPair};
    use memscan_metrics::copy_rate::CopyRate;
    use memscan_metrics::mia::roc::RocPoint;
    use memscan_metrics::ratio::RatioRate;
    use std::collections::BTreeMap;

    fn thumb(tag: u8) -> Thumbnail {
        Thumbnail {
            width: 8,
            height: 8,
            png: vec![0x89, b'P', b'N', b'G', tag],
        }
    }

    fn input(path: &str, count: usize) -> InputSet {
        InputSet {
            path: path.into(),
            count,
            skipped: 0,
            content_hash: "ab".repeat(32),
        }
    }

    /// A summary with every metric present, `n_syn` synthetic rows and a gallery of `k`.
    fn sample(real_images: bool, k: usize) -> AuditOutput {
        let n_syn = 30;
        let synthetic: Vec<SyntheticRow> = (0..n_syn)
            .map(|i| SyntheticRow {
                synthetic: format!("syn_{i:02}.png"),
                train: format!("t<{i}>&.png"),
                distance: 0.01 * i as f64,
                cosine: (i != 3).then_some(1.0 - 0.001 * i as f64),
                distance2: Some(0.5),
                ratio: Some(0.02 * i as f64),
                copy: Some(i < 5),
                ratio_copy: Some(i < 5),
                copy_at: vec![Some(i < 5)],
                threshold_copy: None,
                train2: None,
            })
            .collect();
        let gallery: Vec<GalleryPair> = synthetic
            .iter()
            .take(k)
            .enumerate()
            .map(|(i, r)| GalleryPair {
                index: i,
                synthetic: r.synthetic.clone(),
                train: r.train.clone(),
                distance: r.distance,
                cosine: r.cosine,
                ratio: r.ratio,
                copy: r.copy,
                synthetic_thumb: Some(thumb(1)),
                train_thumb: real_images.then(|| thumb(2)),
                diff_thumb: real_images.then(|| thumb(3)),
            })
            .collect();
        let roc = vec![
            RocPoint {
                threshold: f64::INFINITY,
                fpr: 0.0,
                tpr: 0.0,
            },
            RocPoint {
                threshold: -0.1,
                fpr: 0.0,
                tpr: 0.2,
            },
            RocPoint {
                threshold: -0.3,
                fpr: 0.5,
                tpr: 0.8,
            },
            RocPoint {
                threshold: -0.9,
                fpr: 1.0,
                tpr: 1.0,
            },
        ];
        let cos: Vec<f64> = synthetic.iter().filter_map(|r| r.cosine).collect();
        let mut absent = BTreeMap::new();
        absent.insert(
            "fixed_threshold".to_string(),
            "no --threshold given <here>".to_string(),
        );
        let summary = Summary {
            memscan: Tool {
                version: "0.1.0".into(),
                schema: SCHEMA_VERSION,
            },
            seed: 7,
            inputs: Inputs {
                train: input("data/train", 100),
                synthetic: input("data/synthetic", n_syn),
                holdout: Some(input("data/holdout", 50)),
                reference: None,
            },
            config: serde_json::json!({}),
            embedder: serde_json::json!({"name": "pixel"}),
            index: serde_json::json!({"name": "exact"}),
            metrics: Metrics {
                copy_rate: Some(vec![Defined::new(
                    CalibratedRate {
                        rate: CopyRate {
                            fpr: Some(0.01),
                            threshold: 0.045,
                            count: 5,
                            n: n_syn as u64,
                            rate: 5.0 / 30.0,
                            excess: Some(5.0 / 30.0 - 0.01),
                            ci95: [0.05, 0.35],
                            null_rate: Some(0.0),
                        },
                        primary: true,
                        n_holdout: 50,
                        resolvable: false,
                    },
                    "Calibrated copy rate: d1 < t_α",
                )]),
                fixed_threshold: None,
                ratio_rate: Some(5.0 / 30.0),
                ratio: Some(Defined::new(
                    RatioRate {
                        threshold: 1.0 / 3.0,
                        count: 5,
                        n: n_syn as u64,
                        rate: 5.0 / 30.0,
                        ci95: [0.05, 0.35],
                    },
                    "d1/d2 < 1/3",
                )),
                similarity: Defined::new(
                    Similarity {
                        synthetic: memscan_metrics::profile::similarity_profile(&cos),
                        holdout: memscan_metrics::profile::similarity_profile(&[0.9, 0.95]),
                    },
                    "top-1 cosine",
                ),
                train_copied_fraction: Some(0.05),
                train_copied: Some(Defined::new(
                    TrainCopiedNamed {
                        n_train: 100,
                        count: 5,
                        fraction: 0.05,
                        top: (0..5)
                            .map(|i| CopiedTrainNamed {
                                train: format!("t<{i}>&.png"),
                                copies: 1,
                                best_synthetic: format!("syn_{i:02}.png"),
                                best_distance: 0.01 * i as f64,
                            })
                            .collect(),
                    },
                    "share of train copied",
                )),
                mia: Some(Mia {
                    setup: "members: train; non-members: holdout".into(),
                    n_members: 50,
                    n_nonmembers: 50,
                    n_reference: 0,
                    strongest: Some("distance".into()),
                    distance: Some(Defined::new(
                        AttackSummary {
                            auc: 0.7,
                            balanced_accuracy: 0.65,
                            tpr_at_fpr_0_01: 0.2,
                            tpr_at_fpr_0_001: 0.2,
                            n_members: 50,
                            n_nonmembers: 50,
                            ci95: None,
                            params: serde_json::json!({}),
                            roc,
                        },
                        "GAN-Leaks",
                    )),
                    distance_calibrated: None,
                    monte_carlo: None,
                    density_ratio: None,
                }),
                authpct: None,
                c_t: None,
                dcr: None,
                identifiability: None,
                mdcr: None,
                groups: None,
                metadata_leakage: None,
                absent,
            },
            verdict: Verdict {
                status: "memorization".into(),
                message: "5 of 30 synthetic images are copies".into(),
                budget_exceeded: true,
            },
            budgets: vec![BudgetCheck {
                expression: "copy_rate@fpr=0.01>0.01".into(),
                value: 5.0 / 30.0,
                exceeded: true,
            }],
            skipped: Vec::new(),
            warnings: vec!["a holdout of 50 images cannot resolve fpr=0.01".into()],
            runtime: Runtime {
                threads: 1,
                timings_s: Vec::new(),
                cache: Vec::new(),
            },
        };
        let copied = (0..5)
            .map(|i| CopiedThumbs {
                train: format!("t<{i}>&.png"),
                train_thumb: real_images.then(|| thumb(2)),
                synthetic_thumb: Some(thumb(1)),
            })
            .collect();
        AuditOutput {
            summary,
            synthetic,
            train: Vec::new(),
            fprs: vec![0.01],
            visuals: Visuals {
                real_images,
                thumbnail_max: 96,
                diff_gain: 8.0,
                gallery,
                copied,
                holdout_distance: Some((0..50).map(|i| 0.05 + 0.002 * i as f64).collect()),
                holdout_cosine: Some((0..50).map(|i| 0.9 + 0.001 * i as f64).collect()),
            },
        }
    }

    /// The `<svg>…</svg>` fragments of a page.
    fn svgs(html: &str) -> Vec<&str> {
        html.match_indices("<svg")
            .map(|(i, _)| {
                let end = html[i..].find("</svg>").expect("svg closed") + i + "</svg>".len();
                &html[i..end]
            })
            .collect()
    }

    #[test]
    fn every_section_is_rendered() {
        let html = render_html(&sample(true, 24));
        for id in [
            "contents",
            "verdict",
            "metrics",
            "distributions",
            "mia",
            "copied",
            "gallery",
        ] {
            assert!(
                html.contains(&format!("<section id=\"{id}\">")),
                "section {id} missing"
            );
            assert!(
                html.contains(&format!("href=\"#{id}\"")),
                "nav link {id} missing"
            );
        }
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("copy_rate@fpr=0.01"));
        assert!(html.contains("95 % CI"));
        assert!(html.contains("5.00 % – 35.00 %"), "CI rendered");
        assert!(html.contains("absent: no --threshold given &lt;here&gt;"));
        assert!(html.contains("holdout of 50 too small"));
        assert!(html.contains("exceeded — exit status 1"));
        assert!(
            html.contains("t(fpr=0.01) = 0.0450"),
            "threshold line drawn"
        );
        assert!(html.contains("real images embedded"));
        // Two histograms and two ROC plots.
        assert_eq!(svgs(&html).len(), 4);
    }

    #[test]
    fn the_gallery_has_one_item_per_pair() {
        for k in [0, 1, 24] {
            let html = render_html(&sample(true, k));
            assert_eq!(html.matches("<figure class=\"pair\"").count(), k);
            assert_eq!(html.contains("<section id=\"gallery\">"), k > 0);
            assert_eq!(html.matches("class=\"th diff\"").count(), k);
        }
    }

    #[test]
    fn no_network_resources() {
        let html = render_html(&sample(true, 24));
        for bad in ["http://", "https://", "src=\"//", "@import", "url("] {
            assert!(!html.contains(bad), "{bad} in the page");
        }
        // Every src is inline.
        for (i, _) in html.match_indices("src=\"") {
            assert!(html[i + 5..].starts_with("data:image/png;base64,"));
        }
    }

    #[test]
    fn no_images_leaves_out_every_real_image() {
        let html = render_html(&sample(false, 24));
        assert_eq!(html.matches("class=\"th train\"").count(), 0);
        assert_eq!(html.matches("class=\"th diff\"").count(), 0);
        // Synthetic thumbnails: 24 in the gallery, 5 in the most-copied table.
        assert_eq!(html.matches("class=\"th synthetic\"").count(), 29);
        assert_eq!(html.matches("data:image/png").count(), 29);
        assert!(html.contains("no real images"));
        assert!(!html.contains("real images embedded"));
        assert_eq!(html.matches("<figure class=\"pair\"").count(), 24);
        // Ids are still shown, escaped.
        assert!(html.contains("T t&lt;0&gt;&amp;.png"));
    }

    #[test]
    fn plots_are_well_formed_xml() {
        let html = render_html(&sample(true, 3));
        for s in svgs(&html) {
            let n = well_formed(s).unwrap_or_else(|e| panic!("{e}\n{s}"));
            assert!(
                n > 20,
                "a plot has its axes, ticks and curves ({n} elements)"
            );
        }
    }

    #[test]
    fn sections_without_data_are_left_out() {
        let mut out = sample(true, 0);
        out.summary.metrics.mia = None;
        out.summary.metrics.train_copied = None;
        out.visuals.holdout_distance = None;
        out.visuals.holdout_cosine = None;
        let html = render_html(&out);
        for id in ["mia", "copied", "gallery"] {
            assert!(!html.contains(&format!("<section id=\"{id}\">")), "{id}");
        }
        // The histogram still shows the synthetic distribution.
        assert!(html.contains("<section id=\"distributions\">"));
        assert_eq!(svgs(&html).len(), 2);
    }

    #[test]
    fn patient_and_leakage_tables() {
        use crate::summary::{
            AttributeCount, GroupMetrics, GroupRow, LeakedAttribute, LeakingImage, MetadataLeakage,
        };
        let mut out = sample(true, 3);
        let m = &mut out.summary.metrics;
        m.groups = Some(Defined::new(
            GroupMetrics {
                n_train_groups: 4,
                n_holdout_groups: 2,
                overlap_train_holdout: 1,
                copied: None,
                mia: Default::default(),
                ungrouped: Default::default(),
                source: "patient".into(),
                copied_groups: vec![GroupRow {
                    group: "patient 3".into(),
                    n_train: 5,
                    n_holdout: 0,
                    copied_train: 2,
                    copying_synthetic: 7,
                }],
            },
            "groups",
        ));
        m.metadata_leakage = Some(Defined::new(
            MetadataLeakage {
                n_synthetic_dicom: 2,
                n_with_identifying: 1,
                n_matching_training: 1,
                attributes: [
                    (
                        "PatientID".to_string(),
                        AttributeCount {
                            present: 1,
                            matches_training: 1,
                        },
                    ),
                    (
                        "StudyDate".to_string(),
                        AttributeCount {
                            present: 1,
                            matches_training: 0,
                        },
                    ),
                ]
                .into(),
                images: vec![LeakingImage {
                    synthetic: "gen<1>.dcm".into(),
                    attributes: vec![
                        LeakedAttribute {
                            name: "PatientID".into(),
                            matches_training: true,
                        },
                        LeakedAttribute {
                            name: "StudyDate".into(),
                            matches_training: false,
                        },
                    ],
                }],
            },
            "leakage",
        ));
        let html = render_html(&out);
        assert!(html.contains("<section id=\"patients\">"));
        assert!(html.contains("<td>patient 3</td>"));
        assert!(html.contains("not independent of the training set"));
        assert!(html.contains("<section id=\"leakage\">"));
        assert!(html.contains("gen&lt;1&gt;.dcm"));
        assert!(html.contains("<td class=\"hit\" title=\"matches a training patient\">✔</td>"));
        assert!(html.contains("✘"));
    }

    #[test]
    fn output_is_deterministic() {
        assert_eq!(
            render_html(&sample(true, 24)),
            render_html(&sample(true, 24))
        );
    }
}
