//! Authenticity percentage (DESIGN.md metric 5) — `summary.json` key `authpct`
//! (`synthetic`, `holdout`, `difference`).
//!
//! From Alaa, van Breugel, Saveliev & van der Schaar (ICML 2022, "How Faithful is your
//! Synthetic Data? Sample-level Metrics for Evaluating and Auditing Generative Models"), in the
//! *corrected* form computed by dgm-eval's `authpct.py` (Stein et al., NeurIPS 2023, "Exposing
//! flaws of generative model evaluation metrics"): a synthetic image is *authentic* when it is
//! farther from its nearest training image than that training image is from its own nearest
//! other training image,
//!
//! ```text
//! r_j          = min over j' ≠ j of ‖train_j − train_j'‖     (train j's nearest OTHER train image)
//! j*(s)        = NN_train(s),   d1(s) = ‖s − train_{j*}‖
//! authentic(s) ⇔ r_{j*(s)} < d1(s)                            (strict: ties are not authentic)
//! AuthPct      = 100 · #{s : authentic(s)} / #synthetic
//! ```
//!
//! Variant and conventions:
//! - Distances are true Euclidean distances (never squared); the comparison is scale-free.
//! - A training image duplicated in the training set has `r_j = 0`, so a synthetic image whose
//!   nearest training image it is counts as authentic unless it is an exact copy (`d1 = 0`).
//! - An ideal generator is *not* 100 % authentic: a fresh sample from the data distribution
//!   often lands closer to a training point than that point's own neighbour. The ideal value
//!   depends on the dimension and the sample size: about 71–73 % for 16-d Gaussian data with
//!   1000 training points (the "~71 %" usually quoted), only ≈ 38 % in 2-d (for a locally
//!   uniform sample, `1 − 1/(4/3 + √3/(2π)) = 37.85 %`), rising towards 90 % in 512-d. So
//!   [`AuthPct`] also reports the value for the holdout treated as synthetic, and
//!   `difference = synthetic − holdout` (negative = less authentic than genuinely new images, a
//!   sign of copying); only the difference is comparable across datasets and embeddings.
//!
//! ```
//! use memscan_metrics::authpct::{authpct, authpct_report};
//! // 3 training images with nearest-other distances r = 0.5, 0.5, 2.0.
//! let r = [0.5, 0.5, 2.0];
//! // 4 synthetic images: nearest train image and distance.
//! let nn = [0, 1, 2, 2];
//! let d1 = [0.6, 0.5, 1.0, 3.0]; // 0.5 < 0.6 yes; 0.5 < 0.5 no (tie); 2 < 1 no; 2 < 3 yes
//! assert_eq!(authpct(&r, &nn, &d1).unwrap(), 50.0);
//! // Holdout images as synthetic: 3 of 4 authentic.
//! let a = authpct_report(&r, (&nn, &d1), Some((&[0, 1, 2, 2], &[0.7, 0.9, 2.5, 0.1]))).unwrap();
//! assert_eq!((a.synthetic, a.holdout, a.difference), (50.0, Some(75.0), Some(-25.0)));
//! ```

use crate::error::{check_distances, check_nonempty, check_same_len, Error, Result};
use serde::{Deserialize, Serialize};

/// AuthPct of the synthetic set and, for reference, of the holdout set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthPct {
    /// AuthPct of the synthetic images, in percent.
    pub synthetic: f64,
    /// AuthPct of the holdout images treated as synthetic, in percent (the ideal generator's
    /// value); `None` without a holdout.
    pub holdout: Option<f64>,
    /// `synthetic − holdout`, in percentage points; `None` without a holdout.
    pub difference: Option<f64>,
}

impl AuthPct {
    /// Assembles the result from the two percentages, computing the difference.
    pub fn new(synthetic: f64, holdout: Option<f64>) -> AuthPct {
        AuthPct {
            synthetic,
            holdout,
            difference: holdout.map(|h| synthetic - h),
        }
    }
}

/// Per-image authenticity flags: `r_train[nn_train[s]] < d1[s]`.
///
/// - `r_train[j]`: true Euclidean distance from training image `j` to its nearest *other*
///   training image (0 for a duplicated image); needs at least two training images.
/// - `nn_train[s]`, `d1[s]`: index (`< r_train.len()`) of and distance to the nearest training
///   image of query image `s`.
///
/// # Errors
/// [`Error::Empty`] if `r_train` is empty; [`Error::LengthMismatch`] between `nn_train` and
/// `d1`; [`Error::InvalidDistance`]; [`Error::IndexOutOfRange`].
pub fn authentic_flags(r_train: &[f64], nn_train: &[usize], d1: &[f64]) -> Result<Vec<bool>> {
    check_nonempty("r_train", r_train)?;
    check_same_len("nn_train", nn_train, "d1", d1)?;
    check_distances("r_train", r_train)?;
    check_distances("d1", d1)?;
    if let Some(index) = nn_train.iter().position(|&j| j >= r_train.len()) {
        return Err(Error::IndexOutOfRange {
            what: "nn_train",
            index,
            value: nn_train[index],
            bound: r_train.len(),
        });
    }
    Ok(nn_train
        .iter()
        .zip(d1)
        .map(|(&j, &d)| r_train[j] < d)
        .collect())
}

/// AuthPct in percent: `100 · mean(authentic_flags(..))`.
///
/// # Errors
/// As [`authentic_flags`], and [`Error::Empty`] if there is no query image.
pub fn authpct(r_train: &[f64], nn_train: &[usize], d1: &[f64]) -> Result<f64> {
    check_nonempty("d1", d1)?;
    let flags = authentic_flags(r_train, nn_train, d1)?;
    let count = flags.iter().filter(|&&a| a).count();
    Ok(100.0 * count as f64 / flags.len() as f64)
}

/// [`AuthPct`] for the synthetic set `(nn_train, d1)` and, when given, the holdout set
/// `(nn_train, d1)` treated as synthetic, against the same `r_train`.
///
/// # Errors
/// As [`authpct`] for either set.
pub fn authpct_report(
    r_train: &[f64],
    synthetic: (&[usize], &[f64]),
    holdout: Option<(&[usize], &[f64])>,
) -> Result<AuthPct> {
    let s = authpct(r_train, synthetic.0, synthetic.1)?;
    let h = holdout
        .map(|(nn, d1)| authpct(r_train, nn, d1))
        .transpose()?;
    Ok(AuthPct::new(s, h))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn ties_duplicates_and_blank_images() {
        // Train: 0 and 1 are duplicates (r = 0); 2 is blank with r = 1.
        let r = [0.0, 0.0, 1.0];
        // Exact copy of a duplicated image: 0 < 0 is false -> not authentic.
        // Near a duplicated image: 0 < 0.01 -> authentic.
        // Blank synthetic on the blank training image: d1 = 0 -> not authentic.
        // Tie with r: not authentic.
        let flags = authentic_flags(&r, &[0, 1, 2, 2], &[0.0, 0.01, 0.0, 1.0]).unwrap();
        assert_eq!(flags, vec![false, true, false, false]);
        assert_eq!(
            authpct(&r, &[0, 1, 2, 2], &[0.0, 0.01, 0.0, 1.0]).unwrap(),
            25.0
        );
        // One synthetic image (n = 1).
        assert_eq!(authpct(&r, &[2], &[1.5]).unwrap(), 100.0);
    }

    #[test]
    fn report_with_and_without_holdout() {
        let r = [1.0, 2.0];
        let a = authpct_report(&r, (&[0, 1, 1], &[2.0, 1.0, 3.0]), None).unwrap();
        assert!((a.synthetic - 200.0 / 3.0).abs() < 1e-12);
        assert_eq!((a.holdout, a.difference), (None, None));
        // Holdout of a different size than the synthetic set.
        let a = authpct_report(&r, (&[0], &[0.5]), Some((&[0, 1], &[1.5, 2.5]))).unwrap();
        assert_eq!(a, AuthPct::new(0.0, Some(100.0)));
        assert_eq!(a.difference, Some(-100.0));
        let keys: Vec<String> = serde_json::to_value(&a)
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys, ["synthetic", "holdout", "difference"]);
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(
            authpct(&[], &[0], &[1.0]).unwrap_err(),
            Error::Empty { what: "r_train" }
        );
        assert_eq!(
            authpct(&[1.0], &[], &[]).unwrap_err(),
            Error::Empty { what: "d1" }
        );
        assert!(matches!(
            authpct(&[1.0], &[0, 0], &[1.0]),
            Err(Error::LengthMismatch { .. })
        ));
        assert!(matches!(
            authpct(&[1.0, 1.0], &[0, 2], &[1.0, 1.0]),
            Err(Error::IndexOutOfRange { index: 1, .. })
        ));
        assert!(matches!(
            authpct(&[f64::NAN], &[0], &[1.0]),
            Err(Error::InvalidDistance {
                what: "r_train",
                ..
            })
        ));
        assert!(authpct_report(&[1.0], (&[0], &[1.0]), Some((&[0], &[-1.0]))).is_err());
    }

    /// `n` standard normal points in `d` dimensions.
    fn gaussian(rng: &mut ChaCha8Rng, n: usize, d: usize) -> Vec<Vec<f64>> {
        (0..n)
            .map(|_| {
                (0..d)
                    .map(|_| {
                        let u1: f64 = 1.0 - rng.random::<f64>();
                        let u2: f64 = rng.random();
                        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
                    })
                    .collect()
            })
            .collect()
    }

    fn dist(a: &[f64], b: &[f64]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f64>()
            .sqrt()
    }

    /// AuthPct of a fresh sample (holdout as synthetic) against `n_train` training points in
    /// `d` dimensions, nearest neighbours by brute force, plus `r_train`.
    fn ideal(d: usize, n_train: usize, n_holdout: usize, seed: u64) -> (f64, Vec<f64>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let train = gaussian(&mut rng, n_train, d);
        let holdout = gaussian(&mut rng, n_holdout, d);
        let r: Vec<f64> = (0..n_train)
            .map(|j| {
                (0..n_train)
                    .filter(|&i| i != j)
                    .map(|i| dist(&train[i], &train[j]))
                    .fold(f64::INFINITY, f64::min)
            })
            .collect();
        let (mut nn, mut d1) = (Vec::new(), Vec::new());
        for h in &holdout {
            let (j, dj) = (0..n_train)
                .map(|j| (j, dist(h, &train[j])))
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .unwrap();
            nn.push(j);
            d1.push(dj);
        }
        (authpct(&r, &nn, &d1).unwrap(), r)
    }

    #[test]
    fn ideal_generator_on_gaussian_data_is_about_71_percent() {
        // 16-d Gaussian, 1000 train / 500 holdout: ≈ 73 % (dgm-eval's "~71 %" regime).
        let (a, _) = ideal(16, 1000, 500, 71);
        assert!((60.0..=80.0).contains(&a), "{a}");
    }

    #[test]
    fn ideal_value_depends_on_dimension() {
        // In 2-d the ideal value is far lower. For a locally uniform (Poisson) sample:
        // authentic ⇔ j*'s nearest other point lies in B(j*, d1) \ B(h, d1), area
        // (π/3 + √3/2)·d1², so P = 1 − 1/(1 + (1/3 + √3/(2π))) = 0.3785.
        let (a, r) = ideal(2, 1500, 1500, 71);
        let theory =
            100.0 * (1.0 - 1.0 / (1.0 + 1.0 / 3.0 + 3f64.sqrt() / (2.0 * std::f64::consts::PI)));
        assert!((theory - 37.85).abs() < 0.01);
        assert!((a - theory).abs() < 5.0, "{a} vs {theory}");
        // A copying generator (training images plus tiny noise) is far less authentic.
        let copies: Vec<f64> = (0..500).map(|i| 1e-9 * f64::from(i % 7)).collect();
        let nn: Vec<usize> = (0..500).collect();
        let copied = authpct(&r, &nn, &copies).unwrap();
        assert_eq!(copied, 0.0);
        assert!(AuthPct::new(copied, Some(a)).difference.unwrap() < -30.0);
    }
}
