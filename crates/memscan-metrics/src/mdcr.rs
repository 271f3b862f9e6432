//! Median distance to closest record — `summary.json` key `mdcr`.
//!
//! syntheval's `MedianDistanceToClosestRecord` (Lautrup et al. 2024, "SynthEval: a framework
//! for detailed utility and privacy evaluation of tabular synthetic data"; key `mDCR`): the
//! typical distance from a synthetic record to the real data, relative to the typical spacing
//! of the real records themselves,
//!
//! ```text
//! mDCR = median over s of d1(s)  /  median over j of r_j
//! d1(s) = min over train t of ‖s − t‖          (synthetic → nearest train image)
//! r_j   = min over j' ≠ j of ‖train_j − train_j'‖  (train → nearest OTHER train image)
//! ```
//!
//! Direction: **< 1 is a privacy risk** (synthetic images sit closer to training images than
//! training images sit to each other); ≈ 1 or above is what independent samples give.
//! Medians are numpy's (`np.median`, the mean of the two middle values for an even count).
//!
//! Degenerate cases follow syntheval exactly: both medians 0 gives 1, and a zero denominator
//! with a positive numerator (more than half of the training images are duplicated) gives 0.
//! Both medians are reported so the reader can tell these cases apart.
//!
//! ```
//! use memscan_metrics::mdcr::mdcr;
//! let m = mdcr(&[0.1, 0.2, 0.3], &[0.4, 0.2, 0.6, 0.5]).unwrap();
//! assert_eq!(m.median_synthetic_to_train, 0.2);
//! assert!((m.median_train_to_train - 0.45).abs() < 1e-15); // (0.4 + 0.5) / 2
//! assert!((m.value - 0.2 / 0.45).abs() < 1e-12); // 0.44: closer than real-real spacing
//! ```

use crate::error::{check_distances, check_nonempty, Result};
use crate::stats::percentile;
use serde::{Deserialize, Serialize};

/// The median-DCR ratio and its parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mdcr {
    /// `median(d1) / median(r)` with syntheval's conventions for zeros; < 1 = risk.
    pub value: f64,
    /// Median of the synthetic → nearest-train distances.
    pub median_synthetic_to_train: f64,
    /// Median of the train → nearest-other-train distances.
    pub median_train_to_train: f64,
    /// Synthetic images.
    pub n_synthetic: usize,
    /// Training images.
    pub n_train: usize,
}

/// Median DCR ratio.
///
/// - `d1_synthetic[s]`: true Euclidean distance from synthetic `s` to its nearest training image.
/// - `r_train[j]`: from training image `j` to its nearest *other* training image.
///
/// # Errors
/// [`crate::Error::Empty`] if either is empty; [`crate::Error::InvalidDistance`].
pub fn mdcr(d1_synthetic: &[f64], r_train: &[f64]) -> Result<Mdcr> {
    check_nonempty("d1_synthetic", d1_synthetic)?;
    check_nonempty("r_train", r_train)?;
    check_distances("d1_synthetic", d1_synthetic)?;
    check_distances("r_train", r_train)?;
    let median = |v: &[f64]| {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        percentile(&s, 50.0)
    };
    let (mut_nn, int_nn) = (median(d1_synthetic), median(r_train));
    let value = if int_nn == 0.0 {
        if mut_nn == 0.0 {
            1.0
        } else {
            0.0
        }
    } else {
        mut_nn / int_nn
    };
    Ok(Mdcr {
        value,
        median_synthetic_to_train: mut_nn,
        median_train_to_train: int_nn,
        n_synthetic: d1_synthetic.len(),
        n_train: r_train.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn hand_values() {
        // Odd and even counts, unequal sizes.
        let m = mdcr(&[0.3, 0.1, 0.2], &[1.0, 0.2]).unwrap();
        assert_eq!(m.median_synthetic_to_train, 0.2);
        assert!((m.median_train_to_train - 0.6).abs() < 1e-15);
        assert!((m.value - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!((m.n_synthetic, m.n_train), (3, 2));
        // Exact copies: numerator 0 -> 0.
        assert_eq!(mdcr(&[0.0; 4], &[0.5; 4]).unwrap().value, 0.0);
    }

    #[test]
    fn syntheval_zero_conventions() {
        // Blank/duplicated images everywhere: 0/0 -> 1.
        assert_eq!(mdcr(&[0.0, 0.0], &[0.0, 0.0, 0.0]).unwrap().value, 1.0);
        // Mostly duplicated training set: x/0 -> 0.
        let m = mdcr(&[0.5], &[0.0, 0.0, 1.0]).unwrap();
        assert_eq!((m.value, m.median_train_to_train), (0.0, 0.0));
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(
            mdcr(&[], &[1.0]).unwrap_err(),
            Error::Empty {
                what: "d1_synthetic"
            }
        );
        assert!(mdcr(&[1.0], &[]).is_err());
        assert!(mdcr(&[f64::INFINITY], &[1.0]).is_err());
    }
}
