//! Ratio test (DESIGN.md metric 2) — `summary.json` key `ratio_rate`.
//!
//! From Yoon et al. (2023, "Diffusion Probabilistic Models Generalize when They Fail to
//! Memorize") and Gu et al. (2023, "On Memorization in Diffusion Models",
//! `sail-sg/DiffMemorize`): a synthetic image `s` is *memorized* when its nearest training image
//! is much closer than the second nearest,
//!
//! ```text
//! ratio(s)     = d1(s) / d2(s)          (d1 ≤ d2: true Euclidean distances to the 1st/2nd NN)
//! memorized(s) ⇔ ratio(s) < 1/3          (strict; RATIO_THRESHOLD)
//! ratio_rate   = #{s : memorized(s)} / #synthetic,   ci95 = Clopper–Pearson 95 %
//! ```
//!
//! Variant and conventions:
//! - Distances are **true** Euclidean distances. Fed squared distances (as faiss returns),
//!   `d1²/d2² < 1/3` is the test `d1/d2 < 1/√3 ≈ 0.577`, a different and much looser one; the
//!   papers' test on squared distances would need the threshold 1/9. Don't pass squared
//!   distances.
//! - `d1 = d2 = 0` (an exact copy of a training image that is itself duplicated in the training
//!   set) gives ratio 0: an exact copy counts as memorized. Without this convention the ratio
//!   would be 0/0 and the most blatant copies would drop out.
//! - The test is scale-free: multiplying all distances by a constant changes nothing, so the
//!   pixel embedder's `‖x−y‖₂ / sqrt(C·H·W)` scaling does not matter here.
//! - `d2` needs at least two training images; the caller must not invent one (an infinite `d2`
//!   would flag everything and is rejected).
//!
//! ```
//! use memscan_metrics::ratio::{ratio, ratio_rate, RATIO_THRESHOLD};
//! assert_eq!(ratio(1.0, 4.0), 0.25);
//! assert_eq!(ratio(0.0, 0.0), 0.0); // exact copy of a duplicated training image
//! // d1/d2 = 0.25, 0.5, 0.0, 1/3 (not < 1/3) -> 2 of 4 memorized.
//! let r = ratio_rate(&[1.0, 2.0, 0.0, 1.0], &[4.0, 4.0, 0.0, 3.0], RATIO_THRESHOLD).unwrap();
//! assert_eq!((r.count, r.n, r.rate), (2, 4, 0.5));
//! ```

use crate::error::{check_distances, check_nonempty, check_same_len, Error, Result};
use crate::stats::{clopper_pearson, fraction};
use serde::{Deserialize, Serialize};

/// The papers' threshold: memorized ⇔ `d1/d2 < 1/3` on true distances.
pub const RATIO_THRESHOLD: f64 = 1.0 / 3.0;

/// Fraction of synthetic images that pass the ratio test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RatioRate {
    /// Flag ⇔ `d1/d2 < threshold`; normally [`RATIO_THRESHOLD`].
    pub threshold: f64,
    /// Synthetic images flagged as memorized.
    pub count: u64,
    /// Synthetic images.
    pub n: u64,
    /// `count / n`.
    pub rate: f64,
    /// Clopper–Pearson 95 % interval for `rate`.
    pub ci95: [f64; 2],
}

/// `d1 / d2`, with `0/0 = 0` (an exact copy of a duplicated training image counts as memorized).
///
/// `d1 ≤ d2` are the true Euclidean distances (never squared) from one synthetic image to its
/// nearest and second-nearest training images. This scalar helper does not validate; NaN in
/// gives NaN out, which is never below a threshold.
pub fn ratio(d1: f64, d2: f64) -> f64 {
    if d2 == 0.0 && d1 == 0.0 {
        0.0
    } else {
        d1 / d2
    }
}

/// Per-image ratio-test flags: `ratio(d1[i], d2[i]) < threshold`.
///
/// # Errors
/// As [`ratio_rate`], except that empty input gives an empty vector.
pub fn ratio_flags(d1: &[f64], d2: &[f64], threshold: f64) -> Result<Vec<bool>> {
    validate(d1, d2, threshold)?;
    Ok(d1
        .iter()
        .zip(d2)
        .map(|(&a, &b)| ratio(a, b) < threshold)
        .collect())
}

/// The ratio-test rate over the synthetic set: flag ⇔ `d1/d2 < threshold`.
///
/// - `d1`, `d2`: per synthetic image, true Euclidean distances (never squared) to its 1st and
///   2nd nearest training images; same length; `d1[i] ≤ d2[i]`.
/// - `threshold`: normally [`RATIO_THRESHOLD`]; in (0, ∞).
///
/// # Errors
/// [`Error::Empty`] if there are no synthetic images; [`Error::LengthMismatch`];
/// [`Error::InvalidDistance`] for a NaN, infinite or negative distance; [`Error::Unordered`] if
/// some `d1[i] > d2[i]`; [`Error::InvalidParameter`] if `threshold` is not finite and positive.
pub fn ratio_rate(d1: &[f64], d2: &[f64], threshold: f64) -> Result<RatioRate> {
    check_nonempty("d1", d1)?;
    let flags = ratio_flags(d1, d2, threshold)?;
    let count = flags.iter().filter(|&&f| f).count() as u64;
    let n = flags.len() as u64;
    Ok(RatioRate {
        threshold,
        count,
        n,
        rate: fraction(count, n),
        ci95: clopper_pearson(count, n, 0.95)?,
    })
}

fn validate(d1: &[f64], d2: &[f64], threshold: f64) -> Result<()> {
    if !(threshold.is_finite() && threshold > 0.0) {
        return Err(Error::InvalidParameter {
            name: "threshold",
            value: threshold,
            expected: "a finite positive ratio such as 1/3",
        });
    }
    check_same_len("d1", d1, "d2", d2)?;
    check_distances("d1", d1)?;
    check_distances("d2", d2)?;
    match d1.iter().zip(d2).position(|(a, b)| a > b) {
        Some(index) => Err(Error::Unordered {
            index,
            d1: d1[index],
            d2: d2[index],
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn threshold_is_one_third() {
        assert_eq!(RATIO_THRESHOLD, 1.0 / 3.0);
        // Exactly 1/3 is not memorized (strict).
        assert!(!ratio_flags(&[1.0], &[3.0], RATIO_THRESHOLD).unwrap()[0]);
        assert!(ratio_flags(&[0.999], &[3.0], RATIO_THRESHOLD).unwrap()[0]);
    }

    #[test]
    fn duplicates_and_exact_copies() {
        // Duplicated training image copied exactly: d1 = d2 = 0.
        assert_eq!(ratio(0.0, 0.0), 0.0);
        // Exact copy of a unique training image.
        assert_eq!(ratio(0.0, 2.0), 0.0);
        // Equidistant between two images: ratio 1.
        assert_eq!(ratio(2.0, 2.0), 1.0);
        let r = ratio_rate(&[0.0, 0.0, 2.0], &[0.0, 2.0, 2.0], RATIO_THRESHOLD).unwrap();
        assert_eq!((r.count, r.n), (2, 3));
    }

    #[test]
    fn hand_example_with_interval() {
        let r = ratio_rate(
            &[1.0, 2.0, 0.0, 1.0],
            &[4.0, 4.0, 0.0, 3.0],
            RATIO_THRESHOLD,
        )
        .unwrap();
        assert_eq!(
            r,
            RatioRate {
                threshold: RATIO_THRESHOLD,
                count: 2,
                n: 4,
                rate: 0.5,
                ci95: clopper_pearson(2, 4, 0.95).unwrap(),
            }
        );
    }

    #[test]
    fn invariant_under_common_scale() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (mut d1, mut d2) = (Vec::new(), Vec::new());
        for _ in 0..1000 {
            let a: f64 = rng.random_range(0.0..1.0);
            let b: f64 = rng.random_range(0.0..1.0);
            d1.push(a.min(b));
            d2.push(a.max(b));
        }
        let base = ratio_flags(&d1, &d2, RATIO_THRESHOLD).unwrap();
        assert!(base.iter().any(|&f| f) && base.iter().any(|&f| !f));
        for c in [1e-6, 0.37, 3.7, 1e4] {
            let s1: Vec<f64> = d1.iter().map(|d| d * c).collect();
            let s2: Vec<f64> = d2.iter().map(|d| d * c).collect();
            let scaled = ratio_flags(&s1, &s2, RATIO_THRESHOLD).unwrap();
            assert_eq!(scaled, base, "scale {c}");
            assert_eq!(
                ratio_rate(&s1, &s2, RATIO_THRESHOLD).unwrap(),
                ratio_rate(&d1, &d2, RATIO_THRESHOLD).unwrap()
            );
        }
    }

    #[test]
    fn squared_distances_give_a_different_answer() {
        // d1/d2 = 0.5: not memorized. Squared, 0.25 < 1/3 would flag it: squaring turns the
        // papers' test into d1/d2 < 1/√3 ≈ 0.577.
        let (d1, d2) = ([0.5, 0.2], [1.0, 1.0]);
        let true_dist = ratio_rate(&d1, &d2, RATIO_THRESHOLD).unwrap();
        let sq1: Vec<f64> = d1.iter().map(|d| d * d).collect();
        let sq2: Vec<f64> = d2.iter().map(|d| d * d).collect();
        let squared = ratio_rate(&sq1, &sq2, RATIO_THRESHOLD).unwrap();
        assert_eq!(true_dist.count, 1);
        assert_eq!(squared.count, 2);
        // The squared test equals the true test at 1/9 (the "1/3 silently becomes 1/9" pitfall),
        // here flagging d1/d2 = 0.2 but not 0.4.
        let d1b = [0.4, 0.2];
        let sq1b: Vec<f64> = d1b.iter().map(|d| d * d).collect();
        assert_eq!(
            ratio_flags(&sq1b, &sq2, 1.0 / 9.0).unwrap(),
            ratio_flags(&d1b, &d2, RATIO_THRESHOLD).unwrap()
        );
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(
            ratio_rate(&[], &[], RATIO_THRESHOLD).unwrap_err(),
            Error::Empty { what: "d1" }
        );
        assert!(ratio_flags(&[], &[], RATIO_THRESHOLD).unwrap().is_empty());
        assert!(matches!(
            ratio_rate(&[1.0], &[1.0, 2.0], RATIO_THRESHOLD),
            Err(Error::LengthMismatch { .. })
        ));
        assert!(matches!(
            ratio_rate(&[f64::NAN], &[1.0], RATIO_THRESHOLD),
            Err(Error::InvalidDistance { what: "d1", .. })
        ));
        assert!(matches!(
            ratio_rate(&[1.0], &[f64::INFINITY], RATIO_THRESHOLD),
            Err(Error::InvalidDistance { what: "d2", .. })
        ));
        assert_eq!(
            ratio_rate(&[0.1, 2.0], &[1.0, 1.0], RATIO_THRESHOLD).unwrap_err(),
            Error::Unordered {
                index: 1,
                d1: 2.0,
                d2: 1.0
            }
        );
        for t in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(ratio_rate(&[1.0], &[2.0], t).is_err());
        }
    }
}
