//! Applying migrations: the migrator, single-transaction mode, status,
//! fleets of databases, rehearsals and database snapshots.

pub mod fleet;
pub mod migrator;
pub mod rehearse;
pub mod snapshot;

pub use migrator::*;
