//! Tests of the `wasmig` binary, run as a real process on real files.
//!
//! One test binary for the CLI; each concern is a module (a new file here
//! must be added below).

mod commands;
mod hostile;
mod processes;
mod release;
