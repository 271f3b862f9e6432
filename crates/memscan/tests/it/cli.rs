//! Exit codes, budgets and bad-input handling of the `memscan` binary.

use crate::util::{constant_npy, memscan, scan_args, stderr, summary};
use std::path::{Path, PathBuf};

/// A tiny valid audit: train/holdout/synthetic as constant-image `.npy` batches, synthetic
/// holding one exact copy.
fn tiny(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let t = constant_npy(&dir.join("train.npy"), &[0.0, 0.25, 0.5, 0.75], 4);
    let s = constant_npy(&dir.join("syn.npy"), &[0.5, 0.125, 0.375, 0.9375], 4);
    let h = constant_npy(
        &dir.join("hold.npy"),
        &[0.0625, 0.3125, 0.5625, 0.875, 1.0],
        4,
    );
    (t, s, h)
}

/// `memscan scan` of the tiny audit at 4×4, with `extra` arguments.
fn args(t: &Path, s: &Path, h: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut a = vec!["--size", "4"];
    a.extend_from_slice(extra);
    scan_args(t, s, Some(h), out, &a)
}

fn run(a: &[String]) -> std::process::Output {
    memscan(&a.iter().map(String::as_str).collect::<Vec<_>>(), None)
}

#[test]
fn usage_errors_exit_2() {
    let o = memscan(&["scan", "--synthetic", "x"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--train"), "{}", stderr(&o));
    let o = memscan(
        &[
            "scan",
            "--train",
            "a",
            "--synthetic",
            "b",
            "--out",
            "c",
            "--fail-if",
            "nonsense",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("invalid --fail-if"), "{}", stderr(&o));
}

#[test]
fn help_exits_0() {
    let o = memscan(&["scan", "--help"], None);
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn exceeded_budget_exits_1_and_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let (t, s, h) = tiny(dir.path());
    let out = dir.path().join("out");
    let o = run(&args(&t, &s, &h, &out, &["--fail-if", "ratio_rate>0.1"]));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let sm = summary(&out);
    assert_eq!(sm["budgets"][0]["exceeded"], true);
    assert_eq!(sm["verdict"]["budget_exceeded"], true);

    let a = args(
        &t,
        &s,
        &h,
        &out,
        &[
            "--fail-if",
            "ratio_rate>0.9",
            "--fail-if",
            "copy_rate@fpr=0.3>0.99",
        ],
    );
    let o = run(&a);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The budget's FPR was calibrated although not requested otherwise.
    let sm = summary(&out);
    assert!(sm["metrics"]["copy_rate"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["fpr"] == 0.3));
}

#[test]
fn budget_on_an_absent_metric_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (t, s, _) = tiny(dir.path());
    let out = dir.path().join("out");
    let extra = ["--size", "4", "--fail-if", "mia.distance.auc>0.6"];
    let o = run(&scan_args(&t, &s, None, &out, &extra));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("requires --holdout"), "{}", stderr(&o));
}

/// Each bad input: exit 2 with the file named; with --skip-bad the run goes on and lists it.
#[test]
fn bad_inputs_name_the_file_and_can_be_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let (t, _, h) = tiny(dir.path());
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated.png", {
            let mut buf = Vec::new();
            image::GrayImage::from_pixel(8, 8, image::Luma([7]))
                .write_to(&mut std::io::Cursor::new(&mut buf), image::ImageFormat::Png)
                .unwrap();
            buf.truncate(buf.len() / 2);
            buf
        }),
        ("garbage.jpg", b"definitely not a jpeg".to_vec()),
        ("scan.xyz", b"unknown format".to_vec()),
    ];
    for (name, bytes) in cases {
        let syn = dir.path().join(format!("syn_{name}"));
        std::fs::create_dir_all(&syn).unwrap();
        crate::util::constant_npy(&syn.join("good.npy"), &[0.5, 0.25], 4);
        std::fs::write(syn.join(name), &bytes).unwrap();
        let out = dir.path().join(format!("out_{name}"));
        let o = run(&args(&t, &syn, &h, &out, &[]));
        assert_eq!(o.status.code(), Some(2), "{name}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(name),
            "{name}: error must name the file: {}",
            stderr(&o)
        );
        assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));

        let o = run(&args(&t, &syn, &h, &out, &["--skip-bad"]));
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(name),
            "{name}: a warning names the skipped file"
        );
        let sm = summary(&out);
        assert_eq!(sm["skipped"][0]["role"], "synthetic");
        assert!(sm["skipped"][0]["path"].as_str().unwrap().contains(name));
        assert_eq!(sm["inputs"]["synthetic"]["count"], 2);
    }
}

#[test]
fn empty_folder_and_missing_path_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let (t, _, h) = tiny(dir.path());
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = dir.path().join("out");
    let o = run(&args(&t, &empty, &h, &out, &[]));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("synthetic") && stderr(&o).contains("empty"),
        "{}",
        stderr(&o)
    );
    let missing = dir.path().join("nope");
    let o = run(&args(&t, &missing, &h, &out, &[]));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("nope"), "{}", stderr(&o));
}

#[test]
fn nan_in_a_float_array_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (t, _, h) = tiny(dir.path());
    let bad = constant_npy(&dir.path().join("nan.npy"), &[0.5, f32::NAN], 4);
    let out = dir.path().join("out");
    let o = run(&args(&t, &bad, &h, &out, &[]));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("nan.npy"), "{}", stderr(&o));
}

#[test]
fn real_sets_must_be_disjoint() {
    let dir = tempfile::tempdir().unwrap();
    let (t, s, h) = tiny(dir.path());
    let out = dir.path().join("out");
    let p = |p: &Path| p.display().to_string();
    // A reference equal to the holdout or to the training set voids the calibrated attack:
    // usage error naming the problem.
    for (r, what) in [(&h, "the holdout set"), (&t, "the training set")] {
        let o = run(&args(&t, &s, &h, &out, &["--reference", &p(r)]));
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!("reference set has the same content as {what}")),
            "{}",
            stderr(&o)
        );
    }
    // Single shared images are warned about, naming one pair.
    let h2 = constant_npy(
        &dir.path().join("hold2.npy"),
        &[0.0625, 0.25, 0.5625, 0.875, 1.0],
        4,
    );
    let r2 = constant_npy(&dir.path().join("ref2.npy"), &[0.1, 0.2, 0.875, 0.3], 4);
    let o = run(&args(&t, &s, &h2, &out, &["--reference", &p(&r2)]));
    assert!(o.status.success(), "{}", stderr(&o));
    let w = summary(&out)["warnings"].to_string();
    assert!(
        w.contains("1 of 5 holdout images have the same content as train images (e.g. holdout hold2.npy#1 = train train.npy#1)"),
        "{w}"
    );
    assert!(
        w.contains("1 of 4 reference images have the same content as holdout images (e.g. reference ref2.npy#2 = holdout hold2.npy#3)"),
        "{w}"
    );
    assert!(
        !w.contains("reference images have the same content as train"),
        "{w}"
    );
}

#[test]
fn mdcr_with_a_zero_denominator_is_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let (_, s, h) = tiny(dir.path());
    // Every training image has a duplicate: median train → other-train distance 0.
    let t = constant_npy(&dir.path().join("dup.npy"), &[0.25, 0.25, 0.5, 0.5], 4);
    let out = dir.path().join("out");
    let o = run(&args(&t, &s, &h, &out, &[]));
    assert!(o.status.success(), "{}", stderr(&o));
    let j = summary(&out);
    assert_eq!(j["metrics"]["mdcr"]["median_train_to_train"], 0.0);
    assert_eq!(j["metrics"]["mdcr"]["value"], 0.0);
    let w = j["warnings"].to_string();
    assert!(w.contains("mdcr is 0 by syntheval's convention"), "{w}");
}

#[test]
fn unwritable_out_is_a_usage_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (t, s, h) = tiny(dir.path());
    let out = dir.path().join("a_file");
    std::fs::write(&out, "not a directory").unwrap();
    let o = run(&args(&t, &s, &h, &out, &[]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("cannot write reports to") && e.contains("a_file"),
        "{e}"
    );
    // Nothing was left behind in a writable --out.
    let out = dir.path().join("ok");
    let o = run(&args(&t, &s, &h, &out, &[]));
    assert!(o.status.success(), "{}", stderr(&o));
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "mia_roc.csv",
            "report.html",
            "summary.json",
            "summary.md",
            "synthetic.csv",
            "train.csv"
        ]
    );
}
