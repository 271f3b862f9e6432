//! Membership-inference attack scores (DESIGN.md metric 8), each "higher = more likely a
//! member", to be fed to [`super::evaluate`] (or [`super::evaluate_with_ci`]). Reported under
//! `mia.<name>` with the names in [`ATTACKS`].
//!
//! - [`distance`] — GAN-Leaks full black-box attack (Chen, Yu, Zhang & Fritz, CCS 2020,
//!   "GAN-Leaks: A Taxonomy of Membership Inference Attacks against Generative Models"):
//!   `score(x) = −d1(x, synthetic)`, the negated true Euclidean distance from a query image `x`
//!   (a training member or a holdout non-member) to its nearest synthetic image. A generator
//!   that memorizes `x` puts a synthetic image next to it. Reported as `mia.distance`.
//! - [`distance_calibrated`] — GAN-Leaks' calibrated attack, with a real *reference* set in
//!   place of a reference generator (as DOMIAS's `GAN_leaks_cal` baseline):
//!   `score(x) = −(d1(x, synthetic) − d1(x, reference))`. Subtracting how close `x` is to other
//!   real images removes the "typical images are close to everything" effect. `mia.distance_calibrated`.
//! - [`monte_carlo`] — Hilprecht, Härterich & Bernau (PoPETs 2019, "Monte Carlo and
//!   Reconstruction Membership Inference Attacks against Generative Models"), with the median
//!   heuristic for ε (their Eq. 4, as in DOMIAS's `MC` baseline):
//!   `ε = median over queries of d1(x, synthetic)`, `score(x) = #{s : ‖x − s‖ ≤ ε} / n_synthetic`.
//!   `mia.monte_carlo`.
//! - [`density_ratio`] — DOMIAS (van Breugel, Sun, Qian & van der Schaar, AISTATS 2023,
//!   "Membership Inference Attacks against Synthetic Data through Overfitting Detection"):
//!   `score(x) = log p_synthetic(x) − log p_reference(x)`, both densities Gaussian KDEs in a
//!   low-dimensional PCA space. `mia.density_ratio`.
//!
//! ```
//! use memscan_metrics::mia::{attacks, evaluate};
//! // Members (train) lie closer to the synthetic set than non-members (holdout).
//! let d1 = [0.1, 0.2, 0.3, 0.4];
//! let scores = attacks::distance(&d1);
//! assert_eq!(scores, [-0.1, -0.2, -0.3, -0.4]);
//! let r = evaluate("distance", &scores, &[true, false, true, false]).unwrap();
//! assert_eq!(r.auc, 0.75); // (0.1 vs 0.2, 0.1 vs 0.4, 0.3 vs 0.4) beat, 0.3 vs 0.2 loses
//! // Calibrated: the non-member at 0.2 is also 0.2 from the reference set, so it scores 0.
//! let cal = attacks::distance_calibrated(&d1, &[0.5, 0.2, 0.5, 0.4]).unwrap();
//! assert_eq!(evaluate("distance_calibrated", &cal, &[true, false, true, false]).unwrap().auc, 1.0);
//! ```

use crate::error::{check_distances, check_nonempty, check_same_len, Error, Result};
use crate::kde::GaussianKde;
use crate::linalg::{check_finite, check_width, Pca};
use crate::stats::percentile;
use ndarray::ArrayView2;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// The attack names, as `summary.json` keys under `mia`.
pub const ATTACKS: [&str; 4] = [
    "distance",
    "distance_calibrated",
    "monte_carlo",
    "density_ratio",
];

/// GAN-Leaks full black-box score: `−d1` for each query image.
///
/// `d1_to_synthetic[i]`: true Euclidean distance (never squared) from query image `i` to its
/// nearest synthetic image. A NaN passes through and is rejected by [`super::evaluate`].
pub fn distance(d1_to_synthetic: &[f64]) -> Vec<f64> {
    d1_to_synthetic.iter().map(|d| -d).collect()
}

/// GAN-Leaks calibrated score: `−(d1_synthetic[i] − d1_reference[i])`.
///
/// - `d1_synthetic[i]`: true Euclidean distance from query `i` to its nearest synthetic image.
/// - `d1_reference[i]`: from query `i` to its nearest image of the reference set (a real set
///   disjoint from train and from the evaluated holdout images).
///
/// # Errors
/// [`Error::LengthMismatch`]; [`Error::InvalidDistance`].
pub fn distance_calibrated(d1_synthetic: &[f64], d1_reference: &[f64]) -> Result<Vec<f64>> {
    check_same_len("d1_synthetic", d1_synthetic, "d1_reference", d1_reference)?;
    check_distances("d1_synthetic", d1_synthetic)?;
    check_distances("d1_reference", d1_reference)?;
    Ok(d1_synthetic
        .iter()
        .zip(d1_reference)
        .map(|(s, r)| -(s - r))
        .collect())
}

/// Monte Carlo attack scores and what they were computed with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonteCarlo {
    /// Per query: fraction of the synthetic set within `epsilon` (`≤`).
    pub scores: Vec<f64>,
    /// `ε`: median over the queries of their nearest-synthetic distance.
    pub epsilon: f64,
    /// Nearest synthetic neighbours supplied per query (`K`).
    pub k: usize,
    /// Size of the synthetic set (the denominator).
    pub n_synthetic: usize,
    /// Queries whose `K` neighbours were all within `ε` while `K < n_synthetic`: their count
    /// is a lower bound (the score saturates at `K / n_synthetic`). 0 means exact scores.
    pub saturated: usize,
}

/// Hilprecht et al.'s Monte Carlo attack with the median heuristic, from each query's `K`
/// nearest synthetic distances.
///
/// ```text
/// ε        = median over queries x of d1(x, synthetic)        (numpy median)
/// score(x) = #{s : ‖x − s‖ ≤ ε} / n_synthetic                  (closed ball)
/// ```
///
/// The exact count needs a range query over the whole synthetic set; the pipeline supplies the
/// `K` nearest synthetic distances instead (its k-NN index, e.g. `K = 64`), so a count can reach
/// at most `K`. A query whose `K` neighbours are all within `ε` (with `K < n_synthetic`) is
/// *saturated*: its score is a lower bound. [`MonteCarlo::saturated`] counts them; raise `K`
/// when it is not 0. With `K = n_synthetic` the scores are exact. Ties with `ε` count as
/// inside (DOMIAS's baseline uses `< ε`; with ε a distance of the data this differs only for
/// points at exactly ε).
///
/// - `knn_distances`: row-major `n_queries × k`, true Euclidean distances (any order within a
///   row; the smallest is taken as `d1`), as `memscan-index`'s `Neighbours::distances`.
/// - `k ≥ 1`; `n_synthetic ≥ k`.
///
/// # Errors
/// [`Error::Empty`]; [`Error::InvalidParameter`] for `k = 0`, `k > n_synthetic` or a length
/// that is not a multiple of `k`; [`Error::InvalidDistance`].
///
/// # Example
/// ```
/// use memscan_metrics::mia::attacks::monte_carlo;
/// // 3 queries, K = 2 nearest of 4 synthetic images.
/// let mc = monte_carlo(&[0.1, 0.3, 0.2, 0.2, 0.5, 0.9], 2, 4).unwrap();
/// assert_eq!(mc.epsilon, 0.2); // median of d1 = 0.1, 0.2, 0.5
/// assert_eq!(mc.scores, [0.25, 0.5, 0.0]);
/// assert_eq!(mc.saturated, 1); // query 1 has both neighbours within ε: count ≥ 2
/// ```
pub fn monte_carlo(knn_distances: &[f64], k: usize, n_synthetic: usize) -> Result<MonteCarlo> {
    check_nonempty("knn_distances", knn_distances)?;
    if k == 0 || k > n_synthetic || knn_distances.len() % k != 0 {
        return Err(Error::InvalidParameter {
            name: "k",
            value: k as f64,
            expected: "at least 1, at most n_synthetic, and dividing knn_distances.len()",
        });
    }
    check_distances("knn_distances", knn_distances)?;
    let rows = knn_distances.chunks_exact(k);
    let mut d1: Vec<f64> = rows
        .clone()
        .map(|r| r.iter().copied().fold(f64::INFINITY, f64::min))
        .collect();
    d1.sort_by(f64::total_cmp);
    let epsilon = percentile(&d1, 50.0);
    let counts: Vec<usize> = rows
        .map(|r| r.iter().filter(|&&d| d <= epsilon).count())
        .collect();
    let saturated = if k < n_synthetic {
        counts.iter().filter(|&&c| c == k).count()
    } else {
        0
    };
    Ok(MonteCarlo {
        scores: counts
            .iter()
            .map(|&c| c as f64 / n_synthetic as f64)
            .collect(),
        epsilon,
        k,
        n_synthetic,
        saturated,
    })
}

/// Parameters of [`density_ratio`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DensityRatioConfig {
    /// Principal axes of the reference set to keep (5). DOMIAS works on low-dimensional
    /// tabular data; a KDE in more than a handful of dimensions is dominated by its bandwidth,
    /// so embeddings are first reduced. Axes with (numerically) zero variance on the reference
    /// set are dropped.
    pub pca_dims: usize,
    /// Seed of the PCA's random start (used only for embeddings wider than 128) and of the
    /// KDE subsamples.
    pub seed: u64,
    /// At most this many synthetic and this many reference points define each KDE (10 000;
    /// `0` = all): a larger set is replaced by a seeded uniform sample without replacement,
    /// so that scoring `N` queries costs `O(N · max_kde_points)`, not `O(N · M)`.
    pub max_kde_points: usize,
}

/// Default of [`DensityRatioConfig::max_kde_points`].
pub const MAX_KDE_POINTS: usize = 10_000;

impl Default for DensityRatioConfig {
    fn default() -> Self {
        DensityRatioConfig {
            pca_dims: 5,
            seed: 0,
            max_kde_points: MAX_KDE_POINTS,
        }
    }
}

/// Seed offsets of the KDE subsamples (distinct streams for the two sets).
const KDE_SAMPLE_SYNTHETIC: u64 = 0x4b44_4553;
const KDE_SAMPLE_REFERENCE: u64 = 0x4b44_4552;

/// DOMIAS scores and their parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DensityRatio {
    /// Per query: `log p_synthetic(x) − log p_reference(x)`.
    pub scores: Vec<f64>,
    /// PCA dimensions actually used.
    pub dims: usize,
    /// Scott's factor of the synthetic KDE, `n_synthetic^(−1/(dims+4))`.
    pub scott_factor_synthetic: f64,
    /// Scott's factor of the reference KDE.
    pub scott_factor_reference: f64,
    /// Synthetic points in the synthetic KDE (all, or the seeded subsample).
    pub n_synthetic_kde: usize,
    /// Reference points in the reference KDE (all, or the seeded subsample).
    pub n_reference_kde: usize,
}

/// DOMIAS density-ratio scores: `log p_synthetic(x) − log p_reference(x)`.
///
/// 1. PCA fitted on `reference` (mean and top [`DensityRatioConfig::pca_dims`] axes); every
///    set is projected onto it.
/// 2. Gaussian KDEs of the projected synthetic and reference sets with a full bandwidth matrix:
///    the sample covariance (divides by `n − 1`) times Scott's factor squared,
///    `n^(−2/(d+4))` — `scipy.stats.gaussian_kde`'s default, which DOMIAS's KDE variant uses.
/// 3. Each log-density with a streaming log-sum-exp (finite everywhere). Time
///    `O(N·(M + R)·d)` for `N` queries and `M` synthetic, `R` reference points in the KDEs
///    (each at most [`DensityRatioConfig::max_kde_points`]); memory `O(M + R)`
///    projected points plus `O(d)` per query. Parallel over queries; each score is computed
///    sequentially, so the result does not depend on the thread count.
///
/// - `queries`, `synthetic`, `reference`: embeddings, one image per row, same width.
///   `reference` must be real images disjoint from the evaluated members and non-members.
///
/// # Errors
/// [`Error::Empty`]; [`Error::DimensionMismatch`]; [`Error::NonFinite`];
/// [`Error::InvalidParameter`] for `pca_dims = 0`; [`Error::TooFew`] for fewer than 2 synthetic
/// or reference images; [`Error::Degenerate`] if the reference set has no variance at all or a
/// KDE covariance is singular (e.g. identical synthetic images).
///
/// # Example
/// ```
/// use memscan_metrics::mia::attacks::{density_ratio, DensityRatioConfig};
/// use ndarray::array;
/// // 1-d: synthetic images crowd around 0, reference images spread evenly.
/// let synthetic = array![[-0.1f32], [0.0], [0.1], [0.05]];
/// let reference = array![[-2.0f32], [-1.0], [0.0], [1.0], [2.0]];
/// let queries = array![[0.0f32], [1.5]];
/// let d = density_ratio(queries.view(), synthetic.view(), reference.view(),
///                       &DensityRatioConfig::default()).unwrap();
/// assert_eq!(d.dims, 1);
/// assert!(d.scores[0] > 0.0 && d.scores[1] < 0.0); // a member-like point near the crowd
/// ```
pub fn density_ratio(
    queries: ArrayView2<'_, f32>,
    synthetic: ArrayView2<'_, f32>,
    reference: ArrayView2<'_, f32>,
    cfg: &DensityRatioConfig,
) -> Result<DensityRatio> {
    if cfg.pca_dims == 0 {
        return Err(Error::InvalidParameter {
            name: "pca_dims",
            value: 0.0,
            expected: "a positive integer",
        });
    }
    for (what, x) in [
        ("queries", queries),
        ("synthetic", synthetic),
        ("reference", reference),
    ] {
        if x.nrows() == 0 {
            return Err(Error::Empty { what });
        }
        check_width(what, x, "reference", reference.ncols())?;
        check_finite(what, x)?;
    }
    for (what, x) in [("synthetic", synthetic), ("reference", reference)] {
        if x.nrows() < 2 {
            return Err(Error::TooFew {
                what,
                got: x.nrows(),
                need: 2,
            });
        }
    }
    let mut pca = Pca::fit(reference, cfg.pca_dims, cfg.seed)?;
    let top = pca.variances.first().copied().unwrap_or(0.0);
    if top <= 0.0 || top.is_nan() {
        return Err(Error::Degenerate {
            what: "reference",
            reason:
                "all reference images are identical, so there is no space to estimate densities in",
        });
    }
    let keep = pca
        .variances
        .iter()
        .take_while(|&&v| v > 1e-12 * top)
        .count();
    pca.truncate(keep);
    let syn_s = crate::stats::sample_rows(
        synthetic,
        cfg.max_kde_points,
        cfg.seed ^ KDE_SAMPLE_SYNTHETIC,
    );
    let ref_s = crate::stats::sample_rows(
        reference,
        cfg.max_kde_points,
        cfg.seed ^ KDE_SAMPLE_REFERENCE,
    );
    let synthetic = syn_s.as_ref().map_or(synthetic, |a| a.view());
    let reference = ref_s.as_ref().map_or(reference, |a| a.view());
    let syn_kde = GaussianKde::fit("synthetic", pca.transform(synthetic).view())?;
    let ref_kde = GaussianKde::fit("reference", pca.transform(reference).view())?;
    let q = pca.transform(queries);
    let scores: Vec<f64> = (0..q.nrows())
        .into_par_iter()
        .map(|i| syn_kde.log_pdf(q.row(i)) - ref_kde.log_pdf(q.row(i)))
        .collect();
    Ok(DensityRatio {
        scores,
        dims: keep,
        scott_factor_synthetic: syn_kde.factor,
        scott_factor_reference: ref_kde.factor,
        n_synthetic_kde: synthetic.nrows(),
        n_reference_kde: reference.nrows(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn density_ratio_kdes_are_subsampled_above_the_limit() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let mut draw = |n: usize, shift: f32| {
            ndarray::Array2::from_shape_simple_fn((n, 3), || rng.random_range(-1.0f32..1.0) + shift)
        };
        let syn = draw(500, 0.2);
        let reference = draw(400, 0.0);
        let queries = draw(50, 0.1);
        let small = DensityRatioConfig {
            max_kde_points: 100,
            ..DensityRatioConfig::default()
        };
        let d = density_ratio(queries.view(), syn.view(), reference.view(), &small).unwrap();
        assert_eq!((d.n_synthetic_kde, d.n_reference_kde), (100, 100));
        // Scott's factor follows the points actually in the KDE.
        let dims = d.dims as f64;
        assert!((d.scott_factor_synthetic - 100f64.powf(-1.0 / (dims + 4.0))).abs() < 1e-12);
        assert_eq!(
            density_ratio(queries.view(), syn.view(), reference.view(), &small).unwrap(),
            d,
            "seeded"
        );
        let all = DensityRatioConfig {
            max_kde_points: 0,
            ..DensityRatioConfig::default()
        };
        let d = density_ratio(queries.view(), syn.view(), reference.view(), &all).unwrap();
        assert_eq!((d.n_synthetic_kde, d.n_reference_kde), (500, 400));
    }

    #[test]
    fn negates_and_keeps_order() {
        assert_eq!(distance(&[]), Vec::<f64>::new());
        assert_eq!(distance(&[0.0, 2.5]), vec![0.0, -2.5]);
        assert!(distance(&[f64::NAN])[0].is_nan());
    }

    #[test]
    fn calibrated_hand_values() {
        let s = distance_calibrated(&[0.1, 0.5, 0.0], &[0.3, 0.5, 0.0]).unwrap();
        assert!((s[0] - 0.2).abs() < 1e-15);
        assert_eq!(&s[1..], [0.0, 0.0]); // tie and blank image matching blank images
        assert!(matches!(
            distance_calibrated(&[0.1], &[0.1, 0.2]),
            Err(Error::LengthMismatch { .. })
        ));
        assert!(matches!(
            distance_calibrated(&[0.1], &[-0.2]),
            Err(Error::InvalidDistance {
                what: "d1_reference",
                ..
            })
        ));
    }

    #[test]
    fn monte_carlo_hand_values_ties_and_saturation() {
        // 4 queries, K = 3, 3 synthetic images (exact: no saturation possible).
        // d1 = 0.0 (exact copy), 0.2, 0.2, 0.6 -> ε = median = 0.2 (ties at ε count).
        let d = [0.0, 0.2, 0.9, 0.2, 0.2, 0.3, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8];
        let mc = monte_carlo(&d, 3, 3).unwrap();
        assert_eq!(mc.epsilon, 0.2);
        let want = [2.0 / 3.0, 2.0 / 3.0, 1.0 / 3.0, 0.0];
        assert_eq!(mc.scores, want);
        assert_eq!(mc.saturated, 0);
        // The same with K = 1 of 3: every query with d1 ≤ ε saturates.
        let d1 = [0.0, 0.2, 0.2, 0.6];
        let mc = monte_carlo(&d1, 1, 3).unwrap();
        assert_eq!(mc.scores, [1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0, 0.0]);
        assert_eq!(mc.saturated, 3);
        // Even count: ε is the mean of the middle two; unsorted rows are fine.
        // d1 = 0.1, 0.2 -> ε = 0.15; counts ≤ 0.15: 1 and 0.
        let mc = monte_carlo(&[0.3, 0.1, 0.4, 0.2], 2, 10).unwrap();
        assert!((mc.epsilon - 0.15).abs() < 1e-15);
        assert_eq!((mc.scores, mc.saturated), (vec![0.1, 0.0], 0));
    }

    #[test]
    fn monte_carlo_rejects_bad_input() {
        assert!(monte_carlo(&[], 1, 1).is_err());
        assert!(monte_carlo(&[0.1, 0.2, 0.3], 2, 5).is_err());
        assert!(monte_carlo(&[0.1, 0.2], 0, 5).is_err());
        assert!(monte_carlo(&[0.1, 0.2], 2, 1).is_err());
        assert!(matches!(
            monte_carlo(&[0.1, f64::NAN], 1, 5),
            Err(Error::InvalidDistance { index: 1, .. })
        ));
    }

    #[test]
    fn density_ratio_matches_the_kde_formula_in_1d() {
        // Synthetic {0, 1}: var 0.5, f = 2^(−1/5). Reference {0, 2, 4}: var 4, f = 3^(−1/5).
        // PCA on the reference only centres (and maybe flips) the line; densities are
        // invariant, so the scores are the plain 1-d KDE values.
        let syn = ndarray::array![[0.0f32], [1.0]];
        let reference = ndarray::array![[0.0f32], [2.0], [4.0]];
        let q = ndarray::array![[0.0f32], [3.0], [-1.0]];
        let d = density_ratio(
            q.view(),
            syn.view(),
            reference.view(),
            &DensityRatioConfig::default(),
        )
        .unwrap();
        let kde = |x: f64, pts: &[f64], h2: f64| {
            pts.iter()
                .map(|c| {
                    (-(x - c).powi(2) / (2.0 * h2)).exp() / (std::f64::consts::TAU * h2).sqrt()
                })
                .sum::<f64>()
                / pts.len() as f64
        };
        let (hs, hr) = (0.5 * 2f64.powf(-0.4), 4.0 * 3f64.powf(-0.4));
        for (i, x) in [0.0, 3.0, -1.0].into_iter().enumerate() {
            let want = kde(x, &[0.0, 1.0], hs).ln() - kde(x, &[0.0, 2.0, 4.0], hr).ln();
            assert!(
                (d.scores[i] - want).abs() < 1e-9,
                "{i}: {} vs {want}",
                d.scores[i]
            );
        }
        assert_eq!(d.dims, 1);
        assert_eq!(d.scott_factor_synthetic, 2f64.powf(-0.2));
    }

    #[test]
    fn density_ratio_detects_overfitting_and_is_deterministic() {
        use crate::mia::evaluate;
        use rand::{Rng, SeedableRng};
        use rand_chacha::ChaCha8Rng;
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut draw =
            |n: usize| ndarray::Array2::from_shape_fn((n, 8), |_| rng.random_range(-1.0f32..1.0));
        let (members, nonmembers, reference) = (draw(200), draw(200), draw(400));
        // A generator that outputs its training images with a little noise.
        let noise = draw(200).mapv(|v| 0.01 * v);
        let synthetic = &members + &noise;
        let queries = ndarray::concatenate![ndarray::Axis(0), members, nonmembers];
        let labels: Vec<bool> = (0..400).map(|i| i < 200).collect();
        let cfg = DensityRatioConfig::default();
        let d = density_ratio(queries.view(), synthetic.view(), reference.view(), &cfg).unwrap();
        assert_eq!(d.dims, 5);
        let r = evaluate("density_ratio", &d.scores, &labels).unwrap();
        assert!(r.auc > 0.8, "{}", r.auc); // 0.85: the bandwidth blurs copies in 5-d
        let again = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| density_ratio(queries.view(), synthetic.view(), reference.view(), &cfg))
            .unwrap();
        assert_eq!(again, d);
    }

    #[test]
    fn density_ratio_degenerate_and_bad_input() {
        let cfg = DensityRatioConfig::default();
        let blank = ndarray::Array2::<f32>::zeros((4, 3));
        let spread = ndarray::array![
            [0.0f32, 1.0, 2.0],
            [1.0, 0.0, 2.0],
            [2.0, 1.0, 0.0],
            [0.5, 0.5, 0.5]
        ];
        // Blank queries are fine.
        assert!(density_ratio(blank.view(), spread.view(), spread.view(), &cfg).is_ok());
        // All-blank synthetic set: singular KDE.
        assert!(matches!(
            density_ratio(spread.view(), blank.view(), spread.view(), &cfg),
            Err(Error::Degenerate {
                what: "synthetic",
                ..
            })
        ));
        // All-blank reference set: no PCA space.
        assert!(matches!(
            density_ratio(spread.view(), spread.view(), blank.view(), &cfg),
            Err(Error::Degenerate {
                what: "reference",
                ..
            })
        ));
        let one = ndarray::Array2::<f32>::zeros((1, 3));
        assert!(matches!(
            density_ratio(spread.view(), one.view(), spread.view(), &cfg),
            Err(Error::TooFew {
                what: "synthetic",
                ..
            })
        ));
        let narrow = ndarray::Array2::<f32>::zeros((4, 2));
        assert!(matches!(
            density_ratio(narrow.view(), spread.view(), spread.view(), &cfg),
            Err(Error::DimensionMismatch {
                what: "queries",
                ..
            })
        ));
        let zero = DensityRatioConfig {
            pca_dims: 0,
            ..DensityRatioConfig::default()
        };
        assert!(density_ratio(spread.view(), spread.view(), spread.view(), &zero).is_err());
    }

    #[test]
    fn exact_copies_score_highest() {
        let s = distance(&[0.7, 0.0, 0.3]);
        let best = (0..3).max_by(|&a, &b| s[a].total_cmp(&s[b])).unwrap();
        assert_eq!(best, 1);
    }
}
