//! Nearest-neighbour search for memscan.
//!
//! Every metric of memscan starts from "which training images are closest to this image, and how
//! close": this crate answers that for whole sets of embeddings (one `f32` row per image).
//!
//! # Brief overview
//!
//! - [`Index`]: the object-safe search trait every index implements (`len`, `dim`, `search`,
//!   `info`), so that the pipeline can hold a `Box<dyn Index>`.
//! - [`ExactIndex`]: exact search by blocked matrix products (`gemm`) with a bounded per-query
//!   candidate list and an exact `f64` re-rank; memory linear in the number of points. See
//!   [`exact`] for the algorithm and its exactness argument.
//! - [`HnswIndex`]: approximate search on an HNSW graph (hnsw_rs, [`HnswConfig`]) whose
//!   candidates are re-ranked exactly, plus an exact side list of the points the graph does not
//!   reach; savable to and loadable from a directory. See [`hnsw`]. [`auto_threshold`] is the
//!   base size from which it beats exact search on the reference machine.
//! - [`ViewIndex`]: several views (e.g. crops) per base image, searched per image with the
//!   minimum distance over its views. See [`views`].
//! - [`verify_recall`]: recall@1 / recall@k ([`Recall`]) of one index against another.
//! - [`Neighbours`]: the `n_queries × k` result table (base indices and **true Euclidean
//!   distances**, never squared), each row ascending by `(distance, index)`.
//! - [`Exclude`]: [`Exclude::SameIndex`] searches a set against itself without returning each
//!   point as its own neighbour (duplicates at other indices are still returned, at distance 0).
//! - [`IndexInfo`]: what was searched and how, serialized verbatim into `summary.json`.
//! - [`atomic_dir::replace_dir`]: write a whole directory atomically (saved graphs, caches).
//! - [`Error`]: every validation failure (dimension mismatch, NaN/inf, `k` too large, ...).
//!
//! Results never depend on the number of threads: blocks are fixed by the configuration and
//! the input sizes, and every returned distance is recomputed exactly.
//!
//! # Example
//!
//! ```
//! use memscan_index::{Exclude, ExactIndex, Index};
//! use ndarray::array;
//!
//! let train = array![[0.0f32, 0.0], [3.0, 4.0], [0.0, 0.0], [1.0, 0.0]];
//! let index = ExactIndex::new(train.view())?;
//!
//! // Nearest two training points of each synthetic point.
//! let synthetic = array![[0.0f32, 0.0], [3.0, 3.0]];
//! let nn = index.search(synthetic.view(), 2, Exclude::None)?;
//! assert_eq!(nn.row(0), (&[0u32, 2][..], &[0.0, 0.0][..])); // duplicates: lower index first
//! assert_eq!(nn.nearest(1), (1, 1.0));
//!
//! // Train against itself: row 0 skips point 0 but finds its duplicate, point 2.
//! let self_nn = index.search(train.view(), 1, Exclude::SameIndex)?;
//! assert_eq!(self_nn.nearest(0), (2, 0.0));
//! assert_eq!(self_nn.nearest(3), (0, 1.0));
//! # Ok::<(), memscan_index::Error>(())
//! ```

pub mod atomic_dir;
mod candidates;
mod error;
pub mod exact;
pub mod graph_distance;
pub mod hnsw;
mod neighbours;
mod recall;
pub mod views;

use ndarray::ArrayView2;
use serde::Serialize;

pub use error::{Error, Role, SourceError};
pub use exact::{ExactConfig, ExactIndex};
pub use graph_distance::{squared_l2, SqL2};
pub use hnsw::{
    auto_threshold, default_ef_search, default_m, HnswConfig, HnswIndex, HnswParameters,
};
pub use neighbours::Neighbours;
pub use recall::{verify_recall, Recall};
pub use views::ViewIndex;

/// Which base points a search must not return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum Exclude {
    /// Every base point may be returned.
    #[default]
    None,
    /// Query row `i` never returns base point `i`: for searching a set against itself (the
    /// queries must then be the base set, same number of rows). Other points identical to
    /// point `i` are still returned, at distance 0.
    SameIndex,
}

/// Index-specific parameters recorded in [`IndexInfo`] (serialized without a tag).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum IndexParameters {
    /// Parameters of an [`ExactIndex`].
    Exact(ExactConfig),
    /// Parameters of an [`HnswIndex`], with its side-list size.
    Hnsw(HnswParameters),
}

/// Description of an index for reports: kind, size and parameters.
///
/// Serializes as e.g.
/// `{"kind":"exact","n":1000,"dim":128,"parameters":{"query_block":256,"base_block":1024,...}}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IndexInfo {
    /// Index kind: `"exact"` or `"hnsw"`.
    pub kind: &'static str,
    /// Number of indexed (base) points.
    pub n: usize,
    /// Dimension of the vectors.
    pub dim: usize,
    /// Kind-specific parameters.
    pub parameters: IndexParameters,
}

/// A k-nearest-neighbour index over `n` base vectors of dimension `dim`.
///
/// Object-safe: the pipeline holds a `Box<dyn Index>` and does not care which kind it is.
pub trait Index: Send + Sync {
    /// Number of indexed (base) points.
    fn len(&self) -> usize;

    /// `true` if the index holds no points.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Dimension of the indexed vectors.
    fn dim(&self) -> usize;

    /// The `k` nearest base points of every row of `queries` (`m × dim`, any memory layout).
    ///
    /// Returns an `m × k` [`Neighbours`] table with true Euclidean distances (same units as the
    /// vectors, never squared), rows ascending by `(distance, index)`. An empty query set gives
    /// an empty table.
    ///
    /// # Errors
    ///
    /// - [`Error::DimensionMismatch`] if `queries` does not have `dim` columns;
    /// - [`Error::ZeroK`] if `k == 0`;
    /// - [`Error::ExcludeShape`] for [`Exclude::SameIndex`] with `m != len()`;
    /// - [`Error::NotEnoughPoints`] if fewer than `k` base points are available (`len()`, or
    ///   `len() − 1` with [`Exclude::SameIndex`]); callers must ask for `k <= available`;
    /// - [`Error::NonFinite`] / [`Error::NormTooLarge`] for a bad query vector.
    fn search(
        &self,
        queries: ArrayView2<'_, f32>,
        k: usize,
        exclude: Exclude,
    ) -> Result<Neighbours, Error>;

    /// Kind, size and parameters of the index, for `summary.json`.
    fn info(&self) -> IndexInfo;
}
