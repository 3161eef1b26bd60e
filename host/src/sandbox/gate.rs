//! The SQL gate: what a guest's statements may do, enforced by SQLite itself.
//!
//! While a guest runs, the connection has an authorizer installed that refuses
//! anything that would let the migration escape its transaction or its
//! database (transaction control, ATTACH, PRAGMA assignments, extension
//! loading, virtual tables, temporary objects, writes to the ledger), plus
//! connection hardening (`DEFENSIVE`, no `TRUSTED_SCHEMA`, no attached
//! databases). [`Gate::remove`] restores the host's own settings afterwards,
//! whatever the guest did.
//!
//! The authorizer runs when a statement is *prepared*, so the host flushes
//! the statement cache on both transitions: a statement prepared while the
//! gate was open can never be reused while it is closed, and vice versa.

use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use rusqlite::config::DbConfig;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization, TransactionOperation};
use rusqlite::limits::Limit;

use crate::error::{Error, Result};
use crate::ledger;
use crate::sql::PRAGMA_ALLOWLIST;

/// Size limits SQLite enforces while a guest runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqlLimits {
    /// Longest SQL text accepted (`SQLITE_LIMIT_SQL_LENGTH`), bytes.
    pub max_sql_length: i32,
    /// Largest string or blob (`SQLITE_LIMIT_LENGTH`), bytes.
    pub max_value_length: i32,
}

impl Default for SqlLimits {
    fn default() -> Self {
        SqlLimits { max_sql_length: 1_000_000, max_value_length: 64 * 1024 * 1024 }
    }
}

/// Why the authorizer refused a statement; shared with the host calls so the
/// guest gets the reason rather than SQLite's bare "not authorized".
pub type Denials = Arc<Mutex<Option<String>>>;

/// Decides one authorizer request. Pure, so it can be tested exhaustively.
pub fn decide(action: &AuthAction<'_>) -> std::result::Result<(), String> {
    use AuthAction as A;
    // The ledger and its audit table (both named schema_migrations*).
    let is_ledger = |t: &str| {
        t.len() >= ledger::TABLE.len() && t[..ledger::TABLE.len()].eq_ignore_ascii_case(ledger::TABLE)
    };
    match action {
        A::Transaction { operation } => Err(format!(
            "{} (the host owns this migration's transaction)",
            match operation {
                TransactionOperation::Begin => "BEGIN",
                TransactionOperation::Rollback => "ROLLBACK",
                // SQLite reports COMMIT and END as an operation rusqlite
                // does not name.
                _ => "COMMIT",
            }
        )),
        A::Savepoint { operation, savepoint_name } => Err(format!(
            "{} {savepoint_name} (the host owns this migration's transaction)",
            match operation {
                TransactionOperation::Release => "RELEASE",
                TransactionOperation::Rollback => "ROLLBACK TO",
                _ => "SAVEPOINT",
            }
        )),
        A::Attach { filename } => Err(format!("ATTACH {filename:?} (only the target database is reachable)")),
        A::Detach { database_name } => Err(format!("DETACH {database_name}")),
        A::Pragma { pragma_name, pragma_value } => {
            let name = pragma_name.to_ascii_lowercase();
            if let Some(v) = pragma_value {
                // table_info('t') and friends pass their argument here too;
                // only allowlisted introspection pragmas may take one.
                if PRAGMA_ALLOWLIST.contains(&name.as_str()) && takes_argument(&name) {
                    return Ok(());
                }
                return Err(format!("PRAGMA {pragma_name} = {v} (PRAGMA assignments are not allowed)"));
            }
            if PRAGMA_ALLOWLIST.contains(&name.as_str()) {
                Ok(())
            } else {
                Err(format!("PRAGMA {pragma_name} (not on the read-only allowlist)"))
            }
        }
        A::CreateVtable { table_name, module_name } => {
            Err(format!("CREATE VIRTUAL TABLE {table_name} USING {module_name}"))
        }
        A::DropVtable { table_name, .. } => Err(format!("DROP of virtual table {table_name}")),
        A::Function { function_name } if function_name.eq_ignore_ascii_case("load_extension") => {
            Err("load_extension()".to_owned())
        }
        A::CreateTempTable { table_name } => Err(format!(
            "CREATE TEMP TABLE {table_name} (temporary objects outlive the migration on the \
             application's connection)"
        )),
        A::CreateTempIndex { index_name, .. } => Err(format!("CREATE TEMP INDEX {index_name}")),
        A::CreateTempTrigger { trigger_name, .. } => Err(format!("CREATE TEMP TRIGGER {trigger_name}")),
        A::CreateTempView { view_name } => Err(format!("CREATE TEMP VIEW {view_name}")),
        A::Insert { table_name } if is_ledger(table_name) => {
            Err(format!("INSERT INTO {table_name} (the ledger is written by the host only)"))
        }
        A::Update { table_name, .. } if is_ledger(table_name) => {
            Err(format!("UPDATE {table_name} (the ledger is written by the host only)"))
        }
        A::Delete { table_name } if is_ledger(table_name) => {
            Err(format!("DELETE FROM {table_name} (the ledger is written by the host only)"))
        }
        A::DropTable { table_name } if is_ledger(table_name) => {
            Err(format!("DROP TABLE {table_name} (the ledger is written by the host only)"))
        }
        A::AlterTable { table_name, .. } if is_ledger(table_name) => {
            Err(format!("ALTER TABLE {table_name} (the ledger is written by the host only)"))
        }
        A::CreateTrigger { table_name, trigger_name } if is_ledger(table_name) => {
            Err(format!("CREATE TRIGGER {trigger_name} ON {table_name}"))
        }
        // rusqlite reports ATTACH as unknown when its file name is a bound
        // parameter (SQLite passes no text for it).
        A::Unknown { code: rusqlite::ffi::SQLITE_ATTACH, .. } => {
            Err("ATTACH of a file named by a parameter (only the target database is reachable)".to_owned())
        }
        A::Unknown { code, .. } => Err(format!("unrecognised operation (authorizer code {code})")),
        _ => Ok(()),
    }
}

fn takes_argument(pragma: &str) -> bool {
    matches!(
        pragma,
        "table_info"
            | "table_xinfo"
            | "index_list"
            | "index_info"
            | "index_xinfo"
            | "foreign_key_list"
            | "foreign_key_check"
            | "integrity_check"
            | "quick_check"
            | "table_list"
    )
}

/// The host's connection settings saved while the gate is closed.
#[derive(Debug)]
pub struct Gate {
    defensive: bool,
    trusted_schema: bool,
    attached: i32,
    sql_length: i32,
    length: i32,
}

impl Gate {
    /// Closes the gate on `conn`: hardening on, authorizer installed.
    pub fn install(conn: &mut Connection, limits: SqlLimits, denials: Denials) -> Result<Gate> {
        let err = Error::sqlite;
        let gate = Gate {
            defensive: conn
                .db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE)
                .map_err(err("reading DEFENSIVE"))?,
            trusted_schema: conn
                .db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA)
                .map_err(err("reading TRUSTED_SCHEMA"))?,
            attached: conn.limit(Limit::SQLITE_LIMIT_ATTACHED).map_err(err("reading limits"))?,
            sql_length: conn.limit(Limit::SQLITE_LIMIT_SQL_LENGTH).map_err(err("reading limits"))?,
            length: conn.limit(Limit::SQLITE_LIMIT_LENGTH).map_err(err("reading limits"))?,
        };
        let closed = (|| -> rusqlite::Result<()> {
            conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
            conn.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)?;
            conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)?;
            conn.set_limit(Limit::SQLITE_LIMIT_SQL_LENGTH, limits.max_sql_length.min(gate.sql_length))?;
            conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, limits.max_value_length.min(gate.length))?;
            conn.flush_prepared_statement_cache();
            conn.authorizer(Some(move |ctx: AuthContext<'_>| match decide(&ctx.action) {
                Ok(()) => Authorization::Allow,
                Err(reason) => {
                    if let Ok(mut slot) = denials.lock() {
                        *slot = Some(reason);
                    }
                    Authorization::Deny
                }
            }))
        })();
        if let Err(e) = closed {
            // Put back whatever was already changed before reporting.
            let _ = gate.restore(conn);
            return Err(Error::Sqlite { context: "closing the SQL gate".into(), source: e });
        }
        Ok(gate)
    }

    fn restore(&self, conn: &mut Connection) -> rusqlite::Result<()> {
        conn.authorizer(None::<fn(AuthContext<'_>) -> Authorization>)?;
        conn.flush_prepared_statement_cache();
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, self.defensive)?;
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, self.trusted_schema)?;
        conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, self.attached)?;
        conn.set_limit(Limit::SQLITE_LIMIT_SQL_LENGTH, self.sql_length)?;
        conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, self.length)?;
        Ok(())
    }

    /// Opens the gate again, restoring the host's settings.
    pub fn remove(self, conn: &mut Connection) -> Result<()> {
        self.restore(conn).map_err(Error::sqlite("restoring connection settings after the guest"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gated() -> (Connection, Denials, Gate) {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (a); CREATE TABLE schema_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL);").unwrap();
        conn.execute_batch("BEGIN").unwrap();
        let denials = Denials::default();
        let gate = Gate::install(&mut conn, SqlLimits::default(), denials.clone()).unwrap();
        (conn, denials, gate)
    }

    fn refused(conn: &Connection, denials: &Denials, sql: &str) -> String {
        *denials.lock().unwrap() = None;
        let err = conn.execute_batch(sql).expect_err(sql);
        // SQLite reports most denials as SQLITE_AUTH, function denials as
        // SQLITE_ERROR; either way the gate recorded why.
        assert!(err.to_string().contains("not authorized"), "{sql}: {err}");
        denials.lock().unwrap().clone().expect("reason recorded")
    }

    #[test]
    fn refuses_escape_routes() {
        let (conn, d, _gate) = gated();
        assert!(refused(&conn, &d, "COMMIT").starts_with("COMMIT"));
        assert!(refused(&conn, &d, "ROLLBACK").starts_with("ROLLBACK"));
        assert!(refused(&conn, &d, "BEGIN").starts_with("BEGIN"));
        assert!(refused(&conn, &d, "SAVEPOINT s").contains("SAVEPOINT"));
        assert!(refused(&conn, &d, "ATTACH 'x.db' AS x").starts_with("ATTACH"));
        assert!(refused(&conn, &d, "ATTACH ?1 AS x").starts_with("ATTACH of a file named by a parameter"));
        assert!(refused(&conn, &d, "PRAGMA foreign_keys = OFF").contains("assignments"));
        assert!(refused(&conn, &d, "PRAGMA journal_mode").contains("allowlist"));
        assert!(refused(&conn, &d, "PRAGMA writable_schema = 1").contains("writable_schema"));
        assert!(refused(&conn, &d, "CREATE TEMP TABLE s (a)").contains("TEMP TABLE"));
        assert!(refused(&conn, &d, "CREATE VIRTUAL TABLE v USING fts5(a)").contains("VIRTUAL"));
        assert!(refused(&conn, &d, "SELECT load_extension('x')").contains("load_extension"));
        assert!(refused(&conn, &d, "INSERT INTO schema_migrations VALUES (9, 'x', 'y')").contains("ledger"));
        assert!(refused(&conn, &d, "DELETE FROM schema_migrations").contains("ledger"));
        assert!(refused(&conn, &d, "DROP TABLE schema_migrations").contains("ledger"));
        // Still inside the host's transaction after all of that.
        assert!(!conn.is_autocommit());
    }

    #[test]
    fn allows_ordinary_migration_work() {
        let (conn, _d, _gate) = gated();
        conn.execute_batch(
            "CREATE TABLE u (id INTEGER PRIMARY KEY, v TEXT);
             CREATE INDEX u_v ON u (v);
             CREATE VIEW uv AS SELECT v FROM u;
             CREATE TRIGGER u_t AFTER INSERT ON u BEGIN UPDATE u SET v = upper(v) WHERE id = new.id; END;
             INSERT INTO u (v) VALUES ('a');
             ALTER TABLE u ADD COLUMN w INTEGER;
             ALTER TABLE t RENAME TO t2;
             DROP VIEW uv;
             SELECT * FROM schema_migrations;",
        )
        .unwrap();
        let n: i64 = conn.query_row("SELECT count(*) FROM pragma_table_info('u')", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 3);
        conn.execute_batch("PRAGMA foreign_key_check").unwrap();
        conn.execute_batch("PRAGMA table_info(u)").unwrap();
    }

    #[test]
    fn schema_table_is_read_only_and_settings_restored() {
        let (mut conn, d, gate) = gated();
        assert!(conn.execute_batch("UPDATE sqlite_schema SET sql = 'x'").is_err());
        let _ = d;
        gate.remove(&mut conn).unwrap();
        assert!(!conn.db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE).unwrap());
        assert!(conn.db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA).unwrap());
        assert!(conn.limit(Limit::SQLITE_LIMIT_ATTACHED).unwrap() > 0);
        // With the gate open, the host can end its transaction again.
        conn.execute_batch("COMMIT").unwrap();
    }
}
