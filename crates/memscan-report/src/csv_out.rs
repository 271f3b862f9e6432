//! The CSV tables: `synthetic.csv`, `train.csv`, `mia_roc.csv`.
//!
//! Numbers are written in shortest round-trip form; an undefined value (no holdout, no second
//! neighbour, the cosine of a blank image) is an empty cell, never a zero.

use crate::error::Error;
use crate::summary::Summary;
use std::path::Path;

/// Leading columns of `synthetic.csv` (a stable contract); `copy@fpr=…` columns for every
/// calibrated FPR and `threshold_copy`, `train2` follow.
pub const SYNTHETIC_COLUMNS: [&str; 8] = [
    "synthetic",
    "train",
    "distance",
    "cosine",
    "distance2",
    "ratio",
    "copy",
    "ratio_copy",
];

/// The membership-inference attacks, in column and key order.
pub const MIA_ATTACKS: [&str; 4] = [
    "distance",
    "distance_calibrated",
    "monte_carlo",
    "density_ratio",
];

/// Columns of `train.csv`; one `mia_<attack>_score` column per [`MIA_ATTACKS`] follows.
pub const TRAIN_COLUMNS: [&str; 5] = [
    "train",
    "copies",
    "nearest_synthetic",
    "distance",
    "mia_member_sample",
];

/// One synthetic image and its nearest training images.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticRow {
    pub synthetic: String,
    /// Nearest training image (provenance).
    pub train: String,
    /// d1: distance to `train`.
    pub distance: f64,
    /// Cosine similarity to `train`; `None` when undefined (a zero vector).
    pub cosine: Option<f64>,
    /// d2: distance to the second-nearest training image.
    pub distance2: Option<f64>,
    pub ratio: Option<f64>,
    /// Flag at the primary `--fpr`; `None` without a holdout.
    pub copy: Option<bool>,
    pub ratio_copy: Option<bool>,
    /// Flag at each calibrated FPR, in the order of `fprs`.
    pub copy_at: Vec<Option<bool>>,
    /// Flag at the fixed cosine `--threshold`, if one was given.
    pub threshold_copy: Option<bool>,
    /// Second-nearest training image.
    pub train2: Option<String>,
}

/// One training image.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainRow {
    pub train: String,
    /// Flagged synthetic images whose nearest training image is this one; `None` without a
    /// holdout.
    pub copies: Option<u64>,
    pub nearest_synthetic: String,
    /// Distance to `nearest_synthetic`.
    pub distance: f64,
    /// Whether the image is in the balanced member sample of the MIA.
    pub mia_member_sample: bool,
    /// Each attack's score (in [`MIA_ATTACKS`] order) for images in the member sample.
    pub mia_scores: Vec<Option<f64>>,
}

fn num(v: f64) -> String {
    if v.is_nan() {
        String::new()
    } else {
        v.to_string()
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn writer(path: &Path) -> Result<csv::Writer<std::fs::File>, Error> {
    csv::Writer::from_path(path).map_err(|source| Error::Csv {
        path: path.to_path_buf(),
        source,
    })
}

fn finish(path: &Path, mut w: csv::Writer<std::fs::File>) -> Result<(), Error> {
    w.flush().map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `synthetic.csv`.
pub fn write_synthetic_csv(path: &Path, fprs: &[f64], rows: &[SyntheticRow]) -> Result<(), Error> {
    let mut w = writer(path)?;
    let csv_err = |source| Error::Csv {
        path: path.to_path_buf(),
        source,
    };
    let mut header: Vec<String> = SYNTHETIC_COLUMNS.iter().map(|s| s.to_string()).collect();
    header.extend(fprs.iter().map(|f| format!("copy@fpr={f}")));
    header.extend(["threshold_copy".to_string(), "train2".to_string()]);
    w.write_record(&header).map_err(csv_err)?;
    for r in rows {
        let mut rec = vec![
            r.synthetic.clone(),
            r.train.clone(),
            num(r.distance),
            r.cosine.map(num).unwrap_or_default(),
            r.distance2.map(num).unwrap_or_default(),
            r.ratio.map(num).unwrap_or_default(),
            opt(r.copy),
            opt(r.ratio_copy),
        ];
        rec.extend(r.copy_at.iter().map(|c| opt(*c)));
        rec.push(opt(r.threshold_copy));
        rec.push(r.train2.clone().unwrap_or_default());
        w.write_record(&rec).map_err(csv_err)?;
    }
    finish(path, w)
}

/// Writes `train.csv`.
pub fn write_train_csv(path: &Path, rows: &[TrainRow]) -> Result<(), Error> {
    let mut w = writer(path)?;
    let csv_err = |source| Error::Csv {
        path: path.to_path_buf(),
        source,
    };
    let mut header: Vec<String> = TRAIN_COLUMNS.iter().map(|s| s.to_string()).collect();
    header.extend(MIA_ATTACKS.iter().map(|a| format!("mia_{a}_score")));
    w.write_record(&header).map_err(csv_err)?;
    for r in rows {
        let mut rec = vec![
            r.train.clone(),
            opt(r.copies),
            r.nearest_synthetic.clone(),
            num(r.distance),
            r.mia_member_sample.to_string(),
        ];
        rec.extend((0..MIA_ATTACKS.len()).map(|i| {
            r.mia_scores
                .get(i)
                .copied()
                .flatten()
                .map(num)
                .unwrap_or_default()
        }));
        w.write_record(&rec).map_err(csv_err)?;
    }
    finish(path, w)
}

/// Writes `mia_roc.csv` (`attack,threshold,fpr,tpr`): every attack's empirical ROC staircase.
/// Without an MIA the file has only its header.
pub fn write_roc_csv(path: &Path, summary: &Summary) -> Result<(), Error> {
    let mut w = writer(path)?;
    let csv_err = |source| Error::Csv {
        path: path.to_path_buf(),
        source,
    };
    w.write_record(["attack", "threshold", "fpr", "tpr"])
        .map_err(csv_err)?;
    if let Some(mia) = &summary.metrics.mia {
        for (name, attack) in mia.attacks() {
            for p in &attack.value.roc {
                w.write_record([
                    name.to_string(),
                    p.threshold.to_string(),
                    num(p.fpr),
                    num(p.tpr),
                ])
                .map_err(csv_err)?;
            }
        }
    }
    finish(path, w)
}
