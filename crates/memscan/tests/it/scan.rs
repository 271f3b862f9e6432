//! End-to-end audits of generated phantom datasets with known copies.

use crate::util::{self, csv_rows, stderr, summary};
use memscan_datasets::demo::{write_demo, DemoSpec, DemoTruth};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Audits a demo folder (`train/`, `synthetic/`, `holdout/`).
fn scan(data: &Path, out: &Path, extra: &[&str], threads: Option<usize>) -> std::process::Output {
    let (t, s, h) = (
        data.join("train"),
        data.join("synthetic"),
        data.join("holdout"),
    );
    util::scan(&t, &s, Some(&h), out, extra, threads)
}

/// A demo dataset of `size`² images under `dir/data`.
fn demo(dir: &Path, size: u32) -> (PathBuf, DemoTruth) {
    let data = dir.join("data");
    let spec = DemoSpec {
        size,
        ..DemoSpec::default()
    };
    let truth = write_demo(&data, &spec).unwrap();
    (data, truth)
}

fn strip(path: &str, role: &str) -> String {
    path.strip_prefix(&format!("{role}/"))
        .unwrap_or(path)
        .to_string()
}

#[test]
fn exact_and_perturbed_copies_are_flagged_and_matched() {
    let dir = tempfile::tempdir().unwrap();
    let (data, truth) = demo(dir.path(), 32);
    let out = dir.path().join("out");
    let o = scan(&data, &out, &["--size", "32"], None);
    assert!(o.status.success(), "{}", stderr(&o));

    let source: HashMap<String, Option<String>> = truth
        .rows
        .iter()
        .map(|r| {
            (
                strip(&r.synthetic, "synthetic"),
                r.train.as_ref().map(|t| strip(t, "train")),
            )
        })
        .collect();
    let rows = csv_rows(&out.join("synthetic.csv"));
    assert_eq!(rows.len(), truth.rows.len());
    let mut n_copies = 0;
    for r in &rows {
        if let Some(Some(src)) = source.get(&r["synthetic"]) {
            n_copies += 1;
            assert_eq!(r["copy"], "true", "injected copy not flagged: {r:?}");
            assert_eq!(
                &r["train"], src,
                "copy matched to the wrong training image: {r:?}"
            );
        }
    }
    assert!(n_copies >= 20, "the demo injects copies ({n_copies})");
    let s = summary(&out);
    assert_eq!(s["verdict"]["status"], "memorization");
}

#[test]
fn fresh_images_are_flagged_at_about_the_target_fpr() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let spec = DemoSpec {
        size: 32,
        n_patients_train: 200,
        slices_per_patient: 2,
        n_holdout: 1000,
        n_synthetic_novel: 1000,
        n_exact_copies: 0,
        n_perturbed_copies: 0,
        seed: 7,
        ..DemoSpec::default()
    };
    write_demo(&data, &spec).unwrap();
    let out = dir.path().join("out");
    let o = scan(&data, &out, &["--size", "32", "--fpr", "0.05"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = summary(&out);
    let rate = s["metrics"]["copy_rate"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["fpr"].as_f64() == Some(0.05))
        .unwrap()["rate"]
        .as_f64()
        .unwrap();
    // Binomial sd at n = 1000, p = 0.05 is 0.007 (plus the calibration's own noise).
    assert!(
        (0.02..=0.08).contains(&rate),
        "novel images flagged at {rate}, target 0.05"
    );
    assert_eq!(s["verdict"]["status"], "no_evidence");
    let auc = s["metrics"]["mia"]["distance"]["auc"].as_f64().unwrap();
    assert!(
        (0.4..=0.6).contains(&auc),
        "no memorization ⇒ MIA near chance, got {auc}"
    );
}

#[test]
fn output_is_byte_identical_for_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let (data, _) = demo(dir.path(), 32);
    let outs: Vec<_> = [1usize, 3]
        .iter()
        .map(|&t| {
            let out = dir.path().join(format!("out{t}"));
            let o = scan(&data, &out, &["--size", "32", "--seed", "5"], Some(t));
            assert!(o.status.success(), "{}", stderr(&o));
            out
        })
        .collect();
    for f in [
        "synthetic.csv",
        "train.csv",
        "mia_roc.csv",
        "summary.md",
        "report.html",
    ] {
        let a = std::fs::read(outs[0].join(f)).unwrap();
        let b = std::fs::read(outs[1].join(f)).unwrap();
        assert!(a == b, "{f} differs between 1 and 3 threads");
    }
    let mut a = summary(&outs[0]);
    let mut b = summary(&outs[1]);
    assert_eq!(a["runtime"]["threads"], 1);
    assert_eq!(b["runtime"]["threads"], 3);
    a.as_object_mut().unwrap().remove("runtime");
    b.as_object_mut().unwrap().remove("runtime");
    // Output paths differ only in the out dir, which summary.json does not record.
    assert_eq!(a, b);
}

#[test]
fn without_holdout_the_calibrated_metrics_are_absent_not_zero() {
    let dir = tempfile::tempdir().unwrap();
    let (data, _) = demo(dir.path(), 32);
    let out = dir.path().join("out");
    let (t, syn) = (data.join("train"), data.join("synthetic"));
    let o = util::scan(&t, &syn, None, &out, &["--size", "32"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no --holdout"),
        "a warning says what is lost: {}",
        stderr(&o)
    );
    let s = summary(&out);
    let m = &s["metrics"];
    assert!(m["copy_rate"].is_null());
    assert!(m["train_copied_fraction"].is_null());
    assert!(m["mia"].is_null());
    assert!(m["absent"]["copy_rate"]
        .as_str()
        .unwrap()
        .contains("--holdout"));
    assert!(
        m["ratio_rate"].as_f64().unwrap() > 0.0,
        "exact copies pass the ratio test"
    );
    let rows = csv_rows(&out.join("synthetic.csv"));
    assert!(
        rows.iter().all(|r| r["copy"].is_empty()),
        "no calibrated flag without holdout"
    );
}

#[test]
fn hnsw_index_finds_the_same_copies_as_exact_search() {
    let dir = tempfile::tempdir().unwrap();
    let (data, _) = demo(dir.path(), 32);
    let exact = dir.path().join("exact");
    let hnsw = dir.path().join("hnsw");
    let fast = ["--size", "32", "--bootstrap", "0"];
    let o = scan(&data, &exact, &fast, None);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut args = fast.to_vec();
    args.extend(["--index", "hnsw", "--verify-recall", "100"]);
    let o = scan(&data, &hnsw, &args, None);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = summary(&hnsw);
    assert_eq!(s["index"]["kind"], "hnsw", "{}", s["index"]);
    assert_eq!(s["index"]["requested"], "hnsw");
    assert!(s["index"]["recall"]["at_1"].as_f64().unwrap() >= 0.99);
    // The size-dependent defaults for a small training set, as used.
    let p = &s["index"]["parameters"];
    assert_eq!(
        (p["m"].as_u64(), p["ef_search"].as_u64()),
        (Some(16), Some(64)),
        "{p}"
    );
    // Exact re-ranking: the same neighbours and distances, hence the same flags.
    let a = csv_rows(&exact.join("synthetic.csv"));
    let b = csv_rows(&hnsw.join("synthetic.csv"));
    let same = a
        .iter()
        .zip(&b)
        .filter(|(x, y)| x["train"] == y["train"] && x["distance"] == y["distance"])
        .count();
    assert!(
        same as f64 >= 0.99 * a.len() as f64,
        "{same} of {}",
        a.len()
    );
    for (x, y) in a.iter().zip(&b) {
        if x["copy"] == "true" {
            assert_eq!(y["copy"], "true", "HNSW missed a copy: {x:?}");
        }
    }
}

#[test]
fn monte_carlo_counts_are_exact_whatever_mc_k() {
    // With --mc-k 1 every query with a synthetic image inside ε saturates and is searched
    // again; the scores must equal a search of all synthetic images at once.
    let dir = tempfile::tempdir().unwrap();
    let (data, _) = demo(dir.path(), 16);
    let column = |k: &str| -> Vec<String> {
        let out = dir.path().join(format!("out-{k}"));
        let o = scan(
            &data,
            &out,
            &["--size", "16", "--mc-k", k, "--bootstrap", "0"],
            None,
        );
        assert!(o.status.success(), "{}", stderr(&o));
        csv_rows(&out.join("train.csv"))
            .iter()
            .map(|r| r["mia_monte_carlo_score"].clone())
            .collect()
    };
    let (few, all) = (column("1"), column("100000"));
    assert!(
        few.iter()
            .filter_map(|s| s.parse::<f64>().ok())
            .any(|s| s > 0.0),
        "some members have synthetic images within ε"
    );
    assert_eq!(few, all);
}

#[test]
fn with_groups_the_reference_split_keeps_patients_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (data, truth) = demo(dir.path(), 16);
    let out = dir.path().join("out");
    let groups = data.join("groups.csv").display().to_string();
    assert!(!truth.groups.is_empty());
    let o = scan(
        &data,
        &out,
        &["--size", "16", "--groups", &groups, "--bootstrap", "0"],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let s = summary(&out);
    let setup = s["metrics"]["mia"]["setup"].as_str().unwrap();
    assert!(setup.contains("split by patient"), "{setup}");
    let o = scan(&data, &out, &["--size", "16", "--bootstrap", "0"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let setup = summary(&out)["metrics"]["mia"]["setup"].clone();
    assert!(
        setup.as_str().unwrap().contains("split by image"),
        "{setup}"
    );
}

/// Blank slices are normal inputs: a blank synthetic image that equals a blank training image
/// is not by itself evidence of memorization when blank holdout images (which the generator
/// never saw) equal it too, and the blank holdout images' pull on the threshold is reported.
#[test]
fn blank_images_in_every_set_are_not_memorization() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let spec = DemoSpec {
        size: 32,
        n_patients_train: 100,
        slices_per_patient: 2,
        n_holdout: 300,
        n_synthetic_novel: 200,
        n_exact_copies: 0,
        n_perturbed_copies: 0,
        seed: 11,
        ..DemoSpec::default()
    };
    write_demo(&data, &spec).unwrap();
    let blank = image::GrayImage::new(32, 32);
    let put = |role: &str, n: usize| {
        for i in 0..n {
            blank
                .save(data.join(role).join(format!("blank_{i}.png")))
                .unwrap();
        }
    };
    put("train", 2);
    put("synthetic", 1);

    // Only the training set has blank slices: the blank synthetic image is an exact match
    // that no holdout image has, which is evidence.
    let out = dir.path().join("out1");
    let o = scan(&data, &out, &["--size", "32"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = summary(&out);
    assert_eq!(s["verdict"]["status"], "memorization", "{}", s["verdict"]);
    let msg = s["verdict"]["message"].as_str().unwrap();
    assert!(msg.contains("1 synthetic image(s) are identical"), "{msg}");

    // Five blank holdout slices (α·n = 3 at fpr 0.01): distance 0 is in the null, the
    // threshold is 0, and the verdict rests on the calibrated rate alone.
    put("holdout", 5);
    let out = dir.path().join("out2");
    let o = scan(&data, &out, &["--size", "32"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = summary(&out);
    assert_eq!(s["verdict"]["status"], "no_evidence", "{}", s["verdict"]);
    let msg = s["verdict"]["message"].as_str().unwrap();
    assert!(msg.contains("So are 5 holdout image(s)"), "{msg}");
    let warnings = s["warnings"].to_string();
    assert!(
        warnings.contains("5 of 305 holdout images are at distance 0"),
        "{warnings}"
    );
    assert!(
        warnings.contains("the copy threshold at fpr=0.01 is 0"),
        "{warnings}"
    );
}

/// Patient-level MIA without memorization is at chance: whole patients on both sides, balanced
/// by patient. (Cutting member patients to an image-level sample while non-member patients keep
/// all their images made the members' maximum over fewer images lose: AUC ≈ 0.33 here.)
#[test]
fn patient_level_mia_is_at_chance_without_memorization() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let spec = DemoSpec {
        size: 32,
        n_patients_train: 200,
        slices_per_patient: 6,
        n_holdout: 1200,
        n_synthetic_novel: 600,
        n_exact_copies: 0,
        n_perturbed_copies: 0,
        seed: 5,
        ..DemoSpec::default()
    };
    write_demo(&data, &spec).unwrap();
    let out = dir.path().join("out");
    let groups_csv = data.join("groups.csv");
    let groups = groups_csv.to_str().unwrap();
    let o = scan(
        &data,
        &out,
        &["--size", "32", "--groups", groups, "--bootstrap", "200"],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let s = summary(&out);
    let g = &s["metrics"]["groups"];
    assert_eq!(g["n_train_groups"], 200);
    assert_eq!(g["n_holdout_groups"], 200);
    // The holdout's patients are split into the reference half and 100 non-member patients;
    // 100 training patients face them, each with all 6 images.
    for attack in [
        "distance",
        "distance_calibrated",
        "monte_carlo",
        "density_ratio",
    ] {
        let a = &g["mia"][attack];
        assert_eq!(a["n_members"], 100, "{attack}: {a}");
        assert_eq!(a["n_nonmembers"], 100, "{attack}: {a}");
        let auc = a["auc"].as_f64().unwrap();
        // sd of a null AUC at 100 vs 100 is 0.04.
        assert!((0.38..=0.62).contains(&auc), "{attack}: patient AUC {auc}");
        // Bootstrap over patients: an interval around the value, about ±2 sd wide.
        let ci = &a["ci95"]["auc"];
        let (lo, hi) = (ci[0].as_f64().unwrap(), ci[1].as_f64().unwrap());
        assert!(
            lo <= auc && auc <= hi,
            "{attack}: {auc} not in [{lo}, {hi}]"
        );
        assert!((0.08..=0.25).contains(&(hi - lo)), "{attack}: [{lo}, {hi}]");
    }
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    let row = md
        .lines()
        .find(|l| l.starts_with("| patient-level mia.distance.auc"))
        .unwrap();
    assert!(
        row.contains(" – "),
        "patient-level AUC without its interval: {row}"
    );
}
