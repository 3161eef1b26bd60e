//! The `schema_migrations` ledger: which migrations a database has applied.
//!
//! The table keeps the three columns of the runner wasmig grew from
//! (`id`, `name`, `applied_at`) so databases that runner left behind are
//! adopted as they are: the extra columns are added (nullable) and their
//! existing rows keep their ids.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Error, Result};

pub(crate) mod stamp;

/// The ledger table's name.
pub const TABLE: &str = "schema_migrations";

/// Columns wasmig adds to an adopted ledger, with their declarations.
const EXTRA_COLUMNS: &[(&str, &str)] = &[
    ("checksum", "TEXT"),
    ("duration_ms", "INTEGER"),
    ("signers", "TEXT"),
    ("world", "TEXT"),
    ("host_version", "TEXT"),
    // Schema attestation (see `apply::attest`): the digest of the normalized
    // schema after the migration, and one digest line per object so that a
    // later change can be named (whole, or as the change from an earlier
    // row: `apply::object_lines`).
    ("schema_sha256", "TEXT"),
    ("schema_objects", "TEXT"),
    ("release", "INTEGER"),
];

const REQUIRED_COLUMNS: &[&str] = &["id", "name", "applied_at"];

/// One row of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRow {
    /// Migration id.
    pub id: i64,
    /// Migration name as recorded when it was applied.
    pub name: String,
    /// When it was applied (RFC 3339, UTC).
    pub applied_at: String,
    /// Content digest of the component that was applied; `None` for rows
    /// adopted from an earlier runner.
    pub checksum: Option<String>,
    /// How long the migration took, in milliseconds.
    pub duration_ms: Option<i64>,
    /// Key ids of the signers, comma separated.
    pub signers: Option<String>,
    /// The WIT world the component targeted.
    pub world: Option<String>,
    /// The wasmig version that applied it.
    pub host_version: Option<String>,
    /// SHA-256 of the normalized schema right after it ran (`None` for rows
    /// written before wasmig recorded it).
    pub schema_sha256: Option<String>,
    /// The release number of the signed index it arrived with (`NULL` when
    /// no release was required).
    pub release: Option<i64>,
}

/// True when the database has a ledger table.
pub fn exists(conn: &Connection) -> Result<bool> {
    table_exists(conn, TABLE)
}

/// True when the main database has a table named `name`. Reads only.
pub(crate) fn table_exists(conn: &Connection, name: &str) -> Result<bool> {
    // Cached: asked several times in every migration's transaction.
    conn.prepare_cached("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1")
        .and_then(|mut s| s.query_row([name], |_| Ok(())))
        .optional()
        .map(|r| r.is_some())
        .map_err(Error::sqlite("reading sqlite_schema"))
}

/// The main database's schema cookie as this connection (or its open
/// transaction) sees it: SQLite moves it on every schema change. Reads
/// only the header.
pub(crate) fn schema_version(conn: &Connection) -> Result<i64> {
    conn.prepare_cached("PRAGMA main.schema_version")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(Error::sqlite("reading the schema version"))
}

fn columns(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn
        // Cached: asked by each of the reads below, several per start-up.
        .prepare_cached("SELECT name FROM pragma_table_info(?1)")
        .map_err(Error::sqlite("reading ledger columns"))?;
    let names = stmt
        .query_map([TABLE], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(Error::sqlite("reading ledger columns"))?;
    Ok(names)
}

/// Creates the ledger, or adopts one left by an earlier runner by adding the
/// columns it lacks. Runs in its own `BEGIN IMMEDIATE` transaction so
/// concurrent starters never race on the DDL.
pub fn ensure(conn: &Connection) -> Result<()> {
    in_immediate_tx(conn, || ensure_in_tx(conn))
}

/// Runs `body` in its own `BEGIN IMMEDIATE` transaction: COMMIT when it
/// succeeds, ROLLBACK when it fails.
pub(crate) fn in_immediate_tx(conn: &Connection, body: impl FnOnce() -> Result<()>) -> Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE").map_err(Error::sqlite("starting the ledger transaction"))?;
    let result = body();
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    let ended = conn.execute_batch(end).map_err(Error::sqlite("ending the ledger transaction"));
    result.and(ended)
}

/// [`ensure`] inside a write transaction the caller already holds.
pub(crate) fn ensure_in_tx(conn: &Connection) -> Result<()> {
    if !exists(conn)? {
        conn.execute_batch(
            "CREATE TABLE schema_migrations (
                id INTEGER PRIMARY KEY,
                name TEXT NOT NULL,
                applied_at TEXT NOT NULL,
                checksum TEXT,
                duration_ms INTEGER,
                signers TEXT,
                world TEXT,
                host_version TEXT,
                schema_sha256 TEXT,
                schema_objects TEXT,
                release INTEGER
            )",
        )
        .map_err(Error::sqlite("creating schema_migrations"))?;
        return Ok(());
    }
    let have = columns(conn)?;
    check_required(&have)?;
    for (col, decl) in EXTRA_COLUMNS {
        if !have.iter().any(|h| h.eq_ignore_ascii_case(col)) {
            conn.execute_batch(&format!("ALTER TABLE {TABLE} ADD COLUMN {col} {decl}"))
                .map_err(Error::sqlite(format!("adding column {col} to schema_migrations")))?;
        }
    }
    Ok(())
}

fn check_required(have: &[String]) -> Result<()> {
    // Missing required columns first: that is not a ledger at all.
    let missing: Vec<&str> = REQUIRED_COLUMNS
        .iter()
        .copied()
        .filter(|c| !have.iter().any(|h| h.eq_ignore_ascii_case(c)))
        .collect();
    if !missing.is_empty() {
        return Err(Error::Ledger(format!(
            "table exists but lacks column(s) {}; it was not written by wasmig or a compatible runner \
             (dbmate and golang-migrate keep their ledger under this name: take the database over with \
             `wasmig adopt` first)",
            missing.join(", ")
        )));
    }
    let known = |c: &String| {
        REQUIRED_COLUMNS.iter().chain(EXTRA_COLUMNS.iter().map(|(n, _)| n)).any(|k| k.eq_ignore_ascii_case(c))
    };
    let unknown: Vec<&str> = have.iter().filter(|c| !known(c)).map(String::as_str).collect();
    if !unknown.is_empty() {
        return Err(Error::Ledger(format!(
            "unknown ledger format (column(s) {}); it was written by a newer wasmig or another tool, \
             refusing to guess",
            unknown.join(", ")
        )));
    }
    Ok(())
}

/// Reads every ledger row, keyed by id. A database without a ledger reads as
/// empty (nothing applied); nothing is created.
pub fn read_all(conn: &Connection) -> Result<BTreeMap<i64, LedgerRow>> {
    if !exists(conn)? {
        return Ok(BTreeMap::new());
    }
    let have = columns(conn)?;
    check_required(&have)?;
    let has = |c: &str| have.iter().any(|h| h.eq_ignore_ascii_case(c));
    // An adopted ledger that was never written by wasmig lacks the extra
    // columns; read NULL for them rather than altering a database in a read.
    let col = |c: &str| {
        if has(c) { c.to_owned() } else { format!("NULL AS {c}") }
    };
    let sql = format!(
        "SELECT id, name, applied_at, {}, {}, {}, {}, {}, {}, {} FROM {TABLE} ORDER BY id",
        col("checksum"),
        col("duration_ms"),
        col("signers"),
        col("world"),
        col("host_version"),
        col("schema_sha256"),
        col("release")
    );
    let mut stmt = conn.prepare(&sql).map_err(Error::sqlite("reading schema_migrations"))?;
    let rows = stmt
        .query_map([], |r| {
            Ok(LedgerRow {
                id: r.get(0)?,
                name: r.get(1)?,
                applied_at: r.get(2)?,
                checksum: r.get(3)?,
                duration_ms: r.get(4)?,
                signers: r.get(5)?,
                world: r.get(6)?,
                host_version: r.get(7)?,
                schema_sha256: r.get(8)?,
                release: r.get(9)?,
            })
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(Error::sqlite("reading schema_migrations"))?;
    Ok(rows.into_iter().map(|r| (r.id, r)).collect())
}

/// The highest release number the ledger records (`None`: no ledger, or
/// no migration arrived with a release). Reads only.
pub fn highest_release(conn: &Connection) -> Result<Option<i64>> {
    Ok(read_all(conn)?.values().filter_map(|r| r.release).max())
}

/// True when migration `id` is recorded. Called inside the migration's
/// transaction, after `BEGIN IMMEDIATE`, so the answer cannot go stale.
pub fn is_applied(conn: &Connection, id: i64) -> Result<bool> {
    conn.prepare_cached("SELECT 1 FROM schema_migrations WHERE id = ?1")
        .and_then(|mut s| s.query_row([id], |_| Ok(())))
        .optional()
        .map(|r| r.is_some())
        .map_err(Error::sqlite(format!("checking schema_migrations for id {id}")))
}

/// Records an applied migration (inside its transaction, before COMMIT),
/// with `schema_objects`, the per-object digests of the schema attestation.
pub fn record(conn: &Connection, row: &LedgerRow, schema_objects: Option<&str>) -> Result<()> {
    record_knowing(conn, row, schema_objects, None)
}

/// [`record`], told whether the audit table exists when the caller knows
/// (the migrator has the schema as the migration left it): one statement
/// less to compile in every migration's transaction.
pub(crate) fn record_knowing(
    conn: &Connection,
    row: &LedgerRow,
    schema_objects: Option<&str>,
    audit_table: Option<bool>,
) -> Result<()> {
    if audit_table != Some(false) {
        // Stamp mode is an audit row, so without the table it is off.
        stamp::clear(conn)?;
    }
    conn.prepare_cached(
        "INSERT INTO schema_migrations
            (id, name, applied_at, checksum, duration_ms, signers, world, host_version,
             schema_sha256, schema_objects, release)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )
    .and_then(|mut s| {
        s.execute(params![
            row.id,
            row.name,
            row.applied_at,
            row.checksum,
            row.duration_ms,
            row.signers,
            row.world,
            row.host_version,
            row.schema_sha256,
            schema_objects,
            row.release
        ])
    })
    .map_err(Error::sqlite(format!("recording migration {} in schema_migrations", row.id)))?;
    Ok(())
}

/// The schema attestation of the last applied migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastAttestation {
    /// The migration id.
    pub id: i64,
    /// Its recorded schema digest.
    pub sha256: Option<String>,
}

/// The last applied migration's row (latest `applied_at`, then highest id),
/// with its schema digest; `None` without a ledger or rows. Reads only.
///
/// The per-object lines are left out ([`attestation_objects`] reads them):
/// they are only needed when the schema changed, and naming them in the
/// sort would make SQLite read every row's list (tens of KB each on a long
/// history, on overflow pages) to return one.
pub fn last_attestation(conn: &Connection) -> Result<Option<LastAttestation>> {
    if !exists(conn)? {
        return Ok(None);
    }
    let sql = if columns(conn)?.iter().any(|c| c.eq_ignore_ascii_case("schema_sha256")) {
        "SELECT id, schema_sha256 FROM schema_migrations ORDER BY applied_at DESC, id DESC LIMIT 1"
    } else {
        "SELECT id, NULL FROM schema_migrations ORDER BY applied_at DESC, id DESC LIMIT 1"
    };
    conn.query_row(sql, [], |r| Ok(LastAttestation { id: r.get(0)?, sha256: r.get(1)? }))
        .optional()
        .map_err(Error::sqlite("reading the last schema attestation"))
}

/// The last applied of `rows` (as read by [`read_all`]), in the order
/// [`last_attestation`] asks SQLite for: latest `applied_at`, then highest
/// id.
pub(crate) fn last_applied(rows: &BTreeMap<i64, LedgerRow>) -> Option<&LedgerRow> {
    rows.values().max_by(|a, b| (&a.applied_at, a.id).cmp(&(&b.applied_at, b.id)))
}

/// The per-object digest lines recorded with migration `id` (`None` when
/// the row has none, or the ledger no such column). Reads only.
pub fn attestation_objects(conn: &Connection, id: i64) -> Result<Option<String>> {
    if !columns(conn)?.iter().any(|c| c.eq_ignore_ascii_case("schema_objects")) {
        return Ok(None);
    }
    conn.prepare_cached("SELECT schema_objects FROM schema_migrations WHERE id = ?1")
        .and_then(|mut s| s.query_row([id], |r| r.get(0)))
        .optional()
        .map(Option::flatten)
        .map_err(Error::sqlite(format!("reading the schema attestation of migration {id}")))
}

/// The audit table recording every accepted change to an applied migration.
pub const AUDIT_TABLE: &str = "schema_migrations_audit";

/// Records that the operator accepted a changed file for applied migration
/// `id`: the ledger's digest moves from `old` to `new`, and an audit row
/// keeps who-knows-why forever. Its own `BEGIN IMMEDIATE` transaction; fails
/// if the ledger no longer holds `old` (someone else changed it meanwhile).
pub fn accept_change(conn: &Connection, id: i64, old: Option<&str>, new: &str, reason: &str) -> Result<()> {
    in_immediate_tx(conn, || {
        ensure_audit(conn)?;
        stamp::clear(conn)?;
        let changed = conn
            .execute(
                "UPDATE schema_migrations SET checksum = ?2 WHERE id = ?1 AND checksum IS ?3",
                params![id, new, old],
            )
            .map_err(Error::sqlite(format!("updating the digest of migration {id}")))?;
        if changed != 1 {
            return Err(Error::Ledger(format!(
                "migration {id} does not have digest {} in the ledger (changed meanwhile?)",
                old.unwrap_or("NULL")
            )));
        }
        audit(conn, id, "accept-drift", old, Some(new), reason)
    })
}

/// Removes reverted migration `id` from the ledger and writes a `revert`
/// audit row naming the digest it had, inside the caller's transaction (the
/// one its `down` ran in). Fails when the ledger no longer records `id` with
/// digest `checksum` (someone else changed it meanwhile).
pub(crate) fn record_revert(conn: &Connection, id: i64, checksum: Option<&str>, reason: &str) -> Result<()> {
    stamp::clear(conn)?;
    let removed = conn
        .execute("DELETE FROM schema_migrations WHERE id = ?1 AND checksum IS ?2", params![id, checksum])
        .map_err(Error::sqlite(format!("removing migration {id} from schema_migrations")))?;
    if removed != 1 {
        return Err(Error::Ledger(format!(
            "migration {id} does not have digest {} in the ledger (changed meanwhile?)",
            checksum.unwrap_or("NULL")
        )));
    }
    audit(conn, id, "revert", checksum, None, reason)
}

fn ensure_audit(conn: &Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations_audit (
            at TEXT NOT NULL,
            id INTEGER NOT NULL,
            action TEXT NOT NULL,
            old_checksum TEXT,
            new_checksum TEXT,
            reason TEXT NOT NULL,
            host_version TEXT NOT NULL
        )",
    )
    .map_err(Error::sqlite("creating schema_migrations_audit"))
}

/// Writes an audit row (creating the table when missing), inside the
/// caller's transaction.
pub(crate) fn audit(
    conn: &Connection,
    id: i64,
    action: &str,
    old: Option<&str>,
    new: Option<&str>,
    reason: &str,
) -> Result<()> {
    ensure_audit(conn)?;
    conn.execute(
        "INSERT INTO schema_migrations_audit (at, id, action, old_checksum, new_checksum, reason, host_version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![now_rfc3339(), id, action, old, new, reason, crate::VERSION],
    )
    .map_err(Error::sqlite("writing schema_migrations_audit"))?;
    Ok(())
}

/// The actions recorded in the audit table (empty when it does not exist).
pub(crate) fn audit_actions(conn: &Connection) -> Result<Vec<String>> {
    if !table_exists(conn, AUDIT_TABLE)? {
        return Ok(Vec::new());
    }
    let mut stmt = conn
        .prepare("SELECT action FROM schema_migrations_audit ORDER BY rowid")
        .map_err(Error::sqlite("reading schema_migrations_audit"))?;
    stmt.query_map([], |r| r.get(0))
        .and_then(|r| r.collect())
        .map_err(Error::sqlite("reading schema_migrations_audit"))
}

/// The current time as RFC 3339 UTC with seconds, as the ledger stores it.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    format_rfc3339(secs)
}

/// Formats Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian, UTC).
pub fn format_rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_points() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_rfc3339(1_795_592_043), "2026-11-25T07:34:03Z");
    }

    #[test]
    fn creates_then_records() {
        let conn = Connection::open_in_memory().unwrap();
        assert!(read_all(&conn).unwrap().is_empty());
        ensure(&conn).unwrap();
        ensure(&conn).unwrap(); // idempotent
        let row = LedgerRow {
            id: 3,
            name: "x".into(),
            applied_at: now_rfc3339(),
            checksum: Some("ab".into()),
            duration_ms: Some(4),
            signers: None,
            world: Some("w".into()),
            host_version: Some("0.1.0".into()),
            schema_sha256: Some("cd".into()),
            release: Some(2),
        };
        record(&conn, &row, Some("table\tt\t0123")).unwrap();
        let last = last_attestation(&conn).unwrap().unwrap();
        assert_eq!((last.id, last.sha256.as_deref()), (3, Some("cd")));
        assert_eq!(attestation_objects(&conn, 3).unwrap().as_deref(), Some("table\tt\t0123"));
        assert_eq!(attestation_objects(&conn, 4).unwrap(), None);
        // The last applied is the latest applied_at, then the highest id, in
        // SQL and from rows in hand alike (an id applied later out of order).
        let later = LedgerRow { id: 1, applied_at: "2999-01-01T00:00:00Z".into(), ..row.clone() };
        record(&conn, &later, None).unwrap();
        let rows = read_all(&conn).unwrap();
        assert_eq!(last_attestation(&conn).unwrap().unwrap().id, 1);
        assert_eq!(last_applied(&rows).map(|r| r.id), Some(1));
        conn.execute("DELETE FROM schema_migrations WHERE id = 1", []).unwrap();
        assert!(is_applied(&conn, 3).unwrap());
        assert!(!is_applied(&conn, 2).unwrap());
        assert_eq!(read_all(&conn).unwrap()[&3], row);
        assert_eq!(highest_release(&conn).unwrap(), Some(2));
        // Recording the same id twice is a constraint error, never a silent overwrite.
        assert!(record(&conn, &row, None).is_err());
    }

    #[test]
    fn adopts_three_column_ledger_keeping_rows() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL);
             INSERT INTO schema_migrations VALUES (1, 'baseline', '2026-11-20T09:14:03Z');",
        )
        .unwrap();
        // Reading does not alter it.
        let rows = read_all(&conn).unwrap();
        assert_eq!(rows[&1].name, "baseline");
        assert_eq!(rows[&1].checksum, None);
        assert_eq!(columns(&conn).unwrap().len(), 3);
        ensure(&conn).unwrap();
        assert_eq!(columns(&conn).unwrap().len(), 11);
        let rows = read_all(&conn).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[&1].applied_at, "2026-11-20T09:14:03Z");
    }

    #[test]
    fn refuses_foreign_ledger() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE schema_migrations (version TEXT)").unwrap();
        let err = ensure(&conn).unwrap_err();
        assert!(err.to_string().contains("lacks column(s) id, name, applied_at"), "{err}");
        assert!(read_all(&conn).is_err());
    }
}
