//! The header stamp: a "nothing changed" signal an application start-up can
//! read from the database header, without SQLite loading the schema.
//!
//! Why it exists: answering "is anything pending?" from the ledger means
//! preparing a statement on `schema_migrations`, and the first statement
//! that names any table makes SQLite parse the whole schema (milliseconds
//! for a few hundred objects). Tools that track their state in
//! `PRAGMA user_version` answer from the file header in microseconds. The
//! stamp gives wasmig the same answer without giving up its checks:
//!
//! - `user_version` holds a 32-bit digest of the migration set (each id
//!   and content digest, in id order) and of the schema cookie
//!   (`PRAGMA schema_version`, which SQLite increments on every schema
//!   change). Both pragmas read only the header.
//! - It is written only by a migrator that has just found, inside a write
//!   transaction, that the ledger records exactly its set with no drift and
//!   that the schema is the one the ledger attested. A matching stamp
//!   therefore means: the same set, and no schema change since then.
//! - Every ledger write (apply, adopt, accept, revert) clears it to 0 in
//!   the same transaction once the database is in stamp mode, so a change
//!   to the ledger that leaves the schema alone (a data-only migration, a
//!   revert) can never leave a stale stamp that still matches.
//! - `user_version` belongs to the application unless it says otherwise:
//!   stamp mode starts only when a migrator is asked to
//!   ([`crate::Options::stamp_user_version`]) and is recorded by an audit
//!   row, which every later wasmig (library or CLI) honours.
//!
//! What it cannot see: an edit of `sqlite_schema` under
//! `PRAGMA writable_schema` that does not bump the cookie, or a ledger row
//! changed by hand. Both need write access to the file and deliberate
//! effort; the full checks run again whenever the stamp does not match.

use rusqlite::{Connection, OptionalExtension};
use sha2::{Digest, Sha256};

use super::{AUDIT_TABLE, audit, schema_version, table_exists};
use crate::error::{Error, Result};

/// The audit action that puts a database in stamp mode.
pub const STAMP_ACTION: &str = "stamp-user-version";

/// Version of what the stamp covers: a wasmig that checks more on a no-op
/// start-up changes it, so stamps written by older versions never match.
const STAMP_FORMAT: &[u8] = b"wasmig header stamp 1\n";

/// The two header fields, read in one read transaction so they agree:
/// `(user_version, schema_version)`. `None` when the connection is inside a
/// transaction already (the caller's business; take the full path).
pub(crate) fn read_header(conn: &Connection) -> Result<Option<(i32, i64)>> {
    if !conn.is_autocommit() {
        return Ok(None);
    }
    let e = Error::sqlite("reading the database header");
    conn.execute_batch("BEGIN DEFERRED").map_err(e)?;
    let read = (|| {
        let user: i32 = conn
            .query_row("PRAGMA main.user_version", [], |r| r.get(0))
            .map_err(Error::sqlite("reading the database header"))?;
        Ok::<_, Error>((user, schema_version(conn)?))
    })();
    let ended = conn.execute_batch("COMMIT");
    let header = read?;
    ended.map_err(Error::sqlite("ending the header read"))?;
    Ok(Some(header))
}

/// The stamp for a set of `(id, digest)` pairs in id order under schema
/// cookie `schema_version`, applied under required release `release` (when
/// a release is required). Never 0, which means "no stamp".
pub(crate) fn stamp_of<'a>(
    set: impl IntoIterator<Item = (i64, &'a str)>,
    release: Option<i64>,
    schema_version: i64,
) -> i32 {
    let mut h = Sha256::new();
    h.update(STAMP_FORMAT);
    match release {
        Some(n) => h.update([&[1u8][..], &n.to_le_bytes()].concat()),
        None => h.update([0u8]),
    }
    for (id, digest) in set {
        h.update(id.to_le_bytes());
        h.update((digest.len() as u64).to_le_bytes());
        h.update(digest.as_bytes());
    }
    h.update(b"cookie");
    h.update(schema_version.to_le_bytes());
    let d = h.finalize();
    match i32::from_le_bytes([d[0], d[1], d[2], d[3]]) {
        0 => 1,
        v => v,
    }
}

/// True when the database is in stamp mode (its audit table records
/// [`STAMP_ACTION`]). Reads only.
pub(crate) fn is_stamp_mode(conn: &Connection) -> Result<bool> {
    if !table_exists(conn, AUDIT_TABLE)? {
        return Ok(false);
    }
    conn.query_row("SELECT 1 FROM schema_migrations_audit WHERE action = ?1 LIMIT 1", [STAMP_ACTION], |_| {
        Ok(())
    })
    .optional()
    .map(|r| r.is_some())
    .map_err(Error::sqlite("reading schema_migrations_audit"))
}

/// Clears the stamp, inside the caller's write transaction, when the
/// database is in stamp mode: the ledger is about to say something the
/// stamp did not cover.
pub(crate) fn clear(conn: &Connection) -> Result<()> {
    if is_stamp_mode(conn)? {
        conn.pragma_update(None, "user_version", 0).map_err(Error::sqlite("clearing the header stamp"))?;
    }
    Ok(())
}

/// Records stamp mode (an audit row), inside the caller's write
/// transaction, unless it is recorded already. May create the audit table.
pub(crate) fn enter_mode(conn: &Connection) -> Result<()> {
    if is_stamp_mode(conn)? {
        return Ok(());
    }
    audit(
        conn,
        0,
        STAMP_ACTION,
        None,
        None,
        "user_version holds wasmig's header stamp from now on (see the README, \"No-op start-up\")",
    )
}

/// Writes `stamp` into `user_version`, inside the caller's write transaction.
pub(crate) fn set(conn: &Connection, stamp: i32) -> Result<()> {
    conn.pragma_update(None, "user_version", stamp).map_err(Error::sqlite("writing the header stamp"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stamp_depends_on_every_id_digest_and_the_cookie() {
        let set = [(1, "aa"), (2, "bb")];
        let base = stamp_of(set, None, 7);
        assert_ne!(base, 0);
        assert_eq!(base, stamp_of(set, None, 7), "deterministic");
        assert_ne!(base, stamp_of(set, None, 8), "cookie");
        assert_ne!(base, stamp_of(set, Some(3), 7), "release");
        assert_ne!(stamp_of(set, Some(3), 7), stamp_of(set, Some(4), 7), "release number");
        assert_ne!(base, stamp_of([(1, "aa"), (3, "bb")], None, 7), "id");
        assert_ne!(base, stamp_of([(1, "aa"), (2, "bc")], None, 7), "digest");
        assert_ne!(base, stamp_of([(1, "aa")], None, 7), "a missing migration");
        // Lengths are hashed, so moving a byte between digests changes it.
        assert_ne!(stamp_of([(1, "ab"), (2, "c")], None, 7), stamp_of([(1, "a"), (2, "bc")], None, 7));
    }

    #[test]
    fn header_reads_need_no_schema_and_see_schema_changes() {
        let conn = Connection::open_in_memory().unwrap();
        let (user, before) = read_header(&conn).unwrap().unwrap();
        assert_eq!(user, 0);
        conn.execute_batch("CREATE TABLE t (a)").unwrap();
        let (_, after) = read_header(&conn).unwrap().unwrap();
        assert!(after > before, "the cookie moves on a schema change: {before} -> {after}");
        conn.execute_batch("INSERT INTO t VALUES (1)").unwrap();
        assert_eq!(read_header(&conn).unwrap().unwrap().1, after, "and not on a data change");
        conn.execute_batch("BEGIN").unwrap();
        assert_eq!(read_header(&conn).unwrap(), None, "inside a caller's transaction: not read");
        conn.execute_batch("ROLLBACK").unwrap();
    }

    #[test]
    fn clear_touches_user_version_only_in_stamp_mode() {
        let conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", 42).unwrap();
        clear(&conn).unwrap();
        assert_eq!(read_header(&conn).unwrap().unwrap().0, 42, "the application's value is left alone");
        enter_mode(&conn).unwrap();
        set(&conn, 99).unwrap();
        assert!(is_stamp_mode(&conn).unwrap());
        assert_eq!(read_header(&conn).unwrap().unwrap().0, 99);
        clear(&conn).unwrap();
        assert_eq!(read_header(&conn).unwrap().unwrap().0, 0);
    }
}
