//! Seeded k-means (Lloyd's algorithm with greedy k-means++ seeding), for the cells of C_T.
//!
//! - Seeding: greedy k-means++ (Arthur & Vassilvitskii 2007, with scikit-learn's
//!   `2 + ⌊ln k⌋` local trials per centre): the first centre is a uniform draw; each further
//!   centre is the best of a few candidates drawn with probability proportional to the squared
//!   distance to the nearest chosen centre, "best" meaning the smallest resulting potential.
//! - Lloyd iterations until no assignment changes or the centres move by a total squared
//!   distance of at most `10⁻⁴ ×` the mean per-coordinate variance (scikit-learn's `tol`), at
//!   most 100 iterations (scikit-learn allows 300; see `MAX_ITER`). A cluster that becomes empty
//!   is moved to the point farthest from its current centre (ties: lowest index), as
//!   scikit-learn does.
//! - `restarts` independent runs; run `i` draws from its own ChaCha8 stream `(seed, i)`, runs
//!   are evaluated in parallel and the lowest inertia wins (ties: lowest run index), so the
//!   result does not depend on the thread count.
//! - Assignment ties go to the lowest centre index. Distances are squared Euclidean in `f64`.
//!
//! Memory: the data (`N×d`), `k×d` centres and `N` labels; no `N×N` or `N×k` matrix.

use ndarray::{Array2, ArrayView1, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Lloyd iteration cap (scikit-learn: 300). Structureless embeddings can creep for hundreds of
/// iterations with no practical change of the cells; C_T only needs cells fitted on the training
/// set, not an optimal partition.
const MAX_ITER: usize = 100;

/// Fitted centres and the training labels.
#[derive(Debug, Clone)]
pub(crate) struct KMeans {
    /// Centres, `k×d`.
    pub centres: Array2<f64>,
    /// Sum of squared distances of the fitted points to their centres.
    pub inertia: f64,
}

pub(crate) fn sq_dist(a: ArrayView1<'_, f64>, b: ArrayView1<'_, f64>) -> f64 {
    match (a.as_slice(), b.as_slice()) {
        (Some(a), Some(b)) => sq_dist_slice(a, b),
        _ => a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum(),
    }
}

/// Squared Euclidean distance of two equal-length slices, in four independent partial sums
/// (fixed order, so the result is reproducible) for vectorization.
pub(crate) fn sq_dist_slice(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..4 {
            let d = x[l] - y[l];
            acc[l] += d * d;
        }
    }
    let mut tail = 0.0;
    for (x, y) in ra.iter().zip(rb) {
        tail += (x - y) * (x - y);
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

impl KMeans {
    /// Index of the nearest centre (ties: lowest index) and the squared distance to it.
    pub fn nearest(&self, x: ArrayView1<'_, f64>) -> (usize, f64) {
        let mut best = (0, f64::INFINITY);
        for (c, centre) in self.centres.outer_iter().enumerate() {
            let d = sq_dist(x, centre);
            if d < best.1 {
                best = (c, d);
            }
        }
        best
    }

    /// Labels of every row of `x`.
    pub fn predict(&self, x: ArrayView2<'_, f64>) -> Vec<usize> {
        (0..x.nrows())
            .into_par_iter()
            .map(|i| self.nearest(x.row(i)).0)
            .collect()
    }
}

/// Fits `k` centres to the rows of `x` (`k ≤ N`, `k ≥ 1`, `N ≥ 1`), best of `restarts` runs.
pub(crate) fn fit(x: ArrayView2<'_, f64>, k: usize, restarts: usize, seed: u64) -> KMeans {
    let runs: Vec<KMeans> = (0..restarts.max(1))
        .into_par_iter()
        .map(|run| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(run as u64);
            lloyd(x, plus_plus(x, k, &mut rng))
        })
        .collect();
    let mut best = 0;
    for (i, r) in runs.iter().enumerate() {
        if r.inertia < runs[best].inertia {
            best = i;
        }
    }
    runs.into_iter().nth(best).expect("at least one run")
}

/// Greedy k-means++ seeding.
fn plus_plus(x: ArrayView2<'_, f64>, k: usize, rng: &mut ChaCha8Rng) -> Array2<f64> {
    let n = x.nrows();
    let d = x.ncols();
    let trials = 2 + (k as f64).ln().floor() as usize;
    let mut centres = Array2::<f64>::zeros((k, d));
    let first = rng.random_range(0..n);
    centres.row_mut(0).assign(&x.row(first));
    let mut closest: Vec<f64> = (0..n).map(|i| sq_dist(x.row(i), x.row(first))).collect();
    for c in 1..k {
        let total: f64 = closest.iter().sum();
        let mut best: Option<(f64, usize, Vec<f64>)> = None;
        for _ in 0..trials {
            let cand = if total > 0.0 {
                let target = rng.random::<f64>() * total;
                let mut acc = 0.0;
                let mut pick = n - 1;
                for (i, &w) in closest.iter().enumerate() {
                    acc += w;
                    if acc > target {
                        pick = i;
                        break;
                    }
                }
                pick
            } else {
                rng.random_range(0..n)
            };
            let updated: Vec<f64> = (0..n)
                .map(|i| closest[i].min(sq_dist(x.row(i), x.row(cand))))
                .collect();
            let potential: f64 = updated.iter().sum();
            if best.as_ref().is_none_or(|b| potential < b.0) {
                best = Some((potential, cand, updated));
            }
        }
        let (_, cand, updated) = best.expect("at least one trial");
        centres.row_mut(c).assign(&x.row(cand));
        closest = updated;
    }
    centres
}

/// Lloyd iterations from the given centres.
fn lloyd(x: ArrayView2<'_, f64>, centres: Array2<f64>) -> KMeans {
    let (n, d) = x.dim();
    let k = centres.nrows();
    let mut model = KMeans {
        centres,
        inertia: 0.0,
    };
    let mut labels = vec![usize::MAX; n];
    let tol = 1e-4 * mean_variance(x);
    let norms: Vec<f64> = x.outer_iter().map(|r| r.dot(&r)).collect();
    for _ in 0..MAX_ITER {
        let assigned = assign_blocked(x, &norms, &model.centres);
        let changed = assigned.iter().zip(&labels).any(|(&(c, _), &old)| c != old);
        for (l, &(c, _)) in labels.iter_mut().zip(&assigned) {
            *l = c;
        }
        model.inertia = assigned.iter().map(|&(_, dist)| dist).sum();
        if !changed {
            break;
        }
        // New centres: means of their points, summed in index order.
        let mut sums = Array2::<f64>::zeros((k, d));
        let mut counts = vec![0usize; k];
        for (i, &c) in labels.iter().enumerate() {
            counts[c] += 1;
            let mut row = sums.row_mut(c);
            row += &x.row(i);
        }
        let mut far: Vec<(f64, usize)> = assigned
            .iter()
            .enumerate()
            .map(|(i, &(_, dist))| (dist, i))
            .collect();
        // Farthest first, ties by lowest index: candidates for empty clusters.
        far.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut next_far = 0;
        let before = model.centres.clone();
        for (c, &count) in counts.iter().enumerate() {
            if count > 0 {
                let mean = &sums.row(c) / count as f64;
                model.centres.row_mut(c).assign(&mean);
            } else if next_far < far.len() && far[next_far].0 > 0.0 {
                model.centres.row_mut(c).assign(&x.row(far[next_far].1));
                next_far += 1;
            }
        }
        let shift: f64 = before
            .outer_iter()
            .zip(model.centres.outer_iter())
            .map(|(a, b)| sq_dist(a, b))
            .sum();
        if shift <= tol {
            // Final assignment to the final centres.
            let assigned: Vec<f64> = (0..n)
                .into_par_iter()
                .map(|i| model.nearest(x.row(i)).1)
                .collect();
            model.inertia = assigned.iter().sum();
            break;
        }
    }
    model
}

/// Rows per block in [`assign_blocked`].
const ASSIGN_BLOCK: usize = 256;

/// Nearest centre of every row and the squared distance, through a blocked matrix product:
/// `‖x − c‖² = ‖x‖² − 2 x·c + ‖c‖²` (clamped at 0), `ASSIGN_BLOCK` rows at a time (memory
/// `ASSIGN_BLOCK × k`). Blocks run in parallel; each block's product has a fixed shape, so the
/// result does not depend on the thread count. Used inside Lloyd's loop only: final labels and
/// distances come from [`KMeans::nearest`], computed from differences.
fn assign_blocked(
    x: ArrayView2<'_, f64>,
    norms: &[f64],
    centres: &Array2<f64>,
) -> Vec<(usize, f64)> {
    let c_norms: Vec<f64> = centres.outer_iter().map(|c| c.dot(&c)).collect();
    let starts: Vec<usize> = (0..x.nrows()).step_by(ASSIGN_BLOCK).collect();
    let blocks: Vec<Vec<(usize, f64)>> = starts
        .par_iter()
        .map(|&start| {
            let end = (start + ASSIGN_BLOCK).min(x.nrows());
            let block = x.slice(ndarray::s![start..end, ..]);
            let g = block.dot(&centres.t());
            g.outer_iter()
                .enumerate()
                .map(|(r, row)| {
                    let mut best = (0, f64::INFINITY);
                    for (c, &dot) in row.iter().enumerate() {
                        let d = (norms[start + r] - 2.0 * dot + c_norms[c]).max(0.0);
                        if d < best.1 {
                            best = (c, d);
                        }
                    }
                    best
                })
                .collect()
        })
        .collect();
    blocks.into_iter().flatten().collect()
}

/// Mean over coordinates of the per-coordinate (population) variance.
fn mean_variance(x: ArrayView2<'_, f64>) -> f64 {
    let n = x.nrows() as f64;
    let d = x.ncols().max(1) as f64;
    x.columns()
        .into_iter()
        .map(|c| {
            let m = c.sum() / n;
            c.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n
        })
        .sum::<f64>()
        / d
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn separates_obvious_clusters_deterministically() {
        let x = array![
            [0.0, 0.0],
            [0.1, 0.0],
            [0.0, 0.1],
            [10.0, 10.0],
            [10.1, 10.0],
            [10.0, 10.1]
        ];
        let m = fit(x.view(), 2, 3, 42);
        let labels = m.predict(x.view());
        assert_eq!(labels[0], labels[1]);
        assert_eq!(labels[1], labels[2]);
        assert_eq!(labels[3], labels[4]);
        assert_ne!(labels[0], labels[3]);
        // Inertia: each cluster's points are at squared distance (1/30)² + ... from the mean.
        let per: f64 = [(0.0, 0.0), (0.1, 0.0), (0.0, 0.1)]
            .iter()
            .map(|&(a, b): &(f64, f64)| (a - 0.1 / 3.0).powi(2) + (b - 0.1 / 3.0).powi(2))
            .sum();
        assert!((m.inertia - 2.0 * per).abs() < 1e-9, "{}", m.inertia);
        let again = fit(x.view(), 2, 3, 42);
        assert_eq!(again.centres, m.centres);
    }

    #[test]
    fn duplicates_and_k_equal_n() {
        // Three distinct points, k = 3: every point its own centre, inertia 0.
        let x = array![[0.0], [0.0], [1.0], [5.0]];
        let m = fit(x.view(), 3, 2, 0);
        assert_eq!(m.inertia, 0.0);
        // All identical points, k = 2: no panic; one centre may stay duplicated.
        let same = array![[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]];
        let m = fit(same.view(), 2, 2, 0);
        assert_eq!(m.inertia, 0.0);
    }
}
