//! HNSW k-NN ([`memscan_index::HnswIndex`]) at `N = 50k`, `D = 128` on seeded clustered
//! embeddings: graph build, query (10k queries, `k = 1`, default configuration), and a
//! recall-vs-QPS sweep over `ef_search` printed to stderr (recall@1 against
//! [`memscan_index::ExactIndex`], ties count as hits).
//!
//! Throughput is points inserted (build) or queries (search) per second. The build is slow
//! (hnsw_rs, sequential insertion for determinism), so its group takes several minutes; run
//! `cargo bench -p memscan-benches --bench main -- knn_hnsw/query` for the query part only.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use memscan_benches::clustered_embeddings;
use memscan_index::{ExactIndex, Exclude, HnswConfig, HnswIndex, Index};

const N: usize = 50_000;
const QUERIES: usize = 10_000;
const DIM: usize = 128;
const CLUSTERS: usize = 1024;
const SIGMA: f32 = 0.04;
const EF_SWEEP: [usize; 5] = [16, 32, 64, 128, 256];

fn knn_hnsw(c: &mut Criterion) {
    let base = clustered_embeddings(N, DIM, CLUSTERS, SIGMA, 0xBA5E, 1);
    let queries = clustered_embeddings(QUERIES, DIM, CLUSTERS, SIGMA, 0xBA5E, 2);
    let cfg = HnswConfig::default();

    let mut group = c.benchmark_group("knn_hnsw");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_secs(1));

    group.throughput(Throughput::Elements(N as u64));
    group.bench_function(
        BenchmarkId::new("build", format!("n={N}/d={DIM}/m={}", cfg.m)),
        |b| {
            b.iter(|| HnswIndex::build(black_box(base.view()), &cfg).expect("build"));
        },
    );

    let mut index = HnswIndex::build(base.view(), &cfg).expect("build");
    group.throughput(Throughput::Elements(QUERIES as u64));
    group.bench_function(
        BenchmarkId::new("query", format!("n={N}/d={DIM}/k=1/ef={}", cfg.ef_search)),
        |b| {
            b.iter(|| {
                index
                    .search(black_box(queries.view()), 1, Exclude::None)
                    .expect("search")
            });
        },
    );
    group.finish();

    // Recall vs QPS (one timed search per ef; exact ground truth computed once).
    let exact = ExactIndex::new(base.view()).expect("valid embeddings");
    let truth = exact
        .search(queries.view(), 1, Exclude::None)
        .expect("search");
    for ef in EF_SWEEP {
        index.set_ef_search(ef).expect("ef > 0");
        let t = Instant::now();
        let nn = index
            .search(queries.view(), 1, Exclude::None)
            .expect("search");
        let secs = t.elapsed().as_secs_f64();
        let hits = (0..QUERIES)
            .filter(|&i| nn.nearest(i).1 <= truth.nearest(i).1)
            .count();
        eprintln!(
            "knn_hnsw/sweep/n={N}/ef_search={ef}: recall@1 {:.4}, {:.0} QPS, side list {}",
            hits as f64 / QUERIES as f64,
            QUERIES as f64 / secs,
            index.side_list().len()
        );
    }
}

criterion::criterion_group!(benches, knn_hnsw);
