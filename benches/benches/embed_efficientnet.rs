//! EfficientNet-Lite0 embedding throughput ([`memscan_embed::EfficientNetLite0`]): one batch of
//! 64 seeded 224×224 RGB images per iteration, on the machine's threads (2 here). Throughput is
//! images per second.
//!
//! Needs the real weights (`cargo xtask weights fetch efficientnet-lite0`); without them the
//! group is skipped with a message (the throughput does not depend on the weights' values, but
//! a number is only reported for the network memscan actually runs). Run it alone with
//! `cargo bench -p memscan-benches --bench main -- embed/efficientnet-lite0`.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use memscan_embed::{EfficientNetLite0, Embedder};
use memscan_io::Image;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const BATCH: usize = 64;
const SIZE: usize = 224;

fn embed_efficientnet(c: &mut Criterion) {
    let weights = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../datasets/cache/weights/efficientnet-lite0.safetensors");
    if !weights.is_file() {
        eprintln!(
            "embed/efficientnet-lite0 skipped: no weights at {} (run `cargo xtask weights \
             fetch efficientnet-lite0`)",
            weights.display()
        );
        return;
    }
    let model = EfficientNetLite0::load(&weights).expect("weights load");
    let mut rng = ChaCha8Rng::seed_from_u64(0xEFF);
    let images: Vec<Image> = (0..BATCH)
        .map(|i| Image {
            id: format!("{i}"),
            hash: String::new(),
            channels: 3,
            height: SIZE,
            width: SIZE,
            pixels: (0..3 * SIZE * SIZE).map(|_| rng.random::<f32>()).collect(),
        })
        .collect();
    let refs: Vec<&Image> = images.iter().collect();

    let mut group = c.benchmark_group("embed");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function(
        BenchmarkId::new(
            "efficientnet-lite0",
            format!(
                "batch={BATCH}/{SIZE}x{SIZE}/threads={}",
                rayon::current_num_threads()
            ),
        ),
        |b| b.iter(|| model.embed_batch(black_box(&refs)).expect("embed")),
    );
    group.finish();
}

criterion::criterion_group!(benches, embed_efficientnet);
