//! Errors of the report writers; each names the file being written.

use std::path::PathBuf;

/// A report file could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("cannot write {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write CSV {path}")]
    Csv {
        path: PathBuf,
        #[source]
        source: csv::Error,
    },
    #[error("cannot serialize {path}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}
