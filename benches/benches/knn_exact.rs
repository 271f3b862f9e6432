//! Exact k-NN ([`memscan_index::ExactIndex`]): an `N × N` all-pairs search at `D = 128`, `k = 2`.
//!
//! Throughput is queries per second (`Throughput::Elements(n_queries)`). The matrix-product
//! rate, `2 · N_queries · N_base · D` FLOP over the mean measured time, is printed to stderr
//! after each size as `GFLOP/s`, to compare with the machine's GEMM throughput (DESIGN.md:
//! "within 2× of the machine's GEMM throughput"; the stack-notes baseline is ~90 GFLOP/s on
//! 2 threads for 50k × 50k × 128).

use std::cell::Cell;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use memscan_index::{ExactIndex, Exclude, Index};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const DIM: usize = 128;
const K: usize = 2;
const SIZES: [usize; 2] = [10_000, 50_000];

/// `n × d` rows drawn from a seeded Gaussian-like distribution and L2-normalized, like the
/// learned embeddings.
pub(crate) fn embeddings(n: usize, d: usize, seed: u64) -> Array2<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x = Array2::from_shape_simple_fn((n, d), || {
        // Sum of uniforms: cheap, roughly Gaussian, isotropic enough for a benchmark.
        (0..4).map(|_| rng.random_range(-1.0f32..1.0)).sum::<f32>()
    });
    normalized(x)
}

/// `x` with every row L2-normalized.
pub(crate) fn normalized(mut x: Array2<f32>) -> Array2<f32> {
    for mut row in x.rows_mut() {
        let norm = row.dot(&row).sqrt().max(f32::MIN_POSITIVE);
        row /= norm;
    }
    x
}

fn knn_exact(c: &mut Criterion) {
    let mut group = c.benchmark_group("knn_exact");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_secs(1));
    for n in SIZES {
        // Setup outside the timed region: data from fixed seeds, index construction.
        let base = embeddings(n, DIM, 0xBA5E);
        let queries = embeddings(n, DIM, 0x0E7);
        let index = ExactIndex::new(base.view()).expect("valid embeddings");
        let flop = 2.0 * n as f64 * n as f64 * DIM as f64;
        let timed = Cell::new((Duration::ZERO, 0u64));

        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("n={n}/d={DIM}/k={K}")),
            &queries,
            |b, queries| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let nn = index
                            .search(black_box(queries.view()), K, Exclude::None)
                            .expect("search");
                        black_box(nn);
                    }
                    let elapsed = start.elapsed();
                    let (t, i) = timed.get();
                    timed.set((t + elapsed, i + iters));
                    elapsed
                })
            },
        );
        let (t, i) = timed.get();
        if i > 0 {
            let secs = t.as_secs_f64() / i as f64;
            eprintln!(
                "knn_exact/n={n}/d={DIM}/k={K}: {:.3} s per search, {:.1} GFLOP/s (2·N·N·D = {:.1} GFLOP, mean over {i} runs incl. warm-up)",
                secs,
                flop / secs / 1e9,
                flop / 1e9,
            );
        }
    }
    group.finish();
}

criterion::criterion_group!(benches, knn_exact);
