//! Hand-made inline SVG plots for `report.html`: overlaid histograms with vertical threshold
//! lines, and ROC curves on linear or log–log axes.
//!
//! The output is a well-formed XML fragment (an `<svg>` element without a namespace, which
//! HTML5 does not need), with every text node escaped, and is deterministic: coordinates are
//! printed with a fixed number of decimals.

use std::fmt::Write;

const W: f64 = 520.0;
const H: f64 = 320.0;
const LEFT: f64 = 68.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 52.0;
const BOTTOM: f64 = 48.0;

/// Escapes text for HTML and XML (text nodes and quoted attributes).
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One set of values of a histogram.
pub(crate) struct Series<'a> {
    pub name: &'a str,
    pub color: &'a str,
    pub values: &'a [f64],
}

/// A vertical line with a label (a threshold).
pub(crate) struct VLine {
    pub x: f64,
    pub label: String,
    pub color: &'static str,
}

/// One ROC curve: `(fpr, tpr)` points in order of decreasing score threshold.
pub(crate) struct Curve<'a> {
    pub name: String,
    pub color: &'a str,
    pub points: Vec<(f64, f64)>,
}

/// "Nice" tick positions (1, 2, 5 × 10^k) covering `[lo, hi]`, about `n` of them.
fn ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let span = hi - lo;
    if span.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) || !span.is_finite() {
        return vec![lo];
    }
    let raw = span / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= n as f64)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// Tick label with just enough decimals to tell ticks `step` apart.
fn tick_label(v: f64, step: f64) -> String {
    let decimals = (0..=6)
        .find(|&d| {
            let s = step * 10f64.powi(d);
            (s - s.round()).abs() < 1e-6 * s.max(1.0)
        })
        .unwrap_or(6) as usize;
    let v = if v.abs() < step * 1e-9 { 0.0 } else { v };
    format!("{v:.decimals$}")
}

struct Frame {
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
    xlog: bool,
    ylog: bool,
}

impl Frame {
    fn px(&self, x: f64) -> f64 {
        let (a, b, x) = if self.xlog {
            (self.x0.log10(), self.x1.log10(), x.max(self.x0).log10())
        } else {
            (self.x0, self.x1, x)
        };
        LEFT + (x - a) / (b - a) * (W - LEFT - RIGHT)
    }
    fn py(&self, y: f64) -> f64 {
        let (a, b, y) = if self.ylog {
            (self.y0.log10(), self.y1.log10(), y.max(self.y0).log10())
        } else {
            (self.y0, self.y1, y)
        };
        H - BOTTOM - (y - a) / (b - a) * (H - TOP - BOTTOM)
    }
}

fn open(svg: &mut String, title: &str, aria: &str) {
    let _ = write!(
        svg,
        r##"<svg class="plot" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{}"><title>{}</title><rect x="0" y="0" width="{W}" height="{H}" fill="#ffffff"/><text x="{LEFT}" y="20" class="pt">{}</text>"##,
        esc(aria),
        esc(aria),
        esc(title)
    );
}

/// Axes, grid and labels. `xt`/`yt` are (value, label) ticks.
fn axes(
    svg: &mut String,
    f: &Frame,
    xt: &[(f64, String)],
    yt: &[(f64, String)],
    xl: &str,
    yl: &str,
) {
    let (l, r, t, b) = (LEFT, W - RIGHT, TOP, H - BOTTOM);
    for (v, s) in yt {
        let y = f.py(*v);
        let _ = write!(
            svg,
            r##"<line x1="{l:.1}" y1="{y:.1}" x2="{r:.1}" y2="{y:.1}" class="grid"/><text x="{:.1}" y="{:.1}" class="tk" text-anchor="end">{}</text>"##,
            l - 6.0,
            y + 4.0,
            esc(s)
        );
    }
    for (v, s) in xt {
        let x = f.px(*v);
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" y1="{t:.1}" x2="{x:.1}" y2="{b:.1}" class="grid"/><text x="{x:.1}" y="{:.1}" class="tk" text-anchor="middle">{}</text>"##,
            b + 16.0,
            esc(s)
        );
    }
    let _ = write!(
        svg,
        r##"<rect x="{l:.1}" y="{t:.1}" width="{:.1}" height="{:.1}" class="frame"/><text x="{:.1}" y="{:.1}" class="al" text-anchor="middle">{}</text><text transform="translate(15 {:.1}) rotate(-90)" class="al" text-anchor="middle">{}</text>"##,
        r - l,
        b - t,
        (l + r) / 2.0,
        H - 10.0,
        esc(xl),
        (t + b) / 2.0,
        esc(yl)
    );
}

/// Legend entries in one row between the title and the frame.
fn legend(svg: &mut String, items: &[(String, &str, bool)]) {
    let mut x = LEFT;
    let y = 41.0;
    for (name, color, dashed) in items {
        let dash = if *dashed {
            r#" stroke-dasharray="5 3""#
        } else {
            ""
        };
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{color}" stroke-width="3"{dash}/><text x="{:.1}" y="{:.1}" class="lg">{}</text>"##,
            y - 4.0,
            x + 18.0,
            y - 4.0,
            x + 24.0,
            y,
            esc(name)
        );
        // About 6.5 px per character at 12 px.
        x += 24.0 + 6.5 * name.chars().count() as f64 + 18.0;
    }
}

/// Overlaid histograms of `series` over `[lo, hi]` in `bins` bins; the y axis is the share
/// of each series' (finite) values per bin, so sets of different sizes compare.
pub(crate) fn histogram(
    title: &str,
    x_label: &str,
    series: &[Series],
    vlines: &[VLine],
    (lo, hi): (f64, f64),
    bins: usize,
) -> String {
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        (lo - 0.5, lo + 0.5)
    };
    let width = (hi - lo) / bins as f64;
    let shares: Vec<Vec<f64>> = series
        .iter()
        .map(|s| {
            let mut c = vec![0usize; bins];
            let mut n = 0usize;
            for &v in s.values.iter().filter(|v| v.is_finite()) {
                let b = (((v - lo) / width).floor().max(0.0) as usize).min(bins - 1);
                c[b] += 1;
                n += 1;
            }
            c.iter().map(|&k| k as f64 / n.max(1) as f64).collect()
        })
        .collect();
    let ymax = shares
        .iter()
        .flatten()
        .fold(0.0f64, |a, &b| a.max(b))
        .max(1e-9)
        * 1.12;
    let f = Frame {
        x0: lo,
        x1: hi,
        y0: 0.0,
        y1: ymax,
        xlog: false,
        ylog: false,
    };
    let mut svg = String::new();
    open(&mut svg, title, &format!("{title}: histogram"));
    let xs = ticks(lo, hi, 6);
    let xstep = xs.get(1).map_or(1.0, |b| b - xs[0]);
    let ys = ticks(0.0, ymax, 5);
    let ystep = ys.get(1).map_or(1.0, |b| b - ys[0]);
    let xt: Vec<(f64, String)> = xs.iter().map(|&v| (v, tick_label(v, xstep))).collect();
    let yt: Vec<(f64, String)> = ys
        .iter()
        .map(|&v| (v, format!("{} %", tick_label(100.0 * v, 100.0 * ystep))))
        .collect();
    axes(&mut svg, &f, &xt, &yt, x_label, "share of images per bin");
    for (s, sh) in series.iter().zip(&shares) {
        let mut d = format!("M{:.1} {:.1}", f.px(lo), f.py(0.0));
        for (b, &v) in sh.iter().enumerate() {
            let (a, z) = (lo + b as f64 * width, lo + (b + 1) as f64 * width);
            let _ = write!(
                d,
                " L{:.1} {:.1} L{:.1} {:.1}",
                f.px(a),
                f.py(v),
                f.px(z),
                f.py(v)
            );
        }
        let _ = write!(d, " L{:.1} {:.1} Z", f.px(hi), f.py(0.0));
        let _ = write!(
            svg,
            r##"<path d="{d}" fill="{c}" fill-opacity="0.22" stroke="{c}" stroke-width="1.6" stroke-linejoin="round"/>"##,
            c = s.color
        );
    }
    for (i, v) in vlines.iter().enumerate() {
        if !(v.x >= lo && v.x <= hi) {
            continue;
        }
        let x = f.px(v.x);
        let y = TOP + 14.0 + 14.0 * i as f64;
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" y1="{TOP:.1}" x2="{x:.1}" y2="{:.1}" stroke="{c}" stroke-width="1.5" stroke-dasharray="5 3"/><text x="{:.1}" y="{y:.1}" class="vl" fill="{c}" stroke="#ffffff" stroke-width="3" paint-order="stroke">{}</text>"##,
            H - BOTTOM,
            x + 4.0,
            esc(&v.label),
            c = v.color
        );
    }
    let items: Vec<(String, &str, bool)> = series
        .iter()
        .map(|s| {
            let n = s.values.iter().filter(|v| v.is_finite()).count();
            (format!("{} (n = {n})", s.name), s.color, false)
        })
        .collect();
    legend(&mut svg, &items);
    svg.push_str("</svg>");
    svg
}

/// Decade ticks from `lo` (a power of ten) to 1.
fn decades(lo: f64) -> Vec<(f64, String)> {
    let k = -lo.log10().round() as i32;
    (0..=k)
        .rev()
        .map(|e| {
            let v = 10f64.powi(-e);
            let s = if e <= 3 {
                format!("{v}")
            } else {
                format!("1e-{e}")
            };
            (v, s)
        })
        .collect()
}

/// ROC curves with the chance diagonal; on log–log axes zero rates are drawn at the axis
/// floor `lo` (the largest power of ten at or below 1/(2n), n = the larger class).
pub(crate) fn roc(title: &str, curves: &[Curve], log: bool, lo: f64) -> String {
    let lo = if log { lo } else { 0.0 };
    let f = Frame {
        x0: lo,
        x1: 1.0,
        y0: lo,
        y1: 1.0,
        xlog: log,
        ylog: log,
    };
    let mut svg = String::new();
    open(&mut svg, title, &format!("{title}: ROC curve"));
    let t: Vec<(f64, String)> = if log {
        decades(lo)
    } else {
        ticks(0.0, 1.0, 5)
            .into_iter()
            .map(|v| (v, tick_label(v, 0.2)))
            .collect()
    };
    axes(
        &mut svg,
        &f,
        &t,
        &t,
        "false-positive rate (non-members flagged)",
        "true-positive rate (members flagged)",
    );
    // Chance: TPR = FPR.
    let chance: Vec<f64> = if log {
        let a = lo.log10();
        (0..=40)
            .map(|i| 10f64.powf(a - a * i as f64 / 40.0))
            .collect()
    } else {
        vec![0.0, 1.0]
    };
    let mut d = String::new();
    for (i, &v) in chance.iter().enumerate() {
        let _ = write!(
            d,
            "{}{:.1} {:.1}",
            if i == 0 { "M" } else { " L" },
            f.px(v),
            f.py(v)
        );
    }
    let _ = write!(
        svg,
        r##"<path d="{d}" fill="none" stroke="#8a94a6" stroke-width="1.2" stroke-dasharray="5 3"/>"##
    );
    for c in curves {
        let mut d = String::new();
        for (i, &(x, y)) in c.points.iter().enumerate() {
            let _ = write!(
                d,
                "{}{:.1} {:.1}",
                if i == 0 { "M" } else { " L" },
                f.px(x),
                f.py(y)
            );
        }
        let _ = write!(
            svg,
            r##"<path d="{d}" fill="none" stroke="{}" stroke-width="2.2" stroke-linejoin="round"/>"##,
            c.color
        );
    }
    let mut items: Vec<(String, &str, bool)> = curves
        .iter()
        .map(|c| (c.name.clone(), c.color, false))
        .collect();
    items.push(("chance".into(), "#8a94a6", true));
    legend(&mut svg, &items);
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Checks that `s` is a well-formed XML fragment: tags balance and nest, attributes are
    /// quoted, and `&`/`<` appear only as entity or tag starts. Enough for generated SVG.
    pub(crate) fn well_formed(s: &str) -> Result<usize, String> {
        let b = s.as_bytes();
        let mut stack: Vec<String> = Vec::new();
        let mut n = 0;
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'<' => {
                    let end = s[i..].find('>').ok_or("unclosed tag")? + i;
                    let tag = &s[i + 1..end];
                    if let Some(name) = tag.strip_prefix('/') {
                        let open = stack.pop().ok_or(format!("stray </{name}>"))?;
                        if open != name.trim() {
                            return Err(format!("<{open}> closed by </{name}>"));
                        }
                    } else {
                        let self_closing = tag.ends_with('/');
                        let body = tag.trim_end_matches('/');
                        let name = body.split_whitespace().next().ok_or("empty tag")?;
                        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                            return Err(format!("bad tag name {name:?}"));
                        }
                        let attrs = &body[name.len()..];
                        if attrs.matches('"').count() % 2 != 0 || attrs.contains('<') {
                            return Err(format!("bad attributes in <{tag}>"));
                        }
                        // Every `=` in the attributes is followed by a quote.
                        let mut in_q = false;
                        for (j, c) in attrs.char_indices() {
                            match c {
                                '"' => in_q = !in_q,
                                '=' if !in_q && !attrs[j + 1..].starts_with('"') => {
                                    return Err(format!("unquoted attribute in <{tag}>"))
                                }
                                _ => {}
                            }
                        }
                        n += 1;
                        if !self_closing {
                            stack.push(name.to_string());
                        }
                    }
                    i = end + 1;
                }
                b'&' => {
                    let end = s[i..].find(';').ok_or("bare &")? + i;
                    let ent = &s[i + 1..end];
                    if ent.is_empty() || !ent.chars().all(|c| c.is_ascii_alphanumeric() || c == '#')
                    {
                        return Err(format!("bad entity &{ent};"));
                    }
                    i = end + 1;
                }
                b'>' => return Err("stray >".into()),
                _ => i += 1,
            }
        }
        if let Some(open) = stack.pop() {
            return Err(format!("<{open}> never closed"));
        }
        Ok(n)
    }

    #[test]
    fn the_checker_rejects_malformed_xml() {
        assert!(well_formed("<svg><g></g></svg>").is_ok());
        assert!(well_formed("<svg><g></svg>").is_err());
        assert!(well_formed("<svg>a & b</svg>").is_err());
        assert!(well_formed("<svg a=1/>").is_err());
        assert!(well_formed("<svg>1 < 2</svg>").is_err());
    }

    #[test]
    fn ticks_are_nice_and_cover_the_range() {
        let t: Vec<String> = ticks(0.0, 1.0, 5)
            .iter()
            .map(|&v| tick_label(v, 0.2))
            .collect();
        assert_eq!(t, ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
        let t = ticks(0.0, 0.37, 6);
        assert_eq!(t.first(), Some(&0.0));
        assert!(t.len() >= 4 && t.len() <= 8, "{t:?}");
        assert_eq!(tick_label(0.05, 0.05), "0.05");
        assert_eq!(tick_label(0.25, 0.25), "0.25");
        assert_eq!(tick_label(2.0, 1.0), "2");
    }

    #[test]
    fn histogram_is_well_formed_and_escapes_text() {
        let a = [0.0, 0.1, 0.1, 0.2, f64::NAN];
        let b = [0.15, 0.2, 0.3];
        let svg = histogram(
            "d1 <pixel> & more",
            "d1",
            &[
                Series {
                    name: "synthetic",
                    color: "#d9480f",
                    values: &a,
                },
                Series {
                    name: "holdout",
                    color: "#1c7ed6",
                    values: &b,
                },
            ],
            &[VLine {
                x: 0.12,
                label: "t<0.01>".into(),
                color: "#c92a2a",
            }],
            (0.0, 0.3),
            10,
        );
        let n = well_formed(&svg).unwrap_or_else(|e| panic!("{e}\n{svg}"));
        assert!(n > 20, "{n}");
        assert_eq!(svg.matches("<path").count(), 2);
        assert!(svg.contains("t&lt;0.01&gt;"));
        assert!(svg.contains("synthetic (n = 4)"), "NaN is not counted");
    }

    #[test]
    fn roc_plots_are_well_formed_on_both_axes() {
        let c = Curve {
            name: "distance (AUC 0.7)".into(),
            color: "#5f3dc4",
            points: vec![(0.0, 0.0), (0.0, 0.3), (0.01, 0.4), (0.5, 0.9), (1.0, 1.0)],
        };
        for log in [false, true] {
            let svg = roc("MIA", std::slice::from_ref(&c), log, 1e-3);
            well_formed(&svg).unwrap_or_else(|e| panic!("{e}\n{svg}"));
            assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        }
        let svg = roc("MIA", &[c], true, 1e-3);
        assert!(svg.contains(">0.001<") && svg.contains(">0.01<"));
    }
}
