//! Similarity profile (DESIGN.md metric 3), after Somepalli et al. (CVPR 2023, "Diffusion Art
//! or Digital Forgery? Investigating Data Replication in Diffusion Models").
//!
//! Summary statistics of the top-1 cosine similarity `cos(x) = cos(x, NN_train(x))`, the cosine
//! to the training image nearest in Euclidean distance (with crop views, to the nearest view),
//! which for L2-normalized embeddings is `max_j cos(x, train_j) = 1 − d1(x)²/2`; for the
//! unnormalized pixel embedder the two can differ. Computed once for synthetic→train and once
//! for holdout→train, the background that says what "similar" means for genuinely new images.
//! It is reported under `similarity.synthetic` / `similarity.holdout` in `summary.json`.
//!
//! ```text
//! mean = Σ cos / n,   std = sqrt(Σ (cos − mean)² / n)      (population std, ddof = 0)
//! pXX  = np.percentile(cos, XX)  for XX ∈ {50, 75, 90, 95, 99}   (linear interpolation)
//! fraction_above_0_5 = #{cos > 0.5} / n                     (Somepalli et al.'s 0.5, strict)
//! ```
//!
//! Variant: values that are not finite (NaN, e.g. the cosine of a blank image's zero
//! embedding) are left out of every statistic and counted in `n_undefined`; `n` counts only
//! defined values. With no defined value there is no profile (`None`).
//!
//! ```
//! use memscan_metrics::profile::similarity_profile;
//! let p = similarity_profile(&[0.2, 0.4, 0.6, 0.8, f64::NAN]).unwrap();
//! assert_eq!((p.n, p.n_undefined), (4, 1));
//! assert!((p.mean - 0.5).abs() < 1e-12);
//! assert!((p.std - 0.05f64.sqrt()).abs() < 1e-12); // sqrt((0.09 + 0.01 + 0.01 + 0.09) / 4)
//! assert!((p.p50 - 0.5).abs() < 1e-12);
//! assert_eq!(p.fraction_above_0_5, 0.5);
//! ```

use crate::stats::percentile;
use serde::{Deserialize, Serialize};

/// Distribution summary of top-1 cosine similarities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimilarityProfile {
    /// Defined (finite) values summarized.
    pub n: u64,
    /// Values left out because they were NaN or infinite.
    pub n_undefined: u64,
    /// Mean cosine similarity.
    pub mean: f64,
    /// Population standard deviation (divides by `n`).
    pub std: f64,
    /// Median.
    pub p50: f64,
    /// 75th percentile.
    pub p75: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Fraction of defined values strictly above 0.5.
    pub fraction_above_0_5: f64,
}

/// Profile of top-1 cosine similarities `cos` (any order), or `None` if none is defined.
///
/// Non-finite entries are ignored and counted in [`SimilarityProfile::n_undefined`].
/// Percentiles are numpy's linear ones ([`crate::stats::percentile`]).
pub fn similarity_profile(cos: &[f64]) -> Option<SimilarityProfile> {
    let mut values: Vec<f64> = cos.iter().copied().filter(|c| c.is_finite()).collect();
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let nf = n as f64;
    let mean = values.iter().sum::<f64>() / nf;
    let var = values.iter().map(|c| (c - mean) * (c - mean)).sum::<f64>() / nf;
    let above = values.iter().filter(|&&c| c > 0.5).count();
    Some(SimilarityProfile {
        n: n as u64,
        n_undefined: (cos.len() - n) as u64,
        mean,
        std: var.sqrt(),
        p50: percentile(&values, 50.0),
        p75: percentile(&values, 75.0),
        p90: percentile(&values, 90.0),
        p95: percentile(&values, 95.0),
        p99: percentile(&values, 99.0),
        fraction_above_0_5: above as f64 / nf,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_to_ten_over_ten() {
        // cos = 0.1, 0.2, ..., 1.0; numpy: percentile 50 -> 0.55, 75 -> 0.775, 90 -> 0.91,
        // 95 -> 0.955, 99 -> 0.991; std (ddof=0) = sqrt(0.0825).
        let cos: Vec<f64> = (1..=10).map(|i| f64::from(i) / 10.0).collect();
        let p = similarity_profile(&cos).unwrap();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert_eq!((p.n, p.n_undefined), (10, 0));
        assert!(close(p.mean, 0.55));
        assert!(close(p.std, 0.0825f64.sqrt()));
        assert!(close(p.p50, 0.55));
        assert!(close(p.p75, 0.775));
        assert!(close(p.p90, 0.91));
        assert!(close(p.p95, 0.955));
        assert!(close(p.p99, 0.991));
        // 0.6 .. 1.0 are above 0.5; 0.5 itself is not (strict).
        assert_eq!(p.fraction_above_0_5, 0.5);
    }

    #[test]
    fn order_does_not_matter() {
        let a = [0.3, 0.9, -0.1, 0.5, 0.7];
        let mut b = a;
        b.reverse();
        assert_eq!(similarity_profile(&a), similarity_profile(&b));
    }

    #[test]
    fn single_value_and_duplicates() {
        let p = similarity_profile(&[0.8]).unwrap();
        assert_eq!((p.n, p.mean, p.std, p.p50, p.p99), (1, 0.8, 0.0, 0.8, 0.8));
        assert_eq!(p.fraction_above_0_5, 1.0);
        // Every synthetic image an exact copy.
        let p = similarity_profile(&[1.0; 7]).unwrap();
        assert_eq!(
            (p.mean, p.std, p.p50, p.fraction_above_0_5),
            (1.0, 0.0, 1.0, 1.0)
        );
    }

    #[test]
    fn undefined_values() {
        assert_eq!(similarity_profile(&[]), None);
        assert_eq!(similarity_profile(&[f64::NAN, f64::NAN]), None);
        let p = similarity_profile(&[f64::NAN, 0.4, f64::INFINITY]).unwrap();
        assert_eq!((p.n, p.n_undefined, p.mean), (1, 2, 0.4));
    }

    #[test]
    fn statistics_are_ordered_and_bounded() {
        let cos: Vec<f64> = (0..997)
            .map(|i| ((i * 37) % 101) as f64 / 50.0 - 1.0)
            .collect();
        let p = similarity_profile(&cos).unwrap();
        assert!(p.p50 <= p.p75 && p.p75 <= p.p90 && p.p90 <= p.p95 && p.p95 <= p.p99);
        assert!((0.0..=1.0).contains(&p.fraction_above_0_5));
        assert!(p.std >= 0.0);
    }

    #[test]
    fn serializes() {
        let p = similarity_profile(&[0.1, 0.9]).unwrap();
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["n_undefined"], 0);
        let back: SimilarityProfile = serde_json::from_value(v).unwrap();
        assert_eq!(back, p);
    }
}
