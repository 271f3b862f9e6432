//! The KDE generator (Meehan, Chaudhuri, Dasgupta 2020): samples of a Gaussian kernel density
//! estimate of the training set in pixel space.
//!
//! Sample `j` picks a training image `x_i` uniformly at random and adds independent
//! `N(0, σ²)` noise to every pixel: `x = x_i + σ·z`. As `σ → 0` every sample is a copy of a
//! training image; as `σ` grows, samples drift away from every training image (and from the
//! data manifold). Pixel values are in `[0, 1]`; samples are **clamped to `[0, 1]`** because
//! that is the range of the images memscan reads (a float array outside `[0, 1]` would be read
//! as `[−1, 1]` data), so at large `σ` the effective noise is smaller than `σ`. The ground
//! truth ([`GenTruth`]) names the source `i`, the distance to it and the nearest training
//! images, all measured on the clamped sample.
//!
//! Sample `j` draws from its own stream `(seed, j)`, so the output does not depend on the
//! number of rayon threads.

use crate::error::Error;
use crate::generated::{check_train, truth_of, Generated};
use crate::rng::{stage, stream};
use rand::Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Parameters of [`kde()`](fn@kde).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KdeSpec {
    /// Kernel bandwidth in pixel units (`[0, 1]` scale); `0` gives exact copies.
    pub sigma: f64,
    /// Number of samples.
    pub n: usize,
    /// Seed of the sources and the noise.
    pub seed: u64,
}

/// Draws [`KdeSpec::n`] samples from the KDE of `train` (images of equal length, values in
/// `[0, 1]`), with ground truth. Errors ([`Error::InvalidSpec`]) on an empty or ragged
/// training set or a negative / non-finite `sigma`.
pub fn kde(train: &[Vec<f32>], spec: &KdeSpec) -> Result<Generated, Error> {
    check_train(train)?;
    if !(spec.sigma >= 0.0 && spec.sigma.is_finite()) {
        return Err(Error::InvalidSpec(format!(
            "KDE bandwidth must be finite and ≥ 0, got {}",
            spec.sigma
        )));
    }
    let (images, sources): (Vec<Vec<f32>>, Vec<usize>) = (0..spec.n)
        .into_par_iter()
        .map(|j| {
            let mut rng = stream(spec.seed, stage::KDE, j as u64);
            let i = rng.random_range(0..train.len());
            let img = train[i]
                .iter()
                .map(|&v| {
                    let z: f64 = rng.sample(StandardNormal);
                    (f64::from(v) + spec.sigma * z).clamp(0.0, 1.0) as f32
                })
                .collect();
            (img, i)
        })
        .unzip();
    let truth = truth_of(&images, train, Some(&sources));
    Ok(Generated { images, truth })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phantom::{render, PatientParams, PhantomKind};

    fn train() -> Vec<Vec<f32>> {
        (0..20)
            .map(|i| render(&PatientParams::sample(PhantomKind::Ct, i), 0.5, 24, i))
            .collect()
    }

    #[test]
    fn small_sigma_copies_large_sigma_does_not() {
        let train = train();
        let spec = KdeSpec {
            sigma: 1e-3,
            n: 30,
            seed: 4,
        };
        let g = kde(&train, &spec).unwrap();
        assert_eq!(g.images.len(), 30);
        for (img, t) in g.images.iter().zip(&g.truth) {
            let s = t.source.unwrap();
            assert_eq!(t.nearest, s);
            assert!(t.d1 <= 1e-3 * 1.2 && t.is_copy(), "{t:?}");
            assert!(img.iter().all(|v| (0.0..=1.0).contains(v)));
        }
        let far = kde(
            &train,
            &KdeSpec {
                sigma: 0.5,
                ..spec.clone()
            },
        )
        .unwrap();
        assert!(far.truth.iter().all(|t| !t.is_copy() && t.d1 > 0.1));
        // σ = 0: exact copies.
        let exact = kde(&train, &KdeSpec { sigma: 0.0, ..spec }).unwrap();
        for (img, t) in exact.images.iter().zip(&exact.truth) {
            assert_eq!(img, &train[t.source.unwrap()]);
            assert_eq!(t.d1, 0.0);
        }
    }

    #[test]
    fn deterministic_across_threads_and_rejects_bad_specs() {
        let train = train();
        let spec = KdeSpec {
            sigma: 0.05,
            n: 16,
            seed: 1,
        };
        let run = |t: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .unwrap()
                .install(|| kde(&train, &spec).unwrap())
        };
        assert_eq!(run(1), run(3));
        assert!(kde(&[], &spec).is_err());
        assert!(kde(
            &train,
            &KdeSpec {
                sigma: f64::NAN,
                ..spec
            }
        )
        .is_err());
    }
}
