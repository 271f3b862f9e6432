//! The `cnn` embedder: a small ResNet-style candle encoder trained by
//! [`crate::train`] on the user's own training images.
//!
//! # Architecture
//!
//! Activations are NHWC (`B × H × W × C`), so that every layer is a matrix product over the
//! last axis:
//!
//! * on the CPU, before the tensor is built: the input canonicalization of
//!   [`Config::canon`] ([`crate::canon`]: centroid to the centre, radius of gyration to a
//!   fixed size);
//! * a fixed low-pass filter of the input ([`Config::smooth`] passes of `[1 2 1]/4`);
//! * a k×k stride-k *patchify* stem (`C_in → widths[0]`, space-to-depth + matmul; k =
//!   [`Config::stem`]);
//! * per stage `i`: a 2×2 stride-2 patchify downsampling to `widths[i]` (not for stage 0,
//!   the stem did it), then `blocks` pre-activation residual blocks
//!   `x + conv₂(relu(conv₁(relu(x))))` of 3×3 stride-1 convolutions;
//! * ReLU, then the last map pooled ([`Config::pool`]: GeM, mean or flattened), and a
//!   linear head to `dim` (128): the descriptor;
//! * for training only, a projection head `dim → proj → proj` ([`Config::proj`], SimCLR):
//!   the contrastive loss is computed on the projection, so the descriptor keeps what the
//!   loss's invariances would otherwise discard. It is saved with the weights (`proj.*`) but
//!   never used to embed.
//!
//! The last map is `ceil(size / (stem · 2^(len(widths) − 1)))` pixels wide (a side that is not
//! a multiple of the stride is zero-padded first).
//!
//! # Convolutions
//!
//! A 3×3 convolution is computed as im2col + matmul ([`ConvImpl::Im2col`], the default: one
//! fused custom op of [`crate::im2col`], ReLU included, with its own backward), as im2col
//! from `pad`/`narrow`/`cat` + matmul
//! ([`ConvImpl::Unfold`]), or by candle's `conv2d` ([`ConvImpl::Candle`]), whose backward is
//! the slow part of training on CPU (DESIGN.md, stack notes). All give the same result for
//! the same weights (tested). Weights are stored as `(9·C_in, C_out)` matrices with rows in
//! `(ky, kx, c)` order, whatever the implementation.
//!
//! # Files
//!
//! A model directory holds `config.json` ([`Config`]) and `model.safetensors` (tensor names
//! `stem.*`, `stages.{i}.down.*`, `stages.{i}.blocks.{j}.conv{1,2}.*`, `head.*`, `proj.{0,1}.*`).

use crate::canon::{canonicalize_with, Canon};
use crate::im2col::{conv3x3, linear};
use crate::{error::Shape, Embedder, EmbedderInfo, Error};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Init, VarBuilder, VarMap};
use memscan_io::Image;
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// File name of the architecture config inside a model directory.
pub const CONFIG_FILE: &str = "config.json";
/// File name of the weights inside a model directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";

/// How 3×3 convolutions are computed. All three give the same result for the same weights
/// (tested); they differ only in speed, mostly of the backward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConvImpl {
    /// im2col + matmul + bias (and the ReLU before the convolution) as one custom candle op
    /// ([`conv3x3`]) whose backward is two matmuls and a col2im: autograd never holds the
    /// column matrix or its gradient. The fastest.
    #[default]
    Im2col,
    /// im2col from candle's `pad`/`narrow`/`cat` + matmul (each `narrow`'s backward
    /// allocates a full zero-padded tensor, which makes it several times slower).
    Unfold,
    /// candle's `conv2d` (slow backward on CPU).
    Candle,
}

/// Architecture of a [`Cnn`], saved beside the weights as `config.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Input channels (1 = gray, 3 = RGB).
    pub in_channels: usize,
    /// Input side length in pixels.
    pub size: usize,
    /// Channel width of each stage; every stage halves the resolution.
    pub widths: Vec<usize>,
    /// Residual blocks per stage.
    pub blocks: usize,
    /// Output dimension.
    pub dim: usize,
    /// Convolution implementation (does not change the weights).
    #[serde(default)]
    pub conv: ConvImpl,
    /// Patch side (= stride) of the stem; later stages downsample by 2.
    #[serde(default = "two")]
    pub stem: usize,
    /// How the last feature map becomes the descriptor: `mean` (global average pool: fully
    /// shift-invariant, but blind to where things are) or `flatten` (the whole coarse map,
    /// so the layout of the image counts; small shifts move it by a fraction of a cell).
    #[serde(default)]
    pub pool: Pool,
    /// Width of the projection head used only by training (SimCLR): the loss sees
    /// `dense₂(relu(dense₁(descriptor)))` (`dim → proj → proj`), the embedder the descriptor
    /// itself. 0: no projection head (the loss sees the descriptor).
    #[serde(default)]
    pub proj: usize,
    /// Passes of a fixed 3×3 binomial low-pass filter (`[1 2 1]/4` per axis, edges
    /// replicated; `k` passes ≈ a Gaussian of σ = √(k/2) pixels) applied to the input before
    /// the stem. It removes pixel-level texture and noise, whose exact pattern a sub-pixel
    /// shift, rotation or resize (bilinear resampling) destroys, so the encoder cannot
    /// identify images by it. 0: none.
    #[serde(default)]
    pub smooth: usize,
    /// Canonicalization of every input image, on the CPU before the tensor is built
    /// ([`crate::canon`]): `moments` moves the intensity centroid to the centre and scales the
    /// radius of gyration to a fixed fraction of the side, so shifted and zoomed copies reach
    /// the network nearly aligned; `windowed` (the default of [`Config::small`]) estimates
    /// them under a Gaussian window that discounts the periphery a crop cuts off. Training applies it to each augmented view after the
    /// augmentation, so the network learns the residual misalignment. Absent from configs
    /// saved before it existed (= `off`), and not written when `off`, so those models' cache
    /// keys are unchanged.
    #[serde(default, skip_serializing_if = "Canon::is_off")]
    pub canon: Canon,
}

/// See [`Config::pool`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pool {
    #[default]
    Mean,
    Flatten,
    /// Generalized mean (GeM, p = 3) over the map: shift-invariant like `mean`, but weighted
    /// towards the strongest responses.
    Gem,
}

/// The default [`Config::smooth`] for `size`-pixel inputs: 4 passes (σ ≈ 1.4 px) at 32
/// pixels, scaled with the image so that σ stays the same fraction of it (σ² ∝ passes),
/// 1 to 16 passes.
pub fn smooth_passes(size: usize) -> usize {
    let r = size as f64 / 32.0;
    ((4.0 * r * r).round() as usize).clamp(1, 16)
}

/// The GeM exponent of [`Pool::Gem`].
pub const GEM_P: f64 = 3.0;

fn two() -> usize {
    2
}

impl Config {
    /// The default network: widths 16/32/64, one residual block per stage, 128-d output
    /// (about 0.1 M parameters), with a 4×4 patch stem from 48 pixels up and a 2×2 one below
    /// (so the first stage works at 12–16 pixels for the usual 32–64 pixel inputs).
    ///
    /// Chosen by measured training speed (`examples/train_speed.rs`, 2 busy cores, 56×56,
    /// batch 64): the 4×4 stem trains at ~85 images/s where the 2×2 stem manages ~30 and
    /// widths 32/64/128 ~59. GeM pooling, a 128-wide projection head and input smoothing
    /// ([`smooth_passes`]) were chosen by copy recall at α = 0.01 on the CT phantoms
    /// (`examples/copy_recall.rs`; reports/reference/embedders-cnn.md), and so was the
    /// windowed moment canonicalization of the input ([`Canon::Windowed`]), which took the
    /// recall of shifted copies from ~0.01 to 1.0 and of crop-resized ones from 0 to
    /// 0.54 (CT) / 0.90 (MR). Its principal-axis rotation ([`Canon::Axes`], the default
    /// since) took rotated Fashion-MNIST copies from 0.60 to 0.97 at the default schedule.
    pub fn small(in_channels: usize, size: usize) -> Self {
        Config {
            in_channels,
            size,
            widths: vec![16, 32, 64],
            blocks: 1,
            dim: 128,
            conv: ConvImpl::Im2col,
            stem: if size >= 48 { 4 } else { 2 },
            pool: Pool::Gem,
            proj: 128,
            smooth: smooth_passes(size),
            canon: Canon::Axes,
        }
    }

    /// Checks that the shape is consistent.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |m: String| Err(Error::Config(m));
        if self.in_channels != 1 && self.in_channels != 3 {
            return bad(format!(
                "cnn input must have 1 or 3 channels, got {}",
                self.in_channels
            ));
        }
        if self.widths.is_empty() || self.widths.contains(&0) || self.dim == 0 {
            return bad(format!(
                "cnn needs non-zero widths and dim, got widths {:?}, dim {}",
                self.widths, self.dim
            ));
        }
        if !(1..=8).contains(&self.stem) {
            return bad(format!(
                "cnn stem patch must be 1 to 8 pixels, got {}",
                self.stem
            ));
        }
        if self.size < 4 {
            return bad(format!(
                "cnn input size must be at least 4 pixels, got {}",
                self.size
            ));
        }
        Ok(())
    }

    /// Side of the last feature map: the stem divides by `stem`, every later stage by 2,
    /// rounding up (padding).
    pub fn final_side(&self) -> usize {
        let mut s = self.size.div_ceil(self.stem);
        for _ in 1..self.widths.len() {
            s = s.div_ceil(2);
        }
        s
    }

    /// The input shape the network expects.
    pub fn input_shape(&self) -> Shape {
        Shape {
            channels: self.in_channels,
            height: self.size,
            width: self.size,
        }
    }
}

/// A dense layer `x·W + b` over the last axis, `W` stored as `(in, out)`.
#[derive(Debug, Clone)]
struct Dense {
    weight: Tensor,
    bias: Tensor,
    out: usize,
}

impl Dense {
    fn new(inp: usize, out: usize, vb: VarBuilder) -> candle_core::Result<Self> {
        Ok(Dense {
            weight: vb.get_with_hints((inp, out), "weight", Init::Const(0.0))?,
            bias: vb.get_with_hints(out, "bias", Init::Const(0.0))?,
            out,
        })
    }

    /// `x`: `(rows, in)` → `(rows, out)`.
    fn apply2(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        linear(x, &self.weight, &self.bias)
    }
}

/// k×k stride-k convolution as space-to-depth + matmul (rows in `(ky, kx, c)` order).
#[derive(Debug, Clone)]
struct Patchify {
    dense: Dense,
    k: usize,
}

impl Patchify {
    fn new(k: usize, cin: usize, cout: usize, vb: VarBuilder) -> candle_core::Result<Self> {
        Ok(Patchify {
            dense: Dense::new(k * k * cin, cout, vb)?,
            k,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let k = self.k;
        // A side that is not a multiple of k is zero-padded at the bottom/right, so any
        // input size works.
        let (_, h, w, _) = x.dims4()?;
        let x = match (k - h % k) % k {
            0 => x.clone(),
            p => x.pad_with_zeros(1, 0, p)?,
        };
        let x = match (k - w % k) % k {
            0 => x,
            p => x.pad_with_zeros(2, 0, p)?,
        };
        let (b, h, w, c) = x.dims4()?;
        let (h2, w2) = (h / k, w / k);
        let p = if k == 1 {
            x.reshape((b * h * w, c))?
        } else {
            x.reshape((b, h2, k, w2, k, c))?
                .permute((0, 1, 3, 2, 4, 5))?
                .contiguous()?
                .reshape((b * h2 * w2, k * k * c))?
        };
        self.dense.apply2(&p)?.reshape((b, h2, w2, self.dense.out))
    }
}

/// 3×3 stride-1 "same" convolution.
#[derive(Debug, Clone)]
struct Conv3 {
    dense: Dense,
    cin: usize,
    imp: ConvImpl,
}

impl Conv3 {
    /// The convolution of `x`, or of `relu(x)` when `relu` is set (fused into the copy of
    /// [`ConvImpl::Im2col`]).
    fn forward(&self, x: &Tensor, relu: bool) -> candle_core::Result<Tensor> {
        let (b, h, w, c) = x.dims4()?;
        let cout = self.dense.out;
        let relu_of = |x: &Tensor| if relu { x.relu() } else { Ok(x.clone()) };
        match self.imp {
            ConvImpl::Im2col => conv3x3(x, &self.dense.weight, &self.dense.bias, relu),
            ConvImpl::Unfold => {
                let xp = relu_of(x)?
                    .pad_with_zeros(1, 1, 1)?
                    .pad_with_zeros(2, 1, 1)?;
                let mut cols = Vec::with_capacity(9);
                for ky in 0..3 {
                    let row = xp.narrow(1, ky, h)?;
                    for kx in 0..3 {
                        cols.push(row.narrow(2, kx, w)?);
                    }
                }
                let cols = Tensor::cat(&cols, 3)?.reshape((b * h * w, 9 * c))?;
                self.dense.apply2(&cols)?.reshape((b, h, w, cout))
            }
            ConvImpl::Candle => {
                let k = self
                    .dense
                    .weight
                    .reshape((3, 3, self.cin, cout))?
                    .permute((3, 2, 0, 1))?
                    .contiguous()?;
                let y = relu_of(x)?
                    .permute((0, 3, 1, 2))?
                    .contiguous()?
                    .conv2d(&k, 1, 1, 1, 1)?;
                y.permute((0, 2, 3, 1))?
                    .broadcast_add(&self.dense.bias)?
                    .contiguous()
            }
        }
    }
}

#[derive(Debug, Clone)]
struct Block {
    conv1: Conv3,
    conv2: Conv3,
}

impl Block {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = self.conv1.forward(x, true)?;
        let y = self.conv2.forward(&y, true)?;
        x + y
    }
}

#[derive(Debug, Clone)]
struct Stage {
    down: Option<Patchify>,
    blocks: Vec<Block>,
}

/// The encoder. `forward` maps `B × H × W × C` pixels in `[0, 1]` (NHWC) to `B × dim`
/// unnormalized descriptors.
#[derive(Debug, Clone)]
pub struct Cnn {
    cfg: Config,
    stem: Patchify,
    stages: Vec<Stage>,
    head: Dense,
    proj: Option<(Dense, Dense)>,
}

impl Cnn {
    /// Builds the network, taking its variables from `vb` (names in the module docs).
    pub fn new(cfg: &Config, vb: VarBuilder) -> candle_core::Result<Self> {
        cfg.validate()
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        let conv = |cin: usize, cout: usize, vb: VarBuilder| -> candle_core::Result<Conv3> {
            Ok(Conv3 {
                dense: Dense::new(9 * cin, cout, vb)?,
                cin,
                imp: cfg.conv,
            })
        };
        let stem = Patchify::new(cfg.stem, cfg.in_channels, cfg.widths[0], vb.pp("stem"))?;
        let mut stages = Vec::with_capacity(cfg.widths.len());
        for (i, &w) in cfg.widths.iter().enumerate() {
            let vs = vb.pp("stages").pp(i);
            let down = if i == 0 {
                None
            } else {
                Some(Patchify::new(2, cfg.widths[i - 1], w, vs.pp("down"))?)
            };
            let blocks = (0..cfg.blocks)
                .map(|j| {
                    let vj = vs.pp("blocks").pp(j);
                    Ok(Block {
                        conv1: conv(w, w, vj.pp("conv1"))?,
                        conv2: conv(w, w, vj.pp("conv2"))?,
                    })
                })
                .collect::<candle_core::Result<Vec<_>>>()?;
            stages.push(Stage { down, blocks });
        }
        let last = *cfg.widths.last().expect("validated non-empty");
        let head_in = match cfg.pool {
            Pool::Mean | Pool::Gem => last,
            Pool::Flatten => last * cfg.final_side() * cfg.final_side(),
        };
        let head = Dense::new(head_in, cfg.dim, vb.pp("head"))?;
        let proj = if cfg.proj > 0 {
            Some((
                Dense::new(cfg.dim, cfg.proj, vb.pp("proj").pp(0))?,
                Dense::new(cfg.proj, cfg.proj, vb.pp("proj").pp(1))?,
            ))
        } else {
            None
        };
        Ok(Cnn {
            cfg: cfg.clone(),
            stem,
            stages,
            head,
            proj,
        })
    }

    /// The architecture.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The training-only projection of descriptors ([`Config::proj`]); the identity without
    /// a projection head.
    pub fn project(&self, desc: &Tensor) -> candle_core::Result<Tensor> {
        match &self.proj {
            Some((a, b)) => b.apply2(&a.apply2(desc)?.relu()?),
            None => Ok(desc.clone()),
        }
    }
}

impl Module for Cnn {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let mut x = self.stem.forward(&(smooth(xs, self.cfg.smooth)? - 0.5)?)?;
        for s in &self.stages {
            if let Some(d) = &s.down {
                x = d.forward(&x)?;
            }
            for b in &s.blocks {
                x = b.forward(&x)?;
            }
        }
        let x = x.relu()?;
        let pooled = match self.cfg.pool {
            Pool::Mean => x.mean(2)?.mean(1)?,
            Pool::Flatten => x.flatten_from(1)?,
            Pool::Gem => x
                .maximum(1e-6)?
                .powf(GEM_P)?
                .mean(2)?
                .mean(1)?
                .powf(1.0 / GEM_P)?,
        };
        self.head.apply2(&pooled)
    }
}

/// `passes` passes of the `[1 2 1]/4` filter along H and W of an NHWC tensor, edges
/// replicated ([`Config::smooth`]): each pass maps `x[i]` to `((x[i−1] + x[i+1]) + 2·x[i]) / 4`
/// along H, then along W (indices clamped to the image), in f32 in exactly that order.
///
/// One custom op over plain slices, in parallel over the images (each image is filtered by
/// one task, so the result does not depend on the thread count): the same filter written
/// as candle `pad`/`narrow`/`add` ops allocated eight tensors per pass and axis, and took
/// about half of a training step's forward pass at 56×56 (12 passes). No gradient: the input
/// of the network is never a variable.
pub fn smooth(x: &Tensor, passes: usize) -> candle_core::Result<Tensor> {
    if passes == 0 {
        return Ok(x.clone());
    }
    let (b, h, w, c) = x.dims4()?;
    x.contiguous()?
        .apply_op1_no_bwd(&Smooth { b, h, w, c, passes })
}

#[derive(Debug, Clone, Copy)]
struct Smooth {
    b: usize,
    h: usize,
    w: usize,
    c: usize,
    passes: usize,
}

impl candle_core::CustomOp1 for Smooth {
    fn name(&self) -> &'static str {
        "smooth"
    }

    fn cpu_fwd(
        &self,
        storage: &candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        use rayon::prelude::*;
        let Smooth { b, h, w, c, passes } = *self;
        let mut out = crate::im2col::f32_slice(storage, layout, "smooth")?.to_vec();
        let plane = h * w * c;
        if plane > 0 {
            out.par_chunks_mut(plane).for_each(|img| {
                let mut tmp = vec![0f32; plane];
                for _ in 0..passes {
                    // Along H: rows y − 1, y, y + 1 (clamped) of `img` into `tmp`.
                    let row = w * c;
                    for (y, t) in tmp.chunks_exact_mut(row).enumerate() {
                        let (up, down) = (y.saturating_sub(1), (y + 1).min(h - 1));
                        let a = &img[up * row..(up + 1) * row];
                        let m = &img[y * row..(y + 1) * row];
                        let z = &img[down * row..(down + 1) * row];
                        for (((t, a), m), z) in t.iter_mut().zip(a).zip(m).zip(z) {
                            *t = ((a + z) + m * 2.0) * 0.25;
                        }
                    }
                    // Along W: pixels x − 1, x, x + 1 (clamped) of `tmp` back into `img`;
                    // in a row of W·C values the neighbours of index i are i ∓ C.
                    for (src, dst) in tmp.chunks_exact(row).zip(img.chunks_exact_mut(row)) {
                        let edge = |x: usize, dst: &mut [f32]| {
                            let (l, r) = (x.saturating_sub(1) * c, (x + 1).min(w - 1) * c);
                            for ch in 0..c {
                                let i = x * c + ch;
                                dst[i] = ((src[l + ch] + src[r + ch]) + src[i] * 2.0) * 0.25;
                            }
                        };
                        edge(0, dst);
                        if w > 2 {
                            let inner = (w - 2) * c;
                            let (a, m, z) = (&src[..inner], &src[c..c + inner], &src[2 * c..]);
                            for (((d, a), m), z) in
                                dst[c..c + inner].iter_mut().zip(a).zip(m).zip(z)
                            {
                                *d = ((a + z) + m * 2.0) * 0.25;
                            }
                        }
                        if w > 1 {
                            edge(w - 1, dst);
                        }
                    }
                }
            });
        }
        Ok((
            candle_core::CpuStorage::F32(out),
            candle_core::Shape::from((b, h, w, c)),
        ))
    }
}

/// Seeded initialization of every variable of `varmap` (candle cannot seed its CPU RNG):
/// `*.weight` (stored `(fan_in, fan_out)`) uniform with He bound `sqrt(6 / fan_in)`, the
/// second convolution of residual blocks scaled by 0.25 and the head by `1/sqrt(2)`;
/// `*.bias` zero. Variables are visited in name order from one ChaCha8 stream.
pub fn init_varmap(varmap: &VarMap, seed: u64) -> candle_core::Result<()> {
    let data = varmap.data().lock().expect("varmap lock");
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for name in names {
        let var = &data[name];
        let dims = var.dims().to_vec();
        let n: usize = dims.iter().product();
        let values: Vec<f32> = if name.ends_with(".weight") && dims.len() == 2 {
            let mut bound = (6.0 / dims[0] as f64).sqrt() as f32;
            if name.contains("conv2") {
                bound *= 0.25;
            } else if name.starts_with("head") {
                bound *= std::f32::consts::FRAC_1_SQRT_2;
            }
            (0..n).map(|_| rng.random_range(-bound..bound)).collect()
        } else {
            vec![0.0; n]
        };
        var.set(&Tensor::from_vec(values, dims, var.device())?)?;
    }
    Ok(())
}

/// Packs images (planar CHW, all of `shape`) into one `B × H × W × C` tensor.
pub fn images_to_tensor(images: &[&Image], shape: Shape, device: &Device) -> Result<Tensor, Error> {
    images_to_input(images, shape, Canon::Off, device)
}

/// [`images_to_tensor`] with each image canonicalized by `canon` first: the input of
/// [`Cnn::forward`] for a model of that [`Config::canon`].
pub fn images_to_input(
    images: &[&Image],
    shape: Shape,
    canon: Canon,
    device: &Device,
) -> Result<Tensor, Error> {
    let (c, h, w) = (shape.channels, shape.height, shape.width);
    let mut data = Vec::with_capacity(images.len() * c * h * w);
    // One scratch image for the whole batch.
    let mut scratch = match canon {
        Canon::Off => Vec::new(),
        _ => vec![0f32; c * h * w],
    };
    for img in images {
        let got = Shape {
            channels: img.channels,
            height: img.height,
            width: img.width,
        };
        if got != shape || img.pixels.len() != c * h * w {
            return Err(Error::InputShape {
                id: img.id.clone(),
                expected: shape,
                got,
            });
        }
        match canon {
            Canon::Off => push_hwc(&mut data, &img.pixels, c, h * w),
            _ => {
                canonicalize_with(canon, &img.pixels, c, h, w, &mut scratch);
                push_hwc(&mut data, &scratch, c, h * w);
            }
        }
    }
    Tensor::from_vec(data, (images.len(), h, w, c), device).map_err(candle_err)
}

/// Appends a planar `c × hw` image to `out` in interleaved (HWC) order.
pub(crate) fn push_hwc(out: &mut Vec<f32>, planar: &[f32], c: usize, hw: usize) {
    if c == 1 {
        out.extend_from_slice(planar);
    } else {
        for p in 0..hw {
            for ch in 0..c {
                out.push(planar[ch * hw + p]);
            }
        }
    }
}

pub(crate) fn candle_err(e: candle_core::Error) -> Error {
    Error::Model(e.to_string())
}

/// The `cnn` embedder: a trained [`Cnn`] loaded from a model directory.
#[derive(Debug)]
pub struct CnnEmbedder {
    model: Cnn,
    device: Device,
    dir: PathBuf,
    weights_sha256: String,
}

impl CnnEmbedder {
    /// Loads `dir/config.json` and `dir/model.safetensors` on the CPU.
    ///
    /// The weights are read into memory (they are small) rather than memory-mapped: the
    /// bytes are hashed for the report anyway, and this needs no `unsafe`.
    pub fn load(dir: &Path) -> Result<Self, Error> {
        let cfg_path = dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&cfg_path)
            .map_err(|e| Error::Model(format!("reading {}: {e}", cfg_path.display())))?;
        let cfg: Config = serde_json::from_str(&text)
            .map_err(|e| Error::Model(format!("parsing {}: {e}", cfg_path.display())))?;
        cfg.validate()?;
        let w_path = dir.join(WEIGHTS_FILE);
        let bytes = std::fs::read(&w_path)
            .map_err(|e| Error::Model(format!("reading {}: {e}", w_path.display())))?;
        let sha = hex::encode(Sha256::digest(&bytes));
        let device = Device::Cpu;
        let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, &device)
            .map_err(|e| Error::Model(format!("loading {}: {e}", w_path.display())))?;
        let model = Cnn::new(&cfg, vb)
            .map_err(|e| Error::Model(format!("building cnn from {}: {e}", w_path.display())))?;
        Ok(CnnEmbedder {
            model,
            device,
            dir: dir.to_path_buf(),
            weights_sha256: sha,
        })
    }

    /// Wraps an in-memory model (e.g. fresh from training); `weights_sha256` is recorded in
    /// [`Embedder::info`].
    pub fn from_model(model: Cnn, dir: PathBuf, weights_sha256: String) -> Self {
        CnnEmbedder {
            model,
            device: Device::Cpu,
            dir,
            weights_sha256,
        }
    }

    /// The architecture.
    pub fn config(&self) -> &Config {
        self.model.config()
    }
}

impl Embedder for CnnEmbedder {
    fn info(&self) -> EmbedderInfo {
        let cfg = self.model.config();
        EmbedderInfo {
            name: "cnn".into(),
            dim: cfg.dim,
            normalized: true,
            distance: "Euclidean distance between L2-normalized descriptors of a self-supervised \
                       copy-detection CNN (cos = 1 − d²/2)"
                .into(),
            params: serde_json::json!({
                "model_dir": self.dir.display().to_string(),
                "weights_sha256": self.weights_sha256,
                "config": cfg,
            }),
        }
    }

    fn dim(&self) -> usize {
        self.model.config().dim
    }

    fn embed_batch(&self, images: &[&Image]) -> Result<Array2<f32>, Error> {
        let cfg = self.model.config();
        // Inference memory is bounded by the batch: the caller hands over at most
        // `batch_size()` images, and activations are freed when this call returns.
        let x = images_to_input(images, cfg.input_shape(), cfg.canon, &self.device)?;
        let y = self.model.forward(&x).map_err(candle_err)?;
        let rows = y.to_vec2::<f32>().map_err(candle_err)?;
        let mut out = Array2::<f32>::zeros((images.len(), cfg.dim));
        for (mut o, r) in out.rows_mut().into_iter().zip(rows) {
            o.assign(&ndarray::ArrayView1::from(&r[..]));
            crate::l2_normalize(o);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(c: usize, size: usize, conv: ConvImpl) -> Config {
        Config {
            in_channels: c,
            size,
            widths: vec![8, 16],
            blocks: 1,
            dim: 32,
            conv,
            stem: 2,
            pool: Pool::Flatten,
            proj: 0,
            smooth: 0,
            canon: Canon::Off,
        }
    }

    #[test]
    fn shapes_with_zero_weights() {
        for c in [1, 3] {
            let cfg = Config::small(c, 64);
            let m = Cnn::new(&cfg, VarBuilder::zeros(DType::F32, &Device::Cpu)).unwrap();
            let x = Tensor::zeros((2, 64, 64, c), DType::F32, &Device::Cpu).unwrap();
            assert_eq!(m.forward(&x).unwrap().dims(), &[2, 128]);
        }
    }

    #[test]
    fn odd_sizes_are_padded_and_tiny_ones_rejected() {
        for size in [28, 30, 33] {
            let cfg = Config::small(1, size);
            let m = Cnn::new(&cfg, VarBuilder::zeros(DType::F32, &Device::Cpu)).unwrap();
            let x = Tensor::zeros((3, size, size, 1), DType::F32, &Device::Cpu).unwrap();
            assert_eq!(m.forward(&x).unwrap().dims(), &[3, 128]);
        }
        let err = Config::small(1, 3).validate().unwrap_err().to_string();
        assert!(err.contains("at least 4"), "{err}");
    }

    #[test]
    fn every_conv_path_gives_the_same_network() {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let a = Cnn::new(&cfg(3, 16, ConvImpl::Im2col), vb.clone()).unwrap();
        init_varmap(&varmap, 7).unwrap();
        let x = Tensor::rand(0f32, 1f32, (2, 16, 16, 3), &Device::Cpu).unwrap();
        let ya = a.forward(&x).unwrap();
        for conv in [ConvImpl::Unfold, ConvImpl::Candle] {
            let b = Cnn::new(&cfg(3, 16, conv), vb.clone()).unwrap();
            let diff = (&ya - b.forward(&x).unwrap())
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(diff < 1e-4, "{conv:?}: {diff}");
        }
    }

    use crate::test_util::max_abs_diff;

    /// The filter as candle tensor ops, as [`smooth`] computed it before it became one op.
    fn smooth_reference(x: &Tensor, passes: usize) -> Tensor {
        let mut x = x.clone();
        for _ in 0..passes {
            for dim in [1, 2] {
                let n = x.dim(dim).unwrap();
                let p = x.pad_with_same(dim, 1, 1).unwrap();
                let ends = (p.narrow(dim, 0, n).unwrap() + p.narrow(dim, 2, n).unwrap()).unwrap();
                x = ((ends + (p.narrow(dim, 1, n).unwrap() * 2.0).unwrap()).unwrap() * 0.25)
                    .unwrap();
            }
        }
        x
    }

    #[test]
    fn smoothing_op_is_bit_identical_to_the_tensor_formulation() {
        // Cached models were trained with the tensor-op filter: the op must not change
        // their embeddings by a single bit, for gray and RGB, square or not, tiny sides too.
        for (b, h, w, c, passes) in [
            (3, 9, 7, 1, 5),
            (2, 6, 6, 3, 2),
            (1, 1, 4, 1, 3),
            (1, 2, 1, 3, 1),
        ] {
            let x = Tensor::rand(0f32, 1f32, (b, h, w, c), &Device::Cpu).unwrap();
            let ours = smooth(&x, passes)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let theirs = smooth_reference(&x, passes)
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            assert!(
                ours.iter()
                    .zip(&theirs)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{b}x{h}x{w}x{c}, {passes} passes"
            );
        }
        let x = Tensor::rand(0f32, 1f32, (1, 4, 4, 1), &Device::Cpu).unwrap();
        assert_eq!(max_abs_diff(&smooth(&x, 0).unwrap(), &x), 0.0);
    }

    #[test]
    fn gem_pool_projection_head_and_input_smoothing() {
        // Smoothing keeps a constant image constant and spreads a dot without losing mass.
        let flat = Tensor::full(0.3f32, (1, 6, 6, 1), &Device::Cpu).unwrap();
        let s = smooth(&flat, 2).unwrap().flatten_all().unwrap();
        assert!(s
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .all(|v| (v - 0.3).abs() < 1e-6));
        let mut dot = vec![0f32; 49];
        dot[24] = 1.0;
        let dot = Tensor::from_vec(dot, (1, 7, 7, 1), &Device::Cpu).unwrap();
        let s = smooth(&dot, 1)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert!((s.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        assert!((s[24] - 0.25).abs() < 1e-6 && (s[23] - 0.125).abs() < 1e-6);

        // GeM: the descriptor keeps `dim`; the projection head only exists for training.
        let c = Config {
            pool: Pool::Gem,
            proj: 24,
            smooth: 1,
            ..cfg(1, 16, ConvImpl::Im2col)
        };
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let m = Cnn::new(&c, vb).unwrap();
        init_varmap(&varmap, 1).unwrap();
        let x = Tensor::rand(0f32, 1f32, (3, 16, 16, 1), &Device::Cpu).unwrap();
        let d = m.forward(&x).unwrap();
        assert_eq!(d.dims(), &[3, 32]);
        assert_eq!(m.project(&d).unwrap().dims(), &[3, 24]);
        assert!(varmap.data().lock().unwrap().contains_key("proj.1.weight"));
    }

    #[test]
    fn seeded_init_is_deterministic() {
        let make = || {
            let varmap = VarMap::new();
            let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
            let m = Cnn::new(&cfg(1, 16, ConvImpl::Im2col), vb).unwrap();
            init_varmap(&varmap, 3).unwrap();
            let x = Tensor::ones((1, 16, 16, 1), DType::F32, &Device::Cpu).unwrap();
            m.forward(&x).unwrap().to_vec2::<f32>().unwrap()
        };
        assert_eq!(make(), make());
    }

    #[test]
    fn embedder_round_trips_through_files() {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(1, 16, ConvImpl::Im2col);
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let m = Cnn::new(&c, vb).unwrap();
        init_varmap(&varmap, 1).unwrap();
        varmap.save(dir.path().join(WEIGHTS_FILE)).unwrap();
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            serde_json::to_string(&c).unwrap(),
        )
        .unwrap();
        let e = CnnEmbedder::load(dir.path()).unwrap();
        let img = Image {
            id: "a".into(),
            hash: String::new(),
            channels: 1,
            height: 16,
            width: 16,
            pixels: (0..256).map(|i| (i % 17) as f32 / 17.0).collect(),
        };
        let got = e.embed_batch(&[&img]).unwrap();
        assert_eq!(got.dim(), (1, 32));
        let unit = got.row(0).iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((unit - 1.0).abs() < 1e-5, "norm {unit}");
        // Loading again gives the identical embedding.
        let again = CnnEmbedder::load(dir.path())
            .unwrap()
            .embed_batch(&[&img])
            .unwrap();
        assert_eq!(got, again);
        let x = images_to_tensor(&[&img], c.input_shape(), &Device::Cpu).unwrap();
        let want = m.forward(&x).unwrap().to_vec2::<f32>().unwrap();
        let norm = want[0].iter().map(|v| v * v).sum::<f32>().sqrt();
        for (g, w) in got.row(0).iter().zip(&want[0]) {
            assert!((g - w / norm).abs() < 1e-5);
        }
        // The same weights with canonicalized input: a different embedding, equal to the
        // network applied to the canonicalized pixels.
        let mut cc = c.clone();
        cc.canon = Canon::Windowed;
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            serde_json::to_string(&cc).unwrap(),
        )
        .unwrap();
        let ec = CnnEmbedder::load(dir.path()).unwrap();
        assert_eq!(ec.config().canon, Canon::Windowed);
        let gc = ec.embed_batch(&[&img]).unwrap();
        assert!((&gc - &got).iter().any(|d| d.abs() > 1e-4));
        let canon_img = Image {
            pixels: crate::canon::canonicalized(Canon::Windowed, &img.pixels, 1, 16, 16),
            ..img.clone()
        };
        let want = e.embed_batch(&[&canon_img]).unwrap();
        assert!((&gc - &want).iter().all(|d| d.abs() < 1e-5));
        // A config.json written before `canon` existed loads as `off`.
        let mut old = serde_json::to_value(&c).unwrap();
        old.as_object_mut().unwrap().remove("canon");
        let back: Config = serde_json::from_value(old).unwrap();
        assert_eq!(back.canon, Canon::Off);
        assert_eq!(Config::small(1, 32).canon, Canon::Axes);
        let info = e.info();
        assert_eq!(info.dim, 32);
        assert_eq!(info.params["weights_sha256"].as_str().unwrap().len(), 64);
        let bad = Image {
            channels: 1,
            height: 8,
            width: 8,
            pixels: vec![0.0; 64],
            ..img
        };
        assert!(e.embed_batch(&[&bad]).is_err());
    }
}
