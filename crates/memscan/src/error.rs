//! Errors of the pipeline. Each variant says which stage and which input role failed and
//! keeps the underlying error as its source.

use std::path::PathBuf;

/// An audit could not be completed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading one of the input sets failed.
    #[error("reading {role} images from {path}")]
    Input {
        role: &'static str,
        path: PathBuf,
        #[source]
        source: memscan_io::Error,
    },
    /// The input sets cannot be compared.
    #[error("{0}")]
    Inputs(String),
    #[error("loading the embedder")]
    LoadEmbedder(#[source] memscan_embed::Error),
    #[error("embedding {role} images")]
    Embed {
        role: &'static str,
        #[source]
        source: memscan_embed::Error,
    },
    #[error("searching nearest neighbours ({what})")]
    Index {
        what: &'static str,
        #[source]
        source: memscan_index::Error,
    },
    #[error("computing {what}")]
    Metrics {
        what: &'static str,
        #[source]
        source: memscan_metrics::Error,
    },
    /// A report thumbnail could not be encoded.
    #[error("encoding a report thumbnail of {id}")]
    Thumbnail {
        id: String,
        #[source]
        source: image::ImageError,
    },
    #[error("writing the reports")]
    Report(#[from] memscan_report::Error),
    /// The `--groups` file cannot be used.
    #[error("cannot use groups file {path}: {reason}")]
    Groups { path: PathBuf, reason: String },
    /// An invalid configuration (bad `--fail-if`, FPR out of range, …).
    #[error("{0}")]
    Config(String),
    /// A feature matrix (`--features`, `memscan embed`) or its ids file is unusable.
    #[error("features {path}: {problem}")]
    Features { path: PathBuf, problem: String },
    /// A feature file cannot be read or written.
    #[error("I/O error on features file {path}")]
    FeaturesIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A feature matrix cannot be parsed as `.npy`.
    #[error("cannot read the .npy matrix {path}")]
    FeaturesNpy {
        path: PathBuf,
        #[source]
        source: ndarray_npy::ReadNpyError,
    },
    /// Reading one role's features failed.
    #[error("reading the {role} features")]
    FeaturesRole {
        role: &'static str,
        #[source]
        source: Box<Error>,
    },
    /// A cache entry could not be written.
    #[error("cannot write the cache entry {path}")]
    Cache {
        path: PathBuf,
        #[source]
        source: Box<memscan_index::Error>,
    },
    /// A `--fail-if` budget names a metric this run could not compute.
    #[error("budget `{expression}` cannot be checked: {reason}")]
    Budget { expression: String, reason: String },
}

impl Error {
    /// Wraps an error of reading a feature file with the input role it was read for.
    pub(crate) fn for_role(self, role: &'static str) -> Error {
        Error::FeaturesRole {
            role,
            source: Box::new(self),
        }
    }
}

/// An error and its sources on one line, `: `-separated.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}
