//! Search through crop views ([`memscan_index::ViewIndex`]): `n` training images with 52 rows
//! each (the image, 50 crops and the mirror, as `scan --views crops`) against the plain
//! per-image exact index, `D = 128`, `k = 2`.
//!
//! The views of an image are drawn close to it (the image plus small noise), as a crop's
//! descriptor is near its source's, and half the queries are near-copies of training images:
//! the case in which all 52 rows of one image crowd the top of a query's list and the view
//! index must look past them. Throughput is queries per second.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use memscan_index::{ExactIndex, Exclude, Index, ViewIndex};
use ndarray::{concatenate, Array2, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::knn_exact::{embeddings, normalized};

const DIM: usize = 128;
const K: usize = 2;
const VIEWS: usize = 52;
const SIZES: [usize; 2] = [2_000, 10_000];
const QUERIES: usize = 2_000;

/// `rows` with each entry moved by up to `±amp` and re-normalized.
fn jitter(rows: &Array2<f32>, amp: f32, rng: &mut ChaCha8Rng) -> Array2<f32> {
    normalized(rows.mapv(|v| v + amp * rng.random_range(-1.0f32..1.0)))
}

fn knn_views(c: &mut Criterion) {
    let mut group = c.benchmark_group("knn_views");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_secs(1));
    for n in SIZES {
        let mut rng = ChaCha8Rng::seed_from_u64(0x71E5);
        let images = embeddings(n, DIM, 0xBA5E);
        let mut parts = vec![images.clone()];
        for _ in 1..VIEWS {
            parts.push(jitter(&images, 0.02, &mut rng));
        }
        let rows = concatenate(Axis(0), &parts.iter().map(|p| p.view()).collect::<Vec<_>>())
            .expect("same width");
        // Half near-copies of the first training images, half new points.
        let copies = jitter(
            &images.slice(ndarray::s![..QUERIES / 2, ..]).to_owned(),
            0.03,
            &mut rng,
        );
        let novel = embeddings(QUERIES - QUERIES / 2, DIM, 0x0E7);
        let queries = concatenate(Axis(0), &[copies.view(), novel.view()]).expect("same width");
        let plain = ExactIndex::new(images.view()).expect("valid embeddings");
        let views = ViewIndex::new(
            Box::new(ExactIndex::new(rows.view()).expect("valid embeddings")),
            n,
            VIEWS,
        )
        .expect("n · views rows");
        group.throughput(Throughput::Elements(QUERIES as u64));
        for (name, index) in [("plain", &plain as &dyn Index), ("views", &views)] {
            group.bench_with_input(
                BenchmarkId::new(name, format!("n={n}/views={VIEWS}/d={DIM}/k={K}")),
                &queries,
                |b, q| {
                    b.iter(|| {
                        black_box(
                            index
                                .search(black_box(q.view()), K, Exclude::None)
                                .expect("search"),
                        )
                    })
                },
            );
        }
    }
    group.finish();
}

criterion::criterion_group!(benches, knn_views);
