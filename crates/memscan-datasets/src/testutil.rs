//! Fixtures for other crates' tests (feature `test-util`).
//!
//! Everything is generated from seeds into a caller-owned folder (typically a
//! `tempfile::TempDir`), so tests need no committed data:
//!
//! ```
//! # fn main() -> Result<(), memscan_datasets::Error> {
//! use memscan_datasets::testutil;
//! let dir = tempfile::tempdir().unwrap();
//! let (paths, truth) = testutil::small_demo(dir.path(), 7)?;
//! assert_eq!(truth.train.len(), 40);
//! assert!(paths.synthetic.is_dir());
//! # Ok(())
//! # }
//! ```

use crate::demo::{write_demo, DemoPaths, DemoSpec, DemoTruth};
use crate::encode;
use crate::error::Error;
use crate::phantom::{to_u8, PhantomKind};
use std::path::{Path, PathBuf};

/// Writes `images` (`size × size`, values in `[0, 1]`) as 8-bit PNGs `img_0000.png`, … in
/// `dir` (created if needed) and returns their paths in order.
pub fn write_png_set(dir: &Path, images: &[Vec<f32>], size: u32) -> Result<Vec<PathBuf>, Error> {
    encode::create_dir(dir)?;
    let w = images.len().saturating_sub(1).to_string().len().max(4);
    images
        .iter()
        .enumerate()
        .map(|(i, img)| {
            let path = dir.join(format!("img_{i:0w$}.png"));
            encode::png8(&path, &to_u8(img), size)?;
            Ok(path)
        })
        .collect()
}

/// Writes one 8-bit grayscale PNG (`pixels`: `size × size`, row-major).
pub fn write_png8(path: &Path, pixels: &[u8], size: u32) -> Result<(), Error> {
    encode::png8(path, pixels, size)
}

/// Writes one 16-bit grayscale PNG (e.g. from [`crate::phantom::render_u16`]).
pub fn write_png16(path: &Path, pixels: &[u16], size: u32) -> Result<(), Error> {
    encode::png16(path, pixels, size)
}

/// Writes one 16-bit grayscale TIFF.
pub fn write_tiff16(path: &Path, pixels: &[u16], size: u32) -> Result<(), Error> {
    encode::tiff16(path, pixels, size)
}

/// A tiny demo for fast tests: CT, 32 × 32, 40 train (10 patients × 4 slices), 40 holdout,
/// 40 synthetic (32 novel, 4 exact and 4 perturbed copies).
pub fn small_spec(seed: u64) -> DemoSpec {
    DemoSpec {
        kind: PhantomKind::Ct,
        size: 32,
        n_patients_train: 10,
        slices_per_patient: 4,
        n_holdout: 40,
        n_synthetic_novel: 32,
        n_exact_copies: 4,
        n_perturbed_copies: 4,
        seed,
    }
}

/// Writes [`small_spec`]`(seed)` under `dir` and returns its paths and ground truth.
pub fn small_demo(dir: &Path, seed: u64) -> Result<(DemoPaths, DemoTruth), Error> {
    let truth = write_demo(dir, &small_spec(seed))?;
    Ok((DemoPaths::new(dir), truth))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phantom::{render, render_u16, PatientParams};

    #[test]
    fn fixtures_decode() {
        let dir = tempfile::tempdir().unwrap();
        let p = PatientParams::sample(PhantomKind::Ct, 1);
        let imgs: Vec<Vec<f32>> = (0..3).map(|i| render(&p, i as f32 / 3.0, 16, i)).collect();
        let paths = write_png_set(&dir.path().join("set"), &imgs, 16).unwrap();
        assert_eq!(paths.len(), 3);
        assert!(paths[2].ends_with("img_0002.png"));
        let back = image::open(&paths[1]).unwrap().into_luma8().into_raw();
        assert_eq!(back, to_u8(&imgs[1]));
        let raw = render_u16(&p, 0.5, 16, 0);
        write_png16(&dir.path().join("a.png"), &raw, 16).unwrap();
        write_tiff16(&dir.path().join("a.tif"), &raw, 16).unwrap();
        for f in ["a.png", "a.tif"] {
            let back = image::open(dir.path().join(f))
                .unwrap()
                .into_luma16()
                .into_raw();
            assert_eq!(back, raw, "{f}");
        }
        let (paths, truth) = small_demo(&dir.path().join("demo"), 1).unwrap();
        assert_eq!(
            (
                truth.train.len(),
                truth.holdout.len(),
                truth.synthetic.len()
            ),
            (40, 40, 40)
        );
        assert_eq!(truth.n_copies(), 8);
        assert!(paths.truth_csv.is_file() && paths.groups_csv.is_file());
    }
}
