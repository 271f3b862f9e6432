//! The gallery step: thumbnails and difference images for `report.html`.
//!
//! Works on the images as compared (after `memscan-io` resized them and converted channels;
//! CHW `f32` in `[0, 1]`). Thumbnails are at most [`THUMBNAIL_MAX`] px on the longer side
//! (downsized with a triangle filter, never enlarged) and PNG-encoded. The difference image of
//! a pair is `min(1, DIFF_GAIN · |synthetic − train|)` per pixel and channel, computed at full
//! resolution and then downsized like the thumbnails.
//!
//! With `no_images` no pixel of a real image (training or holdout) leaves this module: the
//! gallery keeps the training image's id, the numbers and the thumbnails of synthetic images
//! that are not copies. A synthetic image that reproduces a training image (a pixel-exact
//! duplicate, or flagged by the calibrated threshold or the ratio test) shows that training
//! image, so its thumbnail is withheld too.

use crate::error::Error;
use image::imageops::FilterType;
use image::{DynamicImage, GrayImage, ImageEncoder, RgbImage};
use memscan_io::{Image, ImageSet};
use memscan_metrics::copies::TrainCopied;
use memscan_report::{CopiedThumbs, GalleryPair, SyntheticRow, Thumbnail, Visuals};

/// Closest synthetic/train pairs shown in the gallery.
pub const GALLERY_SIZE: usize = 24;
/// Longest side of a thumbnail, in pixels.
pub const THUMBNAIL_MAX: u32 = 96;
/// Amplification of the absolute difference image.
pub const DIFF_GAIN: f32 = 8.0;

fn to_u8(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// Encodes CHW values in `[0, 1]` as a downsized PNG.
fn encode(id: &str, channels: usize, h: usize, w: usize, px: &[f32]) -> Result<Thumbnail, Error> {
    let err = |source| Error::Thumbnail {
        id: id.to_string(),
        source,
    };
    let plane = h * w;
    let (wu, hu) = (w as u32, h as u32);
    let img = if channels >= 3 {
        let mut buf = Vec::with_capacity(3 * plane);
        for i in 0..plane {
            for c in 0..3 {
                buf.push(to_u8(px[c * plane + i]));
            }
        }
        DynamicImage::ImageRgb8(RgbImage::from_raw(wu, hu, buf).expect("3·h·w bytes"))
    } else {
        let buf = px[..plane].iter().map(|&v| to_u8(v)).collect();
        DynamicImage::ImageLuma8(GrayImage::from_raw(wu, hu, buf).expect("h·w bytes"))
    };
    let img = if wu.max(hu) > THUMBNAIL_MAX {
        img.resize(THUMBNAIL_MAX, THUMBNAIL_MAX, FilterType::Triangle)
    } else {
        img
    };
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(
            img.as_bytes(),
            img.width(),
            img.height(),
            img.color().into(),
        )
        .map_err(err)?;
    Ok(Thumbnail {
        width: img.width(),
        height: img.height(),
        png,
    })
}

/// A thumbnail of one image.
pub fn thumbnail(img: &Image) -> Result<Thumbnail, Error> {
    encode(&img.id, img.channels, img.height, img.width, &img.pixels)
}

/// The amplified absolute difference of two images of the same shape; `None` if the shapes
/// differ.
pub fn difference(a: &Image, b: &Image) -> Result<Option<Thumbnail>, Error> {
    if (a.channels, a.height, a.width) != (b.channels, b.height, b.width) {
        return Ok(None);
    }
    let d: Vec<f32> = a
        .pixels
        .iter()
        .zip(&b.pixels)
        .map(|(x, y)| (DIFF_GAIN * (x - y).abs()).min(1.0))
        .collect();
    let id = format!("|{} − {}|", a.id, b.id);
    encode(&id, a.channels, a.height, a.width, &d).map(Some)
}

/// Whether a synthetic image is (close to) a copy of its nearest training image.
fn reproduces_training(r: &SyntheticRow) -> bool {
    r.distance == 0.0 || r.copy == Some(true) || r.ratio_copy == Some(true)
}

/// What the gallery step needs from the pipeline.
pub struct GalleryInputs<'a> {
    pub train: &'a ImageSet,
    pub synthetic: &'a ImageSet,
    /// Index of each synthetic image's nearest training image.
    pub nn1: &'a [usize],
    /// One row per synthetic image, in input order.
    pub rows: &'a [SyntheticRow],
    pub train_copied: Option<&'a TrainCopied>,
    pub holdout_distance: Option<Vec<f64>>,
    pub holdout_cosine: Option<Vec<f64>>,
    pub no_images: bool,
}

/// Builds the report's [`Visuals`]: the [`GALLERY_SIZE`] synthetic rows with the smallest
/// (d1, index), and thumbnails for the most-copied training images.
pub fn build(g: GalleryInputs) -> Result<Visuals, Error> {
    let real = !g.no_images;
    let mut order: Vec<usize> = (0..g.rows.len()).collect();
    order.sort_by(|&a, &b| {
        g.rows[a]
            .distance
            .total_cmp(&g.rows[b].distance)
            .then(a.cmp(&b))
    });
    let mut gallery = Vec::new();
    for &i in order.iter().take(GALLERY_SIZE) {
        let r = &g.rows[i];
        let s = &g.synthetic.images[i];
        let t = &g.train.images[g.nn1[i]];
        gallery.push(GalleryPair {
            index: i,
            synthetic: r.synthetic.clone(),
            train: r.train.clone(),
            distance: r.distance,
            cosine: r.cosine,
            ratio: r.ratio,
            copy: r.copy,
            synthetic_thumb: if real || !reproduces_training(r) {
                Some(thumbnail(s)?)
            } else {
                None
            },
            train_thumb: if real { Some(thumbnail(t)?) } else { None },
            diff_thumb: if real { difference(s, t)? } else { None },
        });
    }
    let mut copied = Vec::new();
    for c in g.train_copied.map_or(&[][..], |t| &t.top) {
        let t = &g.train.images[c.train];
        copied.push(CopiedThumbs {
            train: t.id.clone(),
            train_thumb: if real { Some(thumbnail(t)?) } else { None },
            // The closest copy of a copied training image is flagged by definition.
            synthetic_thumb: if real {
                Some(thumbnail(&g.synthetic.images[c.best_synthetic])?)
            } else {
                None
            },
        });
    }
    Ok(Visuals {
        real_images: real,
        thumbnail_max: THUMBNAIL_MAX,
        diff_gain: DIFF_GAIN,
        gallery,
        copied,
        holdout_distance: g.holdout_distance,
        holdout_cosine: g.holdout_cosine,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(id: &str, channels: usize, size: usize, f: impl Fn(usize) -> f32) -> Image {
        Image {
            id: id.into(),
            hash: String::new(),
            channels,
            height: size,
            width: size,
            pixels: (0..channels * size * size).map(f).collect(),
        }
    }

    fn decode(t: &Thumbnail) -> DynamicImage {
        image::load_from_memory_with_format(&t.png, image::ImageFormat::Png).unwrap()
    }

    #[test]
    fn thumbnails_are_downsized_pngs_of_the_right_kind() {
        let small = thumbnail(&image("a", 1, 64, |i| (i % 7) as f32 / 6.0)).unwrap();
        assert_eq!((small.width, small.height), (64, 64));
        let d = decode(&small);
        assert_eq!(d.color(), image::ColorType::L8);
        assert_eq!(d.to_luma8().get_pixel(6, 0).0, [255]);
        let big = thumbnail(&image("b", 3, 200, |i| (i % 3) as f32 / 2.0)).unwrap();
        assert_eq!((big.width, big.height), (96, 96));
        assert_eq!(decode(&big).color(), image::ColorType::Rgb8);
    }

    #[test]
    fn difference_is_amplified_and_clipped() {
        let a = image("a", 1, 4, |_| 0.5);
        let b = image("b", 1, 4, |i| if i == 0 { 0.5 + 1.0 / 32.0 } else { 0.0 });
        let d = decode(&difference(&a, &b).unwrap().unwrap()).to_luma8();
        // 8 · 1/32 = 0.25 → 64; 8 · 0.5 = 4 → clipped to 255.
        assert_eq!(d.get_pixel(0, 0).0, [64]);
        assert_eq!(d.get_pixel(1, 0).0, [255]);
        let c = image("c", 1, 5, |_| 0.0);
        assert!(difference(&a, &c).unwrap().is_none(), "shapes differ");
    }
}
