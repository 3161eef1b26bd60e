//! Replicas: databases wasmig must never write.
//!
//! On a LiteFS replica the mount directory holds a `.primary` file naming
//! the node that holds the write lease (the primary's own mount has none).
//! Replication there is physical: whatever the primary commits, ledger rows
//! included, arrives on the replica one transaction at a time. So a replica
//! has caught up exactly when its ledger records every migration of the
//! directory with the digest of the file here, and that can be learnt by
//! reading. A database that opens read-only for any other reason (file not
//! writable, read-only mount, a connection opened read-only) is treated the
//! same way: nothing can be applied through it, but it may be up to date.
//!
//! What apply does there: read the ledger (no ledger creation, no
//! transaction, no PRAGMA write, a read-only connection when wasmig opens
//! it) and either return (caught up), refuse
//! ([`Error::ReplicaNotCaughtUp`], exit code 6), or, with
//! [`Options::replica_wait`](super::Options::replica_wait), look again with
//! backoff until the migrations arrive or the time is up. A ledger that
//! contradicts the files (a drifted digest, ids without files, ids out of
//! order) is refused at once: replication delivers the primary's commits,
//! it cannot make a drifted digest match, so waiting would only delay the
//! same refusal.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use super::{Migrator, Report};
use crate::error::{Error, ReadOnlyCause, Result};
use crate::ledger;

/// The file LiteFS keeps in its mount directory on a replica, naming the
/// primary. Its absence means this node is the primary (or cannot reach one).
pub const LITEFS_PRIMARY_FILE: &str = ".primary";

/// The most of `.primary` that is read: LiteFS writes one host name there.
const PRIMARY_FILE_LIMIT: u64 = 4096;

/// The first wait between two looks at a replica's ledger; it doubles up to
/// [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// How apply found a replica (or read-only database) caught up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaWait {
    /// Why the database is not written here.
    pub cause: ReadOnlyCause,
    /// From the first look at the ledger to the one that found every
    /// migration recorded (zero when the first did).
    pub waited: Duration,
    /// How many times the ledger was read.
    pub looks: u32,
}

/// The LiteFS replica marker for database file `db`: `Some` when the
/// directory holding it (as given, or after resolving links) has a
/// `.primary` file. Only reads metadata and that file.
pub fn litefs_replica(db: &Path) -> Option<ReadOnlyCause> {
    let given = match db.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let resolved = std::fs::canonicalize(db).ok().and_then(|r| r.parent().map(Path::to_owned));
    std::iter::once(given).chain(resolved).find_map(|dir| {
        let marker = dir.join(LITEFS_PRIMARY_FILE);
        std::fs::symlink_metadata(&marker)
            .ok()
            .map(|_| ReadOnlyCause::LiteFs { primary: read_primary(&marker), marker })
    })
}

/// The primary named in `.primary`: its first line, without control
/// characters (it is printed in messages), or a note saying why not.
fn read_primary(marker: &Path) -> String {
    let mut bytes = Vec::new();
    let read = std::fs::File::open(marker)
        .and_then(|f| f.take(PRIMARY_FILE_LIMIT).read_to_end(&mut bytes).map(|_| ()));
    if let Err(e) = read {
        return format!("unknown: cannot read {}: {e}", marker.display());
    }
    let text = String::from_utf8_lossy(&bytes);
    let first: String = text.lines().next().unwrap_or("").chars().filter(|c| !c.is_control()).collect();
    match first.trim() {
        "" => "unknown (the file is empty)".to_owned(),
        name => name.to_owned(),
    }
}

/// Why `conn`'s database must not be written: it is on a LiteFS replica, or
/// SQLite opened it read-only. `None`: apply may write.
pub(crate) fn cause_of(conn: &Connection) -> Result<Option<ReadOnlyCause>> {
    if let Some(path) = conn.path().filter(|p| !p.is_empty())
        && let Some(cause) = litefs_replica(Path::new(path))
    {
        return Ok(Some(cause));
    }
    let read_only = conn
        .is_readonly(rusqlite::MAIN_DB)
        .map_err(Error::sqlite("asking whether the database is read-only"))?;
    Ok(read_only.then(|| ReadOnlyCause::ReadOnly {
        reason: "SQLite opened it read-only: the file or its mount is not writable, or the connection \
                 was opened read-only"
            .to_owned(),
    }))
}

/// One look at a replica's ledger.
enum Look {
    /// Every migration of the directory is recorded; these ids are.
    CaughtUp(Vec<i64>),
    /// These are not recorded yet.
    Pending(Vec<i64>),
    /// The ledger could not be read just now (a writer holds the lock, or
    /// the file does not exist yet); look again.
    NotYet,
}

impl Migrator {
    /// What apply does on a LiteFS replica (see [`litefs_replica`]) given
    /// the database's path: never writes, never creates the file, reads the
    /// ledger through a fresh read-only connection per look, and returns
    /// once every migration here is recorded. Without
    /// [`Options::replica_wait`](super::Options::replica_wait) it looks
    /// once; with it, it looks again with backoff until the time is up.
    /// `on_pending` is called with the ids still missing after each look
    /// that did not find them all. Refuses with
    /// [`Error::ReplicaNotCaughtUp`] when they do not arrive, and at once
    /// when the ledger contradicts the files (drift, missing files, order).
    pub fn apply_replica(
        &self,
        db: &Path,
        busy_timeout: Duration,
        on_pending: impl FnMut(&[i64]),
    ) -> Result<Report> {
        // One look blocked by a writer must not outlast the whole wait.
        let busy_timeout = self.options.replica_wait.map_or(busy_timeout, |w| w.min(busy_timeout));
        let cause = litefs_replica(db).unwrap_or_else(|| ReadOnlyCause::ReadOnly {
            reason: "apply was asked to treat it as a replica".to_owned(),
        });
        self.wait_for_ledger(
            db,
            cause,
            || {
                if !db.exists() {
                    // The primary has not created it yet (or replication has
                    // not delivered it): never create it here.
                    return Ok(Look::NotYet);
                }
                let conn = Connection::open_with_flags(
                    db,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(Error::sqlite(format!("opening {} read-only", db.display())))?;
                conn.busy_timeout(busy_timeout).map_err(Error::sqlite("setting busy timeout"))?;
                self.look(&conn)
            },
            on_pending,
        )
    }

    /// [`Migrator::apply_with`] on a connection that must not be written
    /// (see [`cause_of`]): the same looks, through `conn`, reading only.
    pub(super) fn apply_read_only(&self, conn: &Connection, cause: ReadOnlyCause) -> Result<Report> {
        let db = PathBuf::from(conn.path().unwrap_or(""));
        self.wait_for_ledger(&db, cause, || self.look(conn), |_| {})
    }

    fn wait_for_ledger(
        &self,
        db: &Path,
        cause: ReadOnlyCause,
        mut look: impl FnMut() -> Result<Look>,
        mut on_pending: impl FnMut(&[i64]),
    ) -> Result<Report> {
        let started = Instant::now();
        let deadline = self.options.replica_wait.map(|w| started + w);
        let mut pending: Vec<i64> = self.plugins.iter().map(|p| p.id()).collect();
        let mut delay = FIRST_BACKOFF;
        let mut looks = 0u32;
        loop {
            looks += 1;
            match look()? {
                Look::CaughtUp(already_applied) => {
                    let waited = started.elapsed();
                    tracing::info!(db = %db.display(), looks, ms = waited.as_millis() as u64, "replica caught up");
                    return Ok(Report {
                        already_applied,
                        elapsed: waited,
                        replica: Some(ReplicaWait { cause, waited, looks }),
                        ..Report::default()
                    });
                }
                Look::Pending(ids) => pending = ids,
                Look::NotYet => {}
            }
            on_pending(&pending);
            let now = Instant::now();
            match deadline {
                Some(deadline) if now < deadline => {
                    tracing::debug!(db = %db.display(), ?pending, "replica not caught up; looking again");
                    std::thread::sleep(delay.min(deadline - now));
                    delay = (delay * 2).min(MAX_BACKOFF);
                }
                _ => {
                    return Err(Error::ReplicaNotCaughtUp {
                        db: db.to_owned(),
                        cause,
                        pending,
                        waited: self.options.replica_wait.map(|_| started.elapsed()),
                    });
                }
            }
        }
    }

    /// Reads the ledger once (a read transaction of its own, nothing else)
    /// and compares it with the files as apply would.
    fn look(&self, conn: &Connection) -> Result<Look> {
        let ledger = match ledger::read_all(conn) {
            Ok(l) => l,
            // A writer on the primary holds the lock for longer than the
            // busy timeout: the next look will do.
            Err(Error::Sqlite { source, .. }) if is_busy(&source) => return Ok(Look::NotYet),
            Err(e) => return Err(e),
        };
        let pending = self.pending_given(&ledger)?;
        if pending.is_empty() {
            let ours = self.plugins.iter().map(|p| p.id()).filter(|id| ledger.contains_key(id)).collect();
            Ok(Look::CaughtUp(ours))
        } else {
            Ok(Look::Pending(pending.iter().map(|p| p.id()).collect()))
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primary_file_names_the_primary_and_marks_the_directory() {
        let t = tempfile::TempDir::new().unwrap();
        let db = t.path().join("app.db");
        assert_eq!(litefs_replica(&db), None, "no .primary: this node may write");
        std::fs::write(t.path().join(LITEFS_PRIMARY_FILE), "node-a.internal\n").unwrap();
        match litefs_replica(&db) {
            Some(ReadOnlyCause::LiteFs { primary, marker }) => {
                assert_eq!(primary, "node-a.internal");
                assert_eq!(marker, t.path().join(LITEFS_PRIMARY_FILE));
            }
            other => panic!("{other:?}"),
        }
        std::fs::write(t.path().join(LITEFS_PRIMARY_FILE), "\u{1b}[31mevil\u{7}\nsecond line").unwrap();
        assert!(
            matches!(litefs_replica(&db), Some(ReadOnlyCause::LiteFs { primary, .. }) if primary == "[31mevil")
        );
        std::fs::write(t.path().join(LITEFS_PRIMARY_FILE), "").unwrap();
        assert!(
            matches!(litefs_replica(&db), Some(ReadOnlyCause::LiteFs { primary, .. }) if primary.starts_with("unknown"))
        );
    }

    #[test]
    fn a_link_into_a_replica_directory_is_a_replica() {
        let t = tempfile::TempDir::new().unwrap();
        let mount = t.path().join("litefs");
        std::fs::create_dir(&mount).unwrap();
        std::fs::write(mount.join(LITEFS_PRIMARY_FILE), "node-b\n").unwrap();
        std::fs::write(mount.join("app.db"), b"").unwrap();
        let link = t.path().join("app.db");
        std::os::unix::fs::symlink(mount.join("app.db"), &link).unwrap();
        assert!(
            matches!(litefs_replica(&link), Some(ReadOnlyCause::LiteFs { primary, .. }) if primary == "node-b")
        );
    }

    #[test]
    fn a_read_only_connection_is_not_written() {
        let t = tempfile::TempDir::new().unwrap();
        let db = t.path().join("app.db");
        Connection::open(&db).unwrap().execute_batch("CREATE TABLE t (x)").unwrap();
        let rw = Connection::open(&db).unwrap();
        assert_eq!(cause_of(&rw).unwrap(), None);
        let ro = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        assert!(matches!(cause_of(&ro).unwrap(), Some(ReadOnlyCause::ReadOnly { .. })));
        let mem = Connection::open_in_memory().unwrap();
        assert_eq!(cause_of(&mem).unwrap(), None);
    }
}
