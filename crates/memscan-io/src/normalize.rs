//! From decoded samples to memscan's pixels: intensity mapping to `[0, 1]`, alpha
//! compositing, channel conversion and resizing, plus the content hashes.
//!
//! Every source (an `image` buffer or one slice of an array) is first viewed as an
//! `H × W × C` array of samples (`C` = 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) and mapped by an
//! [`Intensity`] rule (the table in the crate docs) into [`Planes`]. [`finish`] then
//! composites alpha over black, converts to the configured channel count (BT.601 luma for
//! RGB → gray, repetition for gray → RGB) and resizes each plane to `size × size` with a
//! triangle filter on `f32` buffers, so 16-bit precision survives.

use crate::error::ErrorKind;
use crate::{Image, IoConfig};
use image::imageops::{self, FilterType};
use image::{ImageBuffer, Luma};
use ndarray::{ArrayView3, Axis};
use sha2::{Digest, Sha256};

/// An array element type memscan reads.
pub(crate) trait Sample: Copy + Send + Sync + 'static {
    /// The dtype's name, hashed with array slices.
    const DTYPE: &'static str;
    /// The value of a fully opaque alpha sample.
    const FULL_SCALE: f64;
    fn to_f64(self) -> f64;
    /// Appends the little-endian bytes of `self`.
    fn put_le(self, out: &mut Vec<u8>);
}

macro_rules! impl_sample {
    ($t:ty, $name:literal, $full:expr) => {
        impl Sample for $t {
            const DTYPE: &'static str = $name;
            const FULL_SCALE: f64 = $full;
            fn to_f64(self) -> f64 {
                f64::from(self)
            }
            fn put_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    };
}

impl_sample!(u8, "uint8", 255.0);
impl_sample!(u16, "uint16", 65535.0);
impl_sample!(f32, "float32", 1.0);
impl_sample!(f64, "float64", 1.0);

/// How raw sample values map to `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Intensity {
    /// `v / full_scale` (8-bit sources).
    FullScale,
    /// Per-image min–max over the color samples (16-bit sources); alpha is `v / 65535`.
    MinMax,
    /// `(v + offset) * scale` for every sample, alpha included (float sources; the range
    /// was checked on the whole array).
    Float { offset: f64, scale: f64 },
    /// `(v − lo) / (hi − lo)` clipped to `[0, 1]`, or `(hi − v) / (hi − lo)` when `invert`
    /// (DICOM MONOCHROME1): an intensity window over gray DICOM or NIfTI values (`lo < hi`).
    /// NaN or ±∞ is an error.
    Window { lo: f64, hi: f64, invert: bool },
}

impl Intensity {
    /// The float rule for an array (or float image) whose samples are `values`: in `[0, 1]`
    /// as is, else in `[-1, 1]` mapped by `(v + 1) / 2`, else [`ErrorKind::OutOfRange`].
    /// Non-finite values are ignored here (they are reported per image).
    pub(crate) fn for_floats<T: Sample>(
        values: impl Iterator<Item = T>,
    ) -> Result<Self, ErrorKind> {
        let (min, max) = values
            .map(Sample::to_f64)
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
        if min > max || (min >= 0.0 && max <= 1.0) {
            // No finite value at all, or already in [0, 1].
            Ok(Intensity::Float {
                offset: 0.0,
                scale: 1.0,
            })
        } else if min >= -1.0 && max <= 1.0 {
            Ok(Intensity::Float {
                offset: 1.0,
                scale: 0.5,
            })
        } else {
            Err(ErrorKind::OutOfRange { min, max })
        }
    }
}

/// `v ↦ v * scale + bias`, clamped to `[0, 1]` (for the full-scale, min–max and float rules the
/// clamp only absorbs rounding; for [`Intensity::Window`] it clips values outside the window).
#[derive(Debug, Clone, Copy)]
struct Affine {
    scale: f64,
    bias: f64,
}

impl Affine {
    fn apply<T: Sample>(self, v: T) -> f32 {
        (v.to_f64() * self.scale + self.bias).clamp(0.0, 1.0) as f32
    }
}

/// The window `[center − width/2, center + width/2]` as `(lo, hi)`.
pub(crate) fn window_bounds((center, width): (f64, f64)) -> (f64, f64) {
    (center - width / 2.0, center + width / 2.0)
}

/// Lower and upper percentile of percentile scaling (0.5 % and 99.5 %).
pub(crate) const PERCENTILES: (f64, f64) = (0.005, 0.995);

/// The `(lo, hi)` window of percentile scaling over `values`: their 0.5th and 99.5th
/// percentiles, ignoring NaN and ±∞, each interpolated linearly between the two nearest order
/// statistics (NumPy's default `linear` method). If the two coincide (an image that is almost
/// all one value, e.g. a small bright object on a flat background), the min and max instead.
/// `None` if there is no finite value or all finite values are equal.
///
/// Linear time (two selections on a copy), so it is cheap on whole volumes.
pub(crate) fn percentile_window(values: impl Iterator<Item = f32>) -> Option<(f64, f64)> {
    let mut finite: Vec<f32> = values.filter(|v| v.is_finite()).collect();
    let n = finite.len();
    if n == 0 {
        return None;
    }
    let mut quantile = |q: f64| -> f64 {
        let pos = q * (n - 1) as f64;
        let k = pos.floor() as usize;
        let (_, &mut at_k, above) = finite.select_nth_unstable_by(k, f32::total_cmp);
        let next = above.iter().copied().fold(f32::INFINITY, f32::min);
        let frac = pos - k as f64;
        if frac == 0.0 {
            f64::from(at_k)
        } else {
            f64::from(at_k) + frac * (f64::from(next) - f64::from(at_k))
        }
    };
    let (lo, hi) = (quantile(PERCENTILES.0), quantile(PERCENTILES.1));
    if lo < hi {
        return Some((lo, hi));
    }
    let (min, max) = finite
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    (min < max).then_some((f64::from(min), f64::from(max)))
}

/// Rejects an image that declares more than [`MAX_PIXELS`](crate::MAX_PIXELS) pixels.
pub(crate) fn check_pixels(width: u64, height: u64) -> Result<(), ErrorKind> {
    if width.saturating_mul(height) > crate::MAX_PIXELS {
        return Err(ErrorKind::TooManyPixels { width, height });
    }
    Ok(())
}

/// One image as planes of `f32` in `[0, 1]`, before compositing and resizing.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Planes {
    pub width: u32,
    pub height: u32,
    /// 1 (gray) or 3 (RGB) planes of `width * height` values, row-major.
    pub color: Vec<Vec<f32>>,
    /// Opacity in `[0, 1]`, if the source had an alpha channel.
    pub alpha: Option<Vec<f32>>,
}

/// Maps an `H × W × C` view of samples to [`Planes`] (`C` ∈ 1..=4, alpha last for 2 and 4).
///
/// `index` is the image's index in its array (for [`ErrorKind::NonFinite`] and
/// [`ErrorKind::ConstantImage`]); `None` for single-image files.
pub(crate) fn planes<T: Sample>(
    hwc: ArrayView3<'_, T>,
    intensity: Intensity,
    index: Option<usize>,
) -> Result<Planes, ErrorKind> {
    let (h, w, c) = hwc.dim();
    let (Ok(height), Ok(width)) = (u32::try_from(h), u32::try_from(w)) else {
        return Err(ErrorKind::BadShape {
            shape: vec![h, w, c],
        });
    };
    if h == 0 || w == 0 {
        return Err(ErrorKind::EmptyImage { width, height });
    }
    let n_color = match c {
        1 | 2 => 1,
        3 | 4 => 3,
        _ => {
            return Err(ErrorKind::BadShape {
                shape: vec![h, w, c],
            })
        }
    };
    let (color_map, alpha_map) = match intensity {
        Intensity::FullScale => {
            let map = Affine {
                scale: 1.0 / T::FULL_SCALE,
                bias: 0.0,
            };
            (map, map)
        }
        Intensity::MinMax => {
            let color = hwc.slice(ndarray::s![.., .., ..n_color]);
            let (lo, hi) = color
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                    let v = v.to_f64();
                    (lo.min(v), hi.max(v))
                });
            if hi <= lo {
                return Err(ErrorKind::ConstantImage { index });
            }
            let scale = 1.0 / (hi - lo);
            (
                Affine {
                    scale,
                    bias: -lo * scale,
                },
                Affine {
                    scale: 1.0 / T::FULL_SCALE,
                    bias: 0.0,
                },
            )
        }
        Intensity::Float { offset, scale } => {
            if hwc.iter().any(|v| !v.to_f64().is_finite()) {
                return Err(ErrorKind::NonFinite { index });
            }
            let map = Affine {
                scale,
                bias: offset * scale,
            };
            (map, map)
        }
        Intensity::Window { lo, hi, invert } => {
            if hwc.iter().any(|v| !v.to_f64().is_finite()) {
                return Err(ErrorKind::NonFinite { index });
            }
            let scale = 1.0 / (hi - lo);
            let map = if invert {
                Affine {
                    scale: -scale,
                    bias: hi * scale,
                }
            } else {
                Affine {
                    scale,
                    bias: -lo * scale,
                }
            };
            (map, map)
        }
    };
    let plane = |ch: usize, map: Affine| -> Vec<f32> {
        hwc.index_axis(Axis(2), ch)
            .iter()
            .map(|&v| map.apply(v))
            .collect()
    };
    let color = (0..n_color).map(|ch| plane(ch, color_map)).collect();
    let alpha = (c % 2 == 0).then(|| plane(c - 1, alpha_map));
    Ok(Planes {
        width,
        height,
        color,
        alpha,
    })
}

/// The [`Image`] `id` with content hash `hash`, from `planes` processed by [`finish`].
pub(crate) fn make_image(id: String, hash: String, planes: Planes, cfg: &IoConfig) -> Image {
    Image {
        id,
        hash,
        channels: usize::from(cfg.channels),
        height: cfg.size as usize,
        width: cfg.size as usize,
        pixels: finish(planes, cfg),
    }
}

/// Composites, converts and resizes `planes` as `cfg` asks.
///
/// Returns `cfg.channels * cfg.size * cfg.size` values in `[0, 1]`, planar (CHW).
/// Non-square sources are stretched to the square.
fn finish(planes: Planes, cfg: &IoConfig) -> Vec<f32> {
    let Planes {
        width,
        height,
        mut color,
        alpha,
    } = planes;
    if let Some(alpha) = alpha {
        // Over black: premultiply.
        for plane in &mut color {
            plane.iter_mut().zip(&alpha).for_each(|(v, a)| *v *= a);
        }
    }
    if cfg.channels == 1 && color.len() == 3 {
        // Luma is linear, so converting before resizing equals converting after.
        let luma = (0..color[0].len())
            .map(|i| 0.299 * color[0][i] + 0.587 * color[1][i] + 0.114 * color[2][i]);
        color = vec![luma.collect()];
    }
    let n_planes = color.len();
    let mut out = Vec::with_capacity(usize::from(cfg.channels) * (cfg.size as usize).pow(2));
    for plane in color {
        out.extend(resize(plane, width, height, cfg.size));
    }
    if cfg.channels == 3 && n_planes == 1 {
        let gray = out.len();
        out.extend_from_within(..gray);
        out.extend_from_within(..gray);
    }
    out
}

/// Resizes one `width × height` plane to `size × size` (triangle filter), values clamped to
/// `[0, 1]` (the filter's weights are non-negative, so only rounding could leave the range).
fn resize(plane: Vec<f32>, width: u32, height: u32, size: u32) -> Vec<f32> {
    if (width, height) == (size, size) {
        return plane;
    }
    let buf = ImageBuffer::<Luma<f32>, Vec<f32>>::from_raw(width, height, plane)
        .expect("a plane holds width * height values");
    let mut out = imageops::resize(&buf, size, size, FilterType::Triangle).into_raw();
    out.iter_mut().for_each(|v| *v = v.clamp(0.0, 1.0));
    out
}

/// Lower-case hex SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Content hash of one array slice: SHA-256 over the dtype name, a NUL, the slice's shape
/// (each dimension as a little-endian `u64`) and its samples in C order as little-endian bytes.
/// Independent of the file's byte order, memory layout and container (`.npy` or `.npz`).
pub(crate) fn slice_hash<'a, T: Sample>(
    shape: &[usize],
    samples: impl Iterator<Item = &'a T>,
) -> String {
    let mut bytes = Vec::with_capacity(T::DTYPE.len() + 1 + 8 * shape.len());
    bytes.extend_from_slice(T::DTYPE.as_bytes());
    bytes.push(0);
    for &d in shape {
        bytes.extend_from_slice(&(d as u64).to_le_bytes());
    }
    for &v in samples {
        v.put_le(&mut bytes);
    }
    sha256_hex(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    fn cfg(size: u32, channels: u8) -> IoConfig {
        IoConfig {
            size,
            channels,
            ..IoConfig::default()
        }
    }

    #[test]
    fn float_rule_picks_identity_shift_or_error() {
        let id = Intensity::Float {
            offset: 0.0,
            scale: 1.0,
        };
        assert_eq!(
            Intensity::for_floats([0.0f32, 1.0, 0.5].into_iter()).unwrap(),
            id
        );
        assert_eq!(
            Intensity::for_floats([-1.0f64, 1.0].into_iter()).unwrap(),
            Intensity::Float {
                offset: 1.0,
                scale: 0.5
            }
        );
        assert_eq!(
            Intensity::for_floats([f32::NAN, 0.2].into_iter()).unwrap(),
            id
        );
        assert_eq!(
            Intensity::for_floats(std::iter::empty::<f32>()).unwrap(),
            id
        );
        assert!(matches!(
            Intensity::for_floats([0.0f32, 255.0].into_iter()),
            Err(ErrorKind::OutOfRange { min, max }) if min == 0.0 && max == 255.0
        ));
    }

    #[test]
    fn minmax_rejects_constant_and_uses_color_only() {
        let a = Array3::<u16>::from_elem((2, 2, 1), 7);
        assert!(matches!(
            planes(a.view(), Intensity::MinMax, Some(4)),
            Err(ErrorKind::ConstantImage { index: Some(4) })
        ));
        // Gray + alpha: the window comes from the gray samples, alpha is v / 65535.
        let a = Array3::from_shape_vec((1, 2, 2), vec![100u16, 65535, 300, 0]).unwrap();
        let p = planes(a.view(), Intensity::MinMax, None).unwrap();
        assert_eq!(p.color, vec![vec![0.0, 1.0]]);
        assert_eq!(p.alpha, Some(vec![1.0, 0.0]));
    }

    #[test]
    fn alpha_composites_over_black_and_luma_weights() {
        let a = Array3::from_shape_vec((1, 1, 4), vec![255u8, 255, 255, 51]).unwrap();
        let p = planes(a.view(), Intensity::FullScale, None).unwrap();
        let gray = finish(p, &cfg(1, 1));
        assert!((gray[0] - 0.2).abs() < 1e-6, "{gray:?}");
        let a = Array3::from_shape_vec((1, 1, 3), vec![255u8, 0, 0]).unwrap();
        let p = planes(a.view(), Intensity::FullScale, None).unwrap();
        assert!((finish(p, &cfg(1, 1))[0] - 0.299).abs() < 1e-6);
    }

    #[test]
    fn gray_to_rgb_repeats_the_plane() {
        let a = Array3::from_shape_vec((1, 2, 1), vec![0u8, 255]).unwrap();
        let p = planes(a.view(), Intensity::FullScale, None).unwrap();
        let out = finish(p, &cfg(2, 3));
        assert_eq!(out.len(), 12);
        assert_eq!(&out[..4], &out[4..8]);
        assert_eq!(&out[..4], &out[8..]);
    }

    #[test]
    fn non_finite_is_reported_with_index() {
        let a = Array3::from_shape_vec((1, 2, 1), vec![0.5f32, f32::INFINITY]).unwrap();
        let id = Intensity::Float {
            offset: 0.0,
            scale: 1.0,
        };
        assert!(matches!(
            planes(a.view(), id, Some(2)),
            Err(ErrorKind::NonFinite { index: Some(2) })
        ));
    }

    #[test]
    fn percentiles_interpolate_like_numpy() {
        // np.percentile(np.arange(201), [0.5, 99.5]) == [1, 199]
        let values: Vec<f32> = (0..=200).rev().map(|v| v as f32).collect();
        assert_eq!(percentile_window(values.into_iter()), Some((1.0, 199.0)));
        // np.percentile(np.arange(11), [0.5, 99.5]) == [0.05, 9.95]
        let (lo, hi) = percentile_window((0..=10).map(|v| v as f32)).unwrap();
        assert!(
            (lo - 0.05).abs() < 1e-9 && (hi - 9.95).abs() < 1e-9,
            "{lo} {hi}"
        );
    }

    #[test]
    fn percentiles_ignore_non_finite_and_fall_back_to_min_max() {
        let values = [f32::NAN, 1.0, 2.0, f32::INFINITY, 3.0];
        let (lo, hi) = percentile_window(values.into_iter()).unwrap();
        assert!(
            (lo - 1.01).abs() < 1e-6 && (hi - 2.99).abs() < 1e-6,
            "{lo} {hi}"
        );
        // 1 bright pixel in 1000: both percentiles are 0, so the window is min–max.
        let sparse = (0..1000).map(|i| if i == 500 { 7.0 } else { 0.0 });
        assert_eq!(percentile_window(sparse), Some((0.0, 7.0)));
        assert_eq!(percentile_window([5.0f32; 9].into_iter()), None);
        assert_eq!(percentile_window([f32::NAN, 5.0].into_iter()), None);
        assert_eq!(percentile_window(std::iter::empty()), None);
    }

    #[test]
    fn window_maps_clips_and_inverts() {
        let a = Array3::from_shape_vec((1, 4, 1), vec![-200.0f32, -160.0, 40.0, 1000.0]).unwrap();
        let (lo, hi) = window_bounds((40.0, 400.0));
        assert_eq!((lo, hi), (-160.0, 240.0));
        let p = planes(
            a.view(),
            Intensity::Window {
                lo,
                hi,
                invert: false,
            },
            None,
        )
        .unwrap();
        assert_eq!(p.color, vec![vec![0.0, 0.0, 0.5, 1.0]]);
        let p = planes(
            a.view(),
            Intensity::Window {
                lo,
                hi,
                invert: true,
            },
            None,
        )
        .unwrap();
        assert_eq!(p.color, vec![vec![1.0, 1.0, 0.5, 0.0]]);
        let a = Array3::from_shape_vec((1, 1, 1), vec![f32::NAN]).unwrap();
        let window = Intensity::Window {
            lo,
            hi,
            invert: false,
        };
        assert!(matches!(
            planes(a.view(), window, Some(3)),
            Err(ErrorKind::NonFinite { index: Some(3) })
        ));
    }

    #[test]
    fn slice_hash_depends_on_dtype_shape_and_values() {
        let h = slice_hash::<u8>(&[2, 2], [1u8, 2, 3, 4].iter());
        assert_eq!(h.len(), 64);
        assert_eq!(h, slice_hash::<u8>(&[2, 2], [1u8, 2, 3, 4].iter()));
        assert_ne!(h, slice_hash::<u8>(&[1, 4], [1u8, 2, 3, 4].iter()));
        assert_ne!(h, slice_hash::<u8>(&[2, 2], [1u8, 2, 3, 5].iter()));
        assert_ne!(
            slice_hash::<u16>(&[1], [1u16].iter()),
            slice_hash::<u8>(&[2], [1u8, 0].iter())
        );
    }
}
