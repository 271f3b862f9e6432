//! Validated configuration of one audit ([`AuditConfig`]), recorded verbatim in
//! `summary.json` under `config`.

use crate::budget::Budget;
use crate::error::Error;
use crate::groups::GroupBy;
use memscan_io::IoConfig;
use serde::Serialize;
use std::path::PathBuf;

/// Which embedder maps images to vectors.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EmbedderKind {
    /// Raw pixels, Gu et al.'s RMS distance.
    #[default]
    Pixel,
    /// A trained `cnn` model directory (`config.json` + `model.safetensors`).
    Cnn { dir: PathBuf },
    /// A `cnn` trained on the training set first (`--train-embedder`), cached by the
    /// training set's content hash and the training settings.
    CnnTrain(CnnTrainConfig),
    /// EfficientNet-Lite0 ImageNet features (weights: [`EmbedConfig::weights`], default
    /// [`default_weights`]).
    EfficientnetLite0,
    /// A standard backbone ([`EmbedConfig::arch`]) from the safetensors file
    /// [`EmbedConfig::weights`].
    Safetensors,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct EmbedConfig {
    pub kind: EmbedderKind,
    /// Weights file of a pretrained embedder (`None`: the embedder's default location).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weights: Option<PathBuf>,
    /// Architecture of a `safetensors` embedder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arch: Option<memscan_embed::Arch>,
}

impl EmbedderKind {
    /// The short name used on the command line, in summaries and bench tables.
    pub fn name(&self) -> &'static str {
        match self {
            EmbedderKind::Pixel => "pixel",
            EmbedderKind::Cnn { .. } | EmbedderKind::CnnTrain(_) => "cnn",
            EmbedderKind::EfficientnetLite0 => "efficientnet-lite0",
            EmbedderKind::Safetensors => "safetensors",
        }
    }

    /// Side length images are loaded at when the user does not say: the pretrained networks'
    /// 224, 64 for pixels and the cnn (whose saved model must match it).
    pub fn default_size(&self) -> u32 {
        match self {
            EmbedderKind::Pixel | EmbedderKind::Cnn { .. } | EmbedderKind::CnnTrain(_) => 64,
            EmbedderKind::EfficientnetLite0 | EmbedderKind::Safetensors => 224,
        }
    }
}

/// Where `cargo xtask weights fetch efficientnet-lite0` writes the weights, relative to the
/// memscan repository.
pub const EFFICIENTNET_LITE0_WEIGHTS: &str =
    "datasets/cache/weights/efficientnet-lite0.safetensors";

/// The default efficientnet-lite0 weights file: [`EFFICIENTNET_LITE0_WEIGHTS`] under the
/// current directory if it is there, else under the repository memscan was built from.
pub fn default_weights() -> PathBuf {
    let here = PathBuf::from(EFFICIENTNET_LITE0_WEIGHTS);
    if here.is_file() {
        return here;
    }
    let built = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(EFFICIENTNET_LITE0_WEIGHTS);
    if built.is_file() {
        built
    } else {
        here
    }
}

/// How `--embedder cnn --train-embedder` trains its model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CnnTrainConfig {
    /// Folder of cached models (one sub-folder per training set × settings). `None`: the
    /// `cnn-models` folder of [`AuditConfig::cache`], or, without a cache (`--no-cache`), a
    /// temporary folder that is removed after the audit.
    pub cache_dir: Option<PathBuf>,
    /// Passes over the training images (`None`: [`memscan_embed::train::default_epochs`]).
    pub epochs: Option<usize>,
    /// Images per step (each gives two augmented views).
    pub batch: usize,
    /// Seed of the initialization, shuffling and augmentations.
    pub seed: u64,
}

impl CnnTrainConfig {
    /// Defaults ([`memscan_embed::train::TrainConfig::new`]) with models cached in `cache_dir`
    /// (see [`CnnTrainConfig::cache_dir`]).
    pub fn new(cache_dir: Option<PathBuf>) -> Self {
        let d = memscan_embed::train::TrainConfig::new(memscan_embed::cnn::Config::small(1, 64));
        CnnTrainConfig {
            cache_dir,
            epochs: None,
            batch: d.batch,
            seed: d.seed,
        }
    }
}

/// Which nearest-neighbour search is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IndexKind {
    /// Exact search by blocked matrix products.
    #[default]
    Exact,
    /// Approximate search (hnsw_rs) with exact re-ranking of the candidates.
    Hnsw,
    /// Exact below [`memscan_index::auto_threshold`] training images (per build mode), HNSW above.
    Auto,
}

/// Which views of every training image the copy search compares with
/// (`memscan_embed::views`, `memscan_index::ViewIndex`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Views {
    /// `crops` for the `cnn` embedder up to [`VIEWS_AUTO_MAX_TRAIN`] training images, else
    /// `none`.
    #[default]
    Auto,
    /// Each training image once.
    None,
    /// Each training image, its [`memscan_embed::views::CROP_VIEWS`] crops and its mirror
    /// image ([`memscan_embed::views::view`]); the distance to a training image is the
    /// smallest over them.
    Crops,
}

/// Largest training set for which `--views auto` adds views: 52 rows per training image make
/// the index 52 times larger and the training set takes 52 times as long to embed.
pub const VIEWS_AUTO_MAX_TRAIN: usize = 10_000;

impl Views {
    /// Whether crop views are used for `n_train` training images embedded by `embedder`.
    pub fn crops(self, embedder: &EmbedderKind, n_train: usize) -> bool {
        match self {
            Views::None => false,
            Views::Crops => true,
            Views::Auto => {
                matches!(
                    embedder,
                    EmbedderKind::Cnn { .. } | EmbedderKind::CnnTrain(_)
                ) && n_train <= VIEWS_AUTO_MAX_TRAIN
            }
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct IndexConfig {
    pub kind: IndexKind,
    /// Views of each training image searched ([`Views`]).
    pub views: Views,
    /// Graph parameters when HNSW is used.
    pub hnsw: memscan_index::HnswConfig,
    /// `hnsw.ef_search` was not chosen by the user: the audit replaces it with
    /// [`memscan_index::default_ef_search`] of the training-set size.
    pub ef_search_by_size: bool,
    /// `hnsw.m` was not chosen by the user: the audit replaces it with
    /// [`memscan_index::default_m`] of the training-set size.
    pub m_by_size: bool,
    /// Queries on which HNSW answers are checked against exact search (0 = none).
    pub verify_recall: usize,
}

/// Feature inputs (`--features`): the roles are `(N, D)` `.npy` matrices instead of images.
#[derive(Debug, Clone, Serialize)]
pub struct FeaturesConfig {
    /// L2-normalize every row before searching (default `true`; `--no-normalize` keeps the
    /// given space). Distances are reported in the space searched.
    pub normalize: bool,
}

impl Default for FeaturesConfig {
    fn default() -> Self {
        FeaturesConfig { normalize: true }
    }
}

/// Parameters of the metrics.
#[derive(Debug, Clone, Serialize)]
pub struct MetricsConfig {
    /// The FPR that drives the `copy` column and the verdict.
    pub primary_fpr: f64,
    /// Every calibrated FPR reported (sorted descending, contains `primary_fpr`).
    pub fprs: Vec<f64>,
    /// Optional fixed cosine threshold (copy ⇔ cosine > threshold).
    pub cosine_threshold: Option<f64>,
    /// Ratio-test threshold on true distances (1/3).
    pub ratio_threshold: f64,
    /// Length of the most-copied training images list.
    pub top_n: usize,
    /// Bootstrap resamples for the MIA confidence intervals.
    pub bootstrap: usize,
    /// Nearest synthetic neighbours per query for the Monte Carlo attack's counts.
    pub monte_carlo_k: usize,
    /// k-means cells for C_T (0 = automatic).
    pub ct_cells: usize,
    /// PCA dimensions of the density-ratio (DOMIAS) attack.
    pub density_pca_dims: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            primary_fpr: 0.01,
            fprs: vec![0.01, 0.001],
            cosine_threshold: None,
            ratio_threshold: memscan_metrics::ratio::RATIO_THRESHOLD,
            top_n: 20,
            bootstrap: 1000,
            monte_carlo_k: 64,
            ct_cells: 0,
            density_pca_dims: 5,
        }
    }
}

impl MetricsConfig {
    /// Sets the primary FPR and makes sure `extra` FPRs (from budgets) are computed too.
    pub fn with_fprs(mut self, primary: f64, extra: &[f64]) -> Result<Self, Error> {
        for &f in std::iter::once(&primary).chain(extra) {
            if !(f > 0.0 && f < 1.0) {
                return Err(Error::Config(format!("FPR must lie in (0, 1), got {f}")));
            }
        }
        self.primary_fpr = primary;
        self.fprs.push(primary);
        self.fprs.extend_from_slice(extra);
        self.fprs.sort_by(|a, b| b.total_cmp(a));
        self.fprs.dedup();
        Ok(self)
    }
}

/// Everything [`crate::Audit::run`] needs.
#[derive(Debug, Clone, Serialize)]
pub struct AuditConfig {
    pub train: PathBuf,
    pub synthetic: PathBuf,
    pub holdout: Option<PathBuf>,
    /// A second real set, disjoint from holdout, for the calibrated and density attacks; if
    /// absent, a seeded half of the holdout is used.
    pub reference: Option<PathBuf>,
    /// `path,group` CSV mapping images to patients/studies (overrides `group_by`).
    pub groups: Option<PathBuf>,
    /// Group images by this metadata attribute; `None`: by patient when the train or
    /// holdout metadata has PatientIDs, else no groups.
    pub group_by: Option<GroupBy>,
    /// `Some` when the roles are feature matrices (`--features`); `io` and `embed` are then
    /// unused.
    pub features: Option<FeaturesConfig>,
    pub io: IoConfig,
    pub embed: EmbedConfig,
    pub index: IndexConfig,
    pub metrics: MetricsConfig,
    pub budgets: Vec<Budget>,
    /// Seed of every random choice (MIA member sample, …).
    pub seed: u64,
    /// Leave every pixel of real images (train, holdout) out of all outputs (`--no-images`).
    pub no_images: bool,
    /// The on-disk cache of embeddings and HNSW graphs (`None`: `--no-cache`). Not part of
    /// `summary.json`'s `config` (its lookups are under `runtime.cache`).
    #[serde(skip)]
    pub cache: Option<crate::cache::CacheConfig>,
}

impl AuditConfig {
    /// A configuration with defaults for everything but the inputs.
    pub fn new(train: PathBuf, synthetic: PathBuf, holdout: Option<PathBuf>) -> Self {
        AuditConfig {
            train,
            synthetic,
            holdout,
            reference: None,
            groups: None,
            group_by: None,
            features: None,
            io: IoConfig::default(),
            embed: EmbedConfig::default(),
            index: IndexConfig::default(),
            metrics: MetricsConfig::default(),
            budgets: Vec::new(),
            seed: 0,
            no_images: false,
            cache: None,
        }
    }
}
