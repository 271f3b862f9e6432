//! DICOM files (`.dcm`, `.dicom`, or any file with the `DICM` magic): one image per frame,
//! plus the grouping keys and identifying attributes ([`SourceMeta`]).
//!
//! Parsing is `dicom-object`'s (from the file's bytes, preamble detected); pixel data is
//! decoded by `dicom-pixeldata` with the pure-Rust codecs (native, RLE, JPEG baseline /
//! extended / lossless, deflate) and JPEG 2000 through bundled OpenJPEG. The transfer syntax is
//! checked against the registry first, so an undecodable one (JPEG-LS, JPEG XL, HTJ2K…) is an
//! [`ErrorKind::UnsupportedTransferSyntax`] naming it.
//!
//! Gray images (MONOCHROME1/2), per frame:
//! 1. stored values: the `BitsStored` bits below `HighBit`, sign-extended when
//!    `PixelRepresentation` is 1;
//! 2. the modality rescale `v · RescaleSlope + RescaleIntercept` (per frame in enhanced
//!    multi-frame objects): Hounsfield units for CT; a Modality LUT Sequence is not applied.
//!    Absent (or empty), the slope is 1 and the intercept 0; present with a value that is not
//!    a finite number (`nan`, `inf`, `abc`), or a slope of 0, it is
//!    [`ErrorKind::InvalidDicomAttribute`] for the file;
//! 3. an intensity window to `[0, 1]`, clipped: [`IoConfig::window`] if set; else for
//!    `Modality` CT the soft-tissue window (center 40 HU, width 400 HU, i.e. −160…240 HU);
//!    else percentile scaling of the frame (0.5th → 0, 99.5th → 1; min–max if they coincide; a
//!    constant frame is [`ErrorKind::ConstantImage`]). The file's own WindowCenter/WindowWidth
//!    are not used: they differ between series and scanners, and the audit compares images
//!    across sources, so one rule per modality keeps equal tissue at equal gray levels;
//! 4. MONOCHROME1 (low values white) is inverted after windowing, so every image is
//!    MONOCHROME2-like.
//!
//! Color images (RGB, YBR_FULL; planar or interleaved) are converted like RGB pictures: 8-bit
//! `v / 255`, 16-bit per-image min–max; YBR_FULL is converted to RGB first (compressed YBR
//! data arrives as RGB from its decoder). [`IoConfig::window`] does not apply to them.
//!
//! A single-frame file is one image, id = the file's id, hash = SHA-256 of the file's bytes.
//! A multi-frame file gives one image per frame, `file#k` (`k` from 0), each hashed like an
//! array slice: `float32` modality values shaped `(rows, columns)` for gray frames, the stored
//! `uint8`/`uint16` samples shaped `(rows, columns, 3)` for color ones. A problem with one frame
//! (constant, NaN rescale) rejects that frame only; pixel data shorter than its frames need is
//! [`ErrorKind::ShortPixelData`] for the file.
//!
//! Corrupt input: no dependency panic was found (truncated files, every header byte flipped,
//! lying lengths and attributes are tried in the tests), so there is no `catch_unwind`. Two
//! hazards are headed off before the dependencies see them: declared element lengths are
//! checked against the file size before parsing (the parser allocates and zero-fills a
//! declared length up front: one corrupt length field cost gigabytes and seconds), and
//! BitsAllocated/BitsStored/NumberOfFrames are validated, with samples converted here rather
//! than through `dicom-pixeldata`'s lookup tables (which assert `BitsStored ≠ 0` and allocate
//! `2^BitsStored` entries). A frame of more than [`MAX_PIXELS`](crate::MAX_PIXELS) pixels
//! (Rows × Columns) is [`ErrorKind::TooManyPixels`] before any pixel is decoded (the codecs
//! also refuse output far larger than their compressed input).

use crate::error::ErrorKind;
use crate::load::{Decoded, Outcome, Rejected};
use crate::normalize::{
    check_pixels, make_image, percentile_window, planes, sha256_hex, slice_hash, window_bounds,
    Intensity, Planes, Sample,
};
use crate::{IoConfig, SourceMeta, DICOM_IDENTIFYING};
use dicom_dictionary_std::tags;
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_object::{DefaultDicomObject, OpenFileOptions, ReadError, Tag};
use dicom_pixeldata::{
    DecodedPixelData, PhotometricInterpretation, PixelDecoder, PixelRepresentation,
    PlanarConfiguration,
};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use ndarray::ArrayView3;
use rayon::prelude::*;
use std::path::Path;

/// The soft-tissue window `(center, width)` in HU used for CT when no window is configured.
pub(crate) const CT_SOFT_TISSUE_WINDOW: (f64, f64) = (40.0, 400.0);

/// The tags of [`DICOM_IDENTIFYING`], in the same order.
const IDENTIFYING_TAGS: [Tag; 15] = [
    tags::PATIENT_NAME,
    tags::PATIENT_ID,
    tags::PATIENT_BIRTH_DATE,
    tags::PATIENT_ADDRESS,
    tags::INSTITUTION_NAME,
    tags::REFERRING_PHYSICIAN_NAME,
    tags::STUDY_DATE,
    tags::SERIES_DATE,
    tags::ACQUISITION_DATE,
    tags::CONTENT_DATE,
    tags::ACCESSION_NUMBER,
    tags::STUDY_INSTANCE_UID,
    tags::SERIES_INSTANCE_UID,
    tags::SOP_INSTANCE_UID,
    // Retired, but still written by many devices and anonymizers leave it behind.
    Tag(0x0010, 0x1000),
];

/// Decodes every frame of the DICOM file at `path` (whose id is `id`).
pub(crate) fn decode(path: &Path, id: &str, cfg: &IoConfig) -> Vec<Outcome> {
    let reject = |kind, frame: Option<usize>| Rejected::new(path, id, kind, frame);
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => return vec![Err(reject(ErrorKind::Io(e), None))],
    };
    let file_hash = sha256_hex(&bytes);
    let obj = match check_lengths(&bytes).and_then(|()| open(&bytes)) {
        Ok(obj) => obj,
        Err(kind) => return vec![Err(reject(kind, None))],
    };
    drop(bytes);
    let meta = source_meta(&obj);
    let pixels = match decode_pixels(&obj) {
        Ok(pixels) => pixels,
        Err(kind) => return vec![Err(reject(kind, None))],
    };
    let layout = match Layout::of(&pixels) {
        Ok(layout) => layout,
        Err(kind) => return vec![Err(reject(kind, None))],
    };

    let gray_window = match (cfg.window, &meta.modality) {
        (Some(window), _) => Some(window_bounds(window)),
        (None, Some(m)) if m.eq_ignore_ascii_case("CT") => {
            Some(window_bounds(CT_SOFT_TISSUE_WINDOW))
        }
        (None, _) => None,
    };
    let frames = pixels.number_of_frames() as usize;
    if frames == 1 {
        let image =
            frame_planes(&pixels, &layout, 0, gray_window, None).map(|(_, planes)| Decoded {
                image: make_image(id.to_owned(), file_hash, planes, cfg),
                meta: Some(meta),
            });
        return vec![image.map_err(|kind| reject(kind, None))];
    }
    let meta = SourceMeta {
        group_volume: Some(id.to_owned()),
        ..meta
    };
    (0..frames)
        .into_par_iter()
        .map(|k| {
            let (hash, planes) = frame_planes(&pixels, &layout, k, gray_window, Some(k))
                .map_err(|kind| reject(kind, Some(k)))?;
            Ok(Decoded {
                image: make_image(format!("{id}#{k}"), hash, planes, cfg),
                meta: Some(meta.clone()),
            })
        })
        .collect()
}

/// Elements of undefined length (sequences, items, encapsulated pixel data).
const UNDEFINED_LENGTH: u32 = 0xFFFF_FFFF;

/// How a data set's element headers are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    ExplicitLe,
    ImplicitLe,
    ExplicitBe,
}

/// Checks that no element declares more bytes than the file has left.
///
/// `dicom-parser` allocates (and zero-fills) a value's declared length before reading it, so a
/// single corrupt length field costs up to 4 GiB of memory and seconds of work per file (and
/// for text values, whose buffer is not allocated fallibly, an abort if memory runs out). This
/// walk over the element headers is linear and allocation-free: it skips every defined-length
/// value (whole sequences and items included) and steps into undefined-length ones, reading
/// each header as the parser would. Any other problem is left to the parser to diagnose. A
/// deflated data set is not checked (its lengths are inside the compressed stream).
fn check_lengths(bytes: &[u8]) -> Result<(), ErrorKind> {
    let start = if bytes.get(128..132) == Some(b"DICM") {
        132
    } else if bytes.starts_with(b"DICM") {
        4
    } else {
        return Ok(());
    };
    let mut walker = Walker { bytes, pos: start };
    let mut transfer_syntax = "";
    // The file meta group: explicit VR little endian, group 0002.
    while walker.peek_group(Encoding::ExplicitLe) == Some(0x0002) {
        let Some((tag, len)) = walker.header(Encoding::ExplicitLe) else {
            return Ok(());
        };
        if tag == (0x0002, 0x0010) && len != UNDEFINED_LENGTH {
            let value = bytes
                .get(walker.pos..walker.pos + len as usize)
                .unwrap_or(&[]);
            transfer_syntax = std::str::from_utf8(value).unwrap_or("");
        }
        walker.skip(tag, len)?;
    }
    let encoding = match transfer_syntax.trim_end_matches(['\0', ' ']) {
        "1.2.840.10008.1.2" => Encoding::ImplicitLe,
        "1.2.840.10008.1.2.2" => Encoding::ExplicitBe,
        "1.2.840.10008.1.2.1.99" => return Ok(()),
        _ => Encoding::ExplicitLe,
    };
    while let Some((tag, len)) = walker.header(encoding) {
        walker.skip(tag, len)?;
    }
    Ok(())
}

/// A cursor over element headers (see [`check_lengths`]).
struct Walker<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Walker<'_> {
    fn u16_at(&self, at: usize, encoding: Encoding) -> Option<u16> {
        let b: [u8; 2] = self.bytes.get(at..at + 2)?.try_into().ok()?;
        Some(match encoding {
            Encoding::ExplicitBe => u16::from_be_bytes(b),
            _ => u16::from_le_bytes(b),
        })
    }

    fn u32_at(&self, at: usize, encoding: Encoding) -> Option<u32> {
        let b: [u8; 4] = self.bytes.get(at..at + 4)?.try_into().ok()?;
        Some(match encoding {
            Encoding::ExplicitBe => u32::from_be_bytes(b),
            _ => u32::from_le_bytes(b),
        })
    }

    fn peek_group(&self, encoding: Encoding) -> Option<u16> {
        self.u16_at(self.pos, encoding)
    }

    /// Reads the next element header: its tag and declared value length. `None` at the end
    /// of the data.
    fn header(&mut self, encoding: Encoding) -> Option<((u16, u16), u32)> {
        let at = self.pos;
        let tag = (self.u16_at(at, encoding)?, self.u16_at(at + 2, encoding)?);
        let (len, header_len) = if tag.0 == 0xFFFE || encoding == Encoding::ImplicitLe {
            // Items and delimiters have no VR, in any encoding.
            (self.u32_at(at + 4, encoding)?, 8)
        } else {
            // As `dicom-encoding` reads it: a 2-byte length for these VRs; a reserved field and
            // a 4-byte length for every other VR, unknown ones included (read as UN).
            match self.bytes.get(at + 4..at + 6)? {
                b"AE" | b"AS" | b"AT" | b"CS" | b"DA" | b"DS" | b"DT" | b"FL" | b"FD" | b"IS"
                | b"LO" | b"LT" | b"PN" | b"SH" | b"SL" | b"SS" | b"ST" | b"TM" | b"UI" | b"UL"
                | b"US" => (u32::from(self.u16_at(at + 6, encoding)?), 8),
                _ => (self.u32_at(at + 8, encoding)?, 12),
            }
        };
        self.pos = at + header_len;
        Some((tag, len))
    }

    /// Skips a defined-length value; an undefined-length one is walked into instead.
    fn skip(&mut self, (group, element): (u16, u16), len: u32) -> Result<(), ErrorKind> {
        if len == UNDEFINED_LENGTH {
            return Ok(());
        }
        let available = (self.bytes.len() - self.pos) as u64;
        if u64::from(len) > available {
            return Err(ErrorKind::TruncatedDicom {
                tag: format!("({group:04X},{element:04X})"),
                declared: len,
                available,
            });
        }
        self.pos += len as usize;
        Ok(())
    }
}

/// Parses a DICOM file held in memory (the 128-byte preamble is detected).
fn open(bytes: &[u8]) -> Result<DefaultDicomObject, ErrorKind> {
    OpenFileOptions::new()
        .from_reader(bytes)
        .map_err(|e| match e {
            ReadError::ReadUnrecognizedTransferSyntax { uid, .. } => {
                ErrorKind::UnsupportedTransferSyntax { uid, name: None }
            }
            ReadError::ReadUnsupportedTransferSyntax { uid, name, .. }
            | ReadError::ReadUnsupportedTransferSyntaxWithSuggestion { uid, name, .. } => {
                ErrorKind::UnsupportedTransferSyntax {
                    uid: uid.to_owned(),
                    name: Some(name.to_owned()),
                }
            }
            e => ErrorKind::Dicom(e),
        })
}

/// Checks that the object has pixel data in a decodable transfer syntax, frames of at most
/// [`MAX_PIXELS`](crate::MAX_PIXELS) pixels and (gray images) usable rescale values, and
/// decodes it.
fn decode_pixels(obj: &DefaultDicomObject) -> Result<DecodedPixelData<'_>, ErrorKind> {
    if obj.get(tags::PIXEL_DATA).is_none() {
        return Err(ErrorKind::MissingPixelData);
    }
    let uid = obj.meta().transfer_syntax();
    match TransferSyntaxRegistry.get(uid) {
        None => {
            return Err(ErrorKind::UnsupportedTransferSyntax {
                uid: uid.to_owned(),
                name: None,
            })
        }
        Some(ts) if !ts.can_decode_all() => {
            return Err(ErrorKind::UnsupportedTransferSyntax {
                uid: uid.to_owned(),
                name: Some(ts.name().to_owned()),
            })
        }
        Some(_) => {}
    }
    let dimension = |tag| obj.get(tag).and_then(|e| e.to_int::<u32>().ok());
    if let (Some(rows), Some(cols)) = (dimension(tags::ROWS), dimension(tags::COLUMNS)) {
        check_pixels(cols.into(), rows.into())?;
    }
    // The rescale applies to gray images only (color ones ignore it).
    let gray = obj
        .get(tags::PHOTOMETRIC_INTERPRETATION)
        .and_then(|e| e.to_str().ok())
        .is_none_or(|pi| pi.trim().starts_with("MONOCHROME"));
    if gray {
        check_rescale(obj)?;
    }
    obj.decode_pixel_data().map_err(ErrorKind::DicomPixelData)
}

/// Checks every RescaleSlope and RescaleIntercept of `obj` (top level, per-frame and shared
/// functional groups, where `dicom-pixeldata` looks for them): each one present with a
/// non-empty value must be a finite number, and a slope must not be 0.
///
/// `dicom-pixeldata` replaces a value it cannot read (`nan`, `inf`, `abc`) by the default
/// (slope 1, intercept 0) without saying so, which would silently give wrong HU; an absent or
/// empty attribute does take the default, as documented.
fn check_rescale(obj: &DefaultDicomObject) -> Result<(), ErrorKind> {
    for (tag, attribute, expected) in [
        (
            tags::RESCALE_SLOPE,
            "RescaleSlope",
            "a finite, non-zero number",
        ),
        (
            tags::RESCALE_INTERCEPT,
            "RescaleIntercept",
            "a finite number",
        ),
    ] {
        let functional_groups = [
            tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE,
            tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE,
        ]
        .into_iter()
        .filter_map(|sequence| obj.get(sequence)?.items())
        .flatten()
        .flat_map(|item| {
            let nested = item
                .get(tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE)
                .and_then(|e| e.items()?.first()?.get(tag));
            // Some writers put it directly in the functional group item.
            [nested, item.get(tag)]
        });
        for element in std::iter::once(obj.get(tag))
            .chain(functional_groups)
            .flatten()
        {
            let value = element
                .to_str()
                .map(|s| {
                    s.trim_matches(|c: char| c == '\0' || c.is_whitespace())
                        .to_owned()
                })
                .unwrap_or_default();
            if value.is_empty() {
                continue;
            }
            // A slope of 0 maps every pixel to the intercept: a blank frame for CT, an error
            // far from the value for any other modality.
            let usable = element.to_multi_float64().is_ok_and(|v| {
                !v.is_empty()
                    && v.iter()
                        .all(|x| x.is_finite() && (tag != tags::RESCALE_SLOPE || *x != 0.0))
            });
            if !usable {
                return Err(ErrorKind::InvalidDicomAttribute {
                    attribute,
                    value,
                    expected,
                });
            }
        }
    }
    Ok(())
}

/// The grouping keys and identifying attributes of `obj` (`group_volume` left unset).
fn source_meta(obj: &DefaultDicomObject) -> SourceMeta {
    let text = |tag: Tag| -> Option<String> {
        let value = obj.get(tag)?.to_str().ok()?;
        let value = value.trim_matches(|c: char| c == '\0' || c.is_whitespace());
        (!value.is_empty()).then(|| value.to_owned())
    };
    let dicom_identifying = DICOM_IDENTIFYING
        .iter()
        .zip(IDENTIFYING_TAGS)
        .filter_map(|(&keyword, tag)| Some((keyword.to_owned(), text(tag)?)))
        .collect();
    SourceMeta {
        group_patient: text(tags::PATIENT_ID),
        group_study: text(tags::STUDY_INSTANCE_UID),
        group_series: text(tags::SERIES_INSTANCE_UID),
        group_volume: None,
        modality: text(tags::MODALITY),
        dicom_identifying,
    }
}

/// The validated sample layout of decoded pixel data.
#[derive(Debug, Clone, Copy)]
struct Layout {
    rows: usize,
    cols: usize,
    color: Color,
    /// 1 (expanded by the decoder to one byte per sample), 8, 16 or 32.
    bits_allocated: u16,
    /// Right shift that brings the stored bits down to bit 0.
    shift: u32,
    bits_stored: u32,
    signed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Color {
    /// MONOCHROME2, or MONOCHROME1 when `invert`.
    Gray { invert: bool },
    /// RGB or YBR_FULL (`ybr`), planar or interleaved.
    Rgb { ybr: bool, planar: bool },
}

impl Layout {
    fn of(px: &DecodedPixelData<'_>) -> Result<Self, ErrorKind> {
        let unsupported =
            |attribute, value: String| Err(ErrorKind::UnsupportedDicomImage { attribute, value });
        let (rows, cols) = (px.rows(), px.columns());
        if rows == 0 || cols == 0 {
            return Err(ErrorKind::EmptyImage {
                width: cols,
                height: rows,
            });
        }
        let bits_allocated = px.bits_allocated();
        if !matches!(bits_allocated, 1 | 8 | 16 | 32) {
            return unsupported("BitsAllocated", bits_allocated.to_string());
        }
        let bits_stored = px.bits_stored();
        if bits_stored == 0 || bits_stored > bits_allocated {
            return unsupported("BitsStored", bits_stored.to_string());
        }
        let frames = px.number_of_frames();
        if frames == 0 {
            return unsupported("NumberOfFrames", "0".into());
        }
        // Checked here, not per frame: a corrupt NumberOfFrames (up to 2³¹) would otherwise
        // give one rejection per missing frame.
        let expected = u64::from(frames)
            * u64::from(rows)
            * u64::from(cols)
            * u64::from(px.samples_per_pixel())
            * u64::from(bits_allocated.div_ceil(8));
        let available = px.data().len() as u64;
        if expected > available {
            return Err(ErrorKind::ShortPixelData {
                expected,
                available,
            });
        }
        // The decoder expands 1-bit samples to bytes of 0 or 255: keep bit 0.
        let high_bit = if bits_allocated == 1 {
            0
        } else {
            px.high_bit()
        };
        // A HighBit inconsistent with BitsStored is common in the wild: assume the usual
        // `BitsStored − 1`.
        let shift = if high_bit >= bits_stored - 1 && high_bit < bits_allocated.max(1) {
            u32::from(high_bit + 1 - bits_stored)
        } else {
            0
        };
        let pi = px.photometric_interpretation();
        let spp = px.samples_per_pixel();
        let color = match (pi, spp) {
            (PhotometricInterpretation::Monochrome1, 1) => Color::Gray { invert: true },
            (PhotometricInterpretation::Monochrome2, 1) => Color::Gray { invert: false },
            (PhotometricInterpretation::Rgb | PhotometricInterpretation::YbrFull, 3) => {
                if !matches!(bits_allocated, 8 | 16) {
                    return unsupported("BitsAllocated", format!("{bits_allocated} (color)"));
                }
                Color::Rgb {
                    ybr: *pi == PhotometricInterpretation::YbrFull,
                    planar: px.planar_configuration() == PlanarConfiguration::PixelFirst,
                }
            }
            (
                PhotometricInterpretation::Monochrome1
                | PhotometricInterpretation::Monochrome2
                | PhotometricInterpretation::Rgb
                | PhotometricInterpretation::YbrFull,
                _,
            ) => return unsupported("SamplesPerPixel", format!("{spp} ({pi})")),
            _ => return unsupported("PhotometricInterpretation", pi.to_string()),
        };
        Ok(Layout {
            rows: rows as usize,
            cols: cols as usize,
            color,
            bits_allocated,
            shift,
            bits_stored: u32::from(bits_stored),
            signed: px.pixel_representation() == PixelRepresentation::Signed,
        })
    }
}

/// Frame `k` as [`Planes`], with its content hash (only meaningful for multi-frame files).
///
/// `window` is the gray window `(lo, hi)`, `None` for percentile scaling; `index` is the
/// frame's index for errors (`None` in a single-frame file).
fn frame_planes(
    px: &DecodedPixelData<'_>,
    layout: &Layout,
    k: usize,
    window: Option<(f64, f64)>,
    index: Option<usize>,
) -> Result<(String, Planes), ErrorKind> {
    let frame = u32::try_from(k).unwrap_or(u32::MAX);
    let data = px.frame_data(frame).map_err(ErrorKind::DicomPixelData)?;
    let (h, w) = (layout.rows, layout.cols);
    match layout.color {
        Color::Gray { invert } => {
            let rescale = px.rescale().map_err(ErrorKind::DicomPixelData)?;
            let rescale = rescale.get(k).or(rescale.first()).copied();
            let (slope, intercept) = rescale.map_or((1.0, 0.0), |r| (r.slope, r.intercept));
            if !slope.is_finite() {
                return Err(ErrorKind::UnsupportedDicomImage {
                    attribute: "RescaleSlope",
                    value: slope.to_string(),
                });
            }
            if !intercept.is_finite() {
                return Err(ErrorKind::UnsupportedDicomImage {
                    attribute: "RescaleIntercept",
                    value: intercept.to_string(),
                });
            }
            let values: Vec<f32> = stored_values(data, layout)
                .map(|v| (v * slope + intercept) as f32)
                .collect();
            let hash = slice_hash(&[h, w], values.iter());
            let (lo, hi) = match window {
                Some(window) => window,
                None => percentile_window(values.iter().copied())
                    .ok_or(ErrorKind::ConstantImage { index })?,
            };
            let hwc = view(&values, h, w, 1)?;
            let planes = planes(hwc, Intensity::Window { lo, hi, invert }, index)?;
            Ok((hash, planes))
        }
        Color::Rgb { ybr, planar } => {
            if layout.bits_allocated == 8 {
                let mut samples = interleave(data.to_vec(), planar);
                if ybr {
                    samples.chunks_exact_mut(3).for_each(ybr_to_rgb::<u8>);
                }
                rgb_planes(samples, h, w, Intensity::FullScale, index)
            } else {
                let samples: Vec<u16> = data
                    .chunks_exact(2)
                    .map(|b| u16::from_ne_bytes([b[0], b[1]]))
                    .collect();
                let mut samples = interleave(samples, planar);
                if ybr {
                    samples.chunks_exact_mut(3).for_each(ybr_to_rgb::<u16>);
                }
                rgb_planes(samples, h, w, Intensity::MinMax, index)
            }
        }
    }
}

/// The stored values of a gray frame (native-endian samples from the decoder), as `f64`.
fn stored_values<'a>(data: &'a [u8], layout: &Layout) -> impl Iterator<Item = f64> + 'a {
    let &Layout {
        bits_allocated,
        shift,
        bits_stored,
        signed,
        ..
    } = layout;
    let raw: Box<dyn Iterator<Item = u32> + 'a> = match bits_allocated {
        1 | 8 => Box::new(data.iter().map(|&b| u32::from(b))),
        16 => Box::new(
            data.chunks_exact(2)
                .map(|b| u32::from(u16::from_ne_bytes([b[0], b[1]]))),
        ),
        _ => Box::new(
            data.chunks_exact(4)
                .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]])),
        ),
    };
    let mask = if bits_stored >= 32 {
        u32::MAX
    } else {
        (1u32 << bits_stored) - 1
    };
    raw.map(move |r| {
        let v = (r >> shift) & mask;
        if signed && (v >> (bits_stored - 1)) & 1 == 1 {
            // Two's complement in `bits_stored` bits.
            f64::from(v) - 2f64.powi(bits_stored as i32)
        } else {
            f64::from(v)
        }
    })
}

/// Planar (`RRR…GGG…BBB…`) samples reordered to interleaved (`RGBRGB…`); interleaved ones as is.
fn interleave<T: Copy>(samples: Vec<T>, planar: bool) -> Vec<T> {
    if !planar {
        return samples;
    }
    let n = samples.len() / 3;
    (0..n)
        .flat_map(|i| [samples[i], samples[n + i], samples[2 * n + i]])
        .collect()
}

/// A sample type of color DICOM pixel data: its mid-scale value (the chroma offset).
trait ColorSample: Sample {
    const HALF: f64;
    fn from_f64(v: f64) -> Self;
}

impl ColorSample for u8 {
    const HALF: f64 = 128.0;
    fn from_f64(v: f64) -> Self {
        v.round().clamp(0.0, 255.0) as u8
    }
}

impl ColorSample for u16 {
    const HALF: f64 = 32768.0;
    fn from_f64(v: f64) -> Self {
        v.round().clamp(0.0, 65535.0) as u16
    }
}

/// YBR_FULL → RGB in place for one pixel (ITU-R BT.601 full range, PS3.3 C.7.6.3.1.2).
fn ybr_to_rgb<T: ColorSample>(px: &mut [T]) {
    let y = px[0].to_f64();
    let cb = px[1].to_f64() - T::HALF;
    let cr = px[2].to_f64() - T::HALF;
    px[0] = T::from_f64(y + 1.402 * cr);
    px[1] = T::from_f64(y - 0.344_136 * cb - 0.714_136 * cr);
    px[2] = T::from_f64(y + 1.772 * cb);
}

/// Interleaved RGB samples of one frame as [`Planes`], with their slice hash.
fn rgb_planes<T: Sample>(
    samples: Vec<T>,
    h: usize,
    w: usize,
    intensity: Intensity,
    index: Option<usize>,
) -> Result<(String, Planes), ErrorKind> {
    let hash = slice_hash(&[h, w, 3], samples.iter());
    let planes = planes(view(&samples, h, w, 3)?, intensity, index)?;
    Ok((hash, planes))
}

fn view<T>(samples: &[T], h: usize, w: usize, c: usize) -> Result<ArrayView3<'_, T>, ErrorKind> {
    ArrayView3::from_shape((h, w, c), samples).map_err(|_| ErrorKind::BadShape {
        shape: vec![h, w, c],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{assert_all_near, cfg, load_err, load_ok, skip};
    use crate::{BadInputPolicy, ErrorKind};
    use dicom_core::value::{DataSetSequence, PixelFragmentSequence};
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
    use std::path::PathBuf;

    const CT_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.2";
    const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";
    const JPEG_LS_LOSSLESS: &str = "1.2.840.10008.1.2.4.80";
    const RLE_LOSSLESS: &str = "1.2.840.10008.1.2.5";

    /// A gray image's attributes; `pixels` are the stored samples of every frame.
    struct Gray<'a> {
        rows: u16,
        cols: u16,
        frames: u32,
        pixels: Pixels<'a>,
        photometric: &'a str,
        modality: &'a str,
        rescale: Option<(f64, f64)>,
    }

    enum Pixels<'a> {
        U16(&'a [u16]),
        I16(&'a [i16]),
        U8(&'a [u8]),
    }

    impl Default for Gray<'_> {
        fn default() -> Self {
            Gray {
                rows: 2,
                cols: 2,
                frames: 1,
                pixels: Pixels::U16(&[0, 1, 2, 3]),
                photometric: "MONOCHROME2",
                modality: "MR",
                rescale: None,
            }
        }
    }

    fn text(obj: &mut InMemDicomObject, tag: Tag, vr: VR, value: &str) {
        obj.put(DataElement::new(tag, vr, PrimitiveValue::from(value)));
    }

    fn us(obj: &mut InMemDicomObject, tag: Tag, value: u16) {
        obj.put(DataElement::new(tag, VR::US, PrimitiveValue::from(value)));
    }

    fn ow(words: Vec<u16>) -> DataElement<InMemDicomObject> {
        DataElement::new(tags::PIXEL_DATA, VR::OW, PrimitiveValue::U16(words.into()))
    }

    fn ob(bytes: Vec<u8>) -> DataElement<InMemDicomObject> {
        DataElement::new(tags::PIXEL_DATA, VR::OB, PrimitiveValue::from(bytes))
    }

    /// The data set of a gray image with patient/study attributes.
    fn gray_object(g: &Gray<'_>) -> InMemDicomObject {
        let mut obj = InMemDicomObject::new_empty();
        text(&mut obj, tags::SOP_CLASS_UID, VR::UI, CT_IMAGE_STORAGE);
        text(&mut obj, tags::SOP_INSTANCE_UID, VR::UI, "1.2.3.4.5.6");
        text(&mut obj, tags::PATIENT_NAME, VR::PN, "Doe^Jane");
        text(&mut obj, tags::PATIENT_ID, VR::LO, "PAT-001 ");
        text(&mut obj, tags::PATIENT_BIRTH_DATE, VR::DA, "");
        text(&mut obj, tags::STUDY_INSTANCE_UID, VR::UI, "1.2.3.4");
        text(&mut obj, tags::SERIES_INSTANCE_UID, VR::UI, "1.2.3.4.5");
        text(&mut obj, tags::MODALITY, VR::CS, g.modality);
        us(&mut obj, tags::ROWS, g.rows);
        us(&mut obj, tags::COLUMNS, g.cols);
        us(&mut obj, tags::SAMPLES_PER_PIXEL, 1);
        text(
            &mut obj,
            tags::PHOTOMETRIC_INTERPRETATION,
            VR::CS,
            g.photometric,
        );
        if g.frames > 1 {
            text(
                &mut obj,
                tags::NUMBER_OF_FRAMES,
                VR::IS,
                &g.frames.to_string(),
            );
        }
        let (bits, signed, value) = match g.pixels {
            Pixels::U16(v) => (16, 0, ow(v.to_vec())),
            Pixels::I16(v) => (16, 1, ow(v.iter().map(|&x| x as u16).collect())),
            Pixels::U8(v) => (8, 0, ob(v.to_vec())),
        };
        us(&mut obj, tags::BITS_ALLOCATED, bits);
        us(&mut obj, tags::BITS_STORED, bits);
        us(&mut obj, tags::HIGH_BIT, bits - 1);
        us(&mut obj, tags::PIXEL_REPRESENTATION, signed);
        if let Some((slope, intercept)) = g.rescale {
            text(&mut obj, tags::RESCALE_SLOPE, VR::DS, &slope.to_string());
            text(
                &mut obj,
                tags::RESCALE_INTERCEPT,
                VR::DS,
                &intercept.to_string(),
            );
        }
        obj.put(value);
        obj
    }

    #[track_caller]
    fn assert_near(values: &[f32], want: &[f32]) {
        assert_eq!(values.len(), want.len(), "{values:?}");
        for (v, w) in values.iter().zip(want) {
            assert!((v - w).abs() < 1e-5, "{values:?} vs {want:?}");
        }
    }

    /// Writes `obj` with a file meta group for transfer syntax `ts` to `dir/name`.
    fn write(dir: &Path, name: &str, obj: InMemDicomObject, ts: &str) -> PathBuf {
        let path = dir.join(name);
        obj.with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax(ts)
                .media_storage_sop_class_uid(CT_IMAGE_STORAGE)
                .media_storage_sop_instance_uid("1.2.3.4.5.6"),
        )
        .unwrap()
        .write_to_file(&path)
        .unwrap();
        path
    }

    fn write_gray(dir: &Path, name: &str, g: &Gray<'_>) -> PathBuf {
        write(dir, name, gray_object(g), EXPLICIT_VR_LE)
    }

    /// CT values in HU, stored as `(hu + 1024) / 2` with slope 2, intercept −1024.
    fn ct(hu: &[i32]) -> Vec<u16> {
        hu.iter().map(|&h| ((h + 1024) / 2) as u16).collect()
    }

    #[test]
    fn ct_rescale_to_hu_and_soft_tissue_window() {
        let dir = tempfile::tempdir().unwrap();
        // −1000 HU (air) and −160 → 0; 40 HU → 0.5; 240 and 1000 (bone) → 1.
        let stored = ct(&[-1000, -160, 40, 240, 1000, 140]);
        let p = write_gray(
            dir.path(),
            "ct.dcm",
            &Gray {
                rows: 1,
                cols: 6,
                pixels: Pixels::U16(&stored),
                modality: "CT",
                rescale: Some((2.0, -1024.0)),
                ..Gray::default()
            },
        );
        let c = cfg(6, 1);
        let set = load_ok(&p, &c);
        // The 1×6 row stretched to 6×6: every row equals the source row.
        let row = &set.images[0].pixels[..6];
        for (v, want) in row.iter().zip([0.0, 0.0, 0.5, 1.0, 1.0, 0.75]) {
            assert!((v - want).abs() < 1e-6, "{row:?}");
        }
        assert_eq!(set.images[0].id, "ct.dcm");
        assert_eq!(
            set.images[0].hash,
            sha256_hex(&std::fs::read(&p).unwrap()),
            "single frame: the file's hash"
        );

        // A configured window wins over the CT default: bone window (C=400, W=2000).
        let bone = IoConfig {
            window: Some((400.0, 2000.0)),
            ..c.clone()
        };
        let row = load_ok(&p, &bone).images.remove(0).pixels;
        for (v, hu) in row
            .iter()
            .zip([-1000.0, -160.0, 40.0, 240.0, 1000.0, 140.0])
        {
            let want = ((hu + 600.0) / 2000.0f32).clamp(0.0, 1.0);
            assert!((v - want).abs() < 1e-6, "{hu} HU: {v} vs {want}");
        }
    }

    #[test]
    fn signed_ct_values_are_sign_extended() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_gray(
            dir.path(),
            "signed.dcm",
            &Gray {
                rows: 1,
                cols: 3,
                pixels: Pixels::I16(&[-1000, 40, 240]),
                modality: "CT",
                ..Gray::default()
            },
        );
        let px = load_ok(&p, &cfg(3, 1)).images.remove(0).pixels;
        for (v, want) in px[..3].iter().zip([0.0, 0.5, 1.0]) {
            assert!((v - want).abs() < 1e-6, "{px:?}");
        }
    }

    #[test]
    fn non_ct_uses_frame_percentiles() {
        let dir = tempfile::tempdir().unwrap();
        // 201 values 0..=200: the 0.5th percentile is 1 and the 99.5th is 199.
        let values: Vec<u16> = (0..=200).map(|v| v * 10).collect();
        let p = write_gray(
            dir.path(),
            "mr.dcm",
            &Gray {
                rows: 1,
                cols: 201,
                pixels: Pixels::U16(&values),
                ..Gray::default()
            },
        );
        let img = load_ok(&p, &cfg(201, 1)).images.remove(0);
        let row = &img.pixels[..201];
        assert_eq!(row[0], 0.0, "below the 0.5th percentile: clipped");
        assert_eq!(row[1], 0.0);
        assert!((row[100] - 0.5).abs() < 1e-6, "{}", row[100]);
        assert_eq!(row[199], 1.0);
        assert_eq!(row[200], 1.0);
    }

    #[test]
    fn constant_non_ct_frame_is_constant_image_but_ct_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let flat = Gray {
            pixels: Pixels::U16(&[7; 4]),
            ..Gray::default()
        };
        let p = write_gray(dir.path(), "flat.dcm", &flat);
        let err = load_err(&p, &cfg(2, 1), "flat.dcm");
        assert!(
            matches!(err.kind(), ErrorKind::ConstantImage { index: None }),
            "{err}"
        );
        let p = write_gray(
            dir.path(),
            "flat_ct.dcm",
            &Gray {
                modality: "CT",
                ..flat
            },
        );
        // 7 HU inside the soft-tissue window: (7 + 160) / 400.
        assert_all_near(
            &load_ok(&p, &cfg(2, 1)).images[0].pixels,
            167.0 / 400.0,
            1e-6,
        );
    }

    #[test]
    fn monochrome1_is_inverted() {
        let dir = tempfile::tempdir().unwrap();
        let stored = ct(&[-160, 40, 240, 1000]);
        let g = |photometric| Gray {
            pixels: Pixels::U16(&stored),
            photometric,
            modality: "CT",
            rescale: Some((2.0, -1024.0)),
            ..Gray::default()
        };
        let m1 = write_gray(dir.path(), "m1.dcm", &g("MONOCHROME1"));
        let m2 = write_gray(dir.path(), "m2.dcm", &g("MONOCHROME2"));
        let (p1, p2) = (
            load_ok(&m1, &cfg(2, 1)).images.remove(0).pixels,
            load_ok(&m2, &cfg(2, 1)).images.remove(0).pixels,
        );
        assert_near(&p2, &[0.0, 0.5, 1.0, 1.0]);
        assert_near(&p1, &[1.0, 0.5, 0.0, 0.0]);
        // Percentile scaling is inverted too.
        let m1 = write_gray(
            dir.path(),
            "cr.dcm",
            &Gray {
                pixels: Pixels::U8(&[0, 255, 0, 255]),
                photometric: "MONOCHROME1",
                modality: "CR",
                ..Gray::default()
            },
        );
        assert_near(
            &load_ok(&m1, &cfg(2, 1)).images[0].pixels,
            &[1.0, 0.0, 1.0, 0.0],
        );
    }

    #[test]
    fn multi_frame_gives_one_image_per_frame() {
        let dir = tempfile::tempdir().unwrap();
        // Frame k is constant at 10 k HU (CT, so constant frames are fine).
        let stored: Vec<u16> = (0..3).flat_map(|k| [1024 + 10 * k as u16; 4]).collect();
        let p = write_gray(
            dir.path(),
            "multi.dcm",
            &Gray {
                frames: 3,
                pixels: Pixels::U16(&stored),
                modality: "CT",
                rescale: Some((1.0, -1024.0)),
                ..Gray::default()
            },
        );
        let set = load_ok(&p, &cfg(2, 1));
        let ids: Vec<_> = set.images.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["multi.dcm#0", "multi.dcm#1", "multi.dcm#2"]);
        for (k, img) in set.images.iter().enumerate() {
            assert_all_near(&img.pixels, (160.0 + 10.0 * k as f32) / 400.0, 1e-6);
        }
        assert_ne!(set.images[0].hash, set.images[1].hash);
        assert_eq!(
            set.images[2].hash,
            slice_hash::<f32>(&[2, 2], [20.0f32; 4].iter()),
            "frames hash like float32 slices of their HU values"
        );
        let meta: Vec<_> = set.meta.iter().map(|m| m.as_ref().unwrap()).collect();
        assert!(meta
            .iter()
            .all(|m| m.group_volume.as_deref() == Some("multi.dcm")));
        assert_eq!(meta[0].group_patient.as_deref(), Some("PAT-001"));
    }

    #[test]
    fn multi_frame_bad_frame_is_rejected_alone() {
        let dir = tempfile::tempdir().unwrap();
        // MR (percentile scaling): frame 1 is constant.
        let stored = [0u16, 1, 2, 3, 5, 5, 5, 5, 9, 8, 7, 6];
        let p = write_gray(
            dir.path(),
            "mr3.dcm",
            &Gray {
                frames: 3,
                pixels: Pixels::U16(&stored),
                ..Gray::default()
            },
        );
        let err = load_err(&p, &cfg(2, 1), "mr3.dcm#1");
        assert!(
            matches!(err.kind(), ErrorKind::ConstantImage { index: Some(1) }),
            "{err}"
        );
        assert_eq!(err.item(), Some("1"));
        let set = load_ok(&p, &skip(2, 1));
        let ids: Vec<_> = set.images.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["mr3.dcm#0", "mr3.dcm#2"]);
        assert_eq!(set.skipped[0].path, "mr3.dcm#1");
        assert_eq!(set.meta.len(), 2);
    }

    #[test]
    fn metadata_is_captured_and_redacted_in_debug() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_gray(dir.path(), "meta.dcm", &Gray::default());
        let set = load_ok(&p, &cfg(2, 1));
        let meta = set.meta[0].as_ref().unwrap();
        assert_eq!(meta.group_patient.as_deref(), Some("PAT-001"));
        assert_eq!(meta.group_study.as_deref(), Some("1.2.3.4"));
        assert_eq!(meta.group_series.as_deref(), Some("1.2.3.4.5"));
        assert_eq!(meta.group_volume, None);
        assert_eq!(meta.modality.as_deref(), Some("MR"));
        let keys: Vec<_> = meta
            .dicom_identifying
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        // PatientBirthDate is present but empty: left out.
        assert_eq!(
            keys,
            [
                "PatientName",
                "PatientID",
                "StudyInstanceUID",
                "SeriesInstanceUID",
                "SOPInstanceUID"
            ]
        );
        assert_eq!(meta.dicom_identifying[0].1, "Doe^Jane");
        let debug = format!("{set:?}");
        for secret in ["Doe^Jane", "PAT-001", "1.2.3.4"] {
            assert!(!debug.contains(secret), "{secret} leaked: {debug}");
        }
        assert!(debug.contains("PatientName"), "{debug}");
    }

    #[test]
    fn extensionless_file_with_magic_is_dicom_in_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        let g = Gray {
            modality: "CT",
            ..Gray::default()
        };
        write_gray(dir.path(), "IM0001", &g);
        write_gray(dir.path(), "b.DICOM", &g);
        std::fs::write(dir.path().join("README"), "not an image").unwrap();
        let set = load_ok(dir.path(), &skip(2, 1));
        let ids: Vec<_> = set.images.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["IM0001", "b.DICOM"]);
        assert_eq!(set.skipped[0].path, "README");
    }

    #[test]
    fn missing_pixel_data() {
        let dir = tempfile::tempdir().unwrap();
        let mut obj = gray_object(&Gray::default());
        obj.take(tags::PIXEL_DATA);
        let p = write(dir.path(), "sr.dcm", obj, EXPLICIT_VR_LE);
        let err = load_err(&p, &cfg(2, 1), "sr.dcm");
        assert!(matches!(err.kind(), ErrorKind::MissingPixelData), "{err}");
        assert!(err.to_string().contains("no PixelData"), "{err}");
    }

    #[test]
    fn truncated_and_garbage_files_are_dicom_errors() {
        let dir = tempfile::tempdir().unwrap();
        let values: Vec<u16> = (0..64 * 64).map(|v| v as u16).collect();
        let p = write_gray(
            dir.path(),
            "full.dcm",
            &Gray {
                rows: 64,
                cols: 64,
                pixels: Pixels::U16(&values),
                ..Gray::default()
            },
        );
        let bytes = std::fs::read(&p).unwrap();
        let cases: Vec<(&str, Vec<u8>, bool)> = vec![
            // (name, content, caught by the length check before parsing)
            ("half.dcm", bytes[..bytes.len() / 2].to_vec(), true),
            ("cut_in_pixels.dcm", bytes[..bytes.len() - 7].to_vec(), true),
            ("preamble_only.dcm", bytes[..132].to_vec(), false),
            ("garbage.dcm", b"this is not DICOM at all".to_vec(), false),
            ("empty.dcm", Vec::new(), false),
        ];
        for (name, data, by_length) in cases {
            let q = dir.path().join(name);
            std::fs::write(&q, data).unwrap();
            let err = load_err(&q, &cfg(8, 1), name);
            if by_length {
                assert!(
                    matches!(err.kind(), ErrorKind::TruncatedDicom { tag, declared: 8192, .. }
                        if tag == "(7FE0,0010)"),
                    "{name}: {err:?}"
                );
                assert!(
                    err.to_string().contains(&format!(
                        "{name}: truncated or corrupt DICOM file: element (7FE0,0010) declares 8192 bytes"
                    )),
                    "{err}"
                );
            } else {
                assert!(matches!(err.kind(), ErrorKind::Dicom(_)), "{name}: {err:?}");
                assert!(
                    err.to_string()
                        .ends_with(&format!("{name}: invalid or truncated DICOM file")),
                    "{err}"
                );
                assert!(std::error::Error::source(&err).is_some());
            }
        }
    }

    #[test]
    fn lying_lengths_are_rejected_before_allocating() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_gray(dir.path(), "ok.dcm", &Gray::default());
        let bytes = std::fs::read(&p).unwrap();
        // PixelData (OW): tag, "OW", 2 reserved bytes, then the 4-byte length.
        let at = bytes
            .windows(6)
            .rposition(|w| w == [0xE0, 0x7F, 0x10, 0x00, b'O', b'W'])
            .unwrap();
        let mut huge = bytes.clone();
        huge[at + 8..at + 12].copy_from_slice(&0xC000_0000u32.to_le_bytes());
        let q = dir.path().join("huge.dcm");
        std::fs::write(&q, huge).unwrap();
        let start = std::time::Instant::now();
        let err = load_err(&q, &cfg(2, 1), "huge.dcm");
        assert!(
            matches!(
                err.kind(),
                ErrorKind::TruncatedDicom {
                    declared: 0xC000_0000,
                    available: 8,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(start.elapsed().as_secs() < 1, "{:?}", start.elapsed());
        // A 2-byte length (PatientName, PN) past the end, in the implicit VR encoding too.
        let mut obj = gray_object(&Gray::default());
        obj.take(tags::PIXEL_DATA);
        let p = write(dir.path(), "implicit.dcm", obj, "1.2.840.10008.1.2");
        let mut bytes = std::fs::read(&p).unwrap();
        let at = bytes
            .windows(4)
            .rposition(|w| w == [0x10, 0x00, 0x10, 0x00])
            .unwrap();
        bytes[at + 4..at + 8].copy_from_slice(&0x7FFF_FFF0u32.to_le_bytes());
        std::fs::write(&p, bytes).unwrap();
        let err = load_err(&p, &cfg(2, 1), "implicit.dcm");
        assert!(
            matches!(err.kind(), ErrorKind::TruncatedDicom { tag, .. } if tag == "(0010,0010)"),
            "{err:?}"
        );
    }

    #[test]
    fn corrupted_bytes_never_panic() {
        // Flip bytes all over a valid file (header, attributes, pixel data): every variant
        // decodes or fails with an error, none panics.
        let dir = tempfile::tempdir().unwrap();
        let values: Vec<u16> = (0..16 * 16).map(|v| v as u16 * 7).collect();
        let g = Gray {
            rows: 16,
            cols: 16,
            pixels: Pixels::U16(&values),
            ..Gray::default()
        };
        let p = write_gray(dir.path(), "ok.dcm", &g);
        let bytes = std::fs::read(&p).unwrap();
        let pixel_start = bytes.len() - values.len() * 2;
        let mut n = 0;
        for pos in (128..pixel_start).chain([pixel_start + 3]) {
            for flip in [0xFF, 0x80, 0x01] {
                let mut b = bytes.clone();
                b[pos] ^= flip;
                let q = dir.path().join("x.dcm");
                std::fs::write(&q, &b).unwrap();
                let _ = crate::load(&q, &cfg(4, 1), &crate::NoReporter);
                n += 1;
            }
        }
        assert!(n > 300);
    }

    #[test]
    fn unsupported_transfer_syntax_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut obj = gray_object(&Gray::default());
        // Encapsulated JPEG-LS data (the fragment's content is never looked at).
        obj.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OB,
            PixelFragmentSequence::new(vec![], vec![vec![0xFF, 0xD8, 0xFF, 0xF7, 0, 0]]),
        ));
        let p = write(dir.path(), "jls.dcm", obj, JPEG_LS_LOSSLESS);
        let err = load_err(&p, &cfg(2, 1), "jls.dcm");
        match err.kind() {
            ErrorKind::UnsupportedTransferSyntax { uid, name } => {
                assert_eq!(uid, JPEG_LS_LOSSLESS);
                assert!(name.as_deref().unwrap().contains("JPEG-LS"), "{name:?}");
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains(JPEG_LS_LOSSLESS), "{err}");

        // A made-up UID can't even be parsed past the file meta group.
        let mut bytes = std::fs::read(&p).unwrap();
        let at = bytes
            .windows(JPEG_LS_LOSSLESS.len())
            .position(|w| w == JPEG_LS_LOSSLESS.as_bytes())
            .unwrap();
        bytes[at + JPEG_LS_LOSSLESS.len() - 2..at + JPEG_LS_LOSSLESS.len()].copy_from_slice(b"99");
        let q = dir.path().join("made_up.dcm");
        std::fs::write(&q, bytes).unwrap();
        let err = load_err(&q, &cfg(2, 1), "made_up.dcm");
        assert!(
            matches!(err.kind(), ErrorKind::UnsupportedTransferSyntax { uid, name: None }
                if uid == "1.2.840.10008.1.2.4.99"),
            "{err:?}"
        );
    }

    #[test]
    fn rle_lossless_decodes() {
        // RLE of a 2×2 8-bit frame: one segment, literal run of 4 bytes.
        let dir = tempfile::tempdir().unwrap();
        let mut obj = gray_object(&Gray {
            pixels: Pixels::U8(&[0, 0, 0, 0]),
            ..Gray::default()
        });
        let mut frame = vec![0u8; 64];
        frame[..4].copy_from_slice(&1u32.to_le_bytes());
        frame[4..8].copy_from_slice(&64u32.to_le_bytes());
        // Two literal runs of 2 bytes (PackBits), so the fragment has an even length.
        frame.extend_from_slice(&[1, 10, 20, 1, 30, 40]);
        obj.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OB,
            PixelFragmentSequence::new(vec![], vec![frame]),
        ));
        let p = write(dir.path(), "rle.dcm", obj, RLE_LOSSLESS);
        let px = load_ok(&p, &cfg(2, 1)).images.remove(0).pixels;
        // Percentiles of [10, 20, 30, 40]: 10.15 and 39.85.
        let want = [10.0f32, 20.0, 30.0, 40.0].map(|v| ((v - 10.15) / 29.7).clamp(0.0, 1.0));
        assert_near(&px, &want);
    }

    #[test]
    fn codecs_in_this_build() {
        let decodes = |uid: &str| {
            TransferSyntaxRegistry
                .get(uid)
                .is_some_and(|ts| ts.can_decode_all())
        };
        for uid in [
            "1.2.840.10008.1.2",      // implicit VR little endian
            "1.2.840.10008.1.2.1",    // explicit VR little endian
            "1.2.840.10008.1.2.2",    // explicit VR big endian
            "1.2.840.10008.1.2.1.99", // deflated
            RLE_LOSSLESS,
            "1.2.840.10008.1.2.4.50", // JPEG baseline
            "1.2.840.10008.1.2.4.51", // JPEG extended
            "1.2.840.10008.1.2.4.57", // JPEG lossless
            "1.2.840.10008.1.2.4.70", // JPEG lossless SV1
            "1.2.840.10008.1.2.4.90", // JPEG 2000 lossless (OpenJPEG)
            "1.2.840.10008.1.2.4.91", // JPEG 2000
        ] {
            assert!(decodes(uid), "{uid}");
        }
        for uid in [
            JPEG_LS_LOSSLESS,
            "1.2.840.10008.1.2.4.81",
            "1.2.840.10008.1.2.4.110",
        ] {
            assert!(
                !decodes(uid),
                "{uid}: JPEG-LS and JPEG XL need C/C++ or extra codecs"
            );
        }
    }

    #[test]
    fn jpeg_baseline_decodes() {
        let dir = tempfile::tempdir().unwrap();
        let gradient = image::GrayImage::from_fn(16, 16, |x, _| image::Luma([(x * 16) as u8]));
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
            .encode_image(&gradient)
            .unwrap();
        if jpeg.len() % 2 == 1 {
            jpeg.push(0);
        }
        let mut obj = gray_object(&Gray {
            rows: 16,
            cols: 16,
            pixels: Pixels::U8(&[0; 256]),
            ..Gray::default()
        });
        obj.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OB,
            PixelFragmentSequence::new(vec![], vec![jpeg]),
        ));
        let p = write(dir.path(), "jpeg.dcm", obj, "1.2.840.10008.1.2.4.50");
        let px = load_ok(&p, &cfg(16, 1)).images.remove(0).pixels;
        let row = &px[16 * 8..16 * 9];
        assert!(row[0] < 0.05 && row[15] > 0.95, "{row:?}");
        assert!(row.windows(2).all(|w| w[1] >= w[0] - 0.02), "{row:?}");
    }

    /// An 8-bit color image; `planar` selects PlanarConfiguration 1.
    fn color_object(photometric: &str, samples: &[u8], planar: bool) -> InMemDicomObject {
        let mut obj = gray_object(&Gray::default());
        text(
            &mut obj,
            tags::PHOTOMETRIC_INTERPRETATION,
            VR::CS,
            photometric,
        );
        us(&mut obj, tags::SAMPLES_PER_PIXEL, 3);
        us(&mut obj, tags::PLANAR_CONFIGURATION, u16::from(planar));
        us(&mut obj, tags::BITS_ALLOCATED, 8);
        us(&mut obj, tags::BITS_STORED, 8);
        us(&mut obj, tags::HIGH_BIT, 7);
        obj.put(ob(samples.to_vec()));
        obj
    }

    #[test]
    fn rgb_and_ybr_full_are_converted_like_rgb_pictures() {
        let dir = tempfile::tempdir().unwrap();
        // 2×2: red, green, blue, white.
        let interleaved = [255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255];
        let planar = [255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255];
        let want = [1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0];
        for (name, samples, is_planar) in [
            ("rgb.dcm", &interleaved, false),
            ("planar.dcm", &planar, true),
        ] {
            let p = write(
                dir.path(),
                name,
                color_object("RGB", samples, is_planar),
                EXPLICIT_VR_LE,
            );
            let rgb = load_ok(&p, &cfg(2, 3)).images.remove(0).pixels;
            assert_near(&rgb, &want);
            let gray = load_ok(&p, &cfg(2, 1)).images.remove(0).pixels;
            assert!(
                (gray[0] - 0.299).abs() < 1e-6,
                "{name}: BT.601 luma {gray:?}"
            );
        }
        // Y = 76, Cb = 85, Cr = 255 is (almost) pure red in full-range YCbCr.
        let ybr = [76, 85, 255, 76, 85, 255, 255, 128, 128, 0, 128, 128];
        let p = write(
            dir.path(),
            "ybr.dcm",
            color_object("YBR_FULL", &ybr, false),
            EXPLICIT_VR_LE,
        );
        let rgb = load_ok(&p, &cfg(2, 3)).images.remove(0).pixels;
        let (r, g, b) = (&rgb[..4], &rgb[4..8], &rgb[8..]);
        assert!(r[0] > 0.99 && g[0] < 0.01 && b[0] < 0.01, "{rgb:?}");
        assert_eq!((r[2], g[2], b[2]), (1.0, 1.0, 1.0));
        assert_eq!((r[3], g[3], b[3]), (0.0, 0.0, 0.0));
    }

    #[test]
    fn unsupported_photometric_interpretations() {
        let dir = tempfile::tempdir().unwrap();
        let mut obj = gray_object(&Gray {
            pixels: Pixels::U8(&[0, 1, 2, 3]),
            ..Gray::default()
        });
        text(
            &mut obj,
            tags::PHOTOMETRIC_INTERPRETATION,
            VR::CS,
            "PALETTE COLOR",
        );
        let p = write(dir.path(), "pal.dcm", obj, EXPLICIT_VR_LE);
        let err = load_err(&p, &cfg(2, 1), "pal.dcm");
        assert!(
            matches!(err.kind(), ErrorKind::UnsupportedDicomImage { attribute, value }
                if *attribute == "PhotometricInterpretation" && value == "PALETTE COLOR"),
            "{err}"
        );
        // BitsStored 0 would reach an assert in the decoder's lookup tables.
        let mut obj = gray_object(&Gray::default());
        us(&mut obj, tags::BITS_STORED, 0);
        let p = write(dir.path(), "bits0.dcm", obj, EXPLICIT_VR_LE);
        let err = load_err(&p, &cfg(2, 1), "bits0.dcm");
        assert!(
            matches!(err.kind(), ErrorKind::UnsupportedDicomImage { attribute, .. }
                if *attribute == "BitsStored"),
            "{err}"
        );
    }

    #[test]
    fn frames_of_too_many_pixels_are_rejected_before_decoding() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_gray(
            dir.path(),
            "huge.dcm",
            &Gray {
                rows: 65535,
                cols: 16385,
                ..Gray::default()
            },
        );
        let err = load_err(&p, &cfg(2, 1), "huge.dcm");
        assert!(
            matches!(
                err.kind(),
                ErrorKind::TooManyPixels {
                    width: 16385,
                    height: 65535
                }
            ),
            "{err}"
        );
        // Below the limit, the short pixel data is what is wrong.
        let p = write_gray(
            dir.path(),
            "big.dcm",
            &Gray {
                rows: 16384,
                cols: 16384,
                ..Gray::default()
            },
        );
        let err = load_err(&p, &cfg(2, 1), "big.dcm");
        assert!(
            matches!(err.kind(), ErrorKind::ShortPixelData { .. }),
            "{err}"
        );
    }

    #[test]
    fn unusable_rescale_values_are_errors_and_absent_ones_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let ct = || Gray {
            pixels: Pixels::U16(&[0, 1000, 2000, 3000]),
            modality: "CT",
            ..Gray::default()
        };
        for (attribute, tag) in [
            ("RescaleSlope", tags::RESCALE_SLOPE),
            ("RescaleIntercept", tags::RESCALE_INTERCEPT),
        ] {
            let zero = (attribute == "RescaleSlope").then_some("0");
            for value in ["nan", "inf", "-inf", "abc", "NaN"].into_iter().chain(zero) {
                let mut obj = gray_object(&Gray {
                    rescale: Some((1.0, -1024.0)),
                    ..ct()
                });
                text(&mut obj, tag, VR::DS, value);
                let name = format!("{attribute}_{value}.dcm");
                let p = write(dir.path(), &name, obj, EXPLICIT_VR_LE);
                let err = load_err(&p, &cfg(2, 1), &name);
                assert!(
                    matches!(err.kind(), ErrorKind::InvalidDicomAttribute { attribute: a, value: v, .. }
                        if *a == attribute && v == value),
                    "{err:?}"
                );
                let msg = err.to_string();
                let expected = if attribute == "RescaleSlope" {
                    "a finite, non-zero number"
                } else {
                    "a finite number"
                };
                assert!(
                    msg.ends_with(&format!(
                        "invalid DICOM attribute: {attribute} is `{value}`, expected {expected}"
                    )),
                    "{msg}"
                );
            }
        }
        // Absent or empty: slope 1, intercept 0 (the stored values are the HU).
        let absent = write_gray(dir.path(), "absent.dcm", &ct());
        let mut obj = gray_object(&ct());
        text(&mut obj, tags::RESCALE_SLOPE, VR::DS, "");
        text(&mut obj, tags::RESCALE_INTERCEPT, VR::DS, " ");
        let empty = write(dir.path(), "empty.dcm", obj, EXPLICIT_VR_LE);
        let px = load_ok(&absent, &cfg(2, 1)).images.remove(0).pixels;
        assert_eq!(px, load_ok(&empty, &cfg(2, 1)).images.remove(0).pixels);
        // 0 HU is 0.4 in the soft-tissue window (−160…240 HU), 1000 HU and up are white.
        assert_near(&px, &[0.4, 1.0, 1.0, 1.0]);
        // A bad value in an enhanced object's per-frame functional groups.
        let mut obj = gray_object(&Gray {
            frames: 2,
            pixels: Pixels::U16(&[0, 1000, 2000, 3000, 0, 1000, 2000, 3000]),
            ..ct()
        });
        let group = |slope: &str| {
            let mut transform = InMemDicomObject::new_empty();
            text(&mut transform, tags::RESCALE_SLOPE, VR::DS, slope);
            text(&mut transform, tags::RESCALE_INTERCEPT, VR::DS, "-1024");
            let mut item = InMemDicomObject::new_empty();
            item.put(DataElement::new(
                tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE,
                VR::SQ,
                DataSetSequence::from(vec![transform]),
            ));
            item
        };
        obj.put(DataElement::new(
            tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(vec![group("1"), group("abc")]),
        ));
        let p = write(dir.path(), "enhanced.dcm", obj, EXPLICIT_VR_LE);
        let err = load_err(&p, &cfg(2, 1), "enhanced.dcm");
        assert!(
            matches!(err.kind(), ErrorKind::InvalidDicomAttribute { attribute: "RescaleSlope", value, .. }
                if value == "abc"),
            "{err:?}"
        );
    }

    #[test]
    fn pixel_data_shorter_than_its_frames_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        for (name, frames) in [("two.dcm", "2"), ("billions.dcm", "2147483647")] {
            let mut obj = gray_object(&Gray {
                pixels: Pixels::U16(&[0, 1, 2, 3]),
                modality: "CT",
                ..Gray::default()
            });
            text(&mut obj, tags::NUMBER_OF_FRAMES, VR::IS, frames);
            let p = write(dir.path(), name, obj, EXPLICIT_VR_LE);
            let err = load_err(&p, &cfg(2, 1), name);
            assert!(
                matches!(err.kind(), ErrorKind::ShortPixelData { available: 8, .. }),
                "{err}"
            );
            assert!(err.to_string().contains("too short"), "{err}");
        }
    }

    #[test]
    fn skip_policy_continues_past_every_bad_dicom() {
        let dir = tempfile::tempdir().unwrap();
        let good = Gray {
            modality: "CT",
            ..Gray::default()
        };
        write_gray(dir.path(), "a_good.dcm", &good);
        let mut no_pixels = gray_object(&good);
        no_pixels.take(tags::PIXEL_DATA);
        write(dir.path(), "b_missing.dcm", no_pixels, EXPLICIT_VR_LE);
        std::fs::write(dir.path().join("c_truncated.dcm"), b"DICM").unwrap();
        let mut jls = gray_object(&good);
        jls.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OB,
            PixelFragmentSequence::new(vec![], vec![vec![0u8; 4]]),
        ));
        write(dir.path(), "d_jpeg_ls.dcm", jls, JPEG_LS_LOSSLESS);
        write_gray(dir.path(), "e_good.dcm", &good);
        let c = IoConfig {
            on_bad_input: BadInputPolicy::Skip,
            ..cfg(2, 1)
        };
        let set = load_ok(dir.path(), &c);
        let ids: Vec<_> = set.images.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["a_good.dcm", "e_good.dcm"]);
        let skipped: Vec<_> = set.skipped.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(
            skipped,
            ["b_missing.dcm", "c_truncated.dcm", "d_jpeg_ls.dcm"]
        );
        // Sequences (e.g. a referenced image sequence) don't disturb the metadata.
        let mut with_seq = gray_object(&good);
        with_seq.put(DataElement::new(
            tags::REFERENCED_IMAGE_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(vec![InMemDicomObject::new_empty()]),
        ));
        let p = write(dir.path(), "seq.dcm", with_seq, EXPLICIT_VR_LE);
        assert_eq!(load_ok(&p, &cfg(2, 1)).images.len(), 1);
    }
}
