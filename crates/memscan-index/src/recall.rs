//! Recall of an approximate index against an exact one ([`verify_recall`]).
//!
//! - recall@1: the fraction of queries whose first returned neighbour is a true nearest
//!   neighbour: the same index as the exact search's first, or any point at the same distance
//!   (a tie is a hit);
//! - recall@k: the fraction of the `n·k` returned neighbours that belong to the true top-k set,
//!   where again any point no farther than the true k-th neighbour counts (ties are hits).
//!
//! Distances of the two indexes are compared with a relative tolerance of `1e-12` (both
//! memscan indexes compute them with the same exact `f64` code, so they agree bit for bit).

use ndarray::{ArrayView2, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::{Error, Exclude, Index};

/// Result of [`verify_recall`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Recall {
    /// Number of queries evaluated.
    pub n: usize,
    /// Number of neighbours per query.
    pub k: usize,
    /// Fraction of queries whose first neighbour is a true nearest neighbour (ties count).
    pub at_1: f64,
    /// Fraction of returned neighbours within the true top-k (ties count).
    pub at_k: f64,
}

/// `a` is no farther than `b`, up to a relative `1e-12`.
fn within(a: f64, b: f64) -> bool {
    a <= b * (1.0 + 1e-12)
}

/// Recall of `approx` against `exact` on `n` queries drawn without replacement from `queries`
/// (`m × D`; all of them if `n >= m`) with a `ChaCha8Rng` seeded by `seed`, for `k` neighbours.
///
/// # Errors
///
/// [`Error::InvalidConfig`] if the two indexes differ in size or dimension or no query is
/// drawn (`n == 0` or `m == 0`); any error of the two searches.
///
/// # Example
///
/// ```
/// use memscan_index::{verify_recall, ExactIndex, HnswConfig, HnswIndex};
/// use ndarray::Array2;
///
/// let base = Array2::from_shape_fn((500, 4), |(i, j)| ((i * 7 + j * 13) % 31) as f32);
/// let exact = ExactIndex::new(base.view())?;
/// let hnsw = HnswIndex::build(base.view(), &HnswConfig::default())?;
/// let r = verify_recall(&hnsw, &exact, base.view(), 100, 3, 0)?;
/// assert_eq!((r.n, r.k), (100, 3));
/// assert!(r.at_1 >= 0.99);
/// # Ok::<(), memscan_index::Error>(())
/// ```
pub fn verify_recall(
    approx: &dyn Index,
    exact: &dyn Index,
    queries: ArrayView2<'_, f32>,
    n: usize,
    k: usize,
    seed: u64,
) -> Result<Recall, Error> {
    if (approx.len(), approx.dim()) != (exact.len(), exact.dim()) {
        return Err(Error::InvalidConfig(
            "recall: the two indexes hold different numbers or dimensions of points",
        ));
    }
    let m = queries.nrows();
    let n = n.min(m);
    if n == 0 {
        return Err(Error::InvalidConfig("recall: no query to evaluate"));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut rows = rand::seq::index::sample(&mut rng, m, n).into_vec();
    rows.sort_unstable();
    let sample = queries.select(Axis(0), &rows);
    let a = approx.search(sample.view(), k, Exclude::None)?;
    let e = exact.search(sample.view(), k, Exclude::None)?;
    let (mut hits1, mut hitsk) = (0usize, 0usize);
    for ((ai, ad), (ei, ed)) in a.rows().zip(e.rows()) {
        if ai[0] == ei[0] || within(ad[0], ed[0]) {
            hits1 += 1;
        }
        let kth = ed[k - 1];
        hitsk += ai
            .iter()
            .zip(ad)
            .filter(|&(i, &d)| ei.contains(i) || within(d, kth))
            .count();
    }
    Ok(Recall {
        n,
        k,
        at_1: hits1 as f64 / n as f64,
        at_k: hitsk as f64 / (n * k) as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ExactIndex, IndexInfo, Neighbours};
    use ndarray::{array, Array2};

    /// Returns fixed neighbours for every query: `idx` at `dist`.
    struct Fixed {
        n: usize,
        idx: Vec<u32>,
        dist: Vec<f64>,
    }

    impl Index for Fixed {
        fn len(&self) -> usize {
            self.n
        }
        fn dim(&self) -> usize {
            1
        }
        fn search(
            &self,
            q: ArrayView2<'_, f32>,
            k: usize,
            _: Exclude,
        ) -> Result<Neighbours, Error> {
            Ok(Neighbours {
                k,
                indices: self.idx[..k].repeat(q.nrows()),
                distances: self.dist[..k].repeat(q.nrows()),
            })
        }
        fn info(&self) -> IndexInfo {
            unimplemented!()
        }
    }

    #[test]
    fn exact_against_itself_is_perfect() {
        let base = Array2::from_shape_fn((50, 3), |(i, j)| (i * 3 + j) as f32);
        let exact = ExactIndex::new(base.view()).unwrap();
        let r = verify_recall(&exact, &exact, base.view(), 20, 4, 1).unwrap();
        assert_eq!(
            r,
            Recall {
                n: 20,
                k: 4,
                at_1: 1.0,
                at_k: 1.0
            }
        );
        // n larger than the query set: all queries.
        assert_eq!(
            verify_recall(&exact, &exact, base.view(), 500, 1, 1)
                .unwrap()
                .n,
            50
        );
    }

    #[test]
    fn misses_and_ties() {
        // Base on a line: 0, 1, 1, 5. Query 0: true top-2 = {0 (d 0), 1 or 2 (d 1)}.
        let base = array![[0.0f32], [1.0], [1.0], [5.0]];
        let exact = ExactIndex::new(base.view()).unwrap();
        let q = array![[0.0f32]];
        // Point 2 (a tie of point 1) second: full recall. 1 then 3: first wrong, half the set.
        for (idx, dist, want) in [
            (vec![0, 2], vec![0.0, 1.0], (1.0, 1.0)),
            (vec![1, 3], vec![1.0, 5.0], (0.0, 0.5)),
        ] {
            let answer = Fixed { n: 4, idx, dist };
            let r = verify_recall(&answer, &exact, q.view(), 1, 2, 0).unwrap();
            assert_eq!((r.at_1, r.at_k), want);
        }
        let tie = Fixed {
            n: 4,
            idx: vec![0, 2],
            dist: vec![0.0, 1.0],
        };
        // Size mismatch and no queries are errors.
        let small = Fixed {
            n: 3,
            idx: vec![0],
            dist: vec![0.0],
        };
        assert!(verify_recall(&small, &exact, q.view(), 1, 1, 0).is_err());
        assert!(verify_recall(&tie, &exact, q.view(), 0, 1, 0).is_err());
    }
}
