//! Procedural phantoms, copy injection with ground truth, and the memscan demo dataset.
//!
//! # Brief overview
//!
//! - [`phantom`]: CT-, MR- and X-ray-like images drawn procedurally. A patient
//!   ([`PatientParams::sample`]) fixes an anatomy from a seed; [`render`] draws one of its
//!   slices at a position `z`, so neighbouring slices of a patient are hard negatives (similar,
//!   not copies) and different patients are clearly different.
//! - [`transform`]: [`CopyTransform`], the ways a memorized training image may be altered
//!   (noise, blur, JPEG, flip, shift, rotation, crop, gamma, elastic), each at a severity.
//! - [`demo`]: [`write_demo`] writes `train/`, `holdout/` and `synthetic/` PNG folders with
//!   `truth.csv` (which synthetic image copies which training image) and `groups.csv`
//!   (patient of every real image): the input of `memscan scan` in the README's demo.
//! - [`inject`](mod@inject): [`inject()`](fn@inject), the general form used by the benchmark harness: mix transformed
//!   copies of training images into a set of novel images at a chosen rate.
//! - [`kde`](mod@kde) and [`denoiser`](mod@denoiser): generators that memorize by
//!   construction — Meehan et al.'s Gaussian KDE and Gu et al.'s closed-form optimal
//!   denoiser with an EDM sampler — with ground truth ([`GenTruth`]).
//! - [`moons`](mod@moons): scikit-learn-style two-moons toy data (Meehan et al.'s C_T curve).
//! - [`real`]: readers for the fetched real datasets (IDX, InVesalius `.inv3`, NIfTI).
//! - [`spec`]: [`DatasetSpec`] and [`build()`](fn@build), the benchmark's datasets with
//!   splits by patient / volume.
//! - `testutil` (feature `test-util`): fixtures for other crates' tests.
//!
//! Library code never prints and reads no environment. All randomness comes from explicit
//! seeds through ChaCha8 streams derived from `(seed, stage, index)`, so every output is
//! identical for any rayon thread count.
//!
//! # Example
//!
//! ```
//! use memscan_datasets::{render, write_demo, DemoSpec, PatientParams, PhantomKind};
//!
//! let patient = PatientParams::sample(PhantomKind::Mr, 42);
//! let slice = render(&patient, 0.3, 64, 1);
//! assert_eq!(slice.len(), 64 * 64);
//!
//! let dir = tempfile::tempdir().unwrap();
//! let spec = DemoSpec { size: 32, n_patients_train: 4, n_holdout: 12, n_synthetic_novel: 10,
//!                       n_exact_copies: 1, n_perturbed_copies: 1, ..DemoSpec::default() };
//! let truth = write_demo(dir.path(), &spec).unwrap();
//! assert_eq!(truth.synthetic.len(), 12);
//! assert_eq!(truth.n_copies(), 2);
//! ```

pub mod demo;
pub mod denoiser;
mod encode;
mod error;
pub mod generated;
pub mod inject;
pub mod kde;
pub mod moons;
pub mod phantom;
pub mod real;
mod rng;
pub mod spec;
#[cfg(feature = "test-util")]
pub mod testutil;
pub mod transform;

pub use demo::{
    read_groups, read_truth, write_demo, DemoPaths, DemoSpec, DemoTruth, GroupRow, TruthRow,
};
pub use denoiser::{denoiser, DenoiserSpec};
pub use error::Error;
pub use generated::{GenTruth, Generated};
pub use inject::{inject, InjectRow, InjectSpec, Injected};
pub use kde::{kde, KdeSpec};
pub use moons::moons;
pub use phantom::{from_u8, render, render_u16, render_u8, to_u8, PatientParams, PhantomKind};
pub use spec::{build, Dataset, DatasetSpec, Source};
pub use transform::CopyTransform;
