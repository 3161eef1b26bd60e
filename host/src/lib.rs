//! wasmig: SQLite schema migrations shipped as WebAssembly components.
//!
//! Each migration is a component exporting `up` and importing only the
//! `wasmig:migration/sql` interface. The [`Migrator`] loads a directory of
//! them, checks every file before anything runs, and applies the pending ones
//! in id order, each inside its own SQLite transaction: committed when the
//! guest returns `Ok`, rolled back on its `Err`, a trap or any limit.

pub mod apply;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod ledger;
pub mod plugin;
pub mod sandbox;
pub mod sql;
pub mod testing;
mod worlds;

// The modules' former paths, until callers move to the curated API.
pub use apply::{fleet, migrator, rehearse, snapshot};
pub use plugin::signing;
pub use sandbox::{compile_cache, gate};
pub use sql::{import, script as sqlpack, split as sqlsplit};

pub use error::{Error, Result};
pub use migrator::{MigrationState, Migrator, Options, Plan, Report, StatusRow, Step};
pub use plugin::{Manifest, Plugin};
pub use plugin::{TrustPolicy, Verdict};
pub use sandbox::{CallLimits, CompileCache, Limits};

/// This library's version, recorded in the ledger with each migration.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
