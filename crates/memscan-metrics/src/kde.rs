//! Gaussian kernel density estimate with a full bandwidth matrix, as
//! `scipy.stats.gaussian_kde` with its default Scott's rule (for the DOMIAS density ratio).
//!
//! ```text
//! Σ_data = sample covariance of the n points (divides by n − 1)
//! f      = n^(−1/(d+4))                         (Scott's factor)
//! Σ_kde  = f² Σ_data = L Lᵀ                      (Cholesky)
//! log p(x) = logsumexp_i(−½ ‖L⁻¹(x − x_i)‖²) − log n − ½ log det(2π Σ_kde)
//! ```
//!
//! The points are whitened once (`L⁻¹ x_i`, `n×d` floats); evaluating one query costs
//! `O(n·d)` time and `O(d)` memory, with a streaming log-sum-exp (no underflow far from the
//! data, and the result is always finite).

use crate::error::{Error, Result};
use crate::linalg::{cholesky, forward_solve};
use ndarray::{Array2, ArrayView1, ArrayView2};

/// A fitted Gaussian KDE.
#[derive(Debug, Clone)]
pub(crate) struct GaussianKde {
    /// Cholesky factor of the kernel covariance.
    l: Array2<f64>,
    /// Whitened points `L⁻¹ x_i`, `n×d`.
    white: Array2<f64>,
    /// `−log n − ½ log det(2π Σ_kde)`.
    log_norm: f64,
    /// Scott's factor `f`.
    pub factor: f64,
}

impl GaussianKde {
    /// Fits to the rows of `points` (`n×d`, `n ≥ 2`). `what` names the set in errors.
    pub fn fit(what: &'static str, points: ArrayView2<'_, f64>) -> Result<GaussianKde> {
        let (n, d) = points.dim();
        if n < 2 {
            return Err(Error::TooFew {
                what,
                got: n,
                need: 2,
            });
        }
        let mean = points.mean_axis(ndarray::Axis(0)).expect("n ≥ 2");
        let mut cov = Array2::<f64>::zeros((d, d));
        for row in points.outer_iter() {
            for a in 0..d {
                let da = row[a] - mean[a];
                for b in 0..=a {
                    cov[[a, b]] += da * (row[b] - mean[b]);
                }
            }
        }
        let factor = (n as f64).powf(-1.0 / (d as f64 + 4.0));
        let scale = factor * factor / (n - 1) as f64;
        for a in 0..d {
            for b in 0..=a {
                let v = cov[[a, b]] * scale;
                cov[[a, b]] = v;
                cov[[b, a]] = v;
            }
        }
        let l = cholesky(&cov).ok_or(Error::Degenerate {
            what,
            reason: "its points have a singular covariance in the PCA space, so no Gaussian KDE \
                     can be fitted",
        })?;
        let mut white = points.to_owned();
        for mut row in white.outer_iter_mut() {
            let slice = row.as_slice_mut().expect("owned rows are contiguous");
            forward_solve(&l, slice);
        }
        let log_det: f64 = (0..d).map(|i| 2.0 * l[[i, i]].ln()).sum();
        let log_norm = -(n as f64).ln() - 0.5 * (d as f64 * std::f64::consts::TAU.ln() + log_det);
        Ok(GaussianKde {
            l,
            white,
            log_norm,
            factor,
        })
    }

    /// `log p(x)` for one point (`d` coordinates).
    pub fn log_pdf(&self, x: ArrayView1<'_, f64>) -> f64 {
        let mut y: Vec<f64> = x.to_vec();
        forward_solve(&self.l, &mut y);
        // Streaming log-sum-exp of e_i = −½‖y − y_i‖².
        let (mut max, mut sum) = (f64::NEG_INFINITY, 0.0);
        for row in self.white.outer_iter() {
            let e = -0.5
                * row
                    .iter()
                    .zip(&y)
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f64>();
            if e > max {
                sum = sum * (max - e).exp() + 1.0;
                max = e;
            } else {
                sum += (e - max).exp();
            }
        }
        self.log_norm + max + sum.ln()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn one_dimensional_hand_value() {
        // Points 0 and 1: var = 0.5, f = 2^(−1/5), h² = 0.5·2^(−2/5).
        let kde = GaussianKde::fit("x", array![[0.0], [1.0]].view()).unwrap();
        let h2 = 0.5 * 2f64.powf(-0.4);
        let pdf = |x: f64, c: f64| {
            (-(x - c).powi(2) / (2.0 * h2)).exp() / (std::f64::consts::TAU * h2).sqrt()
        };
        for x in [0.0, 0.3, 1.0, 5.0, -4.0] {
            let want = (0.5 * (pdf(x, 0.0) + pdf(x, 1.0))).ln();
            let got = kde.log_pdf(array![x].view());
            assert!(
                (got - want).abs() < 1e-10 * want.abs().max(1.0),
                "{x}: {got} vs {want}"
            );
        }
        assert_eq!(kde.factor, 2f64.powf(-0.2));
        // Far away the density underflows in linear space but the log stays finite.
        assert!(kde.log_pdf(array![1e6].view()).is_finite());
    }

    #[test]
    fn two_dimensional_full_covariance() {
        // Points (0,0), (1,1), (2,0), (1,−1): cov = [[2/3, 0], [0, 2/3]], f = 4^(−1/6).
        let pts = array![[0.0, 0.0], [1.0, 1.0], [2.0, 0.0], [1.0, -1.0]];
        let kde = GaussianKde::fit("x", pts.view()).unwrap();
        let h2 = 2.0 / 3.0 * 4f64.powf(-1.0 / 3.0);
        let x = [0.5, 0.2];
        let want: f64 = pts
            .outer_iter()
            .map(|p| {
                let r2 = (x[0] - p[0]).powi(2) + (x[1] - p[1]).powi(2);
                (-r2 / (2.0 * h2)).exp() / (std::f64::consts::TAU * h2)
            })
            .sum::<f64>()
            / 4.0;
        let got = kde.log_pdf(array![0.5, 0.2].view());
        assert!((got - want.ln()).abs() < 1e-12);
    }

    #[test]
    fn degenerate_sets() {
        assert!(matches!(
            GaussianKde::fit("synthetic", array![[1.0, 2.0]].view()),
            Err(Error::TooFew { need: 2, .. })
        ));
        // Identical (e.g. blank) points: singular covariance.
        assert!(matches!(
            GaussianKde::fit(
                "synthetic",
                array![[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]].view()
            ),
            Err(Error::Degenerate {
                what: "synthetic",
                ..
            })
        ));
    }
}
