//! [`ViewIndex`]: search over several views per base image, answering per image.
//!
//! Copy detection compares a query with each training image under a few transformations of
//! the training image (crops at several positions and scales, as multi-crop reference sets do
//! in copy-detection practice): a crop-resized copy lies close to the matching crop of its
//! source even when it is far from the whole image. The inner index holds `views · n` rows
//! laid out view-major: row `v·n + i` is view `v` of base image `i` (view 0 is usually the
//! image itself), so the owner of row `j` is `j mod n`.
//!
//! The distance from a query to base image `i` is the **minimum over its views**, and a search
//! returns the `k` nearest *images* under that distance, each once, rows ascending by
//! `(distance, image index)` like every [`Index`]. [`Exclude::SameIndex`] excludes every view of
//! image `i` from query `i`.
//!
//! Exactness: the inner index is asked for `k'` rows, starting at `(k + 1) · views`. Once the
//! `k'` rows contain `k` distinct admissible images whose `k`-th distance is strictly below
//! the `k'`-th row's distance (or `k'` covers the whole inner index), no image outside the list
//! can be nearer or tie: the answer is the exact per-image answer of the inner index. Rows for
//! which this does not hold yet are searched again with `k'` doubled.

use crate::{Error, Exclude, Index, IndexInfo, Neighbours};
use ndarray::{ArrayView2, Axis};

/// An [`Index`] over `views` views of each of `n` base images (see the module docs).
pub struct ViewIndex {
    inner: Box<dyn Index>,
    n: usize,
    views: usize,
}

impl ViewIndex {
    /// Wraps `inner`, whose `views · n` rows are view-major (row `v·n + i` is view `v` of
    /// image `i`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if `n` or `views` is 0 or `inner.len() != views · n`.
    pub fn new(inner: Box<dyn Index>, n: usize, views: usize) -> Result<Self, Error> {
        if n == 0 || views == 0 || n.checked_mul(views) != Some(inner.len()) {
            return Err(Error::InvalidConfig(
                "a view index needs views · n inner rows, with n ≥ 1 and views ≥ 1",
            ));
        }
        Ok(Self { inner, n, views })
    }

    /// Views per base image (including the image itself when the caller indexed it).
    pub fn views(&self) -> usize {
        self.views
    }

    /// The per-image answer for query `q` from `k'` inner rows, or `None` if the rows do not
    /// yet prove it (see the module docs).
    fn resolve(
        &self,
        idx: &[u32],
        dist: &[f64],
        k: usize,
        skip: Option<usize>,
        complete: bool,
    ) -> Option<Vec<(u32, f64)>> {
        // Rows ascend by distance, so images are found in order of their minimum distance;
        // past the k-th, only images at the k-th's distance are still taken (a tie there goes
        // to the lower image index, which may sit in a later row).
        let mut found: Vec<(u32, f64)> = Vec::with_capacity(k);
        for (&j, &d) in idx.iter().zip(dist) {
            if found.len() >= k && d > found[k - 1].1 {
                break;
            }
            let owner = j as usize % self.n;
            if Some(owner) == skip || found.iter().any(|f| f.0 as usize == owner) {
                continue;
            }
            found.push((owner as u32, d));
        }
        let last = *dist.last()?;
        let proven = found.len() >= k && (complete || found[k - 1].1 < last);
        if !proven {
            return None;
        }
        found.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        found.truncate(k);
        Some(found)
    }
}

impl Index for ViewIndex {
    fn len(&self) -> usize {
        self.n
    }

    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn search(
        &self,
        queries: ArrayView2<'_, f32>,
        k: usize,
        exclude: Exclude,
    ) -> Result<Neighbours, Error> {
        if k == 0 {
            return Err(Error::ZeroK);
        }
        let same = exclude == Exclude::SameIndex;
        if same && queries.nrows() != self.n {
            return Err(Error::ExcludeShape {
                queries: queries.nrows(),
                base: self.n,
            });
        }
        let available = if same { self.n - 1 } else { self.n };
        if k > available {
            return Err(Error::NotEnoughPoints { k, available });
        }
        let m = queries.nrows();
        let mut out: Vec<Option<Vec<(u32, f64)>>> = vec![None; m];
        let mut pending: Vec<usize> = (0..m).collect();
        let total = self.inner.len();
        let mut kp = ((k + 1) * self.views).min(total);
        while !pending.is_empty() {
            let sub = queries.select(Axis(0), &pending);
            let nn = self.inner.search(sub.view(), kp, Exclude::None)?;
            let complete = kp == total;
            let mut still = Vec::new();
            for (r, &q) in pending.iter().enumerate() {
                let (idx, dist) = nn.row(r);
                match self.resolve(idx, dist, k, same.then_some(q), complete) {
                    Some(found) => out[q] = Some(found),
                    None if complete => unreachable!("k ≤ available images, all rows searched"),
                    None => still.push(q),
                }
            }
            pending = still;
            kp = (kp * 2).min(total);
        }
        let mut result = Neighbours {
            k,
            indices: Vec::with_capacity(m * k),
            distances: Vec::with_capacity(m * k),
        };
        for row in out.into_iter().flatten() {
            for (j, d) in row {
                result.indices.push(j);
                result.distances.push(d);
            }
        }
        Ok(result)
    }

    fn info(&self) -> IndexInfo {
        let mut info = self.inner.info();
        info.n = self.n;
        info
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ExactIndex;
    use ndarray::{concatenate, Array2};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Per-image nearest neighbours by brute force: distance to image i = min over its views.
    fn brute(
        base: &Array2<f32>,
        n: usize,
        q: &Array2<f32>,
        k: usize,
        same: bool,
    ) -> Vec<Vec<(u32, f64)>> {
        q.rows()
            .into_iter()
            .enumerate()
            .map(|(qi, row)| {
                let mut best = vec![f64::INFINITY; n];
                for (j, b) in base.rows().into_iter().enumerate() {
                    let d = row
                        .iter()
                        .zip(b)
                        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
                        .sum::<f64>()
                        .sqrt();
                    best[j % n] = best[j % n].min(d);
                }
                let mut v: Vec<(u32, f64)> = best
                    .into_iter()
                    .enumerate()
                    .filter(|&(i, _)| !(same && i == qi))
                    .map(|(i, d)| (i as u32, d))
                    .collect();
                v.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
                v.truncate(k);
                v
            })
            .collect()
    }

    fn check(nn: &Neighbours, want: &[Vec<(u32, f64)>]) {
        assert_eq!(nn.len(), want.len());
        for (i, w) in want.iter().enumerate() {
            let (idx, dist) = nn.row(i);
            for (c, &(j, d)) in w.iter().enumerate() {
                assert_eq!(idx[c], j, "query {i}, neighbour {c}");
                assert!((dist[c] - d).abs() < 1e-5, "query {i}: {} vs {d}", dist[c]);
            }
        }
    }

    #[test]
    fn answers_per_image_with_the_minimum_over_views() {
        // Image 0 is far from the query, but its second view is right on it; image 1 is
        // nearer than image 0's first view.
        let base = ndarray::array![[10.0f32, 0.0], [2.0, 0.0], [0.5, 0.0], [9.0, 9.0]];
        let idx = ViewIndex::new(Box::new(ExactIndex::new(base.view()).unwrap()), 2, 2).unwrap();
        assert_eq!(idx.len(), 2);
        let q = ndarray::array![[0.0f32, 0.0]];
        let nn = idx.search(q.view(), 2, Exclude::None).unwrap();
        assert_eq!(nn.row(0).0, &[0, 1]);
        assert_eq!(nn.row(0).1, &[0.5, 2.0]);
        assert_eq!(idx.info().n, 2);
        // Errors: k beyond the images, wrong view count, shape of SameIndex.
        assert!(matches!(
            idx.search(q.view(), 3, Exclude::None),
            Err(Error::NotEnoughPoints { k: 3, available: 2 })
        ));
        assert!(matches!(
            idx.search(q.view(), 1, Exclude::SameIndex),
            Err(Error::ExcludeShape { .. })
        ));
        assert!(ViewIndex::new(Box::new(ExactIndex::new(base.view()).unwrap()), 3, 2).is_err());
    }

    #[test]
    fn a_tie_goes_to_the_lower_image_index_even_from_a_later_row() {
        // 4 images, 2 views: the query is at distance 1 from images 2 and 3 (both views) and
        // from image 0's second view (row 4). Rows in order of distance: 2, 3, 4, 6, 7: image 0
        // comes third, and again past the first k' = 4 rows when image 1 ties too.
        let base = ndarray::array![
            [5.0f32, 5.0],
            [9.0, 9.0],
            [1.0, 0.0],
            [0.0, 1.0],
            [-1.0, 0.0],
            [9.0, -9.0],
            [0.0, -1.0],
            [0.6, 0.8]
        ];
        let idx = ViewIndex::new(Box::new(ExactIndex::new(base.view()).unwrap()), 4, 2).unwrap();
        let q = ndarray::array![[0.0f32, 0.0]];
        let nn = idx.search(q.view(), 1, Exclude::None).unwrap();
        assert_eq!(nn.nearest(0), (0, 1.0));
        let nn = idx.search(q.view(), 2, Exclude::None).unwrap();
        assert_eq!(nn.row(0), (&[0u32, 2][..], &[1.0, 1.0][..]));
        // 6 images, 2 views: images 1–5 are at distance 1 in their first view (rows 1–5),
        // image 0 only in its second (row 6), past the first k' = 4 rows. A k-th distance
        // equal to the last row's proves nothing: the search widens and finds image 0.
        let mut base = ndarray::Array2::<f32>::from_elem((12, 3), 7.0);
        for r in 1..=6 {
            // ±e1, ±e2, ±e3: exactly at distance 1 from the origin.
            let mut unit = ndarray::Array1::<f32>::zeros(3);
            unit[(r - 1) % 3] = if r <= 3 { 1.0 } else { -1.0 };
            base.row_mut(r).assign(&unit);
        }
        let idx = ViewIndex::new(Box::new(ExactIndex::new(base.view()).unwrap()), 6, 2).unwrap();
        let q3 = ndarray::array![[0.0f32, 0.0, 0.0]];
        let nn = idx.search(q3.view(), 1, Exclude::None).unwrap();
        assert_eq!(nn.row(0), (&[0u32][..], &[1.0][..]));
    }

    #[test]
    fn matches_brute_force_with_many_views_ties_and_self_exclusion() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let (n, views, dim) = (40, 6, 5);
        // Views of an image cluster around it, so the k' start often fails and doubles.
        let centres = Array2::from_shape_fn((n, dim), |_| rng.random::<f32>());
        let mut parts = vec![centres.clone()];
        for _ in 1..views {
            parts.push(centres.mapv(|c| c + 0.05 * (rng.random::<f32>() - 0.5)));
        }
        let mut base =
            concatenate(Axis(0), &parts.iter().map(|p| p.view()).collect::<Vec<_>>()).unwrap();
        // Exact ties across images: image 3's view 2 equals image 5's view 0.
        let tie = base.row(5).to_owned();
        base.row_mut(2 * n + 3).assign(&tie);
        let exact = ExactIndex::new(base.view()).unwrap();
        let idx = ViewIndex::new(Box::new(exact), n, views).unwrap();
        let queries = Array2::from_shape_fn((25, dim), |_| rng.random::<f32>());
        for k in [1, 2, 7] {
            let nn = idx.search(queries.view(), k, Exclude::None).unwrap();
            check(&nn, &brute(&base, n, &queries, k, false));
        }
        // Against itself, excluding every view of the image: image 5 finds image 3 at 0.
        let nn = idx.search(centres.view(), 2, Exclude::SameIndex).unwrap();
        check(&nn, &brute(&base, n, &centres, 2, true));
        assert_eq!(nn.nearest(5), (3, 0.0));
        // The tie at distance 0 for a query on image 5: images 3 and 5, lower index first.
        let on5 = centres.select(Axis(0), &[5]);
        let nn = idx.search(on5.view(), 2, Exclude::None).unwrap();
        assert_eq!(nn.row(0).0, &[3, 5]);
    }
}
