//! Reading another tool's ledger, as that tool defines and reads it (the
//! file each table comes from is named at each reader). Only reads.

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension};

use crate::error::{Error, Result};
use crate::sql::import::Tool;

/// What a tool's ledger says has been applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Applied {
    /// One row per applied version.
    Rows(Vec<Row>),
    /// golang-migrate keeps only the version reached: everything up to it
    /// is applied (`None`: nothing yet).
    UpTo(Option<u64>),
}

/// One applied version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    /// The version as the tool wrote it.
    pub version: String,
    /// When the tool applied it, as RFC 3339 when the tool wrote SQLite's
    /// `CURRENT_TIMESTAMP` form, else as the tool wrote it.
    pub applied_at: Option<String>,
    /// The checksum the tool keeps, spelled as provenance spells digests.
    pub checksum: Option<String>,
}

/// The table `tool` keeps its ledger in.
pub(crate) fn table(tool: Tool) -> &'static str {
    match tool {
        Tool::Diesel => "__diesel_schema_migrations",
        Tool::Sqlx => "_sqlx_migrations",
        Tool::Refinery => "refinery_schema_history",
        Tool::Goose => "goose_db_version",
        Tool::Dbmate | Tool::GolangMigrate => "schema_migrations",
    }
}

fn refused(msg: String) -> Error {
    Error::Adoption(msg)
}

fn sql_error(tool: Tool) -> impl Fn(rusqlite::Error) -> Error {
    move |e| refused(format!("{tool}'s ledger {} cannot be read as {tool} writes it: {e}", table(tool)))
}

/// Reads `tool`'s ledger; refuses a missing table, a failed sqlx row and a
/// dirty golang-migrate database.
pub(crate) fn read(conn: &Connection, tool: Tool) -> Result<Applied> {
    let exists = conn
        .query_row(
            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            [table(tool)],
            |_| Ok(()),
        )
        .optional()
        .map_err(Error::sqlite("reading sqlite_schema"))?
        .is_some();
    if !exists {
        return Err(refused(format!(
            "the database has no {} table: {tool} has not migrated it (or it was already adopted)",
            table(tool)
        )));
    }
    let e = sql_error(tool);
    match tool {
        // diesel/src/migration/setup_migration_table.sql:
        // __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL,
        //   run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)
        Tool::Diesel => rows(conn, "SELECT version, run_on, NULL FROM __diesel_schema_migrations", &e),
        // sqlx-sqlite/src/migrate.rs, ensure_migrations_table: version BIGINT
        // PRIMARY KEY, description, installed_on, success BOOLEAN, checksum
        // BLOB (SHA-384), execution_time. sqlx refuses to go on while a row
        // has success = false (`dirty_version`), and so does adoption.
        Tool::Sqlx => {
            let failed: Option<i64> = conn
                .query_row(
                    "SELECT version FROM _sqlx_migrations WHERE success = false ORDER BY version LIMIT 1",
                    [],
                    |r| r.get(0),
                )
                .optional()
                .map_err(&e)?;
            if let Some(v) = failed {
                return Err(refused(format!(
                    "sqlx recorded migration {v} as failed (success = false): the database is in a state \
                     sqlx itself refuses to migrate; repair it and delete that row first"
                )));
            }
            rows(
                conn,
                "SELECT version, installed_on, 'sha384:' || lower(hex(checksum)) FROM _sqlx_migrations",
                &e,
            )
        }
        // refinery_core/src/traits/mod.rs, ASSERT_MIGRATIONS_TABLE_QUERY:
        // refinery_schema_history (version int4 PRIMARY KEY, name, applied_on
        // (RFC 3339), checksum VARCHAR(255) holding the u64 in decimal).
        Tool::Refinery => rows(
            conn,
            "SELECT version, applied_on, 'siphash13:' || checksum FROM refinery_schema_history",
            &e,
        ),
        // goose internal/dialects/sqlite3.go: goose_db_version (id INTEGER
        // PRIMARY KEY AUTOINCREMENT, version_id, is_applied, tstamp). The
        // newest row of a version decides (older goose recorded a down as a
        // row with is_applied = 0); version 0 is the row goose writes when
        // it creates the table.
        Tool::Goose => rows(
            conn,
            "SELECT version_id, tstamp, NULL FROM goose_db_version AS g
             WHERE version_id <> 0 AND is_applied
               AND id = (SELECT max(id) FROM goose_db_version WHERE version_id = g.version_id)",
            &e,
        ),
        // dbmate pkg/driver/sqlite/sqlite.go: schema_migrations (version
        // varchar(128) primary key); no time, no checksum.
        Tool::Dbmate => {
            expect_columns(conn, tool, &["version"])?;
            rows(conn, "SELECT version, NULL, NULL FROM schema_migrations", &e)
        }
        // golang-migrate database/sqlite3/sqlite3.go: schema_migrations
        // (version uint64, dirty bool), one row: the version reached.
        Tool::GolangMigrate => {
            expect_columns(conn, tool, &["version", "dirty"])?;
            let row: Option<(Value, bool)> = conn
                .query_row("SELECT version, dirty FROM schema_migrations LIMIT 1", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
                .map_err(&e)?;
            match row {
                None => Ok(Applied::UpTo(None)),
                Some((v, dirty)) => {
                    let v = text_of(v);
                    if dirty {
                        return Err(refused(format!(
                            "golang-migrate marked the database dirty at version {v}: a migration failed \
                             part way; fix the schema and force the version with golang-migrate first"
                        )));
                    }
                    match v.parse::<i64>() {
                        Ok(-1) => Ok(Applied::UpTo(None)),
                        Ok(n) if n >= 0 => Ok(Applied::UpTo(Some(n as u64))),
                        _ => Err(refused(format!("golang-migrate's version {v:?} is not a version"))),
                    }
                }
            }
        }
    }
}

/// dbmate and golang-migrate both call their table `schema_migrations`, the
/// name wasmig's own ledger has: a table of that name with other columns
/// is not theirs.
fn expect_columns(conn: &Connection, tool: Tool, want: &[&str]) -> Result<()> {
    let mut stmt = conn
        .prepare("SELECT name FROM pragma_table_info('schema_migrations')")
        .map_err(Error::sqlite("reading schema_migrations columns"))?;
    let have = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|r| r.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(Error::sqlite("reading schema_migrations columns"))?;
    let same =
        have.len() == want.len() && want.iter().all(|w| have.iter().any(|h| h.eq_ignore_ascii_case(w)));
    if !same {
        return Err(refused(format!(
            "schema_migrations has columns ({}), not {tool}'s ({})",
            have.join(", "),
            want.join(", ")
        )));
    }
    Ok(())
}

fn rows(conn: &Connection, sql: &str, e: &impl Fn(rusqlite::Error) -> Error) -> Result<Applied> {
    let mut stmt = conn.prepare(sql).map_err(e)?;
    let rows = stmt
        .query_map([], |r| {
            Ok(Row {
                version: text_of(r.get(0)?),
                applied_at: r.get::<_, Option<Value>>(1)?.map(text_of).map(|t| rfc3339(&t)),
                checksum: r.get(2)?,
            })
        })
        .and_then(|r| r.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(e)?;
    Ok(Applied::Rows(rows))
}

/// A ledger value as text: integers in decimal (as provenance writes
/// numeric versions), text as it is.
fn text_of(v: Value) -> String {
    match v {
        Value::Integer(i) => i.to_string(),
        Value::Real(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => (f as i64).to_string(),
        Value::Real(f) => f.to_string(),
        Value::Text(t) => t,
        Value::Blob(b) => String::from_utf8_lossy(&b).into_owned(),
        Value::Null => String::new(),
    }
}

/// SQLite's `CURRENT_TIMESTAMP` form (`YYYY-MM-DD HH:MM:SS`, UTC) as the
/// ledger's RFC 3339; anything else as it is.
fn rfc3339(t: &str) -> String {
    let b = t.as_bytes();
    let shape = b.len() == 19
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b' ',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        });
    if shape { format!("{}T{}Z", &t[..10], &t[11..]) } else { t.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_become_rfc3339() {
        assert_eq!(rfc3339("2024-01-02 03:04:05"), "2024-01-02T03:04:05Z");
        assert_eq!(rfc3339("2024-01-02T03:04:05.5+01:00"), "2024-01-02T03:04:05.5+01:00");
    }

    #[test]
    fn goose_newest_row_decides() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE goose_db_version (id INTEGER PRIMARY KEY AUTOINCREMENT, version_id INTEGER NOT NULL,
                is_applied INTEGER NOT NULL, tstamp TIMESTAMP DEFAULT (datetime('now')));
             INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, 1), (1, 1), (2, 1), (2, 0), (3, 0), (3, 1);",
        )
        .unwrap();
        let Applied::Rows(rows) = read(&conn, Tool::Goose).unwrap() else { panic!() };
        let versions: Vec<&str> = rows.iter().map(|r| r.version.as_str()).collect();
        assert_eq!(versions, ["1", "3"]);
    }
}
