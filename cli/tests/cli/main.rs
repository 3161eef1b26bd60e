//! Tests of the `wasmig` binary, run as a real process on real files.
//!
//! One test binary for the CLI; each concern is a module (a new file here
//! must be added below).

mod commands;
mod down;
mod hostile;
mod processes;
