//! Training images copied (DESIGN.md metric 4) — `summary.json` key `train_copied_fraction`.
//!
//! The copy rate counts synthetic images; this counts the *training* images they copy, which is
//! what a data owner asks ("how much of my data leaked?"). Dar et al. (2024, "Unconditional
//! Latent Diffusion Models Memorize Patient Imaging Data") report memorization this way, as the
//! share of training images (and of patients) that the generator reproduced.
//!
//! ```text
//! copied(j)  ⇔ ∃ s : flag(s) ∧ NN_train(s) = j
//! fraction   = #{j : copied(j)} / n_train
//! copies(j)  = #{s : flag(s) ∧ NN_train(s) = j}
//! best(j)    = argmin over those s of d1(s)   (ties: lowest synthetic index)
//! groups     = #{g : ∃ j ∈ g, copied(j)} / #{g : ∃ j ∈ g}       (per patient/study)
//! ```
//!
//! Variant: only the *nearest* training image of a flagged synthetic image counts as copied
//! (not every training image within the threshold). The flags come from any detector
//! (calibrated copy rate, ratio test, fixed threshold). The top-N list is sorted by `copies`
//! descending, then `best_distance` ascending, then training index ascending, so it is
//! deterministic. The group fraction's denominator is the groups that contain at least one
//! training image.
//!
//! ```
//! use memscan_metrics::copies::train_copied;
//! // 4 synthetic images; their nearest training images (of 3) and distances; 3 are flagged.
//! let nn = [2, 2, 0, 1];
//! let d1 = [0.3, 0.1, 0.2, 0.9];
//! let flags = [true, true, true, false];
//! let t = train_copied(&nn, &d1, &flags, 3, 10).unwrap();
//! assert_eq!((t.count, t.n_train), (2, 3)); // train 0 and 2 are copied
//! assert!((t.fraction - 2.0 / 3.0).abs() < 1e-15);
//! assert_eq!((t.top[0].train, t.top[0].copies, t.top[0].best_synthetic), (2, 2, 1));
//! assert_eq!((t.top[1].train, t.top[1].copies), (0, 1));
//! ```

use crate::error::{check_distances, check_nonempty, check_same_len, Error, Result};
use crate::stats::fraction;
use serde::{Deserialize, Serialize};

/// One copied training image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CopiedTrain {
    /// Index of the training image.
    pub train: usize,
    /// Flagged synthetic images whose nearest training image this is.
    pub copies: u64,
    /// Index of the closest of those synthetic images (lowest index on ties).
    pub best_synthetic: usize,
    /// Its `d1`: true Euclidean distance.
    pub best_distance: f64,
}

/// How much of the training set was copied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainCopied {
    /// Training images.
    pub n_train: usize,
    /// Training images copied by at least one flagged synthetic image.
    pub count: u64,
    /// `count / n_train`.
    pub fraction: f64,
    /// The most-copied training images, at most `top_n`, in the documented order.
    pub top: Vec<CopiedTrain>,
}

/// Share of groups (patients, studies) with at least one copied training image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupCopied {
    /// Groups that contain at least one training image.
    pub n_groups: u64,
    /// Of those, groups with at least one copied training image.
    pub count: u64,
    /// `count / n_groups`.
    pub fraction: f64,
}

/// Number of flagged synthetic images whose nearest training image is `j`, for every `j`
/// (the `copies` column of `train.csv`).
///
/// - `nn_train[s]`: index of synthetic `s`'s nearest training image, `< n_train`.
/// - `flags[s]`: whether `s` is flagged as a copy.
///
/// # Errors
/// [`Error::LengthMismatch`]; [`Error::IndexOutOfRange`] if some `nn_train[s] ≥ n_train`.
pub fn copy_counts(nn_train: &[usize], flags: &[bool], n_train: usize) -> Result<Vec<u64>> {
    check_same_len("nn_train", nn_train, "flags", flags)?;
    check_indices(nn_train, n_train)?;
    let mut counts = vec![0u64; n_train];
    for (&j, _) in nn_train.iter().zip(flags).filter(|(_, &f)| f) {
        counts[j] += 1;
    }
    Ok(counts)
}

/// Fraction of training images that are the nearest neighbour of at least one flagged
/// synthetic image, plus the `top_n` most-copied ones.
///
/// - `nn_train[s]`, `d1[s]`, `flags[s]`: per synthetic image, its nearest training image
///   (index `< n_train`), the true Euclidean distance to it (never squared), and its flag.
/// - `n_train`: size of the training set (> 0). `top_n`: length cap of the list (0 allowed).
///
/// No synthetic image at all is allowed and gives a fraction of 0.
///
/// # Errors
/// [`Error::Empty`] if `n_train = 0`; [`Error::LengthMismatch`] among the three slices;
/// [`Error::IndexOutOfRange`]; [`Error::InvalidDistance`] for a bad `d1`.
pub fn train_copied(
    nn_train: &[usize],
    d1: &[f64],
    flags: &[bool],
    n_train: usize,
    top_n: usize,
) -> Result<TrainCopied> {
    if n_train == 0 {
        return Err(Error::Empty {
            what: "training set",
        });
    }
    check_same_len("nn_train", nn_train, "d1", d1)?;
    check_same_len("nn_train", nn_train, "flags", flags)?;
    check_distances("d1", d1)?;
    check_indices(nn_train, n_train)?;

    // Per training image: (copies, best synthetic, best distance); synthetic images are
    // visited in index order and only a strictly smaller distance replaces the best, so ties
    // keep the lowest synthetic index.
    let mut per_train: Vec<Option<CopiedTrain>> = vec![None; n_train];
    for (s, ((&j, &d), _)) in nn_train
        .iter()
        .zip(d1)
        .zip(flags)
        .enumerate()
        .filter(|(_, (_, &f))| f)
    {
        match &mut per_train[j] {
            Some(c) => {
                c.copies += 1;
                if d < c.best_distance {
                    c.best_synthetic = s;
                    c.best_distance = d;
                }
            }
            slot @ None => {
                *slot = Some(CopiedTrain {
                    train: j,
                    copies: 1,
                    best_synthetic: s,
                    best_distance: d,
                })
            }
        }
    }
    let mut copied: Vec<CopiedTrain> = per_train.into_iter().flatten().collect();
    let count = copied.len() as u64;
    copied.sort_by(|a, b| {
        b.copies
            .cmp(&a.copies)
            .then(a.best_distance.total_cmp(&b.best_distance))
            .then(a.train.cmp(&b.train))
    });
    copied.truncate(top_n);
    Ok(TrainCopied {
        n_train,
        count,
        fraction: fraction(count, n_train as u64),
        top: copied,
    })
}

/// Fraction of groups (patients, studies) that have at least one copied training image.
///
/// - `train_group[j]`: group id of training image `j`, `< n_groups`.
/// - `copied_train[j]`: whether training image `j` is copied (e.g. `copy_counts(..)[j] > 0`).
/// - `n_groups`: number of group ids; groups without any training image are not counted in
///   the denominator.
///
/// # Errors
/// [`Error::Empty`] if there are no training images; [`Error::LengthMismatch`];
/// [`Error::IndexOutOfRange`] if a group id is `≥ n_groups`.
///
/// # Example
/// ```
/// use memscan_metrics::copies::group_fraction;
/// // Patients 0, 0, 1, 2 (patient 3 has no training image); one scan of patient 0 copied.
/// let g = group_fraction(&[0, 0, 1, 2], &[false, true, false, false], 4).unwrap();
/// assert_eq!((g.count, g.n_groups), (1, 3));
/// assert!((g.fraction - 1.0 / 3.0).abs() < 1e-15);
/// ```
pub fn group_fraction(
    train_group: &[u32],
    copied_train: &[bool],
    n_groups: usize,
) -> Result<GroupCopied> {
    check_nonempty("train_group", train_group)?;
    check_same_len("train_group", train_group, "copied_train", copied_train)?;
    let mut present = vec![false; n_groups];
    let mut copied = vec![false; n_groups];
    for (index, (&g, &c)) in train_group.iter().zip(copied_train).enumerate() {
        let g_idx = g as usize;
        if g_idx >= n_groups {
            return Err(Error::IndexOutOfRange {
                what: "train_group",
                index,
                value: g_idx,
                bound: n_groups,
            });
        }
        present[g_idx] = true;
        copied[g_idx] |= c;
    }
    let n = present.iter().filter(|&&p| p).count() as u64;
    let count = copied.iter().filter(|&&c| c).count() as u64;
    Ok(GroupCopied {
        n_groups: n,
        count,
        fraction: fraction(count, n),
    })
}

fn check_indices(nn_train: &[usize], n_train: usize) -> Result<()> {
    match nn_train.iter().position(|&j| j >= n_train) {
        Some(index) => Err(Error::IndexOutOfRange {
            what: "nn_train",
            index,
            value: nn_train[index],
            bound: n_train,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_example() {
        // Synthetic 0..6 -> train; flagged: 0, 1, 3, 4, 5.
        let nn = [4, 4, 1, 1, 0, 1];
        let d1 = [0.2, 0.1, 0.0, 0.3, 0.05, 0.3];
        let flags = [true, true, false, true, true, true];
        let t = train_copied(&nn, &d1, &flags, 5, 10).unwrap();
        assert_eq!((t.n_train, t.count), (5, 3));
        assert_eq!(t.fraction, 0.6);
        assert_eq!(
            t.top,
            vec![
                // train 4: copies 2, best 0.1 (synthetic 1); train 1: copies 2 (synthetic 3
                // and 5 at the same distance: lowest index wins), best 0.3; synthetic 2 is
                // not flagged so its distance 0.0 does not count.
                CopiedTrain {
                    train: 4,
                    copies: 2,
                    best_synthetic: 1,
                    best_distance: 0.1
                },
                CopiedTrain {
                    train: 1,
                    copies: 2,
                    best_synthetic: 3,
                    best_distance: 0.3
                },
                CopiedTrain {
                    train: 0,
                    copies: 1,
                    best_synthetic: 4,
                    best_distance: 0.05
                },
            ]
        );
        assert_eq!(copy_counts(&nn, &flags, 5).unwrap(), vec![1, 2, 0, 0, 2]);
    }

    #[test]
    fn top_list_is_capped_and_fully_tied_order_is_by_index() {
        let nn = [3, 1, 2];
        let d1 = [0.5, 0.5, 0.5];
        let flags = [true; 3];
        let t = train_copied(&nn, &d1, &flags, 4, 2).unwrap();
        assert_eq!(t.count, 3);
        let order: Vec<usize> = t.top.iter().map(|c| c.train).collect();
        assert_eq!(order, vec![1, 2]);
        assert!(train_copied(&nn, &d1, &flags, 4, 0).unwrap().top.is_empty());
    }

    #[test]
    fn degenerate_inputs() {
        // No synthetic images, or none flagged.
        let t = train_copied(&[], &[], &[], 3, 5).unwrap();
        assert_eq!((t.count, t.fraction, t.top.len()), (0, 0.0, 0));
        let t = train_copied(&[0, 1], &[0.1, 0.2], &[false, false], 2, 5).unwrap();
        assert_eq!(t.count, 0);
        // n_train = 1, every synthetic image an exact copy of it.
        let t = train_copied(&[0, 0, 0], &[0.0; 3], &[true; 3], 1, 5).unwrap();
        assert_eq!((t.count, t.fraction, t.top[0].copies), (1, 1.0, 3));
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(
            train_copied(&[], &[], &[], 0, 5).unwrap_err(),
            Error::Empty {
                what: "training set"
            }
        );
        assert!(matches!(
            train_copied(&[0], &[0.1, 0.2], &[true], 2, 5),
            Err(Error::LengthMismatch { .. })
        ));
        assert!(matches!(
            train_copied(&[0], &[0.1], &[true, false], 2, 5),
            Err(Error::LengthMismatch { .. })
        ));
        assert_eq!(
            train_copied(&[0, 2], &[0.1, 0.2], &[true, true], 2, 5).unwrap_err(),
            Error::IndexOutOfRange {
                what: "nn_train",
                index: 1,
                value: 2,
                bound: 2
            }
        );
        assert!(matches!(
            train_copied(&[0], &[f64::NAN], &[true], 2, 5),
            Err(Error::InvalidDistance { .. })
        ));
        assert!(copy_counts(&[5], &[true], 2).is_err());
    }

    #[test]
    fn groups() {
        let g = group_fraction(&[0, 0, 1, 1, 2], &[true, true, false, true, false], 3).unwrap();
        assert_eq!(
            g,
            GroupCopied {
                n_groups: 3,
                count: 2,
                fraction: 2.0 / 3.0
            }
        );
        assert!(group_fraction(&[], &[], 3).is_err());
        assert!(group_fraction(&[0], &[true, false], 3).is_err());
        assert!(matches!(
            group_fraction(&[0, 3], &[true, false], 3),
            Err(Error::IndexOutOfRange { index: 1, .. })
        ));
        // One patient, nothing copied.
        assert_eq!(
            group_fraction(&[0; 4], &[false; 4], 1).unwrap().fraction,
            0.0
        );
    }

    #[test]
    fn fraction_is_a_probability() {
        let n_train = 50;
        let nn: Vec<usize> = (0..300).map(|s| (s * 7919) % n_train).collect();
        let d1: Vec<f64> = (0..300).map(|s| ((s * 31) % 17) as f64 / 17.0).collect();
        let flags: Vec<bool> = (0..300).map(|s| s % 3 == 0).collect();
        let t = train_copied(&nn, &d1, &flags, n_train, 5).unwrap();
        assert!((0.0..=1.0).contains(&t.fraction));
        let counts = copy_counts(&nn, &flags, n_train).unwrap();
        assert_eq!(counts.iter().filter(|&&c| c > 0).count() as u64, t.count);
        assert_eq!(counts.iter().sum::<u64>(), 100);
        for w in t.top.windows(2) {
            assert!(w[0].copies >= w[1].copies);
        }
    }
}
