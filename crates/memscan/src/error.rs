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
    /// A `--fail-if` budget names a metric this run could not compute.
    #[error("budget `{expression}` cannot be checked: {reason}")]
    Budget { expression: String, reason: String },
}
