//! Embedders: maps from decoded images to feature vectors.
//!
//! # Brief overview
//!
//! Every embedder implements [`Embedder`]: it takes a batch of [`memscan_io::Image`]s
//! (planar `f32` pixels in `[0, 1]`, all of one shape) and returns one row per image.
//! [`embed_all`] runs an embedder over a whole set in batches (in parallel, in a fixed
//! order) and reports progress. The pipeline only sees the trait, so learned embedders
//! (candle networks) plug in beside [`PixelEmbedder`] without touching it.
//!
//! Pretrained embedders: [`EfficientNetLite0`] (ImageNet features, weights converted by
//! `cargo xtask weights fetch efficientnet-lite0`) and [`Backbone`] (a user's safetensors
//! file of a standard architecture, [`Arch`]: ResNet-18/50, DINOv2-S).
//!
//! # Distance convention
//!
//! [`EmbedderInfo::normalized`] says whether rows are L2-normalized (learned embedders:
//! `cos = 1 − d²/2`). Every distance memscan reports is the true Euclidean distance between
//! rows, so each embedder scales its output such that this distance is the one its
//! literature uses (the pixel embedder: Gu et al.'s `‖x − y‖₂ / sqrt(C·H·W)`).

mod backbone;
pub mod canon;
pub mod cnn;
mod efficientnet;
mod error;
pub mod im2col;
mod pixel;
mod prefetch;
pub mod sample;
pub mod train;
pub mod views;

pub use backbone::{to_rgb_planes, Arch, Backbone};
pub use cnn::CnnEmbedder;
pub use efficientnet::{
    same_padding, BlockConfig, Config as EfficientNetConfig, EfficientNetLite0,
};
pub use error::Error;
pub use pixel::PixelEmbedder;

use memscan_io::{Image, Reporter};
use ndarray::{Array2, ArrayViewMut1, Axis};
use rayon::prelude::*;
use serde::Serialize;

/// Sets `CANDLE_NUM_THREADS=1` unless the user has set it, so that candle runs its
/// element-wise ops on the calling thread. Call it first thing in `main`, before any thread
/// starts (it writes an environment variable, which candle reads once).
///
/// candle's element-wise ops otherwise run on a thread pool of its own whose idle workers
/// spin for a while after every op, on cores that rayon's pool (memscan's im2col, the matrix
/// products, the augmentations) and the idle-priority view preparation of [`train`] need:
/// measured on 2 cores, the cnn trains 1.2–1.5× faster with one candle thread
/// (reports/reference/embedders-cnn.md). The `memscan` binary, the benches and the examples
/// all call this, so that they measure what the binary does.
pub fn prefer_single_candle_thread() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
}

/// What an embedder is, recorded verbatim in `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmbedderInfo {
    /// Short name as used on the command line (`pixel`, `cnn`, …).
    pub name: String,
    /// Output dimension D.
    pub dim: usize,
    /// Whether output rows are L2-normalized (then `cos = 1 − d²/2`).
    pub normalized: bool,
    /// How a reported distance is to be read, in one sentence.
    pub distance: String,
    /// Embedder-specific parameters (input shape, weights hash, …).
    pub params: serde_json::Value,
}

/// A map from images to feature vectors.
pub trait Embedder: Send + Sync {
    /// Description for the report.
    fn info(&self) -> EmbedderInfo;
    /// Output dimension D.
    fn dim(&self) -> usize;
    /// Preferred number of images per [`Embedder::embed_batch`] call.
    fn batch_size(&self) -> usize {
        64
    }
    /// Whether embeddings are worth caching on disk (default `true`). An embedder that is as
    /// cheap to recompute as to read back (the pixel embedder, whose rows are the decoded
    /// pixels) returns `false`.
    fn cache_embeddings(&self) -> bool {
        true
    }
    /// Embeds a batch: returns a `images.len() × dim()` matrix, row `i` for `images[i]`.
    fn embed_batch(&self, images: &[&Image]) -> Result<Array2<f32>, Error>;
}

/// Embeds every image of `images` in order, batch by batch, batches in parallel.
///
/// Returns an `N × D` matrix. The result does not depend on the thread count: each batch is
/// computed independently and the rows are written back in input order.
pub fn embed_all(
    embedder: &dyn Embedder,
    images: &[Image],
    stage: &str,
    reporter: &dyn Reporter,
) -> Result<Array2<f32>, Error> {
    embed_generated(
        embedder,
        images.len(),
        &|i| std::borrow::Cow::Borrowed(&images[i]),
        stage,
        reporter,
    )
}

/// [`embed_all`] of the `n` images `make(0..n)`, each made when its batch is embedded, so
/// that only the batches in flight are held in memory (e.g. the crop views of a training
/// set, [`views::embed_views`]).
pub fn embed_generated<'a>(
    embedder: &dyn Embedder,
    n: usize,
    make: &(dyn Fn(usize) -> std::borrow::Cow<'a, Image> + Sync),
    stage: &str,
    reporter: &dyn Reporter,
) -> Result<Array2<f32>, Error> {
    let dim = embedder.dim();
    let batch = embedder.batch_size().max(1);
    reporter.start(stage, n as u64);
    let starts: Vec<usize> = (0..n).step_by(batch).collect();
    let batches: Result<Vec<Array2<f32>>, Error> = starts
        .par_iter()
        .map(|&start| {
            let owned: Vec<std::borrow::Cow<'a, Image>> =
                (start..(start + batch).min(n)).map(make).collect();
            let chunk: Vec<&Image> = owned.iter().map(|c| c.as_ref()).collect();
            let emb = embedder.embed_batch(&chunk)?;
            if emb.dim() != (chunk.len(), dim) {
                return Err(Error::Shape {
                    expected: (chunk.len(), dim),
                    got: emb.dim(),
                });
            }
            reporter.advance(chunk.len() as u64);
            Ok(emb)
        })
        .collect();
    reporter.finish();
    let mut out = Array2::<f32>::zeros((n, dim));
    for (rows, emb) in out.axis_chunks_iter_mut(Axis(0), batch).zip(batches?) {
        let mut rows = rows;
        rows.assign(&emb);
    }
    Ok(out)
}

/// L2-normalizes a row in place; a zero row stays zero (it has no direction).
///
/// The one place learned embedders normalize their output.
pub fn l2_normalize(mut row: ArrayViewMut1<f32>) {
    let norm = row
        .iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum::<f64>()
        .sqrt();
    if norm > 0.0 {
        row.mapv_inplace(|v| (f64::from(v) / norm) as f32);
    }
}

/// Lower-case hex SHA-256 of a byte string (weights files, recorded in `summary.json`).
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Helpers shared by the unit tests of this crate.
#[cfg(test)]
pub(crate) mod test_util {
    use candle_core::Tensor;

    /// `max |a − b|` over all elements (same shapes).
    pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }
}
