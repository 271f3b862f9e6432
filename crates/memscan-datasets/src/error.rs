//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong while generating or writing a dataset.
///
/// Every I/O or encoding variant names the file or folder it was working on; the cause is
/// attached as the error's `source`, not repeated in the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A folder could not be created.
    #[error("cannot create directory {}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An image could not be encoded (PNG, TIFF).
    #[error("cannot encode image {}", path.display())]
    Encode {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    /// A file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file could not be removed.
    #[error("cannot remove {}", path.display())]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An output folder holds files that the demo did not write (it never mixes its images
    /// with others, nor deletes them).
    #[error("output directory {} is not empty", path.display())]
    NotEmpty { path: PathBuf },
    /// A CSV sidecar (`truth.csv`, `groups.csv`) could not be written or read.
    #[error("CSV error in {}", path.display())]
    Csv {
        path: PathBuf,
        #[source]
        source: csv::Error,
    },
    /// A spec (demo, injection, image buffer) is inconsistent; the message says which field.
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    /// A file is not in the format its reader expects (IDX, `.inv3`, NIfTI geometry); the
    /// message says what is wrong.
    #[error("cannot decode {}: {what}", path.display())]
    Format { path: PathBuf, what: String },
    /// A NIfTI file could not be read.
    #[error("cannot read NIfTI {}", path.display())]
    Nifti {
        path: PathBuf,
        #[source]
        source: nifti::NiftiError,
    },
    /// A real dataset is not in the cache.
    #[error("dataset {name} is not in the cache ({}); run `cargo xtask datasets fetch {name}`", path.display())]
    MissingCache { name: String, path: PathBuf },
    /// A name that is not one of the known [`crate::CopyTransform`] or [`crate::PhantomKind`] names.
    #[error("unknown {what} {name:?} (expected one of: {expected})")]
    UnknownName {
        what: &'static str,
        name: String,
        expected: &'static str,
    },
}
