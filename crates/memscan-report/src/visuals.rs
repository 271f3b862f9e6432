//! The data only `report.html` shows: thumbnails of the closest synthetic/train pairs and of
//! the most-copied training images, and the holdout's per-image distances for the histograms.
//!
//! The pipeline fills [`Visuals`]; the report crate never decodes or resizes an image itself,
//! it only embeds the PNG bytes it is given. With `--no-images` the pipeline leaves every
//! thumbnail of a real image (training or holdout) and every difference image out, and sets
//! [`Visuals::real_images`] to `false`, which the report states at the top.

/// A small PNG, embedded in the report as a `data:` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumbnail {
    pub width: u32,
    pub height: u32,
    /// The encoded PNG file.
    pub png: Vec<u8>,
}

/// One synthetic image and its nearest training image, as shown in the gallery.
#[derive(Debug, Clone, PartialEq)]
pub struct GalleryPair {
    /// Index of the synthetic image in input order (the tie-break of the gallery order).
    pub index: usize,
    pub synthetic: String,
    pub train: String,
    /// d1: true Euclidean distance in the embedder's space.
    pub distance: f64,
    pub cosine: Option<f64>,
    /// d1/d2.
    pub ratio: Option<f64>,
    /// Flag at the primary FPR; `None` without a holdout.
    pub copy: Option<bool>,
    pub synthetic_thumb: Option<Thumbnail>,
    /// `None` under `--no-images`.
    pub train_thumb: Option<Thumbnail>,
    /// `min(1, gain · |synthetic − train|)` per pixel and channel; `None` under `--no-images`.
    pub diff_thumb: Option<Thumbnail>,
}

/// Thumbnails for one entry of `metrics.train_copied.top` (same order).
#[derive(Debug, Clone, PartialEq)]
pub struct CopiedThumbs {
    /// The training image's id (checked against the summary's entry).
    pub train: String,
    /// `None` under `--no-images`.
    pub train_thumb: Option<Thumbnail>,
    /// The closest flagged synthetic image.
    pub synthetic_thumb: Option<Thumbnail>,
}

/// Everything `report.html` needs beyond [`crate::Summary`] and the CSV rows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Visuals {
    /// Whether thumbnails of real images (training set) are embedded; `false` under
    /// `--no-images`.
    pub real_images: bool,
    /// Longest side of a thumbnail, in pixels.
    pub thumbnail_max: u32,
    /// Amplification of the difference images.
    pub diff_gain: f32,
    /// The closest synthetic/train pairs, sorted by (d1, synthetic index).
    pub gallery: Vec<GalleryPair>,
    /// Parallel to `metrics.train_copied.top`.
    pub copied: Vec<CopiedThumbs>,
    /// d1 of every holdout image to its nearest training image (input order).
    pub holdout_distance: Option<Vec<f64>>,
    /// Cosine similarity of every holdout image to its nearest training image; NaN where
    /// undefined.
    pub holdout_cosine: Option<Vec<f64>>,
}
