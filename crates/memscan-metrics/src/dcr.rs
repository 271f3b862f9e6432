//! Distance-to-closest-record test (DESIGN.md metric 7) — `summary.json` key `dcr`
//! (`closer_to_train_share`, `p_value`).
//!
//! The holdout-based "DCR share" used to audit synthetic data (Platzer & Reutterer 2021,
//! Frontiers in Big Data; SDMetrics' `DCROverfittingProtection` is the same idea): draw a random
//! subset of the training set of the same size as the holdout (or vice versa), and ask for each
//! synthetic image whether its nearest image among the two is a training image. A generator that learned the distribution
//! and nothing more places its samples as close to unseen real images as to seen ones:
//!
//! ```text
//! closer(s) = 1 if d_train(s) < d_holdout(s),  ½ if d_train(s) = d_holdout(s),  0 otherwise
//! share     = Σ closer(s) / n                           (0.5 ideal; → 1 memorization)
//! p_value   = two-sided exact binomial test of k = ⌊Σ closer(s) + ½⌋ successes in n, p₀ = ½
//! ```
//!
//! where `d_train(s)` / `d_holdout(s)` are the true Euclidean distances from synthetic `s` to its
//! nearest image in the training subset / holdout subset, both subsets of size
//! `n_subset = min(n_train, n_holdout)` ([`equal_subsets`]; the pipeline computes the distances
//! with its index).
//!
//! Variant and conventions:
//! - Ties count ½ (an exact duplicate of an image present in both sets, or a blank image
//!   matching blank images on both sides, favours neither). For the binomial test the
//!   half-integer total is rounded half up (`k = (2·#closer + #ties + 1) div 2`), so one tie
//!   moves `k` by at most ½ — a deliberate, documented approximation; [`Dcr::ties`] reports how
//!   many there were.
//! - The test is [`crate::stats::binomial_two_sided_p`], i.e. `scipy.stats.binomtest(k, n, 0.5)`.
//!
//! ```
//! use memscan_metrics::dcr::dcr;
//! // 4 synthetic images: closer to train, closer to holdout, tie, closer to train.
//! let d = dcr(&[0.1, 0.9, 0.5, 0.2], &[0.3, 0.4, 0.5, 0.6], 100).unwrap();
//! assert_eq!(d.closer_to_train_share, 0.625); // (1 + 0 + ½ + 1) / 4
//! assert_eq!(d.ties, 1);
//! // k = ⌊2.5 + ½⌋ = 3 of 4: p = P(X ≤ 1) + P(X ≥ 3) = 10/16.
//! assert!((d.p_value - 0.625).abs() < 1e-12);
//! ```

use crate::error::{check_distances, check_nonempty, check_same_len, Result};
use crate::mia::sample::balanced_members;
use crate::stats::binomial_two_sided_p;
use serde::{Deserialize, Serialize};

/// Result of the DCR test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dcr {
    /// Share of synthetic images whose nearest image is a training image (ties ½). 0.5 ideal.
    pub closer_to_train_share: f64,
    /// Two-sided exact binomial p-value against 0.5 (count rounded half up).
    pub p_value: f64,
    /// Synthetic images tested.
    pub n: usize,
    /// Size of each of the two equal subsets (train and holdout).
    pub n_subset: usize,
    /// Synthetic images equally close to both subsets (counted ½).
    pub ties: usize,
}

/// `(train_indices, holdout_indices)`: two seeded random subsets of equal size
/// `min(n_train, n_holdout)`, each sorted ascending; the smaller set is taken whole.
///
/// The same sampler as [`balanced_members`] (one `ChaCha8Rng` from `seed`); pass a seed derived
/// from the audit seed and a stage constant different from the MIA sample's.
///
/// ```
/// use memscan_metrics::dcr::equal_subsets;
/// let (train, holdout) = equal_subsets(1000, 300, 7);
/// assert_eq!((train.len(), holdout.len()), (300, 300));
/// assert_eq!(holdout, (0..300).collect::<Vec<_>>());
/// ```
pub fn equal_subsets(n_train: usize, n_holdout: usize, seed: u64) -> (Vec<usize>, Vec<usize>) {
    balanced_members(n_train, n_holdout, seed)
}

/// The DCR test.
///
/// - `d_train[s]`, `d_holdout[s]`: true Euclidean distances (never squared) from synthetic `s`
///   to its nearest image in the training subset and in the holdout subset.
/// - `n_subset`: the common size of the two subsets, recorded in the result.
///
/// # Errors
/// [`crate::Error::Empty`] if there is no synthetic image; [`crate::Error::LengthMismatch`];
/// [`crate::Error::InvalidDistance`].
pub fn dcr(d_train: &[f64], d_holdout: &[f64], n_subset: usize) -> Result<Dcr> {
    check_nonempty("d_train", d_train)?;
    check_same_len("d_train", d_train, "d_holdout", d_holdout)?;
    check_distances("d_train", d_train)?;
    check_distances("d_holdout", d_holdout)?;
    let closer = d_train.iter().zip(d_holdout).filter(|(t, h)| t < h).count();
    let ties = d_train
        .iter()
        .zip(d_holdout)
        .filter(|(t, h)| t == h)
        .count();
    let n = d_train.len();
    let twice = 2 * closer + ties;
    let k = (twice as u64).div_ceil(2); // ⌊Σ closer + ½⌋
    Ok(Dcr {
        closer_to_train_share: twice as f64 / (2.0 * n as f64),
        p_value: binomial_two_sided_p(k, n as u64, 0.5)?,
        n,
        n_subset,
        ties,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn hand_values() {
        // All closer to train, n = 10: p = 2/1024.
        let d = dcr(&[0.0; 10], &[1.0; 10], 50).unwrap();
        assert_eq!(d.closer_to_train_share, 1.0);
        assert!((d.p_value - 0.001_953_125).abs() < 1e-15);
        assert_eq!((d.n, d.n_subset, d.ties), (10, 50, 0));
        // Balanced: 5 of 10 -> p = 1.
        let t: Vec<f64> = (0..10).map(|i| if i < 5 { 0.1 } else { 0.9 }).collect();
        let d = dcr(&t, &[0.5; 10], 50).unwrap();
        assert_eq!((d.closer_to_train_share, d.p_value), (0.5, 1.0));
        // 3 closer of 10, scipy.stats.binomtest(3, 10).pvalue = 0.34375.
        let t: Vec<f64> = (0..10).map(|i| if i < 3 { 0.1 } else { 0.9 }).collect();
        assert!((dcr(&t, &[0.5; 10], 5).unwrap().p_value - 0.343_75).abs() < 1e-12);
    }

    #[test]
    fn ties_and_blank_images() {
        // Blank synthetic images matching blank images in both sets: all ties.
        let d = dcr(&[0.0; 6], &[0.0; 6], 3).unwrap();
        assert_eq!((d.closer_to_train_share, d.ties, d.p_value), (0.5, 6, 1.0));
        // 1 closer + 1 tie of 2: share 0.75, k = ⌊1.5 + ½⌋ = 2 -> p = 2·(1/4) = 0.5.
        let d = dcr(&[0.1, 0.5], &[0.2, 0.5], 2).unwrap();
        assert_eq!((d.closer_to_train_share, d.p_value), (0.75, 0.5));
        // One synthetic image, tied: k = ⌊0.5 + 0.5⌋ = 1 of 1 -> p = 1.
        assert_eq!(dcr(&[0.3], &[0.3], 1).unwrap().p_value, 1.0);
    }

    #[test]
    fn subsets_are_equal_and_seeded() {
        let (t, h) = equal_subsets(10, 40, 3);
        assert_eq!((t.len(), h.len()), (10, 10));
        assert_eq!(t, (0..10).collect::<Vec<_>>());
        assert!(h.iter().all(|&i| i < 40) && h.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(equal_subsets(10, 40, 3), (t, h));
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(
            dcr(&[], &[], 0).unwrap_err(),
            Error::Empty { what: "d_train" }
        );
        assert!(matches!(
            dcr(&[1.0], &[1.0, 2.0], 1),
            Err(Error::LengthMismatch { .. })
        ));
        assert!(matches!(
            dcr(&[1.0], &[f64::NAN], 1),
            Err(Error::InvalidDistance {
                what: "d_holdout",
                ..
            })
        ));
    }
}
