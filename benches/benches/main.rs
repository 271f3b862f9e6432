//! memscan benchmarks: one module per pipeline stage, each exporting a criterion group.

mod knn_exact;

criterion::criterion_main!(knn_exact::benches);
