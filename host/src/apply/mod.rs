//! Applying migrations: the migrator (with its status and single-transaction
//! parts, and reverts), fleets of databases, rehearsals on a copy (also of
//! up, down and up again: `round_trip`) and the database
//! snapshots rehearsals and tests compare.

mod adopt;
mod attest;
mod blast;
mod catalog;
mod fleet;
mod foreign_ledger;
mod ledger_guard;
pub(crate) use ledger_guard::is_ledger_name;
mod migrator;
mod object_lines;
mod rehearse;
mod round_trip;
mod shape;
pub(crate) mod snapshot;
mod table_facts;

pub use adopt::{Adoption, Recorded};
pub use attest::{
    Attestation, SchemaCheck, SchemaState, attest as attest_schema, check_schema,
    normal_form as normal_schema,
};
pub use blast::{BlastRadius, TableRows};
pub use fleet::{DbResult, FleetOptions, FleetReport, expand_databases};
pub use migrator::*;
pub use rehearse::{Rehearsal, RehearsedStep, StepOutcome};
pub use round_trip::{RoundTrip, RoundTripOutcome, RoundTripStep};
pub use shape::Destruction;
pub use snapshot::{SchemaObject, Snapshot};
