//! The metrics beyond the copy rate: authenticity, data-copying (C_T), the DCR test,
//! identifiability, mDCR, the four membership-inference attacks with bootstrap intervals, and
//! their per-patient versions.
//!
//! Every metric that cannot be computed on the given data (too few images, a degenerate
//! covariance, no holdout…) is recorded under `metrics.absent` with the reason and a warning;
//! it never aborts the audit and never becomes a zero.

use crate::audit::{metric_err, search, time_into};
use crate::config::AuditConfig;
use crate::error::Error;
use crate::groups::Groups;
use memscan_index::{ExactIndex, Neighbours};
use memscan_io::Reporter;
use memscan_metrics::authpct::authpct_report;
use memscan_metrics::ct::{ct, CtConfig};
use memscan_metrics::dcr::{dcr, equal_subsets};
use memscan_metrics::identifiability::identifiability;
use memscan_metrics::mdcr::mdcr;
use memscan_metrics::mia::attacks::{self, DensityRatioConfig};
use memscan_metrics::mia::sample::{balanced_members, balanced_patients};
use memscan_metrics::mia::{evaluate, evaluate_with_ci, AttackResult};
use memscan_metrics::{groups as mgroups, mia};
use memscan_report::{
    AttackSummary, Defined, GroupMetrics, GroupRow, Metrics, Mia, Timing, MIA_ATTACKS,
};
use ndarray::{concatenate, Array2, Axis};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};

/// Stage constants mixed into the audit seed so every random choice has its own stream.
const STAGE_MIA: u64 = 0x4d49_4100;
const STAGE_REFERENCE: u64 = 0x5245_4600;
const STAGE_DCR: u64 = 0x4443_5200;
const STAGE_CT: u64 = 0x4354_0000;
const STAGE_BOOTSTRAP: u64 = 0x424f_4f54;
const STAGE_DENSITY: u64 = 0x4b44_4500;
const STAGE_PATIENTS: u64 = 0x5041_5400;

const DEF_AUTHPCT: &str = "Corrected AuthPct (Alaa et al. 2022, as dgm-eval authpct.py): \
    authentic(s) ⇔ r_{j*} < d1(s) with j* = NN_train(s) and r_j the distance from train j to \
    its nearest other train image; ties are not authentic; 100·mean. The holdout value is what \
    an ideal generator scores; the difference is what matters.";
const DEF_CT: &str = "C_T (Meehan, Chaudhuri, Dasgupta 2020): PCA to 64 dims if wider (fit on \
    train), k-means cells on train; per cell the Mann–Whitney Z of synthetic vs holdout \
    distances to the cell's nearest train point; cells with ≤ 20 synthetic points dropped; \
    C_T = Σ P_n(π) Z(π) / Σ P_n(π). C_T ≪ 0 means data-copying.";
const DEF_DCR: &str = "DCR test: with equal-size seeded subsets of train and holdout, the \
    share of synthetic images whose nearest image is in the train subset (ties ½); 0.5 is \
    ideal; two-sided exact binomial p-value against 0.5.";
const DEF_IDENTIFIABILITY: &str = "Identifiability (synthcity, unweighted): fraction of \
    training images whose nearest synthetic image is closer than their nearest other training \
    image. Higher = worse privacy.";
const DEF_MDCR: &str = "mDCR (syntheval): median synthetic→train nearest distance divided by \
    the median train→train nearest-other distance; < 1 means synthetic images sit closer to \
    training images than training images sit to each other.";
const DEF_GROUPS: &str =
    "Per-patient results (groups from --groups or --group-by): a patient is copied if any of its \
    training images is the nearest training image of a flagged synthetic image. Patient-level \
    MIA: members = a seeded sample of training patients, non-members = the non-member \
    holdout's patients, balanced by patient, each patient with all of its images (a maximum \
    over more images is larger by chance alone); the attacks run on these images (Monte \
    Carlo's ε is their median d1), a patient's score is the maximum over its images, and \
    the bootstrap intervals resample patients. \
    Ungrouped images count as their own patient.";
const DEF_MIA: [&str; 4] = [
    "GAN-Leaks full black-box (Chen et al. 2020): score(x) = −d1(x, synthetic).",
    "Calibrated distance (Chen et al. 2020): score(x) = −(d1(x, synthetic) − d1(x, reference)).",
    "Monte Carlo (Hilprecht et al. 2019): ε = median over queries of d1(x, synthetic); score = \
     fraction of synthetic images within ε of x (closed ball), counted exactly: queries whose \
     K nearest (--mc-k) are all within ε are searched again with 4K, 16K… neighbours.",
    "DOMIAS density ratio (van Breugel et al. 2023): log p_synthetic(x) − log p_reference(x), \
     Gaussian KDEs with Scott's-rule bandwidth in a PCA space fitted on the reference set.",
];
const DEF_MIA_COMMON: &str = " Members = seeded sample of train, non-members = holdout, \
    balanced; AUC = Mann–Whitney with ties ½; TPR at FPR ≤ α from the empirical ROC staircase \
    without interpolation; balanced accuracy at the best threshold (optimistic); stratified \
    bootstrap 95 % intervals.";

/// Group membership of the train and holdout images.
pub(crate) struct GroupAssignment<'a> {
    pub groups: &'a Groups,
    pub train: Vec<Option<u32>>,
    pub holdout: Vec<Option<u32>>,
}

/// What the core pipeline already computed.
pub(crate) struct Context<'a> {
    pub cfg: &'a AuditConfig,
    pub reporter: &'a dyn Reporter,
    pub e_train: &'a Array2<f32>,
    pub e_syn: &'a Array2<f32>,
    pub e_hold: Option<&'a Array2<f32>>,
    pub e_ref: Option<&'a Array2<f32>>,
    pub syn_index: &'a ExactIndex,
    /// Train → nearest synthetic distance.
    pub train_d_syn: &'a [f64],
    /// Holdout → nearest synthetic distance.
    pub hold_d_syn: Option<&'a [f64]>,
    /// Nearest training image of each synthetic image and its distance, one embedding per
    /// training image (never crop views): AuthPct and mDCR as published.
    pub nn1_syn: &'a [usize],
    pub d1_syn: &'a [f64],
    /// Nearest training image of each synthetic image as the copy test searched it (with
    /// crop views, if any): what `primary_flags` flagged a copy of.
    pub copy_nn1: &'a [usize],
    /// Holdout → train neighbours (one embedding per training image).
    pub nn_hold: Option<&'a Neighbours>,
    /// Train → nearest other train distance.
    pub r_train: Option<&'a [f64]>,
    pub primary_flags: Option<&'a [bool]>,
    pub groups: Option<GroupAssignment<'a>>,
}

/// What the pipeline needs beyond the metrics themselves: per-training-image MIA scores for
/// `train.csv`.
pub(crate) struct TrainScores {
    /// Whether each training image is in the MIA member sample.
    pub member_sample: Vec<bool>,
    /// Per attack (in [`MIA_ATTACKS`] order), per training image: its score if sampled.
    pub scores: Vec<Vec<Option<f64>>>,
}

/// Records a metric as absent (with a warning) instead of failing the audit.
struct Absent<'a> {
    absent: &'a mut BTreeMap<String, String>,
    warn: &'a mut dyn FnMut(String),
}

impl Absent<'_> {
    fn mark(&mut self, key: &str, why: String) {
        (self.warn)(format!("{key} not computed: {why}"));
        self.absent.insert(key.into(), why);
    }

    /// `Some(value)` or, on a metrics error, `None` with the error recorded.
    fn keep<T>(&mut self, key: &str, r: Result<T, memscan_metrics::Error>) -> Option<T> {
        r.map_err(|e| self.mark(key, e.to_string())).ok()
    }
}

fn rows(e: &Array2<f32>, idx: &[usize]) -> Array2<f32> {
    e.select(Axis(0), idx)
}

fn nearest_distances(
    base: &Array2<f32>,
    queries: &Array2<f32>,
    what: &'static str,
    reporter: &dyn Reporter,
) -> Result<Vec<f64>, Error> {
    let index = ExactIndex::new(base.view()).map_err(|source| Error::Index { what, source })?;
    let nn = search(&index, queries, 1, what, reporter)?;
    Ok((0..nn.len()).map(|i| nn.nearest(i).1).collect())
}

/// Computes the metrics of this module into `metrics` (absent ones under `metrics.absent`)
/// and returns the per-training-image MIA scores.
pub(crate) fn compute(
    ctx: &Context<'_>,
    metrics: &mut Metrics,
    timings: &mut Vec<Timing>,
    warn: &mut dyn FnMut(String),
) -> Result<TrainScores, Error> {
    let cfg = ctx.cfg;
    let m = &cfg.metrics;
    let n_train = ctx.e_train.nrows();
    let mut ab = Absent {
        absent: &mut metrics.absent,
        warn,
    };
    let mut ts = TrainScores {
        member_sample: vec![false; n_train],
        scores: vec![vec![None; n_train]; MIA_ATTACKS.len()],
    };

    // --- metrics on train → train distances ---------------------------------------------
    match ctx.r_train {
        Some(r) => {
            metrics.identifiability = ab
                .keep("identifiability", identifiability(ctx.train_d_syn, r))
                .map(|v| Defined::new(v, DEF_IDENTIFIABILITY));
            metrics.mdcr = ab.keep("mdcr", mdcr(ctx.d1_syn, r)).map(|v| {
                if v.median_train_to_train == 0.0 {
                    (ab.warn)(format!(
                        "mdcr is {} by syntheval's convention for a zero denominator: at least \
                         half of the training images have an exact duplicate in the training \
                         set (blank or repeated images), so it says nothing about closeness \
                         here",
                        v.value
                    ));
                }
                Defined::new(v, DEF_MDCR)
            });
            let hold: Option<(Vec<usize>, Vec<f64>)> = ctx.nn_hold.map(|nn| {
                (0..nn.len())
                    .map(|i| (nn.nearest(i).0 as usize, nn.nearest(i).1))
                    .unzip()
            });
            let report = authpct_report(
                r,
                (ctx.nn1_syn, ctx.d1_syn),
                hold.as_ref().map(|(a, b)| (a.as_slice(), b.as_slice())),
            );
            metrics.authpct = ab
                .keep("authpct", report)
                .map(|v| Defined::new(v, DEF_AUTHPCT));
        }
        None => {
            for key in ["identifiability", "mdcr", "authpct"] {
                ab.mark(key, "needs at least two training images".into());
            }
        }
    }

    let (Some(e_hold), Some(hold_d_syn)) = (ctx.e_hold, ctx.hold_d_syn) else {
        for key in ["mia", "c_t", "dcr"] {
            ab.absent.insert(
                key.into(),
                "requires --holdout (real images the generator never saw)".into(),
            );
        }
        if ctx.groups.is_some() {
            metrics.groups = Some(Defined::new(group_metrics(ctx, None, &mut ab)?, DEF_GROUPS));
        }
        return Ok(ts);
    };
    let n_hold = e_hold.nrows();

    // --- DCR test -----------------------------------------------------------------------
    let (t_sub, h_sub) = equal_subsets(n_train, n_hold, cfg.seed ^ STAGE_DCR);
    let d = time_into(timings, "dcr", || -> Result<_, Error> {
        let d_t = nearest_distances(
            &rows(ctx.e_train, &t_sub),
            ctx.e_syn,
            "dcr: train subset",
            ctx.reporter,
        )?;
        let d_h = nearest_distances(
            &rows(e_hold, &h_sub),
            ctx.e_syn,
            "dcr: holdout subset",
            ctx.reporter,
        )?;
        Ok(dcr(&d_t, &d_h, t_sub.len()))
    })?;
    metrics.dcr = ab.keep("dcr", d).map(|v| Defined::new(v, DEF_DCR));

    // --- C_T ----------------------------------------------------------------------------
    let ct_cfg = CtConfig {
        k: m.ct_cells,
        seed: cfg.seed ^ STAGE_CT,
        ..CtConfig::default()
    };
    let c = time_into(timings, "c_t", || {
        ct(ctx.e_train.view(), e_hold.view(), ctx.e_syn.view(), &ct_cfg)
    });
    metrics.c_t = ab.keep("c_t", c).map(|v| Defined::new(v, DEF_CT));

    // --- membership inference -----------------------------------------------------------
    let (reference, pool, setup): (Option<Array2<f32>>, Vec<usize>, String) = match ctx.e_ref {
        Some(r) => (
            Some(r.clone()),
            (0..n_hold).collect(),
            "members: seeded sample of train; non-members: holdout; reference: --reference".into(),
        ),
        None if n_hold >= 4 => {
            let hold_groups = ctx.groups.as_ref().map(|g| g.holdout.as_slice());
            match split_reference(n_hold, hold_groups, cfg.seed ^ STAGE_REFERENCE) {
                Some((r, p)) => {
                    let by = if hold_groups.is_some() {
                        "patient (group): no patient has images on both sides"
                    } else {
                        "image (no groups given: slices of one patient may land on both \
                         sides, which favours the reference-based attacks)"
                    };
                    (
                        Some(rows(e_hold, &r)),
                        p,
                        format!(
                            "members: seeded sample of train; non-members: a seeded half of \
                             holdout; reference: the other half (no --reference given), split \
                             by {by}"
                        ),
                    )
                }
                None => {
                    for key in ["mia.distance_calibrated", "mia.density_ratio"] {
                        ab.mark(
                            key,
                            "the holdout's patients cannot be split into a reference and a \
                             non-member half with at least 2 images each; pass --reference"
                                .into(),
                        );
                    }
                    (
                        None,
                        (0..n_hold).collect(),
                        "members: seeded sample of train; non-members: holdout".into(),
                    )
                }
            }
        }
        None => {
            ab.mark(
                "mia.distance_calibrated",
                "needs a reference set: pass --reference or a holdout of at least 4 images".into(),
            );
            (
                None,
                (0..n_hold).collect(),
                "members: seeded sample of train; non-members: holdout".into(),
            )
        }
    };
    let (mem, non) = balanced_members(n_train, pool.len(), cfg.seed ^ STAGE_MIA);
    let non: Vec<usize> = non.iter().map(|&i| pool[i]).collect();
    for &i in &mem {
        ts.member_sample[i] = true;
    }
    let labels: Vec<bool> = mem
        .iter()
        .map(|_| true)
        .chain(non.iter().map(|_| false))
        .collect();
    let (queries, d_syn) = query_set(ctx, (e_hold, hold_d_syn), &mem, &non);

    let scores = attack_scores(
        ctx,
        Queries {
            x: &queries,
            d_syn: &d_syn,
            reference: reference.as_ref(),
            patients: false,
        },
        timings,
        &mut ab,
    )?;
    if reference.is_none() {
        ab.absent
            .entry("mia.density_ratio".into())
            .or_insert_with(|| "needs a reference set".into());
    }

    let mut results: Vec<Option<AttackSummary>> = vec![None, None, None, None];
    let mut raw: Vec<AttackResult> = Vec::new();
    time_into(timings, "mia: evaluate", || -> Result<(), Error> {
        for (a, slot) in scores.iter().enumerate() {
            let Some((s, params)) = slot else { continue };
            let seed = cfg.seed ^ STAGE_BOOTSTRAP ^ (a as u64);
            let r = if m.bootstrap > 0 {
                evaluate_with_ci(MIA_ATTACKS[a], s, &labels, m.bootstrap, seed)
            } else {
                evaluate(MIA_ATTACKS[a], s, &labels)
            }
            .map_err(metric_err("a membership-inference attack"))?;
            for (q, &i) in mem.iter().enumerate() {
                ts.scores[a][i] = Some(s[q]);
            }
            raw.push(r.clone());
            results[a] = Some(AttackSummary::new(r, params.clone()));
        }
        Ok(())
    })?;
    let def = |a: usize| format!("{}{}", DEF_MIA[a], DEF_MIA_COMMON);
    let mut it = results
        .into_iter()
        .enumerate()
        .map(|(a, r)| r.map(|r| Defined::new(r, def(a))));
    metrics.mia = Some(Mia {
        setup,
        n_members: mem.len(),
        n_nonmembers: non.len(),
        n_reference: reference.as_ref().map_or(0, |r| r.nrows()),
        strongest: mia::strongest_attack(&raw).map(str::to_string),
        distance: it.next().flatten(),
        distance_calibrated: it.next().flatten(),
        monte_carlo: it.next().flatten(),
        density_ratio: it.next().flatten(),
    });

    if let Some(g) = &ctx.groups {
        // Patient level: whole patients, balanced by patient (a maximum over more images is
        // larger by chance alone), scored by the same attacks on their own query set.
        let (train_g, hold_g, _) = dense_groups(g);
        let patient = if train_holdout_overlap(g) == 0 {
            let pool_g: Vec<u32> = pool.iter().map(|&i| hold_g[i]).collect();
            let (pm, pn) = balanced_patients(&train_g, &pool_g, cfg.seed ^ STAGE_PATIENTS);
            let pn: Vec<usize> = pn.iter().map(|&i| pool[i]).collect();
            let (x, d_syn) = query_set(ctx, (e_hold, hold_d_syn), &pm, &pn);
            let scores = attack_scores(
                ctx,
                Queries {
                    x: &x,
                    d_syn: &d_syn,
                    reference: reference.as_ref(),
                    patients: true,
                },
                timings,
                &mut ab,
            )?;
            Some(PatientInput {
                scores,
                labels: vec![true; pm.len()]
                    .into_iter()
                    .chain(vec![false; pn.len()])
                    .collect(),
                groups: pm
                    .iter()
                    .map(|&i| train_g[i])
                    .chain(pn.iter().map(|&i| hold_g[i]))
                    .collect(),
            })
        } else {
            None
        };
        metrics.groups = Some(Defined::new(
            group_metrics(ctx, patient, &mut ab)?,
            DEF_GROUPS,
        ));
    }
    Ok(ts)
}

type Scores = [Option<(Vec<f64>, serde_json::Value)>; 4];

/// The attacks' queries, training images `mem` then holdout images `non`: their embeddings and
/// their distances to the nearest synthetic image.
fn query_set(
    ctx: &Context<'_>,
    (e_hold, hold_d_syn): (&Array2<f32>, &[f64]),
    mem: &[usize],
    non: &[usize],
) -> (Array2<f32>, Vec<f64>) {
    let x = concatenate(
        Axis(0),
        &[rows(ctx.e_train, mem).view(), rows(e_hold, non).view()],
    )
    .expect("same embedding width");
    let d_syn = mem
        .iter()
        .map(|&i| ctx.train_d_syn[i])
        .chain(non.iter().map(|&i| hold_d_syn[i]))
        .collect();
    (x, d_syn)
}

/// One query set of the attacks.
struct Queries<'a> {
    /// Embeddings: members first, then non-members.
    x: &'a Array2<f32>,
    /// `d1(x, synthetic)` per query.
    d_syn: &'a [f64],
    reference: Option<&'a Array2<f32>>,
    /// The patient-level set: failures are recorded under `groups.mia.*`.
    patients: bool,
}

/// The four attacks' scores (in [`MIA_ATTACKS`] order) and parameters on one query set; an
/// attack that cannot run is `None`, recorded under `metrics.absent`.
fn attack_scores(
    ctx: &Context<'_>,
    q: Queries<'_>,
    timings: &mut Vec<Timing>,
    ab: &mut Absent<'_>,
) -> Result<Scores, Error> {
    let m = &ctx.cfg.metrics;
    let (prefix, what_ref, what_syn, what_more) = if q.patients {
        (
            "groups.mia",
            "patient mia: queries → reference",
            "patient mia: queries → synthetic",
            "patient mia: queries → synthetic (saturated)",
        )
    } else {
        (
            "mia",
            "mia: queries → reference",
            "mia: queries → synthetic",
            "mia: queries → synthetic (saturated)",
        )
    };
    let key = |attack: &str| format!("{prefix}.{attack}");
    let stage = |name: &str| format!("{prefix}: {name}");
    let queries = q.x;
    let mut scores: Scores = [None, None, None, None];
    scores[0] = Some((attacks::distance(q.d_syn), serde_json::json!({})));
    if let Some(r) = q.reference {
        let d_ref = time_into(timings, &stage("reference"), || {
            nearest_distances(r, queries, what_ref, ctx.reporter)
        })?;
        scores[1] = ab
            .keep(
                &key("distance_calibrated"),
                attacks::distance_calibrated(q.d_syn, &d_ref),
            )
            .map(|s| (s, serde_json::json!({"n_reference": r.nrows()})));
    }
    let n_syn = ctx.e_syn.nrows();
    let k = m.monte_carlo_k.clamp(1, n_syn);
    let knn = time_into(timings, &stage("monte carlo"), || {
        search(ctx.syn_index, queries, k, what_syn, ctx.reporter)
    })?;
    if let Some(mut mc) = ab.keep(
        &key("monte_carlo"),
        attacks::monte_carlo(&knn.distances, k, n_syn),
    ) {
        // A query whose K nearest synthetic images are all within ε has a count that is only a
        // lower bound: search those queries again with 4K, 16K… neighbours (at most all
        // synthetic images) so that every score is the exact fraction within ε.
        let mut k_used = k;
        let mut open: Vec<usize> = (0..queries.nrows())
            .filter(|&q| k < n_syn && mc.scores[q] * n_syn as f64 >= k as f64 - 0.5)
            .collect();
        while !open.is_empty() && k_used < n_syn {
            k_used = (k_used * 4).min(n_syn);
            let sub = rows(queries, &open);
            let more = time_into(timings, &stage("monte carlo"), || {
                search(ctx.syn_index, &sub, k_used, what_more, ctx.reporter)
            })?;
            let mut still = Vec::new();
            for (r, &q) in open.iter().enumerate() {
                let row = &more.distances[r * k_used..(r + 1) * k_used];
                let count = row.iter().filter(|&&d| d <= mc.epsilon).count();
                mc.scores[q] = count as f64 / n_syn as f64;
                if count == k_used && k_used < n_syn {
                    still.push(q);
                }
            }
            open = still;
        }
        let params = serde_json::json!({
            "epsilon": mc.epsilon,
            "k": mc.k,
            "k_max": k_used,
            "requeried": mc.saturated,
        });
        scores[2] = Some((mc.scores, params));
    }
    if let Some(r) = q.reference {
        let dcfg = DensityRatioConfig {
            pca_dims: m.density_pca_dims,
            seed: ctx.cfg.seed ^ STAGE_DENSITY,
            ..DensityRatioConfig::default()
        };
        let dr = time_into(timings, &stage("density ratio"), || {
            attacks::density_ratio(queries.view(), ctx.e_syn.view(), r.view(), &dcfg)
        });
        scores[3] = ab.keep(&key("density_ratio"), dr).map(|d| {
            let params = serde_json::json!({
                "pca_dims": d.dims,
                "scott_factor_synthetic": d.scott_factor_synthetic,
                "scott_factor_reference": d.scott_factor_reference,
                "n_synthetic_kde": d.n_synthetic_kde,
                "n_reference_kde": d.n_reference_kde,
                "max_kde_points": dcfg.max_kde_points,
            });
            (d.scores, params)
        });
    }
    Ok(scores)
}

/// Splits the holdout into a reference half and the non-member pool (both sorted), whole
/// groups at a time: the units (groups; each ungrouped image is its own unit) are shuffled with
/// `seed` and given to the reference until it holds half of the images. Without groups this is
/// a seeded half split by image. `None` when either side would have fewer than 2 images.
fn split_reference(
    n_hold: usize,
    groups: Option<&[Option<u32>]>,
    seed: u64,
) -> Option<(Vec<usize>, Vec<usize>)> {
    let mut units: Vec<Vec<usize>> = match groups {
        Some(g) => {
            let mut by: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
            let mut single = Vec::new();
            for (i, x) in g.iter().enumerate().take(n_hold) {
                match x {
                    Some(x) => by.entry(*x).or_default().push(i),
                    None => single.push(vec![i]),
                }
            }
            by.into_values().chain(single).collect()
        }
        None => (0..n_hold).map(|i| vec![i]).collect(),
    };
    units.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let (mut r, mut p) = (Vec::new(), Vec::new());
    for u in units {
        if r.len() < n_hold / 2 {
            r.extend(u);
        } else {
            p.extend(u);
        }
    }
    if r.len() < 2 || p.len() < 2 {
        return None;
    }
    r.sort_unstable();
    p.sort_unstable();
    Some((r, p))
}

/// The patient-level attack sample and its scores (whole patients, balanced by patient).
struct PatientInput {
    scores: Scores,
    labels: Vec<bool>,
    /// Dense group id per query.
    groups: Vec<u32>,
}

/// Dense group ids: named groups keep their index; each ungrouped image gets its own.
fn dense(assign: &[Option<u32>], next: &mut u32) -> Vec<u32> {
    assign
        .iter()
        .map(|g| {
            g.unwrap_or_else(|| {
                *next += 1;
                *next - 1
            })
        })
        .collect()
}

/// Dense group ids of train and holdout (disjoint for ungrouped images) and their count.
fn dense_groups(g: &GroupAssignment<'_>) -> (Vec<u32>, Vec<u32>, u32) {
    let mut next = g.groups.names.len() as u32;
    let train_g = dense(&g.train, &mut next);
    let hold_g = dense(&g.holdout, &mut next);
    (train_g, hold_g, next)
}

/// Named groups (patients) with images in both train and holdout.
fn train_holdout_overlap(g: &GroupAssignment<'_>) -> usize {
    let named = |a: &[Option<u32>]| a.iter().flatten().copied().collect::<BTreeSet<u32>>();
    named(&g.train).intersection(&named(&g.holdout)).count()
}

fn group_metrics(
    ctx: &Context<'_>,
    patient: Option<PatientInput>,
    ab: &mut Absent<'_>,
) -> Result<GroupMetrics, Error> {
    let g = ctx.groups.as_ref().expect("called with groups");
    let (train_g, hold_g, next) = dense_groups(g);
    let mut ungrouped = BTreeMap::new();
    for (role, a) in [("train", &g.train), ("holdout", &g.holdout)] {
        let n = a.iter().filter(|x| x.is_none()).count();
        if n > 0 {
            let why = match g.groups.source_name() {
                "file" => "are not in the groups file".to_string(),
                by => format!("have no {by} identifier in their metadata"),
            };
            (ab.warn)(format!(
                "{n} {role} image(s) {why}; each counts as its own patient"
            ));
            ungrouped.insert(role.to_string(), n);
        }
    }
    let overlap = train_holdout_overlap(g);
    if overlap > 0 {
        (ab.warn)(format!(
            "{overlap} patient(s) have images in both train and holdout: the holdout is not \
             independent of the training set, which biases every calibrated metric"
        ));
    }
    let copied = match ctx.primary_flags {
        Some(flags) => ab.keep(
            "groups.copied",
            mgroups::copied_groups(ctx.copy_nn1, flags, &train_g, next as usize),
        ),
        None => None,
    };
    let mut mia_by_attack = BTreeMap::new();
    if overlap > 0 && ctx.e_hold.is_some() {
        ab.mark(
            "groups.mia",
            "patients appear in both train and holdout".into(),
        );
    } else if let Some(p) = patient {
        for (a, slot) in p.scores.iter().enumerate() {
            let Some((s, params)) = slot else { continue };
            let bootstrap = ctx.cfg.metrics.bootstrap;
            let seed = ctx.cfg.seed ^ STAGE_BOOTSTRAP ^ STAGE_PATIENTS ^ (a as u64);
            let level = mgroups::patient_level(s, &p.labels, &p.groups).and_then(|pl| {
                if bootstrap > 0 {
                    evaluate_with_ci(MIA_ATTACKS[a], &pl.scores, &pl.is_member, bootstrap, seed)
                } else {
                    evaluate(MIA_ATTACKS[a], &pl.scores, &pl.is_member)
                }
            });
            if let Some(r) = ab.keep(&format!("groups.mia.{}", MIA_ATTACKS[a]), level) {
                mia_by_attack.insert(
                    MIA_ATTACKS[a].to_string(),
                    AttackSummary::new(r, params.clone()),
                );
            }
        }
    }
    let copied_groups = match ctx.primary_flags {
        Some(flags) => copied_group_rows(ctx.copy_nn1, flags, g),
        None => Vec::new(),
    };
    Ok(GroupMetrics {
        source: g.groups.source_name().into(),
        copied_groups,
        n_train_groups: train_g.iter().collect::<BTreeSet<_>>().len(),
        n_holdout_groups: hold_g.iter().collect::<BTreeSet<_>>().len(),
        overlap_train_holdout: overlap,
        copied,
        mia: mia_by_attack,
        ungrouped,
    })
}

/// The named groups with at least one copied training image, most copying synthetic images
/// first (then by name).
fn copied_group_rows(nn1: &[usize], flags: &[bool], g: &GroupAssignment<'_>) -> Vec<GroupRow> {
    let n = g.groups.names.len();
    let mut rows: Vec<GroupRow> = g
        .groups
        .names
        .iter()
        .map(|name| GroupRow {
            group: name.clone(),
            n_train: 0,
            n_holdout: 0,
            copied_train: 0,
            copying_synthetic: 0,
        })
        .collect();
    for x in g.train.iter().flatten() {
        rows[*x as usize].n_train += 1;
    }
    for x in g.holdout.iter().flatten() {
        rows[*x as usize].n_holdout += 1;
    }
    let mut per_train = vec![0usize; g.train.len()];
    for (&j, &f) in nn1.iter().zip(flags) {
        if f && j < per_train.len() {
            per_train[j] += 1;
        }
    }
    for (j, &c) in per_train.iter().enumerate() {
        if let (Some(x), true) = (g.train[j], c > 0) {
            let r = &mut rows[x as usize];
            r.copied_train += 1;
            r.copying_synthetic += c;
        }
    }
    debug_assert_eq!(rows.len(), n);
    rows.retain(|r| r.copying_synthetic > 0);
    rows.sort_by(|a, b| {
        b.copying_synthetic
            .cmp(&a.copying_synthetic)
            .then_with(|| a.group.cmp(&b.group))
    });
    rows
}

#[cfg(test)]
mod tests {
    use super::split_reference;

    fn check_partition(r: &[usize], p: &[usize], n: usize) {
        let mut all: Vec<usize> = r.iter().chain(p).copied().collect();
        all.sort_unstable();
        assert_eq!(
            all,
            (0..n).collect::<Vec<_>>(),
            "a partition of the holdout"
        );
    }

    #[test]
    fn without_groups_the_holdout_is_halved_by_image() {
        let (r, p) = split_reference(11, None, 7).unwrap();
        assert_eq!((r.len(), p.len()), (5, 6));
        check_partition(&r, &p, 11);
        assert_eq!(split_reference(11, None, 7).unwrap(), (r, p), "seeded");
    }

    #[test]
    fn with_groups_no_patient_is_on_both_sides() {
        // 30 patients × 3 slices, plus 4 ungrouped images.
        let mut g: Vec<Option<u32>> = (0..90).map(|i| Some(i / 3)).collect();
        g.extend([None; 4]);
        for seed in 0..20 {
            let (r, p) = split_reference(g.len(), Some(&g), seed).unwrap();
            check_partition(&r, &p, g.len());
            for &i in &r {
                if let Some(x) = g[i] {
                    assert!(p.iter().all(|&j| g[j] != Some(x)), "patient {x} split");
                }
            }
            // Whole patients of 3: the reference reaches half, overshooting by < 3.
            assert!((47..50).contains(&r.len()), "reference size {}", r.len());
        }
    }

    #[test]
    fn a_single_patient_cannot_be_split() {
        let g = vec![Some(0); 8];
        assert!(split_reference(8, Some(&g), 1).is_none());
        // Two patients of unequal size still give two sides of at least 2.
        let g: Vec<Option<u32>> = (0..8).map(|i| Some(u32::from(i >= 3))).collect();
        let (r, p) = split_reference(8, Some(&g), 1).unwrap();
        assert!(r.len() >= 2 && p.len() >= 2);
    }
}
