//! Writes a demo dataset (CT phantoms with known copies, as `memscan demo` does) of a chosen
//! size, for timing `memscan scan` on more images than the built-in demo has:
//!
//! ```sh
//! cargo run --release -p memscan-datasets --example demo_data -- OUT SIZE TRAIN_PATIENTS [HOLDOUT]
//! # e.g. the cnn end-to-end budget of issue 6: 2,001 training images (667 patients × 3) of 56×56
//! cargo run --release -p memscan-datasets --example demo_data -- /tmp/e2e 56 667 1000
//! memscan scan --train /tmp/e2e/train --synthetic /tmp/e2e/synthetic --holdout /tmp/e2e/holdout \
//!     --size 56 --embedder cnn --train-embedder --out /tmp/e2e-out
//! ```

use memscan_datasets::demo::{write_demo, DemoSpec};
use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parse = |i: usize, what: &str| -> Result<usize, String> {
        args[i]
            .parse()
            .map_err(|e| format!("{what} {:?}: {e}", args[i]))
    };
    let run = || -> Result<(), String> {
        if !(3..=4).contains(&args.len()) {
            return Err("usage: demo_data OUT SIZE TRAIN_PATIENTS [HOLDOUT]".into());
        }
        let size = parse(1, "SIZE")?;
        let spec = DemoSpec {
            size: u32::try_from(size).map_err(|e| format!("SIZE {size}: {e}"))?,
            n_patients_train: parse(2, "TRAIN_PATIENTS")?,
            n_holdout: if args.len() == 4 {
                parse(3, "HOLDOUT")?
            } else {
                1000
            },
            ..DemoSpec::default()
        };
        let truth = write_demo(Path::new(&args[0]), &spec).map_err(|e| e.to_string())?;
        println!(
            "{}: {} train, {} holdout, {} synthetic ({} copies) of {size}×{size}",
            args[0],
            spec.n_train(),
            spec.n_holdout,
            truth.rows.len(),
            truth.n_copies(),
        );
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo_data: {e}");
            ExitCode::from(2)
        }
    }
}
