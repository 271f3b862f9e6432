//! Views of training images: the reference side of multi-view copy detection.
//!
//! A crop-resized copy of a training image keeps only part of it, enlarged. Its descriptor is
//! far from the whole image's, but close to that of the matching crop of the image. Indexing
//! each training image together with [`CROP_VIEWS`] crops of it (two crop sides on a 5 × 5
//! grid of positions) and its mirror image, and taking the minimum distance over them
//! (`memscan_index::ViewIndex`), finds such copies, and mirrored copies exactly. The holdout
//! images that calibrate the copy threshold are compared with the same views, so the
//! false-positive rate stays the one chosen.
//!
//! Measured with the default `cnn` (axes canonicalization; `examples/copy_recall.rs`, one
//! copy per training image at severity 0.5, α = 0.01, seed 0), without → with views:
//! crop-resized copies 0.108 → 0.951 (Fashion-MNIST) and 0.827 → 1.000 (CT phantoms), mirrored
//! 0.539 → 1.000 and 0.887 → 1.000, novel images flagged 0.005 → 0.005 and 0.005 → 0.015;
//! see reports/reference/embedders-cnn.md (Follow-up 5).

use crate::{embed_generated, Embedder, Error};
use memscan_io::{Image, Reporter};
use ndarray::Array2;
use std::borrow::Cow;

/// Sides of the crops, as fractions of the image's height and width.
pub const CROP_SIDES: [f32; 2] = [0.85, 0.75];
/// Crop positions per side and axis: a `GRID × GRID` grid from one corner to the other.
pub const CROP_GRID: usize = 5;
/// Crop views per training image.
pub const CROP_VIEWS: usize = CROP_SIDES.len() * CROP_GRID * CROP_GRID;
/// Views per training image (not counting the image itself): the crops, then the mirror
/// image (a horizontally flipped copy then matches exactly, whatever the network learned).
pub const VIEWS: usize = CROP_VIEWS + 1;

/// View `v < VIEWS` of `img`: [`crop_view`] for `v < CROP_VIEWS`, else the horizontal mirror
/// (id `img.id#mirror`).
pub fn view(img: &Image, v: usize) -> Image {
    if v < CROP_VIEWS {
        return crop_view(img, v);
    }
    assert_eq!(v, CROP_VIEWS, "view {v} of {VIEWS}");
    let (h, w) = (img.height, img.width);
    let mut pixels = img.pixels.clone();
    for row in pixels.chunks_mut(w.max(1)).take(img.channels * h) {
        row.reverse();
    }
    Image {
        id: view_id(&img.id, v),
        pixels,
        ..img.clone()
    }
}

/// The id of view `v` of the image with id `id`: `id#crop{v}` or `id#mirror`.
pub fn view_id(id: &str, v: usize) -> String {
    if v < CROP_VIEWS {
        format!("{id}#crop{v}")
    } else {
        format!("{id}#mirror")
    }
}

/// The crop of view `v < CROP_VIEWS`: `(side, fx, fy)`, with the crop's top-left corner at
/// `(fx·(1 − side)·width, fy·(1 − side)·height)`.
pub fn crop_view_params(v: usize) -> (f32, f32, f32) {
    assert!(v < CROP_VIEWS, "crop view {v} of {CROP_VIEWS}");
    let side = CROP_SIDES[v / (CROP_GRID * CROP_GRID)];
    let p = v % (CROP_GRID * CROP_GRID);
    let f = |i: usize| i as f32 / (CROP_GRID - 1) as f32;
    (side, f(p % CROP_GRID), f(p / CROP_GRID))
}

/// View `v` of `img` ([`crop_view_params`]): the crop resized back to the image's size with
/// bilinear sampling (edges replicated), every channel alike. Its id is `img.id#crop{v}` and
/// its hash is the source's (a view is a function of its source).
pub fn crop_view(img: &Image, v: usize) -> Image {
    let (side, fx, fy) = crop_view_params(v);
    let mut out = crop_resized(img, side, fx, fy);
    out.id = view_id(&img.id, v);
    out
}

/// The `side`-fraction crop of `img` at relative position (`fx`, `fy`) ∈ [0, 1]² (top-left
/// corner at `(fx·(1 − side)·width, fy·(1 − side)·height)`), resized back to the image's size
/// with bilinear sampling (edges replicated), every channel alike; id and hash are the
/// source's.
pub fn crop_resized(img: &Image, side: f32, fx: f32, fy: f32) -> Image {
    let (c, h, w) = (img.channels, img.height, img.width);
    let (ox, oy) = (fx * (1.0 - side) * w as f32, fy * (1.0 - side) * h as f32);
    let mut pixels = Vec::with_capacity(c * h * w);
    for ch in 0..c {
        let plane = &img.pixels[ch * h * w..(ch + 1) * h * w];
        let at = |x: isize, y: isize| {
            plane[y.clamp(0, h as isize - 1) as usize * w + x.clamp(0, w as isize - 1) as usize]
        };
        for j in 0..h {
            let y = oy + (j as f32 + 0.5) * side - 0.5;
            let (y0, ty) = (y.floor(), y - y.floor());
            for i in 0..w {
                let x = ox + (i as f32 + 0.5) * side - 0.5;
                let (x0, tx) = (x.floor(), x - x.floor());
                let (x0, y0) = (x0 as isize, y0 as isize);
                let top = at(x0, y0) * (1.0 - tx) + at(x0 + 1, y0) * tx;
                let bottom = at(x0, y0 + 1) * (1.0 - tx) + at(x0 + 1, y0 + 1) * tx;
                pixels.push(top * (1.0 - ty) + bottom * ty);
            }
        }
    }
    Image {
        id: img.id.clone(),
        hash: img.hash.clone(),
        channels: c,
        height: h,
        width: w,
        pixels,
    }
}

/// The embeddings of the [`VIEWS`] views of every image, view-major: row `v·n + i` is
/// [`view`]`(&images[i], v)`. The views are made batch by batch, so memory holds the output
/// and the batches in flight, never all views at once.
pub fn embed_views(
    embedder: &dyn Embedder,
    images: &[Image],
    stage: &str,
    reporter: &dyn Reporter,
) -> Result<Array2<f32>, Error> {
    let n = images.len();
    embed_generated(
        embedder,
        VIEWS * n,
        &|p| Cow::Owned(view(&images[p % n], p / n)),
        stage,
        reporter,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(c: usize, h: usize, w: usize) -> Image {
        Image {
            id: "a.png".into(),
            hash: "h".into(),
            channels: c,
            height: h,
            width: w,
            pixels: (0..c * h * w)
                .map(|p| {
                    let (ch, y, x) = (p / (h * w), (p / w) % h, p % w);
                    (x as f32 + 2.0 * y as f32) / (w + 2 * h) as f32 + 0.1 * ch as f32
                })
                .collect(),
        }
    }

    #[test]
    fn the_last_view_is_the_mirror_image() {
        let img = ramp(2, 3, 4);
        let m = view(&img, CROP_VIEWS);
        assert_eq!(m.id, "a.png#mirror");
        assert_eq!(
            (m.channels, m.height, m.width, &m.hash),
            (2, 3, 4, &img.hash)
        );
        for ch in 0..2 {
            for y in 0..3 {
                for x in 0..4 {
                    let at = |i: &Image, x: usize| i.pixels[ch * 12 + y * 4 + x];
                    assert_eq!(at(&m, x), at(&img, 3 - x));
                }
            }
        }
        assert_eq!(view(&img, 3).id, "a.png#crop3");
    }

    #[test]
    fn views_cover_both_sides_and_the_corners() {
        assert_eq!(CROP_VIEWS, 50);
        assert_eq!(crop_view_params(0), (0.85, 0.0, 0.0));
        assert_eq!(crop_view_params(24), (0.85, 1.0, 1.0));
        assert_eq!(crop_view_params(25), (0.75, 0.0, 0.0));
        let (s, fx, fy) = crop_view_params(CROP_VIEWS - 1);
        assert_eq!((s, fx, fy), (0.75, 1.0, 1.0));
        let (_, fx, fy) = crop_view_params(7);
        assert_eq!((fx, fy), (0.5, 0.25));
    }

    #[test]
    fn a_crop_view_samples_the_crop_of_a_linear_image_exactly() {
        // On a linear ramp, bilinear sampling inside the image is exact: output pixel (i, j)
        // of view v equals the ramp at the crop's source coordinates.
        let (h, w) = (20, 30);
        let img = ramp(3, h, w);
        for v in [0, 7, 25, 49] {
            let out = crop_view(&img, v);
            assert_eq!((out.channels, out.height, out.width), (3, h, w));
            assert_eq!(out.id, format!("a.png#crop{v}"));
            let (side, fx, fy) = crop_view_params(v);
            let (ox, oy) = (fx * (1.0 - side) * w as f32, fy * (1.0 - side) * h as f32);
            for ch in 0..3 {
                for j in 0..h {
                    for i in 0..w {
                        let x = (ox + (i as f32 + 0.5) * side - 0.5).clamp(0.0, (w - 1) as f32);
                        let y = (oy + (j as f32 + 0.5) * side - 0.5).clamp(0.0, (h - 1) as f32);
                        let want = (x + 2.0 * y) / (w + 2 * h) as f32 + 0.1 * ch as f32;
                        let got = out.pixels[ch * h * w + j * w + i];
                        assert!(
                            (got - want).abs() < 1e-5,
                            "v{v} c{ch} ({i},{j}): {got} {want}"
                        );
                    }
                }
            }
        }
        // The top-left view keeps the top-left pixel's neighbourhood; the bottom-right view
        // reaches the far corner.
        let first = crop_view(&img, 0);
        let last = crop_view(&img, 24);
        assert!(first.pixels[0] < last.pixels[0]);
        assert!(last.pixels[h * w - 1] > first.pixels[h * w - 1]);
    }

    #[test]
    fn view_embeddings_are_view_major_and_match_one_by_one() {
        let pe = crate::PixelEmbedder::new(1, 8).unwrap();
        let imgs: Vec<Image> = (0..3)
            .map(|k| {
                let mut r = ramp(1, 8, 8);
                r.pixels
                    .iter_mut()
                    .for_each(|p| *p = (*p + 0.2 * k as f32).min(1.0));
                r
            })
            .collect();
        let e = embed_views(&pe, &imgs, "views", &memscan_io::NoReporter).unwrap();
        assert_eq!(e.dim(), (VIEWS * 3, 64));
        for (v, i) in [(0, 0), (0, 2), (7, 1), (49, 2), (50, 1)] {
            let one =
                crate::embed_all(&pe, &[view(&imgs[i], v)], "", &memscan_io::NoReporter).unwrap();
            assert_eq!(e.row(v * 3 + i), one.row(0), "view {v} of image {i}");
        }
    }
}
