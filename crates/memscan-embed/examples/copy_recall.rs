//! Measures what the `cnn` embedder's training choices do to copy detection, without the
//! whole bench: trains on a phantom dataset spec's training images, then for each copy
//! transform (severity 0.5, one copy per training image) reports the recall of the calibrated
//! copy test at α = 0.01 (threshold = the ⌊α·n⌋+1-th smallest holdout nearest-train distance,
//! as `copy_rate::calibrate`), the share of novel images flagged, and distance percentiles.
//!
//! ```sh
//! cargo run --release -p memscan-embed --example copy_recall -- SPEC.toml [KEY=VALUE ...]
//! ```
//!
//! Keys: `epochs`, `batch`, `tau`, `lr`, `pool` (mean|flatten|gem), `proj` (projection-head
//! width, 0 = none), `smooth` (binomial input filter passes), `aug` (augmentation strength
//! scale), `anchor` (probability that the first view is the image itself), `crop_p` (probability
//! of the crop-resize augmentation), `koleo` (weight of the KoLeo spreading term), `seed`,
//! `widths` (16,32,64), `canon` (off|moments|windowed: input canonicalization).
//!
//! `embedder=pixel` trains nothing and measures the pixel embedder instead, on the images
//! canonicalized by `canon` (default off): what canonicalization alone does in pixel space.

use memscan_datasets::{build, CopyTransform, DatasetSpec};
use memscan_embed::canon::{canonicalized, Canon};
use memscan_embed::cnn::{Config, Pool};
use memscan_embed::train::{train, TrainConfig};
use memscan_embed::views::{crop_resized, view};
use memscan_embed::{embed_all, CnnEmbedder, PixelEmbedder};
use memscan_io::{Image, NoReporter};
use ndarray::Array2;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::time::Instant;

/// The allocator of the `memscan` binary, so that the speed measured is the CLI's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn images(set: &[Vec<f32>], size: usize, tag: &str) -> Vec<Image> {
    set.iter()
        .enumerate()
        .map(|(i, p)| Image {
            id: format!("{tag}{i}"),
            hash: String::new(),
            channels: 1,
            height: size,
            width: size,
            pixels: p.clone(),
        })
        .collect()
}

/// Nearest-row distance from each row of `q` to the rows of `base` (rows L2-normalized or not).
fn nearest(q: &Array2<f32>, base: &Array2<f32>) -> Vec<(f64, usize)> {
    let g = q.dot(&base.t());
    let qn: Vec<f32> = q.rows().into_iter().map(|r| r.dot(&r)).collect();
    let bn: Vec<f32> = base.rows().into_iter().map(|r| r.dot(&r)).collect();
    g.rows()
        .into_iter()
        .enumerate()
        .map(|(i, row)| {
            let mut best = (f64::INFINITY, 0);
            for (j, &v) in row.iter().enumerate() {
                let d2 = f64::from(qn[i] + bn[j] - 2.0 * v).max(0.0);
                if d2 < best.0 {
                    best = (d2, j);
                }
            }
            (best.0.sqrt(), best.1)
        })
        .collect()
}

/// The training set and its views as `gallery=` says: `views` (the library's views,
/// as `scan --views crops`) or `crops:SIDE[:K]` joined by `+` (SIDE-fraction crops at the
/// four corners and the centre, or on a K × K grid). Row `k·n_train + i` of the result is a
/// view of training image `i`.
fn gallery(train: &[Vec<f32>], n: usize, spec: Option<&str>) -> Vec<Vec<f32>> {
    let imgs = images(train, n, "g");
    let mut out = train.to_vec();
    if spec == Some("views") {
        for v in 0..memscan_embed::views::VIEWS {
            out.extend(imgs.iter().map(|t| view(t, v).pixels));
        }
        return out;
    }
    for part in spec.into_iter().flat_map(|s| s.split('+')) {
        let mut it = part
            .strip_prefix("crops:")
            .expect("crops:SIDE[:K]")
            .split(':');
        let side: f32 = it.next().unwrap().parse().expect("crops:SIDE");
        let pos: Vec<(f32, f32)> = match it.next() {
            None => vec![(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0), (0.5, 0.5)],
            Some(k) => {
                let k: usize = k.parse().expect("K");
                let f = |i: usize| {
                    if k == 1 {
                        0.5
                    } else {
                        i as f32 / (k - 1) as f32
                    }
                };
                (0..k * k).map(|p| (f(p % k), f(p / k))).collect()
            }
        };
        for (fx, fy) in pos {
            out.extend(imgs.iter().map(|t| crop_resized(t, side, fx, fy).pixels));
        }
    }
    out
}

fn pct(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[((p * (s.len() - 1) as f64).round() as usize).min(s.len() - 1)]
}

fn main() {
    memscan_embed::prefer_single_candle_thread();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let spec_path = args.first().expect("SPEC.toml");
    let kv: HashMap<&str, &str> = args[1..]
        .iter()
        .map(|a| a.split_once('=').expect("KEY=VALUE"))
        .collect();
    let get = |k: &str| kv.get(k).copied();
    let text = std::fs::read_to_string(spec_path).expect("spec");
    let spec: DatasetSpec = toml::from_str(&text).expect("spec toml");
    let ds = build(&spec, std::path::Path::new("datasets/cache")).expect("build");
    let n = ds.size as usize;
    let train_imgs = images(&ds.train, n, "t");

    let mut model = Config::small(1, n);
    if let Some(p) = get("pool") {
        model.pool = match p {
            "mean" => Pool::Mean,
            "flatten" => Pool::Flatten,
            "gem" => Pool::Gem,
            _ => panic!("pool"),
        };
    }
    if let Some(w) = get("widths") {
        model.widths = w.split(',').map(|x| x.parse().unwrap()).collect();
    }
    if let Some(p) = get("smooth") {
        model.smooth = p.parse().unwrap();
    }
    if let Some(p) = get("proj") {
        model.proj = p.parse().unwrap();
    }
    if let Some(c) = get("canon") {
        model.canon = parse_canon(c);
    }
    if get("embedder") == Some("pixel") {
        let canon = get("canon").map_or(Canon::Off, parse_canon);
        let prep = |set: &[Vec<f32>]| -> Vec<Vec<f32>> {
            match canon {
                Canon::Off => set.to_vec(),
                _ => set
                    .iter()
                    .map(|p| canonicalized(canon, p, 1, n, n))
                    .collect(),
            }
        };
        let pe = PixelEmbedder::new(1, n).expect("pixel");
        let e = |set: &[Vec<f32>]| {
            embed_all(&pe, &images(&prep(set), n, "p"), "", &NoReporter).expect("embed")
        };
        report(&ds, &format!("pixel {kv:?}"), get("gallery"), &e);
        return;
    }
    let mut cfg = TrainConfig::new(model);
    cfg.epochs = get("epochs").map_or_else(
        || memscan_embed::train::default_epochs(train_imgs.len()),
        |e| e.parse().unwrap(),
    );
    if let Some(b) = get("batch") {
        cfg.batch = b.parse().unwrap();
    }
    if let Some(t) = get("tau") {
        cfg.temperature = t.parse().unwrap();
    }
    if let Some(l) = get("lr") {
        cfg.lr = l.parse().unwrap();
    }
    if let Some(s) = get("seed") {
        cfg.seed = s.parse().unwrap();
    }
    if let Some(a) = get("anchor") {
        cfg.anchor = a.parse().unwrap();
    }
    if let Some(a) = get("aug") {
        cfg.aug = a.parse().unwrap();
    }
    if let Some(p) = get("crop_p") {
        cfg.crop_p = p.parse().unwrap();
    }
    if let Some(k) = get("koleo") {
        cfg.koleo = k.parse().unwrap();
    }
    // `save=DIR` keeps the trained model; `load=DIR` (with the same keys) measures a saved one.
    let (dir, keep) = match (get("load"), get("save")) {
        (Some(d), _) | (None, Some(d)) => (std::path::PathBuf::from(d), true),
        _ => (
            std::env::temp_dir().join(format!("memscan-copy-recall-{}", std::process::id())),
            false,
        ),
    };
    let t0 = Instant::now();
    // Resuming a finished run (same keys) trains nothing.
    let st = train(&train_imgs, &cfg, &dir, get("load").is_some(), &NoReporter).expect("train");
    let secs = t0.elapsed().as_secs_f64();
    let emb = CnnEmbedder::load(&dir).expect("load");
    if !keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let e =
        |set: &[Vec<f32>]| embed_all(&emb, &images(set, n, "i"), "", &NoReporter).expect("embed");
    let label = format!(
        "{} {:?}: epochs {} batch {} tau {} canon {:?} trained {:.0} s (last loss {:.3})",
        ds.name,
        kv,
        cfg.epochs,
        cfg.batch,
        cfg.temperature,
        emb.config().canon,
        secs,
        st.history.last().map_or(f64::NAN, |h| h.loss),
    );
    report(&ds, &label, get("gallery"), &e);
}

fn parse_canon(c: &str) -> Canon {
    match c {
        "off" => Canon::Off,
        "moments" => Canon::Moments,
        "windowed" => Canon::Windowed,
        "axes" => Canon::Axes,
        _ => panic!("canon"),
    }
}

/// Calibrates the threshold on the holdout set and prints the novel rate and, per copy
/// transform, the recall; `e` embeds a set of planar gray images.
fn report(
    ds: &memscan_datasets::Dataset,
    label: &str,
    gal: Option<&str>,
    e: &dyn Fn(&[Vec<f32>]) -> Array2<f32>,
) {
    let nt = ds.train.len();
    let (et, eh, en) = (
        e(&gallery(&ds.train, ds.size as usize, gal)),
        e(&ds.holdout),
        e(&ds.novel),
    );
    let nearest = |q: &Array2<f32>, base: &Array2<f32>| -> Vec<(f64, usize)> {
        nearest(q, base)
            .into_iter()
            .map(|(d, j)| (d, j % nt))
            .collect()
    };
    let hd: Vec<f64> = nearest(&eh, &et).into_iter().map(|x| x.0).collect();
    let mut sorted = hd.clone();
    sorted.sort_by(f64::total_cmp);
    let thr = sorted[(0.01 * hd.len() as f64).floor() as usize];
    let nd: Vec<f64> = nearest(&en, &et).into_iter().map(|x| x.0).collect();
    let novel_rate = nd.iter().filter(|&&d| d < thr).count() as f64 / nd.len() as f64;
    println!(
        "{label}; holdout d1 p1 {:.3} p50 {:.3}; thr {:.3}; novel@0.01 {:.3}",
        pct(&hd, 0.01),
        pct(&hd, 0.5),
        thr,
        novel_rate
    );
    for t in [
        CopyTransform::Identity,
        CopyTransform::Shift,
        CopyTransform::Rotate,
        CopyTransform::CropResize,
        CopyTransform::Gamma,
        CopyTransform::Noise,
        CopyTransform::Flip,
        CopyTransform::Blur,
        CopyTransform::Jpeg,
        CopyTransform::Elastic,
    ] {
        let copies: Vec<Vec<f32>> = ds
            .train
            .iter()
            .enumerate()
            .map(|(i, img)| {
                let mut rng = ChaCha8Rng::seed_from_u64(1000 + i as u64);
                t.apply(img, ds.size, 0.5, &mut rng)
            })
            .collect();
        let ec = e(&copies);
        let nn = nearest(&ec, &et);
        let d1: Vec<f64> = nn.iter().map(|x| x.0).collect();
        let recall = d1.iter().filter(|&&d| d < thr).count() as f64 / d1.len() as f64;
        let top1 =
            nn.iter().enumerate().filter(|(i, x)| x.1 == *i).count() as f64 / nn.len() as f64;
        println!(
            "  {:<12} recall@0.01 {:.3}  top1-source {:.3}  d1 p50 {:.3} p90 {:.3}",
            t.name(),
            recall,
            top1,
            pct(&d1, 0.5),
            pct(&d1, 0.9)
        );
    }
}
