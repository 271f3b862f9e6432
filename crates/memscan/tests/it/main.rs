//! Integration tests of the memscan pipeline and binary (one test crate, topic modules).

mod bench;
mod cli;
mod features;
mod fixture;
mod medical;
mod report;
mod scan;
mod util;
