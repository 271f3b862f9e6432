//! `memscan embed`: a folder of images → `OUT.npy` + `OUT.ids.txt`, the format
//! `memscan scan --features` reads.
//!
//! Streams: the inputs are listed once, then decoded and embedded `--batch-files` files at a
//! time, and each batch's rows are appended to the output before the next batch is decoded, so
//! memory is bounded by one batch of decoded images (plus the id list), not by the set.

use crate::cli::{embed_config, EmbedArgs};
use crate::progress::BarReporter;
use anyhow::{Context, Result};
use memscan::features::NpyRowWriter;
use memscan_embed::embed_all;
use memscan_io::{ImageStream, Reporter};
use std::process::ExitCode;

pub fn run(args: &EmbedArgs) -> Result<ExitCode> {
    let io = args.io_config()?;
    let embedder = memscan::make_embedder(&embed_config(&args.embedder, args.arch)?, &io)?;
    let reporter = BarReporter::new(args.quiet);
    let mut stream = ImageStream::open(&args.images, &io)
        .with_context(|| format!("reading images from {}", args.images.display()))?;
    let mut writer = NpyRowWriter::create(&args.out, embedder.dim(), true)?;
    let mut skipped = 0usize;
    reporter.start(
        &format!("embed {}", args.images.display()),
        stream.files() as u64,
    );
    while let Some(chunk) = stream.next_chunk(args.batch_files as usize, &reporter) {
        let chunk =
            chunk.with_context(|| format!("reading images from {}", args.images.display()))?;
        skipped += chunk.skipped.len();
        let e = embed_all(
            embedder.as_ref(),
            &chunk.images,
            "embed",
            &memscan_io::NoReporter,
        )
        .context("embedding images")?;
        let ids: Vec<String> = chunk.images.iter().map(|i| i.id.clone()).collect();
        writer.append(e.view(), &ids)?;
    }
    reporter.finish();
    let hash = stream
        .finish()
        .with_context(|| format!("reading images from {}", args.images.display()))?;
    let rows = writer.finish()?;
    let info = embedder.info();
    println!(
        "wrote {} ({rows} × {} float32, embedder {}, normalized: {}) and {}",
        args.out.display(),
        info.dim,
        info.name,
        info.normalized,
        memscan::features::ids_path(&args.out).display()
    );
    println!("image set content hash {hash}");
    if skipped > 0 {
        println!("{skipped} bad input(s) skipped (--skip-bad)");
    }
    Ok(ExitCode::SUCCESS)
}
