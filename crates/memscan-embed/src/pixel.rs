//! The pixel-space baseline embedder.
//!
//! The embedding of an image is its pixel vector (values in `[0, 1]`, planar CHW) divided by
//! `sqrt(C·H·W)`, so that the Euclidean distance between two embeddings is exactly the
//! per-pixel RMS difference `‖x − y‖₂ / sqrt(C·H·W)` that Gu et al. (2023, "On memorization
//! in diffusion models", sail-sg/DiffMemorize) use. Distances lie in `[0, 1]`. Rows are not
//! L2-normalized: a blank image is the zero vector and has no cosine with anything.

use crate::{error::Shape, Embedder, EmbedderInfo, Error};
use memscan_io::Image;
use ndarray::Array2;

/// Pixel-space embedder for images of one fixed shape.
#[derive(Debug, Clone)]
pub struct PixelEmbedder {
    shape: Shape,
}

impl PixelEmbedder {
    /// An embedder for `channels × size × size` images.
    pub fn new(channels: usize, size: usize) -> Result<Self, Error> {
        if channels == 0 || size == 0 {
            return Err(Error::Config(format!(
                "pixel embedder needs a non-empty image shape, got {channels}×{size}×{size}"
            )));
        }
        Ok(PixelEmbedder {
            shape: Shape {
                channels,
                height: size,
                width: size,
            },
        })
    }
}

impl Embedder for PixelEmbedder {
    /// The rows are the decoded pixels: reading them back is no cheaper than recomputing.
    fn cache_embeddings(&self) -> bool {
        false
    }

    fn info(&self) -> EmbedderInfo {
        EmbedderInfo {
            name: "pixel".into(),
            dim: self.dim(),
            normalized: false,
            distance: "RMS pixel difference ‖x−y‖₂/sqrt(C·H·W), pixel values in [0,1] \
                       (Gu et al. 2023)"
                .into(),
            params: serde_json::json!({
                "channels": self.shape.channels,
                "height": self.shape.height,
                "width": self.shape.width,
            }),
        }
    }

    fn dim(&self) -> usize {
        self.shape.channels * self.shape.height * self.shape.width
    }

    fn batch_size(&self) -> usize {
        256
    }

    fn embed_batch(&self, images: &[&Image]) -> Result<Array2<f32>, Error> {
        let dim = self.dim();
        let scale = 1.0 / (dim as f64).sqrt();
        let mut out = Array2::<f32>::zeros((images.len(), dim));
        for (mut row, img) in out.rows_mut().into_iter().zip(images) {
            let got = Shape {
                channels: img.channels,
                height: img.height,
                width: img.width,
            };
            if got != self.shape || img.pixels.len() != dim {
                return Err(Error::InputShape {
                    id: img.id.clone(),
                    expected: self.shape,
                    got,
                });
            }
            for (o, &p) in row.iter_mut().zip(&img.pixels) {
                *o = (f64::from(p) * scale) as f32;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed_all;
    use memscan_io::NoReporter;

    fn image(id: &str, value: f32, size: usize) -> Image {
        Image {
            id: id.into(),
            hash: String::new(),
            channels: 1,
            height: size,
            width: size,
            pixels: vec![value; size * size],
        }
    }

    #[test]
    fn distance_is_rms_pixel_difference() {
        // Two constant 8×8 images at 0.2 and 0.7: every pixel differs by 0.5, so the
        // Gu et al. distance ‖x−y‖/sqrt(64) is exactly 0.5.
        let e = PixelEmbedder::new(1, 8).unwrap();
        let imgs = [image("a", 0.2, 8), image("b", 0.7, 8)];
        let m = embed_all(&e, &imgs, "test", &NoReporter).unwrap();
        let d: f64 = m
            .row(0)
            .iter()
            .zip(m.row(1))
            .map(|(a, b)| f64::from(a - b).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!((d - 0.5).abs() < 1e-6, "{d}");
    }

    #[test]
    fn wrong_shape_names_the_image() {
        let e = PixelEmbedder::new(1, 8).unwrap();
        let err = embed_all(&e, &[image("x/odd.png", 0.1, 4)], "t", &NoReporter).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("x/odd.png") && msg.contains("1×4×4"), "{msg}");
    }

    #[test]
    fn rows_keep_input_order_across_batches() {
        let e = PixelEmbedder::new(1, 2).unwrap();
        let imgs: Vec<Image> = (0..600)
            .map(|i| image(&i.to_string(), (i % 7) as f32 / 7.0, 2))
            .collect();
        let m = embed_all(&e, &imgs, "t", &NoReporter).unwrap();
        for (i, row) in m.rows().into_iter().enumerate() {
            let want = ((i % 7) as f32 / 7.0) * 0.5;
            assert!((row[0] - want).abs() < 1e-6);
        }
    }
}
