//! Command-line flags (clap derive) and their conversion into [`AuditConfig`].

use crate::demo;
use crate::progress::BarReporter;
use crate::reproduce;
use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use memscan::{
    Audit, AuditConfig, Budget, CnnTrainConfig, EmbedConfig, EmbedderKind, GroupBy, IndexConfig,
    IndexKind, Views,
};
use memscan_io::{Axis, BadInputPolicy, IoConfig, SliceSelect};
use std::path::PathBuf;
use std::process::ExitCode;

/// Audit synthetic images for memorized training data.
///
/// memscan finds synthetic images that copy training images, counts them with calibrated
/// false-positive rates, and measures how well an attacker can tell who was in the training
/// set. Exit status: 0 ok, 1 a --fail-if budget was exceeded, 2 bad usage or unreadable input.
#[derive(Debug, Parser)]
#[command(name = "memscan", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Audit a synthetic image set against the training set it was generated from.
    Scan(ScanArgs),
    /// Train the `cnn` embedder (self-supervised, contrastive) on a folder of images and write
    /// the model directory for `scan --embedder cnn:DIR`.
    TrainEmbedder(TrainEmbedderArgs),
    /// Generate the built-in demo dataset (with known copies), audit it and check the result
    /// against the ground truth.
    Demo(DemoArgs),
    /// Embed a folder of images into a feature matrix (`OUT.npy` + `OUT.ids.txt`), the format
    /// `memscan scan --features` reads. Streams: memory is bounded by the batch, not the set.
    Embed(EmbedArgs),
    /// Score the detectors against datasets with known memorization (a suite TOML, e.g.
    /// datasets/suites/quick.toml); writes results.csv and results.md.
    Bench(BenchArgs),
    /// Recompute published results (Meehan et al.'s two-moons C_T curve, C_T saturation, the
    /// ratio test's identity case, the SSCD threshold) and compare with the published values;
    /// writes OUT/NAME.md and exits with 1 if a check fails.
    Reproduce(ReproduceArgs),
}

#[derive(Debug, Args)]
pub struct ReproduceArgs {
    /// The experiment (`all` runs each).
    #[arg(value_enum)]
    pub name: reproduce::Experiment,
    /// Output directory for the NAME.md tables.
    #[arg(long, default_value = "reports/reproduce")]
    pub out: PathBuf,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The suite file.
    pub suite: PathBuf,
    /// Output directory (default: reports/bench/NAME, NAME = the suite's name).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Seed of every random choice (default: the suite's seed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Keep every cell's .npy batches and truth.csv under OUT/data.
    #[arg(long)]
    pub keep_data: bool,
    /// Run these embedders instead of the suite's `embedders` (repeatable): `pixel`, `cnn`
    /// (trained once per dataset on its training images), `cnn:DIR` or `efficientnet-lite0`.
    #[arg(long = "embedder", value_name = "pixel|cnn|cnn:DIR|efficientnet-lite0")]
    pub embedders: Vec<String>,
    /// Cache folder (as `scan --cache-dir`): `cnn` models trained by the bench (DIR/cnn-models)
    /// and the embeddings of each dataset's training and holdout images (default: a
    /// temporary folder).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
}

/// An `--embedder` value (see [`EmbedderArg::from_str`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmbedderArg {
    /// `pixel`: raw pixels; distance = RMS pixel difference (Gu et al.).
    Pixel,
    /// `cnn` (trained on --train with --train-embedder) or `cnn:DIR` (a model written by
    /// `memscan train-embedder --out DIR`).
    Cnn(Option<PathBuf>),
    /// `efficientnet-lite0[:PATH]`: ImageNet-pretrained EfficientNet-Lite0 features.
    EfficientnetLite0(Option<PathBuf>),
    /// `safetensors:PATH`: a standard backbone (`--arch`) from a converted weights file.
    Safetensors(PathBuf),
}

impl std::str::FromStr for EmbedderArg {
    type Err = String;

    /// `pixel`, `cnn`, `cnn:DIR`, `efficientnet-lite0[:PATH]` or `safetensors:PATH`. New
    /// embedders add a name (or a `name:ARG` prefix) here.
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (s, None),
        };
        match (name, arg) {
            ("pixel", None) => Ok(EmbedderArg::Pixel),
            ("cnn", None) => Ok(EmbedderArg::Cnn(None)),
            ("efficientnet-lite0", None) => Ok(EmbedderArg::EfficientnetLite0(None)),
            (_, Some("")) => Err(format!("`{name}:` needs a path after the colon")),
            ("cnn", Some(dir)) => Ok(EmbedderArg::Cnn(Some(dir.into()))),
            ("efficientnet-lite0", Some(p)) => Ok(EmbedderArg::EfficientnetLite0(Some(p.into()))),
            ("safetensors", Some(p)) => Ok(EmbedderArg::Safetensors(p.into())),
            ("safetensors", None) => Err("safetensors needs a file: safetensors:PATH".into()),
            _ => Err(format!(
                "unknown embedder `{s}`; expected `pixel`, `cnn` (with --train-embedder), \
                 `cnn:DIR`, `efficientnet-lite0[:PATH]` or `safetensors:PATH` with --arch"
            )),
        }
    }
}

/// Standard backbone architectures for `--embedder safetensors:PATH`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ArchArg {
    /// torchvision ResNet-18 (512-d pooled features).
    Resnet18,
    /// torchvision ResNet-50 (2048-d pooled features).
    Resnet50,
    /// DINOv2 ViT-S/14 from torch.hub (384-d mean patch token).
    #[value(name = "dinov2-s")]
    Dinov2S,
}

/// Input canonicalization of the `cnn` (see `memscan_embed::canon`).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CanonArg {
    Off,
    Moments,
    Windowed,
    Axes,
}

/// Views of the training images (see `memscan::config::Views`).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ViewsArg {
    /// Crops for the cnn embedder up to 10,000 training images, else none.
    Auto,
    /// Each training image once.
    None,
    /// Each training image, 50 crops of it and its mirror image.
    Crops,
}

/// Nearest-neighbour search methods.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum IndexArg {
    /// Exact search by blocked matrix products.
    Exact,
    /// HNSW graph (hnsw_rs) with exact re-ranking of the candidates.
    Hnsw,
    /// Exact below the measured break-even size, HNSW above.
    Auto,
}

/// Options shared by every command that runs an audit.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Side length images are resized to (pixels). Default: 64 for `pixel`, 224 for the
    /// pretrained networks.
    #[arg(long, value_parser = clap::value_parser!(u32).range(4..=1024))]
    pub size: Option<u32>,
    /// Channels images are converted to (1 = gray, 3 = RGB).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=3))]
    pub channels: u8,
    /// Feature space in which distances are measured: `pixel`; `cnn:DIR`, a model trained by
    /// `memscan train-embedder --out DIR` (its --size and --channels must match); `cnn` with
    /// --train-embedder; `efficientnet-lite0[:PATH]` (ImageNet features; default weights:
    /// datasets/cache/weights/efficientnet-lite0.safetensors, written by `cargo xtask weights
    /// fetch efficientnet-lite0`); or `safetensors:PATH` with `--arch`.
    #[arg(long, default_value = "pixel", value_name = "NAME[:PATH]")]
    pub embedder: EmbedderArg,
    /// Architecture of the weights given by `--embedder safetensors:PATH`.
    #[arg(long, value_enum)]
    pub arch: Option<ArchArg>,
    /// With `--embedder cnn`: first train the cnn on the training images (self-supervised),
    /// or reuse the model cached for the same training set and settings.
    #[arg(long)]
    pub train_embedder: bool,
    /// --train-embedder: passes over the training images (default: about 192,000 image
    /// presentations, 3 to 5 minutes on 2 cores; 3 to 1,000 epochs).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub embedder_epochs: Option<u64>,
    /// --train-embedder: images per training step.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(2..))]
    pub embedder_batch: Option<u64>,
    /// Nearest-neighbour search.
    #[arg(long, value_enum, default_value_t = IndexArg::Exact)]
    pub index: IndexArg,
    /// Views of each training image a synthetic (and holdout) image is compared with:
    /// `crops` adds 50 crops (two sides on a 5 × 5 grid) and the mirror image and takes the
    /// smallest distance, which finds crop-resized and mirrored copies; `auto` (default)
    /// uses them for the cnn embedder up to 10,000 training images. The privacy metrics
    /// (AuthPct, mDCR, identifiability, MIAs) always use one embedding per image.
    #[arg(long, value_enum, default_value_t = ViewsArg::Auto)]
    pub views: ViewsArg,
    /// HNSW: links per node, 2..=255 (default: 16 below 250,000 training images, 24 from
    /// there, where 16 was measured to miss planted near-copies).
    #[arg(long = "hnsw-m")]
    pub hnsw_m: Option<usize>,
    /// HNSW: candidate list width while building.
    #[arg(long = "ef-construction", default_value_t = 100)]
    pub ef_construction: usize,
    /// HNSW: candidate list width while searching (default: 64 below 150,000 training
    /// images, 128 below 500,000, 192 from there; each step where the smaller width was
    /// measured to miss planted near-copies).
    #[arg(long = "ef-search")]
    pub ef_search: Option<usize>,
    /// HNSW: build with parallel insertion (faster, but the graph then depends on thread
    /// timing; the default sequential build is reproducible).
    #[arg(long = "hnsw-parallel")]
    pub hnsw_parallel: bool,
    /// HNSW: check recall@1 and recall@k on N synthetic queries against exact search
    /// (reported under `index.recall`; a warning below 0.99).
    #[arg(long = "verify-recall", value_name = "N", default_value_t = 0)]
    pub verify_recall: usize,
    /// Target false-positive rate of the calibrated copy test (drives the `copy` column and
    /// the verdict). 0.01 and 0.001 are always reported as well.
    #[arg(long, default_value_t = 0.01)]
    pub fpr: f64,
    /// Also report the rate at a fixed cosine threshold (copy ⇔ cosine > THRESHOLD; 0.5 as
    /// Somepalli et al., 0.75 as SSCD).
    #[arg(long)]
    pub threshold: Option<f64>,
    /// Exit with status 1 if a metric exceeds a budget, e.g. 'copy_rate@fpr=0.001>0.01' or
    /// 'mia.distance.auc>0.6'. Repeatable.
    #[arg(long = "fail-if", value_name = "EXPR")]
    pub fail_if: Vec<String>,
    /// Skip unreadable input files (listed under `skipped` in summary.json) instead of failing.
    #[arg(long)]
    pub skip_bad: bool,
    /// Bootstrap resamples for the MIA confidence intervals (0 = none).
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
    /// Nearest synthetic images first searched per query by the Monte Carlo attack (queries
    /// whose K nearest are all within ε are searched again with 4K, 16K…).
    #[arg(long = "mc-k", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    pub mc_k: u64,
    /// k-means cells for C_T (0 = automatic).
    #[arg(long = "ct-cells", default_value_t = 0)]
    pub ct_cells: usize,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Leave every pixel of real images out of the outputs: report.html then shows only the
    /// training images' ids and the thumbnails of synthetic images that are not flagged as
    /// copies (a flagged copy shows a training image, so it is withheld too).
    #[arg(long)]
    pub no_images: bool,
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
    /// Cache of embeddings (of the real sets), HNSW graphs (of the training set) and, under
    /// DIR/cnn-models, models trained by --train-embedder, keyed by content hashes. Default:
    /// $XDG_CACHE_HOME/memscan, else ~/.cache/memscan.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Neither read nor write the cache (a --train-embedder model is then trained into a
    /// temporary folder and not kept).
    #[arg(long, conflicts_with = "cache_dir")]
    pub no_cache: bool,
    #[command(flatten)]
    pub medical: MedicalArgs,
}

/// `$XDG_CACHE_HOME/memscan` (an absolute `XDG_CACHE_HOME`), else `$HOME/.cache/memscan`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    let home = || {
        std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| PathBuf::from(h).join(".cache"))
    };
    xdg.or_else(home).map(|d| d.join("memscan"))
}

// --- medical inputs (DICOM / NIfTI) ------------------------------------------------------

/// Options for DICOM and NIfTI inputs.
#[derive(Debug, Args)]
pub struct MedicalArgs {
    /// Intensity window CENTER,WIDTH for DICOM/NIfTI gray images in rescaled units (HU for
    /// CT), e.g. `40,80` (brain) or `40,400` (soft tissue). Default: CT soft tissue, other
    /// DICOM and NIfTI percentile scaling.
    #[arg(long, value_name = "C,W", value_parser = parse_window, allow_hyphen_values = true)]
    pub window: Option<(f64, f64)>,
    /// Axis NIfTI volumes are sliced along.
    #[arg(long, value_enum, default_value_t = AxisArg::Axial)]
    pub axis: AxisArg,
    /// Keep only NIfTI slices A..B (A inclusive, B exclusive, 0-based; B is clamped).
    #[arg(long, value_name = "A..B", value_parser = parse_slices)]
    pub slices: Option<std::ops::Range<usize>>,
    /// Drop pure-background NIfTI slices (maximum equals the volume's minimum).
    #[arg(long)]
    pub skip_empty_slices: bool,
}

/// NIfTI slicing axes.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AxisArg {
    Axial,
    Coronal,
    Sagittal,
}

/// `--group-by` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GroupByArg {
    /// DICOM PatientID.
    Patient,
    /// DICOM StudyInstanceUID.
    Study,
    /// DICOM SeriesInstanceUID.
    Series,
    /// NIfTI file (and multi-frame DICOM file).
    Volume,
    /// No groups.
    None,
}

fn parse_window(s: &str) -> Result<(f64, f64), String> {
    let (c, w) = s
        .split_once(',')
        .ok_or_else(|| format!("expected CENTER,WIDTH (e.g. 40,400), got `{s}`"))?;
    let num = |v: &str, what: &str| {
        v.trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(|| format!("the window {what} `{v}` is not a finite number"))
    };
    let (c, w) = (num(c, "center")?, num(w, "width")?);
    if w <= 0.0 {
        return Err(format!("the window width must be positive, got {w}"));
    }
    Ok((c, w))
}

fn parse_slices(s: &str) -> Result<std::ops::Range<usize>, String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("expected A..B (e.g. 10..50), got `{s}`"))?;
    let num = |v: &str| {
        v.trim()
            .parse::<usize>()
            .map_err(|_| format!("`{v}` is not a slice index (a non-negative integer)"))
    };
    let (a, b) = (num(a)?, num(b)?);
    if a >= b {
        return Err(format!(
            "the slice range {a}..{b} is empty (A must be less than B)"
        ));
    }
    Ok(a..b)
}

impl MedicalArgs {
    fn apply(&self, io: &mut IoConfig) {
        io.window = self.window;
        io.axis = match self.axis {
            AxisArg::Axial => Axis::Axial,
            AxisArg::Coronal => Axis::Coronal,
            AxisArg::Sagittal => Axis::Sagittal,
        };
        io.slices = (self.slices.is_some() || self.skip_empty_slices).then(|| SliceSelect {
            range: self.slices.clone(),
            skip_empty: self.skip_empty_slices,
        });
    }
}

impl GroupByArg {
    fn to_group_by(self) -> GroupBy {
        match self {
            GroupByArg::Patient => GroupBy::Patient,
            GroupByArg::Study => GroupBy::Study,
            GroupByArg::Series => GroupBy::Series,
            GroupByArg::Volume => GroupBy::Volume,
            GroupByArg::None => GroupBy::None,
        }
    }
}

// --- end medical inputs ------------------------------------------------------------------

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// The roles are feature matrices: `(N, D)` float32/float64 `.npy` files (optional
    /// `NAME.ids.txt` beside each, one id per line) instead of images, e.g. DINOv2/SSCD/CLIP
    /// features computed elsewhere or written by `memscan embed`. Image options (--size,
    /// --channels, --embedder, medical flags) are then unused.
    #[arg(long)]
    pub features: bool,
    /// With --features: keep the features as given instead of L2-normalizing every row
    /// (distances are reported in the space searched).
    #[arg(long, requires = "features")]
    pub no_normalize: bool,
    /// The generator's training images (folder or .npy/.npz file).
    #[arg(long)]
    pub train: PathBuf,
    /// The generated images under audit.
    #[arg(long)]
    pub synthetic: PathBuf,
    /// Real images the generator never saw; calibrates the thresholds and is needed for the
    /// copy rate and the membership-inference attack.
    #[arg(long)]
    pub holdout: Option<PathBuf>,
    /// A second real set, disjoint from holdout, for the calibrated and density-ratio attacks
    /// (default: a seeded half of the holdout).
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// CSV `path,group` mapping images to patients (paths relative to the CSV's folder); adds
    /// per-patient results and a train/holdout patient-overlap check.
    #[arg(long)]
    pub groups: Option<PathBuf>,
    /// Group images into patients by this metadata attribute (default: patient when the
    /// train/holdout DICOM metadata has PatientIDs, else none); `--groups` overrides.
    #[arg(long, value_enum)]
    pub group_by: Option<GroupByArg>,
    /// Output directory for summary.json, synthetic.csv, train.csv, mia_roc.csv, summary.md,
    /// report.html.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub audit: AuditArgs,
}

#[derive(Debug, Args)]
pub struct TrainEmbedderArgs {
    /// Training images (folder or .npy/.npz file), usually the generator's training set.
    #[arg(long)]
    pub images: PathBuf,
    /// Model directory to write (config.json, model.safetensors, train_state.json).
    #[arg(long)]
    pub out: PathBuf,
    /// Passes over the images (default: about 192,000 image presentations, 3 to 5 minutes on
    /// 2 cores; 3 to 1,000 epochs).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub epochs: Option<u64>,
    /// Images per step (each gives two augmented views).
    #[arg(long, value_parser = clap::value_parser!(u64).range(2..))]
    pub batch: Option<u64>,
    /// Seed of the initialization, shuffling and augmentations.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Side length images are resized to (scan with the same --size).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(4..=1024))]
    pub size: u32,
    /// Channels images are converted to (1 = gray, 3 = RGB).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=3))]
    pub channels: u8,
    /// NT-Xent temperature (default: the trainer's).
    #[arg(long)]
    pub temperature: Option<f64>,
    /// AdamW learning rate (default: the trainer's).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Continue after the last finished epoch saved in --out.
    #[arg(long)]
    pub resume: bool,
    /// Canonicalization of every input before the network: `axes` (default: centroid
    /// centred, radius of gyration to a quarter of the side, principal axis turned to the
    /// nearer image axis, for objects on a dark background such as scans), `windowed` (the
    /// same without the rotation), `moments` (nor the window) or `off` (natural photos).
    #[arg(long, value_enum, default_value_t = CanonArg::Axes)]
    pub canon: CanonArg,
    /// Skip unreadable input files instead of failing.
    #[arg(long)]
    pub skip_bad: bool,
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs `memscan train-embedder`.
pub fn train_embedder(a: &TrainEmbedderArgs) -> Result<ExitCode> {
    use memscan_embed::{cnn, train};
    anyhow::ensure!(
        a.channels == 1 || a.channels == 3,
        "--channels must be 1 or 3"
    );
    let reporter = BarReporter::new(a.quiet);
    let io = IoConfig {
        size: a.size,
        channels: a.channels,
        on_bad_input: if a.skip_bad {
            BadInputPolicy::Skip
        } else {
            BadInputPolicy::Fail
        },
        ..IoConfig::default()
    };
    let set = memscan_io::load(&a.images, &io, &reporter)
        .with_context(|| format!("loading training images {}", a.images.display()))?;
    let mut cfg =
        train::TrainConfig::new(cnn::Config::small(usize::from(a.channels), a.size as usize));
    cfg.model.canon = match a.canon {
        CanonArg::Off => memscan_embed::canon::Canon::Off,
        CanonArg::Moments => memscan_embed::canon::Canon::Moments,
        CanonArg::Windowed => memscan_embed::canon::Canon::Windowed,
        CanonArg::Axes => memscan_embed::canon::Canon::Axes,
    };
    cfg.seed = a.seed;
    cfg.epochs = a
        .epochs
        .map_or_else(|| train::default_epochs(set.images.len()), |e| e as usize);
    cfg.batch = a.batch.map_or(cfg.batch, |b| b as usize);
    cfg.temperature = a.temperature.unwrap_or(cfg.temperature);
    cfg.lr = a.lr.unwrap_or(cfg.lr);
    let t0 = std::time::Instant::now();
    let state = train::train(&set.images, &cfg, &a.out, a.resume, &reporter)
        .with_context(|| format!("training the cnn embedder into {}", a.out.display()))?;
    for e in &state.history {
        eprintln!(
            "epoch {}/{}: loss {:.4}, {:.1} images/s",
            e.epoch, cfg.epochs, e.loss, e.images_per_sec
        );
    }
    println!(
        "trained on {} images in {:.1} s; model written to {}; scan with --embedder cnn:{} \
         --size {} --channels {}",
        set.images.len(),
        t0.elapsed().as_secs_f64(),
        a.out.display(),
        a.out.display(),
        a.size,
        a.channels
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// The images: a folder (searched recursively, sorted) or a single file.
    #[arg(long)]
    pub images: PathBuf,
    /// The feature matrix to write (`.npy`); the ids go to `NAME.ids.txt` beside it.
    #[arg(long)]
    pub out: PathBuf,
    /// Feature space: `pixel`, `cnn:DIR` (a model trained by `memscan train-embedder --out
    /// DIR`; its --size and --channels must match), `efficientnet-lite0[:PATH]` or
    /// `safetensors:PATH` with `--arch` (as for `scan`).
    #[arg(long, value_name = "NAME[:PATH]", default_value = "pixel")]
    pub embedder: EmbedderArg,
    /// Architecture of the weights given by `--embedder safetensors:PATH`.
    #[arg(long, value_enum)]
    pub arch: Option<ArchArg>,
    /// Side length images are resized to (pixels). Default: 64 for `pixel`, 224 for the
    /// pretrained networks.
    #[arg(long, value_parser = clap::value_parser!(u32).range(4..=1024))]
    pub size: Option<u32>,
    /// Channels images are converted to (1 = gray, 3 = RGB).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=3))]
    pub channels: u8,
    /// Files decoded and embedded per batch (bounds memory: one batch of decoded images).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_files: u64,
    /// Skip unreadable input files (with a warning) instead of failing.
    #[arg(long)]
    pub skip_bad: bool,
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub medical: MedicalArgs,
}

impl EmbedArgs {
    /// The decoding configuration these flags describe.
    pub fn io_config(&self) -> Result<IoConfig> {
        anyhow::ensure!(
            self.channels == 1 || self.channels == 3,
            "--channels must be 1 or 3"
        );
        let kind = embed_config(&self.embedder, self.arch)?.kind;
        let mut io = IoConfig {
            size: self.size.unwrap_or(kind.default_size()),
            channels: self.channels,
            on_bad_input: if self.skip_bad {
                BadInputPolicy::Skip
            } else {
                BadInputPolicy::Fail
            },
            ..IoConfig::default()
        };
        self.medical.apply(&mut io);
        Ok(io)
    }
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Output directory (the generated images go to OUT/data).
    #[arg(long, default_value = "reports/demo")]
    pub out: PathBuf,
    #[command(flatten)]
    pub audit: AuditArgs,
}

/// The embedder `--embedder NAME[:PATH]` and `--arch` describe (`--embedder cnn` without a
/// model directory needs --train-embedder: see [`audit_embed_config`]).
pub fn embed_config(embedder: &EmbedderArg, arch: Option<ArchArg>) -> Result<EmbedConfig> {
    let arch = arch.map(|a| match a {
        ArchArg::Resnet18 => memscan_embed::Arch::Resnet18,
        ArchArg::Resnet50 => memscan_embed::Arch::Resnet50,
        ArchArg::Dinov2S => memscan_embed::Arch::Dinov2S,
    });
    match (embedder, arch) {
        (EmbedderArg::Safetensors(_), None) => {
            anyhow::bail!("--embedder safetensors:PATH needs --arch resnet18|resnet50|dinov2-s")
        }
        (EmbedderArg::Safetensors(_), Some(_)) | (_, None) => {}
        (_, Some(_)) => anyhow::bail!("--arch only applies to --embedder safetensors:PATH"),
    }
    let (kind, weights) = match embedder {
        EmbedderArg::Pixel => (EmbedderKind::Pixel, None),
        EmbedderArg::Cnn(Some(dir)) => (EmbedderKind::Cnn { dir: dir.clone() }, None),
        EmbedderArg::Cnn(None) => anyhow::bail!(
            "`--embedder cnn` needs a model: add --train-embedder to train one on --train, or \
             pass --embedder cnn:DIR (from `memscan train-embedder --out DIR`)"
        ),
        EmbedderArg::EfficientnetLite0(p) => (
            EmbedderKind::EfficientnetLite0,
            Some(p.clone().unwrap_or_else(memscan::default_weights)),
        ),
        EmbedderArg::Safetensors(p) => (EmbedderKind::Safetensors, Some(p.clone())),
    };
    Ok(EmbedConfig {
        kind,
        weights,
        arch,
    })
}

/// The embedder of an audit: [`embed_config`], or with `--train-embedder` a `cnn` trained on
/// the training images.
fn audit_embed_config(a: &AuditArgs) -> Result<EmbedConfig> {
    let train_only = a.embedder_epochs.is_some() || a.embedder_batch.is_some();
    anyhow::ensure!(
        a.train_embedder || !train_only,
        "--embedder-epochs and --embedder-batch only apply with --train-embedder"
    );
    match (&a.embedder, a.train_embedder) {
        (EmbedderArg::Cnn(None), true) => {
            anyhow::ensure!(
                a.arch.is_none(),
                "--arch only applies to --embedder safetensors:PATH"
            );
            let mut t = CnnTrainConfig::new(None);
            t.epochs = a.embedder_epochs.map(|e| e as usize);
            t.batch = a.embedder_batch.map_or(t.batch, |b| b as usize);
            t.seed = a.seed;
            Ok(EmbedConfig {
                kind: EmbedderKind::CnnTrain(t),
                ..EmbedConfig::default()
            })
        }
        (_, true) => anyhow::bail!("--train-embedder goes with `--embedder cnn`"),
        (e, false) => embed_config(e, a.arch),
    }
}

/// Converts flags into a validated [`AuditConfig`].
pub fn audit_config(
    train: PathBuf,
    synthetic: PathBuf,
    holdout: Option<PathBuf>,
    a: &AuditArgs,
) -> Result<AuditConfig> {
    let budgets: Vec<Budget> = a
        .fail_if
        .iter()
        .map(|s| s.parse())
        .collect::<Result<_, memscan::Error>>()?;
    let extra: Vec<f64> = budgets.iter().filter_map(Budget::fpr).collect();
    if let Some(t) = a.threshold {
        anyhow::ensure!(
            (-1.0..=1.0).contains(&t),
            "--threshold is a cosine in [-1, 1], got {t}"
        );
    }
    let mut cfg = AuditConfig::new(train, synthetic, holdout);
    let embed = audit_embed_config(a)?;
    let kind = &embed.kind;
    cfg.io = IoConfig {
        size: a.size.unwrap_or(kind.default_size()),
        channels: a.channels,
        on_bad_input: if a.skip_bad {
            BadInputPolicy::Skip
        } else {
            BadInputPolicy::Fail
        },
        ..IoConfig::default()
    };
    a.medical.apply(&mut cfg.io);
    anyhow::ensure!(
        a.channels == 1 || a.channels == 3,
        "--channels must be 1 or 3"
    );
    cfg.embed = embed;
    cfg.index = IndexConfig {
        kind: match a.index {
            IndexArg::Exact => IndexKind::Exact,
            IndexArg::Hnsw => IndexKind::Hnsw,
            IndexArg::Auto => IndexKind::Auto,
        },
        views: match a.views {
            ViewsArg::Auto => Views::Auto,
            ViewsArg::None => Views::None,
            ViewsArg::Crops => Views::Crops,
        },
        hnsw: memscan_index::HnswConfig {
            m: a.hnsw_m.unwrap_or(memscan_index::HnswConfig::default().m),
            ef_construction: a.ef_construction,
            ef_search: a.ef_search.unwrap_or(64),
            deterministic: !a.hnsw_parallel,
            ..Default::default()
        },
        ef_search_by_size: a.ef_search.is_none(),
        m_by_size: a.hnsw_m.is_none(),
        verify_recall: a.verify_recall,
    };
    cfg.index
        .hnsw
        .validate()
        .map_err(|e| anyhow::anyhow!("invalid HNSW parameters: {e}"))?;
    cfg.metrics = cfg.metrics.with_fprs(a.fpr, &extra)?;
    cfg.metrics.cosine_threshold = a.threshold;
    cfg.metrics.bootstrap = a.bootstrap;
    cfg.metrics.monte_carlo_k = a.mc_k as usize;
    cfg.metrics.ct_cells = a.ct_cells;
    cfg.budgets = budgets;
    cfg.seed = a.seed;
    cfg.no_images = a.no_images;
    cfg.cache = if a.no_cache {
        None
    } else {
        a.cache_dir
            .clone()
            .or_else(default_cache_dir)
            .map(|dir| memscan::cache::CacheConfig { dir })
    };
    Ok(cfg)
}

/// Runs an audit, writes its outputs and returns the exit code (1 if a budget was exceeded).
pub fn run_audit(
    cfg: &AuditConfig,
    out: &std::path::Path,
    quiet: bool,
) -> Result<(Audit, ExitCode)> {
    memscan_report::prepare_dir(out)
        .with_context(|| format!("cannot write reports to {}", out.display()))?;
    let reporter = BarReporter::new(quiet);
    let audit = Audit::run(cfg, &reporter)?;
    memscan_report::write_all(out, &audit.output)
        .with_context(|| format!("writing reports to {}", out.display()))?;
    let v = &audit.output.summary.verdict;
    let code = if v.budget_exceeded {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    };
    Ok((audit, code))
}

/// Prints the verdict and budget lines for a finished audit.
pub fn print_verdict(audit: &Audit, out: &std::path::Path) {
    let s = &audit.output.summary;
    println!("verdict: {} — {}", s.verdict.status, s.verdict.message);
    for b in &s.budgets {
        println!(
            "budget {}: value {} → {}",
            b.expression,
            b.value,
            if b.exceeded { "EXCEEDED" } else { "ok" }
        );
    }
    println!("reports written to {}", out.display());
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Scan(args) => {
            let mut cfg = audit_config(args.train, args.synthetic, args.holdout, &args.audit)?;
            if args.features {
                cfg.features = Some(memscan::FeaturesConfig {
                    normalize: !args.no_normalize,
                });
            }
            cfg.reference = args.reference;
            cfg.groups = args.groups;
            cfg.group_by = args.group_by.map(GroupByArg::to_group_by);
            let (audit, code) = run_audit(&cfg, &args.out, args.audit.quiet)?;
            print_verdict(&audit, &args.out);
            Ok(code)
        }
        Command::TrainEmbedder(args) => train_embedder(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Embed(args) => crate::embed::run(&args),
        Command::Bench(args) => {
            let mut suite = memscan::bench::Suite::load(&args.suite)?;
            if !args.embedders.is_empty() {
                suite.embedders = args
                    .embedders
                    .iter()
                    .map(|e| memscan::bench::parse_embedder(e, std::path::Path::new(".")))
                    .collect::<Result<_, _>>()?;
            }
            let out = args
                .out
                .unwrap_or_else(|| PathBuf::from("reports/bench").join(&suite.name));
            let opts = memscan::bench::BenchOptions {
                seed: args.seed,
                keep_data: args.keep_data.then(|| out.join("data")),
                cache: args.cache_dir,
            };
            let report = memscan::bench::run(&suite, &opts, &BarReporter::new(args.quiet))?;
            report.write(&out)?;
            print!("{}", report.markdown());
            println!("results written to {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Reproduce(args) => Ok(if reproduce::run(args.name, &args.out, args.seed)? {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        }),
    }
}
