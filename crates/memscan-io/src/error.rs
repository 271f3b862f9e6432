//! The error type of `memscan-io`.
//!
//! An [`Error`] says *where* (the file, and inside an array file the array and image: the
//! `#item` suffix, same convention as [`Image::id`](crate::Image::id)) and *what* (an
//! [`ErrorKind`]) in one line, e.g. `cannot decode /x/a.png: truncated or corrupt PNG` or
//! `cannot decode /x/b.npz#arr_0/3: contains NaN or infinite values`. The underlying I/O or
//! decoder error is attached as [`source`](std::error::Error::source) and never repeated in
//! the message, so the chain (`{:#}` with anyhow) reads top-down without saying anything twice.

use std::fmt;
use std::path::{Path, PathBuf};

/// An error while loading images, naming the file (or folder) it is about.
///
/// (Boxed: decoder errors are large, and `Result<_, Error>` stays one pointer wide.)
#[derive(Debug)]
pub struct Error(Box<Inner>);

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    item: Option<String>,
    kind: ErrorKind,
}

impl Error {
    pub(crate) fn new(path: impl Into<PathBuf>, kind: ErrorKind) -> Self {
        Error(Box::new(Inner {
            path: path.into(),
            item: None,
            kind,
        }))
    }

    /// Attaches the location inside an array file (`"3"` for an `.npy`, `"arr_0"` or
    /// `"arr_0/3"` for an `.npz`).
    pub(crate) fn with_item(mut self, item: impl Into<String>) -> Self {
        self.0.item = Some(item.into());
        self
    }

    /// The file (or, for a set-level error such as [`ErrorKind::EmptySet`], the folder).
    pub fn path(&self) -> &Path {
        &self.0.path
    }

    /// Inside an array file: the image (`"3"` in an `.npy`, `"arr_0/3"` in an `.npz`) or the
    /// array (`"arr_0"`) the error is about; `None` for errors about a whole file.
    pub fn item(&self) -> Option<&str> {
        self.0.item.as_deref()
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.0.kind
    }

    /// Consumes the error, returning what went wrong.
    pub fn into_kind(self) -> ErrorKind {
        self.0.kind
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Inner { path, item, kind } = &*self.0;
        let verb = match kind {
            ErrorKind::Io(_) => "cannot read",
            ErrorKind::EmptySet
            | ErrorKind::BadChannels { .. }
            | ErrorKind::BadSize { .. }
            | ErrorKind::BadWindow { .. }
            | ErrorKind::BadSliceRange { .. } => "cannot load",
            _ => "cannot decode",
        };
        write!(f, "{verb} {}", crate::walk::display_path(path))?;
        if let Some(item) = item {
            write!(f, "#{item}")?;
        }
        match kind {
            // The io::Error (the source) says it all.
            ErrorKind::Io(_) => Ok(()),
            _ => write!(f, ": {kind}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // The kind's own text is already part of our message: expose its cause directly.
        std::error::Error::source(&self.0.kind)
    }
}

/// What went wrong (always reported inside an [`Error`] that names the file).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Reading the file or listing the folder failed (includes a non-existent path).
    #[error("I/O error")]
    Io(#[source] std::io::Error),
    /// The image decoder rejected the file (corrupt, truncated, unsupported variant, too
    /// large for the decoder's memory limit).
    #[error("{}", decode_problem(.format, .source))]
    Decode {
        /// The format the file was decoded as (`"PNG"`, `"JPEG"`, `"TIFF"`, `"BMP"`, …).
        format: String,
        #[source]
        source: image::ImageError,
    },
    /// The file's extension is neither a supported format nor an ignored sidecar.
    #[error("{}", unsupported_format(.extension))]
    UnsupportedFormat {
        /// The lower-case extension without the dot (empty if the file has none).
        extension: String,
    },
    /// No image was found (or all were skipped).
    #[error("no images found")]
    EmptySet,
    /// An array's shape is not a batch of images.
    #[error(
        "array of shape {} is not a batch of images: expected (N, H, W), \
         (N, H, W, C) with C in {{1, 3, 4}} or (N, C, H, W) with C in {{1, 3}}, H, W ≥ 1",
        tuple(.shape)
    )]
    BadShape {
        /// The array's shape as stored in the file.
        shape: Vec<usize>,
    },
    /// A decoded image has zero width or height.
    #[error("image is empty ({width}×{height} pixels)")]
    EmptyImage { width: u32, height: u32 },
    /// An array's dtype is not one of uint8, uint16, float32, float64.
    #[error("unsupported array dtype `{dtype}`: expected uint8, uint16, float32 or float64")]
    UnsupportedDtype {
        /// The NumPy type descriptor, e.g. `<i8`.
        dtype: String,
    },
    /// An `.npy` of dtype object: how NumPy stores a list of differently-sized images.
    #[error(
        "array of dtype object (e.g. a list of differently-sized images): \
         save equal-sized images as one numeric array instead"
    )]
    ObjectArray,
    /// A float image contains NaN or ±∞.
    #[error("contains NaN or infinite values")]
    NonFinite {
        /// The image's index in its array (`None` for a single-image file).
        index: Option<usize>,
    },
    /// A float array's values lie in neither `[0, 1]` nor `[-1, 1]`.
    #[error("float values span [{min}, {max}], inside neither [0, 1] nor [-1, 1]")]
    OutOfRange { min: f64, max: f64 },
    /// An image scaled by its own intensities (16-bit min–max, DICOM percentiles) is
    /// constant, or a NIfTI volume is, so its intensity window is undefined.
    #[error("image is constant, so it has no min–max or percentile intensity window")]
    ConstantImage {
        /// The image's index in its array, frame in its DICOM file or slice in its volume
        /// (`None` for a single-image file or a whole volume).
        index: Option<usize>,
    },
    /// An array file holds fewer data bytes than its header declares.
    #[error(
        "array data is truncated: the header declares {expected} bytes, {available} are present"
    )]
    TruncatedArray { expected: u64, available: u64 },
    /// An `.npy` file (or an array inside an `.npz`) is malformed.
    #[error("invalid NPY data")]
    Npy(#[source] ndarray_npy::ReadNpyError),
    /// An `.npz` archive is malformed.
    #[error("invalid NPZ archive")]
    Npz(#[source] zip::result::ZipError),
    /// A DICOM file that could not be parsed: not DICOM (no `DICM` magic and no file meta
    /// group), a corrupt data set, or a truncated file.
    #[error("invalid or truncated DICOM file")]
    Dicom(#[source] dicom_object::ReadError),
    /// A DICOM element declares a value longer than the rest of the file: a truncated file,
    /// or a corrupt length field (caught before the parser allocates that length).
    #[error(
        "truncated or corrupt DICOM file: element {tag} declares {declared} bytes, \
         {available} remain"
    )]
    TruncatedDicom {
        /// The element's tag, e.g. `(7FE0,0010)` for PixelData.
        tag: String,
        declared: u32,
        available: u64,
    },
    /// A DICOM file's pixel data holds fewer bytes than NumberOfFrames × Rows × Columns ×
    /// SamplesPerPixel samples need.
    #[error(
        "DICOM pixel data is too short for its NumberOfFrames, Rows, Columns and \
         SamplesPerPixel: {expected} bytes needed, {available} present"
    )]
    ShortPixelData { expected: u64, available: u64 },
    /// A DICOM file's pixel data could not be decoded (corrupt compressed data, attributes
    /// inconsistent with the data).
    #[error("cannot decode the DICOM pixel data")]
    DicomPixelData(#[source] dicom_pixeldata::Error),
    /// A DICOM file without an image: no PixelData (7FE0,0010) element.
    #[error(
        "DICOM file has no PixelData: not an image \
         (e.g. a structured report, a presentation state or float pixel data)"
    )]
    MissingPixelData,
    /// The DICOM file's transfer syntax is unknown, or known but has no decoder in this
    /// build (e.g. JPEG-LS, JPEG XL, HTJ2K).
    #[error("{}", unsupported_transfer_syntax(.uid, .name.as_deref()))]
    UnsupportedTransferSyntax {
        /// The transfer syntax UID, e.g. `1.2.840.10008.1.2.4.80`.
        uid: String,
        /// Its name, if the UID is a known transfer syntax.
        name: Option<String>,
    },
    /// A DICOM image attribute has a value memscan does not decode (e.g. PhotometricInterpretation
    /// `PALETTE COLOR`, BitsAllocated 64) or that is inconsistent (BitsStored 0).
    #[error("unsupported DICOM image: {attribute} is {value}")]
    UnsupportedDicomImage {
        /// The attribute keyword, e.g. `PhotometricInterpretation`.
        attribute: &'static str,
        /// Its value as found.
        value: String,
    },
    /// A DICOM attribute memscan uses is present with a value it cannot use (e.g. a
    /// RescaleSlope of `nan`, `inf` or `abc`); an absent or empty attribute takes its
    /// documented default instead.
    #[error("invalid DICOM attribute: {attribute} is `{value}`, expected {expected}")]
    InvalidDicomAttribute {
        /// The attribute keyword, e.g. `RescaleSlope`.
        attribute: &'static str,
        /// Its value as found (trimmed of padding).
        value: String,
        /// What a usable value is.
        expected: &'static str,
    },
    /// A NIfTI file that could not be parsed (wrong magic, truncated header, corrupt gzip).
    #[error("invalid or truncated NIfTI-1 file")]
    Nifti(#[source] nifti::NiftiError),
    /// A NIfTI-1 header field with an invalid or unsupported value.
    #[error("invalid NIfTI-1 header: {field} is {value}, expected {expected}")]
    BadNiftiHeader {
        /// The header field, e.g. `sizeof_hdr`, `dim[2]`, `bitpix`.
        field: &'static str,
        /// Its value as read.
        value: String,
        /// What a readable file has there.
        expected: String,
    },
    /// A NIfTI file holds fewer voxel bytes than its header declares.
    #[error(
        "NIfTI volume data is truncated: the header declares {expected} bytes, {available} are present"
    )]
    TruncatedVolume { expected: u64, available: u64 },
    /// A NIfTI datatype other than the integer and float types (complex, RGB, float128).
    #[error("unsupported NIfTI datatype {datatype}: expected an integer or floating-point type")]
    UnsupportedNiftiDatatype {
        /// The datatype's name (e.g. `Complex64`) or numeric code.
        datatype: String,
    },
    /// An image declares more than [`MAX_PIXELS`](crate::MAX_PIXELS) pixels (a
    /// decompression bomb or a corrupt header): rejected from its header, before its pixels are
    /// decoded or allocated.
    #[error(
        "image declares {width}×{height} pixels ({}), more than the limit of {} \
         (2^28) pixels per image",
        .width.saturating_mul(*.height),
        crate::MAX_PIXELS
    )]
    TooManyPixels { width: u64, height: u64 },
    /// A NIfTI volume declares more than [`MAX_VOLUME_VOXELS`](crate::MAX_VOLUME_VOXELS)
    /// voxels: rejected from its header, before its voxels are read.
    #[error(
        "volume declares {nx}×{ny}×{nz} voxels ({}), more than the limit of {} \
         (2^30) voxels per volume",
        .nx.saturating_mul(*.ny).saturating_mul(*.nz),
        crate::MAX_VOLUME_VOXELS
    )]
    TooManyVoxels { nx: u64, ny: u64, nz: u64 },
    /// [`IoConfig::window`](crate::IoConfig::window) has a width that is not positive, or a
    /// value that is not finite.
    #[error("intensity window (center {center}, width {width}) needs a finite center and a positive finite width")]
    BadWindow { center: f64, width: f64 },
    /// [`SliceSelect::range`](crate::SliceSelect::range) is empty.
    #[error("slice range {start}..{end} is empty")]
    BadSliceRange { start: usize, end: usize },
    /// [`IoConfig::channels`](crate::IoConfig::channels) is neither 1 nor 3.
    #[error("output channels must be 1 or 3, got {channels}")]
    BadChannels { channels: u8 },
    /// [`IoConfig::size`](crate::IoConfig::size) is 0.
    #[error("output size must be at least 1 pixel, got {size}")]
    BadSize { size: u32 },
}

fn decode_problem(format: &str, source: &image::ImageError) -> String {
    use image::ImageError as E;
    match source {
        E::Decoding(_) | E::IoError(_) => format!("truncated or corrupt {format}"),
        E::Unsupported(_) => format!("unsupported {format} variant"),
        E::Limits(_) => format!("{format} exceeds the decoder's memory limit"),
        _ => format!("invalid {format}"),
    }
}

fn unsupported_transfer_syntax(uid: &str, name: Option<&str>) -> String {
    let what = match name {
        Some(name) => format!("unsupported DICOM transfer syntax {name} ({uid})"),
        None => format!("unrecognized DICOM transfer syntax `{uid}`"),
    };
    format!("{what}: decompress the file first (e.g. `gdcmconv --raw` or `dcmdjpeg`/`dcmdjpls`)")
}

/// A shape as NumPy prints it: `(2, 64, 64)`, `(4,)`.
fn tuple(shape: &[usize]) -> String {
    match shape {
        [d] => format!("({d},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn unsupported_format(extension: &str) -> String {
    let supported = crate::SUPPORTED_EXTENSIONS.join(", ");
    if extension.is_empty() {
        format!("file has no extension (supported: {supported})")
    } else {
        format!("unsupported file type `.{extension}` (supported: {supported})")
    }
}

/// Formats an error and its chain of sources on one line, `a: b: c`, leaving out a source
/// whose text its parent already ends with (some decoders repeat their cause), and folding
/// line breaks inside a decoder's text into spaces.
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let one_line = |e: &dyn std::error::Error| {
        e.to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut out = one_line(err);
    let mut source = err.source();
    while let Some(e) = source {
        let text = one_line(e);
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn io_error_names_path_and_keeps_cause_as_source() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let err = Error::new("/x/a.png", ErrorKind::Io(io));
        assert_eq!(err.to_string(), "cannot read /x/a.png");
        assert_eq!(err.source().unwrap().to_string(), "no such file");
        assert_eq!(chain(&err), "cannot read /x/a.png: no such file");
    }

    #[test]
    fn item_is_appended_like_an_id() {
        let err =
            Error::new("/x/b.npz", ErrorKind::NonFinite { index: Some(3) }).with_item("arr_0/3");
        assert_eq!(
            err.to_string(),
            "cannot decode /x/b.npz#arr_0/3: contains NaN or infinite values"
        );
        assert_eq!(err.item(), Some("arr_0/3"));
        assert!(err.source().is_none());
    }

    #[test]
    fn unsupported_format_lists_supported_extensions() {
        let err = Error::new(
            "/x/a.gif",
            ErrorKind::UnsupportedFormat {
                extension: "gif".into(),
            },
        );
        let msg = err.to_string();
        assert!(
            msg.starts_with("cannot decode /x/a.gif: unsupported file type `.gif`"),
            "{msg}"
        );
        assert!(msg.contains("png"), "{msg}");
        let err = Error::new(
            "/x/README",
            ErrorKind::UnsupportedFormat {
                extension: String::new(),
            },
        );
        assert!(err.to_string().contains("no extension"));
    }

    #[test]
    fn chain_skips_repeated_source_text() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer: inner")]
        struct Outer(#[source] Inner);
        #[derive(Debug, thiserror::Error)]
        #[error("inner")]
        struct Inner;
        assert_eq!(chain(&Outer(Inner)), "outer: inner");
    }

    #[test]
    fn error_is_send_sync_static_and_small() {
        fn assert_bounds<T: std::error::Error + Send + Sync + 'static>() {}
        assert_bounds::<Error>();
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
    }

    #[test]
    fn chain_is_one_line() {
        let io = std::io::Error::other("bad bytes\n  at offset 3\n");
        let err = Error::new("/x/a.jpg", ErrorKind::Io(io));
        assert_eq!(chain(&err), "cannot read /x/a.jpg: bad bytes at offset 3");
    }

    #[test]
    fn shapes_print_like_numpy() {
        assert_eq!(tuple(&[4]), "(4,)");
        assert_eq!(tuple(&[2, 64, 64]), "(2, 64, 64)");
        let err = Error::new("/x/a.npy", ErrorKind::BadShape { shape: vec![2, 2] });
        assert!(err
            .to_string()
            .starts_with("cannot decode /x/a.npy: array of shape (2, 2) is not"));
    }
}
