//! The `cnn` embedder through the binary: `train-embedder`, `scan --embedder cnn:DIR` and
//! `scan --embedder cnn --train-embedder` with its model cache.

use crate::util::{memscan, stderr, summary};
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
        cfg["canon"], "windowed",
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

    // `cnn` without a model or --train-embedder is a usage error.
    let mut args = scan_args(dir.path(), &dir.path().join("c"));
    args.extend(["--embedder".into(), "cnn".into()]);
    let o = run(&args);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--train-embedder"), "{}", stderr(&o));
}
