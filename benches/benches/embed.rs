//! Embedding and training throughput: images/s of one batch of 64 phantom images for the
//! `pixel` and `cnn` embedders (`Embedder::embed_batch`, the unit `embed_all` parallelizes
//! over), and of one `cnn` contrastive training epoch (64 images, one step of 2 × 64 views,
//! augmentation included) at 56×56 and 64×64 for each convolution path (`im2col`: the custom
//! op, the default; `unfold`: narrow/cat; `candle`: candle's conv2d).
//!
//! `cargo bench -p memscan-benches --bench main -- 'embed|train_cnn'`

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use memscan_embed::cnn::{self, Config, CONFIG_FILE, WEIGHTS_FILE};
use memscan_embed::sample::phantom_images;
use memscan_embed::train::{train, TrainConfig};
use memscan_embed::{CnnEmbedder, Embedder, PixelEmbedder};
use memscan_io::{Image, NoReporter};

const BATCH: usize = 64;

/// A `cnn` model directory with seeded random weights (speed does not depend on training):
/// a zero-epoch training run initializes and saves the model.
fn cnn_dir(size: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let tc = TrainConfig {
        epochs: 0,
        batch: 2,
        ..TrainConfig::new(Config::small(1, size))
    };
    train(
        &phantom_images(2, size),
        &tc,
        dir.path(),
        false,
        &NoReporter,
    )
    .expect("init model");
    assert!(dir.path().join(WEIGHTS_FILE).exists() && dir.path().join(CONFIG_FILE).exists());
    dir
}

fn embed(c: &mut Criterion) {
    // As the memscan binary does: candle's spinning element-wise pool competes with rayon.
    memscan_embed::prefer_single_candle_thread();
    let mut group = c.benchmark_group("embed");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(BATCH as u64));
    for size in [56usize, 64] {
        let imgs = phantom_images(BATCH, size);
        let refs: Vec<&Image> = imgs.iter().collect();
        let pixel = PixelEmbedder::new(1, size).expect("pixel");
        group.bench_function(BenchmarkId::new("pixel", size), |b| {
            b.iter(|| black_box(pixel.embed_batch(&refs).expect("embed")))
        });
        let dir = cnn_dir(size);
        let e = CnnEmbedder::load(dir.path()).expect("load");
        group.bench_function(BenchmarkId::new("cnn", size), |b| {
            b.iter(|| black_box(e.embed_batch(&refs).expect("embed")))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("train_cnn");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(BATCH as u64));
    for size in [56usize, 64] {
        let imgs = phantom_images(BATCH, size);
        for conv in [
            cnn::ConvImpl::Im2col,
            cnn::ConvImpl::Unfold,
            cnn::ConvImpl::Candle,
        ] {
            let tc = TrainConfig {
                epochs: 1,
                batch: BATCH,
                ..TrainConfig::new(Config {
                    conv,
                    ..Config::small(1, size)
                })
            };
            let name = format!("{conv:?}").to_lowercase();
            group.bench_function(BenchmarkId::new(name, size), |b| {
                b.iter(|| {
                    let dir = tempfile::tempdir().expect("tempdir");
                    black_box(train(&imgs, &tc, dir.path(), false, &NoReporter).expect("train"))
                })
            });
        }
    }
    group.finish();
}

criterion::criterion_group!(benches, embed);
