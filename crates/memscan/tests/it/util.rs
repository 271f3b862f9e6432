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
