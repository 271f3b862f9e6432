//! Readers for the real datasets that `cargo xtask datasets fetch` puts in the cache, and the
//! helpers that turn them into `size × size` images in `[0, 1]`.
//!
//! - [`idx`]: IDX files (MNIST / Fashion-MNIST), raw or gzip-compressed.
//! - [`inv3`]: InVesalius projects (`.inv3`: a tar.gz holding `main.plist` and the raw
//!   `matrix.dat` volume), e.g. Debian `invesalius-examples`' `Cranium.inv3` head CT.
//! - [`nifti`](mod@nifti): NIfTI-1 volumes (`.nii`, `.nii.gz`), e.g. the Colin27 T1 template
//!   `ch2.nii.gz` from Debian `mricron-data`.
//!
//! Volumes come back as a [`Volume`] (C order `(z, y, x)`, `f32`), cut into axial slices
//! with [`Volume::axial_slices`].

pub mod idx;
pub mod inv3;
pub mod nifti;

/// A 3-D scalar volume in C order `(z, y, x)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    /// `[nz, ny, nx]`.
    pub shape: [usize; 3],
    /// `nz · ny · nx` values (CT: Hounsfield units).
    pub data: Vec<f32>,
}

/// How raw intensities map to `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Window {
    /// `[center − width/2, center + width/2]` → `[0, 1]`, clipped (CT in HU).
    CenterWidth(f64, f64),
    /// The volume's 0.5th and 99.5th percentiles → `[0, 1]`, clipped (MR).
    Percentile,
}

impl Volume {
    /// Axial slices (one per `z`), each windowed to `[0, 1]` and resized to `size × size`
    /// (area-weighted when shrinking, bilinear when enlarging; non-square slices are
    /// stretched). Slices whose raw maximum equals the volume's minimum (pure background)
    /// are dropped when `skip_empty`; returns `(z, pixels)` pairs.
    pub fn axial_slices(
        &self,
        window: Window,
        size: u32,
        skip_empty: bool,
    ) -> Vec<(usize, Vec<f32>)> {
        let [nz, ny, nx] = self.shape;
        let (lo, hi) = match window {
            Window::CenterWidth(c, w) => (c - w / 2.0, c + w / 2.0),
            Window::Percentile => {
                let mut v: Vec<f32> = self
                    .data
                    .iter()
                    .copied()
                    .filter(|x| x.is_finite())
                    .collect();
                v.sort_by(f32::total_cmp);
                let q = |p: f64| f64::from(v[((v.len() - 1) as f64 * p).round() as usize]);
                if v.is_empty() {
                    (0.0, 1.0)
                } else {
                    (q(0.005), q(0.995))
                }
            }
        };
        let span = (hi - lo).max(f64::MIN_POSITIVE);
        let vmin = self.data.iter().copied().fold(f32::INFINITY, f32::min);
        (0..nz)
            .filter_map(|z| {
                let plane = &self.data[z * ny * nx..(z + 1) * ny * nx];
                if skip_empty && plane.iter().copied().fold(f32::NEG_INFINITY, f32::max) <= vmin {
                    return None;
                }
                let norm: Vec<f32> = plane
                    .iter()
                    .map(|&v| ((f64::from(v) - lo) / span).clamp(0.0, 1.0) as f32)
                    .collect();
                Some((z, resize(&norm, nx, ny, size as usize)))
            })
            .collect()
    }
}

/// Resizes a `w × h` row-major plane to `size × size`: each output pixel averages a
/// `k × k` grid of bilinear samples spread over its footprint (`k` = the downscale factor,
/// at least 1), i.e. area averaging when shrinking and bilinear interpolation when enlarging.
pub fn resize(src: &[f32], w: usize, h: usize, size: usize) -> Vec<f32> {
    if w == size && h == size {
        return src.to_vec();
    }
    let (sx, sy) = (w as f64 / size as f64, h as f64 / size as f64);
    let k = sx.max(sy).ceil().max(1.0) as usize;
    let at = |x: f64, y: f64| -> f64 {
        let x = x.clamp(0.0, (w - 1) as f64);
        let y = y.clamp(0.0, (h - 1) as f64);
        let (x0, y0) = (x.floor() as usize, y.floor() as usize);
        let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
        let (fx, fy) = (x - x0 as f64, y - y0 as f64);
        let p = |xx: usize, yy: usize| f64::from(src[yy * w + xx]);
        (1.0 - fy) * ((1.0 - fx) * p(x0, y0) + fx * p(x1, y0))
            + fy * ((1.0 - fx) * p(x0, y1) + fx * p(x1, y1))
    };
    let mut out = Vec::with_capacity(size * size);
    for oy in 0..size {
        for ox in 0..size {
            let mut s = 0.0;
            for j in 0..k {
                for i in 0..k {
                    let x = (ox as f64 + (i as f64 + 0.5) / k as f64) * sx - 0.5;
                    let y = (oy as f64 + (j as f64 + 0.5) / k as f64) * sy - 0.5;
                    s += at(x, y);
                }
            }
            out.push((s / (k * k) as f64) as f32);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_averages_and_keeps_constants() {
        let src: Vec<f32> = (0..16).map(|i| (i % 4) as f32).collect();
        let out = resize(&src, 4, 4, 2);
        assert_eq!(out, vec![0.5, 2.5, 0.5, 2.5]);
        assert_eq!(resize(&[0.3; 12], 4, 3, 5), vec![0.3f32; 25]);
        assert_eq!(resize(&src, 4, 4, 4), src);
    }

    #[test]
    fn slices_window_and_skip_empty() {
        let v = Volume {
            shape: [3, 2, 2],
            data: vec![
                -1000.0, -1000.0, -1000.0, -1000.0, 0.0, 40.0, 80.0, 1000.0, -1000.0, -1000.0,
                -1000.0, -1000.0,
            ],
        };
        let s = v.axial_slices(Window::CenterWidth(40.0, 80.0), 2, true);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0], (1, vec![0.0, 0.5, 1.0, 1.0]));
        assert_eq!(v.axial_slices(Window::Percentile, 2, false).len(), 3);
    }
}
