//! Identifiability score — `summary.json` key `identifiability`.
//!
//! From Yoon, Drumright & van der Schaar (IEEE JBHI 2020, "Anonymization Through Data Synthesis
//! Using Generative Adversarial Networks (ADS-GAN)"), as computed by synthcity's
//! `IdentifiabilityScore` (key `score`, the unweighted form: synthcity sets every feature weight
//! to 1). A *training* image is identifiable when some synthetic image is closer to it than its
//! own nearest other training image is:
//!
//! ```text
//! r_j               = min over j' ≠ j of ‖train_j − train_j'‖        (nearest OTHER train image)
//! r̂_j               = min over s of ‖train_j − s‖                    (nearest synthetic image)
//! identifiable(j)   ⇔ r̂_j < r_j                                      (strict, as synthcity)
//! identifiability   = #{j : identifiable(j)} / n_train
//! ```
//!
//! Direction: **higher is worse privacy** (synthcity: "minimize"); 0 means no training image
//! has a synthetic image inside its nearest-neighbour radius. Reference points: a generator
//! that copies every training image scores 1 for unique images; an ideal generator scores
//! around the share expected from independent samples (like AuthPct, not 0).
//!
//! Conventions: true Euclidean distances. A training image duplicated in the training set has
//! `r_j = 0` and is never identifiable (nothing is closer than 0) — so exact duplicates in the
//! training set hide copies of themselves; the copy-rate metrics catch those.
//!
//! ```
//! use memscan_metrics::identifiability::identifiability;
//! // 4 training images: nearest synthetic distance vs nearest other training distance.
//! let i = identifiability(&[0.1, 0.5, 0.0, 0.3], &[0.2, 0.5, 0.0, 1.0]).unwrap();
//! assert_eq!((i.count, i.n_train, i.score), (2, 4, 0.5)); // 0.1 < 0.2 and 0.3 < 1.0
//! ```

use crate::error::{check_distances, check_nonempty, check_same_len, Result};
use crate::stats::fraction;
use serde::{Deserialize, Serialize};

/// Share of identifiable training images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identifiability {
    /// `count / n_train`; higher = worse privacy.
    pub score: f64,
    /// Identifiable training images.
    pub count: u64,
    /// Training images.
    pub n_train: u64,
}

/// The identifiability score.
///
/// - `d_train_to_synthetic[j]`: true Euclidean distance from training image `j` to its nearest
///   synthetic image (`r̂_j`).
/// - `r_train[j]`: from training image `j` to its nearest *other* training image (`r_j`; 0 for
///   a duplicated image).
///
/// # Errors
/// [`crate::Error::Empty`]; [`crate::Error::LengthMismatch`];
/// [`crate::Error::InvalidDistance`].
pub fn identifiability(d_train_to_synthetic: &[f64], r_train: &[f64]) -> Result<Identifiability> {
    check_nonempty("d_train_to_synthetic", d_train_to_synthetic)?;
    check_same_len(
        "d_train_to_synthetic",
        d_train_to_synthetic,
        "r_train",
        r_train,
    )?;
    check_distances("d_train_to_synthetic", d_train_to_synthetic)?;
    check_distances("r_train", r_train)?;
    let count = d_train_to_synthetic
        .iter()
        .zip(r_train)
        .filter(|(s, r)| s < r)
        .count() as u64;
    let n_train = r_train.len() as u64;
    Ok(Identifiability {
        score: fraction(count, n_train),
        count,
        n_train,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn ties_duplicates_and_blank_images() {
        // Tie (0.5 vs 0.5) is not identifiable; a duplicated (r = 0) image copied exactly is
        // not either; blank training image (r = 0.7) with a blank synthetic image (0) is.
        let i = identifiability(&[0.5, 0.0, 0.0, 0.9], &[0.5, 0.0, 0.7, 0.8]).unwrap();
        assert_eq!((i.count, i.n_train), (1, 4));
        assert_eq!(i.score, 0.25);
        // n = 1.
        assert_eq!(identifiability(&[0.0], &[1.0]).unwrap().score, 1.0);
    }

    #[test]
    fn copying_generator_scores_one() {
        let r: Vec<f64> = (1..=50).map(|i| f64::from(i) / 10.0).collect();
        let i = identifiability(&[0.0; 50], &r).unwrap();
        assert_eq!(i.score, 1.0);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(matches!(
            identifiability(&[], &[]),
            Err(Error::Empty { .. })
        ));
        assert!(matches!(
            identifiability(&[1.0], &[1.0, 2.0]),
            Err(Error::LengthMismatch { .. })
        ));
        assert!(matches!(
            identifiability(&[1.0], &[-1.0]),
            Err(Error::InvalidDistance {
                what: "r_train",
                ..
            })
        ));
    }
}
