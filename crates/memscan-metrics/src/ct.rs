//! Data-copying test C_T (DESIGN.md metric 6) — `summary.json` key `c_t` (`value`, `cells`,
//! `per_cell`).
//!
//! From Meehan, Chaudhuri & Dasgupta (AISTATS 2020, "A Non-Parametric Test to Detect
//! Data-Copying in Generative Models"; reference code `casey-meehan/data-copying`, as used by
//! dgm-eval). A generator *copies* when its samples lie closer to the training set than new
//! real samples (the test set, memscan's holdout) do. The space is cut into cells; inside each
//! cell π the distances to the nearest training point of π are compared with a Mann–Whitney
//! test, and the per-cell z-scores are averaged with the test set's cell masses:
//!
//! ```text
//! L(x)    = min over train t ∈ π(x) of ‖x − t‖          (true Euclidean, in the PCA space)
//! U(π)    = #{(s, h) : L(s) > L(h)} + ½ #{(s, h) : L(s) = L(h)}    s synthetic, h test, in π
//! Z(π)    = (U − (n m/2 − ½)) / sqrt(n m (n + m + 1) / 12)         n = #test, m = #synthetic in π
//! Π_τ     = {π : m(π) > τ·M}    τ·M = min_syn_per_cell (20)         M = #synthetic
//! P_n(π)  = n(π) / N                                                 N = #test (the test mass)
//! C_T     = Σ_{π∈Π_τ} P_n(π) Z(π) / Σ_{π∈Π_τ} P_n(π)
//! ```
//!
//! **Sign.** `U` counts pairs in which the *synthetic* distance is the larger, exactly
//! `scipy.stats.mannwhitneyu(L(Q_m), L(P_n)).statistic` in Meehan's code. Synthetic samples
//! that copy training points have `L(s) ≈ 0`, so `U` is small and `C_T ≪ 0` (data-copying);
//! `C_T ≈ 0` when synthetic and test points are equally close to the training set; `C_T ≫ 0`
//! when the generator underfits. The `− ½` in the mean is Meehan's continuity term, kept as is
//! (so a perfect tie `U = nm/2` gives a slightly positive `Z`). With every synthetic point an
//! exact copy and `n = m = 200` in every cell, `U = 0` and
//! `C_T = −(20000 − ½)/sqrt(40000·401/12) = −17.2984…`, the saturation value of the
//! `meehan-moons` reproduction (≈ −17.4 there because its cells are not all equal).
//!
//! Steps of [`ct`] and the variant chosen:
//! 1. If the embeddings have more than `pca_dims` (64) columns, project all three sets onto the
//!    top 64 principal axes of the training set (as dgm-eval's C_T preprocessing; see
//!    [`CtConfig::pca_dims`]; seeded subspace iteration on the covariance, implicit — never
//!    forming the `D×D` matrix — when `2·N < D`; see `linalg`).
//! 2. k-means cells fitted on the training set only (greedy k-means++, `restarts` seeded runs,
//!    lowest inertia kept). Every set is assigned to the nearest centre.
//! 3. `L(x)` by brute force inside each cell: memory is one distance per point (`O(N)`), time
//!    `Σ_π (n(π) + m(π))·#train(π)·d`, cheap because each cell holds a fraction of the training
//!    set. Parallel over points; each minimum is computed sequentially, so results do not depend
//!    on the thread count.
//! 4. A cell with no training or no test point is an [`Error::EmptyCell`] (Meehan's code raises
//!    the same); a cell with at most `min_syn_per_cell` synthetic points is dropped
//!    (`Q_m(π) > τ` is strict in Meehan's code, so 20 points are not enough); no kept cell is
//!    [`Error::NoCellKept`].
//! 5. `k`: [`CtConfig::k`], or automatically `k = clamp(min(N, M) / (2·min_syn_per_cell), 1,
//!    max_k)`, capped by the number of training points: on average twice the keep threshold of
//!    synthetic *and* test points per cell, at most 50 cells ([`auto_k`]).
//!
//! [`ct_from_cells`] does steps 4 and the formulas above on distances computed elsewhere.
//!
//! ```
//! use memscan_metrics::ct::{ct_from_cells, CellSample};
//! // Cell 0: test distances 1, 2; synthetic 0 (a copy) and 3. U = 0 + 2 = 2,
//! // Z = (2 − (2·2/2 − ½)) / sqrt(2·2·5/12) = 0.5 / 1.29099… = 0.3873.
//! // Cell 1: 3 test points, 2 synthetic copies: U = 0, Z = (0 − 2.5)/sqrt(6·6/12) = −1.4434.
//! let cells = [
//!     CellSample { n_train: 5, test: &[1.0, 2.0], synthetic: &[0.0, 3.0] },
//!     CellSample { n_train: 5, test: &[1.0, 1.0, 2.0], synthetic: &[0.0, 0.0] },
//! ];
//! let c = ct_from_cells(&cells, 1).unwrap(); // keep cells with more than 1 synthetic point
//! // P_n = 2/5 and 3/5: C_T = 0.4·0.3873 + 0.6·(−1.4434) = −0.7111.
//! assert!((c.value - (0.4 * 0.5 / (5.0f64 / 3.0).sqrt() - 0.6 * 2.5 / 3.0f64.sqrt())).abs() < 1e-12);
//! assert_eq!((c.cells, c.dropped, c.k), (2, 0, 2));
//! ```

use crate::error::{check_distances, check_nonempty, Error, Result};
use crate::kmeans;
use crate::linalg::{check_finite, check_width, Pca};
use ndarray::{Array2, ArrayView1, ArrayView2};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Added to the seed for the PCA's random start, so PCA and k-means draw different streams.
const PCA_SEED_OFFSET: u64 = 0x9E37_79B9_7F4A_7C15;

/// Parameters of [`ct`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CtConfig {
    /// Number of k-means cells; `0` = automatic ([`auto_k`]).
    pub k: usize,
    /// Upper bound for the automatic `k` (Meehan et al. and DESIGN.md: 50).
    pub max_k: usize,
    /// `τ·M`: a cell is kept only with *more* than this many synthetic points (20).
    pub min_syn_per_cell: usize,
    /// Independent k-means runs; the one with the lowest inertia is kept (5).
    pub restarts: usize,
    /// Project onto this many principal axes of the training set when the embedding is wider
    /// (64, as dgm-eval).
    pub pca_dims: usize,
    /// Seed of the PCA start, the k-means runs and the subsamples.
    pub seed: u64,
    /// Bounds the cost on large sets (20 000; `0` = no limit): a test or synthetic set with
    /// more points is replaced by a seeded uniform sample of this many (without replacement),
    /// and k-means is fitted on a seeded sample of this many training points (every training
    /// point is then assigned to a cell and used as a nearest neighbour). The within-cell
    /// nearest-neighbour search then costs `O(max_points · N_train / k)`, not
    /// `O((N_test + N_syn) · N_train / k)`. Recorded in [`Ct::sampling`].
    pub max_points: usize,
}

/// Default of [`CtConfig::max_points`].
pub const MAX_POINTS: usize = 20_000;

impl Default for CtConfig {
    fn default() -> Self {
        CtConfig {
            k: 0,
            max_k: 50,
            min_syn_per_cell: 20,
            restarts: 5,
            pca_dims: 64,
            seed: 0,
            max_points: MAX_POINTS,
        }
    }
}

/// Seed offsets of C_T's subsamples (distinct streams per set).
const SAMPLE_TEST: u64 = 0x5445_5354;
const SAMPLE_SYNTHETIC: u64 = 0x5359_4e54;
const SAMPLE_KMEANS: u64 = 0x4b4d_4541;

/// How many points of each set C_T used (see [`CtConfig::max_points`]).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CtSampling {
    /// The limit in force (`0` = none).
    pub max_points: usize,
    /// Test (holdout) points compared.
    pub n_test: usize,
    /// Test points given.
    pub n_test_total: usize,
    /// Synthetic points compared.
    pub n_synthetic: usize,
    /// Synthetic points given.
    pub n_synthetic_total: usize,
    /// Training points k-means was fitted on (all training points define the cells' nearest
    /// neighbours).
    pub n_train_kmeans: usize,
    /// Training points given.
    pub n_train_total: usize,
}

/// One cell of the partition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CtCell {
    /// Cell index (k-means centre).
    pub cell: usize,
    /// Training points in the cell.
    pub n_train: usize,
    /// Test (holdout) points in the cell: `n(π)`.
    pub n_test: usize,
    /// Synthetic points in the cell: `m(π)`.
    pub n_synthetic: usize,
    /// `Z(π)`; `None` when the cell has no synthetic point.
    pub z: Option<f64>,
    /// Whether the cell is in `Π_τ` (more than `min_syn_per_cell` synthetic points).
    pub kept: bool,
    /// Its weight in C_T: `P_n(π) / Σ_{Π_τ} P_n`, 0 for dropped cells (weights of kept cells
    /// sum to 1, and `C_T = Σ weight·z`).
    pub weight: f64,
}

/// The C_T statistic and its cells.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ct {
    /// `C_T`: ≪ 0 data-copying, ≈ 0 neither, ≫ 0 underfitting.
    pub value: f64,
    /// Cells kept (`|Π_τ|`).
    pub cells: usize,
    /// Cells in the partition.
    pub k: usize,
    /// Cells dropped for having too few synthetic points.
    pub dropped: usize,
    /// Every cell, in index order.
    pub per_cell: Vec<CtCell>,
    /// Points used per set (seeded subsamples on large sets; [`CtConfig::max_points`]).
    #[serde(default)]
    pub sampling: CtSampling,
}

/// Per-cell input of [`ct_from_cells`]: the distances of the cell's test and synthetic points
/// to the nearest training point *of the same cell* (true Euclidean distances).
#[derive(Debug, Clone, Copy)]
pub struct CellSample<'a> {
    /// Training points in the cell (must be > 0).
    pub n_train: usize,
    /// `L(h)` for the test points in the cell (must not be empty).
    pub test: &'a [f64],
    /// `L(s)` for the synthetic points in the cell (may be empty).
    pub synthetic: &'a [f64],
}

/// The automatic number of cells: `clamp(min(n_test, n_synthetic) / (2·min_syn_per_cell), 1,
/// max_k)`, and at most `n_train` (at least 1).
///
/// ```
/// use memscan_metrics::ct::{auto_k, CtConfig};
/// let cfg = CtConfig::default();
/// assert_eq!(auto_k(5000, 1000, 1000, &cfg), 25); // 1000 / 40
/// assert_eq!(auto_k(5000, 100_000, 100_000, &cfg), 50);
/// assert_eq!(auto_k(5000, 10, 30, &cfg), 1);
/// ```
pub fn auto_k(n_train: usize, n_test: usize, n_synthetic: usize, cfg: &CtConfig) -> usize {
    let per_cell = (2 * cfg.min_syn_per_cell).max(1);
    (n_test.min(n_synthetic) / per_cell)
        .min(cfg.max_k)
        .min(n_train)
        .max(1)
}

/// Meehan's per-cell z-scored Mann–Whitney statistic
/// `Z = (U − (n m/2 − ½)) / sqrt(n m (n+m+1)/12)` with `U = #{L(s) > L(h)} + ½ #{L(s) = L(h)}`.
///
/// - `test`: `L(h)` for the `n` test points; `synthetic`: `L(s)` for the `m` synthetic points;
///   true Euclidean distances, both non-empty.
/// - Negative when synthetic points are closer to the training set than test points.
///
/// Cost `O((n + m) log n)` (sort and binary search).
///
/// # Errors
/// [`Error::Empty`] if either slice is empty; [`Error::InvalidDistance`].
///
/// # Example
/// ```
/// use memscan_metrics::ct::mann_whitney_z;
/// // 200 exact copies against 200 test points: U = 0, the saturation value.
/// let z = mann_whitney_z(&vec![1.0; 200], &vec![0.0; 200]).unwrap();
/// assert!((z - (-17.2984)).abs() < 1e-4);
/// ```
pub fn mann_whitney_z(test: &[f64], synthetic: &[f64]) -> Result<f64> {
    check_nonempty("test", test)?;
    check_nonempty("synthetic", synthetic)?;
    check_distances("test", test)?;
    check_distances("synthetic", synthetic)?;
    Ok(z_u(test, synthetic))
}

fn z_u(test: &[f64], synthetic: &[f64]) -> f64 {
    let mut sorted = test.to_vec();
    sorted.sort_by(f64::total_cmp);
    // 2U in integers: 2·#{h < s} + #{h = s}.
    let twice_u: u128 = synthetic
        .iter()
        .map(|&s| {
            let below = sorted.partition_point(|&h| h < s);
            let not_above = sorted.partition_point(|&h| h <= s);
            (2 * below + (not_above - below)) as u128
        })
        .sum();
    let (n, m) = (test.len() as f64, synthetic.len() as f64);
    let u = twice_u as f64 / 2.0;
    let mean = n * m / 2.0 - 0.5;
    let sd = (n * m * (n + m + 1.0) / 12.0).sqrt();
    (u - mean) / sd
}

/// C_T from per-cell distances (steps 4–5 of the module doc): drops cells with at most
/// `min_syn_per_cell` synthetic points, weights the kept cells' `Z` by their test mass.
///
/// # Errors
/// [`Error::Empty`] if `cells` is empty; [`Error::EmptyCell`] if a cell has no training or no
/// test point; [`Error::InvalidDistance`]; [`Error::NoCellKept`].
pub fn ct_from_cells(cells: &[CellSample<'_>], min_syn_per_cell: usize) -> Result<Ct> {
    check_nonempty("cells", cells)?;
    for (cell, c) in cells.iter().enumerate() {
        if c.n_train == 0 {
            return Err(Error::EmptyCell { cell, set: "train" });
        }
        if c.test.is_empty() {
            return Err(Error::EmptyCell { cell, set: "test" });
        }
        check_distances("test", c.test)?;
        check_distances("synthetic", c.synthetic)?;
    }
    let n_test: usize = cells.iter().map(|c| c.test.len()).sum();
    let mut per_cell: Vec<CtCell> = cells
        .iter()
        .enumerate()
        .map(|(cell, c)| CtCell {
            cell,
            n_train: c.n_train,
            n_test: c.test.len(),
            n_synthetic: c.synthetic.len(),
            z: (!c.synthetic.is_empty()).then(|| z_u(c.test, c.synthetic)),
            kept: c.synthetic.len() > min_syn_per_cell,
            weight: 0.0,
        })
        .collect();
    let mass = |c: &CtCell| c.n_test as f64 / n_test as f64;
    let total: f64 = per_cell.iter().filter(|c| c.kept).map(mass).sum();
    if !per_cell.iter().any(|c| c.kept) {
        return Err(Error::NoCellKept {
            min_synthetic: min_syn_per_cell,
        });
    }
    let mut value = 0.0;
    for c in per_cell.iter_mut().filter(|c| c.kept) {
        c.weight = mass(c) / total;
    }
    // Σ P_n Z / Σ P_n, summed in cell order.
    for c in per_cell.iter().filter(|c| c.kept) {
        value += mass(c) * c.z.unwrap_or(0.0);
    }
    value /= total;
    let cells_kept = per_cell.iter().filter(|c| c.kept).count();
    Ok(Ct {
        value,
        cells: cells_kept,
        k: per_cell.len(),
        dropped: per_cell.len() - cells_kept,
        per_cell,
        sampling: CtSampling::default(),
    })
}

/// The data-copying statistic C_T of `synthetic` against `train`, calibrated by `test` (the
/// holdout). Rows are images, columns embedding coordinates (any consistent embedding; the
/// pipeline passes the same one it searches in).
///
/// # Errors
/// [`Error::Empty`] if a set is empty; [`Error::DimensionMismatch`]; [`Error::NonFinite`];
/// [`Error::InvalidParameter`] for `max_k`, `restarts` or `pca_dims` of 0, or a `k` larger than
/// the training set; [`Error::EmptyCell`]; [`Error::NoCellKept`].
pub fn ct(
    train: ArrayView2<'_, f32>,
    test: ArrayView2<'_, f32>,
    synthetic: ArrayView2<'_, f32>,
    cfg: &CtConfig,
) -> Result<Ct> {
    for (name, value) in [
        ("max_k", cfg.max_k),
        ("restarts", cfg.restarts),
        ("pca_dims", cfg.pca_dims),
    ] {
        if value == 0 {
            return Err(Error::InvalidParameter {
                name,
                value: 0.0,
                expected: "a positive integer",
            });
        }
    }
    for (what, x) in [("train", train), ("test", test), ("synthetic", synthetic)] {
        if x.nrows() == 0 {
            return Err(Error::Empty { what });
        }
        check_width(what, x, "train", train.ncols())?;
        check_finite(what, x)?;
    }
    let test_s = crate::stats::sample_rows(test, cfg.max_points, cfg.seed ^ SAMPLE_TEST);
    let syn_s = crate::stats::sample_rows(synthetic, cfg.max_points, cfg.seed ^ SAMPLE_SYNTHETIC);
    let mut sampling = CtSampling {
        max_points: cfg.max_points,
        n_test_total: test.nrows(),
        n_synthetic_total: synthetic.nrows(),
        n_train_total: train.nrows(),
        ..CtSampling::default()
    };
    let test = test_s.as_ref().map_or(test, |a| a.view());
    let synthetic = syn_s.as_ref().map_or(synthetic, |a| a.view());
    sampling.n_test = test.nrows();
    sampling.n_synthetic = synthetic.nrows();
    let k = if cfg.k == 0 {
        auto_k(train.nrows(), test.nrows(), synthetic.nrows(), cfg)
    } else {
        cfg.k
    };
    if k > train.nrows() {
        return Err(Error::InvalidParameter {
            name: "k",
            value: k as f64,
            expected: "at most the number of training images",
        });
    }

    // 1. PCA fitted on train when the embedding is wider than pca_dims.
    let (train_p, test_p, syn_p) = if train.ncols() > cfg.pca_dims {
        let pca = Pca::fit(train, cfg.pca_dims, cfg.seed.wrapping_add(PCA_SEED_OFFSET))?;
        (
            pca.transform(train),
            pca.transform(test),
            pca.transform(synthetic),
        )
    } else {
        (
            train.mapv(f64::from),
            test.mapv(f64::from),
            synthetic.mapv(f64::from),
        )
    };

    // 2. Cells from k-means on train.
    let fit_idx =
        crate::stats::sample_indices(train_p.nrows(), cfg.max_points, cfg.seed ^ SAMPLE_KMEANS);
    let fit_rows = fit_idx.map(|idx| train_p.select(ndarray::Axis(0), &idx));
    let fit = fit_rows.as_ref().unwrap_or(&train_p);
    sampling.n_train_kmeans = fit.nrows();
    let model = kmeans::fit(fit.view(), k, cfg.restarts, cfg.seed);
    let members = |x: &Array2<f64>| -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); k];
        for (i, c) in model.predict(x.view()).into_iter().enumerate() {
            out[c].push(i);
        }
        out
    };
    let (train_in, test_in, syn_in) = (members(&train_p), members(&test_p), members(&syn_p));

    // 3. Distances to the nearest training point of the same cell.
    let nearest = |x: &Array2<f64>, idx: &[usize], cell: usize| -> Vec<f64> {
        idx.par_iter()
            .map(|&i| nearest_in(x.row(i), train_p.view(), &train_in[cell]))
            .collect()
    };
    let mut distances = Vec::with_capacity(k);
    for cell in 0..k {
        if train_in[cell].is_empty() {
            return Err(Error::EmptyCell { cell, set: "train" });
        }
        if test_in[cell].is_empty() {
            return Err(Error::EmptyCell { cell, set: "test" });
        }
        distances.push((
            nearest(&test_p, &test_in[cell], cell),
            nearest(&syn_p, &syn_in[cell], cell),
        ));
    }
    let cells: Vec<CellSample<'_>> = distances
        .iter()
        .zip(&train_in)
        .map(|((t, s), tr)| CellSample {
            n_train: tr.len(),
            test: t,
            synthetic: s,
        })
        .collect();
    let mut out = ct_from_cells(&cells, cfg.min_syn_per_cell)?;
    out.sampling = sampling;
    Ok(out)
}

/// `min over j ∈ idx of ‖x − train_j‖`, computed directly from differences (an exact copy
/// gives exactly 0).
fn nearest_in(x: ArrayView1<'_, f64>, train: ArrayView2<'_, f64>, idx: &[usize]) -> f64 {
    idx.iter()
        .map(|&j| kmeans::sq_dist(x, train.row(j)))
        .fold(f64::INFINITY, f64::min)
        .sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn gaussian(rng: &mut ChaCha8Rng, n: usize, d: usize, centre: &[f64]) -> Vec<Vec<f32>> {
        (0..n)
            .map(|_| {
                (0..d)
                    .map(|j| {
                        let u1: f64 = 1.0 - rng.random::<f64>();
                        let u2: f64 = rng.random();
                        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                        (centre.get(j).copied().unwrap_or(0.0) + z) as f32
                    })
                    .collect()
            })
            .collect()
    }

    fn matrix(rows: &[Vec<f32>]) -> Array2<f32> {
        Array2::from_shape_fn((rows.len(), rows[0].len()), |(i, j)| rows[i][j])
    }

    /// `(0 − (200·200/2 − ½)) / sqrt(200·200·401/12)`.
    fn saturation() -> f64 {
        -19_999.5 / (40_000.0f64 * 401.0 / 12.0).sqrt()
    }

    #[test]
    fn z_hand_values_and_ties() {
        // U = 2 of 4 pairs, n = m = 2.
        let z = mann_whitney_z(&[1.0, 2.0], &[0.0, 3.0]).unwrap();
        assert!((z - 0.5 / (5.0f64 / 3.0).sqrt()).abs() < 1e-15);
        // All tied: U = nm/2 = 2, Z = ½/σ (Meehan's continuity term).
        let z = mann_whitney_z(&[1.0, 1.0], &[1.0, 1.0]).unwrap();
        assert!((z - 0.5 / (5.0f64 / 3.0).sqrt()).abs() < 1e-15);
        // One synthetic tied with one of two test points: U = ½ + 0 → (½ − ½)/σ = 0.
        assert_eq!(mann_whitney_z(&[1.0, 2.0], &[1.0]).unwrap(), 0.0);
        // Unequal sizes: test {0.1, 0.2, 0.3}, synthetic {0.25}: U = 2, mean 1.5 − ½ = 1,
        // σ = sqrt(3·1·5/12) = sqrt(1.25).
        let z = mann_whitney_z(&[0.1, 0.2, 0.3], &[0.25]).unwrap();
        assert!((z - 1.0 / 1.25f64.sqrt()).abs() < 1e-15);
        // Synthetic farther than every test point: underfitting, positive.
        assert!(mann_whitney_z(&[0.1; 50], &[1.0; 50]).unwrap() > 8.0);
        assert!(mann_whitney_z(&[], &[1.0]).is_err());
        assert!(mann_whitney_z(&[1.0], &[f64::NAN]).is_err());
    }

    #[test]
    fn saturation_value() {
        let z = mann_whitney_z(&[0.5; 200], &[0.0; 200]).unwrap();
        assert!((z - saturation()).abs() < 1e-12, "{z}");
        assert!((z - (-17.2984)).abs() < 1e-4);
        // Equal cells, every synthetic an exact copy: C_T is the saturation value.
        let (t, s) = (vec![0.5; 200], vec![0.0; 200]);
        let cells = vec![
            CellSample {
                n_train: 300,
                test: &t,
                synthetic: &s
            };
            3
        ];
        let c = ct_from_cells(&cells, 20).unwrap();
        assert!((c.value - saturation()).abs() < 1e-12);
        assert!(c
            .per_cell
            .iter()
            .all(|p| p.kept && (p.weight - 1.0 / 3.0).abs() < 1e-15));
    }

    #[test]
    fn dropping_and_errors() {
        let t = [1.0, 2.0];
        let few = [0.0; 20];
        let many = [3.0; 21];
        let cells = [
            CellSample {
                n_train: 1,
                test: &t,
                synthetic: &few,
            },
            CellSample {
                n_train: 1,
                test: &t,
                synthetic: &many,
            },
            CellSample {
                n_train: 1,
                test: &t,
                synthetic: &[],
            },
        ];
        let c = ct_from_cells(&cells, 20).unwrap();
        // 20 synthetic points are not more than 20: dropped; only cell 1 counts.
        assert_eq!((c.cells, c.dropped, c.k), (1, 2, 3));
        assert_eq!(c.value, c.per_cell[1].z.unwrap());
        assert_eq!(c.per_cell[1].weight, 1.0);
        assert!(c.per_cell[0].z.unwrap() < 0.0 && !c.per_cell[0].kept);
        assert_eq!((c.per_cell[2].z, c.per_cell[2].weight), (None, 0.0));
        assert_eq!(
            ct_from_cells(&cells[..1], 20).unwrap_err(),
            Error::NoCellKept { min_synthetic: 20 }
        );
        let no_test = [CellSample {
            n_train: 3,
            test: &[],
            synthetic: &many,
        }];
        assert_eq!(
            ct_from_cells(&no_test, 20).unwrap_err(),
            Error::EmptyCell {
                cell: 0,
                set: "test"
            }
        );
        let no_train = [CellSample {
            n_train: 0,
            test: &t,
            synthetic: &many,
        }];
        assert!(matches!(
            ct_from_cells(&no_train, 20),
            Err(Error::EmptyCell { set: "train", .. })
        ));
        assert!(ct_from_cells(&[], 20).is_err());
    }

    #[test]
    fn exact_copies_in_equal_separated_cells_saturate() {
        // Three far-apart clusters; 300 train, 200 test, 200 synthetic (exact copies of train)
        // per cluster: k-means with k = 3 finds the clusters, every cell has n = m = 200.
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let centres = [[0.0, 0.0], [100.0, 0.0], [0.0, 100.0]];
        let (mut train, mut test, mut syn) = (Vec::new(), Vec::new(), Vec::new());
        for c in &centres {
            let tr = gaussian(&mut rng, 300, 2, c);
            syn.extend_from_slice(&tr[..200]);
            train.extend(tr);
            test.extend(gaussian(&mut rng, 200, 2, c));
        }
        let cfg = CtConfig {
            k: 3,
            seed: 5,
            ..CtConfig::default()
        };
        let c = ct(
            matrix(&train).view(),
            matrix(&test).view(),
            matrix(&syn).view(),
            &cfg,
        )
        .unwrap();
        assert_eq!((c.k, c.cells, c.dropped), (3, 3, 0));
        for cell in &c.per_cell {
            assert_eq!(
                (cell.n_train, cell.n_test, cell.n_synthetic),
                (300, 200, 200)
            );
        }
        assert!((c.value - saturation()).abs() < 1e-9, "{}", c.value);
    }

    #[test]
    fn large_sets_are_subsampled_with_a_seed_and_still_detect_copies() {
        // 3 clusters × (900 train, 600 test, 600 copies): with max_points = 300 the test and
        // synthetic sets are sampled down to 300 each and k-means is fitted on 300 training
        // points; every training point still defines the cells' nearest neighbours.
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        let centres = [[0.0, 0.0], [100.0, 0.0], [0.0, 100.0]];
        let (mut train, mut test, mut syn) = (Vec::new(), Vec::new(), Vec::new());
        for c in &centres {
            let tr = gaussian(&mut rng, 900, 2, c);
            syn.extend_from_slice(&tr[..600]);
            train.extend(tr);
            test.extend(gaussian(&mut rng, 600, 2, c));
        }
        let cfg = CtConfig {
            k: 3,
            seed: 5,
            max_points: 300,
            ..CtConfig::default()
        };
        let (tr, te, sy) = (matrix(&train), matrix(&test), matrix(&syn));
        let c = ct(tr.view(), te.view(), sy.view(), &cfg).unwrap();
        let s = &c.sampling;
        assert_eq!((s.n_test, s.n_test_total), (300, 1800));
        assert_eq!((s.n_synthetic, s.n_synthetic_total), (300, 1800));
        assert_eq!((s.n_train_kmeans, s.n_train_total), (300, 2700));
        let n_train: usize = c.per_cell.iter().map(|x| x.n_train).sum();
        let n_test: usize = c.per_cell.iter().map(|x| x.n_test).sum();
        assert_eq!((n_train, n_test), (2700, 300));
        assert!(c.value < -10.0, "exact copies: {}", c.value);
        // Seeded: the same again; another seed samples differently.
        assert_eq!(ct(tr.view(), te.view(), sy.view(), &cfg).unwrap(), c);
        let other = CtConfig {
            seed: 6,
            ..cfg.clone()
        };
        let c6 = ct(tr.view(), te.view(), sy.view(), &other).unwrap();
        assert_ne!(c6.per_cell, c.per_cell);
        // No limit: everything is used.
        let all = CtConfig {
            max_points: 0,
            ..cfg
        };
        let c0 = ct(tr.view(), te.view(), sy.view(), &all).unwrap();
        assert_eq!(c0.sampling.n_test, 1800);
        assert_eq!(c0.sampling.n_train_kmeans, 2700);
    }

    #[test]
    fn copies_are_negative_and_fresh_samples_are_near_zero() {
        // meehan-moons-like sizes: 2000 train, 1000 test, 1000 synthetic, k = 5.
        let mut rng = ChaCha8Rng::seed_from_u64(2020);
        let train = gaussian(&mut rng, 2000, 2, &[]);
        let test = gaussian(&mut rng, 1000, 2, &[]);
        let fresh = gaussian(&mut rng, 1000, 2, &[]);
        let copies: Vec<Vec<f32>> = train[..1000].to_vec();
        let cfg = CtConfig {
            k: 5,
            seed: 1,
            ..CtConfig::default()
        };
        let (tr, te) = (matrix(&train), matrix(&test));
        let copied = ct(tr.view(), te.view(), matrix(&copies).view(), &cfg).unwrap();
        assert!(copied.value < -15.0, "{}", copied.value);
        let null = ct(tr.view(), te.view(), matrix(&fresh).view(), &cfg).unwrap();
        assert!(null.value.abs() < 3.0, "{}", null.value);
        // Same seed, same result; weights of kept cells sum to 1.
        assert_eq!(
            null,
            ct(tr.view(), te.view(), matrix(&fresh).view(), &cfg).unwrap()
        );
        let w: f64 = null.per_cell.iter().map(|c| c.weight).sum();
        assert!((w - 1.0).abs() < 1e-12);
        let recomputed: f64 = null
            .per_cell
            .iter()
            .filter(|c| c.kept)
            .map(|c| c.weight * c.z.unwrap())
            .sum();
        assert!((recomputed - null.value).abs() < 1e-12);
        // One thread or many: the same cells and the same value.
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| ct(tr.view(), te.view(), matrix(&fresh).view(), &cfg).unwrap());
        assert_eq!(one, null);
        // Automatic k: min(1000, 1000) / 40 = 25.
        let auto = ct(
            tr.view(),
            te.view(),
            matrix(&fresh).view(),
            &CtConfig::default(),
        )
        .unwrap();
        assert_eq!(auto.k, 25);
    }

    #[test]
    fn wide_embeddings_go_through_pca_and_blank_images_are_fine() {
        // 80 > 64 columns; a few blank (all-zero) training images, duplicated, and blank
        // synthetic images that copy them.
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut train = gaussian(&mut rng, 400, 80, &[]);
        for row in train.iter_mut().take(5) {
            row.iter_mut().for_each(|v| *v = 0.0);
        }
        let test = gaussian(&mut rng, 200, 80, &[]);
        let mut syn: Vec<Vec<f32>> = train[..200].to_vec();
        syn.push(vec![0.0; 80]);
        let cfg = CtConfig {
            k: 2,
            ..CtConfig::default()
        };
        let c = ct(
            matrix(&train).view(),
            matrix(&test).view(),
            matrix(&syn).view(),
            &cfg,
        )
        .unwrap();
        assert!(c.value < -10.0, "{}", c.value);
    }

    #[test]
    fn rejects_bad_input() {
        let tr = Array2::<f32>::zeros((10, 2));
        let te = Array2::<f32>::zeros((5, 2));
        let wide = Array2::<f32>::zeros((5, 3));
        let cfg = CtConfig::default();
        assert!(matches!(
            ct(tr.view(), wide.view(), te.view(), &cfg),
            Err(Error::DimensionMismatch { what: "test", .. })
        ));
        assert!(matches!(
            ct(
                tr.view(),
                te.view(),
                Array2::<f32>::zeros((0, 2)).view(),
                &cfg
            ),
            Err(Error::Empty { what: "synthetic" })
        ));
        let big_k = CtConfig {
            k: 11,
            ..cfg.clone()
        };
        assert!(matches!(
            ct(tr.view(), te.view(), te.view(), &big_k),
            Err(Error::InvalidParameter { name: "k", .. })
        ));
        let mut nan = te.clone();
        nan[[2, 1]] = f32::NAN;
        assert!(matches!(
            ct(tr.view(), te.view(), nan.view(), &cfg),
            Err(Error::NonFinite { row: 2, col: 1, .. })
        ));
        // Test points all in one of two far-apart clusters: the other cell has none.
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut train = gaussian(&mut rng, 50, 2, &[0.0, 0.0]);
        train.extend(gaussian(&mut rng, 50, 2, &[50.0, 0.0]));
        let test = gaussian(&mut rng, 50, 2, &[0.0, 0.0]);
        let two = CtConfig {
            k: 2,
            ..cfg.clone()
        };
        let e = ct(
            matrix(&train).view(),
            matrix(&test).view(),
            matrix(&test).view(),
            &two,
        )
        .unwrap_err();
        assert!(matches!(e, Error::EmptyCell { set: "test", .. }), "{e}");
        assert!(e.to_string().contains("use fewer cells"));
        // All-identical training set with k = 2: the second cell has no training point.
        let same = Array2::<f32>::ones((30, 2));
        assert!(matches!(
            ct(same.view(), same.view(), same.view(), &two),
            Err(Error::EmptyCell { .. })
        ));
        let zero = CtConfig { restarts: 0, ..cfg };
        assert!(ct(tr.view(), te.view(), te.view(), &zero).is_err());
    }

    /// Timing of C_T at the demo's image dimension (N = 300, D = 64×64 = 4096), where the
    /// PCA dominates. Run with
    /// `cargo test -p memscan-metrics --lib ct_timing_at_image_dimension -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing, not a check"]
    fn ct_timing_at_image_dimension() {
        // Low-rank structure (spectrum decaying like 1/k²) plus pixel noise, like images.
        let (n, d, rank) = (300, 4096, 100);
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let basis = matrix(&gaussian(&mut rng, rank, d, &[]));
        let make = |rng: &mut ChaCha8Rng| {
            let z = matrix(&gaussian(rng, n, rank, &[]));
            let scaled = Array2::from_shape_fn((n, rank), |(i, k)| z[[i, k]] / (1.0 + k as f32));
            let noise = matrix(&gaussian(rng, n, d, &[]));
            scaled.dot(&basis) + noise.mapv(|v| 0.1 * v)
        };
        let (tr, te, sy) = (make(&mut rng), make(&mut rng), make(&mut rng));
        let t0 = std::time::Instant::now();
        let c = ct(tr.view(), te.view(), sy.view(), &CtConfig::default()).unwrap();
        println!(
            "C_T at N = {n}, D = {d}: {:.3} in {:.2} s",
            c.value,
            t0.elapsed().as_secs_f64()
        );
    }
}
