//! Applying migrations: the migrator (with its status and single-transaction
//! parts, and reverts), fleets of databases, rehearsals on a copy (also of
//! up, down and up again: `round_trip`) and the database
//! snapshots rehearsals and tests compare.

mod fleet;
mod ledger_guard;
pub(crate) use ledger_guard::is_ledger_name;
mod migrator;
mod rehearse;
mod round_trip;
pub(crate) mod snapshot;

pub use fleet::{DbResult, FleetOptions, FleetReport, expand_databases};
pub use migrator::*;
pub use rehearse::{Rehearsal, RehearsedStep, StepOutcome};
pub use round_trip::{RoundTrip, RoundTripOutcome, RoundTripStep};
pub use snapshot::{SchemaObject, Snapshot};
