//! Reverting applied migrations ([`Migrator::revert_to`]): each one's
//! `down`, newest first, one transaction each, under the same gate, limits
//! and trust policy as `up`.
//!
//! Order of work, as for applying, so that bad input changes nothing: every
//! migration to revert must have its file here, a digest in the ledger that
//! the file still has, a `down` export (world 0.3.0), a verdict of the trust
//! policy and a compiled component; all of that is checked, reading only,
//! before the first `down` runs. Then each runs as `BEGIN IMMEDIATE` →
//! re-check the ledger row → `down` in the sandbox → ledger guard → delete
//! the ledger row and write a `revert` audit row → `COMMIT`, or `ROLLBACK`
//! and stop.

use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::{Migrator, check_drift, ledger_guard, rollback};
use crate::error::{Error, Result};
use crate::ledger::{self, LedgerRow};
use crate::plugin::{Plugin, Verdict};
use crate::sandbox::{Compiled, Entry, Outcome, RunStats, Sandbox};

/// One migration reverted by [`Migrator::revert_to`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reverted {
    /// Migration id.
    pub id: i64,
    /// Migration name.
    pub name: String,
    /// Time from `BEGIN IMMEDIATE` to `COMMIT`.
    pub duration: Duration,
    /// What its `down` did.
    pub stats: RunStats,
}

/// What [`Migrator::revert_to`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevertReport {
    /// Migrations reverted by this call, newest first.
    pub reverted: Vec<Reverted>,
    /// Ids another process reverted while this call was waiting to.
    pub reverted_concurrently: Vec<i64>,
    /// Wall-clock time of the whole call.
    pub elapsed: Duration,
}

/// One migration to revert, checked and compiled.
struct RevertStep<'m> {
    plugin: &'m Plugin,
    row: LedgerRow,
    compiled: Compiled,
}

impl Migrator {
    /// The applied migrations with an id above `to`, newest first, that
    /// [`Migrator::revert_to`] would revert, after every check it makes
    /// before running anything (files, digests, `down` exports, trust,
    /// compilation). Reads only; changes nothing.
    pub fn revert_plan(&self, conn: &Connection, to: i64) -> Result<Vec<&Plugin>> {
        Ok(self.plan_revert(conn, to)?.into_iter().map(|s| s.plugin).collect())
    }

    /// Reverts every applied migration with an id above `to`. See
    /// [`Migrator::revert_to_with`].
    pub fn revert_to(&self, conn: &mut Connection, to: i64) -> Result<RevertReport> {
        self.revert_to_with(conn, to, |_| {})
    }

    /// Reverts every applied migration with an id above `to`, newest first,
    /// each by calling its `down` in a transaction of its own that also
    /// removes its ledger row and writes a `revert` row to
    /// `schema_migrations_audit`; `on_reverted` is called after each commit.
    ///
    /// Refused before anything runs (the database untouched) when any of
    /// them has no file here, a file whose digest is not the one the ledger
    /// recorded, no `down` (a forward-only world), or a file the trust policy
    /// refuses. A `down` that fails is rolled back completely and stops the
    /// revert: the migrations reverted before it stay reverted, it and the
    /// older ones stay applied.
    pub fn revert_to_with(
        &self,
        conn: &mut Connection,
        to: i64,
        mut on_reverted: impl FnMut(&Reverted),
    ) -> Result<RevertReport> {
        let started = Instant::now();
        // What this migrator remembers of the database's schema names the
        // ledger row that recorded it, which a revert removes (a `down`
        // that changes no schema leaves the cookie where it was).
        self.forget_schema(conn);
        let steps = self.plan_revert(conn, to)?;
        let mut report = RevertReport::default();
        if steps.is_empty() {
            return Ok(report);
        }
        let sandbox = self.sandbox()?;
        for (i, step) in steps.iter().enumerate() {
            match self.revert_one(sandbox, conn, step, i == 0, to)? {
                Some(done) => {
                    on_reverted(&done);
                    report.reverted.push(done);
                }
                None => report.reverted_concurrently.push(step.plugin.id()),
            }
        }
        report.elapsed = started.elapsed();
        Ok(report)
    }

    fn plan_revert(&self, conn: &Connection, to: i64) -> Result<Vec<RevertStep<'_>>> {
        if to < 0 {
            return Err(Error::Usage(format!("--to must be 0 or a migration id, got {to}")));
        }
        if !ledger::exists(conn)? {
            return Ok(Vec::new());
        }
        let ledger_rows = ledger::read_all(conn)?;
        let rows: Vec<&LedgerRow> = ledger_rows.range(to + 1..).rev().map(|(_, r)| r).collect();
        // What can be told from the ledger and the manifests, for all of
        // them at once, so the operator sees every obstacle in one go.
        let mut problems = Vec::new();
        let mut found = Vec::new();
        for row in &rows {
            let Some(plugin) = self.plugins.iter().find(|p| p.id() == row.id) else {
                problems.push(format!("migration {} ({}): no file with that id is here", row.id, row.name));
                continue;
            };
            if row.checksum.is_none() {
                problems.push(format!(
                    "migration {} ({}): the ledger records no digest (adopted from an earlier runner), so \
                     {} cannot be shown to be what was applied",
                    row.id,
                    row.name,
                    plugin.path.display()
                ));
            } else if !plugin.manifest.is_reversible() {
                problems.push(format!(
                    "migration {} ({}): {} has no down (world {} is forward-only)",
                    row.id,
                    row.name,
                    plugin.path.display(),
                    plugin.manifest.world
                ));
            }
            found.push((plugin, *row));
        }
        if !problems.is_empty() {
            return Err(Error::Irreversible { to, problems });
        }
        for (plugin, row) in &found {
            check_drift(plugin, row)?;
        }
        let plugins: Vec<&Plugin> = found.iter().map(|(p, _)| *p).collect();
        if plugins.is_empty() {
            return Ok(Vec::new());
        }
        let verdicts: Vec<Verdict> = self.verify(&plugins)?;
        let compiled = self.compile(&plugins, &verdicts)?;
        let mut steps = Vec::with_capacity(plugins.len());
        for ((plugin, row), compiled) in found.into_iter().zip(compiled) {
            if !compiled.has_down() {
                problems.push(format!(
                    "migration {} ({}): {} exports no down",
                    plugin.id(),
                    plugin.name(),
                    plugin.path.display()
                ));
            }
            steps.push(RevertStep { plugin, row: row.clone(), compiled });
        }
        if !problems.is_empty() {
            return Err(Error::Irreversible { to, problems });
        }
        Ok(steps)
    }

    /// One `down` in one transaction, with foreign keys switched off around
    /// it when the migration declared that capability (as for `up`).
    fn revert_one(
        &self,
        sandbox: &Sandbox,
        conn: &mut Connection,
        step: &RevertStep<'_>,
        first: bool,
        to: i64,
    ) -> Result<Option<Reverted>> {
        let (id, name) = (step.plugin.id(), step.plugin.name().to_owned());
        let what = format!("reverting migration {id} ({name})");
        super::with_foreign_keys_off(conn, step.plugin, &what, |conn| {
            let started = Instant::now();
            let result = conn
                .execute_batch("BEGIN IMMEDIATE")
                .map_err(Error::sqlite(format!("reverting migration {id} ({name}): BEGIN IMMEDIATE")))
                .and_then(|()| self.revert_in_tx(sandbox, conn, step, first, to, started));
            match result {
                Ok(Some(done)) => match conn.execute_batch("COMMIT") {
                    Ok(()) => Ok(Some(done)),
                    Err(e) => {
                        rollback(conn);
                        Err(Error::Sqlite {
                            context: format!("reverting migration {id} ({name}): COMMIT"),
                            source: e,
                        })
                    }
                },
                other => {
                    rollback(conn);
                    other
                }
            }
        })
    }

    fn revert_in_tx(
        &self,
        sandbox: &Sandbox,
        conn: &mut Connection,
        step: &RevertStep<'_>,
        first: bool,
        to: i64,
        started: Instant,
    ) -> Result<Option<Reverted>> {
        let plugin = step.plugin;
        let (id, name, file) = (plugin.id(), plugin.name().to_owned(), plugin.path.clone());
        // Another process may have reverted (or re-applied something as) it.
        match ledger::read_all(conn)?.get(&id) {
            Some(row) if row.checksum == step.row.checksum => {}
            Some(_) => {
                return Err(Error::Ledger(format!(
                    "migration {id} ({name}) changed in the ledger while waiting to revert it"
                )));
            }
            None => return Ok(None),
        }
        if first {
            let found = ledger_guard::violations(conn)?;
            if !found.is_empty() {
                return Err(Error::LedgerTampering { id, name, file, objects: found, before_run: true });
            }
        }
        let watch = ledger_guard::Watch::start(conn)?;
        tracing::info!(id, name = %name, file = %file.display(), "reverting migration");
        let stats = match super::run_guest(sandbox, conn, &step.compiled, Entry::Down)? {
            Outcome::Ok(stats) => stats,
            Outcome::GuestErr { message, last_failure } => {
                return Err(Error::GuestFailed {
                    id,
                    name,
                    file,
                    message: format!("down: {message}"),
                    last_statement: last_failure,
                });
            }
            Outcome::Trap { reason, last_failure } => {
                return Err(Error::Trap {
                    id,
                    name,
                    file,
                    reason: format!("down: {reason}"),
                    last_statement: last_failure,
                });
            }
            Outcome::Host(e) => return Err(e),
        };
        super::check_after_guest(conn, plugin, "down: the transaction ended while the guest ran")?;
        let found = watch.finish(conn)?.found;
        if !found.is_empty() {
            return Err(Error::LedgerTampering { id, name, file, objects: found, before_run: false });
        }
        ledger::record_revert(conn, id, step.row.checksum.as_deref(), &format!("wasmig down --to {to}"))?;
        Ok(Some(Reverted { id, name, duration: started.elapsed(), stats }))
    }
}
