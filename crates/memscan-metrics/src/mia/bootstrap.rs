//! Stratified percentile bootstrap for an attack's headline numbers (the `ci95` of
//! `mia.<attack>` in `summary.json`). See [`bootstrap`].

use super::roc::auc;
use super::{evaluate, AttackCi95, AttackResult};
use crate::error::{Error, Result};
use crate::stats::percentile;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::cmp::Ordering;

/// Bootstrap 95 % intervals for AUC, balanced accuracy and TPR at FPR ≤ 1 % and ≤ 0.1 %.
///
/// Method (Efron's percentile bootstrap, stratified by class):
/// - Resample `b` draws `P` members with replacement from the `P` members and, separately,
///   `N` non-members from the `N` non-members, so every resample keeps the class sizes (and
///   both classes) of the original evaluation.
/// - Each resample's four numbers are computed exactly as [`evaluate`] would compute them on
///   the resampled scores (ties ½ in the AUC, the un-interpolated ROC staircase for TPR at low
///   FPR, the best threshold for balanced accuracy).
/// - Interval = numpy-style linear percentiles 2.5 and 97.5 of the `n_resamples` values
///   ([`crate::stats::percentile`]).
/// - Resample `b` draws from its own ChaCha8 stream: `ChaCha8Rng::seed_from_u64(seed)` with
///   `set_stream(b)`. Resamples run in parallel and are collected in index order, so the
///   result depends only on `(scores, is_member, n_resamples, seed)`, not on the thread count.
/// - Cost: one sort, then `O(P + N)` per resample (a resample only changes the multiplicity
///   of each original score).
///
/// With few non-members, TPR at FPR ≤ 0.1 % is TPR at zero false positives and its interval
/// reflects that.
///
/// # Errors
/// As [`evaluate`]; [`Error::InvalidParameter`] if `n_resamples = 0`.
///
/// # Example
/// ```
/// use memscan_metrics::mia::bootstrap;
/// let scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2];
/// let is_member = [true, true, false, true, false, true, false, false];
/// let ci = bootstrap(&scores, &is_member, 200, 7).unwrap();
/// assert!(ci.auc[0] <= 0.8125 && 0.8125 <= ci.auc[1]); // the point estimate is inside
/// assert_eq!((ci.resamples, ci.seed), (200, 7));
/// assert_eq!(ci, bootstrap(&scores, &is_member, 200, 7).unwrap()); // reproducible
/// ```
pub fn bootstrap(
    scores: &[f64],
    is_member: &[bool],
    n_resamples: usize,
    seed: u64,
) -> Result<AttackCi95> {
    if n_resamples == 0 {
        return Err(Error::InvalidParameter {
            name: "n_resamples",
            value: 0.0,
            expected: "a positive number of resamples",
        });
    }
    auc(scores, is_member)?; // validates: non-empty, same length, finite, both classes
    let prep = Prepared::new(scores, is_member);
    let values: Vec<[f64; 4]> = (0..n_resamples)
        .into_par_iter()
        .map(|b| prep.metrics(&prep.draw(seed, b as u64)))
        .collect();
    let interval = |m: usize| {
        let mut v: Vec<f64> = values.iter().map(|x| x[m]).collect();
        v.sort_by(f64::total_cmp);
        [percentile(&v, 2.5), percentile(&v, 97.5)]
    };
    Ok(AttackCi95 {
        auc: interval(0),
        balanced_accuracy: interval(1),
        tpr_at_fpr_0_01: interval(2),
        tpr_at_fpr_0_001: interval(3),
        resamples: n_resamples,
        seed,
    })
}

/// [`evaluate`] plus [`bootstrap`] intervals in `ci95`.
///
/// # Errors
/// As [`evaluate`] and [`bootstrap`].
///
/// # Example
/// ```
/// use memscan_metrics::mia::evaluate_with_ci;
/// let r = evaluate_with_ci("distance", &[0.9, 0.1, 0.8, 0.2], &[true, false, true, false], 100, 0)
///     .unwrap();
/// assert_eq!(r.auc, 1.0);
/// assert_eq!(r.ci95.unwrap().auc, [1.0, 1.0]); // perfectly separated in every resample
/// ```
pub fn evaluate_with_ci(
    attack: &str,
    scores: &[f64],
    is_member: &[bool],
    n_resamples: usize,
    seed: u64,
) -> Result<AttackResult> {
    let mut r = evaluate(attack, scores, is_member)?;
    r.ci95 = Some(bootstrap(scores, is_member, n_resamples, seed)?);
    Ok(r)
}

/// Scores sorted once: each index's tie group (distinct score, highest first) and the two
/// classes' index lists.
struct Prepared {
    group_of: Vec<usize>,
    n_groups: usize,
    members: Vec<usize>,
    nonmembers: Vec<usize>,
}

impl Prepared {
    fn new(scores: &[f64], is_member: &[bool]) -> Prepared {
        let mut order: Vec<usize> = (0..scores.len()).collect();
        // Finite scores (validated): −0.0 equals 0.0, as in `roc::roc_curve`.
        order.sort_by(|&a, &b| scores[b].partial_cmp(&scores[a]).unwrap_or(Ordering::Equal));
        let mut group_of = vec![0; scores.len()];
        let mut n_groups = 0;
        for (pos, &i) in order.iter().enumerate() {
            if pos == 0 || scores[i] != scores[order[pos - 1]] {
                n_groups += 1;
            }
            group_of[i] = n_groups - 1;
        }
        let (members, nonmembers) = (0..scores.len()).partition(|&i| is_member[i]);
        Prepared {
            group_of,
            n_groups,
            members,
            nonmembers,
        }
    }

    /// The original indices of resample `b`: members first, then non-members.
    fn draw(&self, seed: u64, b: u64) -> Vec<usize> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(b);
        let mut picks = Vec::with_capacity(self.members.len() + self.nonmembers.len());
        for class in [&self.members, &self.nonmembers] {
            for _ in 0..class.len() {
                picks.push(class[rng.random_range(0..class.len())]);
            }
        }
        picks
    }

    /// `[auc, balanced_accuracy, tpr@0.01, tpr@0.001]` of a resample, as `evaluate` computes
    /// them, from per-group multiplicities.
    fn metrics(&self, picks: &[usize]) -> [f64; 4] {
        let mut m = vec![0u64; self.n_groups];
        let mut k = vec![0u64; self.n_groups];
        for (pos, &i) in picks.iter().enumerate() {
            if pos < self.members.len() {
                m[self.group_of[i]] += 1;
            } else {
                k[self.group_of[i]] += 1;
            }
        }
        let (p, n) = (self.members.len() as u64, self.nonmembers.len() as u64);
        let (mut tp, mut fp) = (0u64, 0u64);
        let mut twice_u: u128 = 0;
        let (mut best_ba, mut tpr_01, mut tpr_001) = (0.5f64, 0.0f64, 0.0f64);
        for g in 0..self.n_groups {
            let (mg, kg) = (u128::from(m[g]), u128::from(k[g]));
            let below = u128::from(n - fp - k[g]);
            twice_u += mg * (2 * below + kg);
            tp += m[g];
            fp += k[g];
            let fpr = fp as f64 / n as f64;
            let tpr = tp as f64 / p as f64;
            best_ba = best_ba.max((tpr + 1.0 - fpr) / 2.0);
            if fpr <= 0.01 {
                tpr_01 = tpr_01.max(tpr);
            }
            if fpr <= 0.001 {
                tpr_001 = tpr_001.max(tpr);
            }
        }
        let auc = twice_u as f64 / (2.0 * p as f64 * n as f64);
        [auc, best_ba, tpr_01, tpr_001]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(n: usize, seed: u64) -> (Vec<f64>, Vec<bool>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let labels: Vec<bool> = (0..n).map(|i| i % 3 != 0).collect();
        let scores = labels
            .iter()
            .map(|&m| f64::from(rng.random_range(0..20u32)) + if m { 3.0 } else { 0.0 })
            .collect(); // coarse: many ties across classes
        (scores, labels)
    }

    #[test]
    fn each_resample_matches_evaluate_on_the_materialized_data() {
        let (scores, labels) = case(300, 1);
        let prep = Prepared::new(&scores, &labels);
        for b in 0..20 {
            let picks = prep.draw(99, b);
            let s: Vec<f64> = picks.iter().map(|&i| scores[i]).collect();
            let l: Vec<bool> = picks.iter().map(|&i| labels[i]).collect();
            let want = evaluate("x", &s, &l).unwrap();
            let got = prep.metrics(&picks);
            assert_eq!(
                got,
                [
                    want.auc,
                    want.balanced_accuracy,
                    want.tpr_at_fpr_0_01,
                    want.tpr_at_fpr_0_001
                ],
                "resample {b}"
            );
            // Stratified: class sizes are kept.
            assert_eq!(l.iter().filter(|&&m| m).count(), 200);
        }
    }

    #[test]
    fn intervals_contain_the_estimate_and_are_deterministic() {
        let (scores, labels) = case(600, 2);
        let r = evaluate_with_ci("distance", &scores, &labels, 400, 17).unwrap();
        let ci = r.ci95.clone().unwrap();
        assert!(
            ci.auc[0] < r.auc && r.auc < ci.auc[1],
            "{:?} {}",
            ci.auc,
            r.auc
        );
        assert!(ci.auc[1] - ci.auc[0] < 0.2);
        for iv in [
            ci.balanced_accuracy,
            ci.tpr_at_fpr_0_01,
            ci.tpr_at_fpr_0_001,
        ] {
            assert!(0.0 <= iv[0] && iv[0] <= iv[1] && iv[1] <= 1.0);
        }
        assert_eq!(bootstrap(&scores, &labels, 400, 17).unwrap(), ci);
        assert_ne!(bootstrap(&scores, &labels, 400, 18).unwrap(), ci);
        // Thread count does not matter.
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| bootstrap(&scores, &labels, 400, 17).unwrap());
        assert_eq!(one, ci);
    }

    #[test]
    fn degenerate_and_bad_input() {
        // One member, one non-member: every resample is the original.
        let ci = bootstrap(&[0.2, 0.1], &[true, false], 10, 0).unwrap();
        assert_eq!(ci.auc, [1.0, 1.0]);
        // All scores tied (e.g. blank images everywhere): AUC ½ in every resample.
        let ci = bootstrap(&[0.0; 6], &[true, false, true, false, true, false], 50, 0).unwrap();
        assert_eq!((ci.auc, ci.tpr_at_fpr_0_01), ([0.5, 0.5], [0.0, 0.0]));
        assert!(matches!(
            bootstrap(&[0.2, 0.1], &[true, false], 0, 0),
            Err(Error::InvalidParameter {
                name: "n_resamples",
                ..
            })
        ));
        assert!(matches!(
            bootstrap(&[0.2, 0.1], &[true, true], 10, 0),
            Err(Error::MissingClass { .. })
        ));
        assert!(evaluate_with_ci("x", &[f64::NAN, 0.1], &[true, false], 10, 0).is_err());
    }
}
