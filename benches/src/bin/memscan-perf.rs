//! `memscan-perf`: the Rust side of `cargo xtask bench perf` (prints JSON to stdout).
//!
//! - `memscan-perf gen DIR N M SEED`: writes `DIR/train_N.npy` (`N × 128` clustered, normalized
//!   `f32`), `DIR/synthetic_N.npy` (`M × 128`, same clusters, with `M / 100` planted near-copies
//!   of training rows) and `DIR/planted_N.npy` (`P × 2` `i64`: synthetic row, train row).
//! - `memscan-perf run DIR N EF[,EF...]`: times memscan's exact search and HNSW (build, then a
//!   sweep over `ef_search`) with `k = 1` of the synthetic rows against the training rows, and
//!   measures recall@1 against the exact result and how many planted copies were found.
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
        ["run", dir, n, efs] => {
            let efs: Vec<usize> = efs.split(',').map(str::parse).collect::<Result<_, _>>()?;
            run(Path::new(dir), n.parse()?, &efs)
        }
        ["gemm-peak"] => gemm_peak(4096),
        ["gemm-peak", size] => gemm_peak(size.parse()?),
        _ => Err(
            "usage: memscan-perf gen DIR N M SEED | run DIR N EF[,EF..] | gemm-peak [SIZE]".into(),
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

fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

fn run(dir: &Path, n: usize, efs: &[usize]) -> Res<()> {
    let train: Array2<f32> = read_npy(path(dir, "train", n))?;
    let syn: Array2<f32> = read_npy(path(dir, "synthetic", n))?;
    let planted: Array2<i64> = read_npy(path(dir, "planted", n))?;
    let m = syn.nrows();

    let t = Instant::now();
    let exact = ExactIndex::new(train.view())?;
    let exact_build = secs(t);
    let t = Instant::now();
    let truth = exact.search(syn.view(), 1, Exclude::None)?;
    let exact_search = secs(t);
    let flop = 2.0 * n as f64 * m as f64 * DIM as f64;

    let cfg = HnswConfig::default();
    let t = Instant::now();
    let mut hnsw = HnswIndex::build(train.view(), &cfg)?;
    let build = secs(t);
    // The self-check part of the build: the same check again.
    let t = Instant::now();
    hnsw.set_ef_search(cfg.ef_search)?;
    let self_check = secs(t);

    let mut sweep = Vec::new();
    for &ef in efs {
        let t = Instant::now();
        hnsw.set_ef_search(ef)?;
        let recheck = secs(t);
        let t = Instant::now();
        let nn = hnsw.search(syn.view(), 1, Exclude::None)?;
        let search = secs(t);
        let hits = (0..m)
            .filter(|&i| nn.nearest(i).1 <= truth.nearest(i).1)
            .count();
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
            "simd": cfg!(feature = "simd"),
            "exact": {"build_s": exact_build, "search_s": exact_search,
                      "gflops": flop / exact_search / 1e9, "total_s": exact_build + exact_search},
            "hnsw": {"config": cfg, "build_s": build, "self_check_s": self_check,
                     "graph_s": build - self_check, "sweep": sweep},
        }))?
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
