//! memscan benchmarks: one module per pipeline stage, each exporting a criterion group.

mod embed;
mod embed_efficientnet;
mod knn_exact;
mod knn_hnsw;
mod knn_views;
mod pipeline;

/// The `memscan` binary's allocator, so that the benches measure what the binary does (cnn
/// training allocates and frees large activation buffers every step).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

criterion::criterion_main!(
    knn_exact::benches,
    knn_hnsw::benches,
    knn_views::benches,
    pipeline::benches,
    embed::benches,
    embed_efficientnet::benches
);
