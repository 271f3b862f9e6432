//! Ground truth shared by the memorizing generators ([`crate::kde()`], [`crate::denoiser()`]).
//!
//! Every generated image comes with a [`GenTruth`]: the training image it was derived from
//! (if the generator knows one), and its nearest and second-nearest training images with their
//! distances, measured exactly in pixel space on the image as returned (after clamping) with
//! Gu et al.'s scale `d = ‖x − y‖₂ / sqrt(D)` (`D` = number of pixels), in `f64`.
//!
//! [`GenTruth::is_copy`] is the truth label the benchmark uses for generated images: the
//! nearest-neighbour ratio `d1 / d2 < 1/3` on true distances (Gu et al. 2023, Yoon et al.
//! 2023), i.e. the image is far closer to one training image than to any other. It is
//! computed on raw pixels, independently of whatever embedder a detector uses.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Ratio below which a generated image counts as a copy of its nearest training image.
pub const COPY_RATIO: f64 = 1.0 / 3.0;

/// Where one generated image came from, and how close it is to the training set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenTruth {
    /// The training image the generator started from (KDE: the kernel's centre); `None` when
    /// the generator has no single source (the denoiser).
    pub source: Option<usize>,
    /// Distance to `source` (RMS pixel difference); `None` without a source.
    pub source_distance: Option<f64>,
    /// Index of the nearest training image (ties: lowest index).
    pub nearest: usize,
    /// Distance to it (RMS pixel difference, never squared).
    pub d1: f64,
    /// Distance to the second-nearest training image (`+∞` with one training image).
    pub d2: f64,
}

impl GenTruth {
    /// `d1 / d2` (0 when both are 0, as in the ratio test of `memscan-metrics`).
    pub fn ratio(&self) -> f64 {
        if self.d1 == 0.0 {
            0.0
        } else {
            self.d1 / self.d2
        }
    }

    /// Is the image a copy of its nearest training image: `d1 / d2 < 1/3`?
    pub fn is_copy(&self) -> bool {
        self.ratio() < COPY_RATIO
    }
}

/// Images made by a generator, with their ground truth (same order).
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// `size × size` row-major images, values in `[0, 1]`.
    pub images: Vec<Vec<f32>>,
    /// One row per image.
    pub truth: Vec<GenTruth>,
}

/// RMS distance between two images, in `f64`.
pub fn rms(a: &[f32], b: &[f32]) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    let s: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = f64::from(x) - f64::from(y);
            d * d
        })
        .sum();
    (s / a.len().max(1) as f64).sqrt()
}

/// The nearest and second-nearest training images of `img`: `(nearest, d1, d2)`, by exact
/// search (`O(N·D)` time, `O(1)` extra memory); ties go to the lower index.
pub fn nearest_two(img: &[f32], train: &[Vec<f32>]) -> (usize, f64, f64) {
    let (mut best, mut d1, mut d2) = (0usize, f64::INFINITY, f64::INFINITY);
    for (i, t) in train.iter().enumerate() {
        let d = rms(img, t);
        if d < d1 {
            d2 = d1;
            d1 = d;
            best = i;
        } else if d < d2 {
            d2 = d;
        }
    }
    (best, d1, d2)
}

/// Computes the truth of `images` against `train` (in parallel, results in order).
pub(crate) fn truth_of(
    images: &[Vec<f32>],
    train: &[Vec<f32>],
    sources: Option<&[usize]>,
) -> Vec<GenTruth> {
    images
        .par_iter()
        .enumerate()
        .map(|(i, img)| {
            let (nearest, d1, d2) = nearest_two(img, train);
            let source = sources.map(|s| s[i]);
            GenTruth {
                source,
                source_distance: source.map(|s| rms(img, &train[s])),
                nearest,
                d1,
                d2,
            }
        })
        .collect()
}

/// Checks that `train` is non-empty and every image has `len` pixels.
pub(crate) fn check_train(train: &[Vec<f32>]) -> Result<usize, crate::Error> {
    let first = train
        .first()
        .ok_or_else(|| crate::Error::InvalidSpec("the training set is empty".into()))?;
    let len = first.len();
    if len == 0 {
        return Err(crate::Error::InvalidSpec(
            "training images are empty".into(),
        ));
    }
    if let Some(i) = train.iter().position(|t| t.len() != len) {
        return Err(crate::Error::InvalidSpec(format!(
            "training image {i} has {} pixels, image 0 has {len}",
            train[i].len()
        )));
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_two_and_ratio() {
        let train = vec![vec![0.0f32; 4], vec![1.0; 4], vec![0.5; 4]];
        let (i, d1, d2) = nearest_two(&[0.1; 4], &train);
        assert_eq!(i, 0);
        assert!((d1 - 0.1).abs() < 1e-6 && (d2 - 0.4).abs() < 1e-6);
        let t = GenTruth {
            source: None,
            source_distance: None,
            nearest: i,
            d1,
            d2,
        };
        assert!(t.is_copy());
        // Ties go to the lower index; an exact duplicate has ratio 0.
        let (i, d1, _) = nearest_two(&[1.0; 4], &[vec![1.0; 4], vec![1.0; 4]]);
        assert_eq!((i, d1), (0, 0.0));
    }
}
