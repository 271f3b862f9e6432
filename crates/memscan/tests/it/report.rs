//! `report.html` of the demo audit: its content, `--no-images`, and a real browser.
//!
//! The browser test renders the page in headless Chromium (`/usr/bin/chromium`, Debian's
//! `chromium` package, which `.ci/run` installs): a screenshot must be written, the page must
//! log nothing to the console (no uncaught script error), and the DOM after scripts ran must
//! hold the expected gallery. Without Chromium the test fails when `CI` is set and is skipped
//! with a note otherwise. Set `MEMSCAN_SCREENSHOT` to a path to keep the screenshot.

use crate::util::{csv_rows, memscan, stderr, summary};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const GALLERY_SIZE: usize = memscan::GALLERY_SIZE;

/// Runs `memscan demo` into `out` and returns the page.
fn demo(out: &Path, extra: &[&str]) -> String {
    let mut args = vec!["demo", "--out", out.to_str().unwrap(), "-q"];
    args.extend_from_slice(extra);
    let o = memscan(&args, None);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::read_to_string(out.join("report.html")).expect("report.html written")
}

fn gallery_items(html: &str) -> usize {
    html.matches("<figure class=\"pair\"").count()
}

/// Runs Chromium headless on `page` with `args`; returns (stdout, stderr). Kills it after
/// two minutes.
fn chromium(profile: &Path, page: &Path, args: &[String]) -> (String, String) {
    let mut cmd = Command::new(CHROMIUM);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(args)
    .arg(format!("file://{}", page.display()))
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("chromium starts");
    // Drain the pipes on threads so a large DOM dump cannot block the browser.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for chromium") {
            break s;
        }
        if t0.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("chromium did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (o, e) = (t_out.join().unwrap(), t_err.join().unwrap());
    assert!(status.success(), "chromium failed: {status}\n{e}");
    (o, e)
}

#[test]
fn demo_report_has_every_section_and_the_gallery() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let html = demo(&out, &["--size", "32"]);
    assert_eq!(gallery_items(&html), GALLERY_SIZE);
    for id in [
        "contents",
        "verdict",
        "metrics",
        "distributions",
        "mia",
        "copied",
        "gallery",
    ] {
        assert!(html.contains(&format!("<section id=\"{id}\">")), "{id}");
    }
    assert!(!html.contains("http://") && !html.contains("https://"));
    assert!(html.matches("class=\"th train\"").count() > GALLERY_SIZE);
    assert_eq!(html.matches("class=\"th diff\"").count(), GALLERY_SIZE);
    let s = summary(&out);
    assert_eq!(s["config"]["no_images"], false);
}

#[test]
fn no_images_leaves_every_real_pixel_out() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let html = demo(&out, &["--size", "32", "--no-images"]);
    assert_eq!(gallery_items(&html), GALLERY_SIZE);
    assert_eq!(html.matches("class=\"th train\"").count(), 0);
    assert_eq!(html.matches("class=\"th diff\"").count(), 0);
    // Every embedded image is a synthetic thumbnail.
    assert_eq!(
        html.matches("data:image/png").count(),
        html.matches("class=\"th synthetic\"").count()
    );
    assert!(html.contains("no real images"));
    let s = summary(&out);
    assert_eq!(s["config"]["no_images"], true);
    // A synthetic image flagged as a copy shows a training image: withheld as well. The
    // gallery holds the GALLERY_SIZE closest pairs (distance, then input order).
    let mut rows = csv_rows(&out.join("synthetic.csv"));
    let d =
        |r: &std::collections::HashMap<String, String>| -> f64 { r["distance"].parse().unwrap() };
    rows.sort_by(|a, b| d(a).total_cmp(&d(b)));
    let shown = rows[..GALLERY_SIZE]
        .iter()
        .filter(|r| !(d(r) == 0.0 || r["copy"] == "true" || r["ratio_copy"] == "true"))
        .count();
    assert!(
        shown < GALLERY_SIZE,
        "the demo's closest pairs include copies"
    );
    assert_eq!(html.matches("class=\"th synthetic\"").count(), shown);
}

#[test]
fn demo_report_renders_in_chromium_without_console_errors() {
    if !Path::new(CHROMIUM).exists() {
        if std::env::var_os("CI").is_some() {
            panic!("{CHROMIUM} is missing; CI installs it (apt-get install chromium)");
        }
        eprintln!("skipping the browser test: {CHROMIUM} not found (apt-get install chromium)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let html = demo(&out, &[]);
    let page = out.join("report.html");
    let size = html.len();
    assert!(
        size < 2_000_000,
        "the demo report stays small ({size} bytes)"
    );

    let shot: PathBuf = std::env::var_os("MEMSCAN_SCREENSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.path().join("report.png"));
    let (_, log) = chromium(
        &dir.path().join("profile-shot"),
        &page,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,4000".into(),
        ],
    );
    let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot: {e}\n{log}"));
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
    assert!(png.len() > 50_000, "the screenshot shows a page");

    let (dom, log) = chromium(
        &dir.path().join("profile-dom"),
        &page,
        &[
            "--dump-dom".into(),
            "--enable-logging=stderr".into(),
            "--v=0".into(),
        ],
    );
    let console: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .collect();
    assert!(console.is_empty(), "console messages: {console:#?}");
    assert_eq!(
        gallery_items(&dom),
        GALLERY_SIZE,
        "gallery items in the DOM"
    );
    assert!(dom.contains("id=\"gallery-sort\""));
    assert_eq!(
        dom.matches("<svg").count(),
        4,
        "two histograms, two ROC plots"
    );
}
