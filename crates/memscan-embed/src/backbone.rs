//! Standard pretrained backbones from a user's safetensors file (`--embedder
//! safetensors:PATH --arch resnet18|resnet50|dinov2-s`), and the image preprocessing the
//! pretrained embedders share.
//!
//! The architectures are candle-transformers' (`models::resnet`, `models::dinov2`), so the
//! tensor names are the torchvision / torch.hub ones:
//!
//! | arch | names | embedding |
//! |---|---|---|
//! | `resnet18` | torchvision `resnet18` state dict (`conv1`, `bn1`, `layer1.0.conv1`, …; `fc` is ignored) | 512-d global average pool |
//! | `resnet50` | torchvision `resnet50` | 2048-d global average pool |
//! | `dinov2-s` | torch.hub `dinov2_vits14` (`patch_embed.proj`, `pos_embed` for 518×518, `blocks.N.…`, `norm`) | 384-d mean of the final-normed patch tokens |
//!
//! Inputs are resized to 224×224 (bilinear, half-pixel centres), gray repeated to RGB, and
//! normalized with the ImageNet mean and standard deviation. Every embedding is L2-normalized.
//! A missing tensor or one of the wrong shape is an error naming the file and the tensor.
//! DINOv2's linear classifier (`head`) is not used; when the file has none, zeros stand in for
//! it so that candle-transformers' constructor is satisfied. candle-transformers resamples
//! DINOv2's 37×37 position embeddings to the 16×16 patch grid of a 224×224 input with nearest
//! neighbours (the reference implementation uses bicubic interpolation), so DINOv2 features
//! are close to, not identical with, PyTorch's; and it runs DINOv2 one image at a time.

use crate::efficientnet::{network, to_array};
use crate::{l2_normalize, Embedder, EmbedderInfo, Error};
use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::VarBuilder;
use candle_transformers::models::{dinov2, resnet};
use memscan_io::Image;
use ndarray::Array2;
use std::path::{Path, PathBuf};

/// A standard backbone architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arch {
    Resnet18,
    Resnet50,
    Dinov2S,
}

impl Arch {
    /// All architectures, by command-line name.
    pub const ALL: [Arch; 3] = [Arch::Resnet18, Arch::Resnet50, Arch::Dinov2S];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Resnet18 => "resnet18",
            Arch::Resnet50 => "resnet50",
            Arch::Dinov2S => "dinov2-s",
        }
    }

    /// Embedding dimension.
    pub fn dim(self) -> usize {
        match self {
            Arch::Resnet18 => 512,
            Arch::Resnet50 => 2048,
            Arch::Dinov2S => 384,
        }
    }
}

impl std::str::FromStr for Arch {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Arch::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| {
                Error::Config(format!(
                    "unknown architecture {s:?} (known: resnet18, resnet50, dinov2-s)"
                ))
            })
    }
}

/// Side length of the backbones' input.
const INPUT: usize = 224;
const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

enum Net {
    Resnet(candle_nn::Func<'static>),
    Dino(dinov2::DinoVisionTransformer),
}

/// A pretrained backbone loaded from safetensors.
pub struct Backbone {
    arch: Arch,
    net: Net,
    weights: PathBuf,
    weights_sha256: String,
    device: Device,
}

impl std::fmt::Debug for Backbone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backbone")
            .field("arch", &self.arch)
            .field("weights", &self.weights)
            .finish_non_exhaustive()
    }
}

impl Backbone {
    /// Loads `arch` from the safetensors file `path` (on the CPU).
    pub fn load(path: &Path, arch: Arch) -> Result<Self, Error> {
        let bytes = std::fs::read(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let device = Device::Cpu;
        let err = |source| Error::Weights {
            path: path.to_path_buf(),
            source: Box::new(source),
        };
        let mut tensors = candle_core::safetensors::load_buffer(&bytes, &device).map_err(err)?;
        let net = match arch {
            Arch::Resnet18 | Arch::Resnet50 => {
                let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
                let f = if arch == Arch::Resnet18 {
                    resnet::resnet18_no_final_layer(vb)
                } else {
                    resnet::resnet50_no_final_layer(vb)
                };
                Net::Resnet(f.map_err(err)?)
            }
            Arch::Dinov2S => {
                if !tensors.contains_key("head.weight") {
                    let z = |s: &[usize]| Tensor::zeros(s, DType::F32, &device);
                    tensors.insert("head.weight".into(), z(&[1000, 768]).map_err(err)?);
                    tensors.insert("head.bias".into(), z(&[1000]).map_err(err)?);
                }
                let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
                Net::Dino(dinov2::vit_small(vb).map_err(err)?)
            }
        };
        Ok(Backbone {
            arch,
            net,
            weights: path.to_path_buf(),
            weights_sha256: crate::sha256_hex(&bytes),
            device,
        })
    }

    /// The architecture.
    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// Pooled features (before normalization) of images.
    pub fn features(&self, images: &[&Image]) -> Result<Array2<f32>, Error> {
        let data = to_rgb_planes(images, INPUT, |v, c| {
            (v - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
        })?;
        let x = Tensor::from_vec(data, (images.len(), 3, INPUT, INPUT), &self.device)
            .map_err(network)?;
        let f = match &self.net {
            Net::Resnet(f) => f.forward(&x),
            // candle-transformers' DINOv2 concatenates its `(1, 1, D)` class token with the
            // patch tokens without broadcasting, so it runs one image at a time.
            Net::Dino(m) => (0..images.len())
                .map(|i| {
                    m.get_intermediate_layers(&x.narrow(0, i, 1)?, &[11], false, false, true)?
                        .squeeze(0)?
                        .mean(D::Minus2)
                })
                .collect::<candle_core::Result<Vec<_>>>()
                .and_then(|rows| Tensor::cat(&rows, 0)),
        }
        .map_err(network)?;
        to_array(&f)
    }
}

impl Embedder for Backbone {
    fn info(&self) -> EmbedderInfo {
        EmbedderInfo {
            name: format!("safetensors:{}", self.arch.name()),
            dim: self.dim(),
            normalized: true,
            distance: format!(
                "Euclidean distance between L2-normalized {} pooled features; cos = 1 − d²/2",
                self.arch.name()
            ),
            params: serde_json::json!({
                "arch": self.arch.name(),
                "weights": self.weights.display().to_string(),
                "weights_sha256": self.weights_sha256,
                "input": [3, INPUT, INPUT],
                "input_scaling": "ImageNet mean/std",
                "resize": "bilinear, half-pixel centres",
            }),
        }
    }

    fn dim(&self) -> usize {
        self.arch.dim()
    }

    fn batch_size(&self) -> usize {
        32
    }

    fn embed_batch(&self, images: &[&Image]) -> Result<Array2<f32>, Error> {
        let mut out = self.features(images)?;
        for row in out.rows_mut() {
            l2_normalize(row);
        }
        Ok(out)
    }
}

/// Planar RGB `(N, 3, size, size)` input from `[0, 1]` images of 1 or 3 channels and any size:
/// bilinear resize with half-pixel centres (PyTorch's `interpolate(…, mode="bilinear",
/// align_corners=False)` without antialiasing), gray repeated to three channels, then `f(v,
/// channel)` applied to every value.
pub fn to_rgb_planes(
    images: &[&Image],
    size: usize,
    f: impl Fn(f32, usize) -> f32,
) -> Result<Vec<f32>, Error> {
    let plane = size * size;
    let mut out = vec![0f32; images.len() * 3 * plane];
    for (img, o) in images.iter().zip(out.chunks_mut(3 * plane)) {
        let (c, h, w) = (img.channels, img.height, img.width);
        if !(c == 1 || c == 3) || h == 0 || w == 0 || img.pixels.len() != c * h * w {
            return Err(Error::InputShape {
                id: img.id.clone(),
                expected: crate::error::Shape {
                    channels: 3,
                    height: size,
                    width: size,
                },
                got: crate::error::Shape {
                    channels: c,
                    height: h,
                    width: w,
                },
            });
        }
        // Source coordinate, lower index and weight of each output row / column.
        let taps = |n_in: usize| -> Vec<(usize, usize, f32)> {
            let scale = n_in as f32 / size as f32;
            (0..size)
                .map(|i| {
                    let x = ((i as f32 + 0.5) * scale - 0.5).max(0.0);
                    let x0 = (x.floor() as usize).min(n_in - 1);
                    let x1 = (x0 + 1).min(n_in - 1);
                    (x0, x1, x - x0 as f32)
                })
                .collect()
        };
        let (ty, tx) = (taps(h), taps(w));
        for ch in 0..3 {
            let src = &img.pixels[(ch % c) * h * w..(ch % c + 1) * h * w];
            let dst = &mut o[ch * plane..(ch + 1) * plane];
            for (oy, &(y0, y1, fy)) in ty.iter().enumerate() {
                for (ox, &(x0, x1, fx)) in tx.iter().enumerate() {
                    let top = src[y0 * w + x0] * (1.0 - fx) + src[y0 * w + x1] * fx;
                    let bot = src[y1 * w + x0] * (1.0 - fx) + src[y1 * w + x1] * fx;
                    dst[oy * size + ox] = f(top * (1.0 - fy) + bot * fy, ch);
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use candle_nn::VarMap;

    /// Gives every variable of a VarMap small random values (running variances positive).
    pub(crate) fn randomize(vm: &VarMap) {
        let data = vm.data().lock().unwrap();
        let mut names: Vec<&String> = data.keys().collect();
        names.sort();
        for (i, name) in names.into_iter().enumerate() {
            let var = &data[name];
            let t = var.as_tensor();
            let r = Tensor::rand(0f32, 1f32, t.shape(), t.device()).unwrap();
            let v = if name.ends_with("running_var") {
                (r + 0.5).unwrap()
            } else {
                ((r - 0.5).unwrap() * (0.2 + 0.001 * (i % 7) as f64)).unwrap()
            };
            var.set(&v).unwrap();
        }
    }

    fn write(arch: Arch, dir: &Path) -> PathBuf {
        let dev = Device::Cpu;
        let vm = VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F32, &dev);
        match arch {
            Arch::Resnet18 => drop(resnet::resnet18_no_final_layer(vb).unwrap()),
            Arch::Resnet50 => drop(resnet::resnet50_no_final_layer(vb).unwrap()),
            Arch::Dinov2S => drop(dinov2::vit_small(vb).unwrap()),
        }
        randomize(&vm);
        let path = dir.join(format!("{}.safetensors", arch.name()));
        vm.save(&path).unwrap();
        path
    }

    fn images(n: usize) -> Vec<Image> {
        (0..n)
            .map(|i| Image {
                id: format!("img{i}"),
                hash: String::new(),
                channels: 1 + 2 * (i % 2),
                height: 48,
                width: 48,
                pixels: (0..(1 + 2 * (i % 2)) * 48 * 48)
                    .map(|p| ((p * (i + 2)) % 13) as f32 / 12.0)
                    .collect(),
            })
            .collect()
    }

    #[test]
    fn random_resnet18_and_dinov2_load_and_embed() {
        let dir = tempfile::tempdir().unwrap();
        for arch in [Arch::Resnet18, Arch::Dinov2S] {
            let path = write(arch, dir.path());
            let b = Backbone::load(&path, arch).unwrap();
            let imgs = images(3);
            let refs: Vec<&Image> = imgs.iter().collect();
            let e = b.embed_batch(&refs).unwrap();
            assert_eq!(e.dim(), (3, arch.dim()), "{arch:?}");
            for row in e.rows() {
                let n: f32 = row.iter().map(|v| v * v).sum::<f32>().sqrt();
                assert!((n - 1.0).abs() < 1e-4, "{arch:?}: norm {n}");
            }
            assert_eq!(b.info().name, format!("safetensors:{}", arch.name()));
        }
    }

    #[test]
    fn wrong_or_missing_tensors_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(Arch::Resnet18, dir.path());
        // resnet18 weights are not resnet50's.
        let err = Backbone::load(&path, Arch::Resnet50).unwrap_err();
        let msg = format!("{err}: {}", std::error::Error::source(&err).unwrap());
        assert!(msg.contains("resnet18.safetensors"), "{msg}");
        assert!(msg.contains("layer1.0.conv1.weight"), "{msg}");
        // A missing tensor.
        let mut t = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
        t.remove("layer2.0.bn1.running_mean");
        let bad = dir.path().join("bad.safetensors");
        candle_core::safetensors::save(&t, &bad).unwrap();
        let err = Backbone::load(&bad, Arch::Resnet18).unwrap_err();
        let msg = format!("{err}: {}", std::error::Error::source(&err).unwrap());
        assert!(msg.contains("bad.safetensors"), "{msg}");
        assert!(msg.contains("layer2.0.bn1.running_mean"), "{msg}");
        // A missing file.
        let err = Backbone::load(&dir.path().join("none.safetensors"), Arch::Dinov2S).unwrap_err();
        assert!(err.to_string().contains("none.safetensors"), "{err}");
        assert!("vgg16".parse::<Arch>().is_err());
    }

    #[test]
    fn resize_is_bilinear_with_half_pixel_centres() {
        // 2×2 → 4×4 of a horizontal ramp [0, 1]: columns at x = −0.25, 0.25, 0.75, 1.25 in
        // source pixels, clamped: 0, 0.25, 0.75, 1.
        let img = Image {
            id: "r".into(),
            hash: String::new(),
            channels: 1,
            height: 2,
            width: 2,
            pixels: vec![0.0, 1.0, 0.0, 1.0],
        };
        let out = to_rgb_planes(&[&img], 4, |v, _| v).unwrap();
        assert_eq!(&out[..4], &[0.0, 0.25, 0.75, 1.0]);
        // Gray is repeated to three channels.
        assert_eq!(&out[..16], &out[16..32]);
        // Same size is the identity.
        let same = to_rgb_planes(&[&img], 2, |v, _| v).unwrap();
        assert_eq!(&same[..4], &img.pixels[..]);
    }
}
