//! Approximate k-NN on an HNSW graph with an exact re-rank ([`HnswIndex`]).
//!
//! The graph comes from [hnsw_rs](https://docs.rs/hnsw_rs) 0.3 (Malkov & Yashunin, "Efficient
//! and robust approximate nearest neighbor search using Hierarchical Navigable Small World
//! graphs", 2018), built and searched with [`SqL2`](crate::SqL2), a vectorized squared
//! Euclidean distance (monotone in the distance, so the graph's comparisons are those of
//! `DistL2`, but without its sequential sum and square root). `DistDot` is never used (it panics when rounding
//! puts a duplicate's dot product above 1), nor `DistCosine` (it returns 0 for a zero vector and
//! so matches a blank image to everything).
//!
//! # Search
//!
//! 1. The graph returns `k' = k + `[`HnswConfig::candidates`] candidates per query (one more
//!    with [`Exclude::SameIndex`]), exploring `max(ef_search, k')` nodes.
//! 2. Every candidate's distance is recomputed exactly in `f64` from the raw `f32` vectors (the
//!    same code as [`ExactIndex`](crate::ExactIndex)), candidates are sorted by
//!    `(distance, index)` and the first `k` are returned. Returned distances are therefore exact
//!    and ties go to the lower index *among the candidates*; only the *set* is approximate.
//! 3. **Side list.** HNSW graphs leave a few points that no search reaches (more with tiny
//!    `m`/`ef`, duplicated images, or parallel insertion under contention). After building, every
//!    base point is searched for with its own vector, exactly as a `k = 1` search would do; every
//!    point missing from its own result goes into a side list, which each query also scans
//!    exactly (a small [`ExactIndex`](crate::ExactIndex)) and merges. Hence **every base point,
//!    queried with its own vector, is found at distance 0 by a `k = 1` search**: exact copies are
//!    never missed. The side-list size is reported in [`HnswParameters::side_list`]. Large groups
//!    of identical vectors (e.g. hundreds of blank images) mostly end up in the side list, which
//!    is correct but costs exact work per query.
//! 4. A query for which fewer than `k` candidates were found falls back to a brute-force scan.
//!
//! # Determinism
//!
//! With [`HnswConfig::deterministic`] the points are inserted sequentially in index order;
//! hnsw_rs draws node levels from a generator with a fixed seed, so the graph, the side list and
//! every result are the same for any thread count. Otherwise insertion is parallel (faster on
//! several cores, but the graph then depends on thread timing; results stay exact in distance).
//!
//! # Persistence
//!
//! [`HnswIndex::save`] writes the hnsw_rs dump (`hnsw.hnsw.graph`, `hnsw.hnsw.data`) and a
//! `manifest.json` (configuration, side list, sizes and SHA-256 of the files and of the base
//! vectors) into a temporary directory next to the target and renames it into place, so a
//! reader sees the old index, no index, or the complete new one — never a half-written one.
//! [`HnswIndex::load`] checks everything against the manifest before hnsw_rs reads a byte
//! (hnsw_rs asserts or exits on a truncated dump) and rejects a dump built from other vectors.
//!
//! Memory: the raw vectors are held twice (once for the exact re-rank, once inside the graph),
//! plus `m` to `2m` links per point.

use std::fs;
use std::io::Read;
use std::path::Path;

use hnsw_rs::prelude::{AnnT, Hnsw, HnswIo};

use crate::graph_distance::SqL2;
use ndarray::{Array2, ArrayView2, Axis};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::candidates::sort_exact;
use crate::error::{Error, Role, SourceError};
use crate::exact::{check_search_args, squared_distance, squared_norms};
use crate::{ExactIndex, Exclude, Index, IndexInfo, IndexParameters, Neighbours};

/// Training-set size from which `--index auto` picks HNSW over exact search, for the default
/// deterministic (sequential) graph build: [`AUTO_THRESHOLD_PARALLEL`]'s measurement with the
/// sequential graph's cost (about 3.5× the parallel graph's, measured at 50k) fitted as
/// `N log N` puts the break-even near 670 000; the threshold sits above it, on the exact
/// side, because exact search never misses. Not measured at this size.
pub const AUTO_THRESHOLD: usize = 800_000;

/// [`AUTO_THRESHOLD`] for the parallel graph build (`HnswConfig::deterministic == false`):
/// the smallest measured size at which HNSW, with the defaults that find every planted
/// near-copy ([`default_m`], [`default_ef_search`]), beats exact search for an audit.
///
/// Measured on the 2-core reference machine (`memscan-perf run DIR N EF parallel 100 M`,
/// clustered 128-d vectors with 1 % planted near-copies, 2 threads; `reports/reference/perf.md`).
/// An audit searches the training index with three sets of about N queries (synthetic,
/// holdout, train itself), so it costs exact `3 × search` and HNSW `graph + self-check +
/// 3 × search`:
///
/// | N | m, ef | exact | HNSW | recall@1 | planted found |
/// |---:|---|---:|---:|---:|---:|
/// | 200 000 | 16, 128 | 240 s | 346 s | 0.9997 | 2000 / 2000 |
/// | 400 000 | 16, 128 | 906 s | 799 s | 0.9860 | 3997 / 4000 |
/// | 400 000 | 24, 128 | 845 s | 945 s | 0.9988 | 4000 / 4000 |
/// | 600 000 | 24, 128 | 2042 s | 1315 s | 0.9942 | 1999 / 2000 |
/// | 600 000 | 24, 192 | 2042 s | 1704 s | 0.9979 | 2000 / 2000 |
///
/// (600k: 200 000 queries timed, scaled to N per set.) HNSW is faster at 400k only with
/// settings that miss planted near-copies; at 600k it is 1.2× faster with settings that find
/// them all. The `N²` / `N log N` fit between 400k and 600k crosses near 500 000.
pub const AUTO_THRESHOLD_PARALLEL: usize = 600_000;

/// Training-set size from which HNSW is expected to be faster than exact search for an audit,
/// for a deterministic (sequential) or parallel graph build ([`AUTO_THRESHOLD`]).
pub fn auto_threshold(deterministic: bool) -> usize {
    if deterministic {
        AUTO_THRESHOLD
    } else {
        AUTO_THRESHOLD_PARALLEL
    }
}

/// Training-set size from which [`default_ef_search`] doubles `ef_search` to 128.
pub const LARGE_EF_FROM: usize = 150_000;

/// Training-set size from which [`default_ef_search`] raises `ef_search` to 192.
pub const LARGER_EF_FROM: usize = 500_000;

/// The `ef_search` memscan uses when the user does not choose one: 64 below
/// [`LARGE_EF_FROM`] training vectors, 128 below [`LARGER_EF_FROM`], 192 from there.
///
/// Measured on the reference machine (`memscan-perf run DIR N EF parallel [100 M]`, clustered
/// 128-d vectors with 1 % planted near-copies, `reports/reference/perf.md`): at N = 100 000,
/// ef 64 gives recall@1 0.9999 and finds 1000 of 1000 planted near-copies; at N = 200 000,
/// ef 64 gives recall@1 0.9957 and misses one of 2000 planted near-copies (exact search finds
/// all 2000), ef 128 gives 0.9997 and finds all 2000, for a search 1.25× as long (69 s vs
/// 55 s for 200 000 queries); at N = 400 000 (m = 24) ef 128 finds all 4000; at N = 600 000
/// (m = 24) ef 128 gives 0.9942 and misses one of 2000, ef 192 gives 0.9979 and finds all
/// 2000, for a search 1.4× as long.
pub fn default_ef_search(n_train: usize) -> usize {
    if n_train >= LARGER_EF_FROM {
        192
    } else if n_train >= LARGE_EF_FROM {
        128
    } else {
        64
    }
}

/// Training-set size from which [`default_m`] raises `m` from 16 to 24.
pub const LARGE_M_FROM: usize = 250_000;

/// The `m` (links per node) memscan uses when the user does not choose one: 16 below
/// [`LARGE_M_FROM`] training vectors, 24 from there.
///
/// Measured on the reference machine (`memscan-perf run DIR N 128 parallel 100 M`, the
/// clustered 128-d vectors of `reports/reference/perf.md`, `ef_search` 128): at N = 200 000,
/// m = 16 gives recall@1 0.9997, a side list of 233 points and finds 2000 of 2000 planted
/// near-copies; at N = 400 000, m = 16 gives recall@1 0.986, a side list of 5 922 points and
/// misses 3 of 4000 planted near-copies, while m = 24 gives 0.9988, 543 points and 4000 of
/// 4000, for a graph 1.3× and a search 1.2× as long. The switch sits between the two measured
/// sizes, nearer the one where 16 was still good.
pub fn default_m(n_train: usize) -> usize {
    if n_train >= LARGE_M_FROM {
        24
    } else {
        16
    }
}

/// Largest accepted [`HnswConfig::m`]: hnsw_rs calls `process::exit` above 256 and stores `m`
/// as a `u8` in its dump, so 256 would not survive [`HnswIndex::save`].
pub const MAX_M: usize = 255;

/// Number of graph layers hnsw_rs may use (its maximum).
const MAX_LAYERS: usize = 16;

/// Parameters of an [`HnswIndex`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HnswConfig {
    /// Maximum links per node and layer (hnsw_rs `max_nb_connection`; default 16), `2..=255`.
    pub m: usize,
    /// Candidate-list width while inserting (default 100). Larger: better graph, slower build.
    pub ef_construction: usize,
    /// Candidate-list width while searching (default 64); raised to `k'` when smaller.
    pub ef_search: usize,
    /// Insert sequentially in index order so the graph and results never depend on the thread
    /// count (default `true`); `false` uses hnsw_rs `parallel_insert`.
    pub deterministic: bool,
    /// Extra candidates taken from the graph beyond `k` before the exact re-rank (default 8).
    pub candidates: usize,
}

impl Default for HnswConfig {
    fn default() -> Self {
        Self {
            m: 16,
            ef_construction: 100,
            ef_search: 64,
            deterministic: true,
            candidates: 8,
        }
    }
}

impl HnswConfig {
    /// Checks the ranges (before anything reaches hnsw_rs, which exits the process on a bad `m`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if `m` is outside `2..=255` or an `ef` is 0.
    pub fn validate(&self) -> Result<(), Error> {
        if self.m < 2 || self.m > MAX_M {
            return Err(Error::InvalidConfig(
                "m must be between 2 and 255 (hnsw_rs exits the process above 256)",
            ));
        }
        if self.ef_construction == 0 {
            return Err(Error::InvalidConfig("ef_construction must be at least 1"));
        }
        if self.ef_search == 0 {
            return Err(Error::InvalidConfig("ef_search must be at least 1"));
        }
        Ok(())
    }

    /// `(k', ef)` of the graph search for `k` neighbours: `k' = k + candidates (+ 1 when the
    /// query's own index is excluded)`, `ef = max(ef_search, k')`.
    fn graph_search_width(&self, k: usize, exclude: Exclude) -> (usize, usize) {
        let kp = k + self.candidates + usize::from(exclude == Exclude::SameIndex);
        (kp, self.ef_search.max(kp))
    }
}

/// What [`IndexInfo`] records for an [`HnswIndex`]: the configuration plus the side-list size.
///
/// Serializes flat: `{"m":16,"ef_construction":100,...,"candidates":8,"side_list":3}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HnswParameters {
    /// The configuration the graph was built with.
    #[serde(flatten)]
    pub config: HnswConfig,
    /// Number of base points the graph does not reach, searched exactly by every query.
    pub side_list: usize,
}

/// HNSW index with exact re-rank and an exact side list (see the [module docs](self)).
///
/// Build with [`HnswIndex::build`], search through the [`Index`] trait, persist with
/// [`save`](HnswIndex::save) / [`load`](HnswIndex::load).
pub struct HnswIndex {
    graph: Hnsw<'static, f32, SqL2>,
    /// The raw vectors (validated, row-major), for the re-rank and the brute-force fallback.
    exact: ExactIndex,
    /// Base indices of the unreachable points, ascending.
    side: Vec<u32>,
    /// Exact index over the side-list rows (row `j` is base point `side[j]`).
    side_index: Option<ExactIndex>,
    config: HnswConfig,
}

impl std::fmt::Debug for HnswIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HnswIndex")
            .field("n", &self.len())
            .field("dim", &self.dim())
            .field("config", &self.config)
            .field("side_list", &self.side.len())
            .finish_non_exhaustive()
    }
}

impl HnswIndex {
    /// Builds the graph over `base` (`N × D`, one point per row, any layout), then finds the
    /// unreachable points (module docs).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for a bad `config`; as [`ExactIndex::new`] for bad vectors
    /// ([`Error::ZeroDimension`], [`Error::NonFinite`], [`Error::NormTooLarge`],
    /// [`Error::TooManyPoints`]).
    pub fn build(base: ArrayView2<'_, f32>, config: &HnswConfig) -> Result<Self, Error> {
        Self::build_with_forced_side(base, config, &[])
    }

    /// [`build`](Self::build), with the base points `forced` put in the side list whether
    /// reachable or not (a test hook for the side-list path).
    fn build_with_forced_side(
        base: ArrayView2<'_, f32>,
        config: &HnswConfig,
        forced: &[u32],
    ) -> Result<Self, Error> {
        config.validate()?;
        let exact = ExactIndex::new(base)?;
        let (n, d) = exact.base().dim();
        let data = exact
            .base()
            .to_slice()
            .expect("standard layout is contiguous");
        let graph: Hnsw<'static, f32, SqL2> =
            Hnsw::new(config.m, n.max(1), MAX_LAYERS, config.ef_construction, SqL2);
        if config.deterministic {
            for (i, row) in data.chunks_exact(d).enumerate() {
                graph.insert_slice((row, i));
            }
        } else {
            let items: Vec<(&[f32], usize)> = data.chunks_exact(d).zip(0..n).collect();
            graph.parallel_insert_slice(&items);
        }
        let mut graph = graph;
        graph.set_searching_mode(true);
        let mut side = unreachable(&graph, data, d, config);
        side.extend(forced.iter().copied().filter(|&i| (i as usize) < n));
        side.sort_unstable();
        side.dedup();
        Self::assemble(graph, exact, side, *config)
    }

    /// Changes [`HnswConfig::ef_search`] without rebuilding the graph, and recomputes the side
    /// list for it (one graph search per base point, in parallel, as at the end of
    /// [`build`](Self::build)), so the module's guarantee holds for the new width.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if `ef_search == 0`; the index is then unchanged.
    pub fn set_ef_search(&mut self, ef_search: usize) -> Result<(), Error> {
        let config = HnswConfig {
            ef_search,
            ..self.config
        };
        config.validate()?;
        let data = self.exact.base().to_slice().expect("contiguous");
        let side = unreachable(&self.graph, data, self.dim(), &config);
        self.side_index = side_index(&self.exact, &side)?;
        self.side = side;
        self.config = config;
        Ok(())
    }

    fn assemble(
        graph: Hnsw<'static, f32, SqL2>,
        exact: ExactIndex,
        side: Vec<u32>,
        config: HnswConfig,
    ) -> Result<Self, Error> {
        let side_index = side_index(&exact, &side)?;
        Ok(Self {
            graph,
            exact,
            side,
            side_index,
            config,
        })
    }

    /// The configuration the index was built with.
    pub fn config(&self) -> &HnswConfig {
        &self.config
    }

    /// The indexed vectors, `N × D`.
    pub fn base(&self) -> ArrayView2<'_, f32> {
        self.exact.base()
    }

    /// Base indices of the points the graph does not reach (ascending); every query scans them
    /// exactly.
    pub fn side_list(&self) -> &[u32] {
        &self.side
    }

    fn base_row(&self, j: u32) -> &[f32] {
        let d = self.dim();
        let data = self.exact.base().to_slice().expect("contiguous");
        &data[j as usize * d..(j as usize + 1) * d]
    }

    /// The exact top-`k` of one query by brute force (the rare fallback).
    fn brute_force(&self, q: &[f32], k: usize, excluded: u32) -> Vec<(f64, u32)> {
        let mut all: Vec<(f64, u32)> = (0..self.len() as u32)
            .filter(|&j| j != excluded)
            .map(|j| (squared_distance(q, self.base_row(j)), j))
            .collect();
        sort_exact(&mut all);
        all.truncate(k);
        all
    }

    /// Saves the index into the directory `dir` (created or replaced as a whole; see the
    /// [module docs](self)). The base vectors are not needed again except to [`load`](Self::load).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if a file cannot be written or the directory cannot be renamed into place;
    /// [`Error::HnswLoad`] if hnsw_rs fails to dump the graph. On error `dir` is left as it was.
    pub fn save(&self, dir: &Path) -> Result<(), Error> {
        crate::atomic_dir::replace_dir(
            dir,
            |p, e| Error::io(p, e),
            |tmp| self.write_files(dir, tmp),
        )
    }

    /// Writes the graph files and the manifest of [`save`](Self::save) into `tmp`.
    fn write_files(&self, dir: &Path, tmp: &Path) -> Result<(), Error> {
        let dumped = self
            .graph
            .file_dump(tmp, GRAPH_BASENAME)
            .map_err(|e| Error::HnswLoad {
                path: dir.to_path_buf(),
                source: SourceError::new(e),
            })?;
        if dumped != GRAPH_BASENAME {
            return Err(Error::CacheInvalid {
                path: dir.to_path_buf(),
                reason: format!("hnsw_rs dumped under the unexpected name {dumped}"),
            });
        }
        let mut files = Vec::new();
        for file in GRAPH_FILES {
            let path = tmp.join(file);
            let (size, sha256) = file_digest(&path)?;
            fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::io(&path, e))?;
            files.push(FileEntry {
                name: file.to_string(),
                size,
                sha256,
            });
        }
        let manifest = Manifest {
            format: FORMAT.into(),
            version: FORMAT_VERSION,
            n: self.len(),
            dim: self.dim(),
            config: self.config,
            side_list: self.side.clone(),
            base_sha256: base_digest(self.base()),
            files,
        };
        let manifest_path = tmp.join(MANIFEST);
        let json = serde_json::to_vec_pretty(&manifest).expect("manifest serializes");
        fs::write(&manifest_path, json)
            .and_then(|_| fs::File::open(&manifest_path)?.sync_all())
            .map_err(|e| Error::io(&manifest_path, e))
    }

    /// Loads an index saved by [`save`](Self::save) from `dir`; `base` must be the vectors it
    /// was built from (checked by SHA-256).
    ///
    /// Each load leaks one small hnsw_rs `HnswIo` handle (about a hundred bytes): hnsw_rs ties
    /// the loaded graph's lifetime to it.
    ///
    /// # Errors
    ///
    /// [`Error::CacheInvalid`] if the manifest or a file is missing, a size or checksum differs,
    /// the format is unknown, or `base` is not the base of the saved index; [`Error::Io`] for an
    /// unreadable file; [`Error::HnswLoad`] if hnsw_rs rejects the graph; as
    /// [`ExactIndex::new`] for bad vectors.
    pub fn load(dir: &Path, base: ArrayView2<'_, f32>) -> Result<Self, Error> {
        let invalid = |reason: String| Error::CacheInvalid {
            path: dir.to_path_buf(),
            reason,
        };
        let manifest_path = dir.join(MANIFEST);
        let text = match fs::read(&manifest_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(invalid(format!("missing {MANIFEST}")))
            }
            Err(e) => return Err(Error::io(&manifest_path, e)),
        };
        let m: Manifest = serde_json::from_slice(&text)
            .map_err(|_| invalid(format!("{MANIFEST} is not a valid manifest")))?;
        if m.format != FORMAT || m.version != FORMAT_VERSION {
            return Err(invalid(format!(
                "unsupported format {} version {}",
                m.format, m.version
            )));
        }
        m.config.validate()?;
        let exact = ExactIndex::new(base)?;
        let (n, d) = exact.base().dim();
        if (n, d) != (m.n, m.dim) {
            return Err(invalid(format!(
                "saved for {} × {} vectors, given {n} × {d}",
                m.n, m.dim
            )));
        }
        if base_digest(exact.base()) != m.base_sha256 {
            return Err(invalid("built from other base vectors".into()));
        }
        if m.side_list.windows(2).any(|w| w[0] >= w[1])
            || m.side_list.last().is_some_and(|&i| i as usize >= n)
        {
            return Err(invalid("bad side list".into()));
        }
        for file in GRAPH_FILES {
            let entry = m
                .files
                .iter()
                .find(|f| f.name == file)
                .ok_or_else(|| invalid(format!("{file} not listed in {MANIFEST}")))?;
            let path = dir.join(file);
            if !path.is_file() {
                return Err(invalid(format!("missing {file}")));
            }
            let (size, sha256) = file_digest(&path)?;
            if size != entry.size || sha256 != entry.sha256 {
                return Err(invalid(format!("size or checksum mismatch in {file}")));
            }
        }

        let io: &'static mut HnswIo = Box::leak(Box::new(HnswIo::new(dir, GRAPH_BASENAME)));
        let mut graph: Hnsw<'static, f32, SqL2> =
            io.load_hnsw::<f32, SqL2>().map_err(|e| Error::HnswLoad {
                path: dir.to_path_buf(),
                source: SourceError::new(e),
            })?;
        if graph.get_nb_point() != n {
            return Err(invalid(format!(
                "the graph holds {} points, the manifest {n}",
                graph.get_nb_point()
            )));
        }
        graph.set_searching_mode(true);
        Self::assemble(graph, exact, m.side_list, m.config)
    }
}

/// An exact index over the base rows listed in `side` (`None` if empty).
fn side_index(exact: &ExactIndex, side: &[u32]) -> Result<Option<ExactIndex>, Error> {
    if side.is_empty() {
        return Ok(None);
    }
    let idx: Vec<usize> = side.iter().map(|&i| i as usize).collect();
    let rows: Array2<f32> = exact.base().select(Axis(0), &idx);
    ExactIndex::new(rows.view()).map(Some)
}

/// The base points (`data`: `N × d` row-major) that the graph search of a `k = 1` query under
/// `config` does not return for their own vector at distance 0, ascending. Parallel over points,
/// collected in index order.
fn unreachable(
    graph: &Hnsw<'static, f32, SqL2>,
    data: &[f32],
    d: usize,
    config: &HnswConfig,
) -> Vec<u32> {
    let (kp, ef) = config.graph_search_width(1, Exclude::None);
    let reached: Vec<bool> = data
        .par_chunks_exact(d)
        .enumerate()
        .map(|(i, row)| {
            graph
                .search(row, kp, ef)
                .iter()
                .any(|nb| nb.d_id == i && nb.distance == 0.0)
        })
        .collect();
    reached
        .iter()
        .enumerate()
        .filter(|&(_, &r)| !r)
        .map(|(i, _)| i as u32)
        .collect()
}

/// Basename of the hnsw_rs dump files.
const GRAPH_BASENAME: &str = "hnsw";
/// The files hnsw_rs writes for [`GRAPH_BASENAME`].
const GRAPH_FILES: [&str; 2] = ["hnsw.hnsw.graph", "hnsw.hnsw.data"];
const MANIFEST: &str = "manifest.json";
const FORMAT: &str = "memscan-hnsw";
/// 2: the graph uses [`SqL2`] (version 1 graphs used hnsw_rs `DistL2`).
const FORMAT_VERSION: u32 = 2;

/// `manifest.json` of a saved [`HnswIndex`].
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: String,
    version: u32,
    n: usize,
    dim: usize,
    config: HnswConfig,
    side_list: Vec<u32>,
    /// SHA-256 of the base vectors (row-major little-endian `f32`).
    base_sha256: String,
    files: Vec<FileEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
struct FileEntry {
    name: String,
    size: u64,
    sha256: String,
}

/// `(size, SHA-256 hex)` of a file.
fn file_digest(path: &Path) -> Result<(u64, String), Error> {
    let mut f = fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let got = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if got == 0 {
            break;
        }
        hasher.update(&buf[..got]);
        size += got as u64;
    }
    Ok((size, hex::encode(hasher.finalize())))
}

/// SHA-256 hex of the vectors, row-major little-endian `f32`, preceded by the shape.
fn base_digest(base: ArrayView2<'_, f32>) -> String {
    let mut hasher = Sha256::new();
    hasher.update((base.nrows() as u64).to_le_bytes());
    hasher.update((base.ncols() as u64).to_le_bytes());
    let mut buf = Vec::with_capacity(base.ncols() * 4);
    for row in base.rows() {
        buf.clear();
        buf.extend(row.iter().flat_map(|x| x.to_le_bytes()));
        hasher.update(&buf);
    }
    hex::encode(hasher.finalize())
}

impl Index for HnswIndex {
    fn len(&self) -> usize {
        self.exact.len()
    }

    fn dim(&self) -> usize {
        self.exact.dim()
    }

    /// Graph search, exact re-rank and side-list merge; see the [module docs](self).
    /// `queries`: `m × D`, any layout.
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
        squared_norms(q, d, Role::Queries)?;

        // Side list: its exact top-(k [+1]) per query, by blocked products over the few rows.
        let side_nn = match &self.side_index {
            Some(si) => {
                let ks = (k + usize::from(exclude == Exclude::SameIndex)).min(si.len());
                Some(si.search(queries.view(), ks, Exclude::None)?)
            }
            None => None,
        };

        let (kp, ef) = self.config.graph_search_width(k, exclude);
        let rows: Vec<Vec<(f64, u32)>> = q
            .par_chunks_exact(d)
            .enumerate()
            .map(|(i, qrow)| {
                let excluded = match exclude {
                    Exclude::None => u32::MAX,
                    Exclude::SameIndex => i as u32,
                };
                let from_graph = self.graph.search(qrow, kp, ef);
                let from_side = side_nn
                    .as_ref()
                    .map(|nn| nn.row(i).0)
                    .unwrap_or(&[])
                    .iter()
                    .map(|&j| self.side[j as usize]);
                let mut c: Vec<(f64, u32)> = from_graph
                    .iter()
                    .map(|nb| nb.d_id as u32)
                    .chain(from_side)
                    .filter(|&j| j != excluded)
                    .map(|j| (squared_distance(qrow, self.base_row(j)), j))
                    .collect();
                sort_exact(&mut c);
                c.dedup_by_key(|e| e.1);
                if c.len() < k {
                    return self.brute_force(qrow, k, excluded);
                }
                c.truncate(k);
                c
            })
            .collect();

        let mut indices = Vec::with_capacity(nq * k);
        let mut distances = Vec::with_capacity(nq * k);
        for row in rows {
            for (d2, j) in row {
                indices.push(j);
                distances.push(d2.sqrt());
            }
        }
        Ok(Neighbours {
            k,
            indices,
            distances,
        })
    }

    fn info(&self) -> IndexInfo {
        IndexInfo {
            kind: "hnsw",
            n: self.len(),
            dim: self.dim(),
            parameters: IndexParameters::Hnsw(HnswParameters {
                config: self.config,
                side_list: self.side.len(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify_recall;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn uniform(rng: &mut ChaCha8Rng, n: usize, d: usize) -> Array2<f32> {
        Array2::from_shape_simple_fn((n, d), || rng.random_range(-1.0f32..1.0))
    }

    /// `n` points around `clusters` random centres in `[-1, 1]^d`, Gaussian-ish spread `sigma`.
    fn clustered(
        rng: &mut ChaCha8Rng,
        n: usize,
        d: usize,
        clusters: usize,
        sigma: f32,
    ) -> Array2<f32> {
        let centres = uniform(rng, clusters, d);
        let mut x = Array2::zeros((n, d));
        for mut row in x.rows_mut() {
            let c = centres.row(rng.random_range(0..clusters));
            for (v, &cv) in row.iter_mut().zip(c) {
                let g: f32 = (0..4).map(|_| rng.random_range(-1.0f32..1.0)).sum::<f32>() * 0.5;
                *v = cv + sigma * g;
            }
        }
        x
    }

    /// Every distance is the exact distance of its pair, rows ascend by (distance, index).
    fn assert_exact_distances(index: &HnswIndex, queries: ArrayView2<f32>, nn: &Neighbours) {
        for (i, (ix, ds)) in nn.rows().enumerate() {
            let q = queries.row(i).to_vec();
            for w in 0..nn.k {
                let want = squared_distance(&q, index.base_row(ix[w])).sqrt();
                assert_eq!(ds[w], want);
                if w + 1 < nn.k {
                    assert!((ds[w], ix[w]) < (ds[w + 1], ix[w + 1]));
                }
            }
        }
    }

    #[test]
    fn recall_against_exact_on_random_sets() {
        for (seed, n, d) in [(1u64, 2000, 16), (2, 3000, 32), (3, 500, 8)] {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let base = uniform(&mut rng, n, d);
            let queries = uniform(&mut rng, 300, d);
            let cfg = HnswConfig {
                ef_search: 48,
                ..HnswConfig::default()
            };
            let hnsw = HnswIndex::build(base.view(), &cfg).unwrap();
            let exact = ExactIndex::new(base.view()).unwrap();
            let r = verify_recall(&hnsw, &exact, queries.view(), 300, 5, 7).unwrap();
            assert!(r.at_1 >= 0.99 && r.at_k >= 0.99, "{seed}: {r:?}");
            let nn = hnsw.search(queries.view(), 5, Exclude::None).unwrap();
            assert_exact_distances(&hnsw, queries.view(), &nn);
            // Where the sets agree the tables are identical (same distance code, same order).
            let en = exact.search(queries.view(), 5, Exclude::None).unwrap();
            let same = nn.rows().zip(en.rows()).filter(|(a, b)| a == b).count();
            assert!(same as f64 >= 0.97 * 300.0, "{same}");
            // Self-search without the point itself.
            let nn = hnsw.search(base.view(), 3, Exclude::SameIndex).unwrap();
            let en = exact.search(base.view(), 3, Exclude::SameIndex).unwrap();
            for i in 0..n {
                assert!(!nn.row(i).0.contains(&(i as u32)));
            }
            let hits = (0..n).filter(|&i| nn.nearest(i) == en.nearest(i)).count();
            assert!(hits as f64 >= 0.99 * n as f64, "{hits}/{n}");
        }
    }

    #[test]
    fn exact_duplicates_and_zero_vectors() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let d = 24;
        let mut base = uniform(&mut rng, 1500, d);
        let v = base.row(3).to_owned();
        // 200 copies of row 3 and 100 blank (zero) images, spread over the base.
        for r in (10..1500).step_by(7).take(200) {
            base.row_mut(r).assign(&v);
        }
        for r in (12..1500).step_by(13).take(100) {
            base.row_mut(r).fill(0.0);
        }
        let hnsw = HnswIndex::build(base.view(), &HnswConfig::default()).unwrap();
        let mut queries = Array2::<f32>::zeros((3, d));
        queries.row_mut(0).assign(&v);
        let nn = hnsw.search(queries.view(), 5, Exclude::None).unwrap();
        assert_eq!(nn.row(0).1, &[0.0; 5]);
        for &j in nn.row(0).0 {
            assert_eq!(base.row(j as usize), v);
        }
        assert_eq!(nn.row(1).1, &[0.0; 5]);
        for &j in nn.row(1).0 {
            assert!(base.row(j as usize).iter().all(|&x| x == 0.0));
        }
        assert_exact_distances(&hnsw, queries.view(), &nn);
        // Every point finds itself or an identical point at distance 0.
        let nn = hnsw.search(base.view(), 1, Exclude::None).unwrap();
        assert!(nn.distances.iter().all(|&x| x == 0.0));
        // Excluding itself, every duplicate still finds another copy at distance 0.
        let nn = hnsw.search(base.view(), 1, Exclude::SameIndex).unwrap();
        for r in (10..1500).step_by(7).take(200) {
            assert_eq!(nn.nearest(r).1, 0.0, "row {r}");
        }
        // An all-zero base: every distance 0, nothing panics.
        let zeros = Array2::<f32>::zeros((300, 8));
        let hnsw = HnswIndex::build(zeros.view(), &HnswConfig::default()).unwrap();
        let nn = hnsw.search(zeros.view(), 2, Exclude::SameIndex).unwrap();
        assert!(nn.distances.iter().all(|&x| x == 0.0));
        let one = Array2::<f32>::ones((1, 8));
        let nn = hnsw.search(one.view(), 1, Exclude::None).unwrap();
        assert_eq!(nn.distances, vec![8f64.sqrt()]);
    }

    #[test]
    fn side_list_path() {
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        let base = clustered(&mut rng, 2000, 16, 40, 0.02);
        let exact = ExactIndex::new(base.view()).unwrap();
        // Forced through the hook: these points are found through the side list.
        let forced = [0u32, 17, 999, 1999];
        let hnsw = HnswIndex::build_with_forced_side(base.view(), &HnswConfig::default(), &forced)
            .unwrap();
        for f in forced {
            assert!(hnsw.side_list().contains(&f));
        }
        match hnsw.info().parameters {
            IndexParameters::Hnsw(p) => assert_eq!(p.side_list, hnsw.side_list().len()),
            other => panic!("{other:?}"),
        }
        let idx: Vec<usize> = forced.iter().map(|&i| i as usize).collect();
        let q = base.select(Axis(0), &idx);
        let nn = hnsw.search(q.view(), 3, Exclude::None).unwrap();
        let en = exact.search(q.view(), 3, Exclude::None).unwrap();
        assert_eq!(nn, en);

        // A starved graph (m = 2, ef = 1) on clustered data: unreachable points appear, and
        // still every point finds itself at distance 0.
        let cfg = HnswConfig {
            m: 2,
            ef_construction: 1,
            ef_search: 1,
            candidates: 0,
            deterministic: true,
        };
        let mut hnsw = HnswIndex::build(base.view(), &cfg).unwrap();
        assert!(!hnsw.side_list().is_empty());
        let check = |hnsw: &HnswIndex| {
            let nn = hnsw.search(base.view(), 1, Exclude::None).unwrap();
            for (i, (ix, ds)) in nn.rows().enumerate() {
                assert_eq!(ds[0], 0.0);
                assert!(ix[0] as usize == i || base.row(ix[0] as usize) == base.row(i));
            }
        };
        check(&hnsw);
        // A wider search reaches more points: the side list is recomputed and shrinks.
        let starved = hnsw.side_list().len();
        hnsw.set_ef_search(64).unwrap();
        assert!(hnsw.side_list().len() < starved);
        check(&hnsw);
        assert!(hnsw.set_ef_search(0).is_err());
        assert_eq!(hnsw.config().ef_search, 64);
    }

    #[test]
    fn default_m_grows_for_large_sets() {
        assert_eq!(default_m(0), HnswConfig::default().m);
        assert_eq!(default_m(LARGE_M_FROM - 1), 16);
        assert_eq!(default_m(LARGE_M_FROM), 24);
        assert!(HnswConfig {
            m: default_m(usize::MAX),
            ..HnswConfig::default()
        }
        .validate()
        .is_ok());
    }

    #[test]
    fn default_ef_search_doubles_for_large_sets() {
        assert_eq!(default_ef_search(0), 64);
        assert_eq!(default_ef_search(LARGE_EF_FROM - 1), 64);
        assert_eq!(default_ef_search(LARGE_EF_FROM), 128);
        assert_eq!(default_ef_search(LARGER_EF_FROM - 1), 128);
        assert_eq!(default_ef_search(LARGER_EF_FROM), 192);
    }

    #[test]
    fn planted_near_copies_are_never_missed() {
        let mut rng = ChaCha8Rng::seed_from_u64(13);
        let d = 32;
        let base = clustered(&mut rng, 6000, d, 30, 0.05);
        let mut queries = clustered(&mut rng, 1000, d, 30, 0.05);
        let mut planted = Vec::new();
        for p in 0..50 {
            let src = rng.random_range(0..6000usize);
            let row = 20 * p + 3;
            let copy = base.row(src).mapv(|x| x + rng.random_range(-1e-3f32..1e-3));
            queries.row_mut(row).assign(&copy);
            planted.push((row, src as u32));
        }
        let exact = ExactIndex::new(base.view()).unwrap();
        let en = exact.search(queries.view(), 1, Exclude::None).unwrap();
        for deterministic in [true, false] {
            let cfg = HnswConfig {
                deterministic,
                ..HnswConfig::default()
            };
            let hnsw = HnswIndex::build(base.view(), &cfg).unwrap();
            let nn = hnsw.search(queries.view(), 1, Exclude::None).unwrap();
            for &(row, src) in &planted {
                assert_eq!(en.nearest(row).0, src);
                assert_eq!(
                    nn.nearest(row),
                    en.nearest(row),
                    "planted copy in row {row}"
                );
            }
        }
    }

    #[test]
    fn deterministic_for_any_thread_count() {
        let mut rng = ChaCha8Rng::seed_from_u64(14);
        let base = clustered(&mut rng, 3000, 16, 20, 0.05);
        let queries = clustered(&mut rng, 400, 16, 20, 0.05);
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| {
                    let h = HnswIndex::build(base.view(), &HnswConfig::default()).unwrap();
                    let a = h.search(queries.view(), 4, Exclude::None).unwrap();
                    let b = h.search(base.view(), 2, Exclude::SameIndex).unwrap();
                    (h.side_list().to_vec(), a, b)
                })
        };
        assert_eq!(run(1), run(3));
    }

    #[test]
    fn save_and_load_round_trip() {
        let mut rng = ChaCha8Rng::seed_from_u64(15);
        let base = clustered(&mut rng, 1500, 12, 10, 0.05);
        let queries = uniform(&mut rng, 100, 12);
        let hnsw =
            HnswIndex::build_with_forced_side(base.view(), &HnswConfig::default(), &[5]).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cache").join("train.hnsw");
        hnsw.save(&dir).unwrap();
        let loaded = HnswIndex::load(&dir, base.view()).unwrap();
        assert_eq!(loaded.info(), hnsw.info());
        assert_eq!(loaded.side_list(), hnsw.side_list());
        assert_eq!(
            loaded.search(queries.view(), 3, Exclude::None).unwrap(),
            hnsw.search(queries.view(), 3, Exclude::None).unwrap()
        );
        // Saving again replaces the directory as a whole and leaves no temporary behind.
        loaded.save(&dir).unwrap();
        HnswIndex::load(&dir, base.view()).unwrap();
        let names: Vec<_> = fs::read_dir(dir.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("train.hnsw")]);

        // Other vectors: rejected.
        let mut other = base.clone();
        other[[7, 3]] += 1.0;
        assert!(matches!(
            HnswIndex::load(&dir, other.view()),
            Err(Error::CacheInvalid { .. })
        ));
        // A half-written cache (a file missing, or truncated) is never read back.
        let data = dir.join("hnsw.hnsw.data");
        let bytes = fs::read(&data).unwrap();
        fs::write(&data, &bytes[..bytes.len() / 2]).unwrap();
        let err = HnswIndex::load(&dir, base.view()).unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
        fs::remove_file(&data).unwrap();
        let err = HnswIndex::load(&dir, base.view()).unwrap_err();
        assert!(err.to_string().contains("missing hnsw.hnsw.data"), "{err}");
        fs::remove_file(dir.join(MANIFEST)).unwrap();
        let err = HnswIndex::load(&dir, base.view()).unwrap_err();
        assert!(matches!(err, Error::CacheInvalid { .. }), "{err}");
        let err = HnswIndex::load(&tmp.path().join("nothing"), base.view()).unwrap_err();
        assert!(err.to_string().contains("missing manifest.json"), "{err}");
    }

    #[test]
    fn config_validation_and_info() {
        let base = Array2::<f32>::zeros((10, 3));
        for bad in [
            HnswConfig {
                m: 300,
                ..HnswConfig::default()
            },
            HnswConfig {
                m: 1,
                ..HnswConfig::default()
            },
            HnswConfig {
                ef_search: 0,
                ..HnswConfig::default()
            },
        ] {
            assert!(matches!(
                HnswIndex::build(base.view(), &bad),
                Err(Error::InvalidConfig(_))
            ));
        }
        let hnsw = HnswIndex::build(base.view(), &HnswConfig::default()).unwrap();
        let json = serde_json::to_value(hnsw.info()).unwrap();
        assert_eq!(json["kind"], "hnsw");
        assert_eq!(json["parameters"]["m"], 16);
        assert!(json["parameters"]["side_list"].is_u64());
        let boxed: Box<dyn Index> = Box::new(hnsw);
        assert_eq!(
            boxed.search(Array2::<f32>::ones((1, 4)).view(), 1, Exclude::None),
            Err(Error::DimensionMismatch {
                expected: 3,
                found: 4
            })
        );
        assert_eq!(
            boxed.search(base.view(), 10, Exclude::SameIndex),
            Err(Error::NotEnoughPoints {
                k: 10,
                available: 9
            })
        );
        let empty =
            HnswIndex::build(Array2::<f32>::zeros((0, 3)).view(), &HnswConfig::default()).unwrap();
        assert!(empty.is_empty());
    }
}
