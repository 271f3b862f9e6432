//! Dataset specs: what a benchmark dataset is made of, and [`build`] to make it.
//!
//! A [`DatasetSpec`] (TOML under `datasets/specs/` or inline in a suite) names a source, the
//! image size, the split sizes and a seed:
//!
//! ```toml
//! name = "ct-phantom"
//! source = "phantom"      # phantom | fashion-mnist | ct-head | mri-colin27
//! kind = "ct"             # phantoms only: ct | mr | xray
//! size = 32
//! n_train = 300
//! n_holdout = 1000
//! n_novel = 200
//! seed = 0
//! ```
//!
//! [`build`] returns three disjoint image sets — `train` (the generator's members),
//! `holdout` (real non-members that calibrate the detectors) and `novel` (further real images
//! used as the non-copied part of synthetic sets) — each with the group (patient / volume /
//! slab) of every image. Splits are made **by group, never by slice**:
//!
//! - `phantom`: every patient has `slices_per_patient` slices (hard negatives of each other);
//!   train, holdout and novel come from disjoint patients.
//! - `fashion-mnist`: the 70,000 images of the IDX files in the cache (train and test files
//!   pooled), each its own group; a seeded random subset is split three ways.
//! - `ct-head`, `mri-colin27`: one real volume each, i.e. **one patient**, so a patient-level
//!   split is impossible. The non-empty axial slices are cut into slabs of `slab` consecutive
//!   slices separated by `gap` discarded slices, and whole slabs go to train, holdout or novel.
//!   Holdout images are therefore other slices of the same head (at least `gap + 1` slices from
//!   any training slice): a within-patient benchmark, which [`Dataset::note`] says.
//!
//! Real sources read the cache written by `cargo xtask datasets fetch NAME`
//! (`<cache>/NAME/...`); a missing cache is [`Error::MissingCache`].

use crate::demo::{render_patients, DemoSpec};
use crate::error::Error;
use crate::phantom::{from_u8, PhantomKind};
use crate::real::{idx, inv3, nifti, resize, Window};
use crate::rng::{stage, stream};
use rand::seq::{index, SliceRandom};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Where a dataset's images come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// Procedural phantoms ([`crate::phantom`]).
    Phantom,
    /// Fashion-MNIST from Debian `dataset-fashion-mnist`.
    FashionMnist,
    /// The `Cranium.inv3` head CT from Debian `invesalius-examples`.
    CtHead,
    /// The Colin27 T1 template `ch2.nii.gz` from Debian `mricron-data`.
    MriColin27,
}

impl Source {
    /// The name used in specs and by `cargo xtask datasets fetch`.
    pub fn name(self) -> &'static str {
        match self {
            Source::Phantom => "phantom",
            Source::FashionMnist => "fashion-mnist",
            Source::CtHead => "ct-head",
            Source::MriColin27 => "mri-colin27",
        }
    }
}

fn three() -> usize {
    3
}
fn four() -> usize {
    4
}
fn two() -> usize {
    2
}

/// A benchmark dataset (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    /// Name used in result tables.
    pub name: String,
    pub source: Source,
    /// Phantom modality (phantoms only; default CT).
    #[serde(default)]
    pub kind: PhantomKind,
    /// Side length of every image.
    pub size: u32,
    pub n_train: usize,
    pub n_holdout: usize,
    pub n_novel: usize,
    /// Phantoms: slices per patient.
    #[serde(default = "three")]
    pub slices_per_patient: usize,
    /// Volumes: slices per slab (the split unit).
    #[serde(default = "four")]
    pub slab: usize,
    /// Volumes: slices discarded between slabs.
    #[serde(default = "two")]
    pub gap: usize,
    #[serde(default)]
    pub seed: u64,
}

/// A built dataset: three disjoint sets of `size × size` images in `[0, 1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub name: String,
    pub size: u32,
    pub train: Vec<Vec<f32>>,
    pub holdout: Vec<Vec<f32>>,
    pub novel: Vec<Vec<f32>>,
    /// Group (patient, image or slab id) of each image, parallel to the sets.
    pub train_groups: Vec<String>,
    pub holdout_groups: Vec<String>,
    pub novel_groups: Vec<String>,
    /// A caveat for the results table (e.g. a within-patient split), if any.
    pub note: Option<String>,
}

/// Builds `spec`'s dataset, reading real data from `cache` (the folder holding one
/// sub-folder per fetched dataset).
pub fn build(spec: &DatasetSpec, cache: &Path) -> Result<Dataset, Error> {
    if spec.size == 0 || spec.n_train == 0 || spec.n_holdout == 0 {
        return Err(Error::InvalidSpec(format!(
            "dataset {}: size, n_train and n_holdout must be positive",
            spec.name
        )));
    }
    let need = |rel: &str| -> Result<std::path::PathBuf, Error> {
        let p = cache.join(spec.source.name()).join(rel);
        if p.is_file() {
            Ok(p)
        } else {
            Err(Error::MissingCache {
                name: spec.source.name().into(),
                path: p,
            })
        }
    };
    match spec.source {
        Source::Phantom => Ok(phantoms(spec)),
        Source::FashionMnist => {
            let a = idx::read_images(&need("train-images-idx3-ubyte.gz")?)?;
            let b = idx::read_images(&need("t10k-images-idx3-ubyte.gz")?)?;
            let total = a.n + b.n;
            let want = spec.n_train + spec.n_holdout + spec.n_novel;
            if want > total {
                return Err(Error::InvalidSpec(format!(
                    "dataset {}: {want} images requested, Fashion-MNIST has {total}",
                    spec.name
                )));
            }
            let pick =
                index::sample(&mut stream(spec.seed, stage::SPLIT, 0), total, want).into_vec();
            let image = |i: usize| {
                let (set, j) = if i < a.n { (&a, i) } else { (&b, i - a.n) };
                let img = set.image(j);
                resize(&img, set.cols, set.rows, spec.size as usize)
            };
            let group = |i: usize| {
                if i < a.n {
                    format!("train#{i}")
                } else {
                    format!("t10k#{}", i - a.n)
                }
            };
            let take = |r: std::ops::Range<usize>| -> (Vec<Vec<f32>>, Vec<String>) {
                pick[r].iter().map(|&i| (image(i), group(i))).unzip()
            };
            let (train, train_groups) = take(0..spec.n_train);
            let (holdout, holdout_groups) = take(spec.n_train..spec.n_train + spec.n_holdout);
            let (novel, novel_groups) = take(spec.n_train + spec.n_holdout..want);
            Ok(Dataset {
                name: spec.name.clone(),
                size: spec.size,
                train,
                holdout,
                novel,
                train_groups,
                holdout_groups,
                novel_groups,
                note: None,
            })
        }
        Source::CtHead => {
            let inv = inv3::read(&need("Cranium.inv3")?)?;
            let (c, w) = inv.window.unwrap_or((40.0, 400.0));
            let slices = inv
                .volume
                .axial_slices(Window::CenterWidth(c, w), spec.size, true);
            slabs(spec, slices)
        }
        Source::MriColin27 => {
            let vol = nifti::read(&need("ch2.nii.gz")?)?;
            let slices = vol.axial_slices(Window::Percentile, spec.size, true);
            slabs(spec, slices)
        }
    }
}

fn phantoms(spec: &DatasetSpec) -> Dataset {
    let spp = spec.slices_per_patient.max(1);
    let demo = DemoSpec {
        kind: spec.kind,
        size: spec.size,
        slices_per_patient: spp,
        seed: spec.seed,
        ..DemoSpec::default()
    };
    let mut first = 0;
    let mut set = |n: usize| {
        let imgs = render_patients(&demo, first, n);
        first += n.div_ceil(spp);
        imgs.into_iter()
            .map(|(p, _, px)| (from_u8(&px), format!("p{p:05}")))
            .unzip::<_, _, Vec<_>, Vec<_>>()
    };
    let (train, train_groups) = set(spec.n_train);
    let (holdout, holdout_groups) = set(spec.n_holdout);
    let (novel, novel_groups) = set(spec.n_novel);
    Dataset {
        name: spec.name.clone(),
        size: spec.size,
        train,
        holdout,
        novel,
        train_groups,
        holdout_groups,
        novel_groups,
        note: None,
    }
}

/// Splits one volume's slices `(z, pixels)` by slab (see the module docs).
fn slabs(spec: &DatasetSpec, slices: Vec<(usize, Vec<f32>)>) -> Result<Dataset, Error> {
    let (slab, gap) = (spec.slab.max(1), spec.gap);
    let mut groups: Vec<Vec<(usize, Vec<f32>)>> = Vec::new();
    for (pos, s) in slices.into_iter().enumerate() {
        let (g, r) = (pos / (slab + gap), pos % (slab + gap));
        if r < slab {
            if groups.len() <= g {
                groups.resize_with(g + 1, Vec::new);
            }
            groups[g].push(s);
        }
    }
    groups.retain(|g| !g.is_empty());
    groups.shuffle(&mut stream(spec.seed, stage::SPLIT, 1));
    let mut it = groups.into_iter();
    let mut take = |n: usize, role: &str| -> Result<(Vec<Vec<f32>>, Vec<String>), Error> {
        let (mut imgs, mut names) = (Vec::new(), Vec::new());
        while imgs.len() < n {
            let g = it.next().ok_or_else(|| {
                Error::InvalidSpec(format!(
                    "dataset {}: not enough slabs of {slab} slices for {n} {role} images \
                     (reduce the split sizes, the slab or the gap)",
                    spec.name
                ))
            })?;
            let first = g[0].0;
            for (_, px) in g {
                imgs.push(px);
                names.push(format!("slab@z{first}"));
            }
        }
        Ok((imgs, names))
    };
    let (train, train_groups) = take(spec.n_train, "train")?;
    let (holdout, holdout_groups) = take(spec.n_holdout, "holdout")?;
    let (novel, novel_groups) = take(spec.n_novel, "novel")?;
    Ok(Dataset {
        name: spec.name.clone(),
        size: spec.size,
        train,
        holdout,
        novel,
        train_groups,
        holdout_groups,
        novel_groups,
        note: Some(format!(
            "{}: one volume (one patient); split by slabs of {slab} slices with {gap} slices \
             dropped between slabs, so holdout/novel images are other slices of the same head",
            spec.name
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(source: Source) -> DatasetSpec {
        DatasetSpec {
            name: "t".into(),
            source,
            kind: PhantomKind::Mr,
            size: 8,
            n_train: 6,
            n_holdout: 4,
            n_novel: 4,
            slices_per_patient: 3,
            slab: 2,
            gap: 1,
            seed: 1,
        }
    }

    #[test]
    fn phantom_splits_are_by_patient_and_deterministic() {
        let s = spec(Source::Phantom);
        let d = build(&s, Path::new("/nonexistent")).unwrap();
        assert_eq!((d.train.len(), d.holdout.len(), d.novel.len()), (6, 4, 4));
        assert!(d.holdout_groups.iter().all(|g| !d.train_groups.contains(g)));
        assert!(d
            .novel_groups
            .iter()
            .all(|g| !d.train_groups.contains(g) && !d.holdout_groups.contains(g)));
        assert_eq!(d, build(&s, Path::new("/nonexistent")).unwrap());
        let toml_text = "name = \"x\"\nsource = \"phantom\"\nkind = \"ct\"\nsize = 16\nn_train = 3\nn_holdout = 3\nn_novel = 0\n";
        let parsed: DatasetSpec = toml::from_str(toml_text).unwrap();
        assert_eq!(parsed.slices_per_patient, 3);
        assert!(toml::from_str::<DatasetSpec>(&format!("{toml_text}bogus = 1\n")).is_err());
    }

    #[test]
    fn real_sources_need_the_cache_and_split_volumes_by_slab() {
        let dir = tempfile::tempdir().unwrap();
        let err = build(&spec(Source::FashionMnist), dir.path()).unwrap_err();
        assert!(matches!(err, Error::MissingCache { .. }), "{err}");
        assert!(err
            .to_string()
            .contains("cargo xtask datasets fetch fashion-mnist"));

        // Fashion-MNIST from tiny hand-built IDX files.
        let fm = dir.path().join("fashion-mnist");
        std::fs::create_dir_all(&fm).unwrap();
        let gz = |raw: Vec<u8>| {
            use std::io::Write;
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&raw).unwrap();
            e.finish().unwrap()
        };
        let px: Vec<u8> = (0..12 * 4 * 4).map(|i| (i * 7 % 256) as u8).collect();
        std::fs::write(
            fm.join("train-images-idx3-ubyte.gz"),
            gz(idx::encode(&[12, 4, 4], &px)),
        )
        .unwrap();
        std::fs::write(
            fm.join("t10k-images-idx3-ubyte.gz"),
            gz(idx::encode(&[2, 4, 4], &px[..32])),
        )
        .unwrap();
        let d = build(
            &DatasetSpec {
                size: 4,
                ..spec(Source::FashionMnist)
            },
            dir.path(),
        )
        .unwrap();
        assert_eq!((d.train.len(), d.holdout.len(), d.novel.len()), (6, 4, 4));
        let mut all: Vec<&String> = d
            .train_groups
            .iter()
            .chain(&d.holdout_groups)
            .chain(&d.novel_groups)
            .collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 14);

        // A 30-slice CT volume: slabs of 2 with a gap of 1 give 10 slabs of 2 images.
        let ct = dir.path().join("ct-head");
        std::fs::create_dir_all(&ct).unwrap();
        let vox: Vec<i16> = (0..30 * 4 * 4)
            .map(|i| (i % 97) as i16 * 20 - 1000)
            .collect();
        std::fs::write(
            ct.join("Cranium.inv3"),
            inv3::encode([30, 4, 4], &vox, (40.0, 400.0)),
        )
        .unwrap();
        let d = build(&spec(Source::CtHead), dir.path()).unwrap();
        assert_eq!((d.train.len(), d.holdout.len(), d.novel.len()), (6, 4, 4));
        assert!(d.note.is_some());
        assert!(d.holdout_groups.iter().all(|g| !d.train_groups.contains(g)));
        // The two slices of a slab share its group.
        let slabs: std::collections::BTreeSet<&String> = d.train_groups.iter().collect();
        assert_eq!(slabs.len(), 3, "{:?}", d.train_groups);
        let too_big = DatasetSpec {
            n_train: 40,
            ..spec(Source::CtHead)
        };
        assert!(matches!(
            build(&too_big, dir.path()),
            Err(Error::InvalidSpec(_))
        ));
    }
}
