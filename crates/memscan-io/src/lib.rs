//! Decoding and normalization of memscan's inputs.
//!
//! # Brief overview
//!
//! [`load`] turns a path (a folder, searched recursively in sorted order, or a single
//! picture / DICOM / NIfTI / `.npy` / `.npz` file) into an [`ImageSet`]: one [`Image`] per
//! picture, array slice, DICOM frame or NIfTI slice, each resized to [`IoConfig::size`] ×
//! [`IoConfig::size`], converted to [`IoConfig::channels`] channels, with `f32` pixel values
//! in `[0, 1]` stored planar (CHW), a provenance string ([`Image::id`]: the path relative to
//! the set root, or `path#index` for arrays, multi-frame DICOM, multi-page TIFF and volumes) and a SHA-256
//! content hash ([`Image::hash`]). [`ImageSet::meta`], parallel to the images, says where each
//! DICOM or NIfTI image comes from ([`SourceMeta`]: patient, study, series, volume, and the
//! identifying DICOM attributes for leakage checks — kept in memory, never serialized).
//!
//! Bad input (corrupt, truncated, unsupported, wrong rank, NaN, constant 16-bit, DICOM without
//! pixel data or in an undecodable transfer syntax, a bad NIfTI header, an image declaring more
//! than [`MAX_PIXELS`] pixels or a volume more than [`MAX_VOLUME_VOXELS`] voxels…) is an
//! [`Error`] naming the file, or — with [`BadInputPolicy::Skip`] — a [`Skipped`] entry.
//!
//! ```no_run
//! use memscan_io::{load, IoConfig, NoReporter};
//!
//! let set = load("samples/".as_ref(), &IoConfig::default(), &NoReporter)?;
//! for image in &set.images {
//!     assert_eq!(image.pixels.len(), 64 * 64); // 1 channel, 64 × 64
//! }
//! # Ok::<_, memscan_io::Error>(())
//! ```
//!
//! # Inputs
//!
//! - Pictures: `.png .jpg .jpeg .tif .tiff .bmp` (case-insensitive; 8- and 16-bit gray,
//!   gray+alpha, RGB, RGBA, palette; 32-bit float TIFF), EXIF orientation applied. A JPEG
//!   whose data ends before its end-of-image marker (`FF D9`) is truncated, an error (bytes
//!   after that marker are ignored). Every page of a multi-page TIFF is an image,
//!   `file.tif#k` (`k` from 0; reduced-resolution pages such as thumbnails are left out).
//! - Batches: `.npy` arrays shaped `(N, H, W)`, `(N, H, W, C)` with `C ∈ {1, 3, 4}`, or
//!   `(N, C, H, W)` when `C ∈ {1, 3}` and `W ∉ {1, 3, 4}`; dtypes `uint8`, `uint16`,
//!   `float32`, `float64`. `.npz` archives: every array inside, sorted by name, is such a batch,
//!   except class labels (the class-conditional ADM/guided-diffusion `arr_1`): a 1-D integer
//!   array whose length equals an image batch's `N` is ignored.
//!   Ids are `file.npy#index` and `file.npz#name/index` (e.g. `samples.npz#arr_0/3`).
//! - DICOM: `.dcm`, `.dicom`, and any other file (no extension, or a UID-like name such as
//!   `1.2.840.113619.2.55.320`) whose bytes 128..132 are the Part 10 magic `DICM`. Gray
//!   (MONOCHROME1/2, 1–32 bits, signed or not) and color (RGB, YBR_FULL) images; single- and
//!   multi-frame (one image per frame, `file.dcm#k`); uncompressed, deflated, RLE, JPEG
//!   baseline/extended/lossless and JPEG 2000. Other transfer syntaxes (JPEG-LS, JPEG XL,
//!   HTJ2K) are [`ErrorKind::UnsupportedTransferSyntax`] bad inputs.
//! - NIfTI-1: `.nii`, `.nii.gz` (single-file NIfTI, any integer or float datatype, either byte
//!   order), 2-D to 4-D. Volumes are cut into 2-D slices along [`IoConfig::axis`]
//!   (`file.nii#k`, `k` the slice index); a 4-D file contributes its first volume;
//!   [`IoConfig::slices`] keeps a range and/or drops background slices.
//! - A folder is walked recursively (symbolic links followed), entries sorted by file name.
//!   Hidden files and folders (name starting with `.`) and sidecar files
//!   (`.csv .txt .json .md .toml`) are ignored; a file with any other extension that is not
//!   DICOM by its magic is an [`ErrorKind::UnsupportedFormat`] bad input. A path naming one
//!   file loads that file (whatever its name), and its id is the file name. Names that are not
//!   valid UTF-8 keep distinct ids: an invalid byte is written `\xHH` and a backslash `\\`
//!   (see [`Image::id`]); error messages escape invalid bytes the same way.
//!
//! # Intensity conventions
//!
//! | source | mapping to `[0, 1]` |
//! |---|---|
//! | 8-bit (PNG/JPEG/TIFF/BMP, `uint8` arrays) | `v / 255` (a blank image is a normal input) |
//! | 16-bit (PNG/TIFF, `uint16` arrays) | per-image min–max window `(v − min) / (max − min)` over the color channels (alpha: `v / 65535`); a constant image is an error |
//! | float (`float32`/`float64` arrays, float TIFF) | if the whole array (alpha included) lies in `[0, 1]`: as is; else if it lies in `[−1, 1]`: `(v + 1) / 2`; otherwise an error. NaN or ±∞ is an error for the image that holds it |
//! | DICOM gray (MONOCHROME1/2) | stored bits → `RescaleSlope · v + RescaleIntercept` (HU for CT; absent: slope 1, intercept 0; present but not a finite number, e.g. `nan` or `abc`, or a slope of 0: an error) → window `[c − w/2, c + w/2]` → `[0, 1]`, clipped, with `(c, w)` = [`IoConfig::window`] if set, else for CT the soft-tissue window (40, 400) HU, else the frame's 0.5th–99.5th percentiles (min–max if they coincide; a constant frame is an error); MONOCHROME1 is then inverted (`1 − v`). The file's own WindowCenter/Width are not used |
//! | DICOM color (RGB, YBR_FULL → RGB) | like RGB pictures: 8-bit `v / 255`, 16-bit per-image min–max |
//! | NIfTI | `scl_slope · v + scl_inter` (slope 0: no scaling) → [`IoConfig::window`] if set, else the **volume's** 0.5th–99.5th percentiles → `[0, 1]`, clipped: one scale for all slices of a volume (a constant volume is an error). NaN or ±∞ is an error for the slice that holds it |
//!
//! Resizing uses a triangle (bilinear) filter whose support widens with the downscale
//! factor, i.e. area-weighted averaging when shrinking, bilinear interpolation when enlarging,
//! on `f32` planes (16-bit precision is kept). Non-square images are stretched to
//! `size × size` (no crop, no padding).
//! RGB → 1 channel uses ITU-R BT.601 luma (`0.299 R + 0.587 G + 0.114 B`); 1 → 3 channels
//! repeats the gray plane; alpha is dropped (composited over black, i.e. multiplied in).
//!
//! # Hashes
//!
//! [`Image::hash`] is the SHA-256 of the file's bytes for a picture (a single-page TIFF) or a
//! single-frame DICOM file, and for an array slice the SHA-256 of its dtype name, shape and
//! little-endian samples in C order (so it does not depend on byte order, memory order or
//! `.npy` vs `.npz`). A frame of a multi-frame DICOM file and a NIfTI slice are hashed the same
//! way, as `float32` slices of their rescaled values (DICOM color frames: their
//! `uint8`/`uint16` samples), so a `.nii` and its `.nii.gz` give the same hashes; a page of a
//! multi-page TIFF as a slice of its decoded `uint8`/`uint16`/`float32` samples shaped
//! `(height, width, channels)`. [`ImageSet::hash`] is the SHA-256 of `"{id}\t{hash}\n"` over
//! the images in order.

mod array;
mod dicom;
mod error;
mod load;
mod nii;
mod normalize;
mod raster;
mod reporter;
#[cfg(test)]
mod testutil;
mod walk;

pub use error::{Error, ErrorKind};
pub use load::{load, Chunk, ImageStream};
pub use reporter::{NoReporter, Reporter};
pub use walk::SUPPORTED_EXTENSIONS;

/// The most pixels one image may declare: 2^28 (268,435,456, e.g. 16384 × 16384).
///
/// Checked from the header before anything is decoded or allocated, for every image: a
/// picture, a TIFF page, a DICOM frame, a NIfTI slice, an array image. A larger image is an
/// [`ErrorKind::TooManyPixels`] bad input: a few-megabyte PNG of one color can declare
/// 40000 × 40000 pixels, which as memscan's `f32` planes would take 6.4 GB per channel.
pub const MAX_PIXELS: u64 = 1 << 28;

/// The most voxels one NIfTI volume may declare: 2^30 (1,073,741,824, e.g. 512 × 512 × 4096),
/// checked from the header before any voxel is read (the volume is held as `f32`, 4 GiB at
/// most). A larger volume is an [`ErrorKind::TooManyVoxels`] bad input.
pub const MAX_VOLUME_VOXELS: u64 = 1 << 30;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;

/// What to do with an input file that cannot be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BadInputPolicy {
    /// Stop with an error naming the file (the default).
    #[default]
    Fail,
    /// Record the file in [`ImageSet::skipped`] and go on.
    Skip,
}

/// How images are decoded and normalized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IoConfig {
    /// Output side length in pixels (images are resized to `size × size`).
    pub size: u32,
    /// Output channels: 1 (gray) or 3 (RGB).
    pub channels: u8,
    /// Bad-input policy.
    pub on_bad_input: BadInputPolicy,
    /// Intensity window `(center, width)` for DICOM and NIfTI gray images, in the source's
    /// rescaled units (Hounsfield units for CT): `[center − width/2, center + width/2]` maps
    /// linearly to `[0, 1]`, values outside are clipped. `None` (the default): CT DICOM uses
    /// the soft-tissue window `(40, 400)`, other DICOM images per-frame percentile scaling,
    /// NIfTI per-volume percentile scaling (see the crate docs). The width must be positive.
    #[serde(default)]
    pub window: Option<(f64, f64)>,
    /// The axis NIfTI volumes are sliced along (default: axial, i.e. one image per `z`).
    #[serde(default)]
    pub axis: Axis,
    /// Which NIfTI slices to keep (default: all).
    #[serde(default)]
    pub slices: Option<SliceSelect>,
}

impl Default for IoConfig {
    fn default() -> Self {
        IoConfig {
            size: 64,
            channels: 1,
            on_bad_input: BadInputPolicy::Fail,
            window: None,
            axis: Axis::Axial,
            slices: None,
        }
    }
}

/// The voxel axis a NIfTI volume is cut along: each index along it is one 2-D image.
///
/// Named for a volume stored in the usual RAS-like voxel order (`i` → x, `j` → y, `k` → z);
/// the header's affine is not applied, so for an oblique or permuted volume the names describe
/// voxel axes, not anatomy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Axis {
    /// One image per `z` (third voxel axis); rows run along `y`, columns along `x`.
    #[default]
    Axial,
    /// One image per `y` (second voxel axis); rows run along `z`, columns along `x`.
    Coronal,
    /// One image per `x` (first voxel axis); rows run along `z`, columns along `y`.
    Sagittal,
}

/// A selection of NIfTI slices (indices along [`IoConfig::axis`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SliceSelect {
    /// Keep only slice indices in `start..end` (`end` is clamped to the number of slices;
    /// `start < end` is required). `None`: every index.
    #[serde(default)]
    pub range: Option<std::ops::Range<usize>>,
    /// Drop pure-background slices: those whose maximum equals the volume's minimum (after
    /// `scl_slope`/`scl_inter`, before windowing).
    #[serde(default)]
    pub skip_empty: bool,
}

/// One decoded, normalized image.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// Provenance: path relative to the set root (`/`-separated), or `path#index` for the
    /// `index`-th image of an array file (`path#name/index` inside an `.npz`), frame of a
    /// multi-frame DICOM file, page of a multi-page TIFF or slice of a NIfTI volume.
    ///
    /// Each file or folder name is its UTF-8 text with a backslash written `\\` and every
    /// byte that is not valid UTF-8 written `\xHH` (e.g. `a\xFF.png`), so two files never
    /// share an id; a valid UTF-8 name without a backslash is the id as is.
    pub id: String,
    /// Lower-case hex SHA-256 of the source content (the file bytes for single-image
    /// files; for arrays, the raw bytes of this image's slice plus its dtype and shape).
    pub hash: String,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// Planar (CHW) pixel values in `[0, 1]`; `len == channels * height * width`.
    pub pixels: Vec<f32>,
}

/// An input that was skipped under [`BadInputPolicy::Skip`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// The file (or `file#index`) that was skipped.
    pub path: String,
    /// Why, in one line (the error chain).
    pub reason: String,
}

/// Where an image comes from, for grouping (per patient, study, series, volume) and for
/// leakage checks: one entry of [`ImageSet::meta`].
///
/// The values are patient data: they stay in memory. The type is not `Serialize`, and its
/// `Debug` output redacts every value (it shows which attributes are present, not what they
/// say), so a log line or a report can't leak them by accident.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SourceMeta {
    /// DICOM PatientID (0010,0020), if present and non-empty.
    pub group_patient: Option<String>,
    /// DICOM StudyInstanceUID (0020,000D), if present and non-empty.
    pub group_study: Option<String>,
    /// DICOM SeriesInstanceUID (0020,000E), if present and non-empty.
    pub group_series: Option<String>,
    /// The file's id, for images cut from one volume: every slice of a NIfTI file and every
    /// frame of a multi-frame DICOM file. `None` for a single-frame DICOM file.
    pub group_volume: Option<String>,
    /// DICOM Modality (0008,0060), e.g. `CT`, `MR`, `CR`, if present.
    pub modality: Option<String>,
    /// The identifying DICOM attributes present with a non-empty value, as
    /// `(keyword, value)` in the order of [`DICOM_IDENTIFYING`]. Empty for NIfTI.
    pub dicom_identifying: Vec<(String, String)>,
}

/// The DICOM attributes collected into [`SourceMeta::dicom_identifying`] (keywords).
pub const DICOM_IDENTIFYING: &[&str] = &[
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientAddress",
    "InstitutionName",
    "ReferringPhysicianName",
    "StudyDate",
    "SeriesDate",
    "AcquisitionDate",
    "ContentDate",
    "AccessionNumber",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "OtherPatientIDs",
];

impl fmt::Debug for SourceMeta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        let keywords: Vec<&str> = self
            .dicom_identifying
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        f.debug_struct("SourceMeta")
            .field("group_patient", &redact(&self.group_patient))
            .field("group_study", &redact(&self.group_study))
            .field("group_series", &redact(&self.group_series))
            .field("group_volume", &self.group_volume)
            .field("modality", &self.modality)
            .field("dicom_identifying", &keywords)
            .finish()
    }
}

/// A set of images loaded from one path (one role: train, synthetic, holdout, reference).
#[derive(Debug, Clone)]
pub struct ImageSet {
    /// The path the set was loaded from.
    pub root: PathBuf,
    /// The images, in deterministic (sorted path, then array index) order.
    pub images: Vec<Image>,
    /// Parallel to `images`: where each image comes from. `Some` for DICOM and NIfTI
    /// sources, `None` for pictures and NumPy arrays.
    pub meta: Vec<Option<SourceMeta>>,
    /// Inputs skipped under [`BadInputPolicy::Skip`].
    pub skipped: Vec<Skipped>,
    /// SHA-256 over the ordered `(id, hash)` list: identifies the set's content.
    pub hash: String,
}
