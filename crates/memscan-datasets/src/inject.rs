//! Copy injection with ground truth, for the benchmark harness.
//!
//! [`inject`] builds a synthetic set of `novel.len()` images in which a fraction
//! [`InjectSpec::fraction`] are copies of distinct training images passed through one
//! [`CopyTransform`] at one severity, and the rest are novel images; the order is shuffled
//! with the seed. Each output image has an [`InjectRow`] saying where it came from.
//!
//! With `n = novel.len()`, the number of copies is `k = round(fraction · n)`; the `n − k`
//! novel images are a seeded random subset of `novel`. Copy `c`'s transform draws from its
//! own stream `(seed, c)`, so the result does not depend on the thread count.

use crate::error::Error;
use crate::rng::{stage, stream};
use crate::transform::CopyTransform;
use rand::seq::{index, SliceRandom};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// How [`inject`] builds the synthetic set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InjectSpec {
    /// Fraction of the synthetic set that are copies, in `[0, 1]`.
    pub fraction: f64,
    /// Transform applied to every copy.
    pub transform: CopyTransform,
    /// Its severity in `[0, 1]`.
    pub severity: f32,
    /// Seed for the choice of copied images, the transforms and the order.
    pub seed: u64,
}

impl Default for InjectSpec {
    /// 10 % exact copies, seed 0.
    fn default() -> Self {
        InjectSpec {
            fraction: 0.1,
            transform: CopyTransform::Identity,
            severity: 0.0,
            seed: 0,
        }
    }
}

/// Where one synthetic image came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InjectRow {
    /// Index of the copied training image; `None` for novel images.
    pub train: Option<usize>,
    /// Index into `novel` for novel images; `None` for copies.
    pub novel: Option<usize>,
    /// The copy transform; `None` for novel images.
    pub transform: Option<CopyTransform>,
    /// Its severity; `None` for novel images.
    pub severity: Option<f32>,
}

/// A synthetic set with ground truth.
#[derive(Debug, Clone, PartialEq)]
pub struct Injected {
    /// The synthetic images (`size × size`, values in `[0, 1]`).
    pub images: Vec<Vec<f32>>,
    /// One row per image, same order.
    pub rows: Vec<InjectRow>,
}

impl Injected {
    /// Per image: is it a copy? (the positive label of a copy detector).
    pub fn labels(&self) -> Vec<bool> {
        self.rows.iter().map(|r| r.train.is_some()).collect()
    }
}

/// Builds a synthetic set from `train` and `novel` images (each `size × size`, row-major,
/// values in `[0, 1]`) as described in the module docs.
///
/// Errors ([`Error::InvalidSpec`]) if `fraction` or `severity` lie outside `[0, 1]`, an image
/// has the wrong length, or more copies are needed than there are training images (each
/// training image is copied at most once).
pub fn inject(
    train: &[Vec<f32>],
    novel: &[Vec<f32>],
    size: u32,
    spec: &InjectSpec,
) -> Result<Injected, Error> {
    let bad = |m: String| Err(Error::InvalidSpec(m));
    if !(0.0..=1.0).contains(&spec.fraction) {
        return bad(format!("copy fraction {} is outside [0, 1]", spec.fraction));
    }
    if !(0.0..=1.0).contains(&spec.severity) {
        return bad(format!("severity {} is outside [0, 1]", spec.severity));
    }
    let len = size as usize * size as usize;
    for (role, set) in [("train", train), ("novel", novel)] {
        if let Some(i) = set.iter().position(|im| im.len() != len) {
            return bad(format!(
                "{role} image {i} has {} pixels, expected {size}×{size}",
                set[i].len()
            ));
        }
    }
    let n = novel.len();
    let k = (spec.fraction * n as f64).round() as usize;
    if k > train.len() {
        return bad(format!(
            "{k} copies requested but only {} training images",
            train.len()
        ));
    }

    let mut select = stream(spec.seed, stage::SELECT, 1);
    let sources = index::sample(&mut select, train.len(), k).into_vec();
    let kept = index::sample(&mut select, n, n - k).into_vec();
    let mut rows: Vec<InjectRow> = sources
        .iter()
        .map(|&t| InjectRow {
            train: Some(t),
            novel: None,
            transform: Some(spec.transform),
            severity: Some(spec.severity),
        })
        .chain(kept.iter().map(|&j| InjectRow {
            train: None,
            novel: Some(j),
            transform: None,
            severity: None,
        }))
        .collect();
    rows.shuffle(&mut stream(spec.seed, stage::SHUFFLE, 1));

    // Number the copies in output order so each has its own transform stream.
    let mut copy_index = vec![0u64; rows.len()];
    let mut c = 0;
    for (i, r) in rows.iter().enumerate() {
        if r.train.is_some() {
            copy_index[i] = c;
            c += 1;
        }
    }
    let images = rows
        .par_iter()
        .zip(copy_index.par_iter())
        .map(|(r, &c)| match (r.train, r.novel) {
            (Some(t), _) => {
                let mut rng = stream(spec.seed, stage::PERTURB, (2 << 32) + c);
                spec.transform
                    .apply(&train[t], size, spec.severity, &mut rng)
            }
            (None, Some(j)) => novel[j].clone(),
            (None, None) => unreachable!("every row is a copy or a novel image"),
        })
        .collect();
    Ok(Injected { images, rows })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phantom::{render, PatientParams, PhantomKind};

    const N: u32 = 24;

    fn set(first: u64, n: u64) -> Vec<Vec<f32>> {
        (first..first + n)
            .map(|i| render(&PatientParams::sample(PhantomKind::Mr, i), 0.3, N, i))
            .collect()
    }

    #[test]
    fn fraction_labels_and_sources() {
        let (train, novel) = (set(0, 30), set(100, 40));
        let spec = InjectSpec {
            fraction: 0.25,
            transform: CopyTransform::Noise,
            severity: 0.2,
            seed: 9,
        };
        let out = inject(&train, &novel, N, &spec).unwrap();
        assert_eq!(out.images.len(), 40);
        assert_eq!(out.labels().iter().filter(|&&c| c).count(), 10);
        let mut used = std::collections::HashSet::new();
        for (img, row) in out.images.iter().zip(&out.rows) {
            match (row.train, row.novel) {
                (Some(t), None) => {
                    assert!(used.insert(t));
                    assert_eq!(row.transform, Some(CopyTransform::Noise));
                    assert_ne!(img, &train[t]);
                    let d: f32 = img
                        .iter()
                        .zip(&train[t])
                        .map(|(a, b)| (a - b).powi(2))
                        .sum::<f32>();
                    assert!((d / img.len() as f32).sqrt() < 0.05);
                }
                (None, Some(j)) => assert_eq!(img, &novel[j]),
                _ => panic!("bad row {row:?}"),
            }
        }
        // Copies are not all at one end.
        let labels = out.labels();
        assert!(labels[..20].contains(&true) && labels[20..].contains(&true));
    }

    #[test]
    fn deterministic_across_thread_counts() {
        let (train, novel) = (set(0, 20), set(50, 20));
        let spec = InjectSpec {
            fraction: 0.5,
            transform: CopyTransform::Elastic,
            severity: 0.5,
            seed: 1,
        };
        let run = |t: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .unwrap();
            pool.install(|| inject(&train, &novel, N, &spec).unwrap())
        };
        assert_eq!(run(1), run(3));
        let other = inject(
            &train,
            &novel,
            N,
            &InjectSpec {
                seed: 2,
                ..spec.clone()
            },
        )
        .unwrap();
        assert_ne!(other, run(1));
    }

    #[test]
    fn edge_cases_and_errors() {
        let (train, novel) = (set(0, 3), set(10, 4));
        let none = inject(
            &train,
            &novel,
            N,
            &InjectSpec {
                fraction: 0.0,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(none.labels().iter().all(|&c| !c));
        let all = inject(
            &train,
            &novel[..3],
            N,
            &InjectSpec {
                fraction: 1.0,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(all.labels().iter().all(|&c| c));
        for (img, row) in all.images.iter().zip(&all.rows) {
            assert_eq!(img, &train[row.train.unwrap()], "identity copies are exact");
        }
        let empty = inject(&train, &[], N, &InjectSpec::default()).unwrap();
        assert!(empty.images.is_empty());
        let err = |s: InjectSpec, novel: &[Vec<f32>]| {
            matches!(inject(&train, novel, N, &s), Err(Error::InvalidSpec(_)))
        };
        assert!(err(
            InjectSpec {
                fraction: 1.0,
                ..Default::default()
            },
            &novel
        ));
        assert!(err(
            InjectSpec {
                fraction: -0.1,
                ..Default::default()
            },
            &novel
        ));
        assert!(err(
            InjectSpec {
                severity: 1.5,
                ..Default::default()
            },
            &novel
        ));
        assert!(err(InjectSpec::default(), &[vec![0.0; 5]]));
    }
}
