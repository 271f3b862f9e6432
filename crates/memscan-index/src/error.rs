//! The error type of `memscan-index`.
//!
//! Every fallible function of this crate returns [`Error`]. Bad inputs (a dimension mismatch,
//! a NaN in an embedding, asking for more neighbours than there are points) are reported as
//! values, never as panics, so that the caller can say which input set was at fault.
//! Persistence errors ([`Error::Io`], [`Error::CacheInvalid`], [`Error::HnswLoad`]) name the
//! path and keep the underlying error as their `source()`.

use std::path::PathBuf;
use std::sync::Arc;

/// Which input set a validation error refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The points the index was built from.
    Base,
    /// The points passed to [`Index::search`](crate::Index::search).
    Queries,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Base => "base",
            Role::Queries => "query",
        })
    }
}

/// Errors of index construction and search.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The query vectors do not have the dimension of the indexed vectors.
    #[error("dimension mismatch: the index holds {expected}-dimensional vectors, the queries are {found}-dimensional")]
    DimensionMismatch {
        /// Dimension of the indexed (base) vectors.
        expected: usize,
        /// Dimension of the query vectors.
        found: usize,
    },
    /// The vectors have zero dimensions.
    #[error("{role} vectors have zero dimensions")]
    ZeroDimension {
        /// Which input set.
        role: Role,
    },
    /// A value is NaN or infinite.
    #[error("non-finite value {value} in {role} row {row}, column {column}")]
    NonFinite {
        /// Which input set.
        role: Role,
        /// Row (point) index, 0-based.
        row: usize,
        /// Column (dimension) index, 0-based.
        column: usize,
        /// The offending value.
        value: f32,
    },
    /// A vector is so long that squared distances could overflow `f32` in the blocked product.
    #[error("{role} row {row} has squared norm {norm2:e}, above the supported limit {limit:e}")]
    NormTooLarge {
        /// Which input set.
        role: Role,
        /// Row (point) index, 0-based.
        row: usize,
        /// The squared Euclidean norm of the row.
        norm2: f64,
        /// The largest supported squared norm.
        limit: f64,
    },
    /// Point indices are `u32`; the base has more points than that.
    #[error("too many base points: {n} (at most {max})", max = u32::MAX)]
    TooManyPoints {
        /// Number of base points given.
        n: usize,
    },
    /// `k = 0` was asked for.
    #[error("k must be at least 1")]
    ZeroK,
    /// Fewer than `k` base points are available (after exclusion).
    #[error("{k} neighbours requested but only {available} base points are available")]
    NotEnoughPoints {
        /// Number of neighbours requested.
        k: usize,
        /// Number of base points a query can return (base size, minus one with
        /// [`Exclude::SameIndex`](crate::Exclude::SameIndex)).
        available: usize,
    },
    /// [`Exclude::SameIndex`](crate::Exclude::SameIndex) needs the query set to be the base set.
    #[error("Exclude::SameIndex needs as many queries as base points ({queries} queries, {base} base points)")]
    ExcludeShape {
        /// Number of queries.
        queries: usize,
        /// Number of base points.
        base: usize,
    },
    /// A configuration value is out of range.
    #[error("invalid index configuration: {0}")]
    InvalidConfig(&'static str),
    /// Reading or writing a file of a saved index failed.
    #[error("I/O error on {path}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: SourceError,
    },
    /// A saved index is missing, incomplete, corrupt, or was built from other vectors. Nothing
    /// of it was loaded; rebuild it.
    #[error("saved index {path} cannot be used: {reason}")]
    CacheInvalid {
        /// The directory of the saved index.
        path: PathBuf,
        /// What is wrong (e.g. "missing manifest.json", "checksum mismatch in hnsw.hnsw.data").
        reason: String,
    },
    /// hnsw_rs could not read back a graph that passed the checksums.
    #[error("cannot load the HNSW graph from {path}")]
    HnswLoad {
        /// The directory of the saved index.
        path: PathBuf,
        /// The error reported by hnsw_rs.
        #[source]
        source: SourceError,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, err: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source: SourceError::new(err),
        }
    }
}

/// An underlying error (I/O, hnsw_rs), shared so that [`Error`] stays `Clone` and `PartialEq`.
///
/// Displays as the wrapped error; two values are equal if they display the same text.
#[derive(Debug, Clone)]
pub struct SourceError(Arc<dyn std::error::Error + Send + Sync>);

impl SourceError {
    pub(crate) fn new(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(Arc::from(err.into()))
    }
}

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SourceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl PartialEq for SourceError {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.to_string() == other.0.to_string()
    }
}
