//! Helpers shared by the unit tests: configs, loading, and fixture writers (every fixture is
//! generated into a temporary folder by the test that uses it).

use crate::{load, BadInputPolicy, Error, ImageSet, IoConfig, NoReporter};
use std::path::Path;

pub(crate) fn cfg(size: u32, channels: u8) -> IoConfig {
    IoConfig {
        size,
        channels,
        on_bad_input: BadInputPolicy::Fail,
        ..IoConfig::default()
    }
}

pub(crate) fn skip(size: u32, channels: u8) -> IoConfig {
    IoConfig {
        on_bad_input: BadInputPolicy::Skip,
        ..cfg(size, channels)
    }
}

/// Loads `path`, panicking with the error chain on failure.
pub(crate) fn load_ok(path: &Path, cfg: &IoConfig) -> ImageSet {
    load(path, cfg, &NoReporter).unwrap_or_else(|e| panic!("{}", crate::error::chain(&e)))
}

/// Loads `path` expecting an error; checks that the message names `file_name`.
pub(crate) fn load_err(path: &Path, cfg: &IoConfig, file_name: &str) -> Error {
    let err = load(path, cfg, &NoReporter).expect_err("expected an error");
    let msg = err.to_string();
    assert!(
        msg.contains(file_name),
        "message {msg:?} should name {file_name:?}"
    );
    assert!(!msg.contains('\n'), "message {msg:?} should be one line");
    err
}

/// Asserts every value of `values` is within `tol` of `expected`.
#[track_caller]
pub(crate) fn assert_all_near(values: &[f32], expected: f32, tol: f32) {
    for (i, v) in values.iter().enumerate() {
        assert!(
            (v - expected).abs() <= tol,
            "value {i} is {v}, expected {expected} ± {tol}"
        );
    }
}
