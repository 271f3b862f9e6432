//! memscan benchmarks: one module per pipeline stage, each exporting a criterion group.

mod embed_efficientnet;
mod knn_exact;
mod knn_hnsw;

criterion::criterion_main!(
    knn_exact::benches,
    knn_hnsw::benches,
    embed_efficientnet::benches
);
