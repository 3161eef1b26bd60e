//! Rehearsing reverts on a copy: each pending migration's `up`, its `down`
//! and its `up` again ([`Migrator::rehearse_round_trip`], `wasmig test
//! --round-trip`).
//!
//! A `down` is right when it leaves the schema exactly as it was before
//! `up` and every table with the rows it had; this checks the schema
//! (every object's SQL) and each table's row count, leaving out wasmig's own
//! ledger tables. The copy is made as for [`Migrator::rehearse`]; the real
//! database is never opened for writing.

use std::path::Path;

use rusqlite::Connection;

use super::migrator::Migrator;
use super::snapshot::Snapshot;
use crate::error::Result;

/// How one migration's round trip went.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "outcome", content = "reason")]
pub enum RoundTripOutcome {
    /// Up, down and up again all succeeded, and down restored the schema
    /// and row counts.
    Ok,
    /// Down ran but left the schema or row counts different from before up
    /// (see the step's `differences`).
    NotRestored,
    /// The migration is forward-only (no `down`); up ran, nothing more.
    NoDown,
    /// Up failed.
    UpFailed(String),
    /// Down failed (it was rolled back).
    DownFailed(String),
    /// Up failed the second time, after down.
    UpAgainFailed(String),
    /// An earlier migration's up failed, so this one did not run.
    NotReached,
}

/// One pending migration's round trip.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RoundTripStep {
    /// Migration id.
    pub id: i64,
    /// Migration name.
    pub name: String,
    /// What happened.
    #[serde(flatten)]
    pub outcome: RoundTripOutcome,
    /// What down left different from before up: schema lines (`+`, `~`,
    /// `-`) and tables whose row count changed.
    pub differences: Vec<String>,
}

/// The result of [`Migrator::rehearse_round_trip`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RoundTrip {
    /// Ids already applied to the real database.
    pub already_applied: Vec<i64>,
    /// Every pending migration, in order.
    pub steps: Vec<RoundTripStep>,
}

impl RoundTrip {
    /// True when every pending migration round-tripped.
    pub fn all_ok(&self) -> bool {
        self.steps.iter().all(|s| s.outcome == RoundTripOutcome::Ok)
    }
}

impl Migrator {
    /// Rehearses, on a private copy of the database at `db`, each pending
    /// migration's up, down and up again, in id order, and reports every
    /// one whose down does not restore the schema and row counts it found.
    /// Refused input is an `Err`, as for [`Migrator::rehearse`].
    pub fn rehearse_round_trip(&self, db: &Path) -> Result<RoundTrip> {
        self.round_trip_on(&mut super::rehearse::rehearsal_copy(db)?)
    }

    /// [`Migrator::rehearse_round_trip`] on `conn` itself (a copy the caller made).
    pub fn round_trip_on(&self, conn: &mut Connection) -> Result<RoundTrip> {
        let plan = self.plan(conn)?;
        let mut steps = Vec::with_capacity(plan.steps.len());
        let mut failed = false;
        for step in &plan.steps {
            let (id, name) = (step.plugin.id(), step.plugin.name().to_owned());
            let (outcome, differences, stop) = if failed {
                (RoundTripOutcome::NotReached, Vec::new(), true)
            } else {
                self.round_trip_one(conn, step)?
            };
            // Later migrations build on this one: stop after an up that failed.
            failed |= stop;
            steps.push(RoundTripStep { id, name, outcome, differences });
        }
        Ok(RoundTrip { already_applied: plan.already_applied, steps })
    }

    /// One migration's round trip: its outcome, what down left different,
    /// and whether the copy is now in a state later migrations cannot be
    /// rehearsed on (an up that failed).
    fn round_trip_one(
        &self,
        conn: &mut Connection,
        step: &super::Step<'_>,
    ) -> Result<(RoundTripOutcome, Vec<String>, bool)> {
        let id = step.plugin.id();
        let before = user_snapshot(conn)?;
        if let Err(e) = self.apply_step(conn, step) {
            return Ok((RoundTripOutcome::UpFailed(e.to_string()), Vec::new(), true));
        }
        if !step.plugin.manifest.is_reversible() {
            return Ok((RoundTripOutcome::NoDown, Vec::new(), false));
        }
        let after_up = user_snapshot(conn)?;
        match self.revert_to(conn, id - 1) {
            Ok(_) => {}
            // A refusal (the file or ledger) is the caller's problem, as for up.
            Err(e) if e.is_refused_input() => return Err(e),
            // Rolled back: up's changes stay, so later migrations can still run.
            Err(e) => return Ok((RoundTripOutcome::DownFailed(e.to_string()), Vec::new(), false)),
        }
        let after_down = user_snapshot(conn)?;
        let mut differences = differences(&before, &after_down);
        let up_again = self.apply_step(conn, step);
        if !differences.is_empty() {
            // What down left behind is the finding; an up that then fails
            // (say, on a table down did not drop) is a consequence of it.
            if let Err(e) = up_again {
                differences.push(format!("up again then failed: {e}"));
                return Ok((RoundTripOutcome::NotRestored, differences, true));
            }
            return Ok((RoundTripOutcome::NotRestored, differences, false));
        }
        if let Err(e) = up_again {
            return Ok((RoundTripOutcome::UpAgainFailed(e.to_string()), Vec::new(), true));
        }
        // Down restored the start, so up must end where it did the first time.
        let drift = self::differences(&after_up, &user_snapshot(conn)?);
        if !drift.is_empty() {
            let why = format!("up ended differently the second time: {}", drift.join("; "));
            return Ok((RoundTripOutcome::UpAgainFailed(why), drift, false));
        }
        Ok((RoundTripOutcome::Ok, Vec::new(), false))
    }
}

/// The database without wasmig's own tables (the ledger and its audit),
/// which a revert changes by design.
fn user_snapshot(conn: &Connection) -> Result<Snapshot> {
    let mut snap = Snapshot::take(conn)?;
    snap.schema.retain(|o| !super::ledger_guard::is_ledger_name(&o.table));
    snap.rows.retain(|t, _| !super::ledger_guard::is_ledger_name(t));
    Ok(snap)
}

/// Schema differences, then tables whose row count differs.
fn differences(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut out = before.schema_diff(after);
    // Automatic indexes carry no SQL and are left out of the diff; compare
    // the rest of the schema exactly, whatever the diff shows.
    if out.is_empty() && before.schema != after.schema {
        out.push("~ schema: objects differ (automatic indexes or table names)".to_owned());
    }
    let names: std::collections::BTreeSet<&String> = before.rows.keys().chain(after.rows.keys()).collect();
    for name in names {
        let (a, b) = (before.rows.get(name).map_or(0, Vec::len), after.rows.get(name).map_or(0, Vec::len));
        if a != b {
            out.push(format!("{name}: {a} rows before up, {b} after down"));
        }
    }
    out
}
