//! Copy transforms: how a memorized training image may come out of a generator.
//!
//! [`CopyTransform::apply`] maps a one-channel `size × size` row-major image with values in
//! `[0, 1]` to a transformed copy, at a severity `s ∈ [0, 1]` (values outside are clamped).
//! At `s = 0` the geometric and intensity transforms are the identity; `noise`, `jpeg` and
//! `crop_resize` start from a light but non-zero change (σ = 0.01, quality 95, a 90 % crop),
//! and `flip` ignores the severity. Random choices (noise,
//! direction of a shift, sign of a rotation, crop position, displacement field) come from the
//! caller's RNG, so a seeded RNG gives a reproducible copy. Outputs are clamped to `[0, 1]`.
//! Resampling uses bilinear interpolation with edge replication.
//!
//! | name | what | parameter at `s` |
//! |---|---|---|
//! | `identity` | exact copy | – |
//! | `noise` | additive Gaussian noise | `σ = 0.01 + 0.09 s` |
//! | `blur` | Gaussian blur | `σ = 3 s` pixels |
//! | `jpeg` | 8-bit JPEG encode/decode (the `image` crate's encoder) | quality `round(95 − 65 s)` |
//! | `flip` | horizontal mirror | – (severity ignored) |
//! | `shift` | translation in a random direction | `0.1 s · size` pixels |
//! | `rotate` | rotation about the centre, random sign | `15° s` |
//! | `crop_resize` | random crop, resized back | crop side `(0.9 − 0.2 s) · size` |
//! | `gamma` | gamma, contrast and brightness change | `|ln γ| = 0.6 s` (random sign), contrast `1 ± 0.15 s`, brightness `± 0.05 s` |
//! | `elastic` | smooth random displacement field (4×4 Catmull–Rom control grid) | amplitude `4 s` pixels |

use crate::error::Error;
use crate::phantom::to_u8;
use image::codecs::jpeg::JpegEncoder;
use image::ExtendedColorType;
use rand::Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A transform applied to a training image to make a (near-)copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CopyTransform {
    Identity,
    Noise,
    Blur,
    Jpeg,
    Flip,
    Shift,
    Rotate,
    CropResize,
    Gamma,
    Elastic,
}

const NAMES: &str = "identity, noise, blur, jpeg, flip, shift, rotate, crop_resize, gamma, elastic";

impl CopyTransform {
    /// All transforms, in a fixed order.
    pub const ALL: [CopyTransform; 10] = [
        CopyTransform::Identity,
        CopyTransform::Noise,
        CopyTransform::Blur,
        CopyTransform::Jpeg,
        CopyTransform::Flip,
        CopyTransform::Shift,
        CopyTransform::Rotate,
        CopyTransform::CropResize,
        CopyTransform::Gamma,
        CopyTransform::Elastic,
    ];

    /// The snake_case name used in CSV files, specs and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            CopyTransform::Identity => "identity",
            CopyTransform::Noise => "noise",
            CopyTransform::Blur => "blur",
            CopyTransform::Jpeg => "jpeg",
            CopyTransform::Flip => "flip",
            CopyTransform::Shift => "shift",
            CopyTransform::Rotate => "rotate",
            CopyTransform::CropResize => "crop_resize",
            CopyTransform::Gamma => "gamma",
            CopyTransform::Elastic => "elastic",
        }
    }

    /// The transform's main physical parameter at `severity` (see the module table), with
    /// its name: e.g. `("sigma", 0.055)` for `noise` at 0.5, `("quality", 30.0)` for `jpeg`
    /// at 1. `None` for `identity` and `flip`.
    pub fn parameter(self, severity: f32) -> Option<(&'static str, f32)> {
        let s = clamp_severity(severity);
        match self {
            CopyTransform::Identity | CopyTransform::Flip => None,
            CopyTransform::Noise => Some(("sigma", noise_sigma(s))),
            CopyTransform::Blur => Some(("sigma_px", blur_sigma(s))),
            CopyTransform::Jpeg => Some(("quality", f32::from(jpeg_quality(s)))),
            CopyTransform::Shift => Some(("shift_fraction", shift_fraction(s))),
            CopyTransform::Rotate => Some(("degrees", rotate_degrees(s))),
            CopyTransform::CropResize => Some(("crop_fraction", crop_fraction(s))),
            CopyTransform::Gamma => Some(("abs_log_gamma", gamma_log(s))),
            CopyTransform::Elastic => Some(("amplitude_px", elastic_amplitude(s))),
        }
    }

    /// Applies the transform to `img` (`size × size`, row-major, values in `[0, 1]`) at
    /// `severity` (clamped to `[0, 1]`; NaN counts as 0), drawing random choices from `rng`.
    /// The result has the same shape, values clamped to `[0, 1]`.
    ///
    /// # Panics
    /// If `img.len() != size²`.
    pub fn apply<R: Rng + ?Sized>(
        &self,
        img: &[f32],
        size: u32,
        severity: f32,
        rng: &mut R,
    ) -> Vec<f32> {
        let n = size as usize;
        assert_eq!(img.len(), n * n, "image length must be size² ({size}²)");
        let s = clamp_severity(severity);
        let mut out = match self {
            CopyTransform::Identity => img.to_vec(),
            CopyTransform::Noise => {
                let sigma = noise_sigma(s);
                img.iter()
                    .map(|&v| {
                        let z: f32 = rng.sample(StandardNormal);
                        v + sigma * z
                    })
                    .collect()
            }
            CopyTransform::Blur => gaussian_blur(img, n, blur_sigma(s)),
            CopyTransform::Jpeg => jpeg_round_trip(img, size, jpeg_quality(s)),
            CopyTransform::Flip => {
                let mut out = img.to_vec();
                for row in out.chunks_mut(n) {
                    row.reverse();
                }
                out
            }
            CopyTransform::Shift => {
                let m = shift_fraction(s) * n as f32;
                let theta = rng.random::<f32>() * std::f32::consts::TAU;
                let (dx, dy) = (m * theta.cos(), m * theta.sin());
                warp(img, n, |x, y| (x - dx, y - dy))
            }
            CopyTransform::Rotate => {
                let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
                let a = (sign * rotate_degrees(s)).to_radians();
                let (c, sn) = (a.cos(), a.sin());
                let mid = (n as f32 - 1.0) / 2.0;
                warp(img, n, |x, y| {
                    let (u, v) = (x - mid, y - mid);
                    (c * u + sn * v + mid, -sn * u + c * v + mid)
                })
            }
            CopyTransform::CropResize => {
                let c = crop_fraction(s);
                let side = c * n as f32;
                let (ox, oy) = (
                    rng.random::<f32>() * (n as f32 - side),
                    rng.random::<f32>() * (n as f32 - side),
                );
                warp(img, n, |x, y| {
                    (ox + (x + 0.5) * c - 0.5, oy + (y + 0.5) * c - 0.5)
                })
            }
            CopyTransform::Gamma => {
                let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
                let gamma = (sign * gamma_log(s)).exp();
                let contrast = 1.0 + 0.15 * s * (2.0 * rng.random::<f32>() - 1.0);
                let bright = 0.05 * s * (2.0 * rng.random::<f32>() - 1.0);
                img.iter()
                    .map(|&v| contrast * (v.max(0.0).powf(gamma) - 0.5) + 0.5 + bright)
                    .collect()
            }
            CopyTransform::Elastic => {
                let amp = elastic_amplitude(s);
                const G: usize = 4;
                let field: Vec<(f32, f32)> = (0..G * G)
                    .map(|_| {
                        (
                            2.0 * rng.random::<f32>() - 1.0,
                            2.0 * rng.random::<f32>() - 1.0,
                        )
                    })
                    .collect();
                let scale = (G - 1) as f32 / (n as f32 - 1.0).max(1.0);
                warp(img, n, |x, y| {
                    let (dx, dy) = bicubic_grid(&field, G, x * scale, y * scale);
                    (x + amp * dx, y + amp * dy)
                })
            }
        };
        for v in &mut out {
            *v = if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) };
        }
        out
    }
}

impl fmt::Display for CopyTransform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CopyTransform {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        CopyTransform::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| Error::UnknownName {
                what: "copy transform",
                name: s.to_string(),
                expected: NAMES,
            })
    }
}

fn clamp_severity(s: f32) -> f32 {
    if s.is_nan() {
        0.0
    } else {
        s.clamp(0.0, 1.0)
    }
}

fn noise_sigma(s: f32) -> f32 {
    0.01 + 0.09 * s
}

fn blur_sigma(s: f32) -> f32 {
    3.0 * s
}

fn jpeg_quality(s: f32) -> u8 {
    (95.0 - 65.0 * s).round() as u8
}

fn shift_fraction(s: f32) -> f32 {
    0.1 * s
}

fn rotate_degrees(s: f32) -> f32 {
    15.0 * s
}

fn crop_fraction(s: f32) -> f32 {
    0.9 - 0.2 * s
}

fn gamma_log(s: f32) -> f32 {
    0.6 * s
}

fn elastic_amplitude(s: f32) -> f32 {
    4.0 * s
}

/// Bilinear sample at pixel coordinates `(x, y)` (pixel centres at integers), replicating edges.
fn bilinear(img: &[f32], n: usize, x: f32, y: f32) -> f32 {
    let max = (n - 1) as f32;
    let (x, y) = (x.clamp(0.0, max), y.clamp(0.0, max));
    let (x0, y0) = (x.floor() as usize, y.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(n - 1), (y0 + 1).min(n - 1));
    let (tx, ty) = (x - x0 as f32, y - y0 as f32);
    let top = img[y0 * n + x0] * (1.0 - tx) + img[y0 * n + x1] * tx;
    let bottom = img[y1 * n + x0] * (1.0 - tx) + img[y1 * n + x1] * tx;
    top * (1.0 - ty) + bottom * ty
}

/// Output pixel `(x, y)` takes the input at `source(x, y)`.
fn warp(img: &[f32], n: usize, source: impl Fn(f32, f32) -> (f32, f32)) -> Vec<f32> {
    let mut out = Vec::with_capacity(n * n);
    for j in 0..n {
        for i in 0..n {
            let (x, y) = source(i as f32, j as f32);
            out.push(bilinear(img, n, x, y));
        }
    }
    out
}

/// Separable Gaussian blur with edge replication (kernel radius `ceil(3σ)`).
fn gaussian_blur(img: &[f32], n: usize, sigma: f32) -> Vec<f32> {
    if sigma < 1e-3 {
        return img.to_vec();
    }
    let r = (3.0 * sigma).ceil() as isize;
    let mut k: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f32 = k.iter().sum();
    k.iter_mut().for_each(|w| *w /= total);
    let clampi = |i: isize| i.clamp(0, n as isize - 1) as usize;
    let mut tmp = vec![0.0f32; n * n];
    for y in 0..n {
        for x in 0..n {
            tmp[y * n + x] = (-r..=r)
                .map(|d| k[(d + r) as usize] * img[y * n + clampi(x as isize + d)])
                .sum();
        }
    }
    let mut out = vec![0.0f32; n * n];
    for y in 0..n {
        for x in 0..n {
            out[y * n + x] = (-r..=r)
                .map(|d| k[(d + r) as usize] * tmp[clampi(y as isize + d) * n + x])
                .sum();
        }
    }
    out
}

/// 8-bit JPEG encode and decode at `quality`.
fn jpeg_round_trip(img: &[f32], size: u32, quality: u8) -> Vec<f32> {
    let bytes = to_u8(img);
    let mut buf = Vec::new();
    JpegEncoder::new_with_quality(&mut buf, quality)
        .encode(&bytes, size, size, ExtendedColorType::L8)
        .expect("encoding a valid in-memory L8 image as JPEG cannot fail");
    let decoded = image::load_from_memory_with_format(&buf, image::ImageFormat::Jpeg)
        .expect("decoding our own JPEG cannot fail")
        .into_luma8();
    decoded
        .as_raw()
        .iter()
        .map(|&v| f32::from(v) / 255.0)
        .collect()
}

/// Catmull–Rom interpolation of a `g × g` grid of 2-vectors at grid coordinates `(x, y)`.
fn bicubic_grid(grid: &[(f32, f32)], g: usize, x: f32, y: f32) -> (f32, f32) {
    let cr = |p: [f32; 4], t: f32| {
        0.5 * (2.0 * p[1]
            + (-p[0] + p[2]) * t
            + (2.0 * p[0] - 5.0 * p[1] + 4.0 * p[2] - p[3]) * t * t
            + (-p[0] + 3.0 * p[1] - 3.0 * p[2] + p[3]) * t * t * t)
    };
    let (fx, fy) = (x.floor(), y.floor());
    let (tx, ty) = (x - fx, y - fy);
    let at = |i: isize, j: isize| {
        let (i, j) = (
            i.clamp(0, g as isize - 1) as usize,
            j.clamp(0, g as isize - 1) as usize,
        );
        grid[j * g + i]
    };
    let (ix, iy) = (fx as isize, fy as isize);
    let mut rows_x = [0.0f32; 4];
    let mut rows_y = [0.0f32; 4];
    for (m, dj) in (-1..=2).enumerate() {
        let px = [-1, 0, 1, 2].map(|di| at(ix + di, iy + dj).0);
        let py = [-1, 0, 1, 2].map(|di| at(ix + di, iy + dj).1);
        rows_x[m] = cr(px, tx);
        rows_y[m] = cr(py, tx);
    }
    (cr(rows_x, ty), cr(rows_y, ty))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phantom::{render, PatientParams, PhantomKind};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    const N: u32 = 64;

    fn dist(a: &[f32], b: &[f32]) -> f32 {
        let s: f32 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
        (s / a.len() as f32).sqrt()
    }

    fn phantom() -> Vec<f32> {
        render(&PatientParams::sample(PhantomKind::Ct, 11), 0.4, N, 3)
    }

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(5)
    }

    #[test]
    fn names_round_trip() {
        for t in CopyTransform::ALL {
            assert_eq!(t.to_string().parse::<CopyTransform>().unwrap(), t);
        }
        assert_eq!(
            "crop_resize".parse::<CopyTransform>().unwrap(),
            CopyTransform::CropResize
        );
        let err = "cropresize"
            .parse::<CopyTransform>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("crop_resize"), "{err}");
    }

    #[test]
    fn identity_is_exact_and_flip_is_an_involution() {
        let img = phantom();
        assert_eq!(CopyTransform::Identity.apply(&img, N, 0.7, &mut rng()), img);
        let once = CopyTransform::Flip.apply(&img, N, 0.5, &mut rng());
        assert_ne!(once, img);
        assert_eq!(once[5], img[(N - 1) as usize]);
        assert_eq!(CopyTransform::Flip.apply(&once, N, 0.5, &mut rng()), img);
    }

    #[test]
    fn outputs_are_in_range_deterministic_and_grow_with_severity() {
        let img = phantom();
        for t in CopyTransform::ALL {
            let mut d = Vec::new();
            for s in [0.0, 0.5, 1.0] {
                let out = t.apply(&img, N, s, &mut rng());
                assert_eq!(out.len(), img.len());
                assert!(out.iter().all(|v| (0.0..=1.0).contains(v)), "{t} at {s}");
                assert_eq!(
                    out,
                    t.apply(&img, N, s, &mut rng()),
                    "{t} not deterministic"
                );
                d.push(dist(&out, &img));
            }
            if !matches!(t, CopyTransform::Identity | CopyTransform::Flip) {
                assert!(d[0] < d[1] && d[1] < d[2], "{t}: {d:?}");
            }
        }
    }

    #[test]
    fn severity_zero_is_close_to_identity() {
        let img = phantom();
        for t in CopyTransform::ALL {
            let d = dist(&t.apply(&img, N, 0.0, &mut rng()), &img);
            let bound = match t {
                CopyTransform::Flip => continue,
                // A 90 % crop moves edges by up to ~3 px at 64 px: a light but real change.
                CopyTransform::CropResize => 0.25,
                CopyTransform::Noise | CopyTransform::Jpeg => 0.015,
                _ => 1e-6,
            };
            assert!(d < bound, "{t}: {d}");
        }
    }

    #[test]
    fn noise_level_matches_sigma() {
        let img = vec![0.5f32; (N * N) as usize];
        for s in [0.0f32, 0.5, 1.0] {
            let out = CopyTransform::Noise.apply(&img, N, s, &mut rng());
            let sd = dist(&out, &img);
            let want = 0.01 + 0.09 * s;
            assert!(
                (sd - want).abs() < 0.05 * want,
                "s={s}: measured {sd}, want {want}"
            );
        }
        assert_eq!(CopyTransform::Noise.parameter(0.5), Some(("sigma", 0.055)));
        assert_eq!(CopyTransform::Jpeg.parameter(0.0), Some(("quality", 95.0)));
        assert_eq!(CopyTransform::Jpeg.parameter(1.0), Some(("quality", 30.0)));
        assert_eq!(CopyTransform::Flip.parameter(1.0), None);
    }

    #[test]
    fn geometric_transforms_preserve_constant_images() {
        let img = vec![0.25f32; (N * N) as usize];
        for t in [
            CopyTransform::Blur,
            CopyTransform::Shift,
            CopyTransform::Rotate,
            CopyTransform::CropResize,
            CopyTransform::Elastic,
            CopyTransform::Flip,
        ] {
            let out = t.apply(&img, N, 1.0, &mut rng());
            assert!(out.iter().all(|v| (v - 0.25).abs() < 1e-5), "{t}");
        }
    }

    #[test]
    fn blur_smooths_and_shift_moves_content() {
        let img = phantom();
        let tv = |x: &[f32]| -> f32 { x.windows(2).map(|w| (w[1] - w[0]).abs()).sum() };
        let blurred = CopyTransform::Blur.apply(&img, N, 1.0, &mut rng());
        assert!(tv(&blurred) < 0.6 * tv(&img));
        // A single bright pixel moves by 0.1 * 64 = 6.4 px at full severity.
        let n = N as usize;
        let mut dot = vec![0.0f32; n * n];
        dot[32 * n + 32] = 1.0;
        let moved = CopyTransform::Shift.apply(&dot, N, 1.0, &mut rng());
        let (mut cx, mut cy, mut m) = (0.0, 0.0, 0.0);
        for (i, &v) in moved.iter().enumerate() {
            cx += v * (i % n) as f32;
            cy += v * (i / n) as f32;
            m += v;
        }
        let r = ((cx / m - 32.0f32).powi(2) + (cy / m - 32.0f32).powi(2)).sqrt();
        assert!((r - 6.4).abs() < 0.2, "moved by {r}");
    }

    #[test]
    fn tiny_images_work() {
        for t in CopyTransform::ALL {
            let out = t.apply(&[0.3], 1, 1.0, &mut rng());
            assert_eq!(out.len(), 1);
            let out = t.apply(&[0.3, 0.6, 0.1, 0.9], 2, 0.5, &mut rng());
            assert_eq!(out.len(), 4);
        }
    }
}
