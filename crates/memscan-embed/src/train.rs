//! Self-supervised contrastive training of the [`crate::cnn`] encoder (SimCLR / NT-Xent).
//!
//! Each step takes a batch of `B` training images, makes two augmented views of each with
//! copy-detection augmentations ([`augment`]: the transforms under which a copy must still
//! match), canonicalizes each view as the model's [`crate::cnn::Config::canon`] says (after
//! augmenting, as inference does with every image), embeds the `2B` views, passes them through the training-only projection head
//! ([`crate::cnn::Config::proj`]), L2-normalizes them and minimizes the NT-Xent loss at
//! temperature `τ`: every view must pick its partner among the other `2B − 1` views.
//! Optimizer: AdamW. All randomness (initialization, shuffling, augmentations) comes from
//! ChaCha8 streams derived from the seed, so a run is reproducible for a given seed and thread
//! count. The views of the next step are prepared while the current one trains, by a helper
//! thread at idle priority where the system has one (src/prefetch.rs); each view depends only
//! on its seed, so this changes the speed, not the result.
//!
//! After every epoch the model directory is written (`config.json`, `model.safetensors`)
//! together with `train_state.json` (epochs done, per-epoch loss and speed). With
//! `resume`, training continues after the last finished epoch (the AdamW moments restart).

use crate::canon::{canonicalized, Canon};
use crate::cnn::{self, candle_err, Cnn, Config, CONFIG_FILE, WEIGHTS_FILE};
use crate::prefetch::Prefetcher;
use crate::Error;
use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use memscan_datasets::CopyTransform;
use memscan_io::{Image, Reporter};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// File name of the training state inside a model directory.
pub const STATE_FILE: &str = "train_state.json";

/// Hyper-parameters of a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub model: Config,
    pub epochs: usize,
    /// Images per step (each gives two views).
    pub batch: usize,
    pub seed: u64,
    pub lr: f64,
    pub weight_decay: f64,
    /// NT-Xent temperature.
    pub temperature: f64,
    /// Scale of the augmentations' maximum severities ([`augment`]; 1 = the documented
    /// ranges).
    #[serde(default = "one")]
    pub aug: f32,
    /// Probability that the first view of an image is the image itself (no augmentation),
    /// as the training image a copy is compared with.
    #[serde(default)]
    pub anchor: f64,
    /// Probability of the crop-resize augmentation ([`augment_with`]); configs without the
    /// field load as [`CROP_P`], which is not serialized, so their cache keys are unchanged.
    #[serde(default = "crop_p", skip_serializing_if = "is_crop_p")]
    pub crop_p: f64,
    /// Weight of the KoLeo entropy regularizer ([`koleo`]) on the L2-normalized descriptors
    /// (not the projections): it spreads images that are not copies of each other apart,
    /// as SSCD does (Pizzi et al. 2022). Off by default: on the CT phantoms it spread the
    /// copies as much as the non-copies and did not raise copy recall
    /// (reports/reference/embedders-cnn.md, Follow-up 3). Configs without the field load as
    /// 0, which is not serialized, so their cache keys are unchanged.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub koleo: f64,
}

/// The crop-resize probability of [`augment`].
pub const CROP_P: f64 = 0.6;

fn one() -> f32 {
    1.0
}

fn crop_p() -> f64 {
    CROP_P
}

fn is_crop_p(p: &f64) -> bool {
    *p == CROP_P
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

impl TrainConfig {
    /// Defaults for `model`: 10 epochs, batch 64, lr 2e-3, weight decay 1e-4, τ = 0.1.
    pub fn new(model: Config) -> Self {
        TrainConfig {
            model,
            epochs: 10,
            batch: 64,
            seed: 0,
            lr: 2e-3,
            weight_decay: 1e-4,
            temperature: 0.1,
            aug: 1.0,
            anchor: 0.0,
            crop_p: CROP_P,
            koleo: 0.0,
        }
    }
}

/// Loss and speed of one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    pub epoch: usize,
    pub loss: f64,
    pub images_per_sec: f64,
}

/// What `train_state.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    pub config: TrainConfig,
    pub epochs_done: usize,
    pub history: Vec<EpochStats>,
}

/// One augmented view of `img` (planar, values in `[0, 1]`): the copy-detection transforms
/// of memscan-datasets' [`CopyTransform`] under which a copy must still match, each applied
/// with some probability at a random severity, in this order: crop-resize, rotation, shift
/// (each p = 0.6, severity U(0, 1)), elastic (p = 0.15, ≤ 0.5), flip (p = 0.5),
/// gamma/contrast/brightness (p = 0.6), blur (p = 0.3, ≤ 0.6), noise (p = 0.5, ≤ 0.8) and
/// JPEG-like quantization (p = 0.15, ≤ 0.8). Channels share every random choice.
pub fn augment<R: Rng + ?Sized>(img: &Image, rng: &mut R) -> Vec<f32> {
    augment_scaled(img, 1.0, rng)
}

/// [`augment`] with every maximum severity multiplied by `scale` (capped at 1).
pub fn augment_scaled<R: Rng + ?Sized>(img: &Image, scale: f32, rng: &mut R) -> Vec<f32> {
    augment_with(img, scale, CROP_P, rng)
}

/// [`augment_scaled`] with crop-resize applied with probability `crop_p` instead of
/// [`CROP_P`].
pub fn augment_with<R: Rng + ?Sized>(
    img: &Image,
    scale: f32,
    crop_p: f64,
    rng: &mut R,
) -> Vec<f32> {
    let (c, n) = (img.channels, img.height);
    debug_assert_eq!(img.height, img.width);
    let plan = [
        (CopyTransform::CropResize, crop_p, 1.0),
        (CopyTransform::Rotate, 0.6, 1.0),
        (CopyTransform::Shift, 0.6, 1.0),
        (CopyTransform::Elastic, 0.15, 0.5),
        (CopyTransform::Flip, 0.5, 1.0),
        (CopyTransform::Gamma, 0.6, 1.0),
        (CopyTransform::Blur, 0.3, 0.6),
        (CopyTransform::Noise, 0.5, 0.8),
        (CopyTransform::Jpeg, 0.15, 0.8),
    ];
    let mut chain = Vec::new();
    for (t, p, max) in plan {
        if rng.random::<f64>() < p {
            chain.push((t, rng.random::<f32>() * (max * scale).min(1.0)));
        }
    }
    let hw = n * n;
    let mut out = Vec::with_capacity(c * hw);
    // One seed per transform, shared by the channels, so that they move together.
    let seeds: Vec<u64> = chain.iter().map(|_| rng.random()).collect();
    for ch in 0..c {
        let mut plane = img.pixels[ch * hw..(ch + 1) * hw].to_vec();
        for (&(t, s), &seed) in chain.iter().zip(&seeds) {
            let mut r = ChaCha8Rng::seed_from_u64(seed);
            plane = t.apply(&plane, n as u32, s, &mut r);
        }
        out.extend_from_slice(&plane);
    }
    out
}

/// NT-Xent loss of `2B` L2-normalized rows where rows `i` and `i + B` are positives.
pub fn nt_xent(z: &Tensor, temperature: f64) -> candle_core::Result<Tensor> {
    let (n2, _) = z.dims2()?;
    let b = n2 / 2;
    let sim = (z.matmul(&z.t()?)? / temperature)?;
    let mask = Tensor::eye(n2, DType::F32, z.device())?;
    let sim = (sim - (mask * 1e9)?)?;
    let targets: Vec<u32> = (0..n2).map(|i| ((i + b) % n2) as u32).collect();
    let targets = Tensor::new(targets.as_slice(), z.device())?;
    candle_nn::loss::cross_entropy(&sim, &targets)
}

/// The KoLeo entropy regularizer (Sablayrolles et al. 2019, "Spreading vectors for
/// similarity search"; used by SSCD for copy detection) of `2B` L2-normalized rows where rows
/// `i` and `i + B` are positives: `−mean_i ln ρ_i`, with `ρ_i` the L2 distance from row `i` to
/// its nearest row other than itself and its positive (computed as `sqrt(ρ² + 1e-8)`, so
/// that identical rows keep a finite gradient). Minimizing it pushes each
/// descriptor away from its nearest non-matching neighbour, which spreads the distances
/// between different images that a copy threshold is calibrated on.
pub fn koleo(z: &Tensor) -> candle_core::Result<Tensor> {
    let (n2, _) = z.dims2()?;
    let b = n2 / 2;
    let sim = z.matmul(&z.t()?)?;
    // Self and positive pairs get a similarity below any cosine, so `max` skips them.
    let excluded: Vec<f32> = (0..n2 * n2)
        .map(|k| {
            let (i, j) = (k / n2, k % n2);
            if i == j || j == (i + b) % n2 {
                4.0
            } else {
                0.0
            }
        })
        .collect();
    let excluded = Tensor::from_vec(excluded, (n2, n2), z.device())?;
    let nearest = (sim - excluded)?.max(D::Minus1)?;
    // |a − b|² = 2 − 2 a·b for unit vectors; clamped at 0 against rounding.
    let rho = (((nearest * -2.0)? + 2.0)?.maximum(0.0)? + 1e-8)?.sqrt()?;
    rho.log()?.mean_all()?.neg()
}

/// Row-wise L2 normalization inside the autograd graph (the training loss needs its
/// gradient; inference uses [`crate::l2_normalize`]).
pub fn normalize_rows(z: &Tensor) -> candle_core::Result<Tensor> {
    let norm = (z.sqr()?.sum_keepdim(D::Minus1)? + 1e-12)?.sqrt()?;
    z.broadcast_div(&norm)
}

/// Learning rate at step `t` of `total`: a linear warm-up over the first 5 % of the steps,
/// then cosine decay to 5 % of `lr`.
pub fn cosine_lr(lr: f64, t: usize, total: usize) -> f64 {
    let total = total.max(1) as f64;
    let t = t as f64;
    let warm = (0.05 * total).max(1.0);
    if t < warm {
        return lr * (t + 1.0) / warm;
    }
    let p = ((t - warm) / (total - warm).max(1.0)).min(1.0);
    lr * (0.05 + 0.95 * 0.5 * (1.0 + (std::f64::consts::PI * p).cos()))
}

/// Image presentations (two views each) of the default schedule ([`default_epochs`]).
pub const DEFAULT_PRESENTATIONS: usize = 192_000;

/// The default number of epochs for `n` training images: about [`DEFAULT_PRESENTATIONS`]
/// image presentations, at least 3 and at most 1,000 epochs. Training time grows with the
/// presentations and only mildly with the image size (the stem scales with it), so this is a
/// time budget: on 2 cores about 1.0 ms per presentation at 28×28, 1.2 ms at 32×32 to 56×56
/// and 1.5 ms at 64×64 (`examples/train_speed.rs`), 3 to 5 minutes, which keeps `scan
/// --embedder cnn --train-embedder` on 2,000 images of 56×56 inside 5 minutes end to end
/// (measured: 3 min 45 s). Measured on the CT phantoms (`examples/copy_recall.rs`, 300
/// training images; reports/reference/embedders-cnn.md): more presentations raise the recall
/// at α = 0.01 of every resampled copy — crop-resized copies 0.51–0.54 at 30,000, 0.75–0.78
/// at 90,000, 0.87 at 180,000 and 0.93 at the default; batch size, learning rate and
/// temperature were not levers.
pub fn default_epochs(n: usize) -> usize {
    DEFAULT_PRESENTATIONS.div_ceil(n.max(1)).clamp(3, 1000)
}

fn seed_for(seed: u64, parts: &[u64]) -> u64 {
    // SplitMix64 over the parts: independent streams per (epoch, step, image).
    let mut x = seed ^ 0x9E37_79B9_7F4A_7C15;
    for &p in parts {
        x = x.wrapping_add(p.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^= x >> 31;
    }
    x
}

/// Trains on `images` and writes the model directory `out` after every epoch. Returns the
/// final state. Images must all be `in_channels × size × size` of `cfg.model`.
pub fn train(
    images: &[Image],
    cfg: &TrainConfig,
    out: &Path,
    resume: bool,
    reporter: &dyn Reporter,
) -> Result<TrainState, Error> {
    cfg.model.validate()?;
    let shape = cfg.model.input_shape();
    if let Some(img) = images.iter().find(|i| {
        i.channels != shape.channels || i.height != shape.height || i.width != shape.width
    }) {
        return Err(Error::InputShape {
            id: img.id.clone(),
            expected: shape,
            got: crate::error::Shape {
                channels: img.channels,
                height: img.height,
                width: img.width,
            },
        });
    }
    if images.len() < 2 {
        return Err(Error::Config(format!(
            "contrastive training needs at least 2 images, got {}",
            images.len()
        )));
    }
    if cfg.batch < 2 || cfg.temperature.is_nan() || cfg.temperature <= 0.0 {
        return Err(Error::Config(format!(
            "training needs batch ≥ 2 and temperature > 0, got batch {}, τ {}",
            cfg.batch, cfg.temperature
        )));
    }
    let io = |what: &str, p: &Path, e: &dyn std::fmt::Display| {
        Error::Model(format!("{what} {}: {e}", p.display()))
    };
    std::fs::create_dir_all(out).map_err(|e| io("creating", out, &e))?;
    let device = Device::Cpu;
    let mut varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
    let model = Cnn::new(&cfg.model, vb).map_err(candle_err)?;
    cnn::init_varmap(&varmap, cfg.seed).map_err(candle_err)?;

    let state_path = out.join(STATE_FILE);
    let mut state = TrainState {
        config: cfg.clone(),
        epochs_done: 0,
        history: Vec::new(),
    };
    if resume && state_path.exists() {
        let text =
            std::fs::read_to_string(&state_path).map_err(|e| io("reading", &state_path, &e))?;
        let old: TrainState =
            serde_json::from_str(&text).map_err(|e| io("parsing", &state_path, &e))?;
        let mut same = old.config.clone();
        same.epochs = cfg.epochs;
        if same != *cfg {
            return Err(Error::Config(format!(
                "cannot resume from {}: it was trained with different settings",
                state_path.display()
            )));
        }
        let w = out.join(WEIGHTS_FILE);
        varmap.load(&w).map_err(|e| io("loading", &w, &e))?;
        state.epochs_done = old.epochs_done;
        state.history = old.history;
    }

    let mut opt = AdamW::new(
        varmap.all_vars(),
        ParamsAdamW {
            lr: cfg.lr,
            weight_decay: cfg.weight_decay,
            ..ParamsAdamW::default()
        },
    )
    .map_err(candle_err)?;
    let batch = cfg.batch.min(images.len());
    let steps = images.len() / batch;
    let (c, hw) = (shape.channels, shape.height * shape.width);

    for epoch in state.epochs_done..cfg.epochs {
        let label = match state.history.last() {
            Some(s) => format!(
                "train epoch {}/{} (last loss {:.3}, {:.0} img/s)",
                epoch + 1,
                cfg.epochs,
                s.loss,
                s.images_per_sec
            ),
            None => format!("train epoch {}/{}", epoch + 1, cfg.epochs),
        };
        reporter.start(&label, (steps * batch) as u64);
        let mut order: Vec<usize> = (0..images.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed_for(
            cfg.seed,
            &[1, epoch as u64],
        )));
        let t0 = Instant::now();
        let mut loss_sum = 0.0;
        // View `v` of `step`: views `v` and `v + batch` are the two views of image
        // `order[step·batch + v mod batch]`, each from its own seeded stream.
        let view = |step: usize, v: usize| -> Vec<f32> {
            let i = order[step * batch + v % batch];
            let mut rng = ChaCha8Rng::seed_from_u64(seed_for(
                cfg.seed,
                &[2, epoch as u64, step as u64, v as u64],
            ));
            let view = if v < batch && cfg.anchor > 0.0 && rng.random::<f64>() < cfg.anchor {
                images[i].pixels.clone()
            } else {
                augment_with(&images[i], cfg.aug, cfg.crop_p, &mut rng)
            };
            // Canonicalized after augmenting, as every image the network sees.
            match cfg.model.canon {
                Canon::Off => view,
                canon => canonicalized(canon, &view, c, shape.height, shape.width),
            }
        };
        std::thread::scope(|scope| -> Result<(), Error> {
            let mut views = Prefetcher::new(scope, 2 * batch, &view);
            for step in 0..steps {
                let next = (step + 1 < steps).then_some(step + 1);
                let mut data = Vec::with_capacity(2 * batch * c * hw);
                for v in views.take(step, next) {
                    cnn::push_hwc(&mut data, &v, c, hw);
                }
                let x = Tensor::from_vec(data, (2 * batch, shape.height, shape.width, c), &device)
                    .map_err(candle_err)?;
                let loss = (|| {
                    let desc = model.forward(&x)?;
                    let z = normalize_rows(&model.project(&desc)?)?;
                    let loss = nt_xent(&z, cfg.temperature)?;
                    if cfg.koleo == 0.0 {
                        return Ok(loss);
                    }
                    loss + (koleo(&normalize_rows(&desc)?)? * cfg.koleo)?
                })()
                .map_err(candle_err)?;
                opt.set_learning_rate(cosine_lr(cfg.lr, epoch * steps + step, cfg.epochs * steps));
                opt.backward_step(&loss).map_err(candle_err)?;
                loss_sum += f64::from(loss.to_scalar::<f32>().map_err(candle_err)?);
                reporter.advance(batch as u64);
            }
            Ok(())
        })?;
        reporter.finish();
        let secs = t0.elapsed().as_secs_f64().max(1e-9);
        state.history.push(EpochStats {
            epoch: epoch + 1,
            loss: loss_sum / steps as f64,
            images_per_sec: (steps * batch) as f64 / secs,
        });
        state.epochs_done = epoch + 1;
        save(&varmap, &state, out)?;
    }
    if state.history.is_empty() {
        save(&varmap, &state, out)?;
    }
    Ok(state)
}

/// A model directory found in or added to a cache by [`train_cached`].
#[derive(Debug, Clone, PartialEq)]
pub struct CachedModel {
    /// The model directory (`config.json`, `model.safetensors`, `train_state.json`).
    pub dir: PathBuf,
    /// Whether this call trained it (false: it was already in the cache).
    pub trained: bool,
}

/// The cache key of a model: SHA-256 over the training set's content hash and the training
/// settings (architecture included), first 16 hex digits.
pub fn cache_key(set_hash: &str, cfg: &TrainConfig) -> String {
    let mut h = Sha256::new();
    h.update(set_hash.as_bytes());
    h.update([0]);
    h.update(serde_json::to_vec(cfg).expect("train config serializes"));
    hex::encode(h.finalize())[..16].to_string()
}

/// Returns the model trained with `cfg` on `images` (whose content hash is `set_hash`) from
/// `cache_dir/cnn-KEY` ([`cache_key`]), training it first if it is not there.
///
/// Training writes checkpoints into `cache_dir/cnn-KEY.partial` and renames that folder
/// when the last epoch is done, so the cache only ever holds finished models and an
/// interrupted run resumes from its last finished epoch.
pub fn train_cached(
    images: &[Image],
    set_hash: &str,
    cfg: &TrainConfig,
    cache_dir: &Path,
    reporter: &dyn Reporter,
) -> Result<CachedModel, Error> {
    let key = cache_key(set_hash, cfg);
    let dir = cache_dir.join(format!("cnn-{key}"));
    let done = |d: &Path| d.join(WEIGHTS_FILE).is_file() && d.join(CONFIG_FILE).is_file();
    if done(&dir) {
        return Ok(CachedModel {
            dir,
            trained: false,
        });
    }
    let partial = cache_dir.join(format!("cnn-{key}.partial"));
    train(images, cfg, &partial, true, reporter)?;
    match std::fs::rename(&partial, &dir) {
        Ok(()) => {}
        // Another run finished the same model first: use that one.
        Err(_) if done(&dir) => {
            let _ = std::fs::remove_dir_all(&partial);
        }
        Err(e) => {
            return Err(Error::Model(format!(
                "moving {} to {}: {e}",
                partial.display(),
                dir.display()
            )))
        }
    }
    Ok(CachedModel { dir, trained: true })
}

fn save(varmap: &VarMap, state: &TrainState, out: &Path) -> Result<(), Error> {
    let err =
        |p: &Path, e: &dyn std::fmt::Display| Error::Model(format!("writing {}: {e}", p.display()));
    // Write to temporary names, then rename: an interrupted save leaves the last checkpoint.
    let w = out.join(WEIGHTS_FILE);
    let tmp = out.join("model.safetensors.tmp");
    varmap.save(&tmp).map_err(|e| err(&tmp, &e))?;
    std::fs::rename(&tmp, &w).map_err(|e| err(&w, &e))?;
    let c = out.join(CONFIG_FILE);
    let text = serde_json::to_string_pretty(&state.config.model).expect("config serializes");
    std::fs::write(&c, text + "\n").map_err(|e| err(&c, &e))?;
    let s = out.join(STATE_FILE);
    let text = serde_json::to_string_pretty(state).expect("state serializes");
    std::fs::write(&s, text + "\n").map_err(|e| err(&s, &e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{embed_all, CnnEmbedder};
    use candle_core::Var;
    use memscan_io::NoReporter;

    fn phantoms(n: usize, size: usize) -> Vec<Image> {
        crate::sample::phantom_images(n, size)
    }

    fn tiny(seed: u64, epochs: usize) -> TrainConfig {
        TrainConfig {
            epochs,
            batch: 16,
            seed,
            lr: 3e-3,
            ..TrainConfig::new(Config {
                widths: vec![8, 16],
                dim: 32,
                ..Config::small(1, 16)
            })
        }
    }

    #[test]
    fn loss_decreases_and_augmented_views_end_up_closer() {
        let imgs = phantoms(48, 16);
        let dir = tempfile::tempdir().unwrap();
        let st = train(&imgs, &tiny(1, 30), dir.path(), false, &NoReporter).unwrap();
        let first = st.history[0].loss;
        let last = st.history.last().unwrap().loss;
        assert!(last < first * 0.9, "loss {first} → {last}");

        let e = CnnEmbedder::load(dir.path()).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(99);
        let views: Vec<Image> = imgs
            .iter()
            .map(|img| Image {
                pixels: augment(img, &mut rng),
                ..img.clone()
            })
            .collect();
        let a = embed_all(&e, &imgs, "t", &NoReporter).unwrap();
        let b = embed_all(&e, &views, "t", &NoReporter).unwrap();
        let sims = a.dot(&b.t());
        let n = imgs.len();
        let pos = (0..n).map(|i| sims[[i, i]]).sum::<f32>() / n as f32;
        let neg = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| sims[[i, j]])
            .sum::<f32>()
            / (n * (n - 1)) as f32;
        // The descriptor (before the training-only projection head) is not spread over the
        // sphere like the projection is, so the check is by rank: an augmented view must be
        // nearer its own image than the other images are, on average and for most images.
        assert!(pos > neg, "positive cos {pos}, negative cos {neg}");
        // Copies rotated by 7.5° (severity 0.5): most are nearest their own image.
        let copies: Vec<Image> = imgs
            .iter()
            .map(|img| Image {
                pixels: CopyTransform::Rotate.apply(&img.pixels, 16, 0.5, &mut rng),
                ..img.clone()
            })
            .collect();
        let c = embed_all(&e, &copies, "t", &NoReporter).unwrap();
        let sims = a.dot(&c.t());
        let found = (0..n)
            .filter(|&i| (0..n).all(|j| j == i || sims[[j, i]] < sims[[i, i]]))
            .count();
        assert!(
            found * 4 > 3 * n,
            "{found} of {n} rotated copies nearest their own image"
        );
    }

    #[test]
    fn seeded_and_resumable() {
        let imgs = phantoms(32, 16);
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let full = train(&imgs, &tiny(5, 2), d1.path(), false, &NoReporter).unwrap();
        train(&imgs, &tiny(5, 1), d2.path(), false, &NoReporter).unwrap();
        let resumed = train(&imgs, &tiny(5, 2), d2.path(), true, &NoReporter).unwrap();
        assert_eq!(resumed.epochs_done, 2);
        assert_eq!(full.history[0].loss, resumed.history[0].loss);
        // A different setting cannot resume silently.
        let mut other = tiny(6, 3);
        other.lr = 1e-2;
        assert!(train(&imgs, &other, d2.path(), true, &NoReporter).is_err());
    }

    #[test]
    fn same_seed_gives_identical_weights_and_another_seed_does_not() {
        let imgs = phantoms(24, 16);
        let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        for (d, seed) in dirs.iter().zip([4, 4, 5]) {
            train(&imgs, &tiny(seed, 1), d.path(), false, &NoReporter).unwrap();
        }
        let w = |i: usize| std::fs::read(dirs[i].path().join(WEIGHTS_FILE)).unwrap();
        assert_eq!(w(0), w(1));
        assert_ne!(w(0), w(2));
    }

    #[test]
    fn cached_training_reuses_the_model_for_the_same_set_and_settings() {
        let imgs = phantoms(16, 16);
        let cache = tempfile::tempdir().unwrap();
        let cfg = tiny(0, 1);
        let a = train_cached(&imgs, "set-a", &cfg, cache.path(), &NoReporter).unwrap();
        assert!(a.trained);
        assert!(a.dir.join(WEIGHTS_FILE).is_file());
        let again = train_cached(&imgs, "set-a", &cfg, cache.path(), &NoReporter).unwrap();
        assert_eq!((again.dir.clone(), again.trained), (a.dir.clone(), false));
        let other = train_cached(&imgs, "set-b", &cfg, cache.path(), &NoReporter).unwrap();
        assert!(other.trained);
        assert_ne!(other.dir, a.dir);
        // Another input canonicalization is another model: never reused silently.
        let mut off = cfg.clone();
        off.model.canon = Canon::Off;
        assert_ne!(cfg.model.canon, off.model.canon);
        assert_ne!(cache_key("set-a", &off), cache_key("set-a", &cfg));
        // Only finished models remain: no `.partial` folder is left behind.
        let names: Vec<String> = std::fs::read_dir(cache.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        // A config saved before `canon` existed (no such field) means `off`, and an `off`
        // config serializes without it, so such models keep their cache key.
        let json = serde_json::to_value(&off).unwrap();
        assert!(json["model"].get("canon").is_none());
        let back: TrainConfig = serde_json::from_value(json).unwrap();
        assert_eq!(back, off);
        assert!(names.iter().all(|n| !n.ends_with(".partial")));
        // Likewise `crop_p` and `koleo`: the defaults are not serialized and load back as
        // the defaults; any other value is part of the key.
        let json = serde_json::to_value(&cfg).unwrap();
        assert!(json.get("crop_p").is_none());
        assert!(json.get("koleo").is_none());
        assert_eq!(serde_json::from_value::<TrainConfig>(json).unwrap(), cfg);
        let mut crop = cfg.clone();
        crop.crop_p = 0.9;
        assert_ne!(cache_key("set-a", &crop), cache_key("set-a", &cfg));
        let mut spread = cfg.clone();
        spread.koleo = 1.0;
        assert_ne!(cache_key("set-a", &spread), cache_key("set-a", &cfg));
    }

    #[test]
    fn koleo_is_minus_mean_log_distance_to_the_nearest_non_positive_row() {
        // B = 2: rows 0/2 and 1/3 are positives. Unit vectors at 0°, 90°, 10° and 180°.
        let deg = [0.0f32, 90.0, 10.0, 180.0];
        let rows: Vec<f32> = deg
            .iter()
            .flat_map(|d| [d.to_radians().cos(), d.to_radians().sin()])
            .collect();
        let z = Tensor::from_vec(rows, (4, 2), &Device::Cpu).unwrap();
        let got = f64::from(koleo(&z).unwrap().to_scalar::<f32>().unwrap());
        // Chord length between unit vectors θ apart: 2 sin(θ / 2). Nearest non-positive
        // rows: 0 → 1 (90°; 2 is its positive), 1 → 2 (80°), 2 → 1 (80°), 3 → 2 (170°;
        // 1 is its positive, 0 is 180° away).
        let chord = |t: f64| 2.0 * (t.to_radians() / 2.0).sin();
        let want = -[90.0, 80.0, 80.0, 170.0]
            .iter()
            .map(|&t| chord(t).ln())
            .sum::<f64>()
            / 4.0;
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");

        // Identical non-positive rows: finite loss and gradient (ρ floored at 1e-4).
        let same =
            Var::from_tensor(&Tensor::new(&[[1f32, 0.0]; 4], &Device::Cpu).unwrap()).unwrap();
        let loss = koleo(&normalize_rows(same.as_tensor()).unwrap()).unwrap();
        let grads = loss.backward().unwrap();
        let g = grads.get(same.as_tensor()).unwrap().flatten_all().unwrap();
        assert!(g.to_vec1::<f32>().unwrap().iter().all(|x| x.is_finite()));
        assert!(loss.to_scalar::<f32>().unwrap().is_finite());
    }

    #[test]
    fn koleo_spreads_the_descriptors_of_different_images() {
        let imgs = phantoms(48, 16);
        let spread = |k: f64| {
            let dir = tempfile::tempdir().unwrap();
            let cfg = TrainConfig {
                koleo: k,
                ..tiny(4, 12)
            };
            train(&imgs, &cfg, dir.path(), false, &NoReporter).unwrap();
            let e = CnnEmbedder::load(dir.path()).unwrap();
            let z = embed_all(&e, &imgs, "", &NoReporter).unwrap();
            // Mean distance from each image to its nearest other training image.
            let n = z.nrows();
            (0..n)
                .map(|i| {
                    (0..n)
                        .filter(|&j| j != i)
                        .map(|j| {
                            let d = &z.row(i) - &z.row(j);
                            f64::from(d.dot(&d)).sqrt()
                        })
                        .fold(f64::INFINITY, f64::min)
                })
                .sum::<f64>()
                / n as f64
        };
        let (off, on) = (spread(0.0), spread(1.0));
        assert!(on > off * 1.2, "nearest-neighbour distance {off} → {on}");
    }

    #[test]
    fn learning_rate_warms_up_then_decays() {
        let lr: Vec<f64> = (0..100).map(|t| cosine_lr(1.0, t, 100)).collect();
        assert!(lr[0] < lr[4]);
        assert!((lr[5] - 1.0).abs() < 1e-9);
        assert!(lr.windows(2).skip(5).all(|w| w[1] <= w[0]));
        assert!((lr[99] - 0.05).abs() < 0.01);
        assert_eq!(default_epochs(2000), 96);
        assert_eq!(default_epochs(300), 640);
        assert_eq!(default_epochs(10), 1000);
        assert_eq!(default_epochs(100_000), 3);
    }

    #[test]
    fn augment_keeps_shape_and_range_for_rgb() {
        let img = Image {
            id: "x".into(),
            hash: String::new(),
            channels: 3,
            height: 8,
            width: 8,
            pixels: (0..192).map(|i| (i % 11) as f32 / 10.0).collect(),
        };
        let v = augment(&img, &mut ChaCha8Rng::seed_from_u64(0));
        assert_eq!(v.len(), 192);
        assert!(v.iter().all(|x| (0.0..=1.0).contains(x)));
    }
}
