//! Moment canonicalization of an image before the `cnn` sees it ([`crate::cnn::Config::canon`]).
//!
//! The image is resampled so that its intensity centroid lands on the image centre and its
//! radius of gyration becomes `RADIUS · min(H, W)` pixels. The moments use the weights
//! `w = max(v̄ − FLOOR, 0)` of the channel mean `v̄` (pixel values in `[0, 1]`), so a dark
//! background does not count; sampling is bilinear with 0 outside the image. A shifted or
//! uniformly scaled copy of an object that lies inside the frame then canonicalizes to
//! (nearly) the same image, which takes translation and zoom out of what the network has to
//! learn to ignore.
//!
//! Measured on the CT phantoms in pixel space (`examples/copy_recall.rs embedder=pixel`;
//! reports/reference/embedders-cnn.md): recall of shifted copies at α = 0.01 rises from
//! 0.007 to 0.963. Crop-resized copies gain less (0 → 0.14), because the crop cuts part of
//! the object off and biases the moments; [`Canon::Windowed`] re-estimates the moments under
//! a Gaussian window around the centroid, which discounts that periphery (crop-resize 0.39,
//! shift 0.98). In front of the `cnn` (trained with the same canonicalization) the windowed
//! variant measured best and is the default.
//!
//! [`Canon::Axes`] (the default of new models) then also turns the image so that the
//! principal axis of its windowed second moments lies along the nearer image axis: a small
//! rotation of a copy is undone before the network sees it. The snap to the nearer axis
//! keeps the turn within ±45°, and below an eccentricity of [`AXES_ECC`] the turn is scaled
//! down, so a round object is not spun by noise. Measured in pixel space
//! (`examples/copy_recall.rs embedder=pixel`, seed 0): rotated copies 0.008 → 0.849
//! (Fashion-MNIST) and 0.017 → 0.847 (CT); in front of the `cnn` trained with it, rotated
//! Fashion-MNIST copies 0.596 → 0.965 (reports/reference/embedders-cnn.md, Follow-up 5).
//!
//! Edge cases: an image without weight (blank, all below `FLOOR`, or non-finite moments) is
//! returned unchanged; the scale factor is clamped to `[1/MAX_ZOOM, MAX_ZOOM]`, so a single
//! bright pixel is not blown up to fill the frame.

use serde::{Deserialize, Serialize};

/// Which canonicalization is applied to every input image of a [`crate::cnn::Cnn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Canon {
    /// None: the image is used as it is (models saved before this option existed).
    #[default]
    Off,
    /// Centroid to the centre, radius of gyration to `RADIUS · min(H, W)` ([`canonicalize`]).
    Moments,
    /// As `moments`, but the moments are then re-estimated [`WINDOW_ITERS`] times under a
    /// Gaussian window of σ = [`WINDOW`]·r around the current centroid, which discounts the
    /// periphery (the part a crop cuts off first) ([`windowed_moments`]).
    Windowed,
    /// As `windowed`, and then rotated so that the principal axis of the windowed second
    /// moments lies along the nearer image axis ([`principal_angle`]): a rotation of at most
    /// 45°, scaled down for nearly isotropic objects whose axis is ill-defined.
    Axes,
}

impl Canon {
    /// Whether this is [`Canon::Off`] (for serde's `skip_serializing_if`).
    pub fn is_off(&self) -> bool {
        *self == Canon::Off
    }
}

/// Intensity below which a pixel does not count in the moments.
pub const FLOOR: f64 = 0.1;
/// Target radius of gyration as a fraction of the image side.
pub const RADIUS: f64 = 0.25;
/// The largest zoom in or out canonicalization applies.
pub const MAX_ZOOM: f64 = 4.0;

/// Window σ of [`Canon::Windowed`] as a multiple of the current radius of gyration.
pub const WINDOW: f64 = 1.0;
/// Re-estimations of [`Canon::Windowed`].
pub const WINDOW_ITERS: usize = 3;

/// The moments canonicalization uses: weighted centroid `(cx, cy)` in pixel coordinates
/// (column, row) and radius of gyration `r` in pixels. `None` when the image has no weight.
pub fn moments(planar: &[f32], c: usize, h: usize, w: usize) -> Option<(f64, f64, f64)> {
    weighted_moments(planar, c, h, w, None)
}

/// [`moments`], then [`WINDOW_ITERS`] re-estimations under a Gaussian window of
/// σ = `window`·r around the previous centroid (r: the previous radius). For a Gaussian
/// blob the fixed point is finite for `window` > 1/√2, and the estimate is shift- and
/// scale-covariant like [`moments`].
pub fn windowed_moments(
    planar: &[f32],
    c: usize,
    h: usize,
    w: usize,
    window: f64,
) -> Option<(f64, f64, f64)> {
    let mut m = moments(planar, c, h, w)?;
    for _ in 0..WINDOW_ITERS {
        let sigma = window * m.2;
        if sigma.is_nan() || sigma <= 0.5 {
            break;
        }
        m = weighted_moments(planar, c, h, w, Some((m.0, m.1, sigma)))?;
    }
    Some(m)
}

/// Eccentricity `(λ₁ − λ₂)/(λ₁ + λ₂)` of the second moments at and above which
/// [`Canon::Axes`] applies the whole snapped rotation; below it the rotation is scaled by
/// `eccentricity / AXES_ECC`, so that an object without a clear axis is not spun by noise.
pub const AXES_ECC: f64 = 0.2;

/// The principal-axis angle (radians, image coordinates: x right, y down) of the second
/// central moments of `planar` under a Gaussian window `(cx, cy, σ)`, snapped to the nearer
/// image axis, i.e. in `(−π/4, π/4]`, and the eccentricity `(λ₁ − λ₂)/(λ₁ + λ₂) ∈ [0, 1]`.
/// `None` without weight.
pub fn principal_angle(
    planar: &[f32],
    c: usize,
    h: usize,
    w: usize,
    window: (f64, f64, f64),
) -> Option<(f64, f64)> {
    let (mut s, mut sx, mut sy) = (0f64, 0f64, 0f64);
    let (mut sxx, mut syy, mut sxy) = (0f64, 0f64, 0f64);
    let shaped = for_weighted_pixels(planar, c, h, w, Some(window), |wt, fx, fy| {
        s += wt;
        sx += wt * fx;
        sy += wt * fy;
        sxx += wt * fx * fx;
        syy += wt * fy * fy;
        sxy += wt * fx * fy;
    });
    if !shaped || !s.is_finite() || s <= 1e-12 {
        return None;
    }
    let (mx, my) = (sx / s, sy / s);
    let (a, b, d) = (sxx / s - mx * mx, syy / s - my * my, sxy / s - mx * my);
    let tr = a + b;
    if !(tr.is_finite() && tr > 1e-12) {
        return None;
    }
    let ecc = ((a - b).powi(2) + 4.0 * d * d).sqrt() / tr;
    // The major axis' angle in (−π/2, π/2], snapped modulo π/2 into (−π/4, π/4].
    let phi = 0.5 * (2.0 * d).atan2(a - b);
    let q = std::f64::consts::FRAC_PI_2;
    let mut psi = phi - q * (phi / q).round();
    if psi <= -q / 2.0 {
        psi += q;
    }
    (psi.is_finite() && ecc.is_finite()).then_some((psi, ecc.min(1.0)))
}

/// Calls `f(weight, x, y)` for every pixel whose weight `max(v̄ − FLOOR, 0)` (`v̄`: the
/// channel mean) is positive, the weight multiplied by the Gaussian window `(cx, cy, σ)` if
/// one is given. `false` (and no call) if `planar` is not `c·h·w` long or the shape is empty.
fn for_weighted_pixels(
    planar: &[f32],
    c: usize,
    h: usize,
    w: usize,
    window: Option<(f64, f64, f64)>,
    mut f: impl FnMut(f64, f64, f64),
) -> bool {
    let hw = h * w;
    if c == 0 || hw == 0 || planar.len() != c * hw {
        return false;
    }
    for y in 0..h {
        for x in 0..w {
            let p = y * w + x;
            let mut v = 0f64;
            for ch in 0..c {
                v += f64::from(planar[ch * hw + p]);
            }
            // `max` ignores a NaN mean: such a pixel gets no weight.
            let mut wt = (v / c as f64 - FLOOR).max(0.0);
            if wt > 0.0 {
                let (fx, fy) = (x as f64, y as f64);
                if let Some((wx, wy, sigma)) = window {
                    let d2 = (fx - wx).powi(2) + (fy - wy).powi(2);
                    wt *= (-0.5 * d2 / (sigma * sigma)).exp();
                }
                f(wt, fx, fy);
            }
        }
    }
    true
}

/// Weighted moments, optionally under a Gaussian window `(cx, cy, σ)`.
fn weighted_moments(
    planar: &[f32],
    c: usize,
    h: usize,
    w: usize,
    window: Option<(f64, f64, f64)>,
) -> Option<(f64, f64, f64)> {
    let (mut s, mut sx, mut sy, mut sxx) = (0f64, 0f64, 0f64, 0f64);
    let shaped = for_weighted_pixels(planar, c, h, w, window, |wt, fx, fy| {
        s += wt;
        sx += wt * fx;
        sy += wt * fy;
        sxx += wt * (fx * fx + fy * fy);
    });
    if !shaped || !s.is_finite() || s <= 1e-12 {
        return None;
    }
    let (cx, cy) = (sx / s, sy / s);
    let r2 = (sxx / s - cx * cx - cy * cy).max(0.0);
    let r = r2.sqrt();
    (cx.is_finite() && cy.is_finite() && r.is_finite()).then_some((cx, cy, r))
}

/// Writes the canonicalized `planar` (`c × h × w`, CHW) into `out` (same layout and length).
/// Without weight ([`moments`] is `None`) `out` is a copy of `planar`.
///
/// # Panics
///
/// If `planar` or `out` is not `c·h·w` long.
pub fn canonicalize_into(planar: &[f32], c: usize, h: usize, w: usize, out: &mut [f32]) {
    canonicalize_with(Canon::Moments, planar, c, h, w, out);
}

/// Canonicalizes `planar` into `out` as `canon` says ([`Canon::Off`]: a copy).
///
/// # Panics
///
/// If `planar` or `out` is not `c·h·w` long.
pub fn canonicalize_with(
    canon: Canon,
    planar: &[f32],
    c: usize,
    h: usize,
    w: usize,
    out: &mut [f32],
) {
    let hw = h * w;
    assert_eq!(planar.len(), c * hw, "canonicalize: input is not c·h·w");
    assert_eq!(out.len(), c * hw, "canonicalize: output is not c·h·w");
    let m = match canon {
        Canon::Off => None,
        Canon::Moments => moments(planar, c, h, w),
        Canon::Windowed | Canon::Axes => windowed_moments(planar, c, h, w, WINDOW),
    };
    let Some((cx, cy, r)) = m else {
        out.copy_from_slice(planar);
        return;
    };
    let angle = match canon {
        Canon::Axes => principal_angle(planar, c, h, w, (cx, cy, WINDOW * r))
            .map_or(0.0, |(psi, ecc)| psi * (ecc / AXES_ECC).min(1.0)),
        _ => 0.0,
    };
    let r0 = RADIUS * h.min(w) as f64;
    // Output pixel (i, j) samples the input at the centroid + R(angle)·(offset from the
    // centre)·k: the output's x axis runs along the input's direction `angle`.
    let k = (r / r0).clamp(1.0 / MAX_ZOOM, MAX_ZOOM);
    let (cos, sin) = (angle.cos() * k, angle.sin() * k);
    let (mx, my) = ((w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0);
    for ch in 0..c {
        let src = &planar[ch * hw..(ch + 1) * hw];
        let dst = &mut out[ch * hw..(ch + 1) * hw];
        for j in 0..h {
            let v = j as f64 - my;
            for i in 0..w {
                let u = i as f64 - mx;
                let (sx, sy) = (cx + u * cos - v * sin, cy + u * sin + v * cos);
                dst[j * w + i] = bilinear_zero(src, h, w, sx, sy);
            }
        }
    }
}

/// [`canonicalize_into`] into a new vector.
pub fn canonicalize(planar: &[f32], c: usize, h: usize, w: usize) -> Vec<f32> {
    canonicalized(Canon::Moments, planar, c, h, w)
}

/// [`canonicalize_with`] into a new vector.
pub fn canonicalized(canon: Canon, planar: &[f32], c: usize, h: usize, w: usize) -> Vec<f32> {
    let mut out = vec![0.0; planar.len()];
    canonicalize_with(canon, planar, c, h, w, &mut out);
    out
}

/// Bilinear sample of a `h × w` plane at (column `x`, row `y`), 0 outside the image.
fn bilinear_zero(src: &[f32], h: usize, w: usize, x: f64, y: f64) -> f32 {
    if !(x > -1.0 && y > -1.0 && x < w as f64 && y < h as f64) {
        return 0.0;
    }
    let (fx, fy) = (x.floor(), y.floor());
    let (tx, ty) = ((x - fx) as f32, (y - fy) as f32);
    let (x0, y0) = (fx as isize, fy as isize);
    let at = |xx: isize, yy: isize| -> f32 {
        if xx < 0 || yy < 0 || xx >= w as isize || yy >= h as isize {
            0.0
        } else {
            src[yy as usize * w + xx as usize]
        }
    };
    let top = at(x0, y0) * (1.0 - tx) + at(x0 + 1, y0) * tx;
    let bottom = at(x0, y0 + 1) * (1.0 - tx) + at(x0 + 1, y0 + 1) * tx;
    top * (1.0 - ty) + bottom * ty
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A smooth blob (an ellipse-ish Gaussian plus a bright off-centre spot) of radius
    /// `scale` around (`x0`, `y0`), values in [0, 1].
    fn blob(n: usize, x0: f64, y0: f64, scale: f64) -> Vec<f32> {
        let mut v = vec![0f32; n * n];
        for y in 0..n {
            for x in 0..n {
                let (dx, dy) = ((x as f64 - x0) / scale, (y as f64 - y0) / scale);
                let a = (-(dx * dx / 1.4 + dy * dy / 0.8)).exp();
                let (ex, ey) = (dx - 0.5, dy + 0.3);
                let b = 0.5 * (-(ex * ex + ey * ey) * 8.0).exp();
                v[y * n + x] = (0.9 * a + b).min(1.0) as f32;
            }
        }
        v
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn integer_shifted_copies_canonicalize_alike() {
        let n = 40;
        let a = blob(n, 19.5, 19.5, 5.0);
        // Shift by (3, −2) pixels: the object stays inside the frame.
        let mut s = vec![0f32; n * n];
        for y in 0..n {
            for x in 0..n {
                let (xs, ys) = (x as isize - 3, y as isize + 2);
                if (0..n as isize).contains(&xs) && (0..n as isize).contains(&ys) {
                    s[y * n + x] = a[ys as usize * n + xs as usize];
                }
            }
        }
        let (ma, ms) = (moments(&a, 1, n, n).unwrap(), moments(&s, 1, n, n).unwrap());
        assert!((ms.0 - ma.0 - 3.0).abs() < 1e-3 && (ms.1 - ma.1 + 2.0).abs() < 1e-3);
        assert!((ms.2 - ma.2).abs() < 1e-3);
        let (ca, cs) = (canonicalize(&a, 1, n, n), canonicalize(&s, 1, n, n));
        let d = max_diff(&ca, &cs);
        assert!(d < 1e-3, "max difference {d}");
        // And the canonical image differs from the input (it was moved and rescaled).
        assert!(max_diff(&ca, &a) > 0.05);
    }

    #[test]
    fn canonical_centroid_and_radius_are_fixed() {
        let n = 48;
        for (x0, y0, scale) in [(20.0, 26.0, 4.0), (24.0, 22.0, 7.0), (27.0, 20.0, 5.5)] {
            let c = canonicalize(&blob(n, x0, y0, scale), 1, n, n);
            let (cx, cy, r) = moments(&c, 1, n, n).unwrap();
            let mid = (n as f64 - 1.0) / 2.0;
            assert!(
                (cx - mid).abs() < 0.3 && (cy - mid).abs() < 0.3,
                "{cx} {cy}"
            );
            // Bilinear resampling and the weight floor make this approximate.
            let want = RADIUS * n as f64;
            assert!((r - want).abs() < 0.05 * want, "radius {r}, want {want}");
        }
    }

    #[test]
    fn a_scaled_copy_gets_the_same_radius_and_nearly_the_same_image() {
        let n = 48;
        let small = canonicalize(&blob(n, 23.5, 23.5, 4.0), 1, n, n);
        let big = canonicalize(&blob(n, 23.5, 23.5, 6.0), 1, n, n);
        let (rs, rb) = (
            moments(&small, 1, n, n).unwrap().2,
            moments(&big, 1, n, n).unwrap().2,
        );
        assert!((rs - rb).abs() < 0.03 * rb, "radii {rs} vs {rb}");
        let rms = (small
            .iter()
            .zip(&big)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f32>()
            / small.len() as f32)
            .sqrt();
        assert!(rms < 0.02, "rms {rms}");
    }

    #[test]
    fn blank_dark_and_degenerate_images_are_safe() {
        let n = 16;
        for fill in [0.0f32, 0.05, 0.099] {
            let img = vec![fill; 3 * n * n];
            assert!(moments(&img, 3, n, n).is_none());
            assert_eq!(canonicalize(&img, 3, n, n), img);
        }
        // A single bright pixel: finite output, the zoom clamped.
        let mut dot = vec![0f32; n * n];
        dot[5 * n + 9] = 1.0;
        let c = canonicalize(&dot, 1, n, n);
        assert!(c.iter().all(|v| v.is_finite()));
        // NaN pixels get no weight; the others still give finite moments.
        let mut img = blob(n, 7.5, 7.5, 3.0);
        img[0] = f32::NAN;
        let (cx, cy, r) = moments(&img, 1, n, n).unwrap();
        assert!(cx.is_finite() && cy.is_finite() && r.is_finite());
        // Wrong length or empty shapes: no moments, no panic.
        assert!(moments(&img[1..], 1, n, n).is_none());
        assert!(moments(&[], 0, 0, 0).is_none());
        assert!(canonicalize(&[], 1, 0, 0).is_empty());
    }

    #[test]
    fn windowed_moments_follow_shift_and_scale_and_resist_a_cut() {
        let n = 48;
        let mid = (n as f64 - 1.0) / 2.0;
        let base = windowed_moments(&blob(n, 22.0, 24.0, 5.0), 1, n, n, WINDOW).unwrap();
        let moved = windowed_moments(&blob(n, 26.0, 21.0, 5.0), 1, n, n, WINDOW).unwrap();
        assert!((moved.0 - base.0 - 4.0).abs() < 1e-2 && (moved.1 - base.1 + 3.0).abs() < 1e-2);
        assert!((moved.2 - base.2).abs() < 1e-2 * base.2);
        let big = windowed_moments(&blob(n, 22.0, 24.0, 7.5), 1, n, n, WINDOW).unwrap();
        assert!(
            (big.2 / base.2 - 1.5).abs() < 0.03,
            "{} / {}",
            big.2,
            base.2
        );
        // Cut the left part of a wide object off: the windowed centroid moves less than the
        // plain one.
        let full = blob(n, mid, mid, 9.0);
        let mut cut = full.clone();
        for y in 0..n {
            for x in 0..12 {
                cut[y * n + x] = 0.0;
            }
        }
        let shift = |f: fn(&[f32]) -> (f64, f64, f64)| (f(&cut).0 - f(&full).0).abs();
        let plain = shift(|v| moments(v, 1, 48, 48).unwrap());
        let windowed = shift(|v| windowed_moments(v, 1, 48, 48, WINDOW).unwrap());
        assert!(windowed < plain, "windowed {windowed} vs plain {plain}");
        // The windowed canonicalization of a blank image is the image.
        let blank = vec![0f32; n * n];
        assert_eq!(canonicalized(Canon::Windowed, &blank, 1, n, n), blank);
        assert_eq!(canonicalized(Canon::Off, &full, 1, n, n), full);
    }

    /// `img` (`n × n`) rotated by `deg` degrees about the image centre (bilinear, 0 outside).
    fn rotated(img: &[f32], n: usize, deg: f64) -> Vec<f32> {
        let (c, s) = (deg.to_radians().cos(), deg.to_radians().sin());
        let m = (n as f64 - 1.0) / 2.0;
        let mut out = vec![0f32; n * n];
        for y in 0..n {
            for x in 0..n {
                let (u, v) = (x as f64 - m, y as f64 - m);
                out[y * n + x] = bilinear_zero(img, n, n, c * u + s * v + m, -s * u + c * v + m);
            }
        }
        out
    }

    /// A clearly elongated object (eccentricity ≈ 0.6, axis along x) with a bright spot off
    /// its axis, centred at (`x0`, `y0`).
    fn long_blob(n: usize, x0: f64, y0: f64) -> Vec<f32> {
        let mut v = vec![0f32; n * n];
        for y in 0..n {
            for x in 0..n {
                let (dx, dy) = ((x as f64 - x0) / 5.0, (y as f64 - y0) / 5.0);
                let a = (-(dx * dx / 3.0 + dy * dy / 0.7)).exp();
                let (ex, ey) = (dx - 0.8, dy + 0.4);
                let b = 0.5 * (-(ex * ex + ey * ey) * 6.0).exp();
                v[y * n + x] = (0.9 * a + b).min(1.0) as f32;
            }
        }
        v
    }

    fn rms(a: &[f32], b: &[f32]) -> f32 {
        (a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f32>() / a.len() as f32).sqrt()
    }

    #[test]
    fn principal_angle_follows_a_rotation_and_snaps_to_the_nearer_axis() {
        let n = 48;
        let mid = (n as f64 - 1.0) / 2.0;
        let base = long_blob(n, mid, mid);
        let angle = |img: &[f32]| {
            let (cx, cy, r) = windowed_moments(img, 1, n, n, WINDOW).unwrap();
            principal_angle(img, 1, n, n, (cx, cy, WINDOW * r)).unwrap()
        };
        let (a0, ecc) = angle(&base);
        assert!(ecc > 0.2, "eccentricity {ecc}");
        for deg in [-30.0f64, -7.5, 10.0, 40.0] {
            let (a, e) = angle(&rotated(&base, n, deg));
            // `rotated` turns the image clockwise on screen (y down) by `deg`: the axis angle
            // grows by `deg`.
            let got = (a - a0).to_degrees();
            assert!((got - deg).abs() < 1.0, "rotated {deg}°: axis moved {got}°");
            assert!((e - ecc).abs() < 0.02, "eccentricity {e} vs {ecc}");
        }
        // 50° and −40° are the same axis modulo 90°: the snapped angle is −40°.
        let (a, _) = angle(&rotated(&base, n, 50.0));
        assert!(
            ((a - a0).to_degrees() + 40.0).abs() < 1.0,
            "{}",
            a.to_degrees()
        );
        // An isotropic Gaussian has no axis: eccentricity ≈ 0.
        let round: Vec<f32> = (0..n * n)
            .map(|p| {
                let (x, y) = ((p % n) as f64 - mid, (p / n) as f64 - mid);
                (-(x * x + y * y) / 50.0).exp() as f32
            })
            .collect();
        assert!(angle(&round).1 < 0.01, "{}", angle(&round).1);
        assert!(principal_angle(&vec![0f32; n * n], 1, n, n, (mid, mid, 5.0)).is_none());
        assert!(principal_angle(&base[1..], 1, n, n, (mid, mid, 5.0)).is_none());
    }

    #[test]
    fn axes_canonicalization_takes_out_a_small_rotation_and_leaves_round_objects_alone() {
        let n = 48;
        let base = long_blob(n, 22.0, 25.0);
        let axes = canonicalized(Canon::Axes, &base, 1, n, n);
        for deg in [-12.0, -7.5, 7.5, 15.0] {
            let turned = rotated(&base, n, deg);
            let with_axes = rms(&canonicalized(Canon::Axes, &turned, 1, n, n), &axes);
            let windowed = rms(
                &canonicalized(Canon::Windowed, &turned, 1, n, n),
                &canonicalized(Canon::Windowed, &base, 1, n, n),
            );
            assert!(
                with_axes < 0.01 && with_axes < windowed / 4.0,
                "{deg}°: rms {with_axes} with axes, {windowed} without"
            );
        }
        // A nearly isotropic object is not rotated: axes = windowed.
        let mid = (n as f64 - 1.0) / 2.0;
        let round: Vec<f32> = (0..n * n)
            .map(|p| {
                let (x, y) = ((p % n) as f64 - mid, (p / n) as f64 - mid);
                (-(x * x / 49.0 + y * y / 50.0)).exp() as f32
            })
            .collect();
        let d = max_diff(
            &canonicalized(Canon::Axes, &round, 1, n, n),
            &canonicalized(Canon::Windowed, &round, 1, n, n),
        );
        assert!(d < 0.02, "max difference {d}");
        let blank = vec![0f32; n * n];
        assert_eq!(canonicalized(Canon::Axes, &blank, 1, n, n), blank);
    }

    #[test]
    fn channels_move_together() {
        let n = 24;
        let g = blob(n, 10.0, 13.0, 4.0);
        let rgb: Vec<f32> = [1.0f32, 0.5, 0.25]
            .iter()
            .flat_map(|&f| g.iter().map(move |v| v * f))
            .collect();
        let c = canonicalize(&rgb, 3, n, n);
        let hw = n * n;
        for p in 0..hw {
            assert!((c[hw + p] - 0.5 * c[p]).abs() < 1e-5);
            assert!((c[2 * hw + p] - 0.25 * c[p]).abs() < 1e-5);
        }
    }
}
