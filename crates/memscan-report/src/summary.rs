//! The typed form of `summary.json`.
//!
//! Field order here is key order in the file. Optional metrics serialize as `null` and get
//! an entry in `metrics.absent` saying why, so a missing number is never read as a zero.

use memscan_metrics::authpct::AuthPct;
use memscan_metrics::copies::{GroupCopied, TrainCopied};
use memscan_metrics::copy_rate::CopyRate;
use memscan_metrics::ct::Ct;
use memscan_metrics::dcr::Dcr;
use memscan_metrics::identifiability::Identifiability;
use memscan_metrics::mdcr::Mdcr;
use memscan_metrics::mia::roc::RocPoint;
use memscan_metrics::mia::{AttackCi95, AttackResult};
use memscan_metrics::profile::SimilarityProfile;
use memscan_metrics::ratio::RatioRate;
use serde::Serialize;
use std::collections::BTreeMap;

/// Version of the `summary.json` key layout; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// `summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub memscan: Tool,
    pub seed: u64,
    pub inputs: Inputs,
    /// The audit configuration, verbatim.
    pub config: serde_json::Value,
    pub embedder: serde_json::Value,
    pub index: serde_json::Value,
    pub metrics: Metrics,
    pub verdict: Verdict,
    pub budgets: Vec<BudgetCheck>,
    pub skipped: Vec<SkippedInput>,
    pub warnings: Vec<String>,
    /// Everything that may differ between two runs of the same command.
    pub runtime: Runtime,
}

#[derive(Debug, Clone, Serialize)]
pub struct Tool {
    pub version: String,
    pub schema: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Inputs {
    pub train: InputSet,
    pub synthetic: InputSet,
    pub holdout: Option<InputSet>,
    pub reference: Option<InputSet>,
}

/// One input role.
#[derive(Debug, Clone, Serialize)]
pub struct InputSet {
    pub path: String,
    /// Images used.
    pub count: usize,
    /// Inputs skipped under `--skip-bad`.
    pub skipped: usize,
    /// SHA-256 over the ordered (id, content hash) list.
    pub content_hash: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SkippedInput {
    pub role: String,
    pub path: String,
    pub reason: String,
}

/// A metric value together with the definition that produced it.
#[derive(Debug, Clone, Serialize)]
pub struct Defined<T> {
    #[serde(flatten)]
    pub value: T,
    /// The formula and published variant, in one sentence.
    pub definition: String,
}

impl<T> Defined<T> {
    pub fn new(value: T, definition: impl Into<String>) -> Self {
        Defined {
            value,
            definition: definition.into(),
        }
    }
}

/// `metrics` in `summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Metrics {
    /// Calibrated copy rate at every requested FPR (needs a holdout).
    pub copy_rate: Option<Vec<Defined<CalibratedRate>>>,
    /// Copy rate at the user's fixed cosine threshold (`--threshold`).
    pub fixed_threshold: Option<Defined<CopyRate>>,
    /// Fraction of synthetic images with d1/d2 below the ratio threshold.
    pub ratio_rate: Option<f64>,
    pub ratio: Option<Defined<RatioRate>>,
    pub similarity: Defined<Similarity>,
    /// Fraction of training images that are the nearest neighbour of a flagged synthetic image.
    pub train_copied_fraction: Option<f64>,
    pub train_copied: Option<Defined<TrainCopiedNamed>>,
    pub mia: Option<Mia>,
    /// Corrected AuthPct (Alaa et al.) of synthetic and holdout images.
    pub authpct: Option<Defined<AuthPct>>,
    /// Meehan et al.'s data-copying statistic.
    pub c_t: Option<Defined<Ct>>,
    /// Share of synthetic images closer to train than to an equal-size holdout.
    pub dcr: Option<Defined<Dcr>>,
    pub identifiability: Option<Defined<Identifiability>>,
    pub mdcr: Option<Defined<Mdcr>>,
    /// Per-patient (group) results, with `--groups`.
    pub groups: Option<Defined<GroupMetrics>>,
    /// Identifying DICOM attributes carried by synthetic images (names and whether the value
    /// matches the training set's metadata — never the values).
    pub metadata_leakage: Option<Defined<MetadataLeakage>>,
    /// Metric name → why it is `null`.
    pub absent: BTreeMap<String, String>,
}

/// Results aggregated to groups (patients).
#[derive(Debug, Clone, Serialize)]
pub struct GroupMetrics {
    /// Groups with at least one training image.
    pub n_train_groups: usize,
    /// Groups with at least one holdout image.
    pub n_holdout_groups: usize,
    /// Groups with images in both train and holdout (a leak that biases every metric).
    pub overlap_train_holdout: usize,
    /// Patients with at least one copied training image (at the primary FPR).
    pub copied: Option<GroupCopied>,
    /// Patient-level MIA: a patient's score is the maximum over its images.
    pub mia: BTreeMap<String, AttackSummary>,
    /// Images without a group in the groups file, per role.
    pub ungrouped: BTreeMap<String, usize>,
    /// Where the groups come from: `file` (`--groups`) or the metadata attribute
    /// (`patient`, `study`, `series`, `volume`).
    pub source: String,
    /// The groups with at least one copied training image (at the primary FPR), most copies
    /// first. Groups from DICOM metadata are named by pseudonyms (`patient 3`: the 3rd in
    /// sorted order of the identifier), never by the identifier itself.
    pub copied_groups: Vec<GroupRow>,
}

/// One group (patient) in [`GroupMetrics::copied_groups`].
#[derive(Debug, Clone, Serialize)]
pub struct GroupRow {
    pub group: String,
    /// Training images of the group.
    pub n_train: usize,
    /// Holdout images of the group.
    pub n_holdout: usize,
    /// Training images of the group that are the nearest training image of a flagged
    /// synthetic image.
    pub copied_train: usize,
    /// Flagged synthetic images whose nearest training image belongs to the group.
    pub copying_synthetic: usize,
}

/// `metrics.metadata_leakage`: synthetic DICOM images that carry identifying attributes.
#[derive(Debug, Clone, Serialize)]
pub struct MetadataLeakage {
    /// Synthetic images with DICOM metadata.
    pub n_synthetic_dicom: usize,
    /// Synthetic images carrying at least one identifying attribute.
    pub n_with_identifying: usize,
    /// Synthetic images with at least one attribute whose value occurs in the training set.
    pub n_matching_training: usize,
    /// Per attribute name: how many synthetic images carry it, and how many with a value
    /// that occurs in the training set.
    pub attributes: BTreeMap<String, AttributeCount>,
    /// Every synthetic image carrying identifying attributes, in input order.
    pub images: Vec<LeakingImage>,
}

/// Counts of one attribute in [`MetadataLeakage::attributes`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct AttributeCount {
    pub present: usize,
    pub matches_training: usize,
}

/// One synthetic image in [`MetadataLeakage::images`].
#[derive(Debug, Clone, Serialize)]
pub struct LeakingImage {
    pub synthetic: String,
    pub attributes: Vec<LeakedAttribute>,
}

/// An identifying attribute of a synthetic image: its name and whether its value equals the
/// value of the same attribute in some training image. The value itself is never reported.
#[derive(Debug, Clone, Serialize)]
pub struct LeakedAttribute {
    pub name: String,
    pub matches_training: bool,
}

/// One calibrated copy rate.
#[derive(Debug, Clone, Serialize)]
pub struct CalibratedRate {
    #[serde(flatten)]
    pub rate: CopyRate,
    /// Whether this is the `--fpr` that drives the `copy` column and the verdict.
    pub primary: bool,
    /// Holdout images used to calibrate.
    pub n_holdout: usize,
    /// `fpr · n_holdout ≥ 1`: the holdout is large enough to resolve this FPR.
    pub resolvable: bool,
}

/// Somepalli et al.'s similarity profile for synthetic→train and holdout→train.
#[derive(Debug, Clone, Serialize)]
pub struct Similarity {
    pub synthetic: Option<SimilarityProfile>,
    pub holdout: Option<SimilarityProfile>,
}

/// [`TrainCopied`] with provenance strings instead of indices in the top list.
#[derive(Debug, Clone, Serialize)]
pub struct TrainCopiedNamed {
    pub n_train: usize,
    pub count: u64,
    pub fraction: f64,
    pub top: Vec<CopiedTrainNamed>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CopiedTrainNamed {
    pub train: String,
    pub copies: u64,
    pub best_synthetic: String,
    pub best_distance: f64,
}

impl TrainCopiedNamed {
    /// Replaces indices by the ids of the training and synthetic images.
    pub fn from_indices(t: &TrainCopied, train_ids: &[String], synthetic_ids: &[String]) -> Self {
        TrainCopiedNamed {
            n_train: t.n_train,
            count: t.count,
            fraction: t.fraction,
            top: t
                .top
                .iter()
                .map(|c| CopiedTrainNamed {
                    train: train_ids[c.train].clone(),
                    copies: c.copies,
                    best_synthetic: synthetic_ids[c.best_synthetic].clone(),
                    best_distance: c.best_distance,
                })
                .collect(),
        }
    }
}

/// Membership-inference attacks, one key per attack.
#[derive(Debug, Clone, Serialize)]
pub struct Mia {
    /// How members, non-members and the reference set were formed.
    pub setup: String,
    pub n_members: usize,
    pub n_nonmembers: usize,
    pub n_reference: usize,
    /// The attack with the highest TPR at FPR ≤ 0.1 % (ties: AUC, then name).
    pub strongest: Option<String>,
    pub distance: Option<Defined<AttackSummary>>,
    pub distance_calibrated: Option<Defined<AttackSummary>>,
    pub monte_carlo: Option<Defined<AttackSummary>>,
    pub density_ratio: Option<Defined<AttackSummary>>,
}

impl Mia {
    /// (attack name, summary) pairs of the computed attacks, in key order.
    pub fn attacks(&self) -> Vec<(&'static str, &Defined<AttackSummary>)> {
        [
            ("distance", &self.distance),
            ("distance_calibrated", &self.distance_calibrated),
            ("monte_carlo", &self.monte_carlo),
            ("density_ratio", &self.density_ratio),
        ]
        .into_iter()
        .filter_map(|(n, a)| a.as_ref().map(|a| (n, a)))
        .collect()
    }
}

/// One attack's scores; the ROC points go to `mia_roc.csv`, not the JSON.
#[derive(Debug, Clone, Serialize)]
pub struct AttackSummary {
    pub auc: f64,
    pub balanced_accuracy: f64,
    pub tpr_at_fpr_0_01: f64,
    pub tpr_at_fpr_0_001: f64,
    pub n_members: usize,
    pub n_nonmembers: usize,
    /// Bootstrap 95 % intervals (`--bootstrap` resamples).
    pub ci95: Option<AttackCi95>,
    /// Attack-specific parameters (ε, PCA dimensions, …).
    pub params: serde_json::Value,
    #[serde(skip)]
    pub roc: Vec<RocPoint>,
}

impl AttackSummary {
    pub fn new(r: AttackResult, params: serde_json::Value) -> Self {
        AttackSummary {
            auc: r.auc,
            balanced_accuracy: r.balanced_accuracy,
            tpr_at_fpr_0_01: r.tpr_at_fpr_0_01,
            tpr_at_fpr_0_001: r.tpr_at_fpr_0_001,
            n_members: r.n_members,
            n_nonmembers: r.n_nonmembers,
            ci95: r.ci95,
            params,
            roc: r.roc,
        }
    }
}

/// The one-line answer.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// `memorization` (copy rate significantly above the FPR), `no_evidence`, or
    /// `inconclusive` (no holdout to calibrate against).
    pub status: String,
    pub message: String,
    /// Whether any `--fail-if` budget was exceeded.
    pub budget_exceeded: bool,
}

/// One `--fail-if` budget and its outcome.
#[derive(Debug, Clone, Serialize)]
pub struct BudgetCheck {
    pub expression: String,
    pub value: f64,
    pub exceeded: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Runtime {
    pub threads: usize,
    /// Wall time per stage, in seconds, in pipeline order.
    pub timings_s: Vec<Timing>,
    /// Cache lookups of this run (`entry`, `outcome`: hit / miss / rebuilt / store_failed,
    /// `path`); empty with `--no-cache`.
    pub cache: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    pub stage: String,
    pub seconds: f64,
}
