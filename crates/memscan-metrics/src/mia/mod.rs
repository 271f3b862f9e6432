//! Membership inference (DESIGN.md metric 8) — reported under `mia.<attack>` in `summary.json`,
//! ROC points in `mia_roc.csv`.
//!
//! Members are training images (or a seeded sample of them, [`sample::balanced_members`]),
//! non-members are holdout images, in equal numbers. Each attack ([`attacks`]) turns a query
//! image into a score, higher meaning "member"; [`evaluate`] turns scores and true labels into
//! an [`AttackResult`]: ROC AUC, best balanced accuracy, TPR at FPR ≤ 1 % and ≤ 0.1 % from the
//! empirical staircase without interpolation (ML Privacy Meter convention; Carlini et al.,
//! S&P 2022), and the ROC points for linear and log–log plots. Definitions in [`roc`].
//! [`evaluate_with_ci`] adds stratified percentile-bootstrap 95 % intervals ([`bootstrap`]),
//! and [`strongest_attack`] names the attack the summary leads with: the highest TPR at
//! FPR ≤ 0.1 %, ties broken by AUC, then by name.
//!
//! ```
//! use memscan_metrics::mia::evaluate;
//! let r = evaluate("distance", &[0.9, 0.8, 0.8, 0.3], &[true, true, false, false]).unwrap();
//! assert_eq!(r.auc, 0.875);
//! assert_eq!(r.balanced_accuracy, 0.75); // threshold 0.9 or 0.8
//! assert_eq!(r.tpr_at_fpr_0_01, 0.5);
//! assert_eq!((r.n_members, r.n_nonmembers, r.roc.len()), (2, 2, 4));
//! ```

pub mod attacks;
mod bootstrap;
pub mod roc;
pub mod sample;

pub use bootstrap::{bootstrap, evaluate_with_ci};

use crate::error::Result;
use roc::{auc, balanced_accuracy, roc_curve, tpr_at_fpr, RocPoint};
use serde::{Deserialize, Serialize};

/// One attack's performance on a labelled set of members and non-members.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttackResult {
    /// Attack name, e.g. `"distance"`.
    pub attack: String,
    /// ROC AUC (Mann–Whitney; ties count ½). 0.5 = no better than chance.
    pub auc: f64,
    /// Best balanced accuracy over thresholds (optimistic: chosen on the same data).
    pub balanced_accuracy: f64,
    /// Highest TPR at FPR ≤ 0.01 on the staircase, not interpolated.
    pub tpr_at_fpr_0_01: f64,
    /// Highest TPR at FPR ≤ 0.001 on the staircase, not interpolated. Needs ≥ 1000
    /// non-members to mean more than "TPR at zero false positives".
    pub tpr_at_fpr_0_001: f64,
    /// Members (training images) evaluated.
    pub n_members: usize,
    /// Non-members (holdout images) evaluated.
    pub n_nonmembers: usize,
    /// The empirical ROC staircase, `(0, 0)` to `(1, 1)`.
    pub roc: Vec<RocPoint>,
    /// Bootstrap 95 % intervals; `None` until computed.
    pub ci95: Option<AttackCi95>,
}

/// Bootstrap 95 % intervals for an [`AttackResult`]'s headline numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttackCi95 {
    /// Interval for `auc`.
    pub auc: [f64; 2],
    /// Interval for `balanced_accuracy`.
    pub balanced_accuracy: [f64; 2],
    /// Interval for `tpr_at_fpr_0_01`.
    pub tpr_at_fpr_0_01: [f64; 2],
    /// Interval for `tpr_at_fpr_0_001`.
    pub tpr_at_fpr_0_001: [f64; 2],
    /// Bootstrap resamples drawn.
    pub resamples: usize,
    /// Seed of the resampling RNG.
    pub seed: u64,
}

/// Evaluates one attack: `scores[i]` (higher = member) against `is_member[i]`.
///
/// `ci95` is left `None`.
///
/// # Errors
/// As [`roc::roc_curve`]: empty or mismatched input, a non-finite score, or only one class.
pub fn evaluate(attack: &str, scores: &[f64], is_member: &[bool]) -> Result<AttackResult> {
    let roc = roc_curve(scores, is_member)?;
    let n_members = is_member.iter().filter(|&&m| m).count();
    Ok(AttackResult {
        attack: attack.to_owned(),
        auc: auc(scores, is_member)?,
        balanced_accuracy: balanced_accuracy(&roc),
        tpr_at_fpr_0_01: tpr_at_fpr(&roc, 0.01),
        tpr_at_fpr_0_001: tpr_at_fpr(&roc, 0.001),
        n_members,
        n_nonmembers: is_member.len() - n_members,
        roc,
        ci95: None,
    })
}

/// The name of the strongest attack: highest `tpr_at_fpr_0_001`, ties broken by higher `auc`,
/// then by the alphabetically first name. `None` for an empty slice.
///
/// TPR at a very low FPR is the number that matters for privacy (Carlini et al., S&P 2022): an
/// attack that confidently identifies a few members is a worse leak than one that is slightly
/// better than chance on everyone.
///
/// # Example
/// ```
/// use memscan_metrics::mia::{evaluate, strongest_attack};
/// let labels = [true, true, false, false];
/// let a = evaluate("distance", &[0.9, 0.05, 0.5, 0.1], &labels).unwrap(); // TPR 0.5, AUC 0.5
/// let b = evaluate("monte_carlo", &[0.9, 0.8, 0.85, 0.1], &labels).unwrap(); // TPR 0.5, AUC 0.75
/// assert_eq!(strongest_attack(&[a, b]), Some("monte_carlo"));
/// assert_eq!(strongest_attack(&[]), None);
/// ```
pub fn strongest_attack(results: &[AttackResult]) -> Option<&str> {
    results
        .iter()
        .max_by(|a, b| {
            a.tpr_at_fpr_0_001
                .total_cmp(&b.tpr_at_fpr_0_001)
                .then(a.auc.total_cmp(&b.auc))
                .then(b.attack.cmp(&a.attack))
        })
        .map(|r| r.attack.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn strongest_attack_order() {
        let labels = [true, true, false, false];
        let mk = |name: &str, s: [f64; 4]| evaluate(name, &s, &labels).unwrap();
        // TPR@0.1 % decides even against a higher AUC.
        let low_fpr = mk("monte_carlo", [0.9, 0.0, 0.5, 0.4]); // tpr@0 = 0.5, auc 0.5
        let high_auc = mk("distance", [0.8, 0.7, 0.9, 0.1]); // tpr@0 = 0, auc 0.75
        assert_eq!(low_fpr.tpr_at_fpr_0_001, 0.5);
        assert_eq!(high_auc.tpr_at_fpr_0_001, 0.0);
        assert_eq!(
            strongest_attack(&[high_auc.clone(), low_fpr.clone()]),
            Some("monte_carlo")
        );
        // Full tie: the alphabetically first name, whatever the order.
        let a = mk("density_ratio", [0.9, 0.8, 0.2, 0.1]);
        let b = mk("distance", [0.9, 0.8, 0.2, 0.1]);
        assert_eq!(
            strongest_attack(&[b.clone(), a.clone()]),
            Some("density_ratio")
        );
        assert_eq!(strongest_attack(&[a, b]), Some("density_ratio"));
        assert_eq!(strongest_attack(&[high_auc]), Some("distance"));
    }

    #[test]
    fn end_to_end_distance_attack() {
        // 2000 members and 2000 non-members; members' nearest synthetic image is closer for
        // the first 20 (copies) and otherwise distances are interleaved.
        let n = 2000;
        let mut d1 = Vec::new();
        let mut is_member = Vec::new();
        for i in 0..n {
            d1.push(if i < 20 {
                0.0
            } else {
                1.0 + f64::from(i) * 1e-3
            });
            is_member.push(true);
            d1.push(1.0 + f64::from(i) * 1e-3 + 5e-4);
            is_member.push(false);
        }
        let r = evaluate("distance", &attacks::distance(&d1), &is_member).unwrap();
        assert_eq!((r.n_members, r.n_nonmembers), (2000, 2000));
        // The 20 copies are caught at zero false positives: TPR = 1 %.
        assert_eq!(r.tpr_at_fpr_0_001, 0.01);
        // Members 20.. each beat exactly the non-members at index ≥ i (2000 − i of them).
        let wins: f64 = (0..n)
            .map(|i| if i < 20 { 2000.0 } else { f64::from(n - i) })
            .sum();
        assert!((r.auc - wins / 4e6).abs() < 1e-12);
        assert!(r.tpr_at_fpr_0_001 <= r.tpr_at_fpr_0_01);
        assert_eq!(r.ci95, None);
    }

    #[test]
    fn chance_level_attack() {
        let r = evaluate(
            "distance",
            &[1.0; 8],
            &[true, false, true, false, true, false, true, false],
        )
        .unwrap();
        assert_eq!(
            (r.auc, r.balanced_accuracy, r.tpr_at_fpr_0_01),
            (0.5, 0.5, 0.0)
        );
    }

    #[test]
    fn errors_propagate() {
        assert_eq!(
            evaluate("distance", &[0.1], &[true]).unwrap_err(),
            Error::MissingClass {
                class: "non-members"
            }
        );
    }

    #[test]
    fn json_keys_and_round_trip() {
        let r = evaluate("distance", &[0.9, 0.1], &[true, false]).unwrap();
        let v = serde_json::to_value(&r).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "attack",
                "auc",
                "balanced_accuracy",
                "tpr_at_fpr_0_01",
                "tpr_at_fpr_0_001",
                "n_members",
                "n_nonmembers",
                "roc",
                "ci95"
            ]
        );
        assert!(v["ci95"].is_null());
        let back: AttackResult = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }
}
