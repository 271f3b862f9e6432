//! Writing single-channel images to disk (PNG 8/16-bit, TIFF 16-bit).
//!
//! Images are encoded in memory first, then written with one `fs::write`, so that encoding
//! and I/O failures are reported separately, each with the file's path.

use crate::error::Error;
use image::codecs::png::PngEncoder;
#[cfg(any(test, feature = "test-util"))]
use image::codecs::tiff::TiffEncoder;
use image::{ExtendedColorType, ImageEncoder};
#[cfg(any(test, feature = "test-util"))]
use std::io::Cursor;
use std::path::Path;

fn check_len(path: &Path, len: usize, size: u32) -> Result<(), Error> {
    let want = size as usize * size as usize;
    if size == 0 || len != want {
        return Err(Error::InvalidSpec(format!(
            "{}: {len} pixels for a {size}×{size} image (need {want}, size > 0)",
            path.display()
        )));
    }
    Ok(())
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    std::fs::write(path, bytes).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes an 8-bit grayscale PNG (`pixels`: `size × size`, row-major).
pub(crate) fn png8(path: &Path, pixels: &[u8], size: u32) -> Result<(), Error> {
    check_len(path, pixels.len(), size)?;
    let mut buf = Vec::new();
    PngEncoder::new(&mut buf)
        .write_image(pixels, size, size, ExtendedColorType::L8)
        .map_err(|source| Error::Encode {
            path: path.to_path_buf(),
            source,
        })?;
    write(path, &buf)
}

#[cfg(any(test, feature = "test-util"))]
fn native_bytes(pixels: &[u16]) -> Vec<u8> {
    pixels.iter().flat_map(|v| v.to_ne_bytes()).collect()
}

/// Writes a 16-bit grayscale PNG.
#[cfg(any(test, feature = "test-util"))]
pub(crate) fn png16(path: &Path, pixels: &[u16], size: u32) -> Result<(), Error> {
    check_len(path, pixels.len(), size)?;
    let mut buf = Vec::new();
    PngEncoder::new(&mut buf)
        .write_image(&native_bytes(pixels), size, size, ExtendedColorType::L16)
        .map_err(|source| Error::Encode {
            path: path.to_path_buf(),
            source,
        })?;
    write(path, &buf)
}

/// Writes a 16-bit grayscale TIFF.
#[cfg(any(test, feature = "test-util"))]
pub(crate) fn tiff16(path: &Path, pixels: &[u16], size: u32) -> Result<(), Error> {
    check_len(path, pixels.len(), size)?;
    let mut buf = Cursor::new(Vec::new());
    TiffEncoder::new(&mut buf)
        .write_image(&native_bytes(pixels), size, size, ExtendedColorType::L16)
        .map_err(|source| Error::Encode {
            path: path.to_path_buf(),
            source,
        })?;
    write(path, buf.get_ref())
}

/// Creates `dir` (and parents).
pub(crate) fn create_dir(dir: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|source| Error::CreateDir {
        path: dir.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_bit_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let px: Vec<u16> = (0..16u16).map(|v| v * 4000 + 7).collect();
        let p = dir.path().join("a.png");
        png16(&p, &px, 4).unwrap();
        let img = image::open(&p).unwrap().into_luma16();
        assert_eq!(img.as_raw(), &px);
        let t = dir.path().join("a.tiff");
        tiff16(&t, &px, 4).unwrap();
        let img = image::open(&t).unwrap().into_luma16();
        assert_eq!(img.as_raw(), &px);
    }

    #[test]
    fn errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("missing").join("a.png");
        let err = png8(&bad, &[0; 4], 2).unwrap_err();
        assert!(matches!(err, Error::Write { .. }));
        assert!(err.to_string().contains("a.png"), "{err}");
        assert!(matches!(png8(&bad, &[0; 3], 2), Err(Error::InvalidSpec(_))));
    }
}
