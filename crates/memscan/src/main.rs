//! The `memscan` command line: parses flags, wires the pipeline, prints, picks the exit code.

mod cli;
mod demo;
mod embed;
mod progress;
mod reproduce;

use clap::Parser;

/// mimalloc instead of glibc's malloc: cnn training allocates and frees large activation
/// buffers every step, which glibc's trimming makes markedly slower.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Before any thread starts; a user's own CANDLE_NUM_THREADS wins.
    memscan_embed::prefer_single_candle_thread();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors; usage errors exit with 2.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
