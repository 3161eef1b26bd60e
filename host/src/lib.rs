//! wasmig: SQLite schema migrations shipped as WebAssembly components.
//!
//! Each migration is a component exporting `up` and importing only the
//! `wasmig:migration/sql` interface. The [`Migrator`] loads a directory of
//! them, checks every file before anything runs, and applies the pending ones
//! in id order, each inside its own SQLite transaction: committed when the
//! guest returns `Ok`, rolled back on its `Err`, a trap or any limit.

mod bindings;
pub mod compile_cache;
pub mod error;
pub mod fleet;
#[doc(hidden)]
pub mod fuzzing;
pub mod gate;
mod host_sql;
pub mod import;
pub mod ledger;
pub mod ledger_guard;
mod limiter;
pub mod migrator;
pub mod plugin;
pub mod rehearse;
pub mod sandbox;
pub mod scaffold;
pub mod signing;
pub mod snapshot;
mod sqlfuncs;
mod sqlite_heap;
pub mod sqlpack;
pub mod sqlsplit;
pub mod testing;

pub use compile_cache::CompileCache;
pub use error::{Error, Result};
pub use host_sql::CallLimits;
pub use migrator::{MigrationState, Migrator, Options, Plan, Report, StatusRow, Step};
pub use plugin::{Manifest, Plugin};
pub use sandbox::Limits;
pub use signing::{TrustPolicy, Verdict};

/// This library's version, recorded in the ledger with each migration.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
