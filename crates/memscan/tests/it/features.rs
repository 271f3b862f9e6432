//! `memscan scan --features` (bring-your-own feature matrices), `memscan embed`, and the cache.

use crate::util::{csv_rows, memscan, stderr, summary};
use ndarray::Array2;
use ndarray_npy::write_npy;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};

const D: usize = 16;

/// `n × D` rows around 8 shared random centres (seed 1 draws the centres).
fn clustered(n: usize, point_seed: u64) -> Array2<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let centres = Array2::from_shape_simple_fn((8, D), || rng.random_range(-1.0f32..1.0));
    let mut rng = ChaCha8Rng::seed_from_u64(point_seed);
    let mut x = Array2::zeros((n, D));
    for mut row in x.rows_mut() {
        let c = centres.row(rng.random_range(0..8));
        for (v, &cv) in row.iter_mut().zip(c) {
            *v = cv + 0.3 * rng.random_range(-1.0f32..1.0);
        }
    }
    x
}

struct Data {
    train: PathBuf,
    synthetic: PathBuf,
    holdout: PathBuf,
    /// (synthetic row, train row) of the planted copies.
    planted: Vec<(usize, usize)>,
}

/// 300 train (with an ids file), 200 synthetic (every 10th a near-copy of a train row), 300
/// holdout, as `float32` except the holdout (`float64`).
fn write_data(dir: &Path) -> Data {
    let train = clustered(300, 2);
    let mut syn = clustered(200, 3);
    let mut planted = Vec::new();
    for s in (0..200).step_by(10) {
        let t = (s * 7) % 300;
        let copy = train.row(t).mapv(|v| v + 1e-4);
        syn.row_mut(s).assign(&copy);
        planted.push((s, t));
    }
    let hold = clustered(300, 4);
    let d = Data {
        train: dir.join("train.npy"),
        synthetic: dir.join("synthetic.npy"),
        holdout: dir.join("holdout.npy"),
        planted,
    };
    write_npy(&d.train, &train).unwrap();
    let ids: String = (0..300)
        .map(|i| format!("patient{}/slice{i}.png\n", i / 10))
        .collect();
    std::fs::write(dir.join("train.ids.txt"), ids).unwrap();
    write_npy(&d.synthetic, &syn).unwrap();
    write_npy(&d.holdout, &hold.mapv(f64::from)).unwrap();
    d
}

fn scan(d: &Data, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args: Vec<String> = vec![
        "scan".into(),
        "--features".into(),
        "--train".into(),
        d.train.display().to_string(),
        "--synthetic".into(),
        d.synthetic.display().to_string(),
        "--holdout".into(),
        d.holdout.display().to_string(),
        "--out".into(),
        out.display().to_string(),
        "-q".into(),
        "--bootstrap".into(),
        "0".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    memscan(&refs, None)
}

#[test]
fn features_audit_finds_planted_copies_and_marks_image_sections_absent() {
    let dir = tempfile::tempdir().unwrap();
    let d = write_data(dir.path());
    let out = dir.path().join("out");
    let o = scan(&d, &out, &["--no-cache"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = summary(&out);
    assert_eq!(s["embedder"]["name"], "features");
    assert_eq!(s["embedder"]["normalized"], true);
    assert_eq!(s["embedder"]["dim"], D);
    assert_eq!(
        s["embedder"]["params"]["files"]["holdout"]["dtype"],
        "float64"
    );
    assert_eq!(s["inputs"]["train"]["count"], 300);
    assert_eq!(s["inputs"]["holdout"]["count"], 300);
    let absent = &s["metrics"]["absent"];
    assert!(absent["gallery"].as_str().unwrap().contains("features"));
    assert!(absent["metadata_leakage"]
        .as_str()
        .unwrap()
        .contains("features"));
    assert!(s["metrics"]["metadata_leakage"].is_null());
    for key in ["c_t", "dcr", "authpct", "mia", "identifiability", "mdcr"] {
        assert!(!s["metrics"][key].is_null(), "{key} computed: {absent}");
    }
    assert_eq!(s["runtime"]["cache"], serde_json::json!([]));
    let rows = csv_rows(&out.join("synthetic.csv"));
    assert_eq!(rows.len(), 200);
    assert_eq!(rows[1]["synthetic"], "row-000001", "default ids");
    for &(srow, trow) in &d.planted {
        let r = &rows[srow];
        assert_eq!(
            r["train"],
            format!("patient{}/slice{trow}.png", trow / 10),
            "ids come from train.ids.txt"
        );
        assert_eq!(r["copy"], "true", "planted copy {srow} flagged");
        assert_eq!(r["ratio_copy"], "true");
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        !html.contains("data:image/png"),
        "no thumbnails for features"
    );

    // --no-normalize: distances in the given space (larger than on the unit sphere here).
    let raw = dir.path().join("raw");
    let o = scan(&d, &raw, &["--no-cache", "--no-normalize"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(summary(&raw)["embedder"]["normalized"], false);
    let raw_rows = csv_rows(&raw.join("synthetic.csv"));
    let a: f64 = rows[0]["distance"].parse().unwrap();
    let b: f64 = raw_rows[0]["distance"].parse().unwrap();
    assert!(a != b, "{a} vs {b}");
}

#[test]
fn bad_feature_files_are_usage_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = write_data(dir.path());
    let run = |d: &Data| {
        let o = scan(d, &dir.path().join("out"), &["--no-cache"]);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        stderr(&o)
    };
    // Wrong rank.
    let cube = dir.path().join("cube.npy");
    write_npy(&cube, &ndarray::Array3::<f32>::zeros((4, 2, 2))).unwrap();
    let e = run(&Data {
        synthetic: cube,
        ..write_data(dir.path())
    });
    assert!(e.contains("cube.npy") && e.contains("2-D"), "{e}");
    // Dimension mismatch between sets.
    let narrow = dir.path().join("narrow.npy");
    write_npy(&narrow, &Array2::<f32>::ones((5, D - 1))).unwrap();
    let e = run(&Data {
        holdout: narrow,
        ..write_data(dir.path())
    });
    assert!(
        e.contains("narrow.npy") && e.contains("15-dimensional") && e.contains("16-dimensional"),
        "{e}"
    );
    // A NaN row.
    let mut bad = Array2::<f32>::ones((6, D));
    bad[[4, 3]] = f32::NAN;
    let nan = dir.path().join("nan.npy");
    write_npy(&nan, &bad).unwrap();
    let e = run(&Data {
        synthetic: nan,
        ..write_data(dir.path())
    });
    assert!(e.contains("nan.npy") && e.contains("row 4"), "{e}");
    // An ids file with the wrong count.
    std::fs::write(dir.path().join("train.ids.txt"), "a\nb\n").unwrap();
    let e = run(&d);
    assert!(
        e.contains("train.ids.txt") && e.contains("2 ids for 300 feature rows"),
        "{e}"
    );
}

#[test]
fn embed_streams_a_folder_into_the_features_format() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = dir.path().join("imgs");
    std::fs::create_dir_all(imgs.join("sub")).unwrap();
    for i in 0..7u8 {
        let name = if i < 3 {
            format!("sub/{i}.png")
        } else {
            format!("{i}.png")
        };
        image::GrayImage::from_fn(8, 8, |x, y| image::Luma([(x as u8 * 20 + y as u8 + i * 9)]))
            .save(imgs.join(name))
            .unwrap();
    }
    let out = dir.path().join("feats").join("f.npy");
    let o = memscan(
        &[
            "embed",
            "--images",
            &imgs.display().to_string(),
            "--out",
            &out.display().to_string(),
            "--size",
            "8",
            "--batch-files",
            "2",
            "-q",
        ],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let m: Array2<f32> = ndarray_npy::read_npy(&out).unwrap();
    assert_eq!(m.dim(), (7, 64));
    let ids = std::fs::read_to_string(dir.path().join("feats/f.ids.txt")).unwrap();
    let ids: Vec<&str> = ids.lines().collect();
    assert_eq!(
        ids,
        [
            "3.png",
            "4.png",
            "5.png",
            "6.png",
            "sub/0.png",
            "sub/1.png",
            "sub/2.png"
        ]
    );
    // Row = pixels / sqrt(64) (the pixel embedder), in the listed order.
    let px = image::open(imgs.join("sub/1.png")).unwrap().to_luma8();
    let want = f32::from(px.get_pixel(3, 2).0[0]) / 255.0 / 8.0;
    assert!((m[[5, 2 * 8 + 3]] - want).abs() < 1e-6);
    // The output is a valid --features input.
    let o = memscan(
        &[
            "scan",
            "--features",
            "--train",
            &out.display().to_string(),
            "--synthetic",
            &out.display().to_string(),
            "--out",
            &dir.path().join("scan").display().to_string(),
            "--no-cache",
            "-q",
        ],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = csv_rows(&dir.path().join("scan/synthetic.csv"));
    assert_eq!(rows[4]["synthetic"], "sub/0.png");
    assert_eq!(rows[4]["train"], "sub/0.png");
}

#[test]
fn hnsw_graph_cache_hits_is_rebuilt_when_corrupt_and_ignores_crash_leftovers() {
    let dir = tempfile::tempdir().unwrap();
    let d = write_data(dir.path());
    let cache = dir.path().join("cache");
    let cache_arg = cache.display().to_string();
    let run = |name: &str| {
        let out = dir.path().join(name);
        let o = scan(&d, &out, &["--index", "hnsw", "--cache-dir", &cache_arg]);
        assert!(o.status.success(), "{}", stderr(&o));
        (summary(&out), stderr(&o), out)
    };
    let outcome = |s: &serde_json::Value| {
        let c = s["runtime"]["cache"].as_array().unwrap();
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0]["entry"], "hnsw train");
        c[0]["outcome"].as_str().unwrap().to_string()
    };
    let (first, _, out1) = run("a");
    assert_eq!(outcome(&first), "miss");
    let entries: Vec<PathBuf> = std::fs::read_dir(cache.join("hnsw"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = entries[0].clone();

    let (second, _, out2) = run("b");
    assert_eq!(outcome(&second), "hit");
    assert_eq!(first["metrics"], second["metrics"]);
    for f in ["synthetic.csv", "train.csv"] {
        assert_eq!(
            std::fs::read(out1.join(f)).unwrap(),
            std::fs::read(out2.join(f)).unwrap()
        );
    }

    // A corrupted graph file: detected, rebuilt with a warning, same metrics.
    let data = entry.join("hnsw.hnsw.data");
    let mut bytes = std::fs::read(&data).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&data, &bytes).unwrap();
    let (third, err, _) = run("c");
    assert_eq!(outcome(&third), "rebuilt");
    assert!(err.contains("corrupt"), "{err}");
    assert_eq!(first["metrics"], third["metrics"]);
    let (fourth, _, _) = run("d");
    assert_eq!(outcome(&fourth), "hit", "the rebuilt entry is valid");

    // A crash mid-write leaves a temporary directory: ignored.
    let name = entry.file_name().unwrap().to_string_lossy().into_owned();
    std::fs::remove_dir_all(&entry).unwrap();
    let leftover = cache.join("hnsw").join(format!(".{name}.tmp-crashed"));
    std::fs::create_dir_all(&leftover).unwrap();
    std::fs::write(leftover.join("hnsw.hnsw.data"), b"half a graph").unwrap();
    let (fifth, _, _) = run("e");
    assert_eq!(outcome(&fifth), "miss");
    assert_eq!(first["metrics"], fifth["metrics"]);
}
