//! Times the phases of one `cnn` training step of the default network, to find where a step
//! spends its time before trying to make it faster:
//!
//! ```sh
//! cargo run --release -p memscan-embed --example step_phases -- [SIZE=56] [BATCH=64] [REPS=20]
//! ```
//!
//! Prints, per step of `2·BATCH` views (averaged over REPS steps, after one warm-up round):
//! the augmentation + canonicalization of the views (on one thread), the input smoothing,
//! the forward pass with the loss, and the backward pass. [`train_speed`] measures the whole
//! step (images/s).

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{VarBuilder, VarMap};
use memscan_embed::canon::canonicalized;
use memscan_embed::cnn::{self, Cnn, Config};
use memscan_embed::sample::phantom_images;
use memscan_embed::train::{augment, normalize_rows, nt_xent, TrainConfig};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

/// The allocator of the `memscan` binary, so that the speed measured is the CLI's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    memscan_embed::prefer_single_candle_thread();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: usize| args.get(i).map_or(d, |s| s.parse().expect("a number"));
    let (size, batch, reps) = (arg(0, 56), arg(1, 64), arg(2, 20));
    let dev = Device::Cpu;
    let cfg = Config::small(1, size);
    let temperature = TrainConfig::new(cfg.clone()).temperature;
    let varmap = VarMap::new();
    let model = Cnn::new(&cfg, VarBuilder::from_varmap(&varmap, DType::F32, &dev)).unwrap();
    cnn::init_varmap(&varmap, 0).unwrap();
    let images = phantom_images(2 * batch, size);

    let ms = |secs: f64| secs * 1e3 / reps as f64;
    for round in ["warm-up", "measured"] {
        let (mut t_aug, mut t_smooth, mut t_fwd, mut t_bwd) = (0.0, 0.0, 0.0, 0.0);
        for r in 0..reps {
            let t = Instant::now();
            let mut data = Vec::with_capacity(2 * batch * size * size);
            for (i, img) in images.iter().enumerate() {
                let mut rng = ChaCha8Rng::seed_from_u64((r * images.len() + i) as u64);
                let view = augment(img, &mut rng);
                data.extend(canonicalized(cfg.canon, &view, 1, size, size));
            }
            t_aug += t.elapsed().as_secs_f64();
            let x = Tensor::from_vec(data, (2 * batch, size, size, 1), &dev).unwrap();

            let t = Instant::now();
            drop(cnn::smooth(&x, cfg.smooth).unwrap());
            t_smooth += t.elapsed().as_secs_f64();

            let t = Instant::now();
            let z = normalize_rows(&model.project(&model.forward(&x).unwrap()).unwrap()).unwrap();
            let loss = nt_xent(&z, temperature).unwrap();
            t_fwd += t.elapsed().as_secs_f64();

            let t = Instant::now();
            drop(loss.backward().unwrap());
            t_bwd += t.elapsed().as_secs_f64();
        }
        println!(
            "{round}: {size}x{size}, {} views/step, {} threads: augment+canon {:.1} ms (1 thread), \
             smooth {:.1} ms, forward+loss {:.1} ms (smooth included), backward {:.1} ms",
            2 * batch,
            rayon::current_num_threads(),
            ms(t_aug),
            ms(t_smooth),
            ms(t_fwd),
            ms(t_bwd)
        );
    }
}
