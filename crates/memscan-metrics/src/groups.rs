//! Group (patient, study) level results — the per-patient lines of `summary.json`
//! (`train_copied_fraction` by group, `mia.<attack>` by patient).
//!
//! Medical images come in groups: several scans or slices per patient. DESIGN.md reports
//! memorization per patient too ("x % of patients have at least one memorized scan", as Dar et
//! al. 2024 report "37.2 % of patient data memorized"). Two helpers:
//!
//! - [`patient_level_scores`] / [`patient_level`]: a membership-inference score per patient is
//!   the **maximum** score over the patient's images (the attacker needs one convincing image
//!   to claim the patient was in the training set); a patient is a member iff their images are
//!   training images. A patient with images in both train and holdout is an error: the split
//!   must be by patient, or membership is undefined.
//! - [`copied_groups`]: the share of patients with at least one copied training image, i.e.
//!   [`copy_counts`] then [`group_fraction`].
//!
//! Group ids are `u32` (the pipeline maps `--groups` names to ids); outputs are sorted by id.
//!
//! ```
//! use memscan_metrics::groups::patient_level_scores;
//! // 5 images of patients 7, 3, 7, 3, 9.
//! let (ids, max) = patient_level_scores(&[0.1, 0.4, 0.8, -1.0, 0.2], &[7, 3, 7, 3, 9]).unwrap();
//! assert_eq!(ids, [3, 7, 9]);
//! assert_eq!(max, [0.4, 0.8, 0.2]);
//! ```

use crate::copies::{copy_counts, group_fraction, GroupCopied};
use crate::error::{check_nonempty, check_same_len, Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Membership-inference input aggregated to patients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatientLevel {
    /// Group ids, ascending.
    pub groups: Vec<u32>,
    /// Maximum image score per group.
    pub scores: Vec<f64>,
    /// Whether the group is a member (its images are training images).
    pub is_member: Vec<bool>,
}

/// `(group ids ascending, maximum score per group)`.
///
/// # Errors
/// [`Error::Empty`]; [`Error::LengthMismatch`]; [`Error::InvalidScore`] for a NaN or infinite
/// score.
pub fn patient_level_scores(scores: &[f64], groups: &[u32]) -> Result<(Vec<u32>, Vec<f64>)> {
    check_nonempty("scores", scores)?;
    check_same_len("scores", scores, "groups", groups)?;
    if let Some(index) = scores.iter().position(|s| !s.is_finite()) {
        return Err(Error::InvalidScore {
            what: "scores",
            index,
            value: scores[index],
        });
    }
    let mut best: BTreeMap<u32, f64> = BTreeMap::new();
    for (&s, &g) in scores.iter().zip(groups) {
        best.entry(g).and_modify(|b| *b = b.max(s)).or_insert(s);
    }
    Ok(best.into_iter().unzip())
}

/// Scores and labels per patient: maximum score, and membership of the patient's images.
///
/// # Errors
/// As [`patient_level_scores`]; [`Error::LengthMismatch`] for `is_member`;
/// [`Error::MixedGroup`] if a group has both member and non-member images.
///
/// # Example
/// ```
/// use memscan_metrics::groups::patient_level;
/// let p = patient_level(&[0.9, 0.1, 0.3], &[true, true, false], &[1, 1, 2]).unwrap();
/// assert_eq!((p.groups, p.scores, p.is_member), (vec![1, 2], vec![0.9, 0.3], vec![true, false]));
/// ```
pub fn patient_level(scores: &[f64], is_member: &[bool], groups: &[u32]) -> Result<PatientLevel> {
    check_same_len("scores", scores, "is_member", is_member)?;
    let (ids, max) = patient_level_scores(scores, groups)?;
    let mut member: BTreeMap<u32, bool> = BTreeMap::new();
    for (&m, &g) in is_member.iter().zip(groups) {
        if let Some(&prev) = member.get(&g) {
            if prev != m {
                return Err(Error::MixedGroup { group: g });
            }
        } else {
            member.insert(g, m);
        }
    }
    Ok(PatientLevel {
        groups: ids,
        scores: max,
        is_member: member.into_values().collect(),
    })
}

/// Share of groups with at least one copied training image: a training image is copied when
/// it is the nearest training image of a flagged synthetic image ([`copy_counts`]), and the
/// share is [`group_fraction`] of those.
///
/// - `nn_train[s]`, `flags[s]`: per synthetic image, its nearest training image and its flag.
/// - `train_group[j]`: group of training image `j` (`< n_groups`).
///
/// # Errors
/// As [`copy_counts`] (with `n_train = train_group.len()`) and [`group_fraction`].
///
/// # Example
/// ```
/// use memscan_metrics::groups::copied_groups;
/// // Training images of patients 0, 0, 1; synthetic 0 copies train 1 (patient 0).
/// let g = copied_groups(&[1, 2], &[true, false], &[0, 0, 1], 2).unwrap();
/// assert_eq!((g.count, g.n_groups, g.fraction), (1, 2, 0.5));
/// ```
pub fn copied_groups(
    nn_train: &[usize],
    flags: &[bool],
    train_group: &[u32],
    n_groups: usize,
) -> Result<GroupCopied> {
    let counts = copy_counts(nn_train, flags, train_group.len())?;
    let copied: Vec<bool> = counts.iter().map(|&c| c > 0).collect();
    group_fraction(train_group, &copied, n_groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_per_group_with_ties_and_single_images() {
        let (ids, max) = patient_level_scores(&[1.0, 1.0, -0.0, 0.0], &[5, 5, 2, 2]).unwrap();
        assert_eq!(ids, [2, 5]);
        assert_eq!(max, [0.0, 1.0]);
        let (ids, max) = patient_level_scores(&[0.3], &[0]).unwrap();
        assert_eq!((ids, max), (vec![0], vec![0.3]));
    }

    #[test]
    fn mixed_groups_are_an_error() {
        assert_eq!(
            patient_level(&[0.1, 0.2], &[true, false], &[4, 4]).unwrap_err(),
            Error::MixedGroup { group: 4 }
        );
        assert!(patient_level(&[0.1], &[true, false], &[4]).is_err());
    }

    #[test]
    fn copied_groups_reuse_copy_counts() {
        // Synthetic 0 and 1 copy train 0 and 3; train 0 is patient 2, train 3 patient 2.
        let g = copied_groups(&[0, 3, 1], &[true, true, false], &[2, 0, 1, 2], 3).unwrap();
        assert_eq!((g.count, g.n_groups), (1, 3));
        assert!(copied_groups(&[9], &[true], &[0], 1).is_err());
        assert!(copied_groups(&[0], &[true], &[5], 1).is_err());
    }

    #[test]
    fn rejects_bad_input() {
        assert!(patient_level_scores(&[], &[]).is_err());
        assert!(patient_level_scores(&[1.0], &[1, 2]).is_err());
        assert!(matches!(
            patient_level_scores(&[1.0, f64::NAN], &[1, 2]),
            Err(Error::InvalidScore { index: 1, .. })
        ));
    }
}
