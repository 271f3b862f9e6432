//! Picture files (PNG, JPEG, TIFF, BMP) decoded with the `image` crate.
//!
//! A file is one image (id = the file's id, hash = SHA-256 of its bytes), except a multi-page
//! TIFF: every page is an image of its own, `file#k` (`k` from 0, in IFD-chain order), as the
//! frames of a multi-frame DICOM file, each hashed like an array slice of its decoded samples
//! (dtype, `(height, width, channels)`, values). Pages flagged as reduced-resolution copies
//! of another (NewSubfileType bit 0: thumbnails, pyramid levels) are left out. The IFD chain is
//! walked with the `tiff` crate; each page is then decoded by the `image` crate as the first
//! image of the file (the header's first-IFD offset pointed at the page), so every page gets the
//! same color types, compressions and orientation handling. A bad page (or a broken IFD chain,
//! which ends the walk) rejects that page only.
//!
//! The format comes from the extension, overridden by the file's magic bytes when they say
//! otherwise (a mislabelled JPEG still decodes). Palette images arrive expanded to RGB(A);
//! the EXIF orientation (JPEG, TIFF) is applied. The sample type picks the intensity rule:
//! 8-bit `v / 255`, 16-bit per-image min–max over the color channels (alpha `v / 65535`),
//! 32-bit float (TIFF) the float rule over the whole image.
//!
//! The dimensions are read from the header first: a picture of more than
//! [`MAX_PIXELS`](crate::MAX_PIXELS) pixels is [`ErrorKind::TooManyPixels`], before its
//! buffer is allocated (the `image` crate's 512 MiB allocation limit covers its decoders'
//! internal buffers, not the image buffer when decoding through `into_decoder`, so a small
//! PNG declaring 40000 × 40000 pixels would otherwise be decoded). A decoder that still hits
//! its own limit is an [`ErrorKind::Decode`] error.
//!
//! A truncated JPEG is rejected before decoding: the JPEG decoder fills a cut-off scan with
//! gray and reports no error, so the segments are walked first (see [`jpeg_is_truncated`]) and
//! a stream that ends before its end-of-image marker (`FF D9`) is an [`ErrorKind::Decode`]
//! error ("truncated or corrupt JPEG"). Bytes after the end-of-image marker are accepted.

use crate::error::ErrorKind;
use crate::load::{Outcome, Rejected};
use crate::normalize::{
    check_pixels, make_image, planes, sha256_hex, slice_hash, Intensity, Planes, Sample,
};
use crate::IoConfig;
use image::error::{DecodingError, ImageFormatHint};
use image::{DynamicImage, ImageBuffer, ImageDecoder, ImageError, ImageFormat, ImageReader, Pixel};
use ndarray::ArrayView3;
use std::io::Cursor;
use std::path::Path;

/// Decodes the picture at `path` (whose id is `id`): one image, or one per page of a
/// multi-page TIFF.
pub(crate) fn decode(path: &Path, id: &str, format: ImageFormat, cfg: &IoConfig) -> Vec<Outcome> {
    let reject = |kind, page: Option<usize>| Rejected::new(path, id, kind, page);
    let mut bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => return vec![Err(reject(ErrorKind::Io(e), None))],
    };
    let pages = match guess_format(&bytes, format) {
        Ok(ImageFormat::Tiff) => tiff_pages(&bytes),
        Ok(_) => TiffPages::default(),
        Err(kind) => return vec![Err(reject(kind, None))],
    };
    if pages.offsets.len() <= 1 && pages.error.is_none() {
        // One image, hashed as the file's bytes (a TIFF whose other pages are all
        // reduced-resolution copies included: its full-resolution page is decoded).
        let hash = sha256_hex(&bytes);
        let image = match pages.offsets.first() {
            Some(&offset) => with_first_ifd(&mut bytes, offset),
            None => Ok(()),
        }
        .and_then(|()| decode_one(&bytes, format))
        .and_then(to_planes);
        return vec![image
            .map(|planes| make_image(id.to_owned(), hash, planes, cfg).into())
            .map_err(|kind| reject(kind, None))];
    }
    let mut outcomes = Vec::new();
    for (k, &offset) in pages.offsets.iter().enumerate() {
        let page = with_first_ifd(&mut bytes, offset)
            .and_then(|()| decode_one(&bytes, ImageFormat::Tiff))
            .and_then(|image| {
                let hash = sample_hash(&image);
                Ok((hash, to_planes(image)?))
            });
        outcomes.push(
            page.map(|(hash, planes)| make_image(format!("{id}#{k}"), hash, planes, cfg).into())
                .map_err(|kind| reject(kind, Some(k))),
        );
    }
    if let Some(kind) = pages.error {
        outcomes.push(Err(reject(kind, Some(pages.offsets.len()))));
    }
    outcomes
}

/// The format of `bytes`: `format` (from the extension) unless the magic bytes say otherwise.
fn guess_format(bytes: &[u8], format: ImageFormat) -> Result<ImageFormat, ErrorKind> {
    let reader = ImageReader::with_format(Cursor::new(bytes), format)
        .with_guessed_format()
        .map_err(ErrorKind::Io)?;
    Ok(reader.format().unwrap_or(format))
}

/// Decodes one picture (the first image of a TIFF), EXIF orientation applied.
fn decode_one(bytes: &[u8], format: ImageFormat) -> Result<DynamicImage, ErrorKind> {
    let reader = ImageReader::with_format(Cursor::new(bytes), format)
        .with_guessed_format()
        .map_err(ErrorKind::Io)?;
    let format = reader.format().unwrap_or(format);
    let decode_err = |source| ErrorKind::Decode {
        format: format_name(format),
        source,
    };
    if format == ImageFormat::Jpeg && jpeg_is_truncated(bytes) {
        return Err(decode_err(ImageError::Decoding(DecodingError::new(
            ImageFormatHint::Exact(ImageFormat::Jpeg),
            "the data ends before the end-of-image marker (FF D9): the file is truncated",
        ))));
    }
    let mut decoder = reader.into_decoder().map_err(decode_err)?;
    let (width, height) = decoder.dimensions();
    check_pixels(width.into(), height.into())?;
    let orientation = decoder.orientation().map_err(decode_err)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(decode_err)?;
    image.apply_orientation(orientation);
    Ok(image)
}

/// The pages of a TIFF file: the offsets of its image file directories (IFDs) in file
/// order, leaving out reduced-resolution copies (NewSubfileType bit 0: thumbnails, pyramid
/// levels), and the error that ended the walk early, if any.
#[derive(Debug, Default)]
struct TiffPages {
    offsets: Vec<u64>,
    error: Option<ErrorKind>,
}

/// Walks the chain of a TIFF's IFDs with the `tiff` crate (which also guards against cycles).
///
/// A file the `tiff` crate cannot open at all gives no pages: it is decoded as a single
/// picture, so the `image` crate's decoder reports what is wrong with it.
fn tiff_pages(bytes: &[u8]) -> TiffPages {
    use tiff::decoder::Decoder;
    use tiff::tags::Tag;
    let mut pages = TiffPages::default();
    let Ok(mut decoder) = Decoder::new(Cursor::new(bytes)) else {
        return pages;
    };
    loop {
        let reduced = decoder
            .find_tag_unsigned::<u32>(Tag::NewSubfileType)
            .ok()
            .flatten()
            .is_some_and(|flags| flags & 1 == 1);
        match decoder.ifd_pointer() {
            Some(pointer) if !reduced => pages.offsets.push(pointer.0),
            _ => {}
        }
        if !decoder.more_images() {
            return pages;
        }
        if let Err(e) = decoder.next_image() {
            pages.error = Some(ErrorKind::Decode {
                format: format_name(ImageFormat::Tiff),
                source: ImageError::Decoding(DecodingError::new(
                    ImageFormatHint::Exact(ImageFormat::Tiff),
                    e,
                )),
            });
            return pages;
        }
    }
}

/// Points a TIFF header's first-IFD offset at `offset`, so the `image` crate (which decodes
/// a TIFF's first image only) decodes that page, with all its color types, compressions and
/// orientation handling.
fn with_first_ifd(bytes: &mut [u8], offset: u64) -> Result<(), ErrorKind> {
    let malformed = || ErrorKind::Decode {
        format: format_name(ImageFormat::Tiff),
        source: ImageError::Decoding(DecodingError::new(
            ImageFormatHint::Exact(ImageFormat::Tiff),
            "malformed TIFF header",
        )),
    };
    let little_endian = match bytes.get(..2) {
        Some(b"II") => true,
        Some(b"MM") => false,
        _ => return Err(malformed()),
    };
    let version = bytes.get(2..4).ok_or_else(malformed)?;
    let version = if little_endian {
        u16::from_le_bytes([version[0], version[1]])
    } else {
        u16::from_be_bytes([version[0], version[1]])
    };
    let (at, field) = match version {
        // Classic TIFF: a 4-byte offset at byte 4.
        42 => {
            let offset = u32::try_from(offset).map_err(|_| malformed())?;
            let field = if little_endian {
                offset.to_le_bytes()
            } else {
                offset.to_be_bytes()
            };
            (4, field.to_vec())
        }
        // BigTIFF: an 8-byte offset at byte 8.
        43 => {
            let field = if little_endian {
                offset.to_le_bytes()
            } else {
                offset.to_be_bytes()
            };
            (8, field.to_vec())
        }
        _ => return Err(malformed()),
    };
    bytes
        .get_mut(at..at + field.len())
        .ok_or_else(malformed)?
        .copy_from_slice(&field);
    Ok(())
}

/// The hash of a page of a multi-page file: its samples as an array slice shaped
/// `(height, width, channels)` (every page of a file shares the file's bytes).
fn sample_hash(image: &DynamicImage) -> String {
    fn hash<P: Pixel>(b: &ImageBuffer<P, Vec<P::Subpixel>>) -> String
    where
        P::Subpixel: Sample,
    {
        let (w, h) = b.dimensions();
        let shape = [h as usize, w as usize, usize::from(P::CHANNEL_COUNT)];
        slice_hash(&shape, b.as_raw().iter())
    }
    use DynamicImage as D;
    match image {
        D::ImageLuma8(b) => hash(b),
        D::ImageLumaA8(b) => hash(b),
        D::ImageRgb8(b) => hash(b),
        D::ImageRgba8(b) => hash(b),
        D::ImageLuma16(b) => hash(b),
        D::ImageLumaA16(b) => hash(b),
        D::ImageRgb16(b) => hash(b),
        D::ImageRgba16(b) => hash(b),
        D::ImageRgb32F(b) => hash(b),
        D::ImageRgba32F(b) => hash(b),
        other => hash(&other.to_rgba32f()),
    }
}

/// Whether a JPEG stream (starting with the start-of-image marker `FF D8`) ends before its
/// end-of-image marker `FF D9`.
///
/// Walks the segments as a decoder does: each marker segment is skipped by its length (so
/// marker-like bytes inside APPn payloads, such as an EXIF thumbnail's own markers, are never
/// mistaken for the main image's), and after a start-of-scan (`FF DA`) the entropy-coded data is
/// skipped up to the next marker: inside it every `FF` is followed by a stuffed `00` or a restart
/// marker `D0`–`D7`, so `FF D9` cannot occur there. The stream is complete when `FF D9` is
/// reached (anything after it is ignored), truncated when the data ends first. Data that is not
/// a well-formed segment sequence is left to the decoder to judge (`false`).
fn jpeg_is_truncated(b: &[u8]) -> bool {
    if !b.starts_with(&[0xFF, 0xD8]) {
        return false;
    }
    let mut pos = 2;
    loop {
        // A marker: `FF`, optional `FF` fill bytes, then the marker's code.
        match b.get(pos) {
            None => return true,
            Some(0xFF) => {}
            Some(_) => return false,
        }
        while b.get(pos) == Some(&0xFF) {
            pos += 1;
        }
        let Some(&code) = b.get(pos) else {
            return true;
        };
        pos += 1;
        match code {
            0xD9 => return false,
            // Markers without a length: SOI, RST0–7, TEM.
            0xD8 | 0xD0..=0xD7 | 0x01 => continue,
            _ => {}
        }
        let Some(len) = b.get(pos..pos + 2) else {
            return true;
        };
        // The length counts its own two bytes.
        pos += usize::from(u16::from_be_bytes([len[0], len[1]])).max(2);
        if pos > b.len() {
            return true;
        }
        if code == 0xDA {
            // Entropy-coded data, up to the next marker other than a stuffed byte or RSTn.
            loop {
                match (b.get(pos), b.get(pos + 1)) {
                    (None, _) | (Some(0xFF), None) => return true,
                    (Some(0xFF), Some(0x00 | 0xD0..=0xD7)) => pos += 2,
                    (Some(0xFF), Some(_)) => break,
                    (Some(_), _) => pos += 1,
                }
            }
        }
    }
}

fn format_name(format: ImageFormat) -> String {
    format!("{format:?}").to_uppercase()
}

fn to_planes(image: DynamicImage) -> Result<Planes, ErrorKind> {
    use DynamicImage as D;
    use Intensity::{FullScale, MinMax};
    match image {
        D::ImageLuma8(b) => planes(view(&b)?, FullScale, None),
        D::ImageLumaA8(b) => planes(view(&b)?, FullScale, None),
        D::ImageRgb8(b) => planes(view(&b)?, FullScale, None),
        D::ImageRgba8(b) => planes(view(&b)?, FullScale, None),
        D::ImageLuma16(b) => planes(view(&b)?, MinMax, None),
        D::ImageLumaA16(b) => planes(view(&b)?, MinMax, None),
        D::ImageRgb16(b) => planes(view(&b)?, MinMax, None),
        D::ImageRgba16(b) => planes(view(&b)?, MinMax, None),
        D::ImageRgb32F(b) => float_planes(&b),
        D::ImageRgba32F(b) => float_planes(&b),
        // Future variants: image's own conversion to [0, 1] floats.
        other => float_planes(&other.to_rgba32f()),
    }
}

fn float_planes<P: Pixel<Subpixel = f32>>(
    b: &ImageBuffer<P, Vec<f32>>,
) -> Result<Planes, ErrorKind> {
    let hwc = view(b)?;
    planes(hwc, Intensity::for_floats(hwc.iter().copied())?, None)
}

/// The buffer as an `H × W × C` array view.
fn view<P: Pixel>(
    b: &ImageBuffer<P, Vec<P::Subpixel>>,
) -> Result<ArrayView3<'_, P::Subpixel>, ErrorKind>
where
    P::Subpixel: Sample,
{
    let (width, height) = b.dimensions();
    let shape = (
        height as usize,
        width as usize,
        usize::from(P::CHANNEL_COUNT),
    );
    let bad = || ErrorKind::BadShape {
        shape: vec![shape.0, shape.1, shape.2],
    };
    let n = shape.0 * shape.1 * shape.2;
    let samples = b.as_raw().get(..n).ok_or_else(bad)?;
    ArrayView3::from_shape(shape, samples).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use crate::testutil::{assert_all_near, cfg, load_err, load_ok, skip};
    use crate::ErrorKind;
    use image::{
        GrayImage, ImageBuffer, ImageEncoder, Luma, LumaA, Rgb, RgbImage, Rgba, RgbaImage,
    };
    use std::error::Error as _;
    use std::io::Cursor;
    use std::path::Path;

    fn gray16(values: &[u16], width: u32) -> ImageBuffer<Luma<u16>, Vec<u16>> {
        ImageBuffer::from_raw(width, values.len() as u32 / width, values.to_vec()).unwrap()
    }

    #[test]
    fn gray8_png_is_divided_by_255() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("g.png");
        GrayImage::from_pixel(8, 8, Luma([128])).save(&p).unwrap();
        let set = load_ok(&p, &cfg(8, 1));
        let img = &set.images[0];
        assert_eq!(
            (img.id.as_str(), img.channels, img.height, img.width),
            ("g.png", 1, 8, 8)
        );
        assert_all_near(&img.pixels, 128.0 / 255.0, 1e-7);
    }

    #[test]
    fn blank_8bit_image_is_a_normal_input() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("black.png");
        GrayImage::new(5, 5).save(&p).unwrap();
        assert_all_near(&load_ok(&p, &cfg(4, 3)).images[0].pixels, 0.0, 0.0);
    }

    #[test]
    fn sixteen_bit_png_and_tiff_use_per_image_min_max() {
        let dir = tempfile::tempdir().unwrap();
        let img = gray16(&[1000, 2000, 3000, 5000], 2);
        for name in ["a.png", "a.tif", "a.TIFF"] {
            let p = dir.path().join(name);
            img.save_with_format(
                &p,
                image::ImageFormat::from_path(name.to_lowercase()).unwrap(),
            )
            .unwrap();
            let set = load_ok(&p, &cfg(2, 1));
            let px = &set.images[0].pixels;
            for (v, want) in px.iter().zip([0.0, 0.25, 0.5, 1.0]) {
                assert!((v - want).abs() < 1e-6, "{name}: {px:?}");
            }
        }
    }

    #[test]
    fn sixteen_bit_keeps_precision_below_8_bits() {
        // Two values one 16-bit step apart inside a wide window stay distinct.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fine.png");
        gray16(&[0, 30000, 30001, 65535], 2).save(&p).unwrap();
        let px = &load_ok(&p, &cfg(2, 1)).images[0].pixels;
        assert!(px[2] > px[1], "{px:?}");
    }

    #[test]
    fn constant_16bit_image_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("flat.png");
        gray16(&[7; 4], 2).save(&p).unwrap();
        let err = load_err(&p, &cfg(2, 1), "flat.png");
        assert!(
            matches!(err.kind(), ErrorKind::ConstantImage { index: None }),
            "{err}"
        );
    }

    #[test]
    fn rgb_to_gray_uses_bt601_luma_and_rgb_keeps_planes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.png");
        RgbImage::from_pixel(4, 4, Rgb([255, 128, 0]))
            .save(&p)
            .unwrap();
        let gray = load_ok(&p, &cfg(4, 1));
        assert_all_near(&gray.images[0].pixels, 0.299 + 0.587 * 128.0 / 255.0, 1e-6);
        let rgb = load_ok(&p, &cfg(4, 3));
        let px = &rgb.images[0].pixels;
        assert_eq!(px.len(), 3 * 16);
        assert_all_near(&px[..16], 1.0, 0.0);
        assert_all_near(&px[16..32], 128.0 / 255.0, 1e-7);
        assert_all_near(&px[32..], 0.0, 0.0);
    }

    #[test]
    fn alpha_is_composited_over_black() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rgba.png");
        RgbaImage::from_pixel(3, 3, Rgba([255, 255, 255, 102]))
            .save(&p)
            .unwrap();
        assert_all_near(&load_ok(&p, &cfg(3, 1)).images[0].pixels, 0.4, 1e-6);
        let p = dir.path().join("la.png");
        ImageBuffer::from_pixel(3, 3, LumaA([255u8, 51]))
            .save(&p)
            .unwrap();
        assert_all_near(&load_ok(&p, &cfg(3, 3)).images[0].pixels, 0.2, 1e-6);
    }

    #[test]
    fn palette_png_is_expanded() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pal.png");
        let mut enc = png::Encoder::new(std::fs::File::create(&p).unwrap(), 2, 1);
        enc.set_color(png::ColorType::Indexed);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_palette(vec![0, 0, 0, 255, 0, 0, 0, 0, 255]);
        let mut w = enc.write_header().unwrap();
        w.write_image_data(&[1, 2]).unwrap(); // red, blue
        w.finish().unwrap();
        let px = load_ok(&p, &cfg(1, 3)).images.remove(0).pixels; // 2×1 → 1×1: the average
        assert!(
            (px[0] - 0.5).abs() < 1e-6 && px[1].abs() < 1e-6 && (px[2] - 0.5).abs() < 1e-6,
            "{px:?}"
        );
    }

    #[test]
    fn jpeg_and_bmp_decode() {
        let dir = tempfile::tempdir().unwrap();
        let img = RgbImage::from_pixel(16, 16, Rgb([128, 128, 128]));
        for name in ["x.jpg", "x.JPEG", "x.bmp"] {
            let p = dir.path().join(name);
            img.save_with_format(
                &p,
                image::ImageFormat::from_path(name.to_lowercase()).unwrap(),
            )
            .unwrap();
            let px = &load_ok(&p, &cfg(8, 1)).images[0].pixels;
            assert_all_near(px, 128.0 / 255.0, 3.0 / 255.0);
        }
    }

    #[test]
    fn resizing_a_constant_image_keeps_it_constant() {
        let dir = tempfile::tempdir().unwrap();
        for (name, w, h) in [
            ("sq.png", 128, 128),
            ("wide.png", 100, 50),
            ("tiny.png", 3, 5),
        ] {
            let p = dir.path().join(name);
            GrayImage::from_pixel(w, h, Luma([200])).save(&p).unwrap();
            let img = &load_ok(&p, &cfg(64, 1)).images[0];
            assert_eq!(img.pixels.len(), 64 * 64);
            assert_all_near(&img.pixels, 200.0 / 255.0, 1e-6);
        }
    }

    #[test]
    fn downscaling_averages() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("checker.png");
        GrayImage::from_fn(128, 128, |x, y| {
            Luma([if (x + y) % 2 == 0 { 255 } else { 0 }])
        })
        .save(&p)
        .unwrap();
        let px = &load_ok(&p, &cfg(64, 1)).images[0].pixels;
        assert_all_near(&px[64 * 10..64 * 50], 0.5, 0.02);
    }

    #[test]
    fn hash_is_the_file_bytes_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.png"), dir.path().join("b.png"));
        GrayImage::from_pixel(4, 4, Luma([1])).save(&a).unwrap();
        GrayImage::from_pixel(4, 4, Luma([2])).save(&b).unwrap();
        let ha = load_ok(&a, &cfg(4, 1)).images.remove(0).hash;
        assert_eq!(
            ha,
            crate::normalize::sha256_hex(&std::fs::read(&a).unwrap())
        );
        assert_eq!(
            ha,
            load_ok(&a, &cfg(8, 3)).images.remove(0).hash,
            "config-independent"
        );
        assert_ne!(ha, load_ok(&b, &cfg(4, 1)).images.remove(0).hash);
    }

    #[test]
    fn corrupt_and_truncated_files_are_decode_errors() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.png");
        RgbImage::from_fn(32, 32, |x, y| Rgb([x as u8, y as u8, 7]))
            .save(&good)
            .unwrap();
        let bytes = std::fs::read(&good).unwrap();
        let cases: [(&str, &[u8]); 4] = [
            ("trunc.png", &bytes[..bytes.len() / 2]),
            ("garbage.png", b"this is not an image at all"),
            ("empty.png", b""),
            ("header_only.jpg", &[0xFF, 0xD8, 0xFF]),
        ];
        for (name, data) in cases {
            let p = dir.path().join(name);
            std::fs::write(&p, data).unwrap();
            let err = load_err(&p, &cfg(8, 1), name);
            assert!(
                matches!(err.kind(), ErrorKind::Decode { .. }),
                "{name}: {err:?}"
            );
            assert!(
                err.source().is_some(),
                "{name}: the decoder error is the source"
            );
            assert_eq!(err.path(), p);
        }
        let err = load_err(&dir.path().join("trunc.png"), &cfg(8, 1), "trunc.png");
        assert!(
            err.to_string()
                .ends_with("trunc.png: truncated or corrupt PNG"),
            "{err}"
        );
    }

    /// A textured RGB image (so its JPEG has a long entropy-coded scan).
    fn textured(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let v = (x * 7 + y * 13) ^ (x * y);
            Rgb([v as u8, (v >> 3) as u8, (x + 2 * y) as u8])
        })
    }

    fn baseline_jpeg(img: &RgbImage) -> Vec<u8> {
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(img)
            .unwrap();
        out
    }

    fn progressive_jpeg(img: &RgbImage) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut out, 90);
        enc.set_progressive(true);
        let (w, h) = img.dimensions();
        enc.encode(
            img.as_raw(),
            w as u16,
            h as u16,
            jpeg_encoder::ColorType::Rgb,
        )
        .unwrap();
        out
    }

    /// The number of start-of-scan markers (`FF DA` pairs: the encoders used here write none
    /// elsewhere).
    fn scans(jpeg: &[u8]) -> usize {
        jpeg.windows(2).filter(|w| w == &[0xFF, 0xDA]).count()
    }

    #[test]
    fn truncated_jpeg_is_a_decode_error() {
        let dir = tempfile::tempdir().unwrap();
        let img = textured(256, 256);
        for (kind, full) in [
            ("baseline", baseline_jpeg(&img)),
            ("progressive", progressive_jpeg(&img)),
        ] {
            assert!(full.len() > 20_000, "{kind}: {} bytes", full.len());
            let p = dir.path().join(format!("{kind}.jpg"));
            std::fs::write(&p, &full).unwrap();
            load_ok(&p, &cfg(8, 1));
            // Cut inside the first scan, between scans (progressive), and just before EOI.
            for cut in [full.len() * 3 / 10, full.len() / 2, full.len() - 2] {
                let name = format!("{kind}_{cut}.jpg");
                let p = dir.path().join(&name);
                std::fs::write(&p, &full[..cut]).unwrap();
                let err = load_err(&p, &cfg(8, 1), &name);
                assert!(
                    matches!(err.kind(), ErrorKind::Decode { .. }),
                    "{name}: {err:?}"
                );
                assert!(
                    err.to_string().ends_with(": truncated or corrupt JPEG"),
                    "{err}"
                );
                assert!(err.source().unwrap().to_string().contains("truncated"));
            }
        }
        assert!(scans(&progressive_jpeg(&img)) > 1, "really progressive");
    }

    #[test]
    fn jpeg_with_trailing_bytes_or_a_thumbnail_is_complete() {
        let dir = tempfile::tempdir().unwrap();
        let full = baseline_jpeg(&textured(128, 128));
        // Bytes after the end-of-image marker (some cameras append data) are legal.
        let mut trailing = full.clone();
        trailing.extend_from_slice(b"\xFF\xDAtrailer without an end marker");
        let p = dir.path().join("trailing.jpg");
        std::fs::write(&p, &trailing).unwrap();
        load_ok(&p, &cfg(8, 1));
        // An APP1 segment holding a whole thumbnail JPEG (SOS and EOI markers of its own)
        // before the main image: complete if the main image is, truncated if it is cut.
        let thumb = baseline_jpeg(&textured(16, 16));
        let mut with_thumb = full[..2].to_vec();
        with_thumb.extend_from_slice(&[0xFF, 0xE1]);
        with_thumb.extend_from_slice(&(thumb.len() as u16 + 8).to_be_bytes());
        with_thumb.extend_from_slice(b"Exif\0\0");
        with_thumb.extend_from_slice(&thumb);
        with_thumb.extend_from_slice(&full[2..]);
        let p = dir.path().join("thumb.jpg");
        std::fs::write(&p, &with_thumb).unwrap();
        load_ok(&p, &cfg(8, 1));
        let p = dir.path().join("thumb_cut.jpg");
        std::fs::write(&p, &with_thumb[..with_thumb.len() - 100]).unwrap();
        let err = load_err(&p, &cfg(8, 1), "thumb_cut.jpg");
        assert!(matches!(err.kind(), ErrorKind::Decode { .. }), "{err:?}");
    }

    /// A 1×1 gray PNG whose header then declares `w × h` pixels (CRC fixed up).
    fn png_declaring(w: u32, h: u32) -> Vec<u8> {
        let mut bytes = Vec::new();
        image::codecs::png::PngEncoder::new(&mut bytes)
            .write_image(&[9], 1, 1, image::ExtendedColorType::L8)
            .unwrap();
        // Signature (8), IHDR length and type (8), then width and height.
        bytes[16..20].copy_from_slice(&w.to_be_bytes());
        bytes[20..24].copy_from_slice(&h.to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(&bytes[12..29]);
        bytes[29..33].copy_from_slice(&crc.sum().to_be_bytes());
        bytes
    }

    /// A little-endian 8-bit gray TIFF declaring `w × h` pixels with a one-byte strip.
    fn tiff_declaring(w: u32, h: u32) -> Vec<u8> {
        let entries: [(u16, u16, u32); 8] = [
            (256, 4, w),   // ImageWidth
            (257, 4, h),   // ImageLength
            (258, 3, 8),   // BitsPerSample
            (259, 3, 1),   // Compression: none
            (262, 3, 1),   // PhotometricInterpretation: black is zero
            (273, 4, 110), // StripOffsets: right after the IFD
            (278, 4, h),   // RowsPerStrip
            (279, 4, 1),   // StripByteCounts
        ];
        let mut out = b"II*\0".to_vec();
        out.extend_from_slice(&8u32.to_le_bytes());
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        for (tag, kind, value) in entries {
            out.extend_from_slice(&tag.to_le_bytes());
            out.extend_from_slice(&kind.to_le_bytes());
            out.extend_from_slice(&1u32.to_le_bytes());
            out.extend_from_slice(&value.to_le_bytes());
        }
        out.extend_from_slice(&0u32.to_le_bytes());
        out.push(0);
        out
    }

    #[test]
    fn a_picture_declaring_too_many_pixels_is_rejected_from_its_header() {
        let dir = tempfile::tempdir().unwrap();
        let mut jpeg = baseline_jpeg(&textured(8, 8));
        let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        jpeg[sof + 5..sof + 9].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
        let cases = [
            ("bomb.png", png_declaring(40000, 40000), (40000, 40000)),
            ("wide.png", png_declaring(1 << 20, 257), (1 << 20, 257)),
            ("bomb.tif", tiff_declaring(40000, 40000), (40000, 40000)),
            ("bomb.jpg", jpeg, (65535, 65535)),
        ];
        for (name, bytes, (w, h)) in cases {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            let err = load_err(&p, &cfg(8, 1), name);
            assert!(
                matches!(err.kind(), ErrorKind::TooManyPixels { width, height }
                    if (*width, *height) == (w, h)),
                "{name}: {err:?}"
            );
            let msg = err.to_string();
            assert!(msg.contains(&format!("declares {w}×{h} pixels")), "{msg}");
            assert!(msg.contains("268435456 (2^28) pixels per image"), "{msg}");
        }
        // At the limit the header is accepted (the missing data is then the problem).
        let p = dir.path().join("edge.png");
        std::fs::write(&p, png_declaring(1 << 14, 1 << 14)).unwrap();
        let err = load_err(&p, &cfg(8, 1), "edge.png");
        assert!(matches!(err.kind(), ErrorKind::Decode { .. }), "{err:?}");
    }

    /// A three-page TIFF: 8-bit gray 2×2 of 51, 16-bit gray 2×1 (0, 1000), RGB 1×1 red; with
    /// `thumbnail`, a reduced-resolution page (NewSubfileType 1) after the first.
    fn three_page_tiff(thumbnail: bool) -> Vec<u8> {
        use tiff::encoder::{colortype, TiffEncoder};
        let mut out = Cursor::new(Vec::new());
        let mut enc = TiffEncoder::new(&mut out).unwrap();
        enc.write_image::<colortype::Gray8>(2, 2, &[51; 4]).unwrap();
        if thumbnail {
            let mut page = enc.new_image::<colortype::Gray8>(1, 1).unwrap();
            page.encoder()
                .write_tag(tiff::tags::Tag::NewSubfileType, 1u32)
                .unwrap();
            page.write_data(&[255]).unwrap();
        }
        enc.write_image::<colortype::Gray16>(2, 1, &[0, 1000])
            .unwrap();
        enc.write_image::<colortype::RGB8>(1, 1, &[255, 0, 0])
            .unwrap();
        out.into_inner()
    }

    #[test]
    fn every_page_of_a_multi_page_tiff_is_an_image() {
        let dir = tempfile::tempdir().unwrap();
        for thumbnail in [false, true] {
            let p = dir.path().join("stack.tif");
            std::fs::write(&p, three_page_tiff(thumbnail)).unwrap();
            let set = load_ok(&p, &cfg(2, 1));
            let ids: Vec<_> = set.images.iter().map(|i| i.id.as_str()).collect();
            assert_eq!(
                ids,
                ["stack.tif#0", "stack.tif#1", "stack.tif#2"],
                "{thumbnail}"
            );
            assert_all_near(&set.images[0].pixels, 0.2, 1e-6);
            assert_eq!(set.images[1].pixels, [0.0, 1.0, 0.0, 1.0]);
            assert_all_near(&set.images[2].pixels, 0.299, 1e-6);
            // Each page has its own hash (the file's bytes are shared).
            let hashes: std::collections::HashSet<_> =
                set.images.iter().map(|i| i.hash.as_str()).collect();
            assert_eq!(hashes.len(), 3);
            assert!(set.meta.iter().all(Option::is_none));
        }
        // A single-page TIFF keeps the file's id and the file's hash.
        let p = dir.path().join("one.tif");
        GrayImage::from_pixel(2, 2, Luma([51])).save(&p).unwrap();
        let img = load_ok(&p, &cfg(2, 1)).images.remove(0);
        assert_eq!(img.id, "one.tif");
        assert_eq!(
            img.hash,
            crate::normalize::sha256_hex(&std::fs::read(&p).unwrap())
        );
    }

    #[test]
    fn a_bad_page_is_rejected_alone() {
        let dir = tempfile::tempdir().unwrap();
        let good = three_page_tiff(false);
        // The first page's next-IFD pointer (after its entries) sent past the end of the file.
        let first = u32::from_le_bytes(good[4..8].try_into().unwrap()) as usize;
        let entries = u16::from_le_bytes([good[first], good[first + 1]]) as usize;
        let next = first + 2 + 12 * entries;
        let mut broken = good.clone();
        broken[next..next + 4].copy_from_slice(&0x00FF_FFF0u32.to_le_bytes());
        let p = dir.path().join("broken.tif");
        std::fs::write(&p, &broken).unwrap();
        let err = load_err(&p, &cfg(2, 1), "broken.tif#1");
        assert!(matches!(err.kind(), ErrorKind::Decode { .. }), "{err:?}");
        assert_eq!(err.item(), Some("1"));
        let set = load_ok(&p, &skip(2, 1));
        let ids: Vec<_> = set.images.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["broken.tif#0"]);
        assert_eq!(set.skipped[0].path, "broken.tif#1");
    }

    #[test]
    fn content_decides_over_a_wrong_extension() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("actually_png.jpg");
        GrayImage::from_pixel(2, 2, Luma([51]))
            .save_with_format(&p, image::ImageFormat::Png)
            .unwrap();
        assert_all_near(
            &load_ok(Path::new(&p), &cfg(2, 1)).images[0].pixels,
            0.2,
            1e-6,
        );
    }
}
