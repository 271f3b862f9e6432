//! Shared bench fixtures: seeded synthetic embeddings.
//!
//! - [`clustered_embeddings`]: L2-normalized vectors around random cluster centres, like the
//!   embeddings of a real image set (many near neighbours inside a cluster, few across);
//! - [`plant_near_copies`]: replaces rows of a query set by slightly perturbed copies of base
//!   rows, the memorization case the audit has to find.

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Roughly standard-normal sample (sum of four uniforms, variance 1): cheap and seeded.
fn gauss(rng: &mut ChaCha8Rng) -> f32 {
    (0..4).map(|_| rng.random_range(-1.0f32..1.0)).sum::<f32>() * 0.866_025_4
}

fn normalize_rows(x: &mut Array2<f32>) {
    for mut row in x.rows_mut() {
        let norm = row.dot(&row).sqrt().max(f32::MIN_POSITIVE);
        row /= norm;
    }
}

/// `n × d` L2-normalized vectors: `clusters` random unit centres (drawn first, from `seed`
/// alone, so that two sets with the same `seed` share their centres), each point a random
/// centre plus Gaussian noise of standard deviation `sigma` per coordinate, renormalized.
/// `point_seed` draws the points.
pub fn clustered_embeddings(
    n: usize,
    d: usize,
    clusters: usize,
    sigma: f32,
    seed: u64,
    point_seed: u64,
) -> Array2<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut centres = Array2::from_shape_simple_fn((clusters, d), || gauss(&mut rng));
    normalize_rows(&mut centres);
    let mut rng = ChaCha8Rng::seed_from_u64(point_seed);
    let mut x = Array2::zeros((n, d));
    for mut row in x.rows_mut() {
        let c = centres.row(rng.random_range(0..clusters));
        for (v, &cv) in row.iter_mut().zip(c) {
            *v = cv + sigma * gauss(&mut rng);
        }
    }
    normalize_rows(&mut x);
    x
}

/// Replaces `count` distinct rows of `queries` (chosen with `seed`) by copies of random rows of
/// `base` plus Gaussian noise of standard deviation `noise` per coordinate, renormalized.
/// Returns `(query row, base row)` pairs, ascending by query row.
pub fn plant_near_copies(
    queries: &mut Array2<f32>,
    base: &Array2<f32>,
    count: usize,
    noise: f32,
    seed: u64,
) -> Vec<(usize, usize)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut rows = rand::seq::index::sample(&mut rng, queries.nrows(), count).into_vec();
    rows.sort_unstable();
    let mut pairs = Vec::with_capacity(count);
    for r in rows {
        let src = rng.random_range(0..base.nrows());
        let mut row = queries.row_mut(r);
        for (v, &b) in row.iter_mut().zip(base.row(src)) {
            *v = b + noise * gauss(&mut rng);
        }
        let norm = row.dot(&row).sqrt().max(f32::MIN_POSITIVE);
        row /= norm;
        pairs.push((r, src));
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_and_normalized() {
        let a = clustered_embeddings(100, 8, 5, 0.05, 1, 2);
        assert_eq!(a, clustered_embeddings(100, 8, 5, 0.05, 1, 2));
        for row in a.rows() {
            assert!((row.dot(&row) - 1.0).abs() < 1e-5);
        }
        let mut q = clustered_embeddings(50, 8, 5, 0.05, 1, 3);
        let pairs = plant_near_copies(&mut q, &a, 10, 1e-3, 4);
        assert_eq!(pairs.len(), 10);
        for (r, s) in pairs {
            let diff = &q.row(r) - &a.row(s);
            assert!(diff.dot(&diff).sqrt() < 0.05);
        }
    }
}
