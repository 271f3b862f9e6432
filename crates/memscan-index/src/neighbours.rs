//! [`Neighbours`]: the result of a k-nearest-neighbour search.
//!
//! A dense `n_queries × k` table stored row-major in two flat vectors (base indices and true
//! Euclidean distances). Each row is sorted ascending by `(distance, index)`, so ties are broken
//! by the lower base index and the table is fully deterministic.

use serde::Serialize;

/// The `k` nearest base points of every query, row-major `n_queries × k`.
///
/// Row `i` holds the neighbours of query `i` in `indices[i*k..(i+1)*k]` and
/// `distances[i*k..(i+1)*k]`, ascending by `(distance, index)`: among equally distant base
/// points the lower index comes first. Distances are **true Euclidean distances** (never
/// squared), computed in `f64` from the `f32` input vectors; an exact duplicate has distance
/// exactly `0.0`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Neighbours {
    /// Number of neighbours per query (at least 1 for results of [`Index::search`](crate::Index::search)).
    pub k: usize,
    /// Base-point indices, row-major `n_queries × k`.
    pub indices: Vec<u32>,
    /// Euclidean distances (not squared), row-major `n_queries × k`, same layout as `indices`.
    pub distances: Vec<f64>,
}

impl Neighbours {
    /// An empty result (no queries) for `k` neighbours per query.
    pub fn empty(k: usize) -> Self {
        Self {
            k,
            indices: Vec::new(),
            distances: Vec::new(),
        }
    }

    /// Number of queries (rows). `0` if `k == 0`.
    pub fn len(&self) -> usize {
        self.indices.len().checked_div(self.k).unwrap_or(0)
    }

    /// `true` if there are no queries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `i`: the `k` base indices and distances of query `i`, ascending by `(distance, index)`.
    ///
    /// # Panics
    ///
    /// If `i >= self.len()`.
    pub fn row(&self, i: usize) -> (&[u32], &[f64]) {
        assert!(
            i < self.len(),
            "row {i} out of range for {} queries",
            self.len()
        );
        let r = i * self.k..(i + 1) * self.k;
        (&self.indices[r.clone()], &self.distances[r])
    }

    /// The nearest neighbour of query `i`: `(base index, Euclidean distance)`.
    ///
    /// # Panics
    ///
    /// If `i >= self.len()` (in particular if `k == 0`).
    pub fn nearest(&self, i: usize) -> (u32, f64) {
        let (idx, dist) = self.row(i);
        (idx[0], dist[0])
    }

    /// Iterator over the rows, as [`row`](Self::row) returns them.
    pub fn rows(&self) -> impl ExactSizeIterator<Item = (&[u32], &[f64])> + '_ {
        (0..self.len()).map(move |i| self.row(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_nearest() {
        let n = Neighbours {
            k: 2,
            indices: vec![3, 1, 0, 2],
            distances: vec![0.0, 1.5, 2.0, 2.0],
        };
        assert_eq!(n.len(), 2);
        assert!(!n.is_empty());
        assert_eq!(n.row(1), (&[0u32, 2][..], &[2.0, 2.0][..]));
        assert_eq!(n.nearest(0), (3, 0.0));
        assert_eq!(n.rows().count(), 2);
    }

    #[test]
    fn empty() {
        let n = Neighbours::empty(3);
        assert_eq!(n.len(), 0);
        assert!(n.is_empty());
        assert_eq!(Neighbours::empty(0).len(), 0);
    }

    #[test]
    #[should_panic(expected = "out of range")]
    fn row_out_of_range_panics() {
        Neighbours::empty(1).row(0);
    }
}
