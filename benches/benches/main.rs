//! memscan benchmarks: one module per pipeline stage, each exporting a criterion group.

mod embed;
mod embed_efficientnet;
mod knn_exact;
mod knn_hnsw;
mod pipeline;

criterion::criterion_main!(
    knn_exact::benches,
    knn_hnsw::benches,
    pipeline::benches,
    embed::benches,
    embed_efficientnet::benches
);
