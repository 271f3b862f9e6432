//! The memscan pipeline: files → images → embeddings → neighbours → metrics → reports.
//!
//! # Brief overview
//!
//! [`AuditConfig`] gathers the validated configuration of every stage;
//! [`Audit::run`] executes the pipeline once and returns an [`Audit`] whose
//! [`output`](Audit::output) holds everything the report writers need. The `memscan`
//! binary is a thin clap layer over this crate; other tools can call it directly.
//!
//! The data flow runs one way only (DESIGN.md): `memscan-io` decodes, `memscan-embed`
//! embeds, `memscan-index` finds neighbours, `memscan-metrics` computes the numbers,
//! `memscan-report` writes them.

mod audit;
pub mod bench;
mod budget;
pub mod cache;
mod config;
mod error;
pub mod features;
mod gallery;
mod groups;
mod leakage;
mod privacy;

pub use audit::{make_embedder, Audit};
pub use budget::{Budget, Comparison};
pub use config::{
    default_weights, AuditConfig, CnnTrainConfig, EmbedConfig, EmbedderKind, FeaturesConfig,
    IndexConfig, IndexKind, MetricsConfig, Views, EFFICIENTNET_LITE0_WEIGHTS, VIEWS_AUTO_MAX_TRAIN,
};
pub use error::Error;
pub use gallery::{DIFF_GAIN, GALLERY_SIZE, THUMBNAIL_MAX};
pub use groups::GroupBy;
