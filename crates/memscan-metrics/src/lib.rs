//! Memorization, data-copying and membership-inference metrics for memscan, as pure functions
//! over nearest-neighbour distances, similarities and labels.
//!
//! # Brief overview
//!
//! The pipeline finds, for every synthetic and holdout image, its nearest training images
//! (`memscan-index`); this crate turns those distances into the numbers of `summary.json`.
//! One module per published metric (DESIGN.md, "Metric definitions"):
//!
//! | module | metric | `summary.json` |
//! |---|---|---|
//! | [`copy_rate`] | calibrated copy rate ([`copy_rate::calibrate`] → [`copy_rate::Threshold`] → [`copy_rate::CopyRate`]); fixed cosine threshold | `copy_rate@fpr=α` |
//! | [`ratio`] | Yoon et al. / Gu et al. ratio test `d1/d2 < 1/3` ([`ratio::RatioRate`]) | `ratio_rate` |
//! | [`profile`] | Somepalli et al. similarity profile ([`profile::SimilarityProfile`]) | `similarity` |
//! | [`copies`] | training images (and patients) copied ([`copies::TrainCopied`]) | `train_copied_fraction` |
//! | [`authpct`] | Alaa et al. authenticity, dgm-eval's corrected form ([`authpct::AuthPct`]) | `authpct` |
//! | [`ct`] | Meehan et al. data-copying test C_T ([`ct::Ct`]) | `c_t` |
//! | [`dcr`] | closer-to-train share against an equal holdout, binomial test ([`dcr::Dcr`]) | `dcr` |
//! | [`mia`] | membership inference: four attacks, ROC, AUC, TPR at low FPR, bootstrap CIs ([`mia::AttackResult`]) | `mia.<attack>` |
//! | [`identifiability`] | ADS-GAN / synthcity identifiability score ([`identifiability::Identifiability`]) | `identifiability` |
//! | [`mdcr`] | syntheval's median DCR ratio ([`mdcr::Mdcr`]) | `mdcr` |
//! | [`groups`] | per-patient MIA scores and copied-patient share | |
//! | [`stats`] | Clopper–Pearson intervals, numpy percentiles, exact binomial test | |
//!
//! Conventions everywhere: a distance is the true Euclidean distance in the embedding, never
//! squared (`d1`, `d2` for the 1st and 2nd nearest training image); cosine similarity is
//! `1 − d²/2` on L2-normalized embeddings; rates come with a Clopper–Pearson 95 % interval.
//! Invalid input (empty, mismatched lengths, NaN distances, parameters out of range) is an
//! [`Error`], never a panic. Nothing here does I/O, prints, reads the environment or depends on
//! thread count (rayon tasks each compute whole items and results are collected in index
//! order); every random choice ([`mia::sample`], [`dcr::equal_subsets`], the PCA start and
//! k-means runs of [`ct`], [`mia::bootstrap`]) comes from an explicit seed through
//! `ChaCha8Rng`. Most metrics take distances that the pipeline computed with its k-NN index;
//! the two that need the embeddings themselves ([`ct::ct`], [`mia::attacks::density_ratio`])
//! keep memory linear in the number of images (blocked loops, no `N×N` matrix).
//!
//! # Example
//!
//! ```
//! use memscan_metrics::copy_rate::{calibrate, copy_rate};
//! use memscan_metrics::ratio::{ratio_rate, RATIO_THRESHOLD};
//!
//! // d1/d2 of 4 synthetic images to the training set, and d1 of 10 holdout images.
//! let d1 = [0.05, 0.4, 0.6, 0.9];
//! let d2 = [0.50, 0.5, 0.9, 1.0];
//! let holdout_d1 = [0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8];
//!
//! let th = calibrate(&holdout_d1, 0.1)?; // 2nd smallest holdout value: 0.35
//! let copies = copy_rate(&d1, &th, &holdout_d1)?;
//! assert_eq!((copies.count, copies.rate), (1, 0.25));
//!
//! let memorized = ratio_rate(&d1, &d2, RATIO_THRESHOLD)?; // 0.05/0.5 = 0.1 < 1/3
//! assert_eq!(memorized.count, 1);
//! # Ok::<(), memscan_metrics::Error>(())
//! ```

#![warn(missing_docs)]

pub mod authpct;
pub mod copies;
pub mod copy_rate;
pub mod ct;
pub mod dcr;
mod error;
pub mod groups;
pub mod identifiability;
mod kde;
mod kmeans;
mod linalg;
pub mod mdcr;
pub mod mia;
pub mod profile;
pub mod ratio;
pub mod stats;

pub use error::{Error, Result};
