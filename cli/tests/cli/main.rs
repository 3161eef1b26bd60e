//! Tests of the `wasmig` binary, run as a real process on real files.
//!
//! One test binary for the CLI; each concern is a module (a new file here
//! must be added below).

mod adopt;
mod blast;
mod commands;
mod down;
mod hostile;
mod litestream;
mod processes;
mod replicas;
mod workflow;
