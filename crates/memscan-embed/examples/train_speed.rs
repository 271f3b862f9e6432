//! Measures `cnn` contrastive training speed (images/s) for one architecture, to choose the
//! network size, input resolution and convolution path by measurement:
//!
//! ```sh
//! cargo run --release -p memscan-embed --example train_speed -- \
//!     [SIZE=56] [CONV=im2col|unfold|candle] [WIDTHS=16,32,64] [IMAGES=256] [BATCH=64] [STEM=2] [DIR]
//! ```
//!
//! Trains one epoch on seeded phantom slices and prints images/s (augmentation included).

use memscan_embed::cnn::{Config, ConvImpl};
use memscan_embed::sample::phantom_images;
use memscan_embed::train::{train, TrainConfig};
use memscan_io::NoReporter;

/// The allocator of the `memscan` binary, so that the speed measured is the CLI's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    memscan_embed::prefer_single_candle_thread();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: &str| args.get(i).cloned().unwrap_or_else(|| d.to_string());
    let size: usize = arg(0, "56").parse().expect("SIZE");
    let conv = match arg(1, "im2col").as_str() {
        "im2col" => ConvImpl::Im2col,
        "unfold" => ConvImpl::Unfold,
        "candle" => ConvImpl::Candle,
        other => panic!("unknown conv {other}"),
    };
    let widths: Vec<usize> = arg(2, "16,32,64")
        .split(',')
        .map(|w| w.parse().expect("WIDTHS"))
        .collect();
    let n: usize = arg(3, "256").parse().expect("IMAGES");
    let batch: usize = arg(4, "64").parse().expect("BATCH");
    let stem: usize = arg(5, "2").parse().expect("STEM");
    // An optional folder of images (as `memscan scan --train` takes them) instead of the
    // seeded phantoms: its first IMAGES images, resized to SIZE.
    let images = match args.get(6) {
        None => phantom_images(n, size),
        Some(dir) => {
            let io = memscan_io::IoConfig {
                size: size as u32,
                channels: 1,
                ..Default::default()
            };
            let set =
                memscan_io::load(std::path::Path::new(dir), &io, &NoReporter).expect("images");
            set.images.into_iter().take(n).collect()
        }
    };
    let cfg = TrainConfig {
        epochs: 1,
        batch,
        ..TrainConfig::new(Config {
            widths,
            conv,
            stem,
            ..Config::small(1, size)
        })
    };
    let dir = std::env::temp_dir().join(format!("memscan-train-speed-{}", std::process::id()));
    let st = train(&images, &cfg, &dir, false, &NoReporter).expect("train");
    let _ = std::fs::remove_dir_all(&dir);
    let e = &st.history[0];
    println!(
        "size {size} conv {conv:?} widths {:?} stem {stem} batch {batch}: {:.1} images/s (loss {:.3}, {} threads)",
        cfg.model.widths,
        e.images_per_sec,
        e.loss,
        rayon::current_num_threads()
    );
}
