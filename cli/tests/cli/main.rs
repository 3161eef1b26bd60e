//! Tests of the `wasmig` binary, run as a real process on real files.
//!
//! One test binary for the CLI; each concern is a module (a new file here
//! must be added below).

mod cache;
mod commands;
mod hostile;
mod processes;

use std::path::PathBuf;

/// `apply` keeps compiled components in `$XDG_CACHE_HOME/wasmig` by
/// default: every wasmig process a test starts gets this directory under
/// the test build's own scratch space instead, so no test writes to the
/// real home cache.
pub fn test_cache_home() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("xdg-cache-home")
}
