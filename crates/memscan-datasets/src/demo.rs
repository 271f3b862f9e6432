//! The demo dataset: train, holdout and synthetic folders of phantoms with known copies.
//!
//! [`write_demo`] renders [`DemoSpec`]'s images and writes, under a folder `dir`:
//!
//! ```text
//! dir/train/p0007_s02.png     n_patients_train × slices_per_patient training slices
//! dir/holdout/p0123_s01.png   n_holdout slices of patients never used for training
//! dir/synthetic/syn_0042.png  novel slices of further new patients, exact copies of training
//!                             PNGs and lightly perturbed copies, in a seeded random order
//! dir/truth.csv               synthetic,train,transform,severity (one row per synthetic image)
//! dir/groups.csv              path,group (patient id of every train and holdout image)
//! ```
//!
//! All images are 8-bit grayscale PNGs; paths in the CSV files are relative to `dir` and
//! `/`-separated. Train, holdout and novel synthetic images come from the same distribution
//! (same phantom kind, slice positions drawn the same way, independent acquisition noise),
//! from disjoint patients, so a detector calibrated on holdout flags novel images at its
//! target false-positive rate. Exact copies are the training PNG's very bytes; perturbed
//! copies are the training image (as written) under a light [`CopyTransform`] — Gaussian
//! noise with σ 0.010–0.019, JPEG at quality 95–90, or a gamma change of at most
//! |ln γ| = 0.06 — so pixel distance still separates them from every holdout image.
//!
//! The output is byte-identical for a given spec whatever the number of rayon threads:
//! each image's randomness comes from `(seed, stage, index)`.

use crate::encode;
use crate::error::Error;
use crate::phantom::{from_u8, render_u8, to_u8, PatientParams, PhantomKind};
use crate::rng::{derive, stage, stream};
use crate::transform::CopyTransform;
use rand::seq::{index, SliceRandom};
use rand::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What [`write_demo`] generates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoSpec {
    /// Phantom modality.
    pub kind: PhantomKind,
    /// Side length in pixels.
    pub size: u32,
    /// Training patients.
    pub n_patients_train: usize,
    /// Slices per patient, spread over the whole `z` range (applies to every set).
    pub slices_per_patient: usize,
    /// Holdout images (from `ceil(n_holdout / slices_per_patient)` new patients).
    pub n_holdout: usize,
    /// Novel synthetic images (from further new patients).
    pub n_synthetic_novel: usize,
    /// Synthetic images that are byte-identical to a training PNG.
    pub n_exact_copies: usize,
    /// Synthetic images that are lightly perturbed training images.
    pub n_perturbed_copies: usize,
    /// Seed for everything.
    pub seed: u64,
}

impl Default for DemoSpec {
    /// 300 train (100 patients × 3 slices), 300 holdout, 300 synthetic (270 novel, 15 exact
    /// and 15 perturbed copies), CT, 64 × 64, seed 0.
    fn default() -> Self {
        DemoSpec {
            kind: PhantomKind::Ct,
            size: 64,
            n_patients_train: 100,
            slices_per_patient: 3,
            n_holdout: 300,
            n_synthetic_novel: 270,
            n_exact_copies: 15,
            n_perturbed_copies: 15,
            seed: 0,
        }
    }
}

impl DemoSpec {
    /// Number of training images.
    pub fn n_train(&self) -> usize {
        self.n_patients_train * self.slices_per_patient
    }

    /// Number of synthetic images.
    pub fn n_synthetic(&self) -> usize {
        self.n_synthetic_novel + self.n_exact_copies + self.n_perturbed_copies
    }

    /// Checks the spec; [`write_demo`] calls this first.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |m: String| Err(Error::InvalidSpec(m));
        if self.size == 0 {
            return bad("demo size must be positive".into());
        }
        if self.slices_per_patient == 0 || self.n_patients_train == 0 {
            return bad(
                "demo needs at least one training patient and one slice per patient".into(),
            );
        }
        let copies = self.n_exact_copies + self.n_perturbed_copies;
        if copies > self.n_train() {
            return bad(format!(
                "{copies} copies requested but only {} training images (each is copied at most once)",
                self.n_train()
            ));
        }
        Ok(())
    }
}

/// The demo's output locations under one folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoPaths {
    pub root: PathBuf,
    pub train: PathBuf,
    pub holdout: PathBuf,
    pub synthetic: PathBuf,
    pub truth_csv: PathBuf,
    pub groups_csv: PathBuf,
}

impl DemoPaths {
    /// The layout under `dir` (nothing is created).
    pub fn new(dir: &Path) -> DemoPaths {
        DemoPaths {
            root: dir.to_path_buf(),
            train: dir.join("train"),
            holdout: dir.join("holdout"),
            synthetic: dir.join("synthetic"),
            truth_csv: dir.join("truth.csv"),
            groups_csv: dir.join("groups.csv"),
        }
    }
}

/// One row of `truth.csv`: where a synthetic image came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthRow {
    /// The synthetic image, relative to the demo folder (`synthetic/syn_0042.png`).
    pub synthetic: String,
    /// The copied training image (`train/p0007_s02.png`); `None` (empty) for novel images.
    pub train: Option<String>,
    /// The copy transform (`identity` for exact copies); `None` for novel images.
    pub transform: Option<CopyTransform>,
    /// The transform's severity; `None` for novel images.
    pub severity: Option<f32>,
}

/// One row of `groups.csv`: the patient an image belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRow {
    /// Image path relative to the demo folder.
    pub path: String,
    /// Patient id (`p0007`).
    pub group: String,
}

/// The ground truth of a written demo, as in `truth.csv` and `groups.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoTruth {
    /// The spec it was generated from.
    pub spec: DemoSpec,
    /// Training image paths relative to the demo folder, in sorted (= file name) order.
    pub train: Vec<String>,
    /// Holdout image paths, sorted.
    pub holdout: Vec<String>,
    /// Synthetic image paths, sorted.
    pub synthetic: Vec<String>,
    /// One row per synthetic image, in the order of [`DemoTruth::synthetic`].
    pub rows: Vec<TruthRow>,
    /// Patient of every train then holdout image.
    pub groups: Vec<GroupRow>,
}

impl DemoTruth {
    /// The rows of synthetic images that copy a training image (exact or perturbed).
    pub fn copies(&self) -> impl Iterator<Item = &TruthRow> {
        self.rows.iter().filter(|r| r.train.is_some())
    }

    /// How many synthetic images are copies.
    pub fn n_copies(&self) -> usize {
        self.copies().count()
    }
}

/// Reads a `truth.csv` written by [`write_demo`] (or by hand in the same format).
pub fn read_truth(path: &Path) -> Result<Vec<TruthRow>, Error> {
    read_csv(path)
}

/// Reads a `groups.csv` (`path,group`).
pub fn read_groups(path: &Path) -> Result<Vec<GroupRow>, Error> {
    read_csv(path)
}

fn read_csv<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>, Error> {
    let csv_err = |source| Error::Csv {
        path: path.to_path_buf(),
        source,
    };
    let mut rdr = csv::Reader::from_path(path).map_err(csv_err)?;
    rdr.deserialize()
        .collect::<Result<Vec<T>, _>>()
        .map_err(csv_err)
}

pub(crate) fn write_csv<T: Serialize>(path: &Path, rows: &[T]) -> Result<(), Error> {
    let csv_err = |source| Error::Csv {
        path: path.to_path_buf(),
        source,
    };
    let mut w = csv::Writer::from_path(path).map_err(csv_err)?;
    for r in rows {
        w.serialize(r).map_err(csv_err)?;
    }
    w.flush().map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Where a synthetic image comes from.
#[derive(Debug, Clone, Copy)]
enum Source {
    Novel(usize),
    Exact(usize),
    Perturbed {
        train: usize,
        transform: CopyTransform,
        severity: f32,
        stream: u64,
    },
}

/// Digits for zero-padded indices: at least 4.
fn width(n: usize) -> usize {
    n.saturating_sub(1).to_string().len().max(4)
}

/// Slice positions of one patient: one per stratum of `[0, 1]`, jittered.
fn slice_z(seed: u64, patient: usize, slices: usize) -> Vec<f32> {
    let mut rng = stream(seed, stage::SLICE, patient as u64);
    (0..slices)
        .map(|j| (j as f32 + 0.5 + rng.random_range(-0.3f32..0.3)) / slices as f32)
        .collect()
}

/// Renders `n` images from consecutive patients starting at global patient index `first`.
/// Returns `(patient index, slice index, pixels)` in order.
pub(crate) fn render_patients(
    spec: &DemoSpec,
    first: usize,
    n: usize,
) -> Vec<(usize, usize, Vec<u8>)> {
    let spp = spec.slices_per_patient;
    (0..n)
        .into_par_iter()
        .map(|i| {
            let (p, j) = (first + i / spp, i % spp);
            let patient =
                PatientParams::sample(spec.kind, derive(spec.seed, stage::PATIENT, p as u64));
            let z = slice_z(spec.seed, p, spp)[j];
            let noise = derive(spec.seed, stage::NOISE, (p * spp + j) as u64);
            (p, j, render_u8(&patient, z, spec.size, noise))
        })
        .collect()
}

/// Light perturbations for the demo's perturbed copies: `(transform, severity)`, cycling
/// noise (σ 0.010–0.019), JPEG (quality 95–90) and gamma (|ln γ| 0.03–0.06).
fn light_perturbation(c: usize, rng: &mut impl Rng) -> (CopyTransform, f32) {
    let round = |s: f32| (s * 100.0).round() / 100.0;
    match c % 3 {
        0 => (CopyTransform::Noise, round(rng.random_range(0.0..0.1))),
        1 => (CopyTransform::Jpeg, round(rng.random_range(0.0..0.077))),
        _ => (CopyTransform::Gamma, round(rng.random_range(0.05..0.1))),
    }
}

/// Is `name` a file name the demo writes (`p0007_s02.png`, `syn_0042.png`)?
fn is_demo_name(name: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let Some(stem) = name.strip_suffix(".png") else {
        return false;
    };
    if let Some(n) = stem.strip_prefix("syn_") {
        return digits(n);
    }
    match stem.strip_prefix('p').and_then(|r| r.split_once("_s")) {
        Some((p, s)) => digits(p) && digits(s),
        None => false,
    }
}

/// Creates `dir`, or empties it of a previous demo's PNGs; anything else in it is an error.
fn prepare_dir(dir: &Path) -> Result<(), Error> {
    let read_err = |source| Error::Read {
        path: dir.to_path_buf(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return encode::create_dir(dir),
        Err(e) => return Err(read_err(e)),
    };
    let mut old = Vec::new();
    for entry in entries {
        let entry = entry.map_err(read_err)?;
        let is_file = entry.file_type().map_err(read_err)?.is_file();
        match entry.file_name().to_str() {
            Some(name) if is_file && is_demo_name(name) => old.push(entry.path()),
            _ => {
                return Err(Error::NotEmpty {
                    path: dir.to_path_buf(),
                })
            }
        }
    }
    for path in old {
        std::fs::remove_file(&path).map_err(|source| Error::Remove { path, source })?;
    }
    Ok(())
}

/// Writes the demo dataset described by `spec` under `dir` (see the module docs) and returns
/// its ground truth.
///
/// `dir` may exist. Its `train/`, `holdout/` and `synthetic/` folders may hold a previous
/// demo's PNGs (which are removed first, so a re-run never leaves stale images behind) but
/// nothing else ([`Error::NotEmpty`]); `truth.csv` and `groups.csv` are overwritten.
pub fn write_demo(dir: &Path, spec: &DemoSpec) -> Result<DemoTruth, Error> {
    spec.validate()?;
    let paths = DemoPaths::new(dir);
    for d in [&paths.train, &paths.holdout, &paths.synthetic] {
        prepare_dir(d)?;
    }

    let spp = spec.slices_per_patient;
    let n_train = spec.n_train();
    let holdout_patients = spec.n_holdout.div_ceil(spp);
    let novel_patients = spec.n_synthetic_novel.div_ceil(spp);
    let pw = width(spec.n_patients_train + holdout_patients + novel_patients);
    let sw = spp.saturating_sub(1).to_string().len().max(2);
    let name = |set: &str, p: usize, j: usize| format!("{set}/p{p:0pw$}_s{j:0sw$}.png");

    let train = render_patients(spec, 0, n_train);
    let holdout = render_patients(spec, spec.n_patients_train, spec.n_holdout);
    let novel = render_patients(
        spec,
        spec.n_patients_train + holdout_patients,
        spec.n_synthetic_novel,
    );

    // Choose distinct training images to copy, then shuffle all synthetic sources.
    let n_copies = spec.n_exact_copies + spec.n_perturbed_copies;
    let chosen =
        index::sample(&mut stream(spec.seed, stage::SELECT, 0), n_train, n_copies).into_vec();
    let mut sources: Vec<Source> = (0..spec.n_synthetic_novel).map(Source::Novel).collect();
    for (c, &t) in chosen.iter().enumerate() {
        if c < spec.n_exact_copies {
            sources.push(Source::Exact(t));
        } else {
            let k = c - spec.n_exact_copies;
            let (transform, severity) =
                light_perturbation(k, &mut stream(spec.seed, stage::PERTURB, k as u64));
            sources.push(Source::Perturbed {
                train: t,
                transform,
                severity,
                stream: k as u64,
            });
        }
    }
    sources.shuffle(&mut stream(spec.seed, stage::SHUFFLE, 0));

    let synthetic_pixels: Vec<Vec<u8>> = sources
        .par_iter()
        .map(|src| match *src {
            Source::Novel(i) => novel[i].2.clone(),
            Source::Exact(t) => train[t].2.clone(),
            Source::Perturbed {
                train: t,
                transform,
                severity,
                stream: k,
            } => {
                // A second stream index keeps the transform's draws apart from the choice above.
                let mut rng = stream(spec.seed, stage::PERTURB, (1 << 32) + k);
                to_u8(&transform.apply(&from_u8(&train[t].2), spec.size, severity, &mut rng))
            }
        })
        .collect();

    let train_names: Vec<String> = train
        .iter()
        .map(|(p, j, _)| name("train", *p, *j))
        .collect();
    let holdout_names: Vec<String> = holdout
        .iter()
        .map(|(p, j, _)| name("holdout", *p, *j))
        .collect();
    let yw = width(sources.len());
    let synthetic_names: Vec<String> = (0..sources.len())
        .map(|i| format!("synthetic/syn_{i:0yw$}.png"))
        .collect();

    let rows: Vec<TruthRow> = sources
        .iter()
        .zip(&synthetic_names)
        .map(|(src, syn)| {
            let (train, transform, severity) = match *src {
                Source::Novel(_) => (None, None, None),
                Source::Exact(t) => (
                    Some(train_names[t].clone()),
                    Some(CopyTransform::Identity),
                    Some(0.0),
                ),
                Source::Perturbed {
                    train: t,
                    transform,
                    severity,
                    ..
                } => (
                    Some(train_names[t].clone()),
                    Some(transform),
                    Some(severity),
                ),
            };
            TruthRow {
                synthetic: syn.clone(),
                train,
                transform,
                severity,
            }
        })
        .collect();
    let groups: Vec<GroupRow> = train
        .iter()
        .zip(&train_names)
        .chain(holdout.iter().zip(&holdout_names))
        .map(|((p, _, _), path)| GroupRow {
            path: path.clone(),
            group: format!("p{p:0pw$}"),
        })
        .collect();

    // Write every PNG in parallel; report the first failure in a fixed order.
    let jobs: Vec<(&String, &Vec<u8>)> = train_names
        .iter()
        .zip(train.iter().map(|t| &t.2))
        .chain(holdout_names.iter().zip(holdout.iter().map(|t| &t.2)))
        .chain(synthetic_names.iter().zip(&synthetic_pixels))
        .collect();
    let results: Vec<Result<(), Error>> = jobs
        .par_iter()
        .map(|(rel, px)| encode::png8(&dir.join(rel.as_str()), px, spec.size))
        .collect();
    results.into_iter().collect::<Result<(), Error>>()?;
    write_csv(&paths.truth_csv, &rows)?;
    write_csv(&paths.groups_csv, &groups)?;

    Ok(DemoTruth {
        spec: spec.clone(),
        train: train_names,
        holdout: holdout_names,
        synthetic: synthetic_names,
        rows,
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn small() -> DemoSpec {
        DemoSpec {
            size: 32,
            n_patients_train: 10,
            slices_per_patient: 4,
            n_holdout: 22,
            n_synthetic_novel: 30,
            n_exact_copies: 4,
            n_perturbed_copies: 5,
            seed: 3,
            ..DemoSpec::default()
        }
    }

    /// Every file under `dir`, relative path → bytes.
    fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p
                        .strip_prefix(dir)
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/");
                    out.insert(rel, std::fs::read(&p).unwrap());
                }
            }
        }
        out
    }

    fn decode(path: &Path) -> Vec<u8> {
        image::open(path).unwrap().into_luma8().into_raw()
    }

    fn dist(a: &[u8], b: &[u8]) -> f32 {
        let s: f32 = a
            .iter()
            .zip(b)
            .map(|(&x, &y)| ((f32::from(x) - f32::from(y)) / 255.0).powi(2))
            .sum();
        (s / a.len() as f32).sqrt()
    }

    #[test]
    fn layout_counts_and_truth_files() {
        let dir = tempfile::tempdir().unwrap();
        let spec = small();
        let truth = write_demo(dir.path(), &spec).unwrap();
        let files = snapshot(dir.path());
        let count = |prefix: &str| files.keys().filter(|k| k.starts_with(prefix)).count();
        assert_eq!(count("train/"), 40);
        assert_eq!(count("holdout/"), 22);
        assert_eq!(count("synthetic/"), 39);
        assert!(files.contains_key("train/p0000_s00.png"));
        assert!(files.contains_key("holdout/p0010_s00.png"));
        assert!(files.contains_key("synthetic/syn_0038.png"));
        assert_eq!(truth.train.len(), 40);
        assert_eq!(truth.n_copies(), 9);
        // The CSV files hold the same rows as the returned truth.
        let paths = DemoPaths::new(dir.path());
        assert_eq!(read_truth(&paths.truth_csv).unwrap(), truth.rows);
        assert_eq!(read_groups(&paths.groups_csv).unwrap(), truth.groups);
        let csv = String::from_utf8(files["truth.csv"].clone()).unwrap();
        assert!(
            csv.starts_with("synthetic,train,transform,severity\n"),
            "{csv}"
        );
        assert!(
            csv.lines().any(|l| l.ends_with(",,,")),
            "novel rows have empty fields"
        );
        assert!(String::from_utf8(files["groups.csv"].clone())
            .unwrap()
            .starts_with("path,group\n"));
        // Holdout patients are not training patients.
        let train_groups: Vec<_> = truth
            .groups
            .iter()
            .filter(|g| g.path.starts_with("train/"))
            .map(|g| &g.group)
            .collect();
        assert!(truth
            .groups
            .iter()
            .filter(|g| g.path.starts_with("holdout/"))
            .all(|g| !train_groups.contains(&&g.group)));
        // Copies are scattered, not at the end, and file names don't say which is which.
        let first_copy = truth.rows.iter().position(|r| r.train.is_some()).unwrap();
        assert!(
            first_copy < 30,
            "copies must be shuffled among novel images"
        );
        assert!(truth.synthetic.iter().all(|s| !s.contains("copy")));
    }

    #[test]
    fn copies_match_their_training_image() {
        let dir = tempfile::tempdir().unwrap();
        let truth = write_demo(dir.path(), &small()).unwrap();
        let mut sources = std::collections::HashSet::new();
        for row in truth.copies() {
            let t = row.train.as_ref().unwrap();
            assert!(
                sources.insert(t.clone()),
                "each training image is copied at most once"
            );
            let a = std::fs::read(dir.path().join(&row.synthetic)).unwrap();
            let b = std::fs::read(dir.path().join(t)).unwrap();
            match row.transform.unwrap() {
                CopyTransform::Identity => {
                    assert_eq!(a, b, "exact copy must be byte-identical");
                    assert_eq!(
                        decode(&dir.path().join(&row.synthetic)),
                        decode(&dir.path().join(t))
                    );
                }
                tf => {
                    let d = dist(
                        &decode(&dir.path().join(&row.synthetic)),
                        &decode(&dir.path().join(t)),
                    );
                    assert!(d > 0.0 && d < 0.03, "{tf} copy at distance {d}");
                }
            }
        }
        for row in truth.rows.iter().filter(|r| r.train.is_none()) {
            assert!(row.transform.is_none() && row.severity.is_none());
        }
    }

    #[test]
    fn rejects_bad_specs_and_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        let too_many = DemoSpec {
            n_exact_copies: 41,
            ..small()
        };
        assert!(matches!(
            write_demo(dir.path(), &too_many),
            Err(Error::InvalidSpec(_))
        ));
        let zero = DemoSpec { size: 0, ..small() };
        assert!(matches!(
            write_demo(dir.path(), &zero),
            Err(Error::InvalidSpec(_))
        ));
        std::fs::create_dir_all(dir.path().join("holdout")).unwrap();
        std::fs::write(dir.path().join("holdout").join("scan.dcm"), b"x").unwrap();
        let err = write_demo(dir.path(), &small()).unwrap_err();
        assert!(matches!(err, Error::NotEmpty { .. }), "{err}");
        assert!(err.to_string().contains("holdout"), "{err}");
        assert!(
            dir.path().join("holdout").join("scan.dcm").exists(),
            "foreign files are kept"
        );
    }

    /// Re-running into the same folder replaces the previous demo, leaving no stale images.
    #[test]
    fn rerun_replaces_previous_demo() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let bigger = DemoSpec {
            n_holdout: 30,
            n_synthetic_novel: 50,
            seed: 8,
            ..small()
        };
        write_demo(a.path(), &bigger).unwrap();
        write_demo(a.path(), &small()).unwrap();
        write_demo(b.path(), &small()).unwrap();
        assert!(snapshot(a.path()) == snapshot(b.path()));
        assert!(is_demo_name("p0007_s02.png") && is_demo_name("syn_0042.png"));
        assert!(!is_demo_name("p7.png") && !is_demo_name("syn_.png"));
        assert!(!is_demo_name("p1_s2.jpg") && !is_demo_name("notes.txt"));
    }

    #[test]
    fn zero_copies_and_partial_patients() {
        let dir = tempfile::tempdir().unwrap();
        let spec = DemoSpec {
            n_exact_copies: 0,
            n_perturbed_copies: 0,
            n_holdout: 5,
            ..small()
        };
        let truth = write_demo(dir.path(), &spec).unwrap();
        assert_eq!(truth.n_copies(), 0);
        assert_eq!(
            truth.holdout,
            [
                "holdout/p0010_s00.png",
                "holdout/p0010_s01.png",
                "holdout/p0010_s02.png",
                "holdout/p0010_s03.png",
                "holdout/p0011_s00.png"
            ]
        );
    }

    /// Two runs, with 1 and 3 rayon threads, write byte-identical folders.
    #[test]
    fn default_demo_is_deterministic_across_thread_counts() {
        let spec = DemoSpec::default();
        let run = |threads: usize| {
            let dir = tempfile::tempdir().unwrap();
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let truth = pool.install(|| write_demo(dir.path(), &spec)).unwrap();
            (snapshot(dir.path()), truth)
        };
        let (a, ta) = run(1);
        let (b, tb) = run(3);
        assert_eq!(a.len(), 300 + 300 + 300 + 2);
        assert!(a == b, "outputs differ between 1 and 3 threads");
        assert_eq!(ta, tb);
    }

    /// The property that makes the demo meaningful: every perturbed copy is much closer to
    /// its source than any holdout image is to its nearest training image.
    #[test]
    fn default_demo_copies_are_separable_in_pixel_space() {
        let dir = tempfile::tempdir().unwrap();
        let truth = write_demo(dir.path(), &DemoSpec::default()).unwrap();
        let load = |rel: &String| decode(&dir.path().join(rel));
        let train: Vec<Vec<u8>> = truth.train.iter().map(load).collect();
        let holdout_nn: Vec<f32> = truth
            .holdout
            .iter()
            .map(|h| {
                let h = load(h);
                train
                    .iter()
                    .map(|t| dist(&h, t))
                    .fold(f32::INFINITY, f32::min)
            })
            .collect();
        let min_holdout = holdout_nn.iter().copied().fold(f32::INFINITY, f32::min);
        let mut max_copy = 0.0f32;
        for row in truth.copies() {
            let d = dist(&load(&row.synthetic), &load(row.train.as_ref().unwrap()));
            if row.transform == Some(CopyTransform::Identity) {
                assert_eq!(d, 0.0);
            }
            max_copy = max_copy.max(d);
        }
        assert!(
            max_copy < 0.5 * min_holdout,
            "perturbed copy {max_copy} vs nearest holdout {min_holdout}"
        );
    }
}
