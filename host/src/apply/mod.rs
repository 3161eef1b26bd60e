//! Applying migrations: the migrator (with its status and single-transaction
//! parts), fleets of databases, rehearsals on a copy and the database
//! snapshots rehearsals and tests compare.

mod adopt;
mod fleet;
mod foreign_ledger;
mod ledger_guard;
mod migrator;
mod rehearse;
pub(crate) mod snapshot;

pub use adopt::{Adoption, Recorded};
pub use fleet::{DbResult, FleetOptions, FleetReport, expand_databases};
pub use migrator::*;
pub use rehearse::{Rehearsal, RehearsedStep, StepOutcome};
pub use snapshot::{SchemaObject, Snapshot};
