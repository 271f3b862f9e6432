//! Progress reporting without printing: libraries call a [`Reporter`], the binary
//! implements it (with a progress bar), tests use [`NoReporter`].

/// Receives progress from long-running library stages. All methods have no-op defaults.
pub trait Reporter: Send + Sync {
    /// A stage with `total` units of work starts (`stage` is a short label, e.g. "decode train").
    fn start(&self, _stage: &str, _total: u64) {}
    /// `n` more units are done (may be called from several threads).
    fn advance(&self, _n: u64) {}
    /// The current stage is done.
    fn finish(&self) {}
    /// A non-fatal problem the user should hear about (e.g. a skipped file).
    fn warn(&self, _message: &str) {}
}

/// A [`Reporter`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoReporter;

impl Reporter for NoReporter {}
