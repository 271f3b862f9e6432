//! [`Audit::run`]: the pipeline, stage by stage.

use crate::cache::{Lookup, Record};
use crate::config::{default_weights, AuditConfig, EmbedderKind, IndexKind};
use crate::error::Error;
use crate::groups::{GroupBy, Groups};
use crate::privacy;
use memscan_embed::{
    embed_all, train as cnn_train, Backbone, CnnEmbedder, EfficientNetLite0, Embedder,
    PixelEmbedder,
};
use memscan_index::{verify_recall, ExactIndex, Exclude, HnswIndex, Index, Neighbours, ViewIndex};
use memscan_io::{ImageSet, Reporter};
use memscan_metrics::{copies, copy_rate, profile, ratio};
use memscan_report::{
    AuditOutput, BudgetCheck, CalibratedRate, Defined, InputSet, Metrics, Runtime, Similarity,
    SkippedInput, Summary, SyntheticRow, Timing, Tool, TrainCopiedNamed, TrainRow, Verdict,
    SCHEMA_VERSION,
};
use ndarray::Array2;
use std::collections::BTreeMap;
use std::time::Instant;

const DEF_COPY_RATE: &str = "Calibrated copy rate: t_α = the (⌊α·n⌋+1)-th smallest holdout d1 \
    (largest threshold with holdout FPR ≤ α); copy(s) ⇔ d1(s) < t_α; 95 % Clopper–Pearson \
    interval; excess = rate − α.";
const DEF_FIXED: &str = "Fixed cosine threshold (Somepalli et al. 2023 use 0.5, SSCD 0.75): \
    copy(s) ⇔ cosine(s, NN_train(s)) > threshold.";
const DEF_RATIO: &str = "Nearest-neighbour ratio test (Yoon et al. 2023; Gu et al. 2023, \
    sail-sg/DiffMemorize): memorized ⇔ d1/d2 < 1/3 on true (not squared) distances; \
    d1 = d2 = 0 counts as memorized.";
const DEF_SIMILARITY: &str = "Similarity profile (Somepalli et al. 2023): cosine similarity \
    between each image and its L2-nearest training image, for synthetic and for holdout \
    (background) images.";
const DEF_TRAIN_COPIED: &str = "Fraction of training images that are the nearest training \
    image of at least one synthetic image flagged at the primary FPR (cf. Dar et al. 2024).";
/// One completed audit.
#[derive(Debug, Clone)]
pub struct Audit {
    pub output: AuditOutput,
}

pub(crate) struct Timer {
    pub(crate) timings: Vec<Timing>,
}

impl Timer {
    pub(crate) fn time<T>(&mut self, stage: &str, f: impl FnOnce() -> T) -> T {
        time_into(&mut self.timings, stage, f)
    }
}

/// Runs `f` and appends its wall time under `stage`.
pub(crate) fn time_into<T>(timings: &mut Vec<Timing>, stage: &str, f: impl FnOnce() -> T) -> T {
    let t0 = Instant::now();
    let out = f();
    timings.push(Timing {
        stage: stage.into(),
        seconds: t0.elapsed().as_secs_f64(),
    });
    out
}

/// Builds the configured embedder; `--train-embedder` trains (or finds in the cache) a `cnn`
/// on the training images first. Returns the cache record of a trained model, if any.
fn audit_embedder(
    cfg: &AuditConfig,
    train: &ImageSet,
    reporter: &dyn Reporter,
) -> Result<(Box<dyn Embedder>, Option<Record>), Error> {
    let EmbedderKind::CnnTrain(t) = &cfg.embed.kind else {
        return Ok((make_embedder(&cfg.embed, &cfg.io)?, None));
    };
    let (channels, size) = (usize::from(cfg.io.channels), cfg.io.size as usize);
    let tc = cnn_train::TrainConfig {
        epochs: t
            .epochs
            .unwrap_or_else(|| cnn_train::default_epochs(train.images.len())),
        batch: t.batch,
        seed: t.seed,
        ..cnn_train::TrainConfig::new(memscan_embed::cnn::Config::small(channels, size))
    };
    let train_err = |source| Error::Embed {
        role: "train (training the cnn embedder)",
        source,
    };
    let cache_dir = t
        .cache_dir
        .clone()
        .or_else(|| cfg.cache.as_ref().map(|c| c.dir.join("cnn-models")));
    let Some(cache_dir) = cache_dir else {
        // No cache: train into a temporary folder, load the weights, drop the folder.
        let tmp = tempfile::tempdir().map_err(|e| {
            train_err(memscan_embed::Error::Model(format!(
                "creating a temporary model folder: {e}"
            )))
        })?;
        cnn_train::train(&train.images, &tc, tmp.path(), false, reporter).map_err(train_err)?;
        return Ok((load_cnn(tmp.path(), &cfg.io)?, None));
    };
    let model = cnn_train::train_cached(&train.images, &train.hash, &tc, &cache_dir, reporter)
        .map_err(train_err)?;
    let record = Record {
        entry: "cnn model".into(),
        outcome: if model.trained { "miss" } else { "hit" },
        path: model.dir.display().to_string(),
    };
    Ok((load_cnn(model.dir.as_path(), &cfg.io)?, Some(record)))
}

/// Loads a trained cnn model and checks that it takes the images `io` decodes.
fn load_cnn(dir: &std::path::Path, io: &memscan_io::IoConfig) -> Result<Box<dyn Embedder>, Error> {
    let e = CnnEmbedder::load(dir).map_err(Error::LoadEmbedder)?;
    let m = e.config();
    let (channels, size) = (usize::from(io.channels), io.size as usize);
    if m.size != size || m.in_channels != channels {
        return Err(Error::Config(format!(
            "the cnn model in {} expects {}-channel {}×{} images; run with --size {} \
             --channels {}",
            dir.display(),
            m.in_channels,
            m.size,
            m.size,
            m.size,
            m.in_channels
        )));
    }
    Ok(Box::new(e))
}

fn load(
    role: &'static str,
    path: &std::path::Path,
    cfg: &AuditConfig,
    reporter: &dyn Reporter,
) -> Result<ImageSet, Error> {
    memscan_io::load(path, &cfg.io, reporter).map_err(|source| Error::Input {
        role,
        path: path.to_path_buf(),
        source,
    })
}

fn input_set(set: &ImageSet) -> InputSet {
    InputSet {
        path: set.root.display().to_string(),
        count: set.images.len(),
        skipped: set.skipped.len(),
        content_hash: set.hash.clone(),
    }
}

fn ids(set: &ImageSet) -> Vec<String> {
    set.images.iter().map(|i| i.id.clone()).collect()
}

/// Cosine similarity of `q` to training image `j` as the copy search saw it: with views
/// (`per_image > 1` rows per training image in `gallery`, image `j` at rows `j`, `j + n`,
/// `j + 2n`… as [`ViewIndex`] lays them out) the cosine to the row nearest to `q` in L2, the
/// one that gave `d1`; without views the cosine to the image's own row. `None` if that row or
/// `q` is the zero vector.
fn cosine_to_nearest_view(
    q: ndarray::ArrayView1<f32>,
    gallery: &Array2<f32>,
    j: usize,
    n_train: usize,
    per_image: usize,
) -> Option<f64> {
    let sq = |r: ndarray::ArrayView1<f32>| -> f64 {
        q.iter()
            .zip(r)
            .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
            .sum()
    };
    let mut best = (f64::INFINITY, j);
    if per_image > 1 {
        for v in 0..per_image {
            let row = j + v * n_train;
            let d = sq(gallery.row(row));
            if d < best.0 {
                best = (d, row);
            }
        }
    }
    cosine(q, gallery.row(best.1))
}

/// Cosine similarity of two rows in f64; `None` if either is the zero vector.
fn cosine(a: ndarray::ArrayView1<f32>, b: ndarray::ArrayView1<f32>) -> Option<f64> {
    let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    (na > 0.0 && nb > 0.0).then(|| (dot / (na.sqrt() * nb.sqrt())).clamp(-1.0, 1.0))
}

pub(crate) fn search(
    index: &dyn Index,
    queries: &Array2<f32>,
    k: usize,
    what: &'static str,
    reporter: &dyn Reporter,
) -> Result<Neighbours, Error> {
    reporter.start(what, queries.nrows() as u64);
    let out = index.search(queries.view(), k, Exclude::None);
    reporter.advance(queries.nrows() as u64);
    reporter.finish();
    out.map_err(|source| Error::Index { what, source })
}

/// Synthetic → train and holdout → train neighbours through `index`; `plain` labels the
/// searches of the per-image index that the privacy metrics use beside views.
fn search_train(
    timer: &mut Timer,
    index: &dyn Index,
    (e_syn, e_hold): (&Array2<f32>, Option<&Array2<f32>>),
    k: usize,
    plain: bool,
    reporter: &dyn Reporter,
) -> Result<(Neighbours, Option<Neighbours>), Error> {
    let (syn, hold) = if plain {
        ("synthetic → train (plain)", "holdout → train (plain)")
    } else {
        ("synthetic → train", "holdout → train")
    };
    let stage = |what: &str| format!("search {}", what.replace(" → ", "→"));
    let nn_syn = timer.time(&stage(syn), || search(index, e_syn, k, syn, reporter))?;
    let nn_hold = match e_hold {
        Some(e) => Some(timer.time(&stage(hold), || search(index, e, k, hold, reporter))?),
        None => None,
    };
    Ok((nn_syn, nn_hold))
}

pub(crate) fn metric_err(what: &'static str) -> impl FnOnce(memscan_metrics::Error) -> Error {
    move |source| Error::Metrics { what, source }
}

/// One input role after ingest and embedding: what the rest of the pipeline needs.
pub(crate) struct RoleInput {
    /// One id per row of `e`.
    pub ids: Vec<String>,
    /// The embeddings (or given features), one row per image.
    pub e: Array2<f32>,
    /// What `summary.json` records under `inputs`.
    pub input: InputSet,
    /// The decoded images (`None` for `--features`: there are no pixels).
    pub images: Option<ImageSet>,
}

/// Every role after ingest and embedding.
pub(crate) struct Ingested {
    pub train: RoleInput,
    pub synthetic: RoleInput,
    pub holdout: Option<RoleInput>,
    pub reference: Option<RoleInput>,
    pub skipped: Vec<SkippedInput>,
    /// `summary.json`'s `embedder`.
    pub embedder: serde_json::Value,
    /// Sections this input kind cannot provide, with the reason (`metrics.absent`).
    pub absent: BTreeMap<String, String>,
    /// Describes the embedding space for cache keys (embedder and decoding configuration,
    /// or `features` and the normalization); never paths.
    pub space: String,
    /// Cache lookups so far.
    pub cache: Vec<crate::cache::Record>,
    /// Embeddings of the training images' views (crops and mirror), view-major
    /// ([`memscan_embed::views::embed_views`]), when [`crate::Views`] asks for them.
    pub train_views: Option<Array2<f32>>,
}

/// `--reference` without `--holdout` is a usage error.
pub(crate) fn reference_needs_holdout() -> Error {
    Error::Config(
        "--reference needs --holdout (the reference calibrates attacks on holdout \
         non-members)"
            .into(),
    )
}

/// Builds the embedder `embed` describes for images decoded with `io`.
///
/// A missing efficientnet-lite0 weights file is an error naming the path and the command that
/// fetches it.
pub fn make_embedder(
    embed: &crate::config::EmbedConfig,
    io: &memscan_io::IoConfig,
) -> Result<Box<dyn Embedder>, Error> {
    Ok(match &embed.kind {
        EmbedderKind::Pixel => Box::new(
            PixelEmbedder::new(usize::from(io.channels), io.size as usize)
                .map_err(Error::LoadEmbedder)?,
        ),
        EmbedderKind::Cnn { dir } => load_cnn(dir, io)?,
        EmbedderKind::CnnTrain(_) => {
            return Err(Error::Config(
                "`--embedder cnn --train-embedder` trains on the training images of an audit; \
                 train a model first with `memscan train-embedder --out DIR` and pass \
                 --embedder cnn:DIR"
                    .into(),
            ))
        }
        EmbedderKind::EfficientnetLite0 => {
            let path = embed.weights.clone().unwrap_or_else(default_weights);
            if !path.is_file() {
                return Err(Error::Config(format!(
                    "efficientnet-lite0 weights not found at {}: fetch them with `cargo xtask \
                     weights fetch efficientnet-lite0` in the memscan repository, or pass \
                     --embedder efficientnet-lite0:PATH",
                    path.display()
                )));
            }
            Box::new(EfficientNetLite0::load(&path).map_err(Error::LoadEmbedder)?)
        }
        EmbedderKind::Safetensors => {
            let (Some(path), Some(arch)) = (&embed.weights, embed.arch) else {
                return Err(Error::Config(
                    "the safetensors embedder needs a weights file and an architecture \
                     (--embedder safetensors:PATH --arch resnet18|resnet50|dinov2-s)"
                        .into(),
                ));
            };
            Box::new(Backbone::load(path, arch).map_err(Error::LoadEmbedder)?)
        }
    })
}

/// Content checks of whole sets (images or features): the synthetic set equal to the training
/// set is a warning; a real set (holdout, reference) equal to the training set, or the
/// reference equal to the holdout, is an error, since every calibrated metric would be void.
pub(crate) fn check_set_hashes(
    (train, synthetic): (&str, &str),
    (holdout, reference): (Option<&str>, Option<&str>),
    warn: &mut dyn FnMut(String),
) -> Result<(), Error> {
    if train == synthetic {
        warn("the synthetic set has the same content as the training set".into());
    }
    if holdout == Some(train) {
        return Err(Error::Inputs(
            "the holdout set has the same content as the training set; the holdout must be \
             real images the generator never saw"
                .into(),
        ));
    }
    if reference == Some(train) {
        return Err(Error::Inputs(
            "the reference set has the same content as the training set; the reference must \
             be real images the generator never saw, disjoint from the holdout"
                .into(),
        ));
    }
    if reference.is_some() && reference == holdout {
        return Err(Error::Inputs(
            "the reference set has the same content as the holdout set; it must be disjoint \
             from it (without --reference a seeded half of the holdout is the reference)"
                .into(),
        ));
    }
    Ok(())
}

/// Decodes and embeds the image sets.
fn ingest_images(
    cfg: &AuditConfig,
    reporter: &dyn Reporter,
    timer: &mut Timer,
    warn: &mut dyn FnMut(String),
) -> Result<Ingested, Error> {
    let train = timer.time("decode train", || load("train", &cfg.train, cfg, reporter))?;
    let synthetic = timer.time("decode synthetic", || {
        load("synthetic", &cfg.synthetic, cfg, reporter)
    })?;
    let holdout = match &cfg.holdout {
        Some(p) => Some(timer.time("decode holdout", || load("holdout", p, cfg, reporter))?),
        None => None,
    };
    let reference = match (&cfg.reference, &holdout) {
        (Some(p), Some(_)) => {
            Some(timer.time("decode reference", || load("reference", p, cfg, reporter))?)
        }
        (Some(_), None) => return Err(reference_needs_holdout()),
        (None, _) => None,
    };
    let mut skipped = Vec::new();
    for (role, set) in [
        ("train", Some(&train)),
        ("synthetic", Some(&synthetic)),
        ("holdout", holdout.as_ref()),
        ("reference", reference.as_ref()),
    ] {
        for s in set.map(|s| s.skipped.as_slice()).unwrap_or_default() {
            skipped.push(SkippedInput {
                role: role.into(),
                path: s.path.clone(),
                reason: s.reason.clone(),
            });
        }
    }
    if !skipped.is_empty() {
        warn(format!(
            "{} bad input file(s) skipped (--skip-bad); see `skipped`",
            skipped.len()
        ));
    }
    check_set_hashes(
        (&train.hash, &synthetic.hash),
        (
            holdout.as_ref().map(|h| h.hash.as_str()),
            reference.as_ref().map(|r| r.hash.as_str()),
        ),
        warn,
    )?;
    // Real sets must be disjoint; single shared images (a leak, or byte-identical blank
    // slices) are warned about.
    for (role, set, other_role, other) in [
        ("holdout", holdout.as_ref(), "train", Some(&train)),
        ("reference", reference.as_ref(), "train", Some(&train)),
        ("reference", reference.as_ref(), "holdout", holdout.as_ref()),
    ] {
        let (Some(set), Some(other)) = (set, other) else {
            continue;
        };
        let by_hash: std::collections::HashMap<&str, &str> = other
            .images
            .iter()
            .map(|i| (i.hash.as_str(), i.id.as_str()))
            .collect();
        let shared: Vec<(&str, &str)> = set
            .images
            .iter()
            .filter_map(|i| by_hash.get(i.hash.as_str()).map(|&o| (i.id.as_str(), o)))
            .collect();
        if let Some(&(a, b)) = shared.first() {
            warn(format!(
                "{} of {} {role} images have the same content as {other_role} images (e.g. \
                 {role} {a} = {other_role} {b}): the sets must be disjoint; unless they are \
                 blank images, this is a leak that biases the calibrated metrics",
                shared.len(),
                set.images.len()
            ));
        }
    }

    // --- embed ----------------------------------------------------------------------
    let (embedder, model_record) =
        timer.time("embedder", || audit_embedder(cfg, &train, reporter))?;
    let embed = |role: &'static str, set: &ImageSet, timer: &mut Timer| {
        timer.time(&format!("embed {role}"), || {
            embed_all(
                embedder.as_ref(),
                &set.images,
                &format!("embed {role}"),
                reporter,
            )
            .map_err(|source| Error::Embed { role, source })
        })
    };
    // Real sets are reused across audits: their embeddings are cached (the synthetic set,
    // audited once, is not).
    let space = format!(
        "{}\n{}",
        serde_json::to_string(&embedder.info()).expect("embedder info serializes"),
        serde_json::to_string(&cfg.io).expect("io config serializes")
    );
    let mut records: Vec<Record> = model_record.into_iter().collect();
    let cache = cfg.cache.as_ref().filter(|_| embedder.cache_embeddings());
    // Looks `role`'s embeddings up under `hash` (content of what is embedded) and the space,
    // else computes and stores them.
    let mut cached = |role: &'static str,
                      hash: &str,
                      ids: &[String],
                      compute: &dyn Fn(&mut Timer) -> Result<Array2<f32>, Error>,
                      timer: &mut Timer| {
        let Some(cache) = cache else {
            return compute(timer);
        };
        let key = crate::cache::key("embeddings", &[hash, &space]);
        let path = cache.embeddings_dir(&key).display().to_string();
        let outcome = match timer.time(&format!("cache: read {role} embeddings"), || {
            cache.load_embeddings(&key, ids)
        }) {
            Lookup::Hit(e) => {
                records.push(Record {
                    entry: format!("embeddings {role}"),
                    outcome: "hit",
                    path,
                });
                return Ok(e);
            }
            Lookup::Miss => "miss",
            Lookup::Corrupt(why) => {
                warn(format!(
                    "cache entry {path} is corrupt ({why}); recomputing the {role} \
                         embeddings"
                ));
                "rebuilt"
            }
        };
        let e = compute(timer)?;
        let outcome = match timer.time(&format!("cache: write {role} embeddings"), || {
            cache.store_embeddings(&key, e.view(), ids)
        }) {
            Ok(()) => outcome,
            Err(err) => {
                warn(format!(
                    "cannot cache the {role} embeddings: {}",
                    crate::error::chain(&err)
                ));
                "store_failed"
            }
        };
        records.push(Record {
            entry: format!("embeddings {role}"),
            outcome,
            path,
        });
        Ok(e)
    };
    let mut real = |role: &'static str, set: &ImageSet, timer: &mut Timer| {
        cached(role, &set.hash, &ids(set), &|t| embed(role, set, t), timer)
    };
    let e_train = real("train", &train, timer)?;
    let e_syn = embed("synthetic", &synthetic, timer)?;
    let e_hold = match &holdout {
        Some(h) => Some(real("holdout", h, timer)?),
        None => None,
    };
    let e_ref = match &reference {
        Some(r) => Some(real("reference", r, timer)?),
        None => None,
    };
    let train_views = if cfg.index.views.crops(&cfg.embed.kind, train.images.len()) {
        let role = "train views";
        let view_ids: Vec<String> = (0..memscan_embed::views::VIEWS)
            .flat_map(|v| {
                train
                    .images
                    .iter()
                    .map(move |i| memscan_embed::views::view_id(&i.id, v))
            })
            .collect();
        let compute = |t: &mut Timer| {
            t.time(&format!("embed {role}"), || {
                memscan_embed::views::embed_views(
                    embedder.as_ref(),
                    &train.images,
                    &format!("embed {role}"),
                    reporter,
                )
                .map_err(|source| Error::Embed { role, source })
            })
        };
        let hash = format!("{} views v1", train.hash);
        Some(cached(role, &hash, &view_ids, &compute, timer)?)
    } else {
        None
    };

    let role = |set: ImageSet, e: Array2<f32>| RoleInput {
        ids: ids(&set),
        e,
        input: input_set(&set),
        images: Some(set),
    };
    Ok(Ingested {
        train: role(train, e_train),
        synthetic: role(synthetic, e_syn),
        holdout: holdout.zip(e_hold).map(|(s, e)| role(s, e)),
        reference: reference.zip(e_ref).map(|(s, e)| role(s, e)),
        skipped,
        embedder: serde_json::to_value(embedder.info()).expect("embedder info serializes"),
        absent: BTreeMap::new(),
        space,
        cache: records,
        train_views,
    })
}

impl Audit {
    /// Runs the whole pipeline described by `cfg`. Progress and warnings go to `reporter`;
    /// warnings are also recorded in `summary.json`.
    pub fn run(cfg: &AuditConfig, reporter: &dyn Reporter) -> Result<Audit, Error> {
        let mut timer = Timer {
            timings: Vec::new(),
        };
        let mut warnings: Vec<String> = Vec::new();
        let mut absent: BTreeMap<String, String> = BTreeMap::new();
        let warn = |warnings: &mut Vec<String>, msg: String| {
            reporter.warn(&msg);
            warnings.push(msg);
        };

        // --- ingest + embed (images), or read the given features ---------------------------
        let ingested = if cfg.features.is_some() {
            crate::features::ingest(cfg, &mut timer, &mut |m| warn(&mut warnings, m))?
        } else {
            ingest_images(cfg, reporter, &mut timer, &mut |m| warn(&mut warnings, m))?
        };
        let Ingested {
            train,
            synthetic,
            holdout,
            reference,
            skipped,
            embedder: embedder_info,
            absent: ingest_absent,
            space,
            cache: mut cache_records,
            train_views,
        } = ingested;
        absent.extend(ingest_absent);
        let is_features = cfg.features.is_some();
        let RoleInput {
            ids: train_ids,
            e: e_train,
            input: train_input,
            images: train_images,
        } = train;
        let RoleInput {
            ids: syn_ids,
            e: e_syn,
            input: syn_input,
            images: syn_images,
        } = synthetic;
        let (e_hold, hold_input, hold_images) = match holdout {
            Some(h) => (Some(h.e), Some(h.input), h.images),
            None => (None, None, None),
        };
        let (e_ref, ref_input) = match reference {
            Some(r) => (Some(r.e), Some(r.input)),
            None => (None, None),
        };
        let n_train = e_train.nrows();

        // --- neighbours -----------------------------------------------------------------
        // With views (crops and mirror) the index holds every training image and then each of its views,
        // view-major, and answers per training image (`ViewIndex`).
        let gallery: Option<Array2<f32>> = train_views.map(|v| {
            ndarray::concatenate(ndarray::Axis(0), &[e_train.view(), v.view()])
                .expect("views have the training embeddings' width")
        });
        let base = gallery.as_ref().unwrap_or(&e_train);
        let views_per_image = base.nrows() / n_train.max(1);
        let use_hnsw = match cfg.index.kind {
            IndexKind::Exact => false,
            IndexKind::Hnsw => true,
            IndexKind::Auto => {
                base.nrows() >= memscan_index::auto_threshold(cfg.index.hnsw.deterministic)
            }
        };
        let index_err = |source| Error::Index {
            what: "building the train index",
            source,
        };
        let train_index: Box<dyn Index> = if use_hnsw {
            let mut h = cfg.index.hnsw;
            if cfg.index.ef_search_by_size {
                h.ef_search = memscan_index::default_ef_search(base.nrows());
            }
            if cfg.index.m_by_size {
                h.m = memscan_index::default_m(base.nrows());
            }
            let h = &h;
            let cached = cfg.cache.as_ref().map(|c| {
                let params = format!(
                    "m={} ef_construction={} deterministic={} views={views_per_image}",
                    h.m, h.ef_construction, h.deterministic
                );
                let key = crate::cache::key("hnsw", &[&train_input.content_hash, &space, &params]);
                (c, key)
            });
            let mut outcome = None;
            if let Some((c, key)) = &cached {
                match timer.time("cache: read train hnsw", || {
                    c.load_hnsw(key, base.view(), h)
                }) {
                    Lookup::Hit(index) => outcome = Some(("hit", Some(index))),
                    Lookup::Miss => outcome = Some(("miss", None)),
                    Lookup::Corrupt(why) => {
                        warn(
                            &mut warnings,
                            format!(
                                "cache entry {} is corrupt ({why}); rebuilding the HNSW graph",
                                c.hnsw_dir(key).display()
                            ),
                        );
                        outcome = Some(("rebuilt", None));
                    }
                }
            }
            let index = match outcome.as_mut().and_then(|o| o.1.take()) {
                Some(index) => index,
                None => timer.time("index train (hnsw)", || {
                    HnswIndex::build(base.view(), h).map_err(index_err)
                })?,
            };
            if let (Some((c, key)), Some((mut o, _))) = (&cached, outcome) {
                if o != "hit" {
                    if let Err(err) =
                        timer.time("cache: write train hnsw", || c.store_hnsw(key, &index))
                    {
                        warn(
                            &mut warnings,
                            format!("cannot cache the HNSW graph: {}", crate::error::chain(&err)),
                        );
                        o = "store_failed";
                    }
                }
                cache_records.push(Record {
                    entry: "hnsw train".into(),
                    outcome: o,
                    path: c.hnsw_dir(key).display().to_string(),
                });
            }
            Box::new(index) as Box<dyn Index>
        } else {
            timer.time("index train", || {
                ExactIndex::new(base.view())
                    .map(|i| Box::new(i) as Box<dyn Index>)
                    .map_err(index_err)
            })?
        };
        let train_index: Box<dyn Index> = if views_per_image > 1 {
            Box::new(ViewIndex::new(train_index, n_train, views_per_image).map_err(index_err)?)
        } else {
            train_index
        };
        let mut index_json = serde_json::to_value(train_index.info()).expect("index info");
        index_json["requested"] = serde_json::to_value(cfg.index.kind).expect("kind");
        // Rows per training image: 1, or the image and its views (`--views`).
        index_json["views_per_image"] = views_per_image.into();
        if use_hnsw && cfg.index.verify_recall > 0 {
            let recall = timer.time("verify recall", || {
                let exact: Box<dyn Index> =
                    Box::new(ExactIndex::new(base.view()).map_err(index_err)?);
                let exact = if views_per_image > 1 {
                    Box::new(ViewIndex::new(exact, n_train, views_per_image).map_err(index_err)?)
                } else {
                    exact
                };
                let k = 2.min(n_train);
                verify_recall(
                    train_index.as_ref(),
                    exact.as_ref(),
                    e_syn.view(),
                    cfg.index.verify_recall,
                    k,
                    cfg.seed,
                )
                .map_err(|source| Error::Index {
                    what: "verifying recall",
                    source,
                })
            })?;
            if recall.at_1 < 0.99 {
                warn(
                    &mut warnings,
                    format!(
                        "HNSW recall@1 is {:.4} on {} synthetic queries (< 0.99): raise \
                         --ef-search or use --index exact",
                        recall.at_1, recall.n
                    ),
                );
            }
            index_json["recall"] = serde_json::to_value(recall).expect("recall");
        }
        let k = if n_train >= 2 { 2 } else { 1 };
        if k == 1 {
            warn(
                &mut warnings,
                "only one training image: the ratio test needs two".into(),
            );
        }
        let (nn_syn, nn_hold) = search_train(
            &mut timer,
            train_index.as_ref(),
            (&e_syn, e_hold.as_ref()),
            k,
            false,
            reporter,
        )?;

        let n_syn = e_syn.nrows();
        let d1_syn: Vec<f64> = (0..n_syn).map(|i| nn_syn.nearest(i).1).collect();
        let nn1_syn: Vec<usize> = (0..n_syn).map(|i| nn_syn.nearest(i).0 as usize).collect();
        let d2_syn: Option<Vec<f64>> =
            (k == 2).then(|| (0..n_syn).map(|i| nn_syn.row(i).1[1]).collect());
        let cos_syn: Vec<Option<f64>> = (0..n_syn)
            .map(|i| {
                cosine_to_nearest_view(e_syn.row(i), base, nn1_syn[i], n_train, views_per_image)
            })
            .collect();

        // --- metrics --------------------------------------------------------------------
        let m = &cfg.metrics;

        // Calibrated copy rates.
        let mut flags_at: Vec<Option<Vec<bool>>> = vec![None; m.fprs.len()];
        let mut copy_rates = None;
        let mut primary_flags: Option<Vec<bool>> = None;
        let hold_d1: Option<Vec<f64>> = nn_hold
            .as_ref()
            .map(|nn| (0..nn.len()).map(|i| nn.nearest(i).1).collect());
        // Holdout images at distance 0 from train: in the null, and they decide whether an
        // exact synthetic match is evidence (`verdict`).
        let n_exact_hold = hold_d1
            .as_ref()
            .map_or(0, |h| h.iter().filter(|&&d| d == 0.0).count());
        if let Some(null) = &hold_d1 {
            if n_exact_hold > 0 {
                warn(
                    &mut warnings,
                    format!(
                        "{n_exact_hold} of {} holdout images are at distance 0 from a training image \
                         (identical in this embedding: blank images, or the same image in both \
                         sets); they belong to the null distribution and pull the copy \
                         threshold down",
                        null.len()
                    ),
                );
            }
            let mut rates = Vec::new();
            for (slot, &fpr) in flags_at.iter_mut().zip(&m.fprs) {
                let th = copy_rate::calibrate(null, fpr).map_err(metric_err("the copy rate"))?;
                if th.value == 0.0 {
                    warn(
                        &mut warnings,
                        format!(
                            "the copy threshold at fpr={fpr} is 0 (more than {fpr} of the \
                             holdout is at distance 0 from train): no synthetic image can be \
                             flagged at that rate, not even an exact copy"
                        ),
                    );
                }
                if !th.resolvable {
                    warn(
                        &mut warnings,
                        format!(
                            "a holdout of {} images cannot resolve fpr={fpr}: at least {} are \
                             needed; the threshold is the smallest holdout distance",
                            null.len(),
                            (1.0 / fpr).ceil()
                        ),
                    );
                }
                let rate = copy_rate::copy_rate(&d1_syn, &th, null)
                    .map_err(metric_err("the copy rate"))?;
                let flags = copy_rate::copy_flags(&d1_syn, th.value);
                let primary = fpr == m.primary_fpr;
                if primary {
                    primary_flags = Some(flags.clone());
                }
                *slot = Some(flags);
                rates.push(Defined::new(
                    CalibratedRate {
                        rate,
                        primary,
                        n_holdout: null.len(),
                        resolvable: th.resolvable,
                    },
                    DEF_COPY_RATE,
                ));
            }
            copy_rates = Some(rates);
        } else {
            let why = "requires --holdout (real images the generator never saw) to calibrate the threshold";
            absent.insert("copy_rate".into(), why.into());
            absent.insert("train_copied_fraction".into(), why.into());
            warn(
                &mut warnings,
                "no --holdout: the calibrated copy rate, training images copied, the \
                 membership-inference attacks, C_T and the DCR test are not computed"
                    .into(),
            );
        }

        // Fixed cosine threshold.
        let cos_vals: Vec<f64> = cos_syn.iter().map(|c| c.unwrap_or(f64::NAN)).collect();
        let fixed = match m.cosine_threshold {
            Some(t) => Some(Defined::new(
                copy_rate::fixed_threshold_rate(&cos_vals, t)
                    .map_err(metric_err("the fixed-threshold rate"))?,
                DEF_FIXED,
            )),
            None => None,
        };

        // Ratio test (needs two training images).
        let ratios: Option<Vec<f64>> = d2_syn.as_ref().map(|d2| {
            d1_syn
                .iter()
                .zip(d2)
                .map(|(&a, &b)| ratio::ratio(a, b))
                .collect()
        });
        let ratio_rate = match &d2_syn {
            Some(d2) => Some(Defined::new(
                ratio::ratio_rate(&d1_syn, d2, m.ratio_threshold)
                    .map_err(metric_err("the ratio test"))?,
                DEF_RATIO,
            )),
            None => {
                absent.insert(
                    "ratio_rate".into(),
                    "the ratio test needs at least two training images".into(),
                );
                None
            }
        };

        // Similarity profiles.
        let hold_cos: Option<Vec<f64>> = match (&nn_hold, &e_hold) {
            (Some(nn), Some(e)) => Some(
                (0..nn.len())
                    .map(|i| {
                        let j = nn.nearest(i).0 as usize;
                        cosine_to_nearest_view(e.row(i), base, j, n_train, views_per_image)
                            .unwrap_or(f64::NAN)
                    })
                    .collect(),
            ),
            _ => None,
        };
        let similarity = Similarity {
            synthetic: profile::similarity_profile(&cos_vals),
            holdout: hold_cos.as_deref().and_then(profile::similarity_profile),
        };

        // Training images copied.
        let train_copied = match &primary_flags {
            Some(flags) => Some(
                copies::train_copied(&nn1_syn, &d1_syn, flags, n_train, m.top_n)
                    .map_err(metric_err("training images copied"))?,
            ),
            None => None,
        };
        let copies_per_train = match &primary_flags {
            Some(flags) => Some(
                copies::copy_counts(&nn1_syn, flags, n_train)
                    .map_err(metric_err("copies per training image"))?,
            ),
            None => None,
        };

        // Membership inference (distance attack) and train→synthetic neighbours.
        let syn_index = timer.time("index synthetic", || {
            ExactIndex::new(e_syn.view()).map_err(|source| Error::Index {
                what: "building the synthetic index",
                source,
            })
        })?;
        let nn_train_syn = timer.time("search train→synthetic", || {
            search(&syn_index, &e_train, 1, "train → synthetic", reporter)
        })?;
        let train_d_syn: Vec<f64> = (0..n_train).map(|i| nn_train_syn.nearest(i).1).collect();
        let nn_hold_syn = match &e_hold {
            Some(e_h) => Some(timer.time("search holdout→synthetic", || {
                search(&syn_index, e_h, 1, "holdout → synthetic", reporter)
            })?),
            None => None,
        };
        // The privacy metrics (AuthPct, mDCR, identifiability) are defined on one embedding
        // per training image: with views they search a plain index of their own.
        let plain_index: Option<Box<dyn Index>> = if views_per_image > 1 {
            Some(timer.time("index train (plain, for privacy metrics)", || {
                if use_hnsw {
                    HnswIndex::build(e_train.view(), &cfg.index.hnsw)
                        .map(|i| Box::new(i) as Box<dyn Index>)
                        .map_err(index_err)
                } else {
                    ExactIndex::new(e_train.view())
                        .map(|i| Box::new(i) as Box<dyn Index>)
                        .map_err(index_err)
                }
            })?)
        } else {
            None
        };
        let privacy_index = plain_index.as_deref().unwrap_or(train_index.as_ref());
        // Without views the copy search's neighbours are the per-image ones: borrowed below.
        let plain_nn = match &plain_index {
            Some(plain) => {
                let (nn, hold) = search_train(
                    &mut timer,
                    plain.as_ref(),
                    (&e_syn, e_hold.as_ref()),
                    1,
                    true,
                    reporter,
                )?;
                Some((
                    (0..n_syn)
                        .map(|i| nn.nearest(i).0 as usize)
                        .collect::<Vec<_>>(),
                    (0..n_syn).map(|i| nn.nearest(i).1).collect::<Vec<_>>(),
                    hold,
                ))
            }
            None => None,
        };
        let (p_nn1_syn, p_d1_syn, p_nn_hold) = match &plain_nn {
            Some((nn1, d1, hold)) => (nn1.as_slice(), d1.as_slice(), hold.as_ref()),
            None => (nn1_syn.as_slice(), d1_syn.as_slice(), nn_hold.as_ref()),
        };
        let r_train: Option<Vec<f64>> = if n_train >= 2 {
            let nn = timer.time("search train→train", || {
                reporter.start("train → train", e_train.nrows() as u64);
                let out = privacy_index
                    .search(e_train.view(), 1, Exclude::SameIndex)
                    .map_err(|source| Error::Index {
                        what: "train → train",
                        source,
                    });
                reporter.finish();
                out
            })?;
            Some((0..nn.len()).map(|i| nn.nearest(i).1).collect())
        } else {
            None
        };

        // --- groups: --groups CSV, else --group-by metadata (default: patient if known) ----
        let groups = match &cfg.groups {
            Some(p) => Some(Groups::read(p)?),
            None => {
                let sets: Vec<&ImageSet> = train_images.iter().chain(&hold_images).collect();
                let by = cfg.group_by.unwrap_or(GroupBy::Patient);
                let g = Groups::from_meta(by, &sets);
                if g.is_none() && cfg.group_by.is_some_and(|b| b != GroupBy::None) {
                    warn(
                        &mut warnings,
                        format!(
                            "--group-by {}: no train or holdout image has that metadata; no \
                             per-patient results",
                            by.name()
                        ),
                    );
                }
                g
            }
        };
        let hold_d_syn: Option<Vec<f64>> = nn_hold_syn
            .as_ref()
            .map(|nn| (0..nn.len()).map(|i| nn.nearest(i).1).collect());
        let ctx = privacy::Context {
            cfg,
            reporter,
            e_train: &e_train,
            e_syn: &e_syn,
            e_hold: e_hold.as_ref(),
            e_ref: e_ref.as_ref(),
            syn_index: &syn_index,
            train_d_syn: &train_d_syn,
            hold_d_syn: hold_d_syn.as_deref(),
            nn1_syn: p_nn1_syn,
            d1_syn: p_d1_syn,
            copy_nn1: &nn1_syn,
            nn_hold: p_nn_hold,
            r_train: r_train.as_deref(),
            primary_flags: primary_flags.as_deref(),
            groups: groups.as_ref().map(|g| privacy::GroupAssignment {
                groups: g,
                train: train_images
                    .as_ref()
                    .map(|t| g.assign_set(t))
                    .unwrap_or_default(),
                holdout: hold_images
                    .as_ref()
                    .map(|h| g.assign_set(h))
                    .unwrap_or_default(),
            }),
        };
        let mut metrics = Metrics {
            copy_rate: copy_rates,
            fixed_threshold: fixed,
            ratio_rate: ratio_rate.as_ref().map(|r| r.value.rate),
            ratio: ratio_rate,
            similarity: Defined::new(similarity, DEF_SIMILARITY),
            train_copied_fraction: train_copied.as_ref().map(|t| t.fraction),
            train_copied: train_copied.as_ref().map(|t| {
                Defined::new(
                    TrainCopiedNamed::from_indices(t, &train_ids, &syn_ids),
                    DEF_TRAIN_COPIED,
                )
            }),
            mia: None,
            authpct: None,
            c_t: None,
            dcr: None,
            identifiability: None,
            mdcr: None,
            groups: None,
            metadata_leakage: None,
            absent,
        };
        let train_scores = privacy::compute(&ctx, &mut metrics, &mut timer.timings, &mut |m| {
            warn(&mut warnings, m)
        })?;

        // --- metadata leakage (synthetic DICOM attributes vs training) ---------------------
        let leakage = match (&train_images, &syn_images) {
            (Some(t), Some(s)) => crate::leakage::check(&t.meta, &syn_ids, &s.meta),
            _ => crate::leakage::Leakage {
                metric: None,
                absent: Some(crate::features::NO_METADATA.into()),
                warnings: Vec::new(),
            },
        };
        if let Some(why) = leakage.absent {
            metrics.absent.insert("metadata_leakage".into(), why);
        }
        metrics.metadata_leakage = leakage.metric;
        for w in leakage.warnings {
            warn(&mut warnings, w);
        }

        // --- rows -----------------------------------------------------------------------
        let synthetic_rows: Vec<SyntheticRow> = (0..n_syn)
            .map(|i| SyntheticRow {
                synthetic: syn_ids[i].clone(),
                train: train_ids[nn1_syn[i]].clone(),
                distance: d1_syn[i],
                cosine: cos_syn[i],
                distance2: d2_syn.as_ref().map(|d| d[i]),
                ratio: ratios.as_ref().map(|r| r[i]),
                copy: primary_flags.as_ref().map(|f| f[i]),
                ratio_copy: ratios.as_ref().map(|r| r[i] < m.ratio_threshold),
                copy_at: flags_at.iter().map(|f| f.as_ref().map(|f| f[i])).collect(),
                threshold_copy: m
                    .cosine_threshold
                    .map(|t| cos_syn[i].is_some_and(|c| c > t)),
                train2: (k == 2).then(|| train_ids[nn_syn.row(i).0[1] as usize].clone()),
            })
            .collect();
        let train_rows: Vec<TrainRow> = (0..n_train)
            .map(|j| TrainRow {
                train: train_ids[j].clone(),
                copies: copies_per_train.as_ref().map(|c| c[j]),
                nearest_synthetic: syn_ids[nn_train_syn.nearest(j).0 as usize].clone(),
                distance: train_d_syn[j],
                mia_member_sample: train_scores.member_sample[j],
                mia_scores: train_scores.scores.iter().map(|s| s[j]).collect(),
            })
            .collect();

        // --- gallery (report.html) ---------------------------------------------------------
        let visuals = timer.time("gallery", || match (&train_images, &syn_images) {
            (Some(train), Some(synthetic)) => {
                crate::gallery::build(crate::gallery::GalleryInputs {
                    train,
                    synthetic,
                    nn1: &nn1_syn,
                    rows: &synthetic_rows,
                    train_copied: train_copied.as_ref(),
                    holdout_distance: hold_d1.clone(),
                    holdout_cosine: hold_cos.clone(),
                    no_images: cfg.no_images,
                })
            }
            _ => Ok(crate::features::no_gallery(
                cfg.no_images,
                hold_d1.clone(),
                hold_cos.clone(),
            )),
        })?;

        // --- summary --------------------------------------------------------------------
        let n_exact = d1_syn.iter().filter(|&&d| d == 0.0).count();
        let verdict = verdict(
            &metrics,
            m.primary_fpr,
            (n_exact, n_exact_hold),
            n_syn,
            is_features,
        );
        let metrics_json = serde_json::to_value(&metrics).expect("metrics serialize");
        let mut budgets = Vec::new();
        for b in &cfg.budgets {
            let (value, exceeded) = b.check(&metrics_json)?;
            budgets.push(BudgetCheck {
                expression: b.expression.clone(),
                value,
                exceeded,
            });
        }
        let budget_exceeded = budgets.iter().any(|b| b.exceeded);
        let summary = Summary {
            memscan: Tool {
                version: env!("CARGO_PKG_VERSION").into(),
                schema: SCHEMA_VERSION,
            },
            seed: cfg.seed,
            inputs: memscan_report::Inputs {
                train: train_input,
                synthetic: syn_input,
                holdout: hold_input,
                reference: ref_input,
            },
            config: serde_json::to_value(cfg).expect("config serializes"),
            embedder: embedder_info,
            index: index_json,
            metrics,
            verdict: Verdict {
                budget_exceeded,
                ..verdict
            },
            budgets,
            skipped,
            warnings,
            runtime: Runtime {
                threads: rayon::current_num_threads(),
                timings_s: timer.timings,
                cache: cache_records
                    .iter()
                    .map(|r| serde_json::to_value(r).expect("cache record serializes"))
                    .collect(),
            },
        };
        Ok(Audit {
            output: AuditOutput {
                summary,
                synthetic: synthetic_rows,
                train: train_rows,
                fprs: m.fprs.clone(),
                visuals,
            },
        })
    }
}

/// The verdict. `n_exact` synthetic and `n_exact_hold` holdout images are at distance 0 from
/// a training image. An exact synthetic match alone makes the status `memorization`, unless
/// holdout images match exactly too: then distance 0 is part of the null (blank slices, images
/// shared by the sets) and only the calibrated rate decides.
fn verdict(
    m: &Metrics,
    primary_fpr: f64,
    (n_exact, n_exact_hold): (usize, usize),
    n_syn: usize,
    features: bool,
) -> Verdict {
    let mut exact = if n_exact > 0 && features {
        format!(
            " {n_exact} synthetic feature vector(s) are identical to a training image's \
             (distance 0)."
        )
    } else if n_exact > 0 {
        format!(
            " {n_exact} synthetic image(s) are identical to a training image as compared \
             (distance 0)."
        )
    } else {
        String::new()
    };
    if n_exact > 0 && n_exact_hold > 0 {
        exact.push_str(&format!(
            " So are {n_exact_hold} holdout image(s), which the generator never saw (blank \
             images, or images in both sets?): a distance of 0 is not by itself evidence here."
        ));
    }
    let exact_evidence = n_exact > 0 && n_exact_hold == 0;
    let primary = m
        .copy_rate
        .as_ref()
        .and_then(|rates| rates.iter().find(|r| r.value.primary))
        .map(|r| &r.value.rate);
    let (status, message) = match primary {
        Some(c) => {
            let significant = c.ci95[0] > primary_fpr;
            let msg = format!(
                "{} of {} synthetic images ({:.2} %, 95 % CI {:.2}–{:.2} %) are closer to the \
                 training set than {} % of holdout images are; {:.2} % expected by chance.{exact}",
                c.count,
                c.n,
                100.0 * c.rate,
                100.0 * c.ci95[0],
                100.0 * c.ci95[1],
                100.0 * (1.0 - primary_fpr),
                100.0 * primary_fpr,
            );
            let status = if significant || exact_evidence {
                "memorization"
            } else {
                "no_evidence"
            };
            (status, msg)
        }
        None => (
            if exact_evidence {
                "memorization"
            } else {
                "inconclusive"
            },
            format!(
                "no holdout to calibrate against; the ratio test flags {} of {n_syn} synthetic \
                 images.{exact}",
                m.ratio.as_ref().map_or(0, |r| r.value.count)
            ),
        ),
    };
    Verdict {
        status: status.into(),
        message,
        budget_exceeded: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn view_cosine_is_the_cosine_of_the_row_that_gave_d1() {
        // Two training images, three rows each (image, then two views), view-major:
        // rows 0, 1 = images; 2, 3 = first views; 4, 5 = second views. Unit vectors.
        let s = std::f32::consts::FRAC_1_SQRT_2;
        let gallery = array![
            [1.0f32, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [0.0, 0.0, 1.0],
            [0.0, s, s],
            [s, 0.0, s],
            [-1.0, 0.0, 0.0],
        ];
        // q equals image 0's first view (row 2): d1 = 0, so the cosine is 1 = 1 − d1²/2,
        // while the cosine to image 0's own row is 0.
        let q = array![0.0f32, 0.0, 1.0];
        let c = cosine_to_nearest_view(q.view(), &gallery, 0, 2, 3).unwrap();
        assert!((c - 1.0).abs() < 1e-12, "{c}");
        assert_eq!(cosine(q.view(), gallery.row(0)), Some(0.0));
        // Nearest view of image 1 to q is row 3 (cos 1/√2), not row 5 (cos 0) or row 1 (0).
        let c = cosine_to_nearest_view(q.view(), &gallery, 1, 2, 3).unwrap();
        assert!((c - f64::from(s)).abs() < 1e-6, "{c}");
        // Without views: the image's own row.
        let plain = gallery.slice(ndarray::s![0..2, ..]).to_owned();
        let c = cosine_to_nearest_view(q.view(), &plain, 0, 2, 1);
        assert_eq!(c, Some(0.0));
    }
}
