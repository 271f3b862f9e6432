//! Exact k-nearest-neighbour search by blocked matrix products ([`ExactIndex`]).
//!
//! # Algorithm
//!
//! For queries `Q` (`m × D`) and base `B` (`N × D`), the squared Euclidean distance is
//! `‖q − b‖² = ‖q‖² + ‖b‖² − 2 q·b`, so all dot products of a block of queries with a block of
//! base points are one matrix product. The search
//!
//! 1. splits the queries into blocks of [`ExactConfig::query_block`] rows and processes the
//!    blocks in parallel with rayon (each block's result depends only on its own rows, and the
//!    results are concatenated in query order);
//! 2. for each query block, walks the base in blocks of [`ExactConfig::base_block`] rows, computes
//!    the `query_block × base_block` tile `−2 Q Bᵀ` with the `gemm` crate in `f32`
//!    (`Parallelism::None`, so a tile never depends on the thread count) and turns it into
//!    approximate squared distances `‖q‖² + ‖b‖² − 2 q·b`. Only one tile per worker exists at a
//!    time: memory is `O((N + m) D)` for the data plus `O(threads · query_block · base_block)`,
//!    never `N × N`;
//! 3. feeds every approximate distance that passes a per-query threshold into a bounded candidate
//!    list (a sorted array of at least `k + margin` entries, see below);
//! 4. re-ranks the candidates exactly: each candidate's squared distance is recomputed in `f64`
//!    from the raw `f32` vectors, candidates are sorted by `(distance, index)` and the first `k`
//!    are returned with distance `sqrt(d²)`. Distances are therefore exact (an exact duplicate is
//!    at `0.0`, not at `1e-4` of cancellation noise) and ties go to the lower base index.
//!
//! # Why no true neighbour is lost
//!
//! For one pair, the `f32` value `‖q‖² + ‖b‖² − 2 q·b` differs from the true squared distance by
//! at most `δ ≈ (D + 5) u (‖q‖² + ‖b‖²)` (`u = 2⁻²⁴`; standard bound for a dot product of length
//! `D` in any summation order, with or without FMA, plus the rounding of the norms and of the two
//! additions; `2|q·b| ≤ ‖q‖² + ‖b‖²`). The index uses, per query,
//! `δ_q = (D + 16) · 2⁻²³ · (‖q‖² + max_b ‖b‖²)` plus a tiny absolute term for subnormals, about
//! twice the bound. A candidate list keeps every point whose approximate distance is within
//! `2δ_q` of the current k-th smallest approximate distance, and never fewer than `k + margin`
//! points. A dropped point is then strictly farther than `k` kept points, so the exact top-k is
//! always among the candidates. For L2-normalized 128-d embeddings `2δ_q ≈ 7·10⁻⁵` in squared
//! distance: wide enough to be safe, narrow enough that a list rarely holds more than
//! `k + margin` entries. The band alone is the exactness guarantee; the extra margin
//! ([`ExactConfig::margin`], default 2) is cheap insurance against a kernel that would not follow
//! the error model. It is not free: every extra slot adds insertions to every row's list (at
//! `k = 2`, `N = 10k`, `D = 128`, profiled: margin 8 costs about 7 % more time than margin 0,
//! margin 2 about 1–2 %).
//! Only candidates within the band are re-ranked, so the margin adds no `f64` work.
//!
//! Limits: the band is proportional to `D` and to the squared norms, so with very long vectors
//! relative to their distances (e.g. un-normalized 4096-d pixel vectors whose neighbours are all
//! nearly equidistant) many points may fall inside it. The list then grows; when it exceeds
//! [`ExactConfig::max_candidates`] it is compacted by computing the exact distances of its
//! entries and keeping the exact top-k, which bounds memory and keeps the result exact at the
//! cost of `f64` work (at worst like a naive search for that query). Squared norms above
//! `f32::MAX / 16` are rejected ([`Error::NormTooLarge`]) so the `f32` arithmetic cannot
//! overflow.
//!
//! # Determinism
//!
//! The blocking depends only on the configuration and the number of queries, never on the thread
//! count; each tile is computed single-threaded; the result is an exact function of the inputs.
//! Results are bitwise identical for any `RAYON_NUM_THREADS` or pool size.

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::candidates::{f32_round_up, Candidates};
use crate::error::{Error, Role};
use crate::{Exclude, Index, IndexInfo, IndexParameters, Neighbours};

/// Largest supported squared norm of a base or query vector: keeps every intermediate of the
/// `f32` distance computation (at most `2 (‖q‖² + ‖b‖²)`) finite.
pub const MAX_NORM2: f64 = f32::MAX as f64 / 16.0;

/// Number of query blocks a search aims for at least (so that small query sets still use all
/// cores); a function of the query count only, never of the thread count.
const MIN_QUERY_TASKS: usize = 8;

/// Block sizes and candidate-list parameters of [`ExactIndex`].
///
/// None of these change the results (which are exact); they trade speed and memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExactConfig {
    /// Maximum number of query rows per parallel task (default 256). Small query sets are split
    /// into at least 8 blocks of at least 16 rows.
    pub query_block: usize,
    /// Number of base rows per matrix-product tile (default 1024). A worker holds one
    /// `query_block × base_block` `f32` tile (1 MiB with the defaults).
    pub base_block: usize,
    /// Candidates kept per query beyond `k`, in addition to the rounding band (default 2). Not
    /// needed for exactness (the band is); see the [module docs](self).
    pub margin: usize,
    /// A query's candidate list is compacted (exact re-rank of its entries, keeping `k`) when it
    /// grows beyond `max(max_candidates, 2 (k + margin))` entries (default 512).
    pub max_candidates: usize,
}

impl Default for ExactConfig {
    fn default() -> Self {
        Self {
            query_block: 256,
            base_block: 1024,
            margin: 2,
            max_candidates: 512,
        }
    }
}

impl ExactConfig {
    fn validate(&self) -> Result<(), Error> {
        if self.query_block == 0 {
            return Err(Error::InvalidConfig("query_block must be at least 1"));
        }
        if self.base_block == 0 {
            return Err(Error::InvalidConfig("base_block must be at least 1"));
        }
        Ok(())
    }
}

/// Exact k-NN index: a contiguous row-major copy of the base vectors and their squared norms.
///
/// Build with [`ExactIndex::new`] (default [`ExactConfig`]) or [`ExactIndex::with_config`];
/// search through the [`Index`] trait. See the [module docs](self) for the algorithm.
#[derive(Clone)]
pub struct ExactIndex {
    /// `N × D`, standard (row-major, contiguous) layout.
    base: Array2<f32>,
    /// `‖b‖²` per base row, computed in `f64` and rounded to `f32`.
    norms: Vec<f32>,
    /// `max_b ‖b‖²` (0 for an empty base).
    max_norm2: f32,
    config: ExactConfig,
}

impl std::fmt::Debug for ExactIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExactIndex")
            .field("n", &self.len())
            .field("dim", &self.dim())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ExactIndex {
    /// Builds an index over `base` (`N × D`, one point per row) with the default configuration.
    ///
    /// # Errors
    ///
    /// [`Error::ZeroDimension`] if `D == 0`, [`Error::NonFinite`] for a NaN or infinite value,
    /// [`Error::NormTooLarge`] if a squared norm exceeds [`MAX_NORM2`],
    /// [`Error::TooManyPoints`] if `N > u32::MAX`.
    pub fn new(base: ArrayView2<'_, f32>) -> Result<Self, Error> {
        Self::with_config(base, ExactConfig::default())
    }

    /// Builds an index over `base` (`N × D`) with `config`. Copies the base into contiguous
    /// row-major storage (any input layout is accepted).
    ///
    /// # Errors
    ///
    /// As [`ExactIndex::new`], plus [`Error::InvalidConfig`] for a zero block size.
    pub fn with_config(base: ArrayView2<'_, f32>, config: ExactConfig) -> Result<Self, Error> {
        config.validate()?;
        let (n, d) = base.dim();
        if d == 0 {
            return Err(Error::ZeroDimension { role: Role::Base });
        }
        if n > u32::MAX as usize {
            return Err(Error::TooManyPoints { n });
        }
        let base = base.as_standard_layout().into_owned();
        let norms = squared_norms(
            base.as_slice().expect("standard layout is contiguous"),
            d,
            Role::Base,
        )?;
        let max_norm2 = norms.iter().copied().fold(0.0f32, f32::max);
        Ok(Self {
            base,
            norms,
            max_norm2,
            config,
        })
    }

    /// The configuration the index was built with.
    pub fn config(&self) -> &ExactConfig {
        &self.config
    }

    /// The indexed vectors, `N × D`.
    pub fn base(&self) -> ArrayView2<'_, f32> {
        self.base.view()
    }

    fn base_slice(&self) -> &[f32] {
        self.base.as_slice().expect("standard layout is contiguous")
    }

    /// Query rows per parallel task for `nq` queries: at most `query_block`, and small enough to
    /// give [`MIN_QUERY_TASKS`] tasks when there are enough queries (multiples of 16 rows).
    fn query_block_for(&self, nq: usize) -> usize {
        let per_task = nq.div_ceil(MIN_QUERY_TASKS).next_multiple_of(16);
        self.config.query_block.min(per_task.max(16))
    }

    /// Searches one block of queries. `q`: `mq × D` row-major; `qn`: their squared norms;
    /// `q0`: global index of the block's first query. Returns `mq × k` indices and distances.
    fn search_block(
        &self,
        q: &[f32],
        qn: &[f32],
        q0: usize,
        k: usize,
        exclude: Exclude,
    ) -> (Vec<u32>, Vec<f64>) {
        let d = self.dim();
        let n = self.len();
        let mq = qn.len();
        let base = self.base_slice();
        let bb = self.config.base_block.min(n);
        let mut tile = vec![0.0f32; mq * bb];

        let band_scale = (d as f64 + 16.0) * f64::powi(2.0, -23);
        let band_abs = (d as f64 + 16.0) * f32::MIN_POSITIVE as f64;
        let mut cands: Vec<Candidates> = qn
            .iter()
            .map(|&qn| {
                let delta = band_scale * (qn as f64 + self.max_norm2 as f64) + band_abs;
                let band = f32_round_up(2.0 * delta);
                Candidates::new(k, self.config.margin, self.config.max_candidates, band)
            })
            .collect();

        let mut b0 = 0;
        while b0 < n {
            let nb = bb.min(n - b0);
            let tile = &mut tile[..mq * nb];
            let rhs = &base[b0 * d..(b0 + nb) * d];
            // SAFETY: dst is mq × nb row-major (row stride nb) inside `tile`; lhs is q, mq × D
            // row-major (row stride D); rhs is Bᵀ for the base rows b0..b0+nb, D × nb with
            // element (p, j) at j·D + p inside `rhs`. All three are valid, distinct allocations
            // of exactly the sizes addressed, and dst is not read (read_dst = false).
            unsafe {
                gemm::gemm(
                    mq,
                    nb,
                    d,
                    tile.as_mut_ptr(),
                    1,
                    nb as isize,
                    false,
                    q.as_ptr(),
                    1,
                    d as isize,
                    rhs.as_ptr(),
                    d as isize,
                    1,
                    0.0f32,
                    -2.0f32,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
            let ctx = TileCtx {
                q,
                qn,
                base,
                bn: &self.norms[b0..b0 + nb],
                d,
                q0,
                b0,
                exclude,
            };
            scan_tile(tile, &ctx, &mut cands);
            b0 += nb;
        }

        let mut indices = Vec::with_capacity(mq * k);
        let mut distances = Vec::with_capacity(mq * k);
        for (i, cand) in cands.into_iter().enumerate() {
            let qrow = &q[i * d..(i + 1) * d];
            let top = cand
                .finish(|j| squared_distance(qrow, &base[j as usize * d..(j as usize + 1) * d]));
            debug_assert_eq!(top.len(), k);
            for (d2, j) in top {
                indices.push(j);
                distances.push(d2.sqrt());
            }
        }
        (indices, distances)
    }
}

/// What [`scan_tile`] needs besides the tile: the query block (`q`, `mq × D`, with squared
/// norms `qn`), the whole base (`base`, `N × D`), the squared norms `bn` of the tile's base rows
/// `b0..b0 + nb`, and the global index `q0` of the block's first query.
struct TileCtx<'a> {
    q: &'a [f32],
    qn: &'a [f32],
    base: &'a [f32],
    bn: &'a [f32],
    d: usize,
    q0: usize,
    b0: usize,
    exclude: Exclude,
}

/// Feeds a tile (`mq × nb` row-major, `tile[i·nb + j] = −2 q_i·b_{b0+j}`) into the candidate
/// lists, one per query row. Uses an AVX2 build of the same code when the CPU has it; the
/// arithmetic (two `f32` additions and a comparison per element) is the same either way.
fn scan_tile(tile: &[f32], ctx: &TileCtx<'_>, cands: &mut [Candidates]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        unsafe { scan_tile_avx2(tile, ctx, cands) };
        return;
    }
    scan_tile_generic(tile, ctx, cands);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn scan_tile_avx2(tile: &[f32], ctx: &TileCtx<'_>, cands: &mut [Candidates]) {
    scan_tile_generic(tile, ctx, cands);
}

#[inline(always)]
fn scan_tile_generic(tile: &[f32], ctx: &TileCtx<'_>, cands: &mut [Candidates]) {
    let (d, nb) = (ctx.d, ctx.bn.len());
    for (i, (row, cand)) in tile.chunks_exact(nb).zip(cands.iter_mut()).enumerate() {
        let excluded = match ctx.exclude {
            Exclude::None => u32::MAX,
            Exclude::SameIndex => (ctx.q0 + i) as u32,
        };
        let qrow = &ctx.q[i * d..(i + 1) * d];
        let base = ctx.base;
        scan_row(row, ctx.qn[i], ctx.bn, ctx.b0, excluded, cand, |j| {
            squared_distance(qrow, &base[j as usize * d..(j as usize + 1) * d])
        });
    }
}

/// Feeds one tile row into a candidate list. `row[j] = −2 q·b` for base point `b0 + j`; `qn`,
/// `bn[j]`: squared norms; `excluded`: a base index never to return (`u32::MAX` for none).
#[inline(always)]
fn scan_row(
    row: &[f32],
    qn: f32,
    bn: &[f32],
    b0: usize,
    excluded: u32,
    cand: &mut Candidates,
    exact: impl Fn(u32) -> f64 + Copy,
) {
    const LANES: usize = 16;
    let mut thr = cand.threshold();
    // The rare path: a key passed the threshold.
    let mut accept = |key: f32, j: usize, thr: &mut f32| {
        let idx = (b0 + j) as u32;
        if idx != excluded {
            cand.push(key, idx, exact);
            *thr = cand.threshold();
        }
    };
    let full = row.len() / LANES * LANES;
    for (c, (t, b)) in row[..full]
        .chunks_exact(LANES)
        .zip(bn[..full].chunks_exact(LANES))
        .enumerate()
    {
        // Branch-free test of the whole chunk first: almost no chunk holds a candidate.
        let mut keys = [0.0f32; LANES];
        let mut any = false;
        for l in 0..LANES {
            keys[l] = qn + b[l] + t[l];
            any |= keys[l] <= thr;
        }
        if any {
            for (l, &key) in keys.iter().enumerate() {
                if key <= thr {
                    accept(key, c * LANES + l, &mut thr);
                }
            }
        }
    }
    for j in full..row.len() {
        let key = qn + bn[j] + row[j];
        if key <= thr {
            accept(key, j, &mut thr);
        }
    }
}

/// Exact squared Euclidean distance of two `f32` vectors, accumulated in `f64` in a fixed order.
///
/// The one exact distance of the crate: every distance an index returns is `sqrt` of this.
pub(crate) fn squared_distance(a: &[f32], b: &[f32]) -> f64 {
    let mut acc = [0.0f64; 4];
    let (ac, ar) = a.split_at(a.len() / 4 * 4);
    let (bc, br) = b.split_at(ac.len());
    for (x, y) in ac.chunks_exact(4).zip(bc.chunks_exact(4)) {
        for l in 0..4 {
            let t = x[l] as f64 - y[l] as f64;
            acc[l] += t * t;
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (&x, &y) in ar.iter().zip(br) {
        let t = x as f64 - y as f64;
        s += t * t;
    }
    s
}

/// Squared norms of the rows of `data` (`n × d` row-major), in `f64` rounded to `f32`, after
/// checking every value is finite and every squared norm is at most [`MAX_NORM2`].
/// The first offending row (in row order) is reported.
pub(crate) fn squared_norms(data: &[f32], d: usize, role: Role) -> Result<Vec<f32>, Error> {
    let norms: Vec<f64> = data
        .par_chunks(d)
        .map(|r| r.iter().map(|&x| x as f64 * x as f64).sum::<f64>())
        .collect();
    // A sum of squares of finite f32 values in f64 cannot overflow, so a non-finite norm means a
    // non-finite value in the row.
    norms
        .iter()
        .enumerate()
        .map(|(row, &n2)| {
            if !n2.is_finite() {
                let r = &data[row * d..(row + 1) * d];
                let column = r.iter().position(|x| !x.is_finite()).unwrap_or(0);
                Err(Error::NonFinite {
                    role,
                    row,
                    column,
                    value: r[column],
                })
            } else if n2 > MAX_NORM2 {
                Err(Error::NormTooLarge {
                    role,
                    row,
                    norm2: n2,
                    limit: MAX_NORM2,
                })
            } else {
                Ok(n2 as f32)
            }
        })
        .collect()
}

/// The shape checks of [`Index::search`] shared by every index: `nq × d` queries, `k`
/// neighbours, `exclude` (see the trait's error list). Values are checked separately.
pub(crate) fn check_search_args(
    index: &dyn Index,
    nq: usize,
    d: usize,
    k: usize,
    exclude: Exclude,
) -> Result<(), Error> {
    let n = index.len();
    if d != index.dim() {
        return Err(Error::DimensionMismatch {
            expected: index.dim(),
            found: d,
        });
    }
    if k == 0 {
        return Err(Error::ZeroK);
    }
    let available = match exclude {
        Exclude::None => n,
        Exclude::SameIndex => {
            if nq != n {
                return Err(Error::ExcludeShape {
                    queries: nq,
                    base: n,
                });
            }
            n.saturating_sub(1)
        }
    };
    if k > available {
        return Err(Error::NotEnoughPoints { k, available });
    }
    Ok(())
}

impl Index for ExactIndex {
    fn len(&self) -> usize {
        self.base.nrows()
    }

    fn dim(&self) -> usize {
        self.base.ncols()
    }

    /// Exact search; see the [module docs](self). `queries`: `m × D`, any layout.
    fn search(
        &self,
        queries: ArrayView2<'_, f32>,
        k: usize,
        exclude: Exclude,
    ) -> Result<Neighbours, Error> {
        let (nq, d) = queries.dim();
        check_search_args(self, nq, d, k, exclude)?;
        if nq == 0 {
            return Ok(Neighbours::empty(k));
        }
        let queries = queries.as_standard_layout();
        let q = queries.as_slice().expect("standard layout is contiguous");
        let qn = squared_norms(q, d, Role::Queries)?;

        let qb = self.query_block_for(nq);
        let blocks: Vec<(Vec<u32>, Vec<f64>)> = q
            .par_chunks(qb * d)
            .zip(qn.par_chunks(qb))
            .enumerate()
            .map(|(b, (qblock, qnblock))| self.search_block(qblock, qnblock, b * qb, k, exclude))
            .collect();
        let mut indices = Vec::with_capacity(nq * k);
        let mut distances = Vec::with_capacity(nq * k);
        for (i, dd) in blocks {
            indices.extend_from_slice(&i);
            distances.extend_from_slice(&dd);
        }
        Ok(Neighbours {
            k,
            indices,
            distances,
        })
    }

    fn info(&self) -> IndexInfo {
        IndexInfo {
            kind: "exact",
            n: self.len(),
            dim: self.dim(),
            parameters: IndexParameters::Exact(self.config),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{s, Array2};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Brute force in f64 with a naive sequential sum: `(indices, distances)` row-major.
    fn brute_force(
        base: ArrayView2<f32>,
        queries: ArrayView2<f32>,
        k: usize,
        exclude: Exclude,
    ) -> (Vec<u32>, Vec<f64>) {
        let mut idx = Vec::new();
        let mut dist = Vec::new();
        for (i, q) in queries.rows().into_iter().enumerate() {
            let mut all: Vec<(f64, u32)> = base
                .rows()
                .into_iter()
                .enumerate()
                .filter(|&(j, _)| !(exclude == Exclude::SameIndex && j == i))
                .map(|(j, b)| {
                    let d2: f64 = q
                        .iter()
                        .zip(b.iter())
                        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
                        .sum();
                    (d2, j as u32)
                })
                .collect();
            all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            for &(d2, j) in &all[..k] {
                idx.push(j);
                dist.push(d2.sqrt());
            }
        }
        (idx, dist)
    }

    fn assert_matches_brute_force(
        index: &ExactIndex,
        queries: ArrayView2<f32>,
        k: usize,
        exclude: Exclude,
    ) {
        let got = index.search(queries, k, exclude).unwrap();
        let (idx, dist) = brute_force(index.base(), queries, k, exclude);
        assert_eq!(got.k, k);
        assert_eq!(got.len(), queries.nrows());
        assert_eq!(got.indices, idx, "indices differ ({:?})", index);
        for (a, b) in got.distances.iter().zip(&dist) {
            assert!((a - b).abs() <= 1e-12 * b.max(1.0), "{a} vs {b}");
        }
        // Rows ascending by (distance, index), and no self-match with SameIndex.
        for (i, (ix, ds)) in got.rows().enumerate() {
            for w in 0..k - 1 {
                assert!((ds[w], ix[w]) < (ds[w + 1], ix[w + 1]));
            }
            if exclude == Exclude::SameIndex {
                assert!(!ix.contains(&(i as u32)));
            }
        }
    }

    fn random(rng: &mut ChaCha8Rng, n: usize, d: usize) -> Array2<f32> {
        Array2::from_shape_simple_fn((n, d), || rng.random_range(-1.0f32..1.0))
    }

    /// Values in {0, 1, 2}: many exact ties, all arithmetic exact.
    fn quantized(rng: &mut ChaCha8Rng, n: usize, d: usize) -> Array2<f32> {
        Array2::from_shape_simple_fn((n, d), || rng.random_range(0..3) as f32)
    }

    fn small_blocks() -> ExactConfig {
        ExactConfig {
            query_block: 16,
            base_block: 64,
            margin: 2,
            max_candidates: 8,
        }
    }

    #[test]
    fn equals_brute_force_on_shapes() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        // (n_base, n_queries, dim): tiny, n < block, n not a multiple of the block, dims 1/3/4096.
        let shapes = [
            (5, 3, 1),
            (100, 37, 3),
            (1041, 40, 3),
            (1300, 70, 4),
            (120, 20, 4096),
            (17, 17, 1),
        ];
        for (n, m, d) in shapes {
            let base = random(&mut rng, n, d);
            let queries = random(&mut rng, m, d);
            for config in [ExactConfig::default(), small_blocks()] {
                let index = ExactIndex::with_config(base.view(), config).unwrap();
                for k in [1, 2, 5] {
                    assert_matches_brute_force(&index, queries.view(), k, Exclude::None);
                    if k < n {
                        assert_matches_brute_force(&index, base.view(), k, Exclude::SameIndex);
                    }
                }
            }
        }
    }

    #[test]
    fn randomized_against_brute_force() {
        for seed in 0..40u64 {
            let mut rng = ChaCha8Rng::seed_from_u64(100 + seed);
            let n = rng.random_range(1..300);
            let m = rng.random_range(0..60);
            let d = rng.random_range(1..40);
            let base = if seed % 2 == 0 {
                random(&mut rng, n, d)
            } else {
                quantized(&mut rng, n, d)
            };
            let queries = if seed % 2 == 0 {
                random(&mut rng, m, d)
            } else {
                quantized(&mut rng, m, d)
            };
            let config = ExactConfig {
                query_block: rng.random_range(1..40),
                base_block: rng.random_range(1..100),
                margin: rng.random_range(0..4),
                max_candidates: rng.random_range(0..20),
            };
            let index = ExactIndex::with_config(base.view(), config).unwrap();
            let k = rng.random_range(1..=n.min(6));
            assert_matches_brute_force(&index, queries.view(), k, Exclude::None);
            if n > k {
                assert_matches_brute_force(&index, base.view(), k, Exclude::SameIndex);
            }
        }
    }

    #[test]
    fn exact_duplicates_have_zero_distance_and_lower_index_first() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let d = 64;
        let mut base = random(&mut rng, 400, d);
        // Rows 7, 150, 151 and 399 are copies of row 300; a query equal to it.
        let original = base.row(300).to_owned();
        for r in [7, 150, 151, 399] {
            base.row_mut(r).assign(&original);
        }
        let query = original.clone().insert_axis(ndarray::Axis(0));
        for config in [ExactConfig::default(), small_blocks()] {
            let index = ExactIndex::with_config(base.view(), config).unwrap();
            let nn = index.search(query.view(), 5, Exclude::None).unwrap();
            assert_eq!(nn.row(0), (&[7u32, 150, 151, 300, 399][..], &[0.0; 5][..]));
            let nn = index.search(query.view(), 2, Exclude::None).unwrap();
            assert_eq!(nn.row(0), (&[7u32, 150][..], &[0.0; 2][..]));
        }
    }

    #[test]
    fn many_duplicates_trigger_compaction_and_stay_exact() {
        // 600 copies of one 256-d vector interleaved with other points: every copy falls in the
        // rounding band, so candidate lists overflow and are compacted.
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let d = 256;
        let mut base = random(&mut rng, 1500, d);
        let v = random(&mut rng, 1, d);
        for r in (100..1500).step_by(2).take(600) {
            base.row_mut(r).assign(&v.row(0));
        }
        let config = ExactConfig {
            max_candidates: 16,
            ..small_blocks()
        };
        let index = ExactIndex::with_config(base.view(), config).unwrap();
        let nn = index.search(v.view(), 3, Exclude::None).unwrap();
        assert_eq!(nn.row(0), (&[100u32, 102, 104][..], &[0.0; 3][..]));
        assert_matches_brute_force(&index, base.slice(s![..200, ..]), 3, Exclude::None);
        assert_matches_brute_force(&index, base.view(), 3, Exclude::SameIndex);
    }

    #[test]
    fn cancellation_does_not_lose_neighbours() {
        // Long vectors (norm² ≈ 1.3e6) whose neighbours differ by ~1e-2: the f32 expansion
        // ‖q‖² + ‖b‖² − 2q·b is dominated by rounding noise (~0.1 in d²), so its ordering is
        // meaningless; the band keeps all of them and the exact re-rank must sort them out.
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let d = 128;
        let centre = Array2::from_elem((1, d), 100.0f32);
        let mut base =
            Array2::from_shape_fn((700, d), |_| 100.0 + rng.random_range(-1e-2f32..1e-2));
        for r in (0..700).step_by(7) {
            base.row_mut(r).mapv_inplace(|x| x + 50.0); // far points
        }
        let queries = ndarray::concatenate![ndarray::Axis(0), centre, base.slice(s![..30, ..])];
        for config in [ExactConfig::default(), small_blocks()] {
            let index = ExactIndex::with_config(base.view(), config).unwrap();
            for k in [1, 2, 5] {
                assert_matches_brute_force(&index, queries.view(), k, Exclude::None);
            }
            assert_matches_brute_force(&index, base.view(), 3, Exclude::SameIndex);
        }
    }

    #[test]
    fn same_index_exclusion_still_finds_duplicates() {
        let base = ndarray::array![[1.0f32, 2.0], [5.0, 5.0], [1.0, 2.0], [1.0, 3.0]];
        let index = ExactIndex::new(base.view()).unwrap();
        let nn = index.search(base.view(), 1, Exclude::SameIndex).unwrap();
        assert_eq!(nn.indices, vec![2, 3, 0, 0]);
        assert_eq!(nn.distances[..2], [0.0, 20.0f64.sqrt()]);
        assert_eq!(nn.distances[2..], [0.0, 1.0]);
        // Without exclusion every point finds itself (or a lower-index duplicate) at 0.
        let nn = index.search(base.view(), 1, Exclude::None).unwrap();
        assert_eq!(nn.indices, vec![0, 1, 0, 3]);
        assert_eq!(nn.distances, vec![0.0; 4]);
    }

    #[test]
    fn zero_vectors() {
        let mut base = Array2::<f32>::zeros((50, 16));
        base.row_mut(10).fill(0.5);
        let mut queries = Array2::<f32>::zeros((3, 16));
        queries.row_mut(1).fill(0.5);
        queries.row_mut(2).fill(1.0);
        let index = ExactIndex::new(base.view()).unwrap();
        let nn = index.search(queries.view(), 2, Exclude::None).unwrap();
        assert_eq!(nn.row(0), (&[0u32, 1][..], &[0.0, 0.0][..]));
        assert_eq!(nn.row(1), (&[10u32, 0][..], &[0.0, 2.0][..]));
        assert_eq!(nn.row(2), (&[10u32, 0][..], &[2.0, 4.0][..]));
        let nn = index.search(base.view(), 1, Exclude::SameIndex).unwrap();
        assert_eq!(nn.nearest(0), (1, 0.0));
        assert_eq!(nn.nearest(10), (0, 2.0));
    }

    #[test]
    fn independent_of_thread_count() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let base = random(&mut rng, 3000, 32);
        let queries = random(&mut rng, 700, 32);
        for config in [ExactConfig::default(), small_blocks()] {
            let index = ExactIndex::with_config(base.view(), config).unwrap();
            let run = |threads: usize, q: ArrayView2<f32>, exclude| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap()
                    .install(|| index.search(q, 5, exclude).unwrap())
            };
            let one = run(1, queries.view(), Exclude::None);
            let three = run(3, queries.view(), Exclude::None);
            assert_eq!(one, three);
            assert_eq!(one, index.search(queries.view(), 5, Exclude::None).unwrap());
            let one = run(1, base.view(), Exclude::SameIndex);
            let three = run(3, base.view(), Exclude::SameIndex);
            assert_eq!(one, three);
        }
    }

    #[test]
    fn any_query_layout() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let base = random(&mut rng, 200, 7);
        let queries_t = random(&mut rng, 7, 30); // D × m, viewed transposed
        let index = ExactIndex::new(base.view()).unwrap();
        let a = index.search(queries_t.t(), 3, Exclude::None).unwrap();
        let b = index
            .search(queries_t.t().as_standard_layout().view(), 3, Exclude::None)
            .unwrap();
        assert_eq!(a, b);
        assert_matches_brute_force(&index, queries_t.t(), 3, Exclude::None);
        // Non-contiguous base too.
        let wide = random(&mut rng, 100, 14);
        let strided = wide.slice(s![.., ..;2]);
        let index = ExactIndex::new(strided).unwrap();
        assert_matches_brute_force(&index, strided, 2, Exclude::SameIndex);
    }

    #[test]
    fn empty_queries_give_empty_neighbours() {
        let base = Array2::<f32>::ones((4, 3));
        let index = ExactIndex::new(base.view()).unwrap();
        let nn = index
            .search(Array2::<f32>::zeros((0, 3)).view(), 2, Exclude::None)
            .unwrap();
        assert!(nn.is_empty());
        assert_eq!(nn.k, 2);
    }

    #[test]
    fn validation_errors() {
        let base = Array2::<f32>::ones((4, 3));
        let index = ExactIndex::new(base.view()).unwrap();
        let q = Array2::<f32>::ones((2, 3));
        assert_eq!(
            index.search(Array2::<f32>::ones((2, 4)).view(), 1, Exclude::None),
            Err(Error::DimensionMismatch {
                expected: 3,
                found: 4
            })
        );
        assert_eq!(index.search(q.view(), 0, Exclude::None), Err(Error::ZeroK));
        assert_eq!(
            index.search(q.view(), 5, Exclude::None),
            Err(Error::NotEnoughPoints { k: 5, available: 4 })
        );
        assert_eq!(
            index.search(base.view(), 4, Exclude::SameIndex),
            Err(Error::NotEnoughPoints { k: 4, available: 3 })
        );
        assert_eq!(
            index.search(q.view(), 1, Exclude::SameIndex),
            Err(Error::ExcludeShape {
                queries: 2,
                base: 4
            })
        );
        let mut bad = q.clone();
        bad[[1, 2]] = f32::INFINITY;
        assert_eq!(
            index.search(bad.view(), 1, Exclude::None),
            Err(Error::NonFinite {
                role: Role::Queries,
                row: 1,
                column: 2,
                value: f32::INFINITY
            })
        );
        let mut bad_base = base.clone();
        bad_base[[3, 1]] = f32::NAN;
        let err = ExactIndex::new(bad_base.view()).unwrap_err();
        assert!(matches!(
            err,
            Error::NonFinite {
                role: Role::Base,
                row: 3,
                column: 1,
                ..
            }
        ));
        assert_eq!(
            err.to_string(),
            "non-finite value NaN in base row 3, column 1"
        );
        let huge = Array2::<f32>::from_elem((1, 3), 1e19);
        assert!(matches!(
            ExactIndex::new(huge.view()),
            Err(Error::NormTooLarge { row: 0, .. })
        ));
        assert_eq!(
            ExactIndex::new(Array2::<f32>::zeros((3, 0)).view()).unwrap_err(),
            Error::ZeroDimension { role: Role::Base }
        );
        let bad_config = ExactConfig {
            base_block: 0,
            ..ExactConfig::default()
        };
        assert!(matches!(
            ExactIndex::with_config(base.view(), bad_config),
            Err(Error::InvalidConfig(_))
        ));
        // An empty base is a valid index with nothing to return.
        let empty = ExactIndex::new(Array2::<f32>::zeros((0, 3)).view()).unwrap();
        assert!(empty.is_empty());
        assert_eq!(
            empty.search(q.view(), 1, Exclude::None),
            Err(Error::NotEnoughPoints { k: 1, available: 0 })
        );
    }

    #[test]
    fn info_serializes() {
        let index = ExactIndex::new(Array2::<f32>::zeros((10, 3)).view()).unwrap();
        let info = index.info();
        assert_eq!(info.kind, "exact");
        let json = serde_json::to_value(&info).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "kind": "exact", "n": 10, "dim": 3,
                "parameters": {"query_block": 256, "base_block": 1024, "margin": 2, "max_candidates": 512}
            })
        );
        // Object safety.
        let boxed: Box<dyn Index> = Box::new(index);
        assert_eq!((boxed.len(), boxed.dim()), (10, 3));
    }

    #[test]
    fn squared_distance_matches_naive() {
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        for d in [1, 3, 4, 5, 130] {
            let a = random(&mut rng, 2, d);
            let naive: f64 = a
                .row(0)
                .iter()
                .zip(a.row(1))
                .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
                .sum();
            let fast = squared_distance(a.row(0).as_slice().unwrap(), a.row(1).as_slice().unwrap());
            assert!((naive - fast).abs() <= 1e-13 * naive);
        }
    }
}
