//! What `status` reports, and accepting a known change to an applied file.
//! Both read the files and the ledger side by side; only `accept_drift`
//! writes, and only after checking the change is real.

use std::path::PathBuf;

use rusqlite::Connection;

use super::{Migrator, check_drift};
use crate::error::{Error, Result};
use crate::ledger;

/// Where a migration stands for a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MigrationState {
    /// In the ledger, file present and unchanged.
    Applied,
    /// File present, not in the ledger.
    Pending,
    /// In the ledger, but no file with that id.
    AppliedButMissingFile,
    /// In the ledger, but the file's content has changed since.
    Drifted,
}

impl MigrationState {
    /// The lower-case label used in tables and JSON.
    pub fn label(self) -> &'static str {
        match self {
            MigrationState::Applied => "applied",
            MigrationState::Pending => "pending",
            MigrationState::AppliedButMissingFile => "applied-but-missing-file",
            MigrationState::Drifted => "drifted",
        }
    }
}

/// One line of [`Migrator::status`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StatusRow {
    /// Migration id.
    pub id: i64,
    /// Name (from the file, or from the ledger when the file is missing).
    pub name: String,
    /// Where it stands.
    pub state: MigrationState,
    /// When it was applied, if it was.
    pub applied_at: Option<String>,
    /// The plugin file, if present.
    pub file: Option<PathBuf>,
    /// The file's content digest, if present.
    pub digest: Option<String>,
    /// The digest recorded in the ledger, if any.
    pub recorded_digest: Option<String>,
    /// Whether the file exports `down` (its manifest names the reversible
    /// world), so `wasmig down` can revert it; `None` without a file.
    pub reversible: Option<bool>,
}

impl Migrator {
    /// Accepts a known change to applied migration `id`'s file: the ledger
    /// takes the file's new digest and an audit row records `reason`.
    /// Refused unless the migration is applied and its file really drifted.
    pub fn accept_drift(&self, conn: &Connection, id: i64, reason: &str) -> Result<(Option<String>, String)> {
        if reason.trim().is_empty() {
            return Err(Error::Usage("accepting a changed migration needs a reason".into()));
        }
        let plugin = self
            .plugins
            .iter()
            .find(|p| p.id() == id)
            .ok_or_else(|| Error::Usage(format!("no migration file with id {id}")))?;
        // Accepting writes the ledger: never on a replica.
        if let Some(cause) = super::replica::cause_of(conn)? {
            return Err(Error::Usage(format!(
                "{} is {cause}: accepting a change writes the ledger, so do it where the database is \
                 written (on the primary)",
                conn.path().unwrap_or("the database")
            )));
        }
        let ledger = ledger::read_all(conn)?;
        let row = ledger.get(&id).ok_or_else(|| Error::Usage(format!("migration {id} is not applied")))?;
        if row.checksum.as_deref() == Some(plugin.digest.as_str()) {
            return Err(Error::Usage(format!("migration {id} has not changed; nothing to accept")));
        }
        ledger::accept_change(conn, id, row.checksum.as_deref(), &plugin.digest, reason)?;
        Ok((row.checksum.clone(), plugin.digest.clone()))
    }

    /// Every migration known to the files or the ledger, in id order. Reads only.
    pub fn status(&self, conn: &Connection) -> Result<Vec<StatusRow>> {
        let ledger = ledger::read_all(conn)?;
        self.check_release_order(&ledger)?;
        let mut rows = Vec::new();
        let mut files = self.plugins.iter().peekable();
        let mut applied = ledger.values().peekable();
        loop {
            let next_file = files.peek().map(|p| p.id());
            let next_row = applied.peek().map(|r| r.id);
            let row = match (next_file, next_row) {
                (None, None) => break,
                (Some(f), r) if r.is_none_or(|r| f < r) => {
                    let p = files.next().expect("peeked");
                    StatusRow {
                        id: p.id(),
                        name: p.name().to_owned(),
                        state: MigrationState::Pending,
                        applied_at: None,
                        file: Some(p.path.clone()),
                        digest: Some(p.digest.clone()),
                        recorded_digest: None,
                        reversible: Some(p.manifest.is_reversible()),
                    }
                }
                (f, Some(r)) if f.is_none_or(|f| r < f) => {
                    let l = applied.next().expect("peeked");
                    StatusRow {
                        id: l.id,
                        name: l.name.clone(),
                        state: MigrationState::AppliedButMissingFile,
                        applied_at: Some(l.applied_at.clone()),
                        file: None,
                        digest: None,
                        recorded_digest: l.checksum.clone(),
                        reversible: None,
                    }
                }
                _ => {
                    let p = files.next().expect("peeked");
                    let l = applied.next().expect("peeked");
                    let drifted = check_drift(p, l).is_err();
                    StatusRow {
                        id: p.id(),
                        name: p.name().to_owned(),
                        state: if drifted { MigrationState::Drifted } else { MigrationState::Applied },
                        applied_at: Some(l.applied_at.clone()),
                        file: Some(p.path.clone()),
                        digest: Some(p.digest.clone()),
                        recorded_digest: l.checksum.clone(),
                        reversible: Some(p.manifest.is_reversible()),
                    }
                }
            };
            rows.push(row);
        }
        Ok(rows)
    }
}
