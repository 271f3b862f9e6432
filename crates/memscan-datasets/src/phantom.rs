//! Procedural medical-like phantoms with patients and slices.
//!
//! A *patient* ([`PatientParams::sample`]) fixes an anatomy from one seed: pose in the field
//! of view, body and organ sizes, positions, rotations and shape wobble, and a tissue texture.
//! Its *slices* ([`render`] at a position `z`) vary smoothly with `z`: organs grow, shrink and
//! move a little, so neighbouring slices of one patient are similar but not identical (the
//! hard negatives of a copy detector), while different patients are clearly different.
//! Acquisition noise comes from a separate `noise_seed`, so two renders of the same slice
//! with different noise seeds are two "scans" of the same anatomy.
//!
//! | [`PhantomKind`] | looks like | `z` means | raw unit ([`render_u16`]) |
//! |---|---|---|---|
//! | `Ct` | axial chest/upper-abdomen CT slice: body outline with subcutaneous fat, lungs with vessels, heart, aorta, spine and ribs, liver, stomach, kidneys, bowel blobs | table position, `0` = lung apex … `1` = upper abdomen | HU + 1024 (`round(hu + 1024)`, clamped to `u16`); display window level 40 HU, width 800 HU |
//! | `Mr` | axial T1-weighted brain slice: scalp, dark skull, CSF, gyrated gray/white matter, lateral ventricles, deep gray nuclei, bias field, Rician noise | head height, `0` ≈ lateral ventricles' level … `1` = near the vertex | 12-bit signal (`round(v · 4095)`) |
//! | `Xray` | chest radiograph (PA projection): torso and shoulders, dark lung fields, heart and mediastinum, spine, rib arcs, clavicles | exam index: inspiration depth and positioning change smoothly | 12-bit signal (`round(v · 4095)`) |
//!
//! All renders are `size × size` row-major `f32` in `[0, 1]` (one channel). Shapes are
//! analytic with anti-aliased edges one pixel wide, so a patient looks the same at any size.
//! Acquisition noise is white: CT σ = 12 HU (0.015 after windowing), MR Rician σ = 0.015,
//! X-ray σ = 0.012. Rendering is deterministic: the same `(patient seed, z, size,
//! noise_seed)` gives the same bits.

use crate::error::Error;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};
use std::f32::consts::{PI, TAU};
use std::fmt;
use std::str::FromStr;

/// The modality a phantom imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhantomKind {
    /// Axial chest/abdomen CT slice.
    #[default]
    Ct,
    /// Axial T1-weighted brain MR slice.
    Mr,
    /// Chest radiograph (posterior–anterior projection).
    Xray,
}

impl PhantomKind {
    /// All kinds, in a fixed order.
    pub const ALL: [PhantomKind; 3] = [PhantomKind::Ct, PhantomKind::Mr, PhantomKind::Xray];

    /// The lower-case name used in file names, CLI values and specs (`ct`, `mr`, `xray`).
    pub fn name(self) -> &'static str {
        match self {
            PhantomKind::Ct => "ct",
            PhantomKind::Mr => "mr",
            PhantomKind::Xray => "xray",
        }
    }
}

impl fmt::Display for PhantomKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for PhantomKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        PhantomKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| Error::UnknownName {
                what: "phantom kind",
                name: s.to_string(),
                expected: "ct, mr, xray",
            })
    }
}

/// One patient's anatomy, fixed by a seed.
///
/// Cheap to clone; rendering never mutates it.
#[derive(Debug, Clone)]
pub struct PatientParams {
    kind: PhantomKind,
    seed: u64,
    anatomy: Anatomy,
}

#[derive(Debug, Clone)]
enum Anatomy {
    Ct(Box<Ct>),
    Mr(Box<Mr>),
    Xray(Box<Xray>),
}

impl PatientParams {
    /// Samples a patient of `kind` from `seed` (the same seed always gives the same anatomy).
    pub fn sample(kind: PhantomKind, seed: u64) -> PatientParams {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let anatomy = match kind {
            PhantomKind::Ct => Anatomy::Ct(Box::new(Ct::sample(&mut rng))),
            PhantomKind::Mr => Anatomy::Mr(Box::new(Mr::sample(&mut rng))),
            PhantomKind::Xray => Anatomy::Xray(Box::new(Xray::sample(&mut rng))),
        };
        PatientParams {
            kind,
            seed,
            anatomy,
        }
    }

    /// The modality.
    pub fn kind(&self) -> PhantomKind {
        self.kind
    }

    /// The seed the anatomy was sampled from.
    pub fn seed(&self) -> u64 {
        self.seed
    }
}

/// Renders slice `z` (nominally in `[0, 1]`; see the module table) of `patient` as a
/// `size × size` row-major image with values in `[0, 1]` (CT: windowed at level 40 HU,
/// width 800 HU). `noise_seed` fixes the acquisition noise.
///
/// # Panics
/// If `size` is 0.
pub fn render(patient: &PatientParams, z: f32, size: u32, noise_seed: u64) -> Vec<f32> {
    let raw = render_raw(patient, z, size, noise_seed);
    match patient.kind {
        PhantomKind::Ct => raw
            .iter()
            .map(|&hu| ((hu - (CT_LEVEL - CT_WIDTH / 2.0)) / CT_WIDTH).clamp(0.0, 1.0))
            .collect(),
        PhantomKind::Mr | PhantomKind::Xray => raw,
    }
}

/// Like [`render`], but in the modality's 16-bit raw unit: CT as `round(hu + 1024)` clamped
/// to `u16` (so air ≈ 24, water = 1024, bone > 1500), MR and X-ray as 12-bit values
/// `round(v · 4095)`.
pub fn render_u16(patient: &PatientParams, z: f32, size: u32, noise_seed: u64) -> Vec<u16> {
    let raw = render_raw(patient, z, size, noise_seed);
    match patient.kind {
        PhantomKind::Ct => raw
            .iter()
            .map(|&hu| (hu + 1024.0).round().clamp(0.0, 65535.0) as u16)
            .collect(),
        PhantomKind::Mr | PhantomKind::Xray => raw
            .iter()
            .map(|&v| (v * 4095.0).round().clamp(0.0, 4095.0) as u16)
            .collect(),
    }
}

/// Like [`render`], quantized to 8 bits with [`to_u8`].
pub fn render_u8(patient: &PatientParams, z: f32, size: u32, noise_seed: u64) -> Vec<u8> {
    to_u8(&render(patient, z, size, noise_seed))
}

/// Quantizes `[0, 1]` values to 8 bits: `round(v · 255)`, clamped (NaN becomes 0).
pub fn to_u8(img: &[f32]) -> Vec<u8> {
    img.iter()
        .map(|&v| (v * 255.0).round().clamp(0.0, 255.0) as u8)
        .collect()
}

/// The inverse of [`to_u8`]: `v / 255`.
pub fn from_u8(img: &[u8]) -> Vec<f32> {
    img.iter().map(|&v| f32::from(v) / 255.0).collect()
}

/// CT display window (HU).
const CT_LEVEL: f32 = 40.0;
const CT_WIDTH: f32 = 800.0;

fn render_raw(patient: &PatientParams, z: f32, size: u32, noise_seed: u64) -> Vec<f32> {
    assert!(size > 0, "phantom size must be positive");
    let mut noise = ChaCha8Rng::seed_from_u64(noise_seed);
    match &patient.anatomy {
        Anatomy::Ct(a) => a.render(z, size as usize, &mut noise),
        Anatomy::Mr(a) => a.render(z, size as usize, &mut noise),
        Anatomy::Xray(a) => a.render(z, size as usize, &mut noise),
    }
}

// ---------------------------------------------------------------------------------------
// Geometry and texture primitives.

fn uni(rng: &mut ChaCha8Rng, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * rng.random::<f32>()
}

fn sign(rng: &mut ChaCha8Rng) -> f32 {
    if rng.random::<bool>() {
        1.0
    } else {
        -1.0
    }
}

fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// A smooth window: 1 at `c`, falling to 0 at `c ± w` (raised cosine).
fn bump(x: f32, c: f32, w: f32) -> f32 {
    let t = ((x - c) / w).clamp(-1.0, 1.0);
    0.5 + 0.5 * (PI * t).cos()
}

/// Radial shape perturbation `amp · cos(k θ + phase)`.
#[derive(Debug, Clone, Copy)]
struct Wobble {
    k: f32,
    amp: f32,
    phase: f32,
}

fn wobbles(rng: &mut ChaCha8Rng, ks: &[u32], max_amp: f32) -> Vec<Wobble> {
    ks.iter()
        .map(|&k| Wobble {
            k: k as f32,
            amp: uni(rng, 0.0, max_amp),
            phase: uni(rng, 0.0, TAU),
        })
        .collect()
}

/// A rotated ellipse with a wobbly boundary, optionally cut by a horizontal line.
#[derive(Debug, Clone)]
struct Blob {
    cx: f32,
    cy: f32,
    a: f32,
    b: f32,
    rot: f32,
    wob: Vec<Wobble>,
    /// Points with `y > clip_y` are outside.
    clip_y: f32,
    /// Extra phase added to every wobble (animates the boundary along `z`).
    wob_shift: f32,
}

impl Blob {
    fn new(cx: f32, cy: f32, a: f32, b: f32, rot: f32, wob: Vec<Wobble>) -> Blob {
        Blob {
            cx,
            cy,
            a,
            b,
            rot,
            wob,
            clip_y: f32::INFINITY,
            wob_shift: 0.0,
        }
    }

    fn circle(cx: f32, cy: f32, r: f32) -> Blob {
        Blob::new(cx, cy, r, r, 0.0, Vec::new())
    }

    /// Moved by `(dx, dy)` and scaled about its centre by `s`.
    fn at(&self, dx: f32, dy: f32, s: f32) -> Blob {
        Blob {
            cx: self.cx + dx,
            cy: self.cy + dy,
            a: self.a * s,
            b: self.b * s,
            ..self.clone()
        }
    }

    /// Offset outwards by `d` (inwards if negative), approximately.
    fn grown(&self, d: f32) -> Blob {
        Blob {
            a: (self.a + d).max(1e-4),
            b: (self.b + d).max(1e-4),
            clip_y: self.clip_y + d,
            ..self.clone()
        }
    }

    fn bound(&self) -> f32 {
        self.a.max(self.b) * (1.0 + self.wob.iter().map(|w| w.amp.abs()).sum::<f32>())
    }

    /// Normalized radius: `< 1` inside, `1` on the boundary.
    fn radius(&self, x: f32, y: f32, (c, s): (f32, f32)) -> (f32, f32) {
        let (dx, dy) = (x - self.cx, y - self.cy);
        let u = c * dx + s * dy;
        let v = -s * dx + c * dy;
        let (un, vn) = (u / self.a, v / self.b);
        let mut r = (un * un + vn * vn).sqrt();
        if !self.wob.is_empty() {
            let th = vn.atan2(un);
            let w: f32 = self
                .wob
                .iter()
                .map(|w| w.amp * (w.k * th + w.phase + self.wob_shift).cos())
                .sum();
            r /= (1.0 + w).max(0.2);
        }
        (r, (u * u + v * v).sqrt())
    }

    /// Approximate signed distance (radial), negative inside.
    fn sdf(&self, x: f32, y: f32, cs: (f32, f32)) -> f32 {
        let (r, d) = self.radius(x, y, cs);
        let e = if r < 1e-6 {
            -self.a.min(self.b)
        } else {
            d * (1.0 - 1.0 / r)
        };
        e.max(y - self.clip_y)
    }

    fn cs(&self) -> (f32, f32) {
        (self.rot.cos(), self.rot.sin())
    }
}

/// Pose of the patient in the field of view.
#[derive(Debug, Clone, Copy)]
struct Frame {
    rot: f32,
    tx: f32,
    ty: f32,
    scale: f32,
}

impl Frame {
    fn sample(rng: &mut ChaCha8Rng, rot: f32, shift: f32, scale: (f32, f32)) -> Frame {
        Frame {
            rot: uni(rng, -rot, rot),
            tx: uni(rng, -shift, shift),
            ty: uni(rng, -shift, shift),
            scale: uni(rng, scale.0, scale.1),
        }
    }
}

/// A periodic 3-D lattice of random values, smoothly interpolated (value noise).
#[derive(Debug, Clone)]
struct Lattice {
    n: usize,
    nz: usize,
    v: Vec<f32>,
}

impl Lattice {
    fn sample(rng: &mut ChaCha8Rng, n: usize, nz: usize) -> Lattice {
        Lattice {
            n,
            nz,
            v: (0..n * n * nz).map(|_| uni(rng, -1.0, 1.0)).collect(),
        }
    }

    /// Value noise in about `[-1, 1]` at lattice coordinates `(x, y, z)`.
    fn at(&self, x: f32, y: f32, z: f32) -> f32 {
        let (n, nz) = (self.n as i64, self.nz as i64);
        let (fx, fy, fz) = (x.floor(), y.floor(), z.floor());
        let (tx, ty, tz) = (fade(x - fx), fade(y - fy), fade(z - fz));
        let (ix, iy, iz) = (fx as i64, fy as i64, fz as i64);
        let get = |i: i64, j: i64, k: i64| {
            let (i, j, k) = (
                i.rem_euclid(n) as usize,
                j.rem_euclid(n) as usize,
                k.rem_euclid(nz) as usize,
            );
            self.v[(k * self.n + j) * self.n + i]
        };
        let lerp = |a: f32, b: f32, t: f32| a + (b - a) * t;
        let plane = |k: i64| {
            let a = lerp(get(ix, iy, k), get(ix + 1, iy, k), tx);
            let b = lerp(get(ix, iy + 1, k), get(ix + 1, iy + 1, k), tx);
            lerp(a, b, ty)
        };
        lerp(plane(iz), plane(iz + 1), tz)
    }

    /// Two octaves, about `[-1, 1]`.
    fn fbm(&self, x: f32, y: f32, z: f32) -> f32 {
        (self.at(x, y, z) + 0.5 * self.at(2.03 * x + 17.1, 2.03 * y + 5.3, 2.03 * z + 3.7)) / 1.5
    }
}

fn fade(t: f32) -> f32 {
    t * t * (3.0 - 2.0 * t)
}

/// Slow motion of an organ along `z`: offset `(ax sin(2π f z + px), ay sin(2π f z + py))`.
#[derive(Debug, Clone, Copy)]
struct Drift {
    ax: f32,
    ay: f32,
    f: f32,
    px: f32,
    py: f32,
}

impl Drift {
    fn sample(rng: &mut ChaCha8Rng, amp: f32) -> Drift {
        Drift {
            ax: uni(rng, -amp, amp),
            ay: uni(rng, -amp, amp),
            f: uni(rng, 0.6, 1.6),
            px: uni(rng, 0.0, TAU),
            py: uni(rng, 0.0, TAU),
        }
    }

    fn at(&self, z: f32) -> (f32, f32) {
        let w = TAU * self.f * z;
        (self.ax * (w + self.px).sin(), self.ay * (w + self.py).sin())
    }

    fn apply(&self, blob: &Blob, z: f32, s: f32) -> Blob {
        let (dx, dy) = self.at(z);
        blob.at(dx, dy, s)
    }
}

/// A `size × size` image together with the body-frame coordinates of every pixel centre.
struct Canvas {
    x: Vec<f32>,
    y: Vec<f32>,
    /// Pixel pitch in body-frame units.
    px: f32,
    v: Vec<f32>,
}

impl Canvas {
    fn new(size: usize, frame: &Frame, background: f32) -> Canvas {
        let n = size * size;
        let (mut x, mut y) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let (c, s) = (frame.rot.cos(), frame.rot.sin());
        for j in 0..size {
            let yi = 2.0 * (j as f32 + 0.5) / size as f32 - 1.0 - frame.ty;
            for i in 0..size {
                let xi = 2.0 * (i as f32 + 0.5) / size as f32 - 1.0 - frame.tx;
                x.push((c * xi + s * yi) / frame.scale);
                y.push((-s * xi + c * yi) / frame.scale);
            }
        }
        Canvas {
            x,
            y,
            px: 2.0 / size as f32 / frame.scale,
            v: vec![background; n],
        }
    }

    /// Alpha-blends `value(x, y, old)` inside `blob`, with an anti-aliased edge `soft` pixels wide.
    fn paint_fn(&mut self, blob: &Blob, soft: f32, value: impl Fn(f32, f32, f32) -> f32) {
        if blob.a <= 0.0 || blob.b <= 0.0 {
            return;
        }
        let w = soft * self.px;
        let bound = blob.bound() + w;
        let cs = blob.cs();
        for i in 0..self.v.len() {
            let (x, y) = (self.x[i], self.y[i]);
            if (x - blob.cx).abs() > bound || (y - blob.cy).abs() > bound {
                continue;
            }
            let t = (0.5 - blob.sdf(x, y, cs) / w).clamp(0.0, 1.0);
            if t > 0.0 {
                let alpha = t * t * (3.0 - 2.0 * t);
                let old = self.v[i];
                self.v[i] = old + alpha * (value(x, y, old) - old);
            }
        }
    }

    fn paint(&mut self, blob: &Blob, value: f32) {
        self.paint_fn(blob, 1.0, |_, _, _| value);
    }

    /// Applies `f(x, y, old)` to every pixel.
    fn map(&mut self, f: impl Fn(f32, f32, f32) -> f32) {
        for i in 0..self.v.len() {
            self.v[i] = f(self.x[i], self.y[i], self.v[i]);
        }
    }
}

// ---------------------------------------------------------------------------------------
// CT: axial chest / upper abdomen.

#[derive(Debug, Clone)]
struct Ct {
    frame: Frame,
    body: Blob,
    body_drift: Drift,
    fat: f32,
    lungs: [Blob; 2],
    lung_drift: [Drift; 2],
    lung_end: f32,
    heart: Blob,
    heart_z: (f32, f32),
    heart_drift: Drift,
    aorta: Blob,
    aorta_hu: f32,
    spine: (f32, f32, f32),
    disc: (f32, f32),
    ribs: Vec<(f32, f32, f32, f32)>,
    liver: Blob,
    liver_z: f32,
    liver_hu: f32,
    liver_drift: Drift,
    stomach: Blob,
    stomach_z: f32,
    stomach_drift: Drift,
    kidneys: [Blob; 2],
    kidney_z: f32,
    blobs: Vec<(Blob, f32, f32, f32, Drift)>,
    texture: Lattice,
}

impl Ct {
    fn sample(rng: &mut ChaCha8Rng) -> Ct {
        let frame = Frame::sample(rng, 0.12, 0.06, (0.88, 1.04));
        let (ba, bb) = (uni(rng, 0.76, 0.94), uni(rng, 0.52, 0.68));
        let mut body = Blob::new(0.0, 0.0, ba, bb, 0.0, wobbles(rng, &[2, 3, 4], 0.03));
        let back = bb * uni(rng, 0.80, 0.93);
        body.clip_y = back;
        let body_drift = Drift::sample(rng, 0.02);
        let fat = uni(rng, 0.025, 0.10);
        let lung_a = ba * uni(rng, 0.24, 0.33);
        let lung_b = bb * uni(rng, 0.55, 0.75);
        let lung_cy = bb * uni(rng, -0.15, 0.05);
        let lungs = [-1.0f32, 1.0].map(|side| {
            Blob::new(
                side * ba * uni(rng, 0.34, 0.46),
                lung_cy + uni(rng, -0.04, 0.04),
                lung_a * uni(rng, 0.9, 1.1),
                lung_b * uni(rng, 0.9, 1.1),
                side * uni(rng, -0.1, 0.4),
                wobbles(rng, &[2, 3, 5], 0.07),
            )
        });
        let lung_drift = [Drift::sample(rng, 0.03), Drift::sample(rng, 0.03)];
        let heart = Blob::new(
            ba * uni(rng, 0.04, 0.2),
            bb * uni(rng, -0.3, -0.05),
            ba * uni(rng, 0.22, 0.32),
            bb * uni(rng, 0.36, 0.5),
            uni(rng, -0.7, -0.2),
            wobbles(rng, &[2, 3], 0.06),
        );
        let heart_z = (uni(rng, 0.25, 0.5), uni(rng, 0.3, 0.45));
        let aorta = Blob::circle(
            uni(rng, 0.03, 0.12),
            back - uni(rng, 0.28, 0.36),
            uni(rng, 0.045, 0.07),
        );
        let r_v = uni(rng, 0.08, 0.11);
        let spine = (
            uni(rng, -0.03, 0.03),
            back - r_v - uni(rng, 0.14, 0.18),
            r_v,
        );
        let disc = (uni(rng, 0.09, 0.14), uni(rng, 0.0, 1.0));
        let n_ribs = rng.random_range(5..=7);
        let mut ribs = Vec::new();
        for side in [-1.0f32, 1.0] {
            for i in 0..n_ribs {
                // Angles from the front (−π/2) round the side to the back (+π/2).
                let t = (i as f32 + uni(rng, 0.2, 0.8)) / n_ribs as f32;
                let phi = -PI / 2.0 + side * (0.35 + t * 2.2);
                ribs.push((
                    phi,
                    uni(rng, 0.0, TAU),
                    uni(rng, -0.02, 0.015),
                    uni(rng, 0.75, 1.25),
                ));
            }
        }
        let liver = Blob::new(
            -ba * uni(rng, 0.28, 0.45),
            bb * uni(rng, -0.1, 0.15),
            ba * uni(rng, 0.32, 0.48),
            bb * uni(rng, 0.5, 0.75),
            uni(rng, -0.5, 0.5),
            wobbles(rng, &[2, 3, 4], 0.07),
        );
        let liver_z = uni(rng, 0.35, 0.65);
        let stomach = Blob::new(
            ba * uni(rng, 0.3, 0.5),
            bb * uni(rng, -0.45, -0.05),
            ba * uni(rng, 0.13, 0.22),
            bb * uni(rng, 0.2, 0.35),
            uni(rng, -0.6, 0.6),
            wobbles(rng, &[2, 3], 0.1),
        );
        let stomach_z = liver_z + uni(rng, -0.05, 0.2);
        let kidney_cy = spine.1 + uni(rng, -0.08, 0.02);
        let kidneys = [-1.0f32, 1.0].map(|side| {
            Blob::new(
                side * (uni(rng, 0.24, 0.32) + r_v),
                kidney_cy,
                uni(rng, 0.06, 0.09),
                uni(rng, 0.1, 0.14),
                side * uni(rng, 0.2, 0.6),
                wobbles(rng, &[2], 0.08),
            )
        });
        let kidney_z = uni(rng, 0.7, 0.95);
        let n_blobs = rng.random_range(2..=5);
        let blobs = (0..n_blobs)
            .map(|_| {
                let r = uni(rng, 0.05, 0.13);
                let blob = Blob::new(
                    ba * uni(rng, -0.55, 0.55),
                    bb * uni(rng, -0.6, 0.3),
                    r * uni(rng, 0.7, 1.3),
                    r * uni(rng, 0.7, 1.3),
                    uni(rng, 0.0, PI),
                    wobbles(rng, &[2, 3], 0.1),
                );
                let hu = match rng.random_range(0..4) {
                    0 => uni(rng, -110.0, -70.0),
                    1 => uni(rng, 150.0, 220.0),
                    _ => uni(rng, 10.0, 70.0),
                };
                (
                    blob,
                    hu,
                    uni(rng, 0.4, 1.2),
                    uni(rng, 0.15, 0.45),
                    Drift::sample(rng, 0.04),
                )
            })
            .collect();
        Ct {
            frame,
            body,
            body_drift,
            fat,
            lungs,
            lung_drift,
            lung_end: uni(rng, 0.6, 0.9),
            heart,
            heart_z,
            heart_drift: Drift::sample(rng, 0.03),
            aorta,
            aorta_hu: uni(rng, 140.0, 240.0),
            spine,
            disc,
            ribs,
            liver,
            liver_z,
            liver_hu: uni(rng, 45.0, 75.0),
            liver_drift: Drift::sample(rng, 0.03),
            stomach,
            stomach_z,
            stomach_drift: Drift::sample(rng, 0.03),
            kidneys,
            kidney_z,
            blobs,
            texture: Lattice::sample(rng, 24, 8),
        }
    }

    fn render(&self, z: f32, size: usize, noise: &mut ChaCha8Rng) -> Vec<f32> {
        let mut cv = Canvas::new(size, &self.frame, -1000.0);
        let tex = &self.texture;
        let tz = z * 6.0;
        let soft_tissue =
            |x: f32, y: f32, hu: f32| hu + 22.0 * tex.fbm(x * 9.0 + 3.0, y * 9.0 + 7.0, tz);

        // Table under the patient.
        let table = Blob::new(0.0, self.body.clip_y + 0.16, 1.3, 0.12, 0.0, Vec::new());
        cv.paint(&table, 250.0);
        cv.paint(&table.grown(-0.025), -1000.0);

        let body_s = 1.0 + 0.04 * (TAU * 0.7 * z).sin();
        let body = self.body_drift.apply(&self.body, z, body_s);
        cv.paint_fn(&body, 1.0, |x, y, _| soft_tissue(x, y, -100.0));
        let muscle = body.grown(-self.fat);
        cv.paint_fn(&muscle, 1.5, |x, y, _| soft_tissue(x, y, 45.0));
        // Visceral fat inside the muscle wall.
        cv.paint_fn(&muscle.grown(-0.06), 2.0, |x, y, _| {
            soft_tissue(x, y, -60.0)
        });

        // Abdomen: liver, stomach, kidneys, bowel / vessels.
        let liver_s = smoothstep(self.liver_z - 0.3, self.liver_z + 0.2, z);
        if liver_s > 0.02 {
            let liver = self.liver_drift.apply(&self.liver, z, 0.3 + 0.7 * liver_s);
            cv.paint_fn(&liver, 1.5, |x, y, _| soft_tissue(x, y, self.liver_hu));
        }
        for (blob, hu, zc, zw, drift) in &self.blobs {
            let s = bump(z, *zc, *zw);
            if s > 0.05 {
                cv.paint_fn(&drift.apply(blob, z, s.sqrt()), 1.5, |x, y, _| {
                    soft_tissue(x, y, *hu)
                });
            }
        }
        let stomach_s = smoothstep(self.stomach_z - 0.25, self.stomach_z + 0.15, z);
        if stomach_s > 0.02 {
            let st = self
                .stomach_drift
                .apply(&self.stomach, z, 0.4 + 0.6 * stomach_s);
            cv.paint_fn(&st, 1.5, |x, y, _| soft_tissue(x, y, 25.0));
            // Air pocket at the front (top) of the stomach.
            let mut air = Blob::new(
                st.cx,
                st.cy - 0.55 * st.b,
                st.a * 0.6,
                st.b * 0.35,
                0.0,
                Vec::new(),
            );
            air.clip_y = st.cy - 0.45 * st.b;
            cv.paint(&air, -950.0);
        }
        let kidney_s = smoothstep(self.kidney_z - 0.2, self.kidney_z + 0.1, z);
        if kidney_s > 0.05 {
            for k in &self.kidneys {
                let k = k.at(0.0, 0.0, 0.4 + 0.6 * kidney_s);
                cv.paint_fn(&k, 1.2, |x, y, _| soft_tissue(x, y, 170.0));
            }
        }

        // Thorax: lungs with vessels, heart.
        let lung_s =
            smoothstep(-0.35, 0.2, z) * (1.0 - smoothstep(self.lung_end - 0.45, self.lung_end, z));
        if lung_s > 0.03 {
            for (lung, drift) in self.lungs.iter().zip(&self.lung_drift) {
                let mut l = drift.apply(lung, z, 0.25 + 0.75 * lung_s);
                // Lower lungs sit further back (posterior recesses).
                l.cy += 0.12 * (1.0 - lung_s) * lung.b;
                l.wob_shift = 0.8 * z;
                cv.paint_fn(&l, 1.0, |x, y, _| {
                    let v = tex.at(x * 14.0 + 11.0, y * 14.0 + 2.0, tz * 2.0);
                    -870.0 + 700.0 * smoothstep(0.3, 0.8, v)
                });
            }
        }
        let heart_s = bump(z, self.heart_z.0, self.heart_z.1);
        if heart_s > 0.05 {
            let h = self
                .heart_drift
                .apply(&self.heart, z, 0.3 + 0.7 * heart_s.sqrt());
            cv.paint_fn(&h, 1.5, |x, y, _| soft_tissue(x, y, 40.0));
            // Contrast-filled chambers.
            let ch = h.grown(-0.05).at(0.01, 0.0, 0.75);
            cv.paint_fn(&ch, 2.0, |x, y, _| soft_tissue(x, y, 120.0));
        }
        let aorta = self.aorta.at(0.0, -0.01 * (1.0 - z), 1.0 - 0.12 * z);
        cv.paint(&aorta, self.aorta_hu);

        // Spine: vertebral body (or disc), canal, posterior elements.
        let (sx, sy, r_v) = self.spine;
        let phase = (z / self.disc.0 + self.disc.1).fract();
        let disc = bump(phase, 0.5, 0.18);
        let bone = 900.0 * (1.0 - 0.8 * disc);
        let marrow = 320.0 * (1.0 - 0.7 * disc);
        cv.paint(
            &Blob::new(sx + 0.15, sy + 0.5 * r_v, 0.07, 0.025, 0.3, Vec::new()),
            600.0,
        );
        cv.paint(
            &Blob::new(sx - 0.15, sy + 0.5 * r_v, 0.07, 0.025, -0.3, Vec::new()),
            600.0,
        );
        cv.paint(
            &Blob::new(sx, sy + r_v + 0.16, 0.025, 0.065, 0.0, Vec::new()),
            700.0,
        );
        cv.paint(&Blob::circle(sx, sy + r_v + 0.055, 0.065), 700.0);
        cv.paint(&Blob::circle(sx, sy + r_v + 0.055, 0.04), 25.0);
        let vb = Blob::new(sx, sy, r_v * 1.05, r_v, 0.0, Vec::new());
        cv.paint(&vb, bone);
        cv.paint_fn(&vb.grown(-0.02), 1.0, |x, y, _| {
            marrow + 60.0 * tex.at(x * 20.0, y * 20.0, tz)
        });

        // Ribs: small bright ovals just inside the muscle wall, sliding slowly along z.
        let rib_s = (lung_s * 1.3 + 0.35).min(1.0);
        for &(phi, ph, depth, len) in &self.ribs {
            let phi = phi + 0.12 * (TAU * 0.5 * z + ph).sin();
            let (c, s) = (phi.cos(), phi.sin());
            let rx = (muscle.a - 0.035 + depth) * c + muscle.cx;
            let ry = ((muscle.b - 0.035 + depth) * s + muscle.cy).min(muscle.clip_y - 0.05);
            let rib = Blob::new(
                rx,
                ry,
                0.05 * len * rib_s,
                0.022 * rib_s,
                phi + PI / 2.0,
                Vec::new(),
            );
            cv.paint(&rib, 750.0);
        }

        // Acquisition noise.
        for v in &mut cv.v {
            let n: f32 = noise.sample(StandardNormal);
            *v += 12.0 * n;
        }
        cv.v
    }
}

// ---------------------------------------------------------------------------------------
// MR: axial T1-weighted brain.

#[derive(Debug, Clone)]
struct Mr {
    frame: Frame,
    head: Blob,
    z_wide: f32,
    taper: f32,
    scalp: f32,
    skull: f32,
    csf: f32,
    cortex: f32,
    gyri: Vec<Wobble>,
    gyri_rate: f32,
    sulci: (f32, f32, f32, f32),
    ventricles: [Blob; 2],
    vent_z: (f32, f32),
    nuclei: [Blob; 2],
    fissure: f32,
    bias: Lattice,
    bias_amp: f32,
    texture: Lattice,
    contrast: (f32, f32),
}

impl Mr {
    fn sample(rng: &mut ChaCha8Rng) -> Mr {
        let frame = Frame::sample(rng, 0.16, 0.06, (0.86, 1.04));
        let head = Blob::new(
            0.0,
            0.0,
            uni(rng, 0.62, 0.76),
            uni(rng, 0.80, 0.92),
            0.0,
            wobbles(rng, &[2, 3], 0.03),
        );
        let gyri = (0..5)
            .map(|_| Wobble {
                k: rng.random_range(6..=16) as f32,
                amp: uni(rng, 0.008, 0.025),
                phase: uni(rng, 0.0, TAU),
            })
            .collect();
        let vent_cy = uni(rng, -0.12, 0.02);
        let ventricles = [-1.0f32, 1.0].map(|side| {
            Blob::new(
                side * uni(rng, 0.05, 0.09),
                vent_cy + uni(rng, -0.02, 0.02),
                uni(rng, 0.035, 0.065),
                uni(rng, 0.17, 0.26),
                side * uni(rng, 0.05, 0.35),
                wobbles(rng, &[2, 3], 0.12),
            )
        });
        let nuclei = [-1.0f32, 1.0].map(|side| {
            Blob::new(
                side * uni(rng, 0.15, 0.21),
                vent_cy + uni(rng, 0.0, 0.12),
                uni(rng, 0.05, 0.08),
                uni(rng, 0.09, 0.14),
                side * uni(rng, -0.2, 0.3),
                wobbles(rng, &[2], 0.1),
            )
        });
        Mr {
            frame,
            head,
            z_wide: uni(rng, 0.1, 0.35),
            taper: uni(rng, 0.95, 1.25),
            scalp: uni(rng, 0.025, 0.05),
            skull: uni(rng, 0.035, 0.065),
            csf: uni(rng, 0.01, 0.025),
            cortex: uni(rng, 0.07, 0.11),
            gyri,
            gyri_rate: uni(rng, 1.5, 3.0) * sign(rng),
            sulci: (
                uni(rng, 18.0, 28.0).round(),
                uni(rng, 0.0, TAU),
                uni(rng, 0.0, TAU),
                uni(rng, 2.0, 4.0) * sign(rng),
            ),
            ventricles,
            vent_z: (uni(rng, 0.15, 0.4), uni(rng, 0.3, 0.5)),
            nuclei,
            fissure: uni(rng, -0.03, 0.03),
            bias: Lattice::sample(rng, 4, 4),
            bias_amp: uni(rng, 0.05, 0.15),
            texture: Lattice::sample(rng, 24, 8),
            contrast: (uni(rng, 0.40, 0.48), uni(rng, 0.68, 0.76)),
        }
    }

    fn render(&self, z: f32, size: usize, noise: &mut ChaCha8Rng) -> Vec<f32> {
        let mut cv = Canvas::new(size, &self.frame, 0.0);
        let tex = &self.texture;
        let tz = z * 5.0;
        let (gm, wm) = self.contrast;
        let t = ((z - self.z_wide).max(0.0) / self.taper).min(0.66);
        let hs = (1.0 - t * t).sqrt();
        let head = self.head.at(0.0, 0.04 * t, hs);

        cv.paint_fn(&head, 1.0, |x, y, _| {
            0.72 + 0.05 * tex.at(x * 10.0, y * 10.0, tz)
        });
        let skull = head.grown(-self.scalp);
        cv.paint(&skull, 0.07);
        let diploe = skull.grown(-0.4 * self.skull);
        cv.paint(&diploe, 0.3);
        cv.paint(&diploe.grown(-0.2 * self.skull), 0.07);
        let csf = skull.grown(-self.skull);
        cv.paint(&csf, 0.12);
        let brain = csf.grown(-self.csf);
        // Gray matter ribbon over white matter. The ribbon is thicker under the sulci (dark
        // CSF clefts reaching in from the surface), so white matter forms gyral fingers.
        let (n_s, ph0, ph1, rate) = self.sulci;
        let cs = brain.cs();
        let edge = cv.px;
        let reach = self.cortex * 1.2;
        let shift = self.gyri_rate * z;
        cv.paint_fn(&brain, 1.0, |x, y, _| {
            let th = (y - brain.cy).atan2(x - brain.cx);
            let pattern = (n_s * th
                + ph0
                + 0.9 * (3.0 * th + ph1).sin()
                + 0.5 * (7.0 * th - ph1).sin()
                + rate * z)
                .cos();
            let depth = -brain.sdf(x, y, cs); // distance below the surface
            let wobble: f32 = self
                .gyri
                .iter()
                .map(|w| w.amp * (w.k * th + w.phase + shift).cos())
                .sum();
            let ribbon = self.cortex * (0.8 + 0.35 * pattern) + wobble;
            let g = gm + 0.04 * tex.fbm(x * 12.0, y * 12.0, tz);
            let w = wm + 0.03 * tex.fbm(x * 12.0 + 5.0, y * 12.0, tz);
            let v = g + (w - g) * smoothstep(ribbon - edge, ribbon + edge, depth);
            let cleft =
                smoothstep(0.6, 0.92, pattern) * (1.0 - smoothstep(0.3 * reach, reach, depth));
            v + (0.14 - v) * cleft
        });
        // Deep gray nuclei and lateral ventricles.
        let vs = bump(z, self.vent_z.0, self.vent_z.1);
        if vs > 0.05 {
            for n in &self.nuclei {
                cv.paint(&n.at(0.0, 0.0, 0.5 + 0.5 * vs), 0.5 * (gm + wm) - 0.03);
            }
            for v in &self.ventricles {
                let mut v = v.at(0.0, 0.03 * (z - self.vent_z.0), 0.3 + 0.7 * vs);
                v.wob_shift = 1.5 * z;
                cv.paint(&v, 0.1);
            }
        }
        // Interhemispheric fissure.
        let fiss = Blob::new(
            self.fissure,
            brain.cy,
            0.012,
            brain.b * 0.98,
            0.0,
            Vec::new(),
        );
        let gap = if vs > 0.3 {
            Some((brain.cy - 0.3 * vs, brain.cy + 0.25 * vs))
        } else {
            None
        };
        cv.paint_fn(&fiss, 1.0, |_, y, old| match gap {
            Some((g0, g1)) if y > g0 && y < g1 => old,
            _ => 0.12,
        });

        // Bias field, then Rician noise.
        let bias = &self.bias;
        let amp = self.bias_amp;
        cv.map(|x, y, v| v * (1.0 + amp * bias.at(x * 1.2 + 2.0, y * 1.2 + 2.0, z)));
        for v in &mut cv.v {
            let (n1, n2): (f32, f32) = (noise.sample(StandardNormal), noise.sample(StandardNormal));
            let (re, im) = (*v + 0.015 * n1, 0.015 * n2);
            *v = (re * re + im * im).sqrt().clamp(0.0, 1.0);
        }
        cv.v
    }
}

// ---------------------------------------------------------------------------------------
// X-ray: chest PA projection.

#[derive(Debug, Clone)]
struct Xray {
    frame: Frame,
    width: f32,
    shoulder: f32,
    neck: f32,
    lungs: [Blob; 2],
    heart: Blob,
    spine_w: f32,
    ribs: Vec<f32>,
    rib_shape: (f32, f32, f32),
    clavicle: (f32, f32),
    breath: (f32, f32),
    texture: Lattice,
    gain: (f32, f32, f32),
    heel: (f32, f32),
    pose: Drift,
}

impl Xray {
    fn sample(rng: &mut ChaCha8Rng) -> Xray {
        let frame = Frame::sample(rng, 0.1, 0.08, (0.86, 1.05));
        let width = uni(rng, 0.74, 0.92);
        let lung_cy = uni(rng, -0.08, 0.05);
        let lungs = [-1.0f32, 1.0].map(|side| {
            Blob::new(
                side * width * uni(rng, 0.43, 0.5),
                lung_cy + uni(rng, -0.04, 0.04) - if side < 0.0 { 0.03 } else { 0.0 },
                width * uni(rng, 0.3, 0.37),
                uni(rng, 0.55, 0.7),
                side * uni(rng, -0.02, 0.14),
                wobbles(rng, &[2, 3, 4], 0.05),
            )
        });
        let heart = Blob::new(
            uni(rng, 0.05, 0.12),
            lung_cy + uni(rng, 0.34, 0.44),
            uni(rng, 0.28, 0.36),
            uni(rng, 0.21, 0.28),
            uni(rng, -0.5, -0.15),
            wobbles(rng, &[2, 3], 0.05),
        );
        let first = uni(rng, -0.66, -0.56);
        let gap = uni(rng, 0.1, 0.13);
        let ribs = (0..10)
            .map(|i| first + gap * i as f32 + uni(rng, -0.01, 0.01))
            .collect();
        Xray {
            frame,
            width,
            shoulder: uni(rng, -0.86, -0.72),
            neck: uni(rng, 0.16, 0.24),
            lungs,
            heart,
            spine_w: uni(rng, 0.045, 0.065),
            ribs,
            rib_shape: (
                uni(rng, 0.5, 0.7),
                uni(rng, 0.6, 0.9),
                uni(rng, 0.018, 0.026),
            ),
            clavicle: (uni(rng, -0.64, -0.55), uni(rng, -0.08, 0.04)),
            breath: (uni(rng, 1.0, 2.0), uni(rng, 0.0, TAU)),
            texture: Lattice::sample(rng, 24, 8),
            gain: (uni(rng, 0.8, 1.0), uni(rng, 1.1, 1.6), uni(rng, 0.88, 0.98)),
            heel: (uni(rng, -0.06, 0.06), uni(rng, -0.06, 0.06)),
            pose: Drift::sample(rng, 0.06),
        }
    }

    fn render(&self, z: f32, size: usize, noise: &mut ChaCha8Rng) -> Vec<f32> {
        // Positioning differs a little from exam to exam.
        let (dx, dy) = self.pose.at(z);
        let frame = Frame {
            tx: self.frame.tx + dx,
            ty: self.frame.ty + dy,
            rot: self.frame.rot + 0.5 * dx,
            ..self.frame
        };
        let mut cv = Canvas::new(size, &frame, 0.0);
        let tex = &self.texture;
        let tz = z * 4.0;
        // Inspiration depth in [0, 1]: deeper breath = taller lungs, lower diaphragm, ribs up.
        let breath = 0.5 + 0.5 * (TAU * self.breath.0 * z + self.breath.1).sin();
        let lungs: Vec<Blob> = self
            .lungs
            .iter()
            .map(|l| {
                let mut l = l.at(0.0, 0.03 * breath, 1.0);
                l.b *= 0.9 + 0.14 * breath;
                l.wob_shift = 0.5 * z;
                l
            })
            .collect();
        let heart = self.heart.at(0.0, 0.02 * breath, 1.0 - 0.06 * breath);
        let (w, sh, neck) = (self.width, self.shoulder, self.neck);
        let (ra, rb, rt) = self.rib_shape;
        let (cl_y, cl_slope) = self.clavicle;
        let lung_cs: Vec<(f32, f32)> = lungs.iter().map(|l| l.cs()).collect();
        let heart_cs = heart.cs();
        let (g_soft, g_bone, g_out) = self.gain;
        let dome = |b: &Blob, cs: (f32, f32), x: f32, y: f32| {
            let (r, _) = b.radius(x, y, cs);
            let t = (1.0 - r * r).max(0.0);
            t.sqrt() * smoothstep(0.0, 0.04, 1.0 - r)
        };
        cv.map(|x, y, _| {
            let profile = |x: f32, hw: f32| (1.0 - (x / hw).powi(2)).max(0.0).sqrt();
            // Soft tissue thickness: torso below the shoulders, neck above.
            let top = sh + 0.3 * (x.abs() / w).powi(2);
            let torso = profile(x, w) * smoothstep(top - 0.05, top + 0.05, y);
            let neck_t = 0.8 * profile(x, neck) * smoothstep(-1.3, sh, y);
            let mut soft = torso.max(neck_t);
            let mut lung_air = 0.0f32;
            for (l, &cs) in lungs.iter().zip(&lung_cs) {
                lung_air = lung_air.max(dome(l, cs, x, y));
            }
            let heart_t = dome(&heart, heart_cs, x, y);
            lung_air *= 1.0 - smoothstep(0.0, 0.25, heart_t);
            let mediastinum = profile(x - 0.02, 0.13) * smoothstep(sh - 0.1, sh + 0.2, y);
            let markings = 0.08 * tex.fbm(x * 10.0, y * 10.0, tz) * lung_air;
            soft += 0.1 * heart_t + 0.25 * mediastinum - 0.65 * lung_air.powf(0.4) + markings;
            // Bone: spine, ribs, clavicles.
            let vert = 0.85 + 0.15 * (TAU * y / 0.11).cos();
            let mut bone = 0.22 * profile(x, self.spine_w) * vert * smoothstep(-1.2, sh, y);
            let u = x.abs();
            if u > 0.04 && torso > 0.0 {
                let lateral = smoothstep(0.04, 0.12, u)
                    * (1.0 - smoothstep(w * 0.85, w * 0.98, u))
                    * (0.35 + 0.65 * smoothstep(0.0, 0.2, lung_air));
                for &y0 in &self.ribs {
                    let yr = y0 - 0.03 * breath - ra * u + rb * u * u;
                    let d = (y - yr) / rt;
                    bone += 0.16 * (-d * d).exp() * lateral;
                }
                let yc = cl_y + cl_slope * u - 0.12 * (u - 0.1).max(0.0);
                let dc = (y - yc) / 0.028;
                bone += 0.3
                    * (-dc * dc).exp()
                    * smoothstep(0.05, 0.12, u)
                    * (1.0 - smoothstep(0.5, 0.62, u));
            }
            let att = g_soft * soft.max(0.0) + g_bone * bone;
            g_out * (1.0 - (-att).exp())
        });
        let (hx, hy) = self.heel;
        cv.map(|x, y, v| v * (1.0 + hx * x + hy * y));
        for v in &mut cv.v {
            let n: f32 = noise.sample(StandardNormal);
            *v = (*v + 0.012 * n).clamp(0.0, 1.0);
        }
        cv.v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pixel distance on Gu et al.'s scale: `‖x − y‖ / sqrt(HW)`.
    fn dist(a: &[f32], b: &[f32]) -> f32 {
        let s: f32 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
        (s / a.len() as f32).sqrt()
    }

    #[test]
    fn kind_names_round_trip() {
        for k in PhantomKind::ALL {
            assert_eq!(k.to_string().parse::<PhantomKind>().unwrap(), k);
        }
        assert!("pet".parse::<PhantomKind>().is_err());
    }

    #[test]
    fn deterministic_per_seed() {
        for kind in PhantomKind::ALL {
            let p = PatientParams::sample(kind, 42);
            let q = PatientParams::sample(kind, 42);
            let a = render_u8(&p, 0.4, 64, 7);
            let b = render_u8(&q, 0.4, 64, 7);
            assert_eq!(a, b, "{kind}");
            let a16 = render_u16(&p, 0.4, 48, 7);
            assert_eq!(a16, render_u16(&q, 0.4, 48, 7), "{kind}");
            assert_eq!(a16.len(), 48 * 48);
            // The noise seed changes the bits but not the anatomy.
            let c = render(&p, 0.4, 64, 8);
            let d = render(&p, 0.4, 64, 7);
            assert_ne!(c, d, "{kind}");
            assert!(dist(&c, &d) < 0.04, "{kind}: {}", dist(&c, &d));
        }
    }

    #[test]
    fn values_in_unit_range_at_any_size() {
        for kind in PhantomKind::ALL {
            let p = PatientParams::sample(kind, 3);
            for size in [1, 7, 32, 64, 100] {
                for z in [-0.2, 0.0, 0.5, 1.0, 1.3] {
                    let img = render(&p, z, size, 1);
                    assert_eq!(img.len(), (size * size) as usize);
                    assert!(
                        img.iter().all(|v| (0.0..=1.0).contains(v)),
                        "{kind} {size} {z}"
                    );
                }
            }
        }
    }

    #[test]
    fn ct_u16_is_hu_plus_1024() {
        let p = PatientParams::sample(PhantomKind::Ct, 5);
        let raw = render_u16(&p, 0.3, 64, 1);
        // Corners are air (−1000 HU ± noise), bone reaches well above 1500.
        assert!((raw[0] as i32 - 24).abs() < 60, "corner {}", raw[0]);
        assert!(raw.iter().any(|&v| v > 1500));
        let mr = render_u16(&PatientParams::sample(PhantomKind::Mr, 5), 0.3, 64, 1);
        assert!(mr.iter().all(|&v| v <= 4095));
    }

    /// Neighbouring slices of a patient are closer than any two patients, but not identical.
    #[test]
    fn neighbouring_slices_are_hard_negatives() {
        for kind in PhantomKind::ALL {
            let patients: Vec<_> = (0..12)
                .map(|i| PatientParams::sample(kind, 1000 + i))
                .collect();
            let mut max_neighbour = 0.0f32;
            let mut min_other = f32::INFINITY;
            for (i, p) in patients.iter().enumerate() {
                for z in [0.1f32, 0.5, 0.9] {
                    let a = render(p, z, 64, 2 * i as u64);
                    // Same noise: only the anatomy differs.
                    let same_noise = dist(&a, &render(p, z + 0.02, 64, 2 * i as u64));
                    assert!(
                        same_noise > 0.001,
                        "{kind}: neighbouring slices identical ({same_noise})"
                    );
                    let b = render(p, z + 0.02, 64, 2 * i as u64 + 1);
                    let d = dist(&a, &b);
                    max_neighbour = max_neighbour.max(d);
                    for (j, q) in patients.iter().enumerate().skip(i + 1) {
                        let c = render(q, z, 64, 99 + j as u64);
                        min_other = min_other.min(dist(&a, &c));
                    }
                }
            }
            assert!(
                max_neighbour < min_other,
                "{kind}: neighbour {max_neighbour} vs other {min_other}"
            );
        }
    }
}
