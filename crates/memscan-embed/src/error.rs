//! Errors of the embedding stage.

use std::fmt;
use std::path::PathBuf;

/// An embedder could not embed a batch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An image does not have the shape the embedder was built for.
    #[error("image {id} is {got}, but the embedder expects {expected}")]
    InputShape {
        id: String,
        expected: Shape,
        got: Shape,
    },
    /// An embedder returned a matrix of the wrong shape (a bug in that embedder).
    #[error("embedder returned a {got:?} matrix for a batch that needs {expected:?}")]
    Shape {
        expected: (usize, usize),
        got: (usize, usize),
    },
    /// Invalid embedder configuration.
    #[error("invalid embedder configuration: {0}")]
    Config(String),
    /// A learned model could not be loaded, run, trained or saved (the message names the
    /// file or the step).
    #[error("cnn model: {0}")]
    Model(String),
    /// A weights file could not be read.
    #[error("cannot read weights file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A weights file is not valid safetensors, or lacks a tensor or has one of the wrong
    /// shape for the architecture (the source names the tensor).
    #[error("weights file {path} does not fit the network")]
    Weights {
        path: PathBuf,
        #[source]
        source: Box<candle_core::Error>,
    },
    /// The network failed on a batch (a bug, not bad input).
    #[error("the network failed on a batch")]
    Network {
        #[source]
        source: Box<candle_core::Error>,
    },
}

/// An image shape `C×H×W`, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}×{}×{}", self.channels, self.height, self.width)
    }
}
