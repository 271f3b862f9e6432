//! Small statistics shared by the metrics: exact binomial confidence intervals, percentiles and
//! an exact two-sided binomial test.
//!
//! - [`clopper_pearson`]: the exact ("conservative") binomial interval of Clopper & Pearson
//!   (1934, *Biometrika* 26:404–413), from Beta quantiles:
//!   `lower = B⁻¹(a/2; k, n−k+1)`, `upper = B⁻¹(1−a/2; k+1, n−k)` with `a = 1 − confidence`,
//!   `lower = 0` when `k = 0` and `upper = 1` when `k = n`. Every rate in `summary.json`
//!   carries this interval as `ci95`.
//! - [`percentile`]: numpy's default (`method="linear"`, type 7 of Hyndman & Fan 1996) on an
//!   already sorted slice, with numpy's interpolation formula so the values agree to the bit.
//! - [`binomial_two_sided_p`]: the exact two-sided binomial test as `scipy.stats.binomtest`
//!   computes it (sum of the probabilities of all outcomes no more likely than the observed
//!   one), for the DCR test (`closer_to_train_share`, DESIGN.md metric 7).

use crate::error::{Error, Result};
use statrs::distribution::{Beta, Binomial, Continuous, ContinuousCDF, Discrete};

/// Exact (Clopper–Pearson) two-sided confidence interval for a binomial proportion `k / n`.
///
/// - `k`: successes, `n`: trials, `confidence`: for example `0.95`.
/// - Returns `[lower, upper]` with `0 ≤ lower ≤ k/n ≤ upper ≤ 1`; `k = 0` gives `lower = 0`
///   exactly and `k = n` gives `upper = 1` exactly.
/// - `n = 0` (no trials, nothing observed) is not an error: it returns `[0, 1]`, the interval
///   that says nothing is known.
///
/// # Errors
/// [`Error::CountExceedsTotal`] if `k > n`; [`Error::InvalidParameter`] if `confidence` is
/// not in the open interval (0, 1).
///
/// # Example
/// ```
/// use memscan_metrics::stats::clopper_pearson;
/// // No success in 10 trials: the 95 % upper bound solves (1 − p)^10 = 0.025.
/// let [lo, hi] = clopper_pearson(0, 10, 0.95).unwrap();
/// assert_eq!(lo, 0.0);
/// assert!((hi - (1.0 - 0.025f64.powf(0.1))).abs() < 1e-9); // 0.3084971...
/// ```
pub fn clopper_pearson(k: u64, n: u64, confidence: f64) -> Result<[f64; 2]> {
    if k > n {
        return Err(Error::CountExceedsTotal { k, n });
    }
    if !(confidence > 0.0 && confidence < 1.0) {
        return Err(Error::InvalidParameter {
            name: "confidence",
            value: confidence,
            expected: "a value in (0, 1)",
        });
    }
    if n == 0 {
        return Ok([0.0, 1.0]);
    }
    let tail = (1.0 - confidence) / 2.0;
    let lower = if k == 0 {
        0.0
    } else {
        beta_quantile(tail, k as f64, (n - k + 1) as f64)
    };
    let upper = if k == n {
        1.0
    } else {
        beta_quantile(1.0 - tail, (k + 1) as f64, (n - k) as f64)
    };
    Ok([lower, upper])
}

/// Quantile of Beta(a, b) at probability `p`, for `0 < p < 1`.
///
/// statrs's `inverse_cdf` (AS 109) is good to about 10⁻⁸ relative; a few safeguarded Newton
/// steps on the regularized incomplete beta bring it to about 10⁻¹¹ (the accuracy of statrs's
/// incomplete beta itself). The shapes
/// are ≥ 1 here, so `Beta::new` cannot fail, but a failure would give NaN rather than a panic.
fn beta_quantile(p: f64, a: f64, b: f64) -> f64 {
    let Ok(beta) = Beta::new(a, b) else {
        return f64::NAN;
    };
    let mut x = beta.inverse_cdf(p).clamp(0.0, 1.0);
    let mut residual = beta.cdf(x) - p;
    for _ in 0..4 {
        let density = beta.pdf(x);
        if residual == 0.0 || !(density.is_finite() && density > 0.0) {
            break;
        }
        let next = x - residual / density;
        if !(next > 0.0 && next < 1.0) {
            break;
        }
        let next_residual = beta.cdf(next) - p;
        if next_residual.abs() >= residual.abs() {
            break;
        }
        x = next;
        residual = next_residual;
    }
    x
}

/// The `p`-th percentile (`p` in percent, 0 to 100) of an ascending-sorted slice, with linear
/// interpolation between order statistics: numpy's default `np.percentile(x, p)`.
///
/// With `n` values `x₀ ≤ … ≤ x_{n−1}`, the position is `h = (n − 1)·p/100`, `i = ⌊h⌋`,
/// `t = h − i`, and the result is `x_i + (x_{i+1} − x_i)·t` (computed from the upper end when
/// `t ≥ 0.5`, as numpy's `_lerp` does, so results match numpy exactly).
///
/// - `sorted` must be sorted ascending and free of NaN (not checked: this is a hot helper).
/// - Returns NaN if `sorted` is empty or `p` is NaN or outside `[0, 100]`.
///
/// # Example
/// ```
/// use memscan_metrics::stats::percentile;
/// let x = [1.0, 2.0, 3.0, 4.0];
/// assert_eq!(percentile(&x, 50.0), 2.5); // h = 1.5
/// assert_eq!(percentile(&x, 0.0), 1.0);
/// assert_eq!(percentile(&x, 100.0), 4.0);
/// assert_eq!(percentile(&x, 25.0), 1.75); // h = 0.75
/// ```
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    if n == 0 || !(0.0..=100.0).contains(&p) {
        return f64::NAN;
    }
    let q = p / 100.0;
    let h = (n - 1) as f64 * q;
    let lo = h.floor();
    let t = h - lo;
    // `lo` is in [0, n−1] because q is in [0, 1].
    let i = (lo as usize).min(n - 1);
    let j = (i + 1).min(n - 1);
    let (a, b) = (sorted[i], sorted[j]);
    let diff = b - a;
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

/// Exact two-sided binomial test p-value for `k` successes in `n` trials under `H₀: p = p0`,
/// as `scipy.stats.binomtest(k, n, p0).pvalue` (alternative `"two-sided"`).
///
/// `p = Σ P(X = i)` over all `i` with `P(X = i) ≤ P(X = k)·(1 + 10⁻⁷)`, `X ~ Binomial(n, p0)`,
/// capped at 1; it is exactly 1 when `k = n·p0` (scipy's special case). The relative slack
/// `10⁻⁷` is scipy's, so that outcomes as likely as `k` up to rounding are counted. Cost is
/// O(n).
///
/// - `n = 0` returns 1 (nothing observed, nothing rejected).
///
/// # Errors
/// [`Error::CountExceedsTotal`] if `k > n`; [`Error::InvalidParameter`] if `p0` is not in
/// `[0, 1]`.
///
/// # Example
/// ```
/// use memscan_metrics::stats::binomial_two_sided_p;
/// // 3 heads in 10 fair tosses: P(X ≤ 3) + P(X ≥ 7) = 2·176/1024.
/// assert!((binomial_two_sided_p(3, 10, 0.5).unwrap() - 0.34375).abs() < 1e-12);
/// assert_eq!(binomial_two_sided_p(5, 10, 0.5).unwrap(), 1.0);
/// ```
pub fn binomial_two_sided_p(k: u64, n: u64, p0: f64) -> Result<f64> {
    if k > n {
        return Err(Error::CountExceedsTotal { k, n });
    }
    if !(0.0..=1.0).contains(&p0) {
        return Err(Error::InvalidParameter {
            name: "p0",
            value: p0,
            expected: "a probability in [0, 1]",
        });
    }
    if n == 0 || k as f64 == p0 * n as f64 {
        return Ok(1.0);
    }
    let binom = Binomial::new(p0, n).map_err(|_| Error::InvalidParameter {
        name: "p0",
        value: p0,
        expected: "a probability in [0, 1]",
    })?;
    let limit = binom.pmf(k) * (1.0 + 1e-7);
    let total: f64 = (0..=n)
        .map(|i| binom.pmf(i))
        .filter(|&pi| pi <= limit)
        .sum();
    Ok(total.min(1.0))
}

/// `count / n` as `f64`, or 0 when `n = 0`.
pub(crate) fn fraction(count: u64, n: u64) -> f64 {
    if n == 0 {
        0.0
    } else {
        count as f64 / n as f64
    }
}

/// A seeded uniform sample of `max` rows of `x` without replacement, in row order; `None`
/// (use every row) when `max == 0` or `x` has at most `max` rows.
///
/// Used wherever a metric would otherwise cost `O(N · M)` (the DOMIAS KDEs, C_T's
/// within-cell nearest neighbours): the sample is a function of `(x.nrows(), max, seed)` only.
pub fn sample_rows(
    x: ndarray::ArrayView2<'_, f32>,
    max: usize,
    seed: u64,
) -> Option<ndarray::Array2<f32>> {
    sample_indices(x.nrows(), max, seed).map(|idx| x.select(ndarray::Axis(0), &idx))
}

/// The row indices [`sample_rows`] keeps, ascending; `None` when every row is kept.
pub fn sample_indices(n: usize, max: usize, seed: u64) -> Option<Vec<usize>> {
    use rand::SeedableRng;
    if max == 0 || n <= max {
        return None;
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut idx = rand::seq::index::sample(&mut rng, n, max).into_vec();
    idx.sort_unstable();
    Some(idx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn clopper_pearson_known_values() {
        // R: binom.test(0, 10)$conf.int -> 0.0000000 0.3084971
        let [lo, hi] = clopper_pearson(0, 10, 0.95).unwrap();
        assert_eq!(lo, 0.0);
        assert!(close(hi, 0.308_497_1, 1e-7), "{hi}");
        // R: binom.test(5, 10)$conf.int -> 0.187086 0.812914
        let [lo, hi] = clopper_pearson(5, 10, 0.95).unwrap();
        assert!(close(lo, 0.187_086, 1e-6), "{lo}");
        assert!(close(hi, 0.812_914, 1e-6), "{hi}");
        // k = n mirrors k = 0.
        let [lo, hi] = clopper_pearson(10, 10, 0.95).unwrap();
        assert!(close(lo, 1.0 - 0.308_497_1, 1e-7), "{lo}");
        assert_eq!(hi, 1.0);
    }

    #[test]
    fn clopper_pearson_matches_closed_forms_at_the_ends() {
        // k = 0: upper solves (1−p)^n = a/2; k = n: lower solves p^n = a/2.
        for n in [1u64, 2, 7, 300, 10_000, 1_000_000] {
            let [_, hi] = clopper_pearson(0, n, 0.95).unwrap();
            let want = -(0.025f64.ln() / n as f64).exp_m1();
            assert!(close(hi, want, 1e-10 * want), "n={n}: {hi} vs {want}");
            let [lo, _] = clopper_pearson(n, n, 0.95).unwrap();
            assert!(close(lo, 0.025f64.powf(1.0 / n as f64), 1e-10), "n={n}");
        }
        // k = 1 lower bound solves 1 − (1−p)^n = a/2.
        let [lo, _] = clopper_pearson(1, 1000, 0.95).unwrap();
        let want = -(0.975f64.ln() / 1000.0).exp_m1();
        assert!(close(lo, want, 1e-10 * want), "{lo} vs {want}");
    }

    #[test]
    fn clopper_pearson_large_n_against_reference() {
        // Reference by bisection on the exact binomial tail (pure Python, log-space sums):
        // k = 10, n = 100000 -> [4.79548952e-05, 1.83895845e-04]
        let [lo, hi] = clopper_pearson(10, 100_000, 0.95).unwrap();
        assert!(close(lo, 4.795_489_52e-5, 1e-11), "{lo}");
        assert!(close(hi, 1.838_958_45e-4, 1e-11), "{hi}");
    }

    #[test]
    fn clopper_pearson_contains_the_estimate_and_handles_degenerate_input() {
        for n in 1..40u64 {
            for k in 0..=n {
                let [lo, hi] = clopper_pearson(k, n, 0.95).unwrap();
                let p = k as f64 / n as f64;
                assert!(0.0 <= lo && lo <= p && p <= hi && hi <= 1.0, "k={k} n={n}");
            }
        }
        assert_eq!(clopper_pearson(0, 0, 0.95).unwrap(), [0.0, 1.0]);
        assert_eq!(
            clopper_pearson(3, 2, 0.95).unwrap_err(),
            Error::CountExceedsTotal { k: 3, n: 2 }
        );
        for bad in [0.0, 1.0, -0.5, f64::NAN] {
            assert!(clopper_pearson(1, 2, bad).is_err());
        }
        // A wider confidence gives a wider interval.
        let a = clopper_pearson(4, 20, 0.9).unwrap();
        let b = clopper_pearson(4, 20, 0.99).unwrap();
        assert!(b[0] < a[0] && a[1] < b[1]);
    }

    #[test]
    fn percentile_matches_numpy() {
        let x: Vec<f64> = (1..=10).map(f64::from).collect();
        // np.percentile(np.arange(1, 11), [0, 50, 90, 95, 99, 100])
        assert_eq!(percentile(&x, 0.0), 1.0);
        assert_eq!(percentile(&x, 50.0), 5.5);
        assert!(close(percentile(&x, 90.0), 9.1, 1e-12));
        assert!(close(percentile(&x, 95.0), 9.55, 1e-12));
        assert!(close(percentile(&x, 99.0), 9.91, 1e-12));
        assert_eq!(percentile(&x, 100.0), 10.0);
        // np.percentile([0.1, 0.4, 0.5, 0.9, 0.95], 75) = 0.9 ; 60 -> 0.5 + 0.4*0.4 = 0.66
        let y = [0.1, 0.4, 0.5, 0.9, 0.95];
        assert_eq!(percentile(&y, 75.0), 0.9);
        assert!(close(percentile(&y, 60.0), 0.66, 1e-12));
        // One value: every percentile is that value.
        for p in [0.0, 13.0, 50.0, 100.0] {
            assert_eq!(percentile(&[0.42], p), 0.42);
        }
        // Ties.
        assert_eq!(percentile(&[2.0, 2.0, 2.0], 37.0), 2.0);
    }

    #[test]
    fn percentile_invalid_input_is_nan() {
        assert!(percentile(&[], 50.0).is_nan());
        assert!(percentile(&[1.0], -1.0).is_nan());
        assert!(percentile(&[1.0], 100.5).is_nan());
        assert!(percentile(&[1.0], f64::NAN).is_nan());
    }

    #[test]
    fn percentile_is_monotone_in_p() {
        let x = [-3.0, -1.0, 0.0, 0.0, 2.5, 7.0, 7.0, 100.0];
        let mut prev = f64::NEG_INFINITY;
        for i in 0..=1000 {
            let v = percentile(&x, f64::from(i) / 10.0);
            assert!(v >= prev);
            prev = v;
        }
    }

    #[test]
    fn binomial_test_matches_scipy() {
        // scipy.stats.binomtest(k, n, p).pvalue; reference values computed exactly with
        // fractions in Python by the same definition.
        let cases = [
            (3, 10, 0.5, 0.343_75),
            (0, 10, 0.5, 0.001_953_125),
            (10, 10, 0.5, 0.001_953_125),
            (7, 10, 0.3, 0.010_592_078_4),
            (1, 10, 0.3, 0.299_576_678_5),
            (60, 100, 0.5, 0.056_887_933_640_984_4),
            (4, 9, 0.5, 1.0),
        ];
        for (k, n, p, want) in cases {
            let got = binomial_two_sided_p(k, n, p).unwrap();
            assert!(close(got, want, 1e-9), "k={k} n={n} p={p}: {got} vs {want}");
        }
    }

    #[test]
    fn binomial_test_edges() {
        assert_eq!(binomial_two_sided_p(0, 0, 0.5).unwrap(), 1.0);
        assert_eq!(binomial_two_sided_p(0, 5, 0.0).unwrap(), 1.0);
        assert_eq!(binomial_two_sided_p(1, 5, 0.0).unwrap(), 0.0);
        assert_eq!(binomial_two_sided_p(5, 5, 1.0).unwrap(), 1.0);
        assert!(binomial_two_sided_p(6, 5, 0.5).is_err());
        assert!(binomial_two_sided_p(1, 5, 1.5).is_err());
        assert!(binomial_two_sided_p(1, 5, f64::NAN).is_err());
        // Large n stays a probability and is tiny far from the mean.
        let p = binomial_two_sided_p(6_000, 10_000, 0.5).unwrap();
        assert!(p > 0.0 && p < 1e-80, "{p}");
    }

    #[test]
    fn fraction_of_nothing_is_zero() {
        assert_eq!(fraction(0, 0), 0.0);
        assert_eq!(fraction(1, 4), 0.25);
    }
}
