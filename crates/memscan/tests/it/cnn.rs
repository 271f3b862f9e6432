//! The `cnn` embedder through the binary: `train-embedder`, `scan --embedder cnn:DIR` and
//! `scan --embedder cnn --train-embedder` with its model cache.

use crate::util::{csv_rows, memscan, stderr, summary};
use memscan_datasets::{render, PatientParams, PhantomKind};
use std::path::{Path, PathBuf};

const SIZE: usize = 16;

/// A float32 `.npy` batch of `n` phantom slices (seeds `first..first + n`).
fn phantoms_npy(path: &Path, first: u64, n: usize) -> PathBuf {
    use ndarray_npy::WriteNpyExt;
    let mut a = ndarray::Array3::<f32>::zeros((n, SIZE, SIZE));
    for (i, mut img) in a.outer_iter_mut().enumerate() {
        let seed = first + i as u64;
        let p = PatientParams::sample(PhantomKind::ALL[i % 3], seed);
        let px = render(&p, 0.5, SIZE as u32, seed);
        img.assign(&ndarray::ArrayView2::from_shape((SIZE, SIZE), &px).unwrap());
    }
    a.write_npy(std::fs::File::create(path).unwrap()).unwrap();
    path.to_path_buf()
}

fn scan_args<'a>(dir: &'a Path, out: &'a Path) -> Vec<String> {
    let p = |n: &str| dir.join(n).to_str().unwrap().to_string();
    vec![
        "scan".into(),
        "--train".into(),
        p("train.npy"),
        "--synthetic".into(),
        p("syn.npy"),
        "--holdout".into(),
        p("hold.npy"),
        "--out".into(),
        out.to_str().unwrap().into(),
        "--size".into(),
        SIZE.to_string(),
        "--bootstrap".into(),
        "0".into(),
        "-q".into(),
    ]
}

fn run(args: &[String]) -> std::process::Output {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    memscan(&refs, None)
}

fn inputs(dir: &Path) {
    phantoms_npy(&dir.join("train.npy"), 0, 24);
    phantoms_npy(&dir.join("hold.npy"), 1000, 24);
    phantoms_npy(&dir.join("syn.npy"), 2000, 8);
}

#[test]
fn train_embedder_then_scan_with_the_model() {
    let dir = tempfile::tempdir().unwrap();
    inputs(dir.path());
    let model = dir.path().join("model");
    let o = memscan(
        &[
            "train-embedder",
            "--images",
            dir.path().join("train.npy").to_str().unwrap(),
            "--out",
            model.to_str().unwrap(),
            "--epochs",
            "2",
            "--batch",
            "8",
            "--size",
            "16",
            "-q",
        ],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("epoch 2/2: loss"), "{}", stderr(&o));
    for f in ["config.json", "model.safetensors", "train_state.json"] {
        assert!(model.join(f).is_file(), "{f} missing");
    }
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["size"], 16);
    assert_eq!(
        cfg["canon"], "axes",
        "the default canonicalization is recorded"
    );

    let out = dir.path().join("out");
    let mut args = scan_args(dir.path(), &out);
    args.extend(["--embedder".into(), format!("cnn:{}", model.display())]);
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = summary(&out);
    assert_eq!(s["embedder"]["name"], "cnn");
    assert_eq!(s["embedder"]["dim"], 128);
    // `--views auto`: the cnn searches each training image, 50 crops and the mirror image.
    assert_eq!(s["index"]["views_per_image"], 52, "{}", s["index"]);
    assert_eq!(s["index"]["n"], 24, "{}", s["index"]);
    assert!(s["embedder"]["normalized"].as_bool().unwrap());
    assert_eq!(
        s["embedder"]["params"]["weights_sha256"]
            .as_str()
            .unwrap()
            .len(),
        64
    );

    // A model trained at another size is refused with a hint.
    let mut args = scan_args(dir.path(), &dir.path().join("out2"));
    let at = args.iter().position(|a| a == "--size").unwrap();
    args[at + 1] = "20".into();
    args.extend(["--embedder".into(), format!("cnn:{}", model.display())]);
    let o = run(&args);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--size 16"), "{}", stderr(&o));

    // --canon off (natural photos) is recorded in the model's config, and the model still scans.
    let plain = dir.path().join("model-off");
    let o = memscan(
        &[
            "train-embedder",
            "--images",
            dir.path().join("train.npy").to_str().unwrap(),
            "--out",
            plain.to_str().unwrap(),
            "--epochs",
            "1",
            "--batch",
            "8",
            "--size",
            "16",
            "--canon",
            "off",
            "-q",
        ],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(plain.join("config.json")).unwrap()).unwrap();
    assert!(cfg.get("canon").is_none_or(|c| c == "off"), "{cfg}");
    let mut args = scan_args(dir.path(), &dir.path().join("out3"));
    args.extend(["--embedder".into(), format!("cnn:{}", plain.display())]);
    assert!(run(&args).status.success());
}

#[test]
fn train_embedder_flag_trains_once_and_caches_by_training_set() {
    let dir = tempfile::tempdir().unwrap();
    inputs(dir.path());
    let cache = dir.path().join("cache");
    let with = |out: &str| {
        let mut a = scan_args(dir.path(), &dir.path().join(out));
        a.extend(
            [
                "--embedder",
                "cnn",
                "--train-embedder",
                "--embedder-epochs",
                "1",
                "--embedder-batch",
                "8",
                "--cache-dir",
                cache.to_str().unwrap(),
            ]
            .map(String::from),
        );
        a
    };
    let o = run(&with("a"));
    assert!(o.status.success(), "{}", stderr(&o));
    // Models live in the `cnn-models` folder of the one --cache-dir (beside embeddings/).
    let model_dir = cache.join("cnn-models");
    let models: Vec<_> = std::fs::read_dir(&model_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(models.len(), 1, "{models:?}");
    assert!(models[0].starts_with("cnn-") && !models[0].ends_with(".partial"));
    let weights = model_dir.join(&models[0]).join("model.safetensors");
    let stamp = std::fs::metadata(&weights).unwrap().modified().unwrap();

    // Same training set and settings: the cached model is reused, not retrained.
    let o = run(&with("b"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_dir(&model_dir).unwrap().count(), 1);
    assert_eq!(
        std::fs::metadata(&weights).unwrap().modified().unwrap(),
        stamp
    );
    let (a, b) = (
        summary(&dir.path().join("a")),
        summary(&dir.path().join("b")),
    );
    assert_eq!(a["metrics"], b["metrics"]);
    let outcome = |s: &serde_json::Value, entry: &str| {
        s["runtime"]["cache"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["entry"] == entry)
            .map(|r| r["outcome"].as_str().unwrap().to_owned())
    };
    assert_eq!(outcome(&a, "cnn model").as_deref(), Some("miss"));
    assert_eq!(outcome(&b, "cnn model").as_deref(), Some("hit"));
    assert_eq!(outcome(&b, "embeddings train").as_deref(), Some("hit"));
    // The views' embeddings (--views auto) are cached too, without a warning.
    assert_eq!(
        outcome(&a, "embeddings train views").as_deref(),
        Some("miss")
    );
    assert_eq!(
        outcome(&b, "embeddings train views").as_deref(),
        Some("hit")
    );
    for s in [&a, &b] {
        let w = s["warnings"].as_array().unwrap();
        assert!(
            !w.iter().any(|w| w.as_str().unwrap().contains("cache")),
            "{w:?}"
        );
    }

    // `cnn` without a model or --train-embedder is a usage error.
    let mut args = scan_args(dir.path(), &dir.path().join("c"));
    args.extend(["--embedder".into(), "cnn".into()]);
    let o = run(&args);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--train-embedder"), "{}", stderr(&o));
}

/// A float32 `.npy` batch of the given `SIDE × SIDE` images.
fn images_npy(path: &Path, imgs: &[Vec<f32>], side: usize) {
    use ndarray_npy::WriteNpyExt;
    let flat: Vec<f32> = imgs.concat();
    let a = ndarray::Array3::from_shape_vec((imgs.len(), side, side), flat).unwrap();
    a.write_npy(std::fs::File::create(path).unwrap()).unwrap();
}

#[test]
fn crop_views_find_crop_resized_copies_that_whole_images_miss() {
    use memscan_datasets::CopyTransform;
    use rand::SeedableRng;
    const SIDE: usize = 32;
    let phantom = |seed: u64| {
        let p = PatientParams::sample(PhantomKind::ALL[(seed % 3) as usize], seed);
        render(&p, 0.5, SIDE as u32, seed)
    };
    let train: Vec<Vec<f32>> = (0..40).map(phantom).collect();
    let hold: Vec<Vec<f32>> = (1000..1040).map(phantom).collect();
    // 10 crop-resized copies (80 % crops at random positions) of training images 0..10,
    // then 10 novel phantoms.
    let mut syn: Vec<Vec<f32>> = (0..10)
        .map(|i| {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(77 + i as u64);
            CopyTransform::CropResize.apply(&train[i], SIDE as u32, 0.5, &mut rng)
        })
        .collect();
    syn.extend((2000..2010).map(phantom));
    // Then 3 mirrored copies of training images 10..13.
    syn.extend((10..13).map(|i| {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        CopyTransform::Flip.apply(&train[i], SIDE as u32, 0.5, &mut rng)
    }));
    let dir = tempfile::tempdir().unwrap();
    images_npy(&dir.path().join("train.npy"), &train, SIDE);
    images_npy(&dir.path().join("hold.npy"), &hold, SIDE);
    images_npy(&dir.path().join("syn.npy"), &syn, SIDE);
    let audit = |views: &str| {
        let out = dir.path().join(format!("out-{views}"));
        let mut args = scan_args(dir.path(), &out);
        let at = args.iter().position(|a| a == "--size").unwrap();
        args[at + 1] = SIDE.to_string();
        args.extend(["--views".into(), views.into()]);
        let o = run(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let s = summary(&out);
        assert_eq!(
            s["index"]["views_per_image"],
            if views == "crops" { 52 } else { 1 }
        );
        // The privacy metrics are defined on one embedding per image: views leave them be.
        let privacy: Vec<serde_json::Value> = ["authpct", "mdcr", "identifiability", "mia", "dcr"]
            .iter()
            .map(|k| s["metrics"][k].clone())
            .collect();
        assert!(privacy.iter().all(|v| !v.is_null()), "{privacy:?}");
        let rows = csv_rows(&out.join("synthetic.csv"));
        assert_eq!(rows.len(), 23);
        // A mirrored copy matches the mirror view exactly.
        for (r, i) in rows[20..].iter().zip(10..) {
            let d: f64 = r["distance"].parse().unwrap();
            assert_eq!(
                d == 0.0,
                views == "crops",
                "mirror of {i} at {d} with --views {views}"
            );
            if views == "crops" {
                assert_eq!(r["train"], format!("train.npy#{i}"), "mirror of {i}");
                assert_eq!(r["copy"], "true");
            }
        }
        let found = |r: &std::collections::HashMap<String, String>, i: usize| {
            r["train"] == format!("train.npy#{i}") && r["copy"] == "true"
        };
        let copies = (0..10).filter(|&i| found(&rows[i], i)).count();
        let top1 = (0..10)
            .filter(|&i| rows[i]["train"] == format!("train.npy#{i}"))
            .count();
        let novel = rows[10..20].iter().filter(|r| r["copy"] == "true").count();
        let d: Vec<f64> = rows[..10]
            .iter()
            .map(|r| r["distance"].parse().unwrap())
            .collect();
        (top1, copies, novel, d, privacy)
    };
    // Raw pixels of 32-pixel phantoms (no canonicalization, a 40-image holdout) are a hard
    // case: the point is what the views change, measured on the same data.
    let (plain_top1, plain, plain_novel, plain_d, plain_privacy) = audit("none");
    let (views_top1, views, views_novel, views_d, views_privacy) = audit("crops");
    assert_eq!(plain_privacy, views_privacy);
    // Without views the source is rarely the nearest training image; with them it mostly is.
    assert!(
        plain_top1 <= 3 && views_top1 >= 6,
        "source nearest: {plain_top1} of 10 without views, {views_top1} with"
    );
    assert!(
        views > plain,
        "flagged: {plain} without views, {views} with"
    );
    assert_eq!((plain_novel, views_novel), (0, 0), "novel phantoms flagged");
    // The minimum over views can only lower a distance, and for the copies it does a lot.
    for (a, b) in views_d.iter().zip(&plain_d) {
        assert!(a <= b, "{a} > {b}");
    }
    let mean = |d: &[f64]| d.iter().sum::<f64>() / d.len() as f64;
    assert!(
        mean(&views_d) < 0.6 * mean(&plain_d),
        "{} vs {}",
        mean(&views_d),
        mean(&plain_d)
    );
}
