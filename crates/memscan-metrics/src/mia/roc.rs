//! Empirical ROC of a membership-inference score, and the numbers read off it.
//!
//! A score is "higher = more likely a member"; predicting *member* ⇔ `score ≥ t`. With `P`
//! members and `N` non-members:
//!
//! ```text
//! TPR(t) = #{members with score ≥ t} / P,     FPR(t) = #{non-members with score ≥ t} / N
//! AUC    = P(score_member > score_nonmember) + ½ P(score_member = score_nonmember)   (Mann–Whitney U / PN)
//! TPR@FPR≤α = max { TPR(t) : FPR(t) ≤ α }      over the staircase, no interpolation
//! balanced accuracy = max_t (TPR(t) + 1 − FPR(t)) / 2
//! ```
//!
//! Variant and conventions:
//! - [`roc_curve`] is the empirical staircase with one point per distinct score, from
//!   `(0, 0)` at threshold `+∞` to `(1, 1)` at the smallest score. Tied scores move FPR and
//!   TPR together, a diagonal step, so the trapezoid area under the points equals [`auc`].
//! - TPR at low FPR follows the ML Privacy Meter convention (and Carlini et al., S&P 2022,
//!   "Membership Inference Attacks From First Principles"): the best TPR among the ROC points
//!   whose FPR is at most α, never interpolated. With fewer than `1/α` non-members the only such
//!   point may be the one with no false positive at all.
//! - Balanced accuracy takes the best threshold *on the evaluation data itself*, so it is an
//!   optimistic (upper) estimate of what an attacker would achieve with a threshold chosen in
//!   advance. It is at least 0.5 because the `(0, 0)` point is always on the curve.
//!
//! ```
//! use memscan_metrics::mia::roc::{auc, roc_curve, tpr_at_fpr};
//! let scores = [0.9, 0.8, 0.8, 0.3];
//! let is_member = [true, true, false, false];
//! // Pairs (member, non-member): (0.9, 0.8) 1, (0.9, 0.3) 1, (0.8, 0.8) ½, (0.8, 0.3) 1.
//! assert_eq!(auc(&scores, &is_member).unwrap(), 0.875);
//! let roc = roc_curve(&scores, &is_member).unwrap();
//! let pts: Vec<(f64, f64)> = roc.iter().map(|p| (p.fpr, p.tpr)).collect();
//! assert_eq!(pts, [(0.0, 0.0), (0.0, 0.5), (0.5, 1.0), (1.0, 1.0)]);
//! assert_eq!(tpr_at_fpr(&roc, 0.01), 0.5);
//! ```

use crate::error::{check_nonempty, check_same_len, Error, Result};
use serde::{Deserialize, Deserializer, Serialize};
use std::cmp::Ordering;

/// One point of the empirical ROC: predicting member ⇔ `score ≥ threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RocPoint {
    /// The score threshold; `+∞` for the first point (nobody predicted a member). JSON has no
    /// infinity, so serde_json writes that one as `null`, which deserializes back to `+∞`.
    #[serde(deserialize_with = "threshold_or_infinity")]
    pub threshold: f64,
    /// False-positive rate: fraction of non-members with `score ≥ threshold`.
    pub fpr: f64,
    /// True-positive rate: fraction of members with `score ≥ threshold`.
    pub tpr: f64,
}

fn threshold_or_infinity<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::INFINITY))
}

/// Scores grouped by distinct value, highest first, with the class totals.
struct TieGroups {
    /// `(score, members, non-members)` per distinct score, highest score first.
    groups: Vec<(f64, u64, u64)>,
    members: u64,
    nonmembers: u64,
}

/// Validates the input and groups it by distinct score.
fn tie_groups(scores: &[f64], is_member: &[bool]) -> Result<TieGroups> {
    check_nonempty("scores", scores)?;
    check_same_len("scores", scores, "is_member", is_member)?;
    if let Some(index) = scores.iter().position(|s| !s.is_finite()) {
        return Err(Error::InvalidScore {
            what: "scores",
            index,
            value: scores[index],
        });
    }
    let n_members = is_member.iter().filter(|&&m| m).count() as u64;
    let n_nonmembers = is_member.len() as u64 - n_members;
    if n_members == 0 {
        return Err(Error::MissingClass { class: "members" });
    }
    if n_nonmembers == 0 {
        return Err(Error::MissingClass {
            class: "non-members",
        });
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    // Finite scores: `partial_cmp` is a total order here, with −0.0 equal to 0.0.
    order.sort_unstable_by(|&a, &b| scores[b].partial_cmp(&scores[a]).unwrap_or(Ordering::Equal));
    let mut groups: Vec<(f64, u64, u64)> = Vec::new();
    for i in order {
        let (s, m) = (scores[i], is_member[i]);
        match groups.last_mut() {
            Some(g) if g.0 == s => {
                if m {
                    g.1 += 1
                } else {
                    g.2 += 1
                }
            }
            _ => groups.push((s, u64::from(m), u64::from(!m))),
        }
    }
    Ok(TieGroups {
        groups,
        members: n_members,
        nonmembers: n_nonmembers,
    })
}

/// The empirical ROC staircase of `scores` (higher = member) against the true labels.
///
/// Returns one point per distinct score, preceded by `(fpr, tpr) = (0, 0)` at threshold `+∞`;
/// thresholds decrease and FPR and TPR never decrease along the vector; the last point is
/// `(1, 1)`.
///
/// # Errors
/// [`Error::Empty`]; [`Error::LengthMismatch`]; [`Error::InvalidScore`] for a NaN or infinite
/// score; [`Error::MissingClass`] if all labels are equal.
pub fn roc_curve(scores: &[f64], is_member: &[bool]) -> Result<Vec<RocPoint>> {
    let TieGroups {
        groups,
        members: p,
        nonmembers: n,
    } = tie_groups(scores, is_member)?;
    let mut roc = Vec::with_capacity(groups.len() + 1);
    roc.push(RocPoint {
        threshold: f64::INFINITY,
        fpr: 0.0,
        tpr: 0.0,
    });
    let (mut tp, mut fp) = (0u64, 0u64);
    for (threshold, m, k) in groups {
        tp += m;
        fp += k;
        roc.push(RocPoint {
            threshold,
            fpr: fp as f64 / n as f64,
            tpr: tp as f64 / p as f64,
        });
    }
    Ok(roc)
}

/// Area under the ROC: the Mann–Whitney probability that a random member scores higher than a
/// random non-member, ties counting ½. Computed exactly in integers, then divided once.
///
/// # Errors
/// As [`roc_curve`].
pub fn auc(scores: &[f64], is_member: &[bool]) -> Result<f64> {
    let TieGroups {
        groups,
        members: p,
        nonmembers: n,
    } = tie_groups(scores, is_member)?;
    // 2U = Σ_groups m·(2·#{non-members strictly below} + #{non-members tied}).
    let mut fp_above: u128 = 0;
    let mut twice_u: u128 = 0;
    for (_, m, k) in groups {
        let (m, k) = (u128::from(m), u128::from(k));
        let below = u128::from(n) - fp_above - k;
        twice_u += m * (2 * below + k);
        fp_above += k;
    }
    Ok(twice_u as f64 / (2.0 * p as f64 * n as f64))
}

/// The highest TPR among ROC points with `fpr ≤ max_fpr`, without interpolation (ML Privacy
/// Meter convention). Returns 0 if no point qualifies (impossible for a curve from
/// [`roc_curve`], whose first point has FPR 0).
///
/// Nondecreasing in `max_fpr`.
pub fn tpr_at_fpr(roc: &[RocPoint], max_fpr: f64) -> f64 {
    roc.iter()
        .filter(|p| p.fpr <= max_fpr)
        .map(|p| p.tpr)
        .fold(0.0, f64::max)
}

/// The best balanced accuracy over all thresholds: `max (tpr + 1 − fpr) / 2`.
///
/// Optimistic: the threshold is chosen on the same data it is scored on. NaN for an empty
/// slice.
pub fn balanced_accuracy(roc: &[RocPoint]) -> f64 {
    roc.iter()
        .map(|p| (p.tpr + 1.0 - p.fpr) / 2.0)
        .reduce(f64::max)
        .unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    const T: bool = true;
    const F: bool = false;

    fn trapezoid(roc: &[RocPoint]) -> f64 {
        roc.windows(2)
            .map(|w| (w[1].fpr - w[0].fpr) * (w[1].tpr + w[0].tpr) / 2.0)
            .sum()
    }

    fn random_case(rng: &mut ChaCha8Rng) -> (Vec<f64>, Vec<bool>) {
        let n = rng.random_range(2..120);
        let levels = rng.random_range(1..12u32);
        let mut labels: Vec<bool> = (0..n).map(|_| rng.random_bool(0.5)).collect();
        labels[0] = true;
        labels[1] = false;
        let scores = labels
            .iter()
            .map(|&m| f64::from(rng.random_range(0..levels)) + if m { 0.5 } else { 0.0 })
            .map(|s| (s * 2.0).floor() / 2.0) // coarse: many ties
            .collect();
        (scores, labels)
    }

    #[test]
    fn auc_hand_example() {
        assert_eq!(auc(&[0.9, 0.8, 0.8, 0.3], &[T, T, F, F]).unwrap(), 0.875);
        // Perfect, inverted, all tied.
        assert_eq!(auc(&[2.0, 1.0], &[T, F]).unwrap(), 1.0);
        assert_eq!(auc(&[1.0, 2.0], &[T, F]).unwrap(), 0.0);
        assert_eq!(auc(&[5.0; 6], &[T, F, T, F, F, T]).unwrap(), 0.5);
        // Two members 3, 1; three non-members 2, 1, 0: pairs 3>2,3>1,3>0, 1<2, 1=1 (½), 1>0.
        assert_eq!(
            auc(&[3.0, 1.0, 2.0, 1.0, 0.0], &[T, T, F, F, F]).unwrap(),
            4.5 / 6.0
        );
    }

    #[test]
    fn roc_staircase_with_ties() {
        let roc = roc_curve(&[0.9, 0.8, 0.8, 0.3], &[T, T, F, F]).unwrap();
        assert_eq!(
            roc,
            vec![
                RocPoint {
                    threshold: f64::INFINITY,
                    fpr: 0.0,
                    tpr: 0.0
                },
                RocPoint {
                    threshold: 0.9,
                    fpr: 0.0,
                    tpr: 0.5
                },
                // The tie at 0.8 adds one member and one non-member: a diagonal step.
                RocPoint {
                    threshold: 0.8,
                    fpr: 0.5,
                    tpr: 1.0
                },
                RocPoint {
                    threshold: 0.3,
                    fpr: 1.0,
                    tpr: 1.0
                },
            ]
        );
        assert_eq!(trapezoid(&roc), 0.875);
        // −0.0 and 0.0 are the same score (−d1 with d1 = 0 gives −0.0).
        let roc = roc_curve(&[-0.0, 0.0, -1.0], &[T, F, F]).unwrap();
        assert_eq!(roc.len(), 3);
        assert_eq!((roc[1].fpr, roc[1].tpr), (0.5, 1.0));
    }

    #[test]
    fn tpr_at_fpr_with_ties_and_no_interpolation() {
        // 4 members, 4 non-members. Descending: 10 m, 9 m+n (tie), 8 m, 7 n, 6 m, 5 n, 4 n.
        let scores = [10.0, 9.0, 9.0, 8.0, 7.0, 6.0, 5.0, 4.0];
        let labels = [T, T, F, T, F, T, F, F];
        let roc = roc_curve(&scores, &labels).unwrap();
        let pts: Vec<(f64, f64)> = roc.iter().map(|p| (p.fpr, p.tpr)).collect();
        assert_eq!(
            pts,
            [
                (0.0, 0.0),
                (0.0, 0.25),
                (0.25, 0.5),
                (0.25, 0.75),
                (0.5, 0.75),
                (0.5, 1.0),
                (0.75, 1.0),
                (1.0, 1.0)
            ]
        );
        // The tie at 9 cannot be split: at FPR 0 only the member at 10 is caught.
        assert_eq!(tpr_at_fpr(&roc, 0.0), 0.25);
        assert_eq!(tpr_at_fpr(&roc, 0.01), 0.25);
        assert_eq!(tpr_at_fpr(&roc, 0.2), 0.25); // no interpolation towards (0.25, 0.5)
        assert_eq!(tpr_at_fpr(&roc, 0.25), 0.75);
        assert_eq!(tpr_at_fpr(&roc, 0.5), 1.0);
        assert_eq!(tpr_at_fpr(&roc, -1.0), 0.0);
        assert_eq!(tpr_at_fpr(&[], 0.5), 0.0);
        // Best threshold 6: tpr 1, fpr 0.5 -> 0.75; or 8: 0.75 + 0.75 -> 0.75.
        assert_eq!(balanced_accuracy(&roc), 0.75);
        assert_eq!(auc(&scores, &labels).unwrap(), trapezoid(&roc));
        assert!(balanced_accuracy(&[]).is_nan());
    }

    #[test]
    fn exact_fpr_budget_is_included() {
        // 100 non-members, one of which outscores all members except one: FPR = 0.01 exactly.
        let mut scores = vec![100.0, 50.0];
        let mut labels = vec![T, F];
        for i in 0..20 {
            scores.push(40.0 - f64::from(i));
            labels.push(T);
        }
        for i in 0..99 {
            scores.push(-f64::from(i));
            labels.push(F);
        }
        let roc = roc_curve(&scores, &labels).unwrap();
        assert_eq!(tpr_at_fpr(&roc, 0.01), 1.0);
        assert_eq!(tpr_at_fpr(&roc, 0.009_999), 1.0 / 21.0);
    }

    #[test]
    fn auc_equals_trapezoid_area_and_properties_hold() {
        let mut rng = ChaCha8Rng::seed_from_u64(2024);
        for trial in 0..300 {
            let (scores, labels) = random_case(&mut rng);
            let roc = roc_curve(&scores, &labels).unwrap();
            let a = auc(&scores, &labels).unwrap();
            assert!((a - trapezoid(&roc)).abs() < 1e-12, "trial {trial}");
            assert!((0.0..=1.0).contains(&a));
            // AUC(s) = 1 − AUC(−s).
            let neg: Vec<f64> = scores.iter().map(|s| -s).collect();
            assert!((auc(&neg, &labels).unwrap() - (1.0 - a)).abs() < 1e-12);
            // Brute-force Mann–Whitney.
            let (mut wins, mut pairs) = (0.0, 0.0);
            for (i, _) in labels.iter().enumerate().filter(|(_, &m)| m) {
                for (j, _) in labels.iter().enumerate().filter(|(_, &m)| !m) {
                    pairs += 1.0;
                    wins += match scores[i].partial_cmp(&scores[j]) {
                        Some(Ordering::Greater) => 1.0,
                        Some(Ordering::Equal) => 0.5,
                        _ => 0.0,
                    };
                }
            }
            assert!((a - wins / pairs).abs() < 1e-12);
            // Staircase shape.
            assert_eq!((roc[0].fpr, roc[0].tpr), (0.0, 0.0));
            let last = roc[roc.len() - 1];
            assert_eq!((last.fpr, last.tpr), (1.0, 1.0));
            for w in roc.windows(2) {
                assert!(w[0].fpr <= w[1].fpr && w[0].tpr <= w[1].tpr);
                assert!(w[0].threshold > w[1].threshold);
            }
            // TPR@FPR never decreases as the budget grows; balanced accuracy in [0.5, 1].
            let mut prev = 0.0;
            for i in 0..=100 {
                let t = tpr_at_fpr(&roc, f64::from(i) / 100.0);
                assert!(t >= prev && (0.0..=1.0).contains(&t));
                prev = t;
            }
            let ba = balanced_accuracy(&roc);
            assert!((0.5..=1.0).contains(&ba));
        }
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(auc(&[], &[]).unwrap_err(), Error::Empty { what: "scores" });
        assert!(matches!(
            roc_curve(&[1.0], &[T, F]),
            Err(Error::LengthMismatch { .. })
        ));
        assert_eq!(
            auc(&[1.0, 2.0], &[T, T]).unwrap_err(),
            Error::MissingClass {
                class: "non-members"
            }
        );
        assert_eq!(
            roc_curve(&[1.0, 2.0], &[F, F]).unwrap_err(),
            Error::MissingClass { class: "members" }
        );
        assert!(matches!(
            auc(&[1.0, f64::NAN], &[T, F]),
            Err(Error::InvalidScore { index: 1, .. })
        ));
        assert!(roc_curve(&[f64::NEG_INFINITY, 0.0], &[T, F]).is_err());
    }

    #[test]
    fn roc_point_round_trips_through_json() {
        let roc = roc_curve(&[0.9, 0.1], &[T, F]).unwrap();
        let json = serde_json::to_string(&roc).unwrap();
        assert!(
            json.starts_with(r#"[{"threshold":null,"fpr":0.0,"tpr":0.0}"#),
            "{json}"
        );
        let back: Vec<RocPoint> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, roc);
    }
}
