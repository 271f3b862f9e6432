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

#[cfg(test)]
mod tests {
    use super::*;

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
