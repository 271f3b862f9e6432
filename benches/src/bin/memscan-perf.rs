//! `memscan-perf`: the Rust side of `cargo xtask bench perf` (prints JSON to stdout).
//!
//! - `memscan-perf gen DIR N M SEED`: writes `DIR/train_N.npy` (`N × 128` clustered, normalized
//!   `f32`), `DIR/synthetic_N.npy` (`M × 128`, same clusters, with `M / 100` planted near-copies
//!   of training rows) and `DIR/planted_N.npy` (`P × 2` `i64`: synthetic row, train row).
//! - `memscan-perf run DIR N EF[,EF...] [deterministic|parallel [EFC [M]]]`: times memscan's
//!   exact search and HNSW (build with sequential insertion — the default — or hnsw_rs parallel
//!   insertion, `ef_construction = EFC` (default 100), `m = M` links (default 16), then a sweep
//!   over `ef_search`) with `k = 1` of the synthetic rows against the training rows, and
//!   measures recall@1 against the exact result and how many planted copies were found. The
//!   exact answer is saved as `DIR/truth_N.npy` (`M × 2` `f64`: index, distance) and its timing
//!   as `DIR/truth_N.json`; a later run reads both instead of searching again, so a parameter
//!   sweep at large `N` pays for the exact search once.
//! - `memscan-perf gen-audit DIR N SEED`: the inputs of a `memscan scan --features` audit at
//!   scale: `DIR/train.npy`, `DIR/synthetic.npy` (1 % planted near-copies of training rows),
//!   `DIR/holdout.npy` (fresh rows of the same clusters), all `N × 128`, and
//!   `DIR/planted.npy` (`P × 2` `i64`: synthetic row, train row). At most two sets are in
//!   memory at a time.
//! - `memscan-perf hnsw-dist DIR N EF`: on `gen`'s data, the hnsw_rs graph alone (M = 16,
//!   ef_construction = 100, `k' = 9` candidates re-ranked exactly, `ef_search = EF`) built and
//!   searched with hnsw_rs `DistL2` (what memscan used before) and with memscan's `SqL2`,
//!   sequential and parallel insertion, plus the full `HnswIndex` (self-check included):
//!   build/search seconds and recall@1 of each, from one process on the same vectors.
//! - `memscan-perf gemm-peak [SIZE]`: the single-precision GEMM rate of this machine (`gemm`
//!   crate, `SIZE³`, default 4096, rayon pool), best of three.
//!
//! Thread count: rayon's pool (`RAYON_NUM_THREADS`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use memscan_benches::{clustered_embeddings, plant_near_copies};
use memscan_index::{verify_recall, ExactIndex, Exclude, HnswConfig, HnswIndex, Index};
use ndarray::Array2;
use ndarray_npy::{read_npy, write_npy};
use serde_json::json;

const DIM: usize = 128;
const CLUSTERS: usize = 1024;
const SIGMA: f32 = 0.04;
/// Per-coordinate noise of a planted near-copy (≈ 0.02 in distance, far below typical 1-NN).
const COPY_NOISE: f32 = 0.002;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    match a.as_slice() {
        ["gen", dir, n, m, seed] => gen(Path::new(dir), n.parse()?, m.parse()?, seed.parse()?),
        ["run", dir, n, efs, rest @ ..] if rest.len() <= 3 => {
            let efs: Vec<usize> = efs.split(',').map(str::parse).collect::<Result<_, _>>()?;
            let deterministic = match rest.first() {
                None | Some(&"deterministic") => true,
                Some(&"parallel") => false,
                _ => return Err("run: the build mode is `deterministic` or `parallel`".into()),
            };
            // The build's self-check runs at the first swept ef, so the sweep starts from it.
            let cfg = HnswConfig {
                deterministic,
                ef_search: efs[0],
                ef_construction: match rest.get(1) {
                    Some(e) => e.parse()?,
                    None => HnswConfig::default().ef_construction,
                },
                m: match rest.get(2) {
                    Some(m) => m.parse()?,
                    None => HnswConfig::default().m,
                },
                ..HnswConfig::default()
            };
            run(Path::new(dir), n.parse()?, &efs, cfg)
        }
        ["gen-audit", dir, n, seed] => gen_audit(Path::new(dir), n.parse()?, seed.parse()?),
        ["hnsw-dist", dir, n, ef] => hnsw_dist(Path::new(dir), n.parse()?, ef.parse()?),
        ["gemm-peak"] => gemm_peak(4096),
        ["gemm-peak", size] => gemm_peak(size.parse()?),
        _ => Err(
            "usage: memscan-perf gen DIR N M SEED | gen-audit DIR N SEED | \
             run DIR N EF[,EF..] [deterministic|parallel [EF_CONSTRUCTION [M]]] | \
             hnsw-dist DIR N EF | gemm-peak [SIZE]"
                .into(),
        ),
    }
}

fn path(dir: &Path, what: &str, n: usize) -> PathBuf {
    dir.join(format!("{what}_{n}.npy"))
}

fn gen(dir: &Path, n: usize, m: usize, seed: u64) -> Res<()> {
    std::fs::create_dir_all(dir)?;
    let train = clustered_embeddings(n, DIM, CLUSTERS, SIGMA, seed, seed ^ 0x7EA1);
    let mut syn = clustered_embeddings(m, DIM, CLUSTERS, SIGMA, seed, seed ^ 0x5F7);
    let pairs = plant_near_copies(&mut syn, &train, m / 100, COPY_NOISE, seed ^ 0xC0B1);
    let planted = Array2::from_shape_fn((pairs.len(), 2), |(i, j)| {
        if j == 0 {
            pairs[i].0 as i64
        } else {
            pairs[i].1 as i64
        }
    });
    write_npy(path(dir, "train", n), &train)?;
    write_npy(path(dir, "synthetic", n), &syn)?;
    write_npy(path(dir, "planted", n), &planted)?;
    println!(
        "{}",
        json!({"n": n, "m": m, "d": DIM, "planted": pairs.len(), "clusters": CLUSTERS,
               "sigma": SIGMA, "copy_noise": COPY_NOISE, "seed": seed})
    );
    Ok(())
}

fn gen_audit(dir: &Path, n: usize, seed: u64) -> Res<()> {
    std::fs::create_dir_all(dir)?;
    let train = clustered_embeddings(n, DIM, CLUSTERS, SIGMA, seed, seed ^ 0x7EA1);
    write_npy(dir.join("train.npy"), &train)?;
    let mut syn = clustered_embeddings(n, DIM, CLUSTERS, SIGMA, seed, seed ^ 0x5F7);
    let pairs = plant_near_copies(&mut syn, &train, n / 100, COPY_NOISE, seed ^ 0xC0B1);
    drop(train);
    write_npy(dir.join("synthetic.npy"), &syn)?;
    drop(syn);
    let hold = clustered_embeddings(n, DIM, CLUSTERS, SIGMA, seed, seed ^ 0x401D);
    write_npy(dir.join("holdout.npy"), &hold)?;
    let planted = Array2::from_shape_fn((pairs.len(), 2), |(i, j)| {
        if j == 0 {
            pairs[i].0 as i64
        } else {
            pairs[i].1 as i64
        }
    });
    write_npy(dir.join("planted.npy"), &planted)?;
    println!(
        "{}",
        json!({"n": n, "d": DIM, "planted": pairs.len(), "clusters": CLUSTERS,
               "sigma": SIGMA, "copy_noise": COPY_NOISE, "seed": seed})
    );
    Ok(())
}

fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

fn run(dir: &Path, n: usize, efs: &[usize], cfg: HnswConfig) -> Res<()> {
    let train: Array2<f32> = read_npy(path(dir, "train", n))?;
    let syn: Array2<f32> = read_npy(path(dir, "synthetic", n))?;
    let planted: Array2<i64> = read_npy(path(dir, "planted", n))?;
    let m = syn.nrows();

    let exact = ExactIndex::new(train.view())?;
    let (truth, exact_json) = exact_truth(dir, n, &exact, &syn)?;

    let t = Instant::now();
    let mut hnsw = HnswIndex::build(train.view(), &cfg)?;
    let build = secs(t);
    // The self-check part of the build: the same check again.
    let t = Instant::now();
    hnsw.set_ef_search(cfg.ef_search)?;
    let self_check = secs(t);

    let mut sweep = Vec::new();
    for &ef in efs {
        let recheck = if ef == hnsw.config().ef_search {
            self_check
        } else {
            let t = Instant::now();
            hnsw.set_ef_search(ef)?;
            secs(t)
        };
        let t = Instant::now();
        let nn = hnsw.search(syn.view(), 1, Exclude::None)?;
        let search = secs(t);
        let hits = (0..m).filter(|&i| nn.nearest(i).1 <= truth[i].1).count();
        let found = planted
            .rows()
            .into_iter()
            .filter(|p| nn.nearest(p[0] as usize).0 as i64 == p[1])
            .count();
        let r10 = verify_recall(&hnsw, &exact, syn.view(), 2000, 10, 0)?;
        sweep.push(json!({
            "ef_search": ef, "self_check_s": recheck, "search_s": search,
            "qps": m as f64 / search, "recall_at_1": hits as f64 / m as f64,
            "recall_at_10_sample": r10.at_k, "side_list": hnsw.side_list().len(),
            "planted_found": found, "planted": planted.nrows(),
            "total_s": build - self_check + recheck + search,
        }));
    }
    let threads = rayon::current_num_threads();
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "n": n, "m": m, "d": DIM, "threads": threads,
            "exact": exact_json,
            "hnsw": {"config": cfg, "build_s": build, "self_check_s": self_check,
                     "graph_s": build - self_check, "sweep": sweep},
        }))?
    );
    Ok(())
}

/// The exact nearest training row `(index, distance)` of every synthetic row and the JSON of
/// its timing: from `DIR/truth_N.{npy,json}` when a previous run saved them for the same
/// number of queries, else searched now (and saved).
fn exact_truth(
    dir: &Path,
    n: usize,
    exact: &ExactIndex,
    syn: &Array2<f32>,
) -> Res<(Vec<(u32, f64)>, serde_json::Value)> {
    let (npy, meta) = (path(dir, "truth", n), dir.join(format!("truth_{n}.json")));
    if npy.exists() && meta.exists() {
        let t: Array2<f64> = read_npy(&npy)?;
        if t.dim() == (syn.nrows(), 2) {
            let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta)?)?;
            json["cached"] = json!(true);
            let truth = t.rows().into_iter().map(|r| (r[0] as u32, r[1])).collect();
            return Ok((truth, json));
        }
    }
    let t = Instant::now();
    let nn = exact.search(syn.view(), 1, Exclude::None)?;
    let search = secs(t);
    let flop = 2.0 * n as f64 * syn.nrows() as f64 * DIM as f64;
    let truth: Vec<(u32, f64)> = (0..syn.nrows()).map(|i| nn.nearest(i)).collect();
    let arr = Array2::from_shape_fn((truth.len(), 2), |(i, j)| {
        if j == 0 {
            f64::from(truth[i].0)
        } else {
            truth[i].1
        }
    });
    write_npy(&npy, &arr)?;
    let json = json!({"search_s": search, "gflops": flop / search / 1e9, "total_s": search});
    std::fs::write(&meta, serde_json::to_vec_pretty(&json)?)?;
    Ok((truth, json))
}

/// Builds an hnsw_rs graph with `dist` and searches every query; returns JSON with times and
/// recall@1 after an exact re-rank of the `k' = 9` candidates.
fn graph_run<D>(
    name: &str,
    dist: D,
    train: &Array2<f32>,
    syn: &Array2<f32>,
    truth: &memscan_index::Neighbours,
    ef: usize,
    parallel: bool,
) -> serde_json::Value
where
    D: hnsw_rs::prelude::Distance<f32> + Send + Sync + 'static,
{
    use hnsw_rs::prelude::Hnsw;
    use rayon::prelude::*;
    let (n, d) = train.dim();
    let data = train.as_slice().expect("standard layout");
    let t = Instant::now();
    let graph: Hnsw<'_, f32, D> = Hnsw::new(16, n, 16, 100, dist);
    if parallel {
        let items: Vec<(&[f32], usize)> = data.chunks_exact(d).zip(0..n).collect();
        graph.parallel_insert_slice(&items);
    } else {
        for (i, row) in data.chunks_exact(d).enumerate() {
            graph.insert_slice((row, i));
        }
    }
    let mut graph = graph;
    graph.set_searching_mode(true);
    let build = secs(t);
    let q = syn.as_slice().expect("standard layout");
    let t = Instant::now();
    let best: Vec<f64> = q
        .par_chunks_exact(d)
        .map(|row| {
            graph
                .search(row, 9, ef.max(9))
                .iter()
                .map(|nb| {
                    let b = &data[nb.d_id * d..(nb.d_id + 1) * d];
                    row.iter()
                        .zip(b)
                        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
                        .sum::<f64>()
                        .sqrt()
                })
                .fold(f64::INFINITY, f64::min)
        })
        .collect();
    let search = secs(t);
    let hits = best
        .iter()
        .enumerate()
        // Tolerance: the exact index sums the same f64 terms in another order.
        .filter(|&(i, &b)| b <= truth.nearest(i).1 * (1.0 + 1e-12))
        .count();
    json!({"variant": name, "parallel": parallel, "build_s": build, "search_s": search,
           "total_s": build + search, "qps": q.len() as f64 / d as f64 / search,
           "recall_at_1": hits as f64 / best.len() as f64})
}

fn hnsw_dist(dir: &Path, n: usize, ef: usize) -> Res<()> {
    let train: Array2<f32> = read_npy(path(dir, "train", n))?;
    let syn: Array2<f32> = read_npy(path(dir, "synthetic", n))?;
    let exact = ExactIndex::new(train.view())?;
    let truth = exact.search(syn.view(), 1, Exclude::None)?;
    let mut variants = vec![graph_run(
        "hnsw_rs DistL2",
        hnsw_rs::prelude::DistL2,
        &train,
        &syn,
        &truth,
        ef,
        false,
    )];
    for parallel in [false, true] {
        let v = graph_run(
            "memscan SqL2",
            memscan_index::SqL2,
            &train,
            &syn,
            &truth,
            ef,
            parallel,
        );
        variants.push(v);
    }
    let cfg = HnswConfig {
        ef_search: ef,
        ..HnswConfig::default()
    };
    for deterministic in [true, false] {
        let cfg = HnswConfig {
            deterministic,
            ..cfg
        };
        let t = Instant::now();
        let index = HnswIndex::build(train.view(), &cfg)?;
        let build = secs(t);
        let t = Instant::now();
        let nn = index.search(syn.view(), 1, Exclude::None)?;
        let search = secs(t);
        let hits = (0..syn.nrows())
            .filter(|&i| nn.nearest(i).1 <= truth.nearest(i).1)
            .count();
        variants.push(
            json!({"variant": "memscan HnswIndex (SqL2, self-check, re-rank)",
            "parallel": !deterministic, "build_s": build, "search_s": search,
            "total_s": build + search, "qps": syn.nrows() as f64 / search,
            "recall_at_1": hits as f64 / syn.nrows() as f64,
            "side_list": index.side_list().len()}),
        );
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({"n": n, "m": syn.nrows(), "ef_search": ef,
            "threads": rayon::current_num_threads(), "variants": variants}))?
    );
    Ok(())
}

fn gemm_peak(size: usize) -> Res<()> {
    let a = vec![1.0f32; size * size];
    let b = vec![0.5f32; size * size];
    let mut c = vec![0.0f32; size * size];
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let t = Instant::now();
        // SAFETY: a, b, c are distinct size × size row-major buffers of exactly that size.
        unsafe {
            gemm::gemm(
                size,
                size,
                size,
                c.as_mut_ptr(),
                1,
                size as isize,
                false,
                a.as_ptr(),
                1,
                size as isize,
                b.as_ptr(),
                1,
                size as isize,
                0.0f32,
                1.0f32,
                false,
                false,
                false,
                gemm::Parallelism::Rayon(0),
            );
        }
        best = best.min(secs(t));
    }
    std::hint::black_box(&c);
    let flop = 2.0 * (size as f64).powi(3);
    println!(
        "{}",
        json!({"size": size, "seconds": best, "gflops": flop / best / 1e9,
               "threads": rayon::current_num_threads()})
    );
    Ok(())
}
