//! Small dense linear algebra for the metrics that work on embeddings rather than on distances
//! (C_T, the DOMIAS density ratio): principal components, symmetric eigendecomposition and
//! Cholesky factors, in `f64`, deterministic for a given seed and independent of thread count.
//!
//! - [`Pca::fit`]: the mean and the top `r` principal axes of an `N×D` matrix, i.e. the top
//!   eigenvectors of its sample covariance `C = Σ (x − x̄)(x − x̄)ᵀ / (N − 1)`. Small problems
//!   (`D ≤ 128` or `r` close to `D`) form `C` and take the full Jacobi eigendecomposition.
//!   Larger ones use seeded subspace iteration with Rayleigh–Ritz on `p = r + 10` vectors, on
//!   whichever form of `C` is cheaper:
//!   - *explicit* (`2·N ≥ D`): `C` is accumulated over blocks of 256 rows (`N·D²` once, then
//!     `D²·p` per iteration; memory `D×D + 256·D` floats);
//!   - *implicit* (`2·N < D`, e.g. a few hundred images of 64×64 pixels): `C` is never formed;
//!     each iteration computes `C·V = X_cᵀ(X_c·V)/(N − 1)` over blocks of 256 centred rows
//!     (`2·N·D·p` per iteration; memory `D·p + 256·(D + p)` floats).
//!
//!   Iteration stops when every wanted Ritz pair has residual `‖C v − λ v‖ ≤ 10⁻⁴·λ₁`, or
//!   after 30 iterations. The axes only feed a k-means cell partition (C_T) or a KDE space
//!   (DOMIAS), where an axis error of `10⁻⁴·λ₁ / gap` radians moves no point across a cell
//!   boundary in practice; scikit-learn's randomized PCA (used by dgm-eval) stops after a
//!   fixed 7 power iterations with no residual check at all. Axes are sorted by variance
//!   (descending) and signed so that their largest-magnitude entry is positive, as
//!   scikit-learn's `svd_flip` makes them unique. Every product accumulates each output entry
//!   in one task, in block order, so results do not depend on the thread count.
//! - [`sym_eigen`]: cyclic Jacobi rotations, eigenvalues descending, eigenvectors as columns.
//! - [`cholesky`]: lower-triangular factor of a symmetric positive definite matrix.

use crate::error::{Error, Result};
use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array1, Array2, ArrayView2, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Rows per block when streaming an `N×D` matrix.
const BLOCK_ROWS: usize = 256;
/// Extra vectors carried by subspace iteration beyond the wanted components.
const OVERSAMPLE: usize = 10;
/// Subspace iteration stops when every wanted Ritz residual is below this times `λ₁`.
const RESIDUAL_TOL: f64 = 1e-4;
/// Subspace iteration cap (scikit-learn's randomized PCA: 7 power iterations, unchecked).
const MAX_ITER: usize = 30;
/// Output columns per parallel task when accumulating a covariance.
const COV_CHUNK: usize = 128;

/// Checks that every coordinate of an embedding matrix is finite.
pub(crate) fn check_finite(what: &'static str, x: ArrayView2<'_, f32>) -> Result<()> {
    for (row, r) in x.outer_iter().enumerate() {
        if let Some(col) = r.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                what,
                row,
                col,
                value: f64::from(r[col]),
            });
        }
    }
    Ok(())
}

/// Checks that `x` has `expected` columns (the width of `reference`).
pub(crate) fn check_width(
    what: &'static str,
    x: ArrayView2<'_, f32>,
    reference: &'static str,
    expected: usize,
) -> Result<()> {
    if x.ncols() == expected {
        Ok(())
    } else {
        Err(Error::DimensionMismatch {
            what,
            got: x.ncols(),
            reference,
            expected,
        })
    }
}

/// A fitted principal-component projection.
#[derive(Debug, Clone)]
pub(crate) struct Pca {
    /// Column means of the fitted data (`D`).
    pub mean: Array1<f64>,
    /// Principal axes as rows (`r×D`), orthonormal, by decreasing variance.
    pub components: Array2<f64>,
    /// Variance along each axis (eigenvalues of the covariance), descending.
    pub variances: Vec<f64>,
}

impl Pca {
    /// Fits the mean and the top `n_components` axes (at most `D`) of `data` (`N×D`, `N ≥ 2`).
    pub fn fit(data: ArrayView2<'_, f32>, n_components: usize, seed: u64) -> Result<Pca> {
        let (n, d) = data.dim();
        if n < 2 {
            return Err(Error::TooFew {
                what: "PCA input rows",
                got: n,
                need: 2,
            });
        }
        let r = n_components.min(d);
        let mean = column_means(data);
        let (values, vectors) = if d <= 128 || r + OVERSAMPLE >= d {
            let (values, vectors) = sym_eigen(&covariance(data, &mean));
            (values[..r].to_vec(), vectors.slice(s![.., ..r]).to_owned())
        } else if 2 * n < d {
            top_eigen(&CovOp::Implicit { data, mean: &mean }, r, seed)
        } else {
            top_eigen(&CovOp::Explicit(covariance(data, &mean)), r, seed)
        };
        let mut components = vectors.reversed_axes(); // r×D
        for mut row in components.outer_iter_mut() {
            let mut best = 0;
            for (j, v) in row.iter().enumerate() {
                if v.abs() > row[best].abs() {
                    best = j;
                }
            }
            if row[best] < 0.0 {
                row.mapv_inplace(|v| -v);
            }
        }
        Ok(Pca {
            mean,
            components,
            variances: values.into_iter().map(|v| v.max(0.0)).collect(),
        })
    }

    /// Keeps only the first `r` axes.
    pub fn truncate(&mut self, r: usize) {
        let r = r.min(self.variances.len());
        self.components = self.components.slice(s![..r, ..]).to_owned();
        self.variances.truncate(r);
    }

    /// Projects `data` (`N×D`) onto the axes: `(x − mean)·componentsᵀ`, `N×r`.
    pub fn transform(&self, data: ArrayView2<'_, f32>) -> Array2<f64> {
        let r = self.components.nrows();
        let mut out = Array2::<f64>::zeros((data.nrows(), r));
        for (start, block) in centred_blocks(data, &self.mean) {
            let rows = block.nrows();
            let mut dst = out.slice_mut(s![start..start + rows, ..]);
            general_mat_mul(1.0, &block, &self.components.t(), 0.0, &mut dst);
        }
        out
    }
}

fn column_means(data: ArrayView2<'_, f32>) -> Array1<f64> {
    let mut sum = Array1::<f64>::zeros(data.ncols());
    for row in data.outer_iter() {
        for (s, &v) in sum.iter_mut().zip(row) {
            *s += f64::from(v);
        }
    }
    sum / data.nrows() as f64
}

/// `(start_row, block − mean)` for consecutive blocks of [`BLOCK_ROWS`] rows, in `f64`.
fn centred_blocks<'a>(
    data: ArrayView2<'a, f32>,
    mean: &'a Array1<f64>,
) -> impl Iterator<Item = (usize, Array2<f64>)> + 'a {
    (0..data.nrows()).step_by(BLOCK_ROWS).map(move |start| {
        let end = (start + BLOCK_ROWS).min(data.nrows());
        let mut block = data.slice(s![start..end, ..]).mapv(f64::from);
        block -= &mean.view().insert_axis(Axis(0));
        (start, block)
    })
}

/// Sample covariance (divides by `N − 1`), accumulated block by block.
fn covariance(data: ArrayView2<'_, f32>, mean: &Array1<f64>) -> Array2<f64> {
    let d = data.ncols();
    let mut cov = Array2::<f64>::zeros((d, d));
    for (_, block) in centred_blocks(data, mean) {
        // Column chunks of the output in parallel: each entry is still accumulated by one
        // task in block order, so the result does not depend on the thread count.
        rayon::scope(|scope| {
            let block = &block;
            for (j, mut out) in cov.axis_chunks_iter_mut(Axis(1), COV_CHUNK).enumerate() {
                scope.spawn(move |_| {
                    let cols = block.slice(s![.., j * COV_CHUNK..j * COV_CHUNK + out.ncols()]);
                    general_mat_mul(1.0, &block.t(), &cols, 1.0, &mut out);
                });
            }
        });
    }
    cov /= (data.nrows() - 1) as f64;
    // Exact symmetry (the blocked product is symmetric up to rounding).
    for i in 0..d {
        for j in 0..i {
            let v = 0.5 * (cov[[i, j]] + cov[[j, i]]);
            cov[[i, j]] = v;
            cov[[j, i]] = v;
        }
    }
    cov
}

/// Eigendecomposition of a symmetric matrix by cyclic Jacobi rotations.
///
/// Returns the eigenvalues in descending order and the matching unit eigenvectors as the
/// columns of the second matrix (ties keep their original order).
pub(crate) fn sym_eigen(a: &Array2<f64>) -> (Vec<f64>, Array2<f64>) {
    let n = a.nrows();
    let mut a = a.clone();
    let mut v = Array2::<f64>::eye(n);
    let scale: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    for _sweep in 0..100 {
        let mut off = 0.0;
        for p in 0..n {
            for q in p + 1..n {
                off += a[[p, q]] * a[[p, q]];
            }
        }
        if off.sqrt() <= 1e-15 * scale || off == 0.0 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[[p, q]];
                if apq == 0.0 {
                    continue;
                }
                let theta = (a[[q, q]] - a[[p, p]]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[[k, p]], a[[k, q]]);
                    a[[k, p]] = c * akp - s * akq;
                    a[[k, q]] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[[p, k]], a[[q, k]]);
                    a[[p, k]] = c * apk - s * aqk;
                    a[[q, k]] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[[k, p]], v[[k, q]]);
                    v[[k, p]] = c * vkp - s * vkq;
                    v[[k, q]] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| a[[j, j]].total_cmp(&a[[i, i]]).then(i.cmp(&j)));
    let values = order.iter().map(|&i| a[[i, i]]).collect();
    let mut vectors = Array2::<f64>::zeros((n, n));
    for (dst, &src) in order.iter().enumerate() {
        vectors.column_mut(dst).assign(&v.column(src));
    }
    (values, vectors)
}

/// The sample covariance of a data matrix, as an operator `V ↦ C·V`.
enum CovOp<'a> {
    /// `C` formed (`D×D`).
    Explicit(Array2<f64>),
    /// `C·V = X_cᵀ(X_c·V)/(N − 1)` from the data, never forming `C`.
    Implicit {
        data: ArrayView2<'a, f32>,
        mean: &'a Array1<f64>,
    },
}

impl CovOp<'_> {
    fn dim(&self) -> usize {
        match self {
            CovOp::Explicit(c) => c.nrows(),
            CovOp::Implicit { data, .. } => data.ncols(),
        }
    }

    /// `z = C·q` (`q`, `z`: `D×p`).
    fn apply(&self, q: &Array2<f64>, z: &mut Array2<f64>) {
        match self {
            CovOp::Explicit(c) => general_mat_mul(1.0, c, q, 0.0, z),
            CovOp::Implicit { data, mean } => {
                z.fill(0.0);
                let mut y = Array2::<f64>::zeros((BLOCK_ROWS.min(data.nrows()), q.ncols()));
                for (_, block) in centred_blocks(*data, mean) {
                    let rows = block.nrows();
                    let mut y = y.slice_mut(s![..rows, ..]);
                    general_mat_mul(1.0, &block, q, 0.0, &mut y);
                    // Row chunks of z in parallel: each entry is accumulated by one task in
                    // block order, so the result does not depend on the thread count.
                    rayon::scope(|scope| {
                        let (block, y) = (&block, &y);
                        for (j, mut out) in z.axis_chunks_iter_mut(Axis(0), COV_CHUNK).enumerate() {
                            scope.spawn(move |_| {
                                let cols =
                                    block.slice(s![.., j * COV_CHUNK..j * COV_CHUNK + out.nrows()]);
                                general_mat_mul(1.0, &cols.t(), y, 1.0, &mut out);
                            });
                        }
                    });
                }
                *z /= (data.nrows() - 1) as f64;
            }
        }
    }
}

/// Top `r` eigenpairs of a symmetric positive semidefinite `D×D` operator by seeded subspace
/// iteration with Rayleigh–Ritz. Eigenvectors as columns (`D×r`).
fn top_eigen(c: &CovOp<'_>, r: usize, seed: u64) -> (Vec<f64>, Array2<f64>) {
    let d = c.dim();
    let p = (r + OVERSAMPLE).min(d);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut q = Array2::<f64>::from_shape_fn((d, p), |_| normal(&mut rng));
    orthonormalize(&mut q, &mut rng);
    let mut z = Array2::<f64>::zeros((d, p));
    for iter in 0..MAX_ITER {
        c.apply(&q, &mut z);
        let t = q.t().dot(&z);
        let (values, w) = sym_eigen(&t);
        let q_ritz = q.dot(&w);
        let z_ritz = z.dot(&w);
        let top = values[0].abs().max(f64::MIN_POSITIVE);
        let converged = (0..r).all(|j| {
            let res: f64 = z_ritz
                .column(j)
                .iter()
                .zip(q_ritz.column(j))
                .map(|(zv, qv)| (zv - values[j] * qv).powi(2))
                .sum::<f64>()
                .sqrt();
            res <= RESIDUAL_TOL * top
        });
        if converged || iter + 1 == MAX_ITER {
            return (values[..r].to_vec(), q_ritz.slice(s![.., ..r]).to_owned());
        }
        q = z_ritz;
        orthonormalize(&mut q, &mut rng);
    }
    unreachable!("the loop returns on its last iteration")
}

/// Standard normal draw (Box–Muller), from `rng` only.
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Modified Gram–Schmidt with one re-orthogonalization pass; a column that vanishes (rank
/// deficiency) is replaced by a fresh random direction from `rng` and orthogonalized again.
fn orthonormalize(q: &mut Array2<f64>, rng: &mut ChaCha8Rng) {
    // Work on the transpose so that each vector is a contiguous row.
    let mut t = q.t().as_standard_layout().into_owned();
    let p = t.nrows();
    for j in 0..p {
        let (done, mut rest) = t.view_mut().split_at(Axis(0), j);
        let mut v = rest.row_mut(0);
        for attempt in 0..4 {
            let before = v.dot(&v).sqrt();
            for _pass in 0..2 {
                for qi in done.outer_iter() {
                    let dot = qi.dot(&v);
                    v.scaled_add(-dot, &qi);
                }
            }
            let after = v.dot(&v).sqrt();
            if after > 1e-10 * before.max(f64::MIN_POSITIVE) && after > 0.0 {
                v.mapv_inplace(|x| x / after);
                break;
            }
            // Rank deficient: restart this vector from a random direction.
            v.iter_mut().for_each(|x| *x = normal(rng));
            if attempt == 3 {
                v.fill(0.0);
            }
        }
    }
    q.assign(&t.t());
}

/// Lower-triangular Cholesky factor `L` with `L·Lᵀ = a`, or `None` if `a` is not
/// (numerically) positive definite.
pub(crate) fn cholesky(a: &Array2<f64>) -> Option<Array2<f64>> {
    let n = a.nrows();
    let mut l = Array2::<f64>::zeros((n, n));
    for i in 0..n {
        for j in 0..=i {
            let mut sum = a[[i, j]];
            for k in 0..j {
                sum -= l[[i, k]] * l[[j, k]];
            }
            if i == j {
                if !(sum > 0.0 && sum.is_finite()) {
                    return None;
                }
                l[[i, i]] = sum.sqrt();
            } else {
                l[[i, j]] = sum / l[[j, j]];
            }
        }
    }
    Some(l)
}

/// Solves `L·y = x` for lower-triangular `L` (forward substitution), in place.
pub(crate) fn forward_solve(l: &Array2<f64>, x: &mut [f64]) {
    for i in 0..x.len() {
        let mut v = x[i];
        for k in 0..i {
            v -= l[[i, k]] * x[k];
        }
        x[i] = v / l[[i, i]];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn jacobi_on_a_known_matrix() {
        // [[2, 1], [1, 2]]: eigenvalues 3 (1, 1)/√2 and 1 (1, −1)/√2.
        let (vals, vecs) = sym_eigen(&array![[2.0, 1.0], [1.0, 2.0]]);
        assert!((vals[0] - 3.0).abs() < 1e-14 && (vals[1] - 1.0).abs() < 1e-14);
        let v0 = vecs.column(0);
        assert!((v0[0].abs() - 0.5f64.sqrt()).abs() < 1e-14);
        assert!((v0[0] - v0[1]).abs() < 1e-14);
        // Diagonal with ties keeps order; A·V = V·Λ on a 3×3.
        let a = array![[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 1.0]];
        let (vals, vecs) = sym_eigen(&a);
        let av = a.dot(&vecs);
        for j in 0..3 {
            for i in 0..3 {
                assert!((av[[i, j]] - vals[j] * vecs[[i, j]]).abs() < 1e-12);
            }
        }
        assert!(vals[0] >= vals[1] && vals[1] >= vals[2]);
        // Trace is preserved: 4 + 3 + 1.
        assert!((vals.iter().sum::<f64>() - 8.0).abs() < 1e-12);
    }

    #[test]
    fn cholesky_and_solve() {
        let a = array![[4.0, 2.0], [2.0, 3.0]];
        let l = cholesky(&a).unwrap();
        assert_eq!(l, array![[2.0, 0.0], [1.0, 2.0f64.sqrt()]]);
        let mut x = [2.0, 1.0 + 2.0f64.sqrt()];
        forward_solve(&l, &mut x);
        assert!((x[0] - 1.0).abs() < 1e-15 && (x[1] - 1.0).abs() < 1e-15);
        assert!(cholesky(&array![[1.0, 2.0], [2.0, 1.0]]).is_none());
        assert!(cholesky(&array![[0.0]]).is_none());
    }

    #[test]
    fn pca_recovers_the_axes_of_a_stretched_cloud() {
        // Points along (1, 1, 0)/√2 with spread 10, along (1, −1, 0)/√2 with spread 1.
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let rows: Vec<[f32; 3]> = (0..2000)
            .map(|_| {
                let (a, b) = (10.0 * normal(&mut rng), normal(&mut rng));
                let h = std::f64::consts::FRAC_1_SQRT_2;
                [
                    (h * (a + b) + 5.0) as f32,
                    (h * (a - b)) as f32,
                    (0.01 * normal(&mut rng)) as f32,
                ]
            })
            .collect();
        let x = Array2::from_shape_fn((2000, 3), |(i, j)| rows[i][j]);
        let pca = Pca::fit(x.view(), 2, 0).unwrap();
        assert!((pca.mean[0] - 5.0).abs() < 1.0);
        let c0 = pca.components.row(0);
        assert!((c0[0] - c0[1]).abs() < 0.02 && c0[0] > 0.0, "{c0}");
        assert!(pca.variances[0] > 80.0 && pca.variances[1] < 1.3);
        let y = pca.transform(x.view());
        assert_eq!(y.dim(), (2000, 2));
        // Projections are centred.
        assert!(y.column(0).mean().unwrap().abs() < 1e-9);
    }

    #[test]
    fn subspace_iteration_matches_full_jacobi() {
        // D = 160 > 128 forces subspace iteration; a spectrum with clear gaps.
        let d = 160;
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let x = Array2::from_shape_fn((600, d), |(_, j)| {
            (normal(&mut rng) * (1.0 + 30.0 / (1.0 + j as f64))) as f32
        });
        let pca = Pca::fit(x.view(), 5, 3).unwrap();
        let cov = covariance(x.view(), &pca.mean);
        let (vals, vecs) = sym_eigen(&cov);
        for j in 0..5 {
            assert!((pca.variances[j] - vals[j]).abs() < 1e-6 * vals[0], "{j}");
            let dot: f64 = pca
                .components
                .row(j)
                .iter()
                .zip(vecs.column(j))
                .map(|(a, b)| a * b)
                .sum();
            assert!((dot.abs() - 1.0).abs() < 1e-6, "{j}: {dot}");
        }
        // Same seed, same answer; rank-deficient input (all zero) does not fail.
        assert_eq!(Pca::fit(x.view(), 5, 3).unwrap().components, pca.components);
        let zeros = Array2::<f32>::zeros((10, 200));
        let z = Pca::fit(zeros.view(), 4, 0).unwrap();
        assert!(z.variances.iter().all(|&v| v == 0.0));
        assert_eq!(z.transform(zeros.view()), Array2::<f64>::zeros((10, 4)));
    }

    #[test]
    fn implicit_covariance_matches_full_jacobi() {
        // N = 60 < D/2 = 100 takes the implicit path (C never formed); compare with the full
        // eigendecomposition of the explicit covariance.
        let (n, d) = (60, 200);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let x = Array2::from_shape_fn((n, d), |(_, j)| {
            (normal(&mut rng) * (1.0 + 30.0 / (1.0 + j as f64))) as f32
        });
        let pca = Pca::fit(x.view(), 5, 9).unwrap();
        let (vals, vecs) = sym_eigen(&covariance(x.view(), &pca.mean));
        for j in 0..5 {
            assert!((pca.variances[j] - vals[j]).abs() < 1e-6 * vals[0], "{j}");
            // Axis angle ≤ residual / gap = 10⁻⁴·λ₁ / (λ₄ − λ₅): about 2·10⁻³ rad here (60
            // samples leave small gaps), so |cos| ≥ 1 − 2·10⁻⁶; 10⁻⁵ leaves margin.
            let dot: f64 = pca.components.row(j).dot(&vecs.column(j));
            assert!((dot.abs() - 1.0).abs() < 1e-5, "{j}: {dot}");
        }
        // The operator itself agrees with the formed matrix.
        let q = Array2::from_shape_fn((d, 3), |_| normal(&mut rng));
        let mut implicit = Array2::zeros((d, 3));
        CovOp::Implicit {
            data: x.view(),
            mean: &pca.mean,
        }
        .apply(&q, &mut implicit);
        let explicit = covariance(x.view(), &pca.mean).dot(&q);
        let err = (&implicit - &explicit)
            .mapv(f64::abs)
            .fold(0.0f64, |a, &b| a.max(b));
        assert!(err < 1e-9 * vals[0], "{err}");
        assert_eq!(Pca::fit(x.view(), 5, 9).unwrap().components, pca.components);
    }

    #[test]
    fn input_checks() {
        let x = array![[1.0f32, f32::NAN]];
        assert!(matches!(
            check_finite("train", x.view()),
            Err(Error::NonFinite { row: 0, col: 1, .. })
        ));
        assert!(check_width("test", x.view(), "train", 3).is_err());
        assert!(Pca::fit(x.view(), 1, 0).is_err());
    }
}
