//! Seeded, balanced choice of members and non-members for membership inference.
//!
//! DESIGN.md metric 8 evaluates attacks on a balanced set: `m = min(n_train, n_holdout)`
//! training images (members) and `m` holdout images (non-members), so that AUC, balanced
//! accuracy and TPR at low FPR are not driven by the class ratio. The choice is a uniform
//! sample without replacement from each set, drawn from one `ChaCha8Rng` seeded with `seed`
//! (first the training indices, then the holdout indices), so it is reproducible across
//! platforms and thread counts. Derive `seed` from the audit seed and a stage constant.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// `(train_indices, holdout_indices)`: `m = min(n_train, n_holdout)` distinct indices into each
/// set, each list sorted ascending.
///
/// The larger set is subsampled; the smaller is taken whole. Either set empty gives two empty
/// lists.
///
/// # Example
/// ```
/// use memscan_metrics::mia::sample::balanced_members;
/// let (train, holdout) = balanced_members(10, 3, 42);
/// assert_eq!(holdout, [0, 1, 2]); // the smaller set is taken whole
/// assert_eq!(train.len(), 3);
/// assert!(train.windows(2).all(|w| w[0] < w[1]) && train.iter().all(|&i| i < 10));
/// assert_eq!(balanced_members(10, 3, 42), (train, holdout)); // same seed, same sample
/// ```
pub fn balanced_members(n_train: usize, n_holdout: usize, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let m = n_train.min(n_holdout);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut draw = |n: usize| {
        let mut v = rand::seq::index::sample(&mut rng, n, m).into_vec();
        v.sort_unstable();
        v
    };
    let train = draw(n_train);
    let holdout = draw(n_holdout);
    (train, holdout)
}

/// Whole patients for a patient-level attack: `(member images, non-member images)`, each the
/// complete image lists of `m = min(#member patients, #non-member patients)` patients.
///
/// `member_groups[i]` is the patient of member candidate `i` (e.g. every training image), and
/// `nonmember_groups[i]` that of non-member candidate `i`. A patient's score is the maximum over
/// its images, and a maximum over more images is larger by chance alone; so a patient is never
/// cut to some of its images, and the two classes are balanced by *patient*. The larger class's
/// patients are a uniform sample without replacement (one `ChaCha8Rng` seeded with `seed`,
/// member patients first), the smaller class is taken whole. Returned indices are sorted
/// ascending. The groups of the two classes must be disjoint (a patient on both sides is a
/// leak that the caller reports); this function does not check it.
///
/// # Example
/// ```
/// use memscan_metrics::mia::sample::balanced_patients;
/// // Members: patients 1 (images 0, 1), 2 (image 2), 3 (images 3, 4, 5).
/// // Non-members: patients 7 (images 0, 1) and 8 (image 2).
/// let (mem, non) = balanced_patients(&[1, 1, 2, 3, 3, 3], &[7, 7, 8], 0);
/// assert_eq!(non, [0, 1, 2]); // both non-member patients, whole
/// // Two of the three member patients, each with all of its images.
/// assert!([vec![0, 1, 2], vec![0, 1, 3, 4, 5], vec![2, 3, 4, 5]].contains(&mem));
/// ```
pub fn balanced_patients(
    member_groups: &[u32],
    nonmember_groups: &[u32],
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    let by_patient = |groups: &[u32]| {
        let mut by: std::collections::BTreeMap<u32, Vec<usize>> = Default::default();
        for (i, &g) in groups.iter().enumerate() {
            by.entry(g).or_default().push(i);
        }
        by.into_values().collect::<Vec<_>>()
    };
    let (mem, non) = (by_patient(member_groups), by_patient(nonmember_groups));
    let (pick_mem, pick_non) = balanced_members(mem.len(), non.len(), seed);
    let images = |patients: &[Vec<usize>], pick: Vec<usize>| {
        let mut v: Vec<usize> = pick.into_iter().flat_map(|p| patients[p].clone()).collect();
        v.sort_unstable();
        v
    };
    (images(&mem, pick_mem), images(&non, pick_non))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patients_are_whole_and_balanced_by_patient() {
        // 6 member patients with 1..=6 images each (21 images), 4 non-member patients with
        // 3 images each.
        let mem_g: Vec<u32> = (0..6u32).flat_map(|p| vec![p; p as usize + 1]).collect();
        let non_g: Vec<u32> = (0..4u32).flat_map(|p| vec![100 + p; 3]).collect();
        for seed in 0..50 {
            let (m, n) = balanced_patients(&mem_g, &non_g, seed);
            assert_eq!(n, (0..12).collect::<Vec<_>>(), "smaller side whole");
            let picked: std::collections::BTreeSet<u32> = m.iter().map(|&i| mem_g[i]).collect();
            assert_eq!(picked.len(), 4, "4 member patients");
            // Every picked patient with all of its images, nothing else.
            let want: Vec<usize> = (0..mem_g.len())
                .filter(|&i| picked.contains(&mem_g[i]))
                .collect();
            assert_eq!(m, want);
        }
        assert_eq!(
            balanced_patients(&mem_g, &non_g, 3),
            balanced_patients(&mem_g, &non_g, 3)
        );
        // Unordered group ids and an empty side.
        let (m, n) = balanced_patients(&[5, 9, 5], &[], 1);
        assert!(m.is_empty() && n.is_empty());
        let (m, n) = balanced_patients(&[5, 9, 5], &[4, 4], 1);
        assert_eq!(n, [0, 1]);
        assert!(m == [0, 2] || m == [1], "{m:?}");
    }

    #[test]
    fn sizes_and_ranges() {
        for (nt, nh) in [
            (0, 5),
            (5, 0),
            (1, 1),
            (7, 7),
            (100, 30),
            (30, 100),
            (5000, 4999),
        ] {
            let (t, h) = balanced_members(nt, nh, 9);
            let m = nt.min(nh);
            assert_eq!((t.len(), h.len()), (m, m));
            assert!(t.windows(2).all(|w| w[0] < w[1]));
            assert!(h.windows(2).all(|w| w[0] < w[1]));
            assert!(t.iter().all(|&i| i < nt) && h.iter().all(|&i| i < nh));
        }
        // Equal sizes: both taken whole.
        let (t, h) = balanced_members(4, 4, 1);
        assert_eq!((t, h), (vec![0, 1, 2, 3], vec![0, 1, 2, 3]));
    }

    #[test]
    fn deterministic_per_seed() {
        let a = balanced_members(1000, 100, 123);
        assert_eq!(a, balanced_members(1000, 100, 123));
        assert_ne!(a.0, balanced_members(1000, 100, 124).0);
    }

    #[test]
    fn roughly_uniform() {
        // Each of 10 training indices is picked with probability 1/2; over 2000 seeds each
        // count should be near 1000 (binomial sd ≈ 22).
        let mut counts = [0u32; 10];
        for seed in 0..2000 {
            for i in balanced_members(10, 5, seed).0 {
                counts[i] += 1;
            }
        }
        assert!(
            counts.iter().all(|&c| (880..=1120).contains(&c)),
            "{counts:?}"
        );
    }
}
