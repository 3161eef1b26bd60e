//! Tests of the `wasmig` binary, run as a real process on real files.
//!
//! One test binary for the CLI; each concern is a module (a new file here
//! must be added below).

mod adopt;
mod blast;
mod cache;
mod commands;
mod down;
mod hostile;
mod litestream;
mod processes;
mod release;
mod replicas;
mod workflow;

use std::path::PathBuf;

/// `apply` keeps compiled components in `$XDG_CACHE_HOME/wasmig` by
/// default: every wasmig process a test starts gets this directory under
/// the test build's own scratch space instead, so no test writes to the
/// real home cache.
pub fn test_cache_home() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("xdg-cache-home")
}

/// The real `wasmig` binary, with [`test_cache_home`] as its cache home.
/// Every test starts wasmig through this.
pub fn wasmig_command() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_wasmig"));
    cmd.env("XDG_CACHE_HOME", test_cache_home());
    cmd
}
