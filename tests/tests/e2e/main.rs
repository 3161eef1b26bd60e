//! wasmig's end-to-end tests: real guest components, real SQLite files.
//!
//! One test binary, so a change to the library relinks wasmtime once for all
//! of them; each concern is a module. A new file here must be added below.

mod apply;
mod batch;
mod blast;
mod check;
mod compile_cache;
mod compilers;
mod differential;
mod direct_sql;
mod down;
mod fleet;
mod import;
mod ledger_guard;
mod replica;
mod robustness;
mod sandbox;
mod signing;
mod single_transaction;
mod stamp;
