//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the `memscan` binary with `args`, optionally with a rayon thread count.
pub fn memscan(args: &[&str], threads: Option<usize>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_memscan"));
    cmd.args(args);
    if let Some(t) = threads {
        cmd.env("RAYON_NUM_THREADS", t.to_string());
    }
    cmd.output().expect("memscan runs")
}

/// `memscan scan --train T --synthetic S [--holdout H] --out OUT -q EXTRA…`.
pub fn scan_args(
    train: &Path,
    synthetic: &Path,
    holdout: Option<&Path>,
    out: &Path,
    extra: &[&str],
) -> Vec<String> {
    let p = |p: &Path| p.display().to_string();
    let mut a: Vec<String> = vec!["scan".into(), "--train".into(), p(train)];
    a.extend(["--synthetic".into(), p(synthetic)]);
    if let Some(h) = holdout {
        a.extend(["--holdout".into(), p(h)]);
    }
    a.extend(["--out".into(), p(out), "-q".into()]);
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

/// Runs [`scan_args`].
pub fn scan(
    train: &Path,
    synthetic: &Path,
    holdout: Option<&Path>,
    out: &Path,
    extra: &[&str],
    threads: Option<usize>,
) -> Output {
    let a = scan_args(train, synthetic, holdout, out, extra);
    memscan(&a.iter().map(String::as_str).collect::<Vec<_>>(), threads)
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `summary.json` of an output directory.
pub fn summary(out: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(out.join("summary.json")).expect("summary.json exists");
    serde_json::from_str(&text).expect("summary.json parses")
}

/// Rows of a CSV file as header-keyed maps.
pub fn csv_rows(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let mut r = csv::Reader::from_path(path).expect("csv opens");
    let headers = r.headers().expect("header").clone();
    r.records()
        .map(|rec| {
            let rec = rec.expect("record");
            headers
                .iter()
                .map(String::from)
                .zip(rec.iter().map(String::from))
                .collect()
        })
        .collect()
}

/// Writes a float32 `.npy` batch of `n` constant `size × size` images with the given values.
pub fn constant_npy(path: &Path, values: &[f32], size: usize) -> PathBuf {
    use ndarray_npy::WriteNpyExt;
    let mut a = ndarray::Array3::<f32>::zeros((values.len(), size, size));
    for (mut img, &v) in a.outer_iter_mut().zip(values) {
        img.fill(v);
    }
    let f = std::fs::File::create(path).expect("create npy");
    a.write_npy(f).expect("write npy");
    path.to_path_buf()
}

pub fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}
