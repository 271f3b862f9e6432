//! Writers for memscan's outputs: `summary.json`, `synthetic.csv`, `train.csv`,
//! `mia_roc.csv`, `summary.md` and `report.html`.
//!
//! # Brief overview
//!
//! [`Summary`] is the typed form of `summary.json`; its key set is a stable contract that
//! other tools parse (documented in the README). The row types ([`SyntheticRow`],
//! [`TrainRow`]) are the CSV tables. [`Visuals`] carries what only `report.html` shows
//! (thumbnails, holdout distances); [`render_html`] renders that page. [`write_all`] writes every file of an audit into one
//! directory. Output is deterministic: fields serialize in declaration order, floats in
//! shortest round-trip form, and everything that varies between runs (timings, thread
//! count) sits under the one key `runtime`.

mod csv_out;
mod error;
mod html;
mod markdown;
mod summary;
mod svg;
mod visuals;

pub use csv_out::{
    write_roc_csv, write_synthetic_csv, write_train_csv, SyntheticRow, TrainRow, MIA_ATTACKS,
};
pub use error::Error;
pub use html::render_html;
pub use markdown::render_markdown;
pub use summary::*;
pub use visuals::{CopiedThumbs, GalleryPair, Thumbnail, Visuals};

use std::fs;
use std::path::Path;

/// Everything one audit writes.
#[derive(Debug, Clone)]
pub struct AuditOutput {
    pub summary: Summary,
    /// One row per synthetic image, in input order.
    pub synthetic: Vec<SyntheticRow>,
    /// One row per training image, in input order.
    pub train: Vec<TrainRow>,
    /// The `fpr` values that get a `copy@fpr=…` column in `synthetic.csv`.
    pub fprs: Vec<f64>,
    /// Thumbnails and holdout distances for `report.html`.
    pub visuals: Visuals,
}

/// Creates `dir` if missing and checks that files can be created in it, so that a run can
/// fail on a bad `--out` before hours of work instead of after.
///
/// # Errors
/// [`Error::Io`] naming `dir` (not a directory, not writable…).
pub fn prepare_dir(dir: &Path) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    fs::create_dir_all(dir).map_err(io)?;
    let probe = dir.join(format!(".memscan-write-probe-{}", std::process::id()));
    fs::File::create(&probe).map_err(io)?;
    fs::remove_file(&probe).map_err(io)
}

/// Writes `summary.json`, `synthetic.csv`, `train.csv`, `mia_roc.csv`, `summary.md` and
/// `report.html` into `dir` (created if missing).
pub fn write_all(dir: &Path, out: &AuditOutput) -> Result<(), Error> {
    fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    write_json(&dir.join("summary.json"), &out.summary)?;
    write_synthetic_csv(&dir.join("synthetic.csv"), &out.fprs, &out.synthetic)?;
    write_train_csv(&dir.join("train.csv"), &out.train)?;
    write_roc_csv(&dir.join("mia_roc.csv"), &out.summary)?;
    let md = render_markdown(&out.summary);
    write_bytes(&dir.join("summary.md"), md.as_bytes())?;
    write_bytes(&dir.join("report.html"), render_html(out).as_bytes())
}

/// Writes any serializable value as pretty JSON with a trailing newline.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), Error> {
    let mut text = serde_json::to_string_pretty(value).map_err(|source| Error::Json {
        path: path.to_path_buf(),
        source,
    })?;
    text.push('\n');
    write_bytes(path, text.as_bytes())
}

pub(crate) fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    fs::write(path, bytes).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}
