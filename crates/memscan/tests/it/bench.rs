//! `memscan bench` end to end on a tiny suite (phantoms only: no network, no cache).

use crate::util::{csv_rows, memscan, stderr};
use ndarray::Array3;
use ndarray_npy::ReadNpyExt;
use std::collections::HashMap;
use std::path::Path;

const SUITE: &str = r#"
name = "tiny"
seed = 3
embedders = ["pixel"]
cache = "cache"

[[datasets]]
name = "ct"
source = "phantom"
kind = "ct"
size = 16
n_train = 30
n_holdout = 100
n_novel = 40

[[datasets]]
name = "fashion-mnist"
source = "fashion-mnist"
size = 28
n_train = 10
n_holdout = 10
n_novel = 10

[[generators]]
kind = "inject"
fraction = 0.25
transforms = ["identity", "noise"]
severities = [0.2]

[[generators]]
kind = "kde"
fraction = 0.5
sigmas = [0.001, 0.5]

[[generators]]
kind = "denoiser"
fraction = 0.5
sigma_min = [0.002]
"#;

fn npy(path: &Path) -> Array3<f32> {
    Array3::<f32>::read_npy(std::fs::File::open(path).unwrap()).unwrap()
}

fn rms(a: ndarray::ArrayView2<f32>, b: ndarray::ArrayView2<f32>) -> f64 {
    let s: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum();
    (s / a.len() as f64).sqrt()
}

fn num(row: &HashMap<String, String>, key: &str) -> f64 {
    row[key]
        .parse()
        .unwrap_or_else(|_| panic!("{key} = {:?}", row[key]))
}

#[test]
fn tiny_suite_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("tiny.toml");
    std::fs::write(&suite, SUITE).unwrap();
    let out = dir.path().join("out");
    let o = memscan(
        &[
            "bench",
            suite.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--keep-data",
            "-q",
        ],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // The missing real dataset is skipped with a warning, not an error.
    assert!(
        stderr(&o).contains("skipping dataset fashion-mnist"),
        "{}",
        stderr(&o)
    );
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(md.contains("| ct | inject | identity | pixel |"), "{md}");
    assert!(
        md.contains("cargo xtask datasets fetch fashion-mnist"),
        "{md}"
    );

    let rows = csv_rows(&out.join("results.csv"));
    let by: HashMap<String, &HashMap<String, String>> =
        rows.iter().map(|r| (r["setting"].clone(), r)).collect();
    assert_eq!(rows.len(), 5, "{:?}", by.keys());
    // Identity copies: perfectly separated, all found.
    let id = by["identity"];
    assert_eq!(num(id, "auroc"), 1.0);
    assert_eq!(num(id, "true_copies"), 10.0);
    assert_eq!(num(id, "recall@0.01"), 1.0);
    // KDE at σ = 1e-3: every generated image is a copy and flagged.
    let k = by["sigma=0.001"];
    assert_eq!(num(k, "true_rate"), 0.5);
    assert_eq!(num(k, "recall@0.01"), 1.0);
    assert!(num(k, "est_rate@0.01") >= 0.5);
    // KDE at σ = 0.5: nothing is a copy; flags near the FPR (novel images only at ~α).
    let far = by["sigma=0.5"];
    assert_eq!(num(far, "true_copies"), 0.0);
    assert!(num(far, "est_rate@0.01") <= 0.05, "{far:?}");
    assert_eq!(far["auroc"], "");
    // The denoiser at σ_min = 0.002 reproduces training images.
    let dn = by["sigma_min=0.002,h=0"];
    assert_eq!(num(dn, "true_rate"), 0.5);
    assert_eq!(num(dn, "recall@0.01"), 1.0);
    for r in &rows {
        assert!(num(r, "mia_auc") >= 0.0 && num(r, "images_per_s") > 0.0);
    }

    // Truth files match what was written.
    let data = out.join("data").join("ct");
    let train = npy(&data.join("train.npy"));
    assert_eq!(train.dim(), (30, 16, 16));
    // groups.csv names the patient of every train and holdout image, and no patient is in
    // both (the phantoms' sets come from disjoint patients).
    let groups = csv_rows(&data.join("groups.csv"));
    assert_eq!(groups.len(), 30 + 100);
    assert_eq!(groups[0]["path"], "train.npy#0");
    assert_eq!(groups[30]["path"], "holdout.npy#0");
    let patients = |file: &str| -> std::collections::BTreeSet<String> {
        groups
            .iter()
            .filter(|g| g["path"].starts_with(file))
            .map(|g| g["group"].clone())
            .collect()
    };
    let (tp, hp) = (patients("train.npy"), patients("holdout.npy"));
    assert!(
        tp.len() < 30 && hp.len() < 100,
        "patients of several slices"
    );
    assert!(tp.is_disjoint(&hp));
    for cell in [
        "inject_p0.25_identity",
        "kde_p0.5_sigma_0.001",
        "denoiser_p0.5_sigma_min_0.002_h_0",
    ] {
        let syn = npy(&data.join(cell).join("synthetic.npy"));
        let truth = csv_rows(&data.join(cell).join("truth.csv"));
        assert_eq!(truth.len(), syn.dim().0, "{cell}");
        for (i, t) in truth.iter().enumerate() {
            assert_eq!(t["index"], i.to_string());
            let img = syn.index_axis(ndarray::Axis(0), i);
            match t["origin"].as_str() {
                "novel" => assert!(t["copy"] == "false" && t["train"].is_empty()),
                "inject" => {
                    let src: usize = t["train"].parse().unwrap();
                    assert_eq!(img, train.index_axis(ndarray::Axis(0), src), "{cell} #{i}");
                }
                "kde" | "denoiser" => {
                    let src: usize = t["train"].parse().unwrap();
                    let d = rms(img, train.index_axis(ndarray::Axis(0), src));
                    let d1 = num(t, "d1");
                    assert!(d1 <= d + 1e-9, "{cell} #{i}: d1 {d1} > {d}");
                    if t["origin"] == "denoiser" {
                        assert!((d - d1).abs() < 1e-6 && d1 < 1e-3, "{cell} #{i}: {d}");
                    }
                    assert_eq!(t["copy"], "true");
                }
                other => panic!("origin {other}"),
            }
        }
    }
}
