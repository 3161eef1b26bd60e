//! Rehearsing pending migrations on a copy of a database.
//!
//! The real file is opened read-only and copied with SQLite's backup API;
//! every pending migration then runs against the copy exactly as `apply`
//! would run it, and the report says what each did: outcome, time, rows
//! changed, schema diff and its blast radius (see `blast`: objects created,
//! dropped and changed, rows per table before and after, the verdict). The
//! real database is never opened for writing.

use std::path::Path;
use std::time::Duration;

use rusqlite::backup::Backup;
use rusqlite::{Connection, OpenFlags};

use super::blast::{self, BlastRadius};
use super::migrator::Migrator;
use super::snapshot::Snapshot;
use crate::error::{Error, Result};

/// How one rehearsed migration went.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "outcome", content = "reason")]
pub enum StepOutcome {
    /// It would apply.
    Ok,
    /// It would fail and be rolled back; why.
    Failed(String),
    /// An earlier migration failed, so it would not run.
    NotReached,
}

/// One pending migration's rehearsal.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RehearsedStep {
    /// Migration id.
    pub id: i64,
    /// Migration name.
    pub name: String,
    /// What happened.
    #[serde(flatten)]
    pub outcome: StepOutcome,
    /// Time it took on the copy, in milliseconds.
    pub duration_ms: u64,
    /// Rows its `exec` calls changed.
    pub rows_changed: u64,
    /// Schema changes (`+`, `~`, `-` lines).
    pub schema_diff: Vec<String>,
    /// How long its write transaction held the database (`BEGIN
    /// IMMEDIATE` to `COMMIT`), in milliseconds; 0 unless it applied.
    pub write_ms: u64,
    /// What it created, dropped, changed and deleted; `null` unless it
    /// applied (a failed migration is rolled back and changes nothing).
    pub blast_radius: Option<BlastRadius>,
}

/// The result of [`Migrator::rehearse`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rehearsal {
    /// Ids already applied to the real database.
    pub already_applied: Vec<i64>,
    /// Every pending migration, in order.
    pub steps: Vec<RehearsedStep>,
}

impl Rehearsal {
    /// True when every pending migration would apply.
    pub fn all_ok(&self) -> bool {
        self.steps.iter().all(|s| s.outcome == StepOutcome::Ok)
    }
}

impl Migrator {
    /// Rehearses the pending migrations for the database at `db` on a
    /// private copy (a missing file rehearses against an empty database).
    /// Refused input (drift, out of order, bad components) is an `Err`, as
    /// it would be for `apply`.
    pub fn rehearse(&self, db: &Path) -> Result<Rehearsal> {
        self.rehearse_on(&mut rehearsal_copy(db)?)
    }

    /// Rehearses on `conn` itself (a copy the caller made).
    pub fn rehearse_on(&self, conn: &mut Connection) -> Result<Rehearsal> {
        let plan = self.plan(conn)?;
        let mut steps = Vec::new();
        let mut failed = false;
        for step in &plan.steps {
            let (id, name) = (step.plugin.id(), step.plugin.name().to_owned());
            if failed {
                steps.push(RehearsedStep {
                    id,
                    name,
                    outcome: StepOutcome::NotReached,
                    duration_ms: 0,
                    rows_changed: 0,
                    schema_diff: Vec::new(),
                    write_ms: 0,
                    blast_radius: None,
                });
                continue;
            }
            let before = Snapshot::take(conn)?;
            let measured = blast::Before::take(conn)?;
            let started = std::time::Instant::now();
            let result = self.apply_step(conn, step);
            let duration = started.elapsed();
            let radius = measured.finish(conn)?;
            let after = Snapshot::take(conn)?;
            let (outcome, rows_changed, write_ms, blast_radius) = match result {
                Ok(Some(applied)) => {
                    (StepOutcome::Ok, applied.stats.rows_changed, ms(applied.duration), Some(radius))
                }
                Ok(None) => (StepOutcome::Ok, 0, 0, None),
                Err(e) => {
                    failed = true;
                    (StepOutcome::Failed(e.to_string()), 0, 0, None)
                }
            };
            steps.push(RehearsedStep {
                id,
                name,
                outcome,
                duration_ms: ms(duration),
                rows_changed,
                schema_diff: before.schema_diff(&after),
                write_ms,
                blast_radius,
            });
        }
        Ok(Rehearsal { already_applied: plan.already_applied, steps })
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A private in-memory copy of the database at `db` to rehearse on (empty
/// when the file does not exist); `db` is opened read-only.
pub(super) fn rehearsal_copy(db: &Path) -> Result<Connection> {
    let mut copy = Connection::open_in_memory().map_err(Error::sqlite("opening the rehearsal copy"))?;
    if db.exists() {
        let src = Connection::open_with_flags(
            db,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(Error::sqlite(format!("opening {} read-only", db.display())))?;
        Backup::new(&src, &mut copy)
            .and_then(|b| b.run_to_completion(1024, Duration::ZERO, None))
            .map_err(Error::sqlite(format!("copying {}", db.display())))?;
    }
    Ok(copy)
}
