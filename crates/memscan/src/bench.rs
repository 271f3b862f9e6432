//! `memscan bench`: scores the audit pipeline against datasets with known memorization.
//!
//! A suite (TOML, e.g. `datasets/suites/quick.toml`) lists datasets ([`DatasetSpec`], inline or
//! `{ spec = "path.toml" }` relative to the suite file), generators and embedders:
//!
//! ```toml
//! name = "quick"
//! seed = 0
//! embedders = ["pixel"]
//! # cache = "../cache"          # real data fetched by `cargo xtask datasets fetch`
//!
//! [[datasets]]
//! spec = "../specs/ct-phantom.toml"
//!
//! [[generators]]
//! kind = "inject"               # copies of training images under a transform
//! fraction = 0.1
//! transforms = ["identity", "noise", "flip"]
//! severities = [0.3, 0.8]
//!
//! [[generators]]
//! kind = "kde"                  # Meehan et al.'s Gaussian KDE of the training set
//! fraction = 0.5
//! sigmas = [0.001, 0.3]
//!
//! [[generators]]
//! kind = "denoiser"             # Gu et al.'s optimal denoiser + EDM Heun sampler
//! fraction = 0.5
//! sigma_min = [0.002]
//! smoothing = [0.0, 1.0]
//! ```
//!
//! Each (dataset × generator setting × embedder) is one **cell**. The dataset is built once
//! ([`memscan_datasets::build`]: train, holdout and novel images, split by patient or volume);
//! a cell's synthetic set has `n = n_novel` images, of which `k = round(fraction · n)` come from
//! the generator and the rest are novel real images, in a seeded random order. The cell's
//! train, holdout and synthetic sets are written as float32 `.npy` batches (with `truth.csv`)
//! and audited by the ordinary pipeline, [`Audit::run`] — the same code path as
//! `memscan scan`. The audit's output is then scored against the truth:
//!
//! - **truth**: an injected image is a copy (whatever the transform); a KDE or denoiser image is
//!   a copy iff its true pixel-space ratio `d1/d2 < 1/3` ([`memscan_datasets::GenTruth`]);
//!   novel images are not copies.
//! - `auroc`: ROC AUC of copy vs not-copy with score `−d1` (the audit's distance to the nearest
//!   training image in the embedder's space); empty if the cell has one class only.
//! - `precision`, `recall`, `f1` of the audit's calibrated `copy` flags at FPR α = 0.01 and
//!   0.001 (empty when undefined: no flag, no positive); `est_rate` = flagged fraction, to
//!   compare with `true_rate`.
//! - `mia_auc`, `mia_tpr@1%`, `mia_tpr@0.1%`: the audit's distance MIA (members = train).
//! - `images_per_s`: (train + holdout + synthetic images) / wall time of `Audit::run`.
//!
//! Results go to `results.csv` and `results.md` ([`BenchReport::write`]). Library code never
//! prints: progress and warnings (e.g. a real dataset missing from the cache, which skips that
//! dataset) go to the [`Reporter`].

use crate::config::{AuditConfig, CnnTrainConfig, EmbedConfig, EmbedderKind};
use crate::Audit;
use memscan_datasets::{
    build, denoiser, inject, kde, CopyTransform, Dataset, DatasetSpec, DenoiserSpec, InjectSpec,
    KdeSpec,
};
use memscan_io::{IoConfig, Reporter};
use memscan_metrics::mia::roc;
use ndarray_npy::WriteNpyExt;
use rand::seq::{index, SliceRandom};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

/// The FPRs every cell is scored at.
pub const BENCH_FPRS: [f64; 2] = [0.01, 0.001];

/// Errors of the benchmark runner.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot parse {}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("invalid suite {}: {message}", path.display())]
    Suite { path: PathBuf, message: String },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}", path.display())]
    Npy {
        path: PathBuf,
        #[source]
        source: ndarray_npy::WriteNpyError,
    },
    #[error("cannot write {}", path.display())]
    Csv {
        path: PathBuf,
        #[source]
        source: csv::Error,
    },
    #[error("building dataset {name}")]
    Dataset {
        name: String,
        #[source]
        source: memscan_datasets::Error,
    },
    #[error("running the audit of cell {cell}")]
    Audit {
        cell: String,
        #[source]
        source: crate::Error,
    },
}

/// One `[[datasets]]` entry: a path to a spec file or an inline spec.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum DatasetEntry {
    File { spec: PathBuf },
    Inline(DatasetSpec),
}

/// A generator and the settings it is swept over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum GeneratorSpec {
    /// Copies of training images under each transform × severity.
    Inject {
        fraction: f64,
        transforms: Vec<CopyTransform>,
        severities: Vec<f32>,
    },
    /// Gaussian KDE samples at each bandwidth.
    Kde { fraction: f64, sigmas: Vec<f64> },
    /// Optimal-denoiser samples at each `sigma_min` × smoothing.
    Denoiser {
        fraction: f64,
        sigma_min: Vec<f64>,
        #[serde(default = "zero_smoothing")]
        smoothing: Vec<f64>,
        #[serde(default = "edm_steps")]
        steps: usize,
    },
}

fn zero_smoothing() -> Vec<f64> {
    vec![0.0]
}
fn edm_steps() -> usize {
    18
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SuiteFile {
    name: String,
    #[serde(default)]
    seed: u64,
    #[serde(default = "default_embedders")]
    embedders: Vec<String>,
    cache: Option<PathBuf>,
    datasets: Vec<DatasetEntry>,
    generators: Vec<GeneratorSpec>,
}

fn default_embedders() -> Vec<String> {
    vec!["pixel".into()]
}

/// A parsed, validated suite.
#[derive(Debug, Clone)]
pub struct Suite {
    pub name: String,
    pub seed: u64,
    pub embedders: Vec<EmbedderKind>,
    /// Folder with one sub-folder per fetched real dataset.
    pub cache: PathBuf,
    pub datasets: Vec<DatasetSpec>,
    pub generators: Vec<GeneratorSpec>,
}

fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, BenchError> {
    let text = std::fs::read_to_string(path).map_err(|source| BenchError::Read {
        path: path.into(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| BenchError::Parse {
        path: path.into(),
        source,
    })
}

impl Suite {
    /// Reads a suite file; relative paths inside it are relative to its folder.
    pub fn load(path: &Path) -> Result<Suite, BenchError> {
        let file: SuiteFile = read_toml(path)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let bad = |message: String| BenchError::Suite {
            path: path.into(),
            message,
        };
        let embedders = file
            .embedders
            .iter()
            .map(|e| parse_embedder(e, dir).map_err(|e| bad(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let datasets = file
            .datasets
            .into_iter()
            .map(|d| match d {
                DatasetEntry::Inline(s) => Ok(s),
                DatasetEntry::File { spec } => read_toml(&dir.join(spec)),
            })
            .collect::<Result<Vec<_>, _>>()?;
        for g in &file.generators {
            let f = match g {
                GeneratorSpec::Inject { fraction, .. }
                | GeneratorSpec::Kde { fraction, .. }
                | GeneratorSpec::Denoiser { fraction, .. } => *fraction,
            };
            if !(0.0..=1.0).contains(&f) {
                return Err(bad(format!("generator fraction {f} is outside [0, 1]")));
            }
        }
        if datasets.is_empty() || file.generators.is_empty() || embedders.is_empty() {
            return Err(bad(
                "a suite needs at least one dataset, generator and embedder".into(),
            ));
        }
        Ok(Suite {
            name: file.name,
            seed: file.seed,
            embedders,
            cache: dir.join(file.cache.unwrap_or_else(|| "../cache".into())),
            datasets,
            generators: file.generators,
        })
    }

    /// The generator settings, in suite order: `(generator, setting)` labels and a recipe.
    fn settings(&self) -> Vec<Setting> {
        let mut out = Vec::new();
        for g in &self.generators {
            match g {
                GeneratorSpec::Inject {
                    fraction,
                    transforms,
                    severities,
                } => {
                    for &t in transforms {
                        // Flip and identity ignore the severity: one cell each.
                        let sev: &[f32] =
                            if matches!(t, CopyTransform::Identity | CopyTransform::Flip) {
                                &severities[..severities.len().min(1)]
                            } else {
                                severities
                            };
                        for &s in sev {
                            out.push(Setting::Inject {
                                fraction: *fraction,
                                transform: t,
                                severity: s,
                            });
                        }
                    }
                }
                GeneratorSpec::Kde { fraction, sigmas } => {
                    for &sigma in sigmas {
                        out.push(Setting::Kde {
                            fraction: *fraction,
                            sigma,
                        });
                    }
                }
                GeneratorSpec::Denoiser {
                    fraction,
                    sigma_min,
                    smoothing,
                    steps,
                } => {
                    for &sm in sigma_min {
                        for &h in smoothing {
                            out.push(Setting::Denoiser {
                                fraction: *fraction,
                                sigma_min: sm,
                                smoothing: h,
                                steps: *steps,
                            });
                        }
                    }
                }
            }
        }
        out
    }
}

#[derive(Debug, Clone, Copy)]
enum Setting {
    Inject {
        fraction: f64,
        transform: CopyTransform,
        severity: f32,
    },
    Kde {
        fraction: f64,
        sigma: f64,
    },
    Denoiser {
        fraction: f64,
        sigma_min: f64,
        smoothing: f64,
        steps: usize,
    },
}

impl Setting {
    fn fraction(&self) -> f64 {
        match *self {
            Setting::Inject { fraction, .. }
            | Setting::Kde { fraction, .. }
            | Setting::Denoiser { fraction, .. } => fraction,
        }
    }

    fn generator(&self) -> &'static str {
        match self {
            Setting::Inject { .. } => "inject",
            Setting::Kde { .. } => "kde",
            Setting::Denoiser { .. } => "denoiser",
        }
    }

    fn label(&self) -> String {
        match self {
            Setting::Inject {
                transform,
                severity,
                ..
            } => match transform {
                CopyTransform::Identity | CopyTransform::Flip => transform.to_string(),
                _ => format!("{transform}@{severity}"),
            },
            Setting::Kde { sigma, .. } => format!("sigma={sigma}"),
            Setting::Denoiser {
                sigma_min,
                smoothing,
                ..
            } => format!("sigma_min={sigma_min},h={smoothing}"),
        }
    }
}

/// One synthetic image's ground truth, as written to a cell's `truth.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthRow {
    /// Index in `synthetic.npy`.
    pub index: usize,
    /// The truth label: is this image a copy?
    pub copy: bool,
    /// `novel`, `inject`, `kde` or `denoiser`.
    pub origin: String,
    /// Source training image (inject, KDE) or nearest training image (denoiser).
    pub train: Option<usize>,
    /// Index into the dataset's novel images, for novel images.
    pub novel: Option<usize>,
    /// Inject: the transform and severity.
    pub transform: Option<CopyTransform>,
    pub severity: Option<f32>,
    /// Generated images: true pixel distance to the nearest and second-nearest training image.
    pub d1: Option<f64>,
    pub d2: Option<f64>,
}

/// One results row (one cell).
#[derive(Debug, Clone, Serialize)]
pub struct BenchRow {
    pub dataset: String,
    pub generator: String,
    pub setting: String,
    pub embedder: String,
    pub n_train: usize,
    pub n_holdout: usize,
    pub n_synthetic: usize,
    pub true_copies: usize,
    pub true_rate: f64,
    pub auroc: Option<f64>,
    #[serde(rename = "est_rate@0.01")]
    pub est_rate_01: f64,
    #[serde(rename = "precision@0.01")]
    pub precision_01: Option<f64>,
    #[serde(rename = "recall@0.01")]
    pub recall_01: Option<f64>,
    #[serde(rename = "f1@0.01")]
    pub f1_01: Option<f64>,
    /// Share of the novel synthetic images (held-out real images, not generated ones) flagged
    /// at α = 0.01: about α when the threshold is calibrated well.
    #[serde(rename = "novel_flag_rate@0.01")]
    pub novel_flag_rate_01: Option<f64>,
    #[serde(rename = "est_rate@0.001")]
    pub est_rate_001: f64,
    #[serde(rename = "precision@0.001")]
    pub precision_001: Option<f64>,
    #[serde(rename = "recall@0.001")]
    pub recall_001: Option<f64>,
    #[serde(rename = "f1@0.001")]
    pub f1_001: Option<f64>,
    pub mia_auc: Option<f64>,
    #[serde(rename = "mia_tpr@1%")]
    pub mia_tpr_1: Option<f64>,
    #[serde(rename = "mia_tpr@0.1%")]
    pub mia_tpr_01: Option<f64>,
    pub audit_seconds: f64,
    pub images_per_s: f64,
}

/// Options of one bench run (beyond the suite).
#[derive(Debug, Clone, Default)]
pub struct BenchOptions {
    /// Overrides the suite's seed.
    pub seed: Option<u64>,
    /// Keep each cell's `.npy` batches and `truth.csv` under this folder (`DATASET/CELL/`)
    /// instead of a temporary folder.
    pub keep_data: Option<PathBuf>,
    /// The cache folder (as `scan --cache-dir`): the `cnn` embedder's models (trained once per
    /// dataset) go to its `cnn-models` folder, and the embeddings of each dataset's training
    /// and holdout images (the same in every cell) are cached there, so that a learned
    /// embedder embeds them once per dataset, not once per cell. Default: a `cache` folder
    /// beside the cells' data (temporary unless `keep_data`).
    pub cache: Option<PathBuf>,
}

/// The results of a bench run.
#[derive(Debug, Clone)]
pub struct BenchReport {
    pub suite: String,
    pub seed: u64,
    pub threads: usize,
    pub rows: Vec<BenchRow>,
    /// Datasets that were skipped, with the reason.
    pub skipped: Vec<String>,
    /// Caveats (within-patient splits, unresolvable FPRs, …).
    pub notes: Vec<String>,
    pub seconds: f64,
}

/// Collects an audit's warnings without drawing progress (the bench has its own bar).
struct Collect(Mutex<Vec<String>>);

impl Reporter for Collect {
    fn warn(&self, message: &str) {
        self.0
            .lock()
            .expect("warnings lock")
            .push(message.to_string());
    }
}

fn mix(seed: u64, a: u64) -> u64 {
    let mut x = seed ^ a.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// `groups.csv` (`path,group`) for the `train.npy` and `holdout.npy` written beside it.
fn write_groups(path: &Path, ds: &Dataset) -> Result<(), BenchError> {
    let csv_err = |source| BenchError::Csv {
        path: path.to_path_buf(),
        source,
    };
    let mut w = csv::Writer::from_path(path).map_err(csv_err)?;
    w.write_record(["path", "group"]).map_err(csv_err)?;
    for (file, groups) in [
        ("train.npy", &ds.train_groups),
        ("holdout.npy", &ds.holdout_groups),
    ] {
        for (i, g) in groups.iter().enumerate() {
            w.write_record([format!("{file}#{i}"), g.clone()])
                .map_err(csv_err)?;
        }
    }
    w.flush().map_err(|source| BenchError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn write_npy(path: &Path, images: &[Vec<f32>], size: u32) -> Result<(), BenchError> {
    let s = size as usize;
    let flat: Vec<f32> = images.iter().flatten().copied().collect();
    let a = ndarray::Array3::from_shape_vec((images.len(), s, s), flat)
        .expect("images are size × size");
    let f = std::fs::File::create(path).map_err(|source| BenchError::Write {
        path: path.into(),
        source,
    })?;
    a.write_npy(std::io::BufWriter::new(f))
        .map_err(|source| BenchError::Npy {
            path: path.into(),
            source,
        })
}

fn create_dir(path: &Path) -> Result<(), BenchError> {
    std::fs::create_dir_all(path).map_err(|source| BenchError::Write {
        path: path.into(),
        source,
    })
}

/// A synthetic set and its truth.
struct Cell {
    images: Vec<Vec<f32>>,
    truth: Vec<TruthRow>,
}

fn novel_row(index: usize, j: usize) -> TruthRow {
    TruthRow {
        index,
        copy: false,
        origin: "novel".into(),
        train: None,
        novel: Some(j),
        transform: None,
        severity: None,
        d1: None,
        d2: None,
    }
}

/// Builds one cell's synthetic set.
fn make_cell(ds: &Dataset, setting: &Setting, seed: u64) -> Result<Cell, memscan_datasets::Error> {
    let n = ds.novel.len();
    match *setting {
        Setting::Inject {
            fraction,
            transform,
            severity,
        } => {
            let out = inject(
                &ds.train,
                &ds.novel,
                ds.size,
                &InjectSpec {
                    fraction,
                    transform,
                    severity,
                    seed,
                },
            )?;
            let truth = out
                .rows
                .iter()
                .enumerate()
                .map(|(i, r)| match r.train {
                    Some(t) => TruthRow {
                        index: i,
                        copy: true,
                        origin: "inject".into(),
                        train: Some(t),
                        novel: None,
                        transform: r.transform,
                        severity: r.severity,
                        d1: None,
                        d2: None,
                    },
                    None => novel_row(i, r.novel.expect("novel row")),
                })
                .collect();
            Ok(Cell {
                images: out.images,
                truth,
            })
        }
        Setting::Kde { fraction, .. } | Setting::Denoiser { fraction, .. } => {
            let k = (fraction * n as f64).round() as usize;
            let generated = match *setting {
                Setting::Kde { sigma, .. } => kde(&ds.train, &KdeSpec { sigma, n: k, seed })?,
                Setting::Denoiser {
                    sigma_min,
                    smoothing,
                    steps,
                    ..
                } => denoiser(
                    &ds.train,
                    &DenoiserSpec {
                        n: k,
                        sigma_min,
                        smoothing,
                        steps,
                        seed,
                        ..DenoiserSpec::default()
                    },
                )?,
                Setting::Inject { .. } => unreachable!("handled above"),
            };
            let mut rng = ChaCha8Rng::seed_from_u64(mix(seed, 0x006d_6978));
            let kept = index::sample(&mut rng, n, n - k).into_vec();
            // (Some(generated index), None) or (None, Some(novel index)), then shuffled.
            let mut order: Vec<(Option<usize>, Option<usize>)> = (0..k)
                .map(|g| (Some(g), None))
                .chain(kept.into_iter().map(|j| (None, Some(j))))
                .collect();
            order.shuffle(&mut rng);
            let origin = setting.generator();
            let (images, truth) = order
                .into_iter()
                .enumerate()
                .map(|(i, o)| match o {
                    (Some(g), _) => {
                        let t = &generated.truth[g];
                        (
                            generated.images[g].clone(),
                            TruthRow {
                                index: i,
                                copy: t.is_copy(),
                                origin: origin.into(),
                                train: Some(t.source.unwrap_or(t.nearest)),
                                novel: None,
                                transform: None,
                                severity: None,
                                d1: Some(t.d1),
                                d2: Some(t.d2),
                            },
                        )
                    }
                    (None, Some(j)) => (ds.novel[j].clone(), novel_row(i, j)),
                    (None, None) => unreachable!("every entry is generated or novel"),
                })
                .unzip();
            Ok(Cell { images, truth })
        }
    }
}

/// Parses a suite's (or `--embedder`'s) embedder name: `pixel`; `cnn`, trained once per
/// dataset on its training images (the cache folder is set by [`run`] from
/// [`BenchOptions::cache`]); `cnn:DIR`, a trained model (`DIR` relative to `base`).
pub fn parse_embedder(name: &str, base: &Path) -> Result<EmbedderKind, crate::Error> {
    match name {
        "pixel" => Ok(EmbedderKind::Pixel),
        "efficientnet-lite0" => Ok(EmbedderKind::EfficientnetLite0),
        "cnn" => Ok(EmbedderKind::CnnTrain(CnnTrainConfig::new(None))),
        other => match other.strip_prefix("cnn:") {
            Some(dir) if !dir.is_empty() => Ok(EmbedderKind::Cnn {
                dir: base.join(dir),
            }),
            _ => Err(crate::Error::Config(format!(
                "unknown embedder {other:?} (available: pixel, cnn, cnn:DIR, efficientnet-lite0)"
            ))),
        },
    }
}

/// The seed of everything trained once per dataset (the cnn embedder), so that every cell
/// of a dataset reuses one cached model.
fn cell_seed_base(seed: u64, dataset: usize) -> u64 {
    mix(seed, 0x636e_6e00 | dataset as u64)
}

fn ratio(a: usize, b: usize) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// Share of the novel images (origin `novel`: held-out real images of new patients) that
/// `flags` flags. Generated images that are not copies (KDE, denoiser) are not novel and do
/// not count; `None` without novel images.
fn novel_flag_rate(flags: &[bool], truth: &[TruthRow]) -> Option<f64> {
    let novel = || truth.iter().filter(|t| t.origin == "novel");
    let flagged = novel().filter(|t| flags[t.index]).count();
    ratio(flagged, novel().count())
}

/// `(est_rate, precision, recall, f1)` of `flags` against `truth`.
fn prf(flags: &[bool], truth: &[bool]) -> (f64, Option<f64>, Option<f64>, Option<f64>) {
    let tp = flags.iter().zip(truth).filter(|(&f, &t)| f && t).count();
    let flagged = flags.iter().filter(|&&f| f).count();
    let positives = truth.iter().filter(|&&t| t).count();
    let p = ratio(tp, flagged);
    let r = ratio(tp, positives);
    let f1 = match (p, r) {
        (Some(p), Some(r)) if p + r > 0.0 => Some(2.0 * p * r / (p + r)),
        (Some(_), Some(_)) => Some(0.0),
        _ => None,
    };
    (flagged as f64 / flags.len().max(1) as f64, p, r, f1)
}

/// Index of a synthetic image from its audit id (`synthetic.npy#17`).
fn npy_index(id: &str) -> Option<usize> {
    id.rsplit_once('#')?.1.parse().ok()
}

/// Runs every cell of `suite` (see the module docs).
pub fn run(
    suite: &Suite,
    opts: &BenchOptions,
    reporter: &dyn Reporter,
) -> Result<BenchReport, BenchError> {
    let t0 = Instant::now();
    let seed = opts.seed.unwrap_or(suite.seed);
    let settings = suite.settings();
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    let mut notes = Vec::new();
    let temp = tempfile::tempdir().map_err(|source| BenchError::Write {
        path: std::env::temp_dir(),
        source,
    })?;
    let root = opts.keep_data.clone().unwrap_or_else(|| temp.path().into());
    let cache = crate::cache::CacheConfig {
        dir: opts.cache.clone().unwrap_or_else(|| root.join("cache")),
    };
    let total = (suite.datasets.len() * settings.len() * suite.embedders.len()) as u64;
    reporter.start(&format!("bench {}", suite.name), total);
    for (di, spec) in suite.datasets.iter().enumerate() {
        let spec = DatasetSpec {
            seed: spec.seed.wrapping_add(seed),
            ..spec.clone()
        };
        let ds = match build(&spec, &suite.cache) {
            Ok(ds) => ds,
            Err(e @ memscan_datasets::Error::MissingCache { .. }) => {
                let msg = format!("skipping dataset {}: {e}", spec.name);
                reporter.warn(&msg);
                skipped.push(msg);
                reporter.advance((settings.len() * suite.embedders.len()) as u64);
                continue;
            }
            Err(source) => {
                return Err(BenchError::Dataset {
                    name: spec.name.clone(),
                    source,
                })
            }
        };
        notes.extend(ds.note.clone());
        let dir = root.join(&spec.name);
        create_dir(&dir)?;
        let (train_path, holdout_path) = (dir.join("train.npy"), dir.join("holdout.npy"));
        write_npy(&train_path, &ds.train, ds.size)?;
        write_npy(&holdout_path, &ds.holdout, ds.size)?;
        // Patients of train and holdout, so that the audit's per-patient results and its
        // reference/non-member split of the holdout follow patients.
        let groups_path = dir.join("groups.csv");
        write_groups(&groups_path, &ds)?;
        for (si, setting) in settings.iter().enumerate() {
            let cell_seed = mix(seed, ((di as u64) << 32) | si as u64);
            let label = setting.label();
            // The fraction is part of the folder name: a suite may repeat a setting at
            // several fractions.
            let cell_name = format!(
                "{}_p{}_{}",
                setting.generator(),
                setting.fraction(),
                label.replace([',', '=', '@'], "_")
            );
            let cell =
                make_cell(&ds, setting, cell_seed).map_err(|source| BenchError::Dataset {
                    name: spec.name.clone(),
                    source,
                })?;
            let cdir = dir.join(&cell_name);
            create_dir(&cdir)?;
            let syn_path = cdir.join("synthetic.npy");
            write_npy(&syn_path, &cell.images, ds.size)?;
            let truth_path = cdir.join("truth.csv");
            let mut w = csv::Writer::from_path(&truth_path).map_err(|source| BenchError::Csv {
                path: truth_path.clone(),
                source,
            })?;
            for r in &cell.truth {
                w.serialize(r).map_err(|source| BenchError::Csv {
                    path: truth_path.clone(),
                    source,
                })?;
            }
            w.flush().map_err(|source| BenchError::Write {
                path: truth_path.clone(),
                source,
            })?;
            for embedder in &suite.embedders {
                let mut embedder = embedder.clone();
                if let EmbedderKind::CnnTrain(t) = &mut embedder {
                    t.cache_dir = Some(cache.dir.join("cnn-models"));
                    t.seed = cell_seed_base(seed, di);
                }
                let mut cfg = AuditConfig::new(
                    train_path.clone(),
                    syn_path.clone(),
                    Some(holdout_path.clone()),
                );
                cfg.io = IoConfig {
                    size: ds.size,
                    channels: 1,
                    ..IoConfig::default()
                };
                cfg.embed = EmbedConfig {
                    kind: embedder.clone(),
                    ..EmbedConfig::default()
                };
                cfg.groups = Some(groups_path.clone());
                cfg.cache = Some(cache.clone());
                cfg.seed = cell_seed;
                let collect = Collect(Mutex::new(Vec::new()));
                let cell_id = format!("{} / {} / {label}", spec.name, setting.generator());
                let ta = Instant::now();
                let audit = Audit::run(&cfg, &collect).map_err(|source| BenchError::Audit {
                    cell: cell_id.clone(),
                    source,
                })?;
                let secs = ta.elapsed().as_secs_f64();
                for w in collect.0.into_inner().expect("warnings lock") {
                    let note = format!("{}: {w}", spec.name);
                    if !notes.contains(&note) {
                        notes.push(note);
                    }
                }
                rows.push(score(&ds, setting, &embedder, &cell, &audit, secs));
                reporter.advance(1);
            }
        }
    }
    reporter.finish();
    Ok(BenchReport {
        suite: suite.name.clone(),
        seed,
        threads: rayon::current_num_threads(),
        rows,
        skipped,
        notes,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

fn score(
    ds: &Dataset,
    setting: &Setting,
    embedder: &EmbedderKind,
    cell: &Cell,
    audit: &Audit,
    secs: f64,
) -> BenchRow {
    let out = &audit.output;
    let n = cell.truth.len();
    let mut d1 = vec![f64::NAN; n];
    let mut flags = vec![vec![false; n]; BENCH_FPRS.len()];
    let slot: Vec<Option<usize>> = BENCH_FPRS
        .iter()
        .map(|f| out.fprs.iter().position(|g| g == f))
        .collect();
    for row in &out.synthetic {
        let i = npy_index(&row.synthetic).expect("audit ids of an .npy batch end in #index");
        d1[i] = row.distance;
        for (k, s) in slot.iter().enumerate() {
            flags[k][i] = s.and_then(|s| row.copy_at.get(s).copied().flatten()) == Some(true);
        }
    }
    let truth: Vec<bool> = cell.truth.iter().map(|t| t.copy).collect();
    let positives = truth.iter().filter(|&&t| t).count();
    let scores: Vec<f64> = d1.iter().map(|d| -d).collect();
    let auroc = (positives > 0 && positives < n)
        .then(|| roc::auc(&scores, &truth).ok())
        .flatten();
    let (e1, p1, r1, f1) = prf(&flags[0], &truth);
    let (e2, p2, r2, f2) = prf(&flags[1], &truth);
    let mia = out
        .summary
        .metrics
        .mia
        .as_ref()
        .and_then(|m| m.distance.as_ref())
        .map(|d| &d.value);
    let n_img = ds.train.len() + ds.holdout.len() + n;
    BenchRow {
        dataset: ds.name.clone(),
        generator: setting.generator().into(),
        setting: setting.label(),
        embedder: embedder.name().into(),
        n_train: ds.train.len(),
        n_holdout: ds.holdout.len(),
        n_synthetic: n,
        true_copies: positives,
        true_rate: positives as f64 / n.max(1) as f64,
        auroc,
        est_rate_01: e1,
        precision_01: p1,
        recall_01: r1,
        f1_01: f1,
        novel_flag_rate_01: novel_flag_rate(&flags[0], &cell.truth),
        est_rate_001: e2,
        precision_001: p2,
        recall_001: r2,
        f1_001: f2,
        mia_auc: mia.map(|m| m.auc),
        mia_tpr_1: mia.map(|m| m.tpr_at_fpr_0_01),
        mia_tpr_01: mia.map(|m| m.tpr_at_fpr_0_001),
        audit_seconds: secs,
        images_per_s: n_img as f64 / secs.max(1e-9),
    }
}

fn fmt(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.3}"),
        _ => "–".into(),
    }
}

impl BenchReport {
    /// The Markdown table (`results.md`).
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "# memscan bench: {}\n\nseed {}, {} threads, {:.1} s in total. Truth: injected images \
             are copies; KDE/denoiser images are copies iff their true pixel-space d1/d2 < 1/3. \
             AUROC: copy vs not-copy with score −d1. P/R/F1 and est. rate: the audit's \
             calibrated `copy` flags at FPR α. MIA: distance attack, members = train. img/s: \
             (train + holdout + synthetic) / audit wall time.\n\n",
            self.suite, self.seed, self.threads, self.seconds
        );
        s.push_str(
            "| dataset | generator | setting | embedder | true rate | AUROC | est@0.01 | P@0.01 | R@0.01 | F1@0.01 | est@0.001 | P@0.001 | R@0.001 | F1@0.001 | MIA AUC | TPR@1% | TPR@0.1% | img/s |\n",
        );
        s.push_str("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for r in &self.rows {
            s.push_str(&format!(
                "| {} | {} | {} | {} | {:.3} | {} | {:.3} | {} | {} | {} | {:.3} | {} | {} | {} | {} | {} | {} | {:.0} |\n",
                r.dataset,
                r.generator,
                r.setting,
                r.embedder,
                r.true_rate,
                fmt(r.auroc),
                r.est_rate_01,
                fmt(r.precision_01),
                fmt(r.recall_01),
                fmt(r.f1_01),
                r.est_rate_001,
                fmt(r.precision_001),
                fmt(r.recall_001),
                fmt(r.f1_001),
                fmt(r.mia_auc),
                fmt(r.mia_tpr_1),
                fmt(r.mia_tpr_01),
                r.images_per_s
            ));
        }
        if !self.skipped.is_empty() || !self.notes.is_empty() {
            s.push_str("\nNotes:\n\n");
            for n in self.skipped.iter().chain(&self.notes) {
                s.push_str(&format!("- {n}\n"));
            }
        }
        s
    }

    /// The embedders side by side (`embedders.md`), one row per dataset × injected
    /// transform (× number of copies, named in the row, when a suite injects a transform at
    /// several fractions) and one column group per embedder (in suite order): detection AUROC,
    /// recall at the calibrated α = 0.01, and the share of novel images flagged at α = 0.01.
    /// `None` when the run has no inject cells.
    pub fn embedder_comparison(&self) -> Option<String> {
        let mut embedders: Vec<&str> = Vec::new();
        // (dataset, transform, number of copies): one suite may inject a transform at
        // several fractions.
        let mut keys: Vec<(&str, &str, usize)> = Vec::new();
        for r in self.rows.iter().filter(|r| r.generator == "inject") {
            if !embedders.contains(&r.embedder.as_str()) {
                embedders.push(&r.embedder);
            }
            let key = (r.dataset.as_str(), r.setting.as_str(), r.true_copies);
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        if keys.is_empty() {
            return None;
        }
        let mut s = String::from("| dataset | transform |");
        let mut rule = String::from("|---|---|");
        for e in &embedders {
            s.push_str(&format!(" {e} AUROC | {e} R@0.01 | {e} novel@0.01 |"));
            rule.push_str("---:|---:|---:|");
        }
        s.push('\n');
        s.push_str(&rule);
        s.push('\n');
        for &(d, t, c) in &keys {
            let fractions = keys.iter().filter(|k| (k.0, k.1) == (d, t)).count();
            let row = |r: &&BenchRow| {
                r.generator == "inject" && r.dataset == d && r.setting == t && r.true_copies == c
            };
            match self.rows.iter().find(row) {
                Some(r) if fractions > 1 => {
                    s.push_str(&format!("| {d} | {t}, {c} of {} |", r.n_synthetic))
                }
                _ => s.push_str(&format!("| {d} | {t} |")),
            }
            for e in &embedders {
                match self.rows.iter().find(|r| row(r) && r.embedder == *e) {
                    Some(r) => s.push_str(&format!(
                        " {} | {} | {} |",
                        fmt(r.auroc),
                        fmt(r.recall_01),
                        fmt(r.novel_flag_rate_01)
                    )),
                    None => s.push_str(" – | – | – |"),
                }
            }
            s.push('\n');
        }
        Some(s)
    }

    /// Writes `results.csv` and `results.md` (and `embedders.md` when there are inject cells,
    /// see [`BenchReport::embedder_comparison`]) into `out` (created if needed).
    pub fn write(&self, out: &Path) -> Result<(), BenchError> {
        create_dir(out)?;
        let csv_path = out.join("results.csv");
        let mut w = csv::Writer::from_path(&csv_path).map_err(|source| BenchError::Csv {
            path: csv_path.clone(),
            source,
        })?;
        for r in &self.rows {
            w.serialize(r).map_err(|source| BenchError::Csv {
                path: csv_path.clone(),
                source,
            })?;
        }
        w.flush().map_err(|source| BenchError::Write {
            path: csv_path.clone(),
            source,
        })?;
        let md = out.join("results.md");
        std::fs::write(&md, self.markdown()).map_err(|source| BenchError::Write {
            path: md.clone(),
            source,
        })?;
        if let Some(table) = self.embedder_comparison() {
            let p = out.join("embedders.md");
            std::fs::write(&p, table).map_err(|source| BenchError::Write { path: p, source })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prf_and_ids() {
        let (e, p, r, f) = prf(&[true, true, false, false], &[true, false, true, false]);
        assert_eq!((e, p, r, f), (0.5, Some(0.5), Some(0.5), Some(0.5)));
        let (_, p, r, f) = prf(&[false; 3], &[false; 3]);
        assert_eq!((p, r, f), (None, None, None));
        assert_eq!(npy_index("synthetic.npy#17"), Some(17));
    }

    #[test]
    fn embedder_table_keeps_a_transform_at_two_fractions_apart() {
        let row = |embedder: &str, copies: usize, recall: f64| BenchRow {
            dataset: "ct".into(),
            generator: "inject".into(),
            setting: "blur@0.5".into(),
            embedder: embedder.into(),
            n_train: 100,
            n_holdout: 100,
            n_synthetic: 100,
            true_copies: copies,
            true_rate: copies as f64 / 100.0,
            auroc: Some(0.9),
            est_rate_01: 0.1,
            precision_01: None,
            recall_01: Some(recall),
            f1_01: None,
            novel_flag_rate_01: Some(0.01),
            est_rate_001: 0.1,
            precision_001: None,
            recall_001: None,
            f1_001: None,
            mia_auc: None,
            mia_tpr_1: None,
            mia_tpr_01: None,
            audit_seconds: 1.0,
            images_per_s: 1.0,
        };
        let mut report = BenchReport {
            suite: "t".into(),
            seed: 0,
            threads: 1,
            rows: vec![
                row("pixel", 10, 0.25),
                row("pixel", 50, 0.75),
                row("cnn", 10, 0.5),
            ],
            skipped: vec![],
            notes: vec![],
            seconds: 1.0,
        };
        let t = report.embedder_comparison().unwrap();
        assert!(
            t.contains("| ct | blur@0.5, 10 of 100 | 0.900 | 0.250 |"),
            "{t}"
        );
        assert!(
            t.contains("| ct | blur@0.5, 50 of 100 | 0.900 | 0.750 |"),
            "{t}"
        );
        assert!(t.contains("| 0.900 | 0.500 | 0.010 |\n"), "{t}");
        // One fraction: the plain label.
        report.rows.remove(1);
        let t = report.embedder_comparison().unwrap();
        assert!(t.contains("| ct | blur@0.5 | 0.900 | 0.250 |"), "{t}");
    }

    #[test]
    fn novel_flag_rate_counts_novel_images_only() {
        let generated = |index, copy| TruthRow {
            copy,
            origin: "kde".into(),
            train: Some(0),
            novel: None,
            d1: Some(0.1),
            d2: Some(0.2),
            ..novel_row(index, 0)
        };
        // 0, 1: novel (one flagged); 2: a KDE copy (flagged); 3: a KDE sample that is not a
        // copy (flagged): a false alarm, but not a novel image.
        let truth = [
            novel_row(0, 0),
            novel_row(1, 1),
            generated(2, true),
            generated(3, false),
        ];
        let flags = [true, false, true, true];
        assert_eq!(novel_flag_rate(&flags, &truth), Some(0.5));
        assert_eq!(novel_flag_rate(&flags[2..], &[]), None);
    }

    #[test]
    fn suite_parses_and_rejects_unknown_fields() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.toml");
        std::fs::write(
            &p,
            "name = \"t\"\n[[datasets]]\nname = \"ct\"\nsource = \"phantom\"\nsize = 16\n\
             n_train = 10\nn_holdout = 10\nn_novel = 10\n\n[[generators]]\nkind = \"inject\"\n\
             fraction = 0.2\ntransforms = [\"identity\", \"flip\", \"noise\"]\nseverities = [0.1, 0.5]\n\
             [[generators]]\nkind = \"kde\"\nfraction = 0.5\nsigmas = [0.001]\n",
        )
        .unwrap();
        let s = Suite::load(&p).unwrap();
        let labels: Vec<String> = s.settings().iter().map(Setting::label).collect();
        assert_eq!(
            labels,
            ["identity", "flip", "noise@0.1", "noise@0.5", "sigma=0.001"]
        );
        assert_eq!(s.cache, dir.path().join("../cache"));
        std::fs::write(
            &p,
            "name = \"t\"\nbogus = 1\ndatasets = []\ngenerators = []\n",
        )
        .unwrap();
        assert!(Suite::load(&p).is_err());
    }
}
