//! The whole audit ([`memscan::Audit::run`]) end to end, as `memscan scan` runs it minus
//! writing the reports:
//!
//! - `pipeline/pixels`: the built-in demo data (PNG phantoms, 300 train / 300 holdout / 300
//!   synthetic at 64 × 64, 30 planted copies): decode, pixel embedding, exact search, every
//!   metric;
//! - `pipeline/features`: `--features` on seeded clustered 128-d `.npy` matrices (train,
//!   synthetic with 1 % planted near-copies, holdout; `N` rows each): read, normalize, exact
//!   search, every metric.
//!
//! Throughput is synthetic images audited per second. Inputs are written once to a temporary
//! folder outside the timed region; the bootstrap is off (it is the metrics' own cost, not the
//! pipeline's), the cache is off.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use memscan::{Audit, AuditConfig, FeaturesConfig};
use memscan_benches::{clustered_embeddings, plant_near_copies};
use memscan_datasets::demo::{write_demo, DemoSpec};
use memscan_io::NoReporter;
use ndarray_npy::write_npy;

const FEATURE_SIZES: [usize; 2] = [5_000, 20_000];

fn pipeline(c: &mut Criterion) {
    let mut group = c.benchmark_group("pipeline");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_secs(1));

    let dir = tempfile::tempdir().expect("temporary folder");
    let spec = DemoSpec::default();
    write_demo(&dir.path().join("demo"), &spec).expect("demo data");
    let demo = dir.path().join("demo");
    let mut cfg = AuditConfig::new(
        demo.join("train"),
        demo.join("synthetic"),
        Some(demo.join("holdout")),
    );
    cfg.metrics.bootstrap = 0;
    let n_syn = spec.n_synthetic_novel + spec.n_exact_copies + spec.n_perturbed_copies;
    group.throughput(Throughput::Elements(n_syn as u64));
    group.bench_function(
        BenchmarkId::new("pixels", format!("n={n_syn}/64x64")),
        |b| b.iter(|| Audit::run(black_box(&cfg), &NoReporter).expect("audit")),
    );

    for n in FEATURE_SIZES {
        let d = dir.path().join(format!("features{n}"));
        std::fs::create_dir_all(&d).expect("folder");
        let train = clustered_embeddings(n, 128, 1024, 0.04, 7, 1);
        let mut syn = clustered_embeddings(n, 128, 1024, 0.04, 7, 2);
        plant_near_copies(&mut syn, &train, n / 100, 0.002, 3);
        let hold = clustered_embeddings(n, 128, 1024, 0.04, 7, 4);
        write_npy(d.join("train.npy"), &train).expect("write");
        write_npy(d.join("synthetic.npy"), &syn).expect("write");
        write_npy(d.join("holdout.npy"), &hold).expect("write");
        let mut cfg = AuditConfig::new(
            d.join("train.npy"),
            d.join("synthetic.npy"),
            Some(d.join("holdout.npy")),
        );
        cfg.features = Some(FeaturesConfig::default());
        cfg.metrics.bootstrap = 0;
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new("features", format!("n={n}/d=128")), |b| {
            b.iter(|| Audit::run(black_box(&cfg), &NoReporter).expect("audit"))
        });
    }
    group.finish();
}

criterion::criterion_group!(benches, pipeline);
