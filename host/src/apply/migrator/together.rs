//! Applying every pending migration in one transaction
//! ([`Options::single_transaction`](super::Options::single_transaction)).
//!
//! Everything happens inside one `BEGIN IMMEDIATE … COMMIT`, the ledger's
//! creation included (the first step does it), so any refusal or failure
//! rolls the database back to exactly what it was. That allows checking and
//! running to overlap: checker threads (one per core) verify each file's
//! signature (and compile it, unless it runs as direct SQL) in id order
//! while this one runs the files already checked. A file still never runs before its own check has passed, and a
//! refused file anywhere in the run is reported in preference to a migration
//! that failed, as it would be if every check came first.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use rusqlite::Connection;

use super::{Migrator, Report, Step, rollback};
use crate::error::{Error, Result};
use crate::ledger;
use crate::plugin::Plugin;

/// SQLite cannot switch foreign key enforcement inside a transaction, so a
/// migration that needs it off cannot share one.
pub(super) fn refuse_foreign_keys_off(pending: &[&Plugin]) -> Result<()> {
    match pending.iter().find(|p| p.manifest.needs_foreign_keys_off()) {
        Some(p) => Err(Error::NotInOneTransaction {
            id: p.id(),
            name: p.name().to_owned(),
            file: p.path.clone(),
            reason: "it needs foreign key enforcement off, which SQLite cannot switch inside a transaction"
                .into(),
        }),
        None => Ok(()),
    }
}

impl Migrator {
    /// Every pending migration in one transaction: committed together after
    /// the last, or rolled back together at the first refusal or failure.
    /// `elapsed` is left for the caller to fill in.
    pub(super) fn apply_in_one_transaction(&self, conn: &mut Connection) -> Result<Report> {
        // Reads only, so a refusal here leaves the file untouched.
        let ledger_rows = ledger::read_all(conn)?;
        let pending = self.pending_given(&ledger_rows)?;
        refuse_foreign_keys_off(&pending)?;
        let already_applied =
            self.plugins.iter().map(Plugin::id).filter(|id| ledger_rows.contains_key(id)).collect();
        let schema_check = self.check_schema_found(conn, &ledger_rows)?;
        let mut report = Report { already_applied, schema_check, ..Report::default() };
        if pending.is_empty() {
            return Ok(report);
        }
        let sandbox = self.sandbox()?;
        let checks = Checks::new(pending.len());
        // A fleet checks its files for the first database only; after that
        // every step is at hand, and threads would only queue for cores.
        let at_hand = pending.iter().all(|p| self.verdict_known(p) && self.compiled_known(p.id()));
        let mut arrived = BTreeMap::new();
        if at_hand {
            arrived.extend(pending.iter().enumerate().map(|(i, p)| (i, self.check_one(p))));
        }
        let checkers = if at_hand { 0 } else { super::cores().min(pending.len()) };
        std::thread::scope(|scope| {
            // One checker per core; this thread mostly waits on them, and
            // needs a core only while a migration runs.
            let (done_tx, done) = mpsc::channel();
            for _ in 0..checkers {
                let (done_tx, checks, pending) = (done_tx.clone(), &checks, &pending);
                scope.spawn(move || {
                    while let Some(i) = checks.next() {
                        if done_tx.send((i, self.check_one(pending[i]))).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(done_tx);
            let mut take = |i: usize| -> Result<Step<'_>> {
                while !arrived.contains_key(&i) {
                    let (j, r) = done
                        .recv()
                        .map_err(|_| Error::Internal("the file checkers stopped unexpectedly".into()))?;
                    arrived.insert(j, r);
                }
                arrived.remove(&i).expect("just arrived")
            };
            let outcome = conn
                .execute_batch("BEGIN IMMEDIATE")
                .map_err(Error::sqlite(format!(
                    "{} migrations in one transaction: BEGIN IMMEDIATE",
                    pending.len()
                )))
                .and_then(|()| {
                    // Within the one transaction each step's schema is the
                    // next one's "before"; nothing is kept past it.
                    let mut memo = None;
                    for i in 0..pending.len() {
                        let mut step = take(i)?;
                        step.sets_up_ledger = i == 0;
                        match self.run_in_tx(sandbox, conn, &step, Instant::now(), memo.take()) {
                            Ok(Some((applied, after))) => {
                                report.applied.push(applied);
                                memo = Some(after);
                            }
                            Ok(None) => report.applied_concurrently.push(step.plugin.id()),
                            Err(failed) => {
                                // Checking every file first would have found a
                                // refused one before this ran: report that.
                                let refused = (i + 1..pending.len()).find_map(|j| take(j).err());
                                return Err(refused.unwrap_or(failed));
                            }
                        }
                    }
                    Ok(())
                });
            checks.stop();
            match outcome {
                Ok(()) => {
                    tracing::info!(migrations = report.applied.len(), "committing");
                    if let Err(e) = conn.execute_batch("COMMIT") {
                        rollback(conn);
                        return Err(Error::Sqlite {
                            context: format!(
                                "{} migrations in one transaction: COMMIT",
                                report.applied.len()
                            ),
                            source: e,
                        });
                    }
                    Ok(report)
                }
                Err(e) => {
                    rollback(conn);
                    tracing::warn!(error = %e, "rolled back every migration of this run");
                    Err(e)
                }
            }
        })
    }

    /// Verifies `plugin` and compiles it (or recognises it as direct SQL).
    fn check_one<'m>(&'m self, plugin: &'m Plugin) -> Result<Step<'m>> {
        let verdict = self.verdict_of(plugin)?;
        self.check_destructive_signers(plugin, &verdict)?;
        let compiled = self.compile(&[plugin], std::slice::from_ref(&verdict))?.remove(0);
        Ok(Step { plugin, verdict, compiled, sets_up_ledger: false })
    }
}

/// Hands out file indices to the checkers in id order, until told to stop.
struct Checks {
    next: AtomicUsize,
    len: usize,
}

impl Checks {
    fn new(len: usize) -> Self {
        Checks { next: AtomicUsize::new(0), len }
    }

    fn next(&self) -> Option<usize> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        (i < self.len).then_some(i)
    }

    /// No more checks start (those running finish).
    fn stop(&self) {
        self.next.store(self.len, Ordering::Relaxed);
    }
}
