//! Calibrated copy rate (DESIGN.md metric 1), and the fixed cosine-threshold rate.
//!
//! **Calibrated rate** — `summary.json` key `copy_rate@fpr=α`, one entry per α (0.01, 0.001 and
//! the user's `--fpr`). A synthetic image `s` is a *copy* when it is closer to the training set
//! than all but a fraction α of genuinely new real images are:
//!
//! ```text
//! t_α     = x_(⌊α·n⌋ + 1)      the (⌊α·n⌋+1)-th smallest of the holdout values {d1(h)}, n of them
//! copy(s) ⇔ d1(s) < t_α        (strict)
//! rate    = #{s : copy(s)} / #synthetic,   excess = rate − α,   ci95 = Clopper–Pearson 95 %
//! ```
//!
//! Variant: `t_α` is an *order statistic*, not an interpolated quantile. It is the largest
//! threshold whose empirical false-positive rate on the holdout, under the strict rule, is at
//! most α: `#{h : d1(h) < t_α} ≤ ⌊α·n⌋`. So the calibration never promises a smaller FPR than
//! the holdout supports, and ties among holdout distances only lower the empirical FPR
//! ([`CopyRate::null_rate`] reports the achieved value). When `α·n < 1` the holdout cannot
//! resolve α (300 holdout images cannot resolve α = 0.001): the threshold is then the holdout
//! minimum, which flags nothing the holdout would flag, and [`Threshold::resolvable`] is false
//! so the caller can warn. This is a Neyman–Pearson style calibration against the holdout as the
//! null distribution (memscan's own choice, see DESIGN.md); the interval is Clopper & Pearson
//! (1934).
//!
//! **Fixed-threshold rate** — the user's `--threshold` on top-1 *cosine similarity*, as in
//! Somepalli et al. (CVPR 2023, "Diffusion Art or Digital Forgery?", threshold 0.5) or SSCD
//! (Pizzi et al., CVPR 2022, threshold 0.75): `copy(s) ⇔ cos(s) > min_cos` (strict); a NaN
//! cosine is never a copy. It has no calibrated FPR, so `fpr`, `excess` and `null_rate` are
//! `None`.
//!
//! All distances are true Euclidean distances in the embedding, never squared (DESIGN.md,
//! "Distances and similarities").
//!
//! ```
//! use memscan_metrics::copy_rate::{calibrate, copy_rate};
//! // Holdout → train distances (the null): 4 genuinely new images.
//! let null_d1 = [0.4, 0.1, 0.3, 0.2];
//! // α = 0.25: ⌊0.25·4⌋ + 1 = 2nd smallest = 0.2; only 0.1 < 0.2, i.e. 1/4 of the holdout.
//! let th = calibrate(&null_d1, 0.25).unwrap();
//! assert_eq!((th.value, th.rank, th.resolvable), (0.2, 2, true));
//! // Synthetic → train distances: two are closer than 0.2.
//! let r = copy_rate(&[0.0, 0.15, 0.2, 0.5], &th, &null_d1).unwrap();
//! assert_eq!((r.count, r.n, r.rate), (2, 4, 0.5));
//! assert_eq!(r.excess, Some(0.25));
//! assert_eq!(r.null_rate, Some(0.25));
//! ```

use crate::error::{check_distances, check_nonempty, Error, Result};
use crate::stats::{clopper_pearson, fraction};
use serde::{Deserialize, Serialize};

/// A copy threshold calibrated on the holdout's `d1` values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    /// Target false-positive rate α, in (0, 1).
    pub fpr: f64,
    /// `t_α`: a synthetic image with `d1 < value` is a copy. True Euclidean distance.
    pub value: f64,
    /// Number of holdout values it was calibrated on.
    pub n_null: usize,
    /// 1-based rank of `value` among the sorted holdout values: `⌊α·n_null⌋ + 1`.
    pub rank: usize,
    /// `α·n_null ≥ 1`: the holdout is large enough to resolve α. When false, `value` is the
    /// holdout minimum and the achieved FPR is 0, not α; the caller should warn.
    pub resolvable: bool,
}

/// A copy rate over the synthetic set, with its interval and, when calibrated, its null rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CopyRate {
    /// Target FPR α for a calibrated rate; `None` for a fixed cosine threshold.
    pub fpr: Option<f64>,
    /// The threshold used: `t_α` (a distance) when calibrated, the cosine otherwise.
    pub threshold: f64,
    /// Synthetic images flagged as copies.
    pub count: u64,
    /// Synthetic images.
    pub n: u64,
    /// `count / n`.
    pub rate: f64,
    /// `rate − α` (calibrated only): copies beyond what new images would produce by chance.
    pub excess: Option<f64>,
    /// Clopper–Pearson 95 % interval for `rate`.
    pub ci95: [f64; 2],
    /// Fraction of the holdout with `d1 < threshold`: the achieved FPR (calibrated only).
    pub null_rate: Option<f64>,
}

/// Calibrates `t_α` on the holdout distances: `t_α = x_(⌊α·n⌋+1)`, the largest threshold whose
/// empirical FPR on the holdout under the strict rule `d1 < t` is at most α.
///
/// - `null_d1`: `d1(h)` for every holdout image `h`, true Euclidean distance to its nearest
///   training image (never squared); any order.
/// - `fpr`: α in the open interval (0, 1).
///
/// `α·n` within a relative 10⁻⁹ of an integer counts as that integer, so that α = 0.29 with
/// n = 100 uses ⌊29⌋ rather than floating point's ⌊28.999999999999996⌋.
///
/// # Errors
/// [`Error::InvalidFpr`] unless `0 < fpr < 1`; [`Error::Empty`] if `null_d1` is empty;
/// [`Error::InvalidDistance`] for a NaN, infinite or negative distance.
///
/// # Example
/// ```
/// use memscan_metrics::copy_rate::calibrate;
/// let null: Vec<f64> = (1..=10).map(f64::from).collect();
/// let th = calibrate(&null, 0.1).unwrap(); // ⌊0.1·10⌋ + 1 = 2nd smallest
/// assert_eq!(th.value, 2.0); // #{d < 2} = 1 = 10 % of the holdout
/// assert!(th.resolvable);
/// assert!(!calibrate(&null, 0.01).unwrap().resolvable); // 0.01·10 < 1
/// ```
pub fn calibrate(null_d1: &[f64], fpr: f64) -> Result<Threshold> {
    if !(fpr > 0.0 && fpr < 1.0) {
        return Err(Error::InvalidFpr { fpr });
    }
    check_nonempty("null_d1", null_d1)?;
    check_distances("null_d1", null_d1)?;
    let mut sorted = null_d1.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let allowed = floor_tolerant(fpr * n as f64);
    let rank = allowed.saturating_add(1).min(n);
    Ok(Threshold {
        fpr,
        value: sorted[rank - 1],
        n_null: n,
        rank,
        resolvable: allowed >= 1,
    })
}

/// `⌊x⌋` for `x ≥ 0`, except that a value within a relative 10⁻⁹ of an integer is that integer.
fn floor_tolerant(x: f64) -> usize {
    let r = x.round();
    if (x - r).abs() <= 1e-9 * r.max(1.0) {
        r as usize
    } else {
        x.floor() as usize
    }
}

/// Per-image copy flags for a distance threshold: `d1[i] < threshold` (strict).
///
/// `d1`: true Euclidean distance from each synthetic image to its nearest training image. A NaN
/// distance is never flagged (validate with [`copy_rate`] first to turn it into an error).
///
/// ```
/// use memscan_metrics::copy_rate::copy_flags;
/// assert_eq!(copy_flags(&[0.1, 0.2, 0.3], 0.2), vec![true, false, false]);
/// ```
pub fn copy_flags(d1: &[f64], threshold: f64) -> Vec<bool> {
    d1.iter().map(|&d| d < threshold).collect()
}

/// The calibrated copy rate of the synthetic set at `th` (see the module docs for the formula).
///
/// - `d1`: `d1(s)` for every synthetic image, true Euclidean distance (never squared).
/// - `th`: from [`calibrate`] on `null_d1`.
/// - `null_d1`: the same holdout values `th` was calibrated on; gives `null_rate`, the achieved
///   FPR.
///
/// # Errors
/// [`Error::Empty`] if `d1` is empty; [`Error::InvalidDistance`] for a bad value in `d1` or
/// `null_d1`; [`Error::LengthMismatch`] if `null_d1.len() != th.n_null` (not the holdout `th`
/// was calibrated on); [`Error::InvalidFpr`] / [`Error::InvalidParameter`] for a hand-built
/// `th` with an invalid `fpr` or a NaN `value`.
pub fn copy_rate(d1: &[f64], th: &Threshold, null_d1: &[f64]) -> Result<CopyRate> {
    check_nonempty("d1", d1)?;
    check_distances("d1", d1)?;
    check_distances("null_d1", null_d1)?;
    if null_d1.len() != th.n_null {
        return Err(Error::LengthMismatch {
            left: "null_d1",
            left_len: null_d1.len(),
            right: "threshold.n_null",
            right_len: th.n_null,
        });
    }
    if !(th.fpr > 0.0 && th.fpr < 1.0) {
        return Err(Error::InvalidFpr { fpr: th.fpr });
    }
    if th.value.is_nan() {
        return Err(Error::InvalidParameter {
            name: "threshold.value",
            value: th.value,
            expected: "a distance",
        });
    }
    let count = count_true(&copy_flags(d1, th.value));
    let n = d1.len() as u64;
    let rate = fraction(count, n);
    let null_count = count_true(&copy_flags(null_d1, th.value));
    Ok(CopyRate {
        fpr: Some(th.fpr),
        threshold: th.value,
        count,
        n,
        rate,
        excess: Some(rate - th.fpr),
        ci95: clopper_pearson(count, n, 0.95)?,
        null_rate: Some(fraction(null_count, th.n_null as u64)),
    })
}

/// Per-image flags for a fixed cosine threshold: `cos[i] > min_cos` (strict); NaN is never a
/// copy.
///
/// ```
/// use memscan_metrics::copy_rate::fixed_threshold_flags;
/// let f = fixed_threshold_flags(&[0.9, 0.5, f64::NAN, 0.51], 0.5);
/// assert_eq!(f, vec![true, false, false, true]);
/// ```
pub fn fixed_threshold_flags(cos: &[f64], min_cos: f64) -> Vec<bool> {
    cos.iter().map(|&c| c > min_cos).collect()
}

/// The copy rate at a user-chosen cosine threshold: copy ⇔ `cos > min_cos` (strict), a NaN
/// cosine never being a copy but still counting in `n`.
///
/// - `cos`: top-1 cosine similarity of each synthetic image to the training set
///   (`cos = 1 − d²/2` for L2-normalized embeddings), typically in [−1, 1].
/// - `min_cos`: e.g. 0.5 (Somepalli et al.) or 0.75 (SSCD).
///
/// Returns a [`CopyRate`] with `fpr`, `excess` and `null_rate` set to `None`.
///
/// # Errors
/// [`Error::Empty`] if `cos` is empty; [`Error::InvalidParameter`] if `min_cos` is NaN.
///
/// # Example
/// ```
/// use memscan_metrics::copy_rate::fixed_threshold_rate;
/// let r = fixed_threshold_rate(&[0.95, 0.2, 0.5, f64::NAN], 0.5).unwrap();
/// assert_eq!((r.count, r.n, r.rate), (1, 4, 0.25));
/// assert_eq!((r.fpr, r.excess, r.null_rate), (None, None, None));
/// ```
pub fn fixed_threshold_rate(cos: &[f64], min_cos: f64) -> Result<CopyRate> {
    check_nonempty("cos", cos)?;
    if min_cos.is_nan() {
        return Err(Error::InvalidParameter {
            name: "min_cos",
            value: min_cos,
            expected: "a cosine similarity (not NaN)",
        });
    }
    let count = count_true(&fixed_threshold_flags(cos, min_cos));
    let n = cos.len() as u64;
    Ok(CopyRate {
        fpr: None,
        threshold: min_cos,
        count,
        n,
        rate: fraction(count, n),
        excess: None,
        ci95: clopper_pearson(count, n, 0.95)?,
        null_rate: None,
    })
}

fn count_true(flags: &[bool]) -> u64 {
    flags.iter().filter(|&&f| f).count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn one_to_ten() -> Vec<f64> {
        (1..=10).map(f64::from).collect()
    }

    #[test]
    fn calibrate_order_statistic() {
        let null = one_to_ten();
        // α = 0.1: ⌊1⌋+1 = 2nd smallest = 2; #{d < 2} = 1 = 10 %.
        let th = calibrate(&null, 0.1).unwrap();
        assert_eq!(
            th,
            Threshold {
                fpr: 0.1,
                value: 2.0,
                n_null: 10,
                rank: 2,
                resolvable: true
            }
        );
        // α = 0.25: ⌊2.5⌋+1 = 3rd = 3; #{d < 3} = 2 ≤ 2.5, while t = 4 would give 3 > 2.5.
        assert_eq!(calibrate(&null, 0.25).unwrap().value, 3.0);
        // α = 0.05: ⌊0.5⌋+1 = 1st = 1: flags nothing the holdout would flag; unresolvable.
        let th = calibrate(&null, 0.05).unwrap();
        assert_eq!((th.value, th.rank, th.resolvable), (1.0, 1, false));
        // α close to 1: rank stays within n.
        let th = calibrate(&null, 0.999_999).unwrap();
        assert_eq!((th.value, th.rank), (10.0, 10));
        // Input order does not matter.
        let mut shuffled = null.clone();
        shuffled.reverse();
        assert_eq!(
            calibrate(&shuffled, 0.1).unwrap(),
            calibrate(&null, 0.1).unwrap()
        );
    }

    #[test]
    fn calibrate_is_the_largest_threshold_within_budget() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for trial in 0..200 {
            let n = rng.random_range(1..400);
            // Coarse values so that ties are common.
            let null: Vec<f64> = (0..n)
                .map(|_| f64::from(rng.random_range(0..50u32)) / 10.0)
                .collect();
            let fpr = rng.random_range(0.001..0.5);
            let th = calibrate(&null, fpr).unwrap();
            let below = |t: f64| null.iter().filter(|&&d| d < t).count() as f64;
            assert!(below(th.value) <= fpr * n as f64 + 1e-9, "trial {trial}");
            // Any larger holdout value as threshold would exceed the budget.
            if let Some(next) = null
                .iter()
                .copied()
                .filter(|&d| d > th.value)
                .reduce(f64::min)
            {
                assert!(below(next) > fpr * n as f64, "trial {trial}");
            }
            assert_eq!(th.resolvable, fpr * n as f64 >= 1.0 - 1e-9);
        }
    }

    #[test]
    fn calibrate_floating_point_rank() {
        // 0.29·100 = 28.999999999999996 in floating point; the intended rank is 30.
        let null: Vec<f64> = (0..100).map(f64::from).collect();
        let th = calibrate(&null, 0.29).unwrap();
        assert_eq!((th.rank, th.value), (30, 29.0));
        // 300 holdout images: α = 0.01 resolves (3 allowed), α = 0.001 does not.
        let null: Vec<f64> = (0..300).map(f64::from).collect();
        let th = calibrate(&null, 0.01).unwrap();
        assert_eq!((th.rank, th.resolvable), (4, true));
        let th = calibrate(&null, 0.001).unwrap();
        assert_eq!((th.rank, th.resolvable), (1, false));
    }

    #[test]
    fn calibrate_degenerate_holdouts() {
        // n = 1.
        let th = calibrate(&[0.7], 0.5).unwrap();
        assert_eq!((th.value, th.rank, th.resolvable), (0.7, 1, false));
        // All holdout images identical (e.g. blank): nothing is strictly below.
        let th = calibrate(&[0.3; 20], 0.1).unwrap();
        assert_eq!(th.value, 0.3);
        let r = copy_rate(&[0.3, 0.29], &th, &[0.3; 20]).unwrap();
        assert_eq!((r.count, r.null_rate), (1, Some(0.0)));
        // Holdout duplicates of training images (d = 0): t = 0 flags nothing.
        let th = calibrate(&[0.0, 0.0, 0.0, 1.0], 0.5).unwrap();
        assert_eq!(th.value, 0.0);
        assert_eq!(
            copy_rate(&[0.0], &th, &[0.0, 0.0, 0.0, 1.0]).unwrap().count,
            0
        );
    }

    #[test]
    fn calibrate_rejects_bad_input() {
        for fpr in [0.0, 1.0, -0.1, 1.5, f64::NAN] {
            assert!(matches!(
                calibrate(&[1.0], fpr),
                Err(Error::InvalidFpr { .. })
            ));
        }
        assert_eq!(
            calibrate(&[], 0.1).unwrap_err(),
            Error::Empty { what: "null_d1" }
        );
        assert!(matches!(
            calibrate(&[1.0, f64::NAN], 0.1),
            Err(Error::InvalidDistance { index: 1, .. })
        ));
        assert!(calibrate(&[-0.5], 0.1).is_err());
        assert!(calibrate(&[f64::INFINITY], 0.1).is_err());
    }

    #[test]
    fn copy_rate_hand_example() {
        let null = one_to_ten();
        let th = calibrate(&null, 0.1).unwrap();
        let d1 = [0.5, 1.5, 2.0, 2.5, 9.0];
        let r = copy_rate(&d1, &th, &null).unwrap();
        assert_eq!(r.fpr, Some(0.1));
        assert_eq!(r.threshold, 2.0);
        assert_eq!((r.count, r.n), (2, 5));
        assert_eq!(r.rate, 0.4);
        assert!((r.excess.unwrap() - 0.3).abs() < 1e-15);
        assert_eq!(r.null_rate, Some(0.1));
        assert_eq!(r.ci95, clopper_pearson(2, 5, 0.95).unwrap());
        assert!(r.ci95[0] < 0.4 && 0.4 < r.ci95[1]);
        // Strict: d1 = t is not a copy.
        assert_eq!(
            copy_flags(&d1, th.value),
            vec![true, true, false, false, false]
        );
    }

    #[test]
    fn copy_rate_rejects_bad_input() {
        let null = one_to_ten();
        let th = calibrate(&null, 0.1).unwrap();
        assert_eq!(
            copy_rate(&[], &th, &null).unwrap_err(),
            Error::Empty { what: "d1" }
        );
        assert!(matches!(
            copy_rate(&[0.1, f64::NAN], &th, &null),
            Err(Error::InvalidDistance {
                what: "d1",
                index: 1,
                ..
            })
        ));
        assert!(matches!(
            copy_rate(&[0.1], &th, &null[..9]),
            Err(Error::LengthMismatch { .. })
        ));
        let mut bad = th.clone();
        bad.fpr = 2.0;
        assert!(copy_rate(&[0.1], &bad, &null).is_err());
        let mut bad = th;
        bad.value = f64::NAN;
        assert!(copy_rate(&[0.1], &bad, &null).is_err());
    }

    #[test]
    fn fixed_threshold() {
        let cos = [0.9, 0.75, 0.76, f64::NAN, -0.2];
        let r = fixed_threshold_rate(&cos, 0.75).unwrap();
        assert_eq!((r.count, r.n), (2, 5));
        assert_eq!(r.rate, 0.4);
        assert_eq!(r.threshold, 0.75);
        assert_eq!((r.fpr, r.excess, r.null_rate), (None, None, None));
        // All NaN: nothing is a copy.
        let r = fixed_threshold_rate(&[f64::NAN; 3], 0.5).unwrap();
        assert_eq!((r.count, r.rate, r.ci95[0]), (0, 0.0, 0.0));
        assert!(fixed_threshold_rate(&[], 0.5).is_err());
        assert!(fixed_threshold_rate(&[0.5], f64::NAN).is_err());
    }

    #[test]
    fn rates_are_probabilities() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for _ in 0..100 {
            let n = rng.random_range(1..200);
            let null: Vec<f64> = (0..n).map(|_| rng.random::<f64>()).collect();
            let d1: Vec<f64> = (0..rng.random_range(1..200))
                .map(|_| rng.random::<f64>())
                .collect();
            let th = calibrate(&null, rng.random_range(0.001..0.999)).unwrap();
            let r = copy_rate(&d1, &th, &null).unwrap();
            for v in [r.rate, r.null_rate.unwrap(), r.ci95[0], r.ci95[1]] {
                assert!((0.0..=1.0).contains(&v));
            }
            assert!(r.ci95[0] <= r.rate && r.rate <= r.ci95[1]);
            assert!(r.null_rate.unwrap() <= th.fpr + 1e-12);
        }
    }

    #[test]
    fn serializes_with_stable_keys() {
        let th = calibrate(&one_to_ten(), 0.1).unwrap();
        let r = copy_rate(&[1.0], &th, &one_to_ten()).unwrap();
        let v = serde_json::to_value(&r).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "fpr",
                "threshold",
                "count",
                "n",
                "rate",
                "excess",
                "ci95",
                "null_rate"
            ]
        );
        let back: CopyRate = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
        let th_back: Threshold =
            serde_json::from_str(&serde_json::to_string(&th).unwrap()).unwrap();
        assert_eq!(th_back, th);
    }
}
