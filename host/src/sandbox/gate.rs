//! The SQL gate: what a guest's statements may do, enforced by SQLite itself.
//!
//! While a guest runs, the connection has an authorizer installed that refuses
//! anything that would let the migration escape its transaction or its
//! database (transaction control, ATTACH, PRAGMA assignments, extension
//! loading, virtual tables, temporary objects, writes to the ledger), any SQL
//! function not on [`FUNCTION_ALLOWLIST`], and hand-written query-planner
//! statistics, plus connection hardening (`DEFENSIVE`, no `TRUSTED_SCHEMA`,
//! no attached databases). [`Gate::remove`] restores the host's own settings
//! afterwards, whatever the guest did.
//!
//! SQL functions are denied by default. SQLite asks the authorizer about
//! every function a statement calls while it is prepared, including the
//! functions inside the triggers and views that statement compiles and the
//! `DEFAULT` expressions of a `CREATE TABLE`, so one check covers every way a
//! guest can reach a function. Built-ins that are deliberately refused are
//! listed with their reasons in [`FUNCTION_DENYLIST`]; anything on neither
//! list (an application-defined function, or one a newer SQLite adds) is
//! refused too, and a unit test fails until a reviewer places it.
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

/// SQL functions a guest may call (compared case-insensitively); everything
/// else is refused. Every name exists in the bundled SQLite (a unit test
/// checks `PRAGMA function_list`), so the list cannot rot.
///
/// The families are what migrations need: core scalar functions, aggregates,
/// date and time, JSON (text and JSONB) and window functions. They compute
/// on their arguments alone; none reads files, takes or returns a pointer,
/// or reaches process-wide state. The bundled SQLite is built without
/// `SQLITE_ENABLE_MATH_FUNCTIONS`, so `sqrt`, `pow`, `ln` and friends do not
/// exist in it at all; if an upgrade adds them, the enumeration test fails
/// and they can be reviewed onto this list.
pub const FUNCTION_ALLOWLIST: &[&str] = &[
    // Core scalar functions.
    "abs",
    "changes",
    "char",
    "coalesce",
    "concat",
    "concat_ws",
    "format",
    "glob",
    "hex",
    "if",
    "ifnull",
    "iif",
    "instr",
    "last_insert_rowid",
    "length",
    "like",
    "likelihood",
    "likely",
    "lower",
    "ltrim",
    // The MATCH operator: an error except on a full-text table, where the
    // table's own implementation answers it.
    "match",
    "nullif",
    "octet_length",
    "printf",
    "quote",
    "random",
    "randomblob",
    "replace",
    "round",
    "rtrim",
    "sign",
    "soundex",
    // Version strings: harmless, and a migration may branch on features.
    "sqlite_source_id",
    "sqlite_version",
    "substr",
    "substring",
    "subtype",
    "total_changes",
    "trim",
    "typeof",
    "unhex",
    "unicode",
    "unistr",
    "unistr_quote",
    "unlikely",
    "upper",
    "zeroblob",
    // Aggregates (min and max are also two-argument scalars).
    "avg",
    "count",
    "group_concat",
    "max",
    "min",
    "string_agg",
    "sum",
    "total",
    // Date and time.
    "current_date",
    "current_time",
    "current_timestamp",
    "date",
    "datetime",
    "julianday",
    "strftime",
    "time",
    "timediff",
    "unixepoch",
    // JSON, as text and as JSONB, including the -> and ->> operators.
    "->",
    "->>",
    "json",
    "json_array",
    "json_array_insert",
    "json_array_length",
    "json_error_position",
    "json_extract",
    "json_group_array",
    "json_group_object",
    "json_insert",
    "json_object",
    "json_pretty",
    "json_quote",
    "json_remove",
    "json_replace",
    "json_set",
    "json_type",
    "json_valid",
    "jsonb",
    "jsonb_array",
    "jsonb_array_insert",
    "jsonb_extract",
    "jsonb_group_array",
    "jsonb_group_object",
    "jsonb_insert",
    "jsonb_object",
    "jsonb_remove",
    "jsonb_replace",
    "jsonb_set",
    // Window functions.
    "cume_dist",
    "dense_rank",
    "first_value",
    "lag",
    "last_value",
    "lead",
    "nth_value",
    "ntile",
    "percent_rank",
    "rank",
    "row_number",
];

/// Built-ins of the bundled SQLite that are refused on purpose, each with
/// the reason the guest is told. Refusal does not depend on this list (a
/// function not on [`FUNCTION_ALLOWLIST`] is refused anyway); it records
/// that each one was reviewed, and the enumeration test requires every
/// built-in to be on exactly one of the two lists.
pub const FUNCTION_DENYLIST: &[(&str, &str)] = &[
    (
        "fts3_tokenizer",
        "with a bound blob argument it accepts a raw host memory address, and with one argument \
         returns one",
    ),
    ("load_extension", "loads native code into the host process"),
    (
        "json_patch",
        "one call is quadratic in the number of object keys (minutes on two large documents) and \
         SQLite cannot interrupt it at the deadline; use json_set",
    ),
    (
        "jsonb_patch",
        "one call is quadratic in the number of object keys (minutes on two large documents) and \
         SQLite cannot interrupt it at the deadline; use jsonb_set",
    ),
    ("fts5", "hands out a pointer to the FTS5 C API"),
    ("fts5_source_id", "FTS5 internals; guests cannot create full-text tables"),
    ("fts5_locale", "FTS5 internals; guests cannot create full-text tables"),
    ("fts5_get_locale", "FTS5 internals; guests cannot create full-text tables"),
    ("fts5_insttoken", "FTS5 internals; guests cannot create full-text tables"),
    ("bm25", "full-text auxiliary function; decodes full-text index structures"),
    ("highlight", "full-text auxiliary function; decodes full-text index structures"),
    ("snippet", "full-text auxiliary function; decodes full-text index structures"),
    ("offsets", "full-text auxiliary function; decodes full-text index structures"),
    ("matchinfo", "full-text auxiliary function; decodes full-text index structures"),
    ("optimize", "rewrites a full-text index; not migration work"),
    ("rtreenode", "R-Tree debugging: parses a raw node blob given as its argument"),
    ("rtreedepth", "R-Tree debugging: parses a raw node blob given as its argument"),
    ("rtreecheck", "R-Tree debugging: walks an R-Tree's shadow tables"),
    ("sqlite_compileoption_get", "reveals how the host's SQLite was built; no migration needs it"),
    ("sqlite_compileoption_used", "reveals how the host's SQLite was built; no migration needs it"),
    ("sqlite_log", "writes guest text into the host process's SQLite error log"),
];

/// SQLite's internal functions, which only SQLite's own nested statements
/// can call: `ALTER TABLE` (rename, drop column, add or drop a constraint,
/// set or drop NOT NULL) rewrites `sqlite_schema` with them, and those nested
/// statements pass through the authorizer like any other. A guest naming one
/// directly gets "no such function" from SQLite itself, whatever the
/// authorizer answers. `PRAGMA function_list` does not show them; a unit test
/// runs every `ALTER TABLE` form and checks this list is exactly what they
/// ask for.
pub const SQLITE_INTERNAL_FUNCTIONS: &[&str] = &[
    "sqlite_add_constraint",
    "sqlite_drop_column",
    "sqlite_drop_constraint",
    "sqlite_fail",
    "sqlite_find_constraint",
    "sqlite_rename_column",
    "sqlite_rename_quotefix",
    "sqlite_rename_table",
    "sqlite_rename_test",
];

/// Whether a guest statement may call SQL function `name`; the reason if
/// not.
pub fn check_function(name: &str) -> std::result::Result<(), String> {
    let on = |list: &[&str]| list.iter().any(|f| f.eq_ignore_ascii_case(name));
    if on(FUNCTION_ALLOWLIST) || on(SQLITE_INTERNAL_FUNCTIONS) {
        return Ok(());
    }
    match FUNCTION_DENYLIST.iter().find(|(f, _)| f.eq_ignore_ascii_case(name)) {
        Some((_, why)) => Err(format!("function {name}() (not on the SQL function allowlist: {why})")),
        None => Err(format!("function {name}() (not on the SQL function allowlist)")),
    }
}

/// Whether `table` holds query-planner statistics (`sqlite_stat1`, and
/// `sqlite_stat4` in this build), which only `ANALYZE` may write.
fn is_statistics(table: &str) -> bool {
    const PREFIX: &str = "sqlite_stat";
    table.len() > PREFIX.len() && table[..PREFIX.len()].eq_ignore_ascii_case(PREFIX)
}

/// Size limits SQLite enforces while a guest runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqlLimits {
    /// Longest SQL text accepted (`SQLITE_LIMIT_SQL_LENGTH`), bytes.
    pub max_sql_length: i32,
    /// Largest string or blob (`SQLITE_LIMIT_LENGTH`), bytes.
    pub max_value_length: i32,
    /// Most arguments one SQL function call may take
    /// (`SQLITE_LIMIT_FUNCTION_ARG`). SQLite's default was 127 for most of
    /// its history (1000 since 3.48); 127 keeps the cost of the JSON
    /// functions that take one path per argument, which SQLite cannot
    /// interrupt, to about an eighth.
    pub max_function_args: i32,
}

impl Default for SqlLimits {
    fn default() -> Self {
        SqlLimits { max_sql_length: 1_000_000, max_value_length: 64 * 1024 * 1024, max_function_args: 127 }
    }
}

/// Why the authorizer refused a statement; shared with the host calls so the
/// guest gets the reason rather than SQLite's bare "not authorized".
pub type Denials = Arc<Mutex<Option<String>>>;

/// Decides one authorizer request. Pure, so it can be tested exhaustively.
pub fn decide(action: &AuthAction<'_>) -> std::result::Result<(), String> {
    use AuthAction as A;
    // The ledger and its audit table (both named schema_migrations*).
    // Compared as bytes: slicing the name as a string would panic when the
    // prefix's end falls inside a multi-byte character.
    let is_ledger = |t: &str| {
        t.as_bytes()
            .get(..ledger::TABLE.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(ledger::TABLE.as_bytes()))
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
        // Deny by default: SQLite asks here for every function a statement,
        // or a trigger or view it compiles, calls, so this one arm decides
        // every function a guest can reach.
        A::Function { function_name } => check_function(function_name),
        A::CreateTempTable { table_name } => Err(format!(
            "CREATE TEMP TABLE {table_name} (temporary objects outlive the migration on the \
             application's connection)"
        )),
        A::CreateTempIndex { index_name, .. } => Err(format!("CREATE TEMP INDEX {index_name}")),
        A::CreateTempTrigger { trigger_name, .. } => Err(format!("CREATE TEMP TRIGGER {trigger_name}")),
        A::CreateTempView { view_name } => Err(format!("CREATE TEMP VIEW {view_name}")),
        // Statistics may be recomputed (ANALYZE writes them without asking)
        // or removed, never written by hand: forged rows would steer the
        // application's query plans long after the migration. DELETE stays
        // allowed because SQLite itself deletes statistics rows, through the
        // authorizer, on DROP TABLE, DROP INDEX and ANALYZE of one table.
        A::Insert { table_name } if is_statistics(table_name) => {
            Err(format!("INSERT INTO {table_name} (query-planner statistics are written by ANALYZE only)"))
        }
        A::Update { table_name, .. } if is_statistics(table_name) => {
            Err(format!("UPDATE {table_name} (query-planner statistics are written by ANALYZE only)"))
        }
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
    function_args: i32,
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
            function_args: conn.limit(Limit::SQLITE_LIMIT_FUNCTION_ARG).map_err(err("reading limits"))?,
        };
        let closed = (|| -> rusqlite::Result<()> {
            conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
            conn.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)?;
            conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)?;
            conn.set_limit(Limit::SQLITE_LIMIT_SQL_LENGTH, limits.max_sql_length.min(gate.sql_length))?;
            conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, limits.max_value_length.min(gate.length))?;
            conn.set_limit(
                Limit::SQLITE_LIMIT_FUNCTION_ARG,
                limits.max_function_args.min(gate.function_args),
            )?;
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
        conn.set_limit(Limit::SQLITE_LIMIT_FUNCTION_ARG, self.function_args)?;
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

    /// Every function name of `PRAGMA function_list` on a plain connection of
    /// the bundled SQLite (internal functions are not shown there).
    fn builtin_functions() -> std::collections::BTreeSet<String> {
        let conn = Connection::open_in_memory().unwrap();
        let mut stmt = conn.prepare("SELECT DISTINCT name FROM pragma_function_list").unwrap();
        stmt.query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .map(|n| n.unwrap().to_ascii_lowercase())
            .collect()
    }

    #[test]
    fn every_builtin_function_is_reviewed_and_the_lists_do_not_rot() {
        let builtins = builtin_functions();
        assert!(builtins.len() > 100, "function_list looks truncated: {builtins:?}");
        let allowed: Vec<&str> = FUNCTION_ALLOWLIST.to_vec();
        let denied: Vec<&str> = FUNCTION_DENYLIST.iter().map(|(f, _)| *f).collect();
        let mut problems = Vec::new();
        for f in &builtins {
            let (a, d) = (allowed.contains(&f.as_str()), denied.contains(&f.as_str()));
            if !a && !d {
                problems.push(format!("{f}: new built-in, on neither list (review it)"));
            }
        }
        for (list, names) in [("FUNCTION_ALLOWLIST", &allowed), ("FUNCTION_DENYLIST", &denied)] {
            let mut seen = std::collections::BTreeSet::new();
            for f in names.iter() {
                if !seen.insert(*f) {
                    problems.push(format!("{f}: twice on {list}"));
                }
                if *f != f.to_ascii_lowercase() {
                    problems.push(format!("{f}: {list} entries are lower case"));
                }
                if !builtins.contains(*f) {
                    problems.push(format!("{f}: on {list} but not in the bundled SQLite"));
                }
            }
        }
        for f in &allowed {
            if denied.contains(f) {
                problems.push(format!("{f}: on both lists"));
            }
        }
        for f in SQLITE_INTERNAL_FUNCTIONS {
            if builtins.contains(*f) || allowed.contains(f) || denied.contains(f) {
                problems.push(format!("{f}: listed as internal but visible or listed elsewhere"));
            }
        }
        assert!(problems.is_empty(), "SQL function lists need review:\n{}", problems.join("\n"));
    }

    #[test]
    fn decisions_follow_the_lists_case_insensitively() {
        for f in FUNCTION_ALLOWLIST.iter().chain(SQLITE_INTERNAL_FUNCTIONS) {
            assert_eq!(check_function(f), Ok(()), "{f}");
            assert_eq!(check_function(&f.to_ascii_uppercase()), Ok(()), "{f}");
        }
        for (f, why) in FUNCTION_DENYLIST {
            let reason = check_function(&f.to_ascii_uppercase()).unwrap_err();
            assert_eq!(
                reason,
                format!("function {}() (not on the SQL function allowlist: {why})", f.to_ascii_uppercase())
            );
        }
        assert_eq!(
            check_function("app_side_effect"),
            Err("function app_side_effect() (not on the SQL function allowlist)".to_owned())
        );
    }

    /// Runs `sql` as a query returning one text value under the gate.
    fn text(conn: &Connection, sql: &str) -> String {
        conn.query_row(sql, [], |r| r.get::<_, String>(0)).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    #[test]
    fn allowed_functions_work_under_the_gate() {
        let (conn, d, _gate) = gated();
        conn.execute_batch(
            "CREATE TABLE s (id INTEGER PRIMARY KEY, grp TEXT, v INTEGER, doc TEXT,
                 made TEXT DEFAULT (strftime('%Y', '2024-05-06')));
             INSERT INTO s (grp, v, doc) VALUES
                 ('a', 3, '{\"k\": [1, 2]}'), ('a', 1, '{\"k\": []}'), ('b', 2, '{\"k\": [7]}');",
        )
        .unwrap();
        let cases = [
            // Core scalar functions and the operators that are functions.
            ("SELECT upper(substr('migration', 1, 3)) || lower('X')", "MIGx"),
            ("SELECT printf('%05.1f|%s', 3.14159, coalesce(NULL, 'c'))", "003.1|c"),
            ("SELECT instr('abcabc', 'ca') || replace('a-b', '-', '+') || trim('  t ')", "3a+bt"),
            ("SELECT iif('abc' LIKE 'A%' AND 'abc' GLOB 'a*', 'yes', 'no')", "yes"),
            ("SELECT hex(zeroblob(2)) || typeof(randomblob(4)) || quote('it''s')", "0000blob'it''s'"),
            // Aggregates.
            ("SELECT group_concat(v, ',') || '/' || sum(v) || '/' || count(*) FROM s", "3,1,2/6/3"),
            ("SELECT string_agg(grp, '') FROM (SELECT grp FROM s ORDER BY id)", "aab"),
            // Window functions.
            (
                "SELECT group_concat(r, ',') FROM (SELECT row_number() OVER (PARTITION BY grp ORDER BY v) \
                 || rank() OVER (ORDER BY v) || coalesce(lag(v) OVER (ORDER BY id), '-') AS r FROM s ORDER BY id)",
                "23-,113,121",
            ),
            // JSON, text and JSONB, functions and operators.
            ("SELECT json_extract(doc, '$.k[1]') || (doc ->> '$.k[0]') FROM s WHERE id = 1", "21"),
            ("SELECT json(jsonb_set(jsonb('{\"a\":1}'), '$.b', 2))", "{\"a\":1,\"b\":2}"),
            ("SELECT json_group_array(json_array_length(doc, '$.k')) FROM s", "[2,0,1]"),
            // Table-valued JSON functions are virtual tables, not functions.
            ("SELECT group_concat(value, '+') FROM json_each('[4, 5]')", "4+5"),
            // Date and time, including the CURRENT_* keywords.
            ("SELECT date('2024-01-31', '+1 day') || ' ' || unixepoch('1970-01-02')", "2024-02-01 86400"),
            ("SELECT typeof(CURRENT_TIMESTAMP) || typeof(julianday('now'))", "textreal"),
            ("SELECT made FROM s WHERE id = 1", "2024"),
            // Arithmetic helpers (the bundled SQLite has no math extension).
            ("SELECT abs(-2) || round(2.567, 1) || sign(-5) || max(1, 7, 3) || min(4, 2)", "22.6-172"),
        ];
        for (sql, want) in cases {
            *d.lock().unwrap() = None;
            assert_eq!(text(&conn, sql), want, "{sql}");
            assert_eq!(*d.lock().unwrap(), None, "{sql}: nothing refused");
        }
    }

    #[test]
    fn denied_functions_are_refused_naming_the_function() {
        let (conn, d, _gate) = gated();
        // An application function that even says it is harmless: the guest
        // still may not call it.
        conn.create_scalar_function(
            "app_helper",
            0,
            rusqlite::functions::FunctionFlags::SQLITE_UTF8
                | rusqlite::functions::FunctionFlags::SQLITE_INNOCUOUS
                | rusqlite::functions::FunctionFlags::SQLITE_DETERMINISTIC,
            |_| Ok(1),
        )
        .unwrap();
        let cases = [
            (
                "SELECT fts3_tokenizer('simple')",
                "function fts3_tokenizer() (not on the SQL function allowlist: ",
            ),
            ("SELECT FTS3_TOKENIZER('simple', x'4141414141414141')", "function fts3_tokenizer()"),
            ("SELECT rtreenode(2, x'00')", "function rtreenode() (not on the SQL function allowlist: R-Tree"),
            ("SELECT sqlite_compileoption_get(0)", "function sqlite_compileoption_get() (not on the"),
            ("SELECT sqlite_log(1, 'x')", "function sqlite_log()"),
            ("SELECT load_extension('/tmp/x.so')", "function load_extension()"),
            ("SELECT app_helper()", "function app_helper() (not on the SQL function allowlist)"),
            (
                "SELECT 1 WHERE 1 IN (SELECT sqlite_compileoption_used('X'))",
                "function sqlite_compileoption_used()",
            ),
        ];
        for (sql, want) in cases {
            let reason = refused(&conn, &d, sql);
            assert!(reason.starts_with(want), "{sql}: {reason}");
        }
        // The pointer is a bound parameter: refused while preparing, so it is
        // never dereferenced.
        *d.lock().unwrap() = None;
        let fake_pointer = 0x4141_4141_4141_4141_u64.to_ne_bytes().to_vec();
        let err =
            conn.query_row("SELECT fts3_tokenizer('simple', ?1)", [fake_pointer], |r| r.get::<_, i64>(0));
        assert!(err.unwrap_err().to_string().contains("not authorized to use function"));
        assert!(d.lock().unwrap().as_deref().unwrap().starts_with("function fts3_tokenizer()"));
        assert!(!conn.is_autocommit());
    }

    #[test]
    fn views_triggers_and_schema_expressions_calling_denied_functions_are_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        // Objects that exist before the migration (the application's, or an
        // earlier migration's): SQLite compiles their bodies into the
        // guest's statement, under the gate.
        conn.execute_batch(
            "CREATE TABLE t (a);
             CREATE TABLE audit (opt);
             CREATE VIEW leaky AS SELECT sqlite_compileoption_get(0) AS opt;
             CREATE TRIGGER t_spy AFTER INSERT ON t BEGIN
                 INSERT INTO audit (opt) SELECT sqlite_compileoption_get(0);
             END;
             BEGIN;",
        )
        .unwrap();
        let d = Denials::default();
        let _gate = Gate::install(&mut conn, SqlLimits::default(), d.clone()).unwrap();
        let fn_named = "function sqlite_compileoption_get() (not on the SQL function allowlist";
        assert!(refused(&conn, &d, "SELECT opt FROM leaky").starts_with(fn_named));
        assert!(refused(&conn, &d, "INSERT INTO t (a) VALUES (1)").starts_with(fn_named));
        // Created by the guest: the view or trigger is refused as soon as a
        // statement compiles it, and schema expressions when the table is
        // created.
        conn.execute_batch("CREATE VIEW leaky2 AS SELECT sqlite_compileoption_get(1) AS opt").unwrap();
        assert!(refused(&conn, &d, "SELECT opt FROM leaky2").starts_with(fn_named));
        // SQLite works out a view's column names with the authorizer off;
        // a function it does not consider innocuous is then refused by
        // SQLite's own TRUSTED_SCHEMA rule first, also naming it.
        conn.execute_batch("CREATE VIEW leaky3 AS SELECT rtreedepth(x'00') AS depth").unwrap();
        let err = conn.execute_batch("SELECT depth FROM leaky3").unwrap_err().to_string();
        assert!(err.contains("rtreedepth()"), "{err}");
        conn.execute_batch(
            "CREATE TRIGGER t_spy2 BEFORE DELETE ON t BEGIN SELECT fts3_tokenizer('simple'); END",
        )
        .unwrap();
        assert!(refused(&conn, &d, "DELETE FROM t").starts_with("function fts3_tokenizer()"));
        for sql in [
            "CREATE TABLE d1 (a DEFAULT (sqlite_compileoption_get(0)))",
            "CREATE TABLE d2 (a, b AS (sqlite_compileoption_get(a)))",
            "CREATE TABLE d3 (a CHECK (sqlite_compileoption_used(a)))",
            "CREATE INDEX t_opt ON t (sqlite_compileoption_used(a))",
        ] {
            let reason = refused(&conn, &d, sql);
            assert!(reason.starts_with("function sqlite_compileoption_"), "{sql}: {reason}");
        }
        let rows: i64 = conn
            .query_row("SELECT (SELECT count(*) FROM t) + (SELECT count(*) FROM audit)", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 0, "nothing ran");
    }

    /// Every ALTER TABLE form this SQLite supports, on tables with a
    /// trigger, a view and an AUTOINCREMENT counter to rewrite.
    const ALTER_FORMS: &[&str] = &[
        "ALTER TABLE p ADD COLUMN extra TEXT",
        "ALTER TABLE p RENAME COLUMN extra TO more",
        "ALTER TABLE p DROP COLUMN more",
        "ALTER TABLE p ADD CONSTRAINT positive CHECK (n >= 0)",
        "ALTER TABLE p ADD CHECK (n < 1000)",
        "ALTER TABLE p DROP CONSTRAINT positive",
        "ALTER TABLE p ALTER COLUMN n SET NOT NULL",
        "ALTER TABLE p ALTER COLUMN n DROP NOT NULL",
        "ALTER TABLE p RENAME TO p2",
    ];

    fn alter_fixture(conn: &Connection) {
        conn.execute_batch(
            "CREATE TABLE p (id INTEGER PRIMARY KEY AUTOINCREMENT, n INTEGER);
             CREATE TABLE log (msg TEXT);
             CREATE VIEW p_view AS SELECT upper(n) FROM p;
             CREATE TRIGGER p_log AFTER INSERT ON p BEGIN INSERT INTO log VALUES (printf('%d', new.n)); END;
             INSERT INTO p (n) VALUES (5);",
        )
        .unwrap();
    }

    #[test]
    fn alter_table_needs_exactly_the_listed_internal_functions() {
        // Without the gate, record what SQLite's own nested statements ask.
        let mut conn = Connection::open_in_memory().unwrap();
        alter_fixture(&conn);
        let asked = Arc::new(Mutex::new(std::collections::BTreeSet::new()));
        let sink = asked.clone();
        conn.authorizer(Some(move |ctx: AuthContext<'_>| {
            if let AuthAction::Function { function_name } = ctx.action {
                sink.lock().unwrap().insert(function_name.to_ascii_lowercase());
            }
            Authorization::Allow
        }))
        .unwrap();
        for sql in ALTER_FORMS {
            conn.execute_batch(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        let asked = asked.lock().unwrap().clone();
        for f in &asked {
            assert!(check_function(f).is_ok(), "ALTER TABLE needs {f}(), which the gate refuses");
        }
        for f in SQLITE_INTERNAL_FUNCTIONS {
            assert!(asked.contains(*f), "{f} is listed as internal but no ALTER TABLE form uses it");
        }
        // Under the gate, every form works, and the guest cannot call the
        // internal functions itself.
        let (conn, d, _gate) = gated();
        alter_fixture(&conn);
        for sql in ALTER_FORMS {
            conn.execute_batch(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        let seq: String = text(&conn, "SELECT name FROM sqlite_sequence");
        assert_eq!(seq, "p2", "SQLite renamed the AUTOINCREMENT counter itself");
        for f in SQLITE_INTERNAL_FUNCTIONS {
            // Whatever the argument count, SQLite never runs it for a guest;
            // at its own arity it reports the function as not existing.
            let errors: Vec<String> = (0..=9)
                .map(|n| {
                    let args = vec!["NULL"; n].join(", ");
                    conn.execute_batch(&format!("SELECT {f}({args})")).expect_err(f).to_string()
                })
                .collect();
            assert!(errors.iter().any(|e| e.contains("no such function")), "{f}: {errors:?}");
        }
        assert_eq!(*d.lock().unwrap(), None, "nothing was refused");
    }

    #[test]
    fn statistics_come_from_analyze_only_and_sqlite_sequence_is_data() {
        let (conn, d, _gate) = gated();
        conn.execute_batch(
            "CREATE TABLE s (id INTEGER PRIMARY KEY AUTOINCREMENT, k TEXT);
             CREATE INDEX s_k ON s (k);
             CREATE INDEX s_k2 ON s (k, id);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50)
             INSERT INTO s (k) SELECT i % 5 FROM n;",
        )
        .unwrap();
        // ANALYZE creates and fills the statistics tables itself; ANALYZE of
        // one table first deletes that table's rows (through the authorizer).
        conn.execute_batch("ANALYZE").unwrap();
        conn.execute_batch("ANALYZE s").unwrap();
        conn.execute_batch("ANALYZE s_k").unwrap();
        let stat1: i64 = conn.query_row("SELECT count(*) FROM sqlite_stat1", [], |r| r.get(0)).unwrap();
        let stat4: i64 = conn.query_row("SELECT count(*) FROM sqlite_stat4", [], |r| r.get(0)).unwrap();
        assert!(stat1 >= 2 && stat4 > 0, "ANALYZE wrote statistics: {stat1} {stat4}");
        for (sql, want) in [
            (
                "INSERT INTO sqlite_stat1 VALUES ('s', 's_k', '1000000 1')",
                "INSERT INTO sqlite_stat1 (query-planner",
            ),
            (
                "REPLACE INTO sqlite_stat1 SELECT * FROM sqlite_stat1",
                "INSERT INTO sqlite_stat1 (query-planner",
            ),
            ("UPDATE sqlite_stat1 SET stat = '1 1'", "UPDATE sqlite_stat1 (query-planner"),
            ("UPDATE SQLITE_STAT4 SET neq = '1'", "UPDATE sqlite_stat4 (query-planner"),
            (
                "INSERT INTO sqlite_stat4 SELECT * FROM sqlite_stat4",
                "INSERT INTO sqlite_stat4 (query-planner",
            ),
        ] {
            let reason = refused(&conn, &d, sql);
            assert!(reason.starts_with(want), "{sql}: {reason}");
        }
        *d.lock().unwrap() = None;
        // Removing statistics returns the planner to its defaults; SQLite
        // does it itself when an analyzed index or table is dropped.
        conn.execute_batch("DROP INDEX s_k2").unwrap();
        conn.execute_batch("DELETE FROM sqlite_stat1 WHERE idx = 's_k'").unwrap();
        let left: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_stat1 WHERE idx IN ('s_k', 's_k2')", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0);
        conn.execute_batch("DROP TABLE sqlite_stat4").unwrap();
        // AUTOINCREMENT counters are application data.
        conn.execute_batch(
            "UPDATE sqlite_sequence SET seq = 1000 WHERE name = 's';
             INSERT INTO s (k) VALUES ('next');",
        )
        .unwrap();
        assert_eq!(text(&conn, "SELECT CAST(max(id) AS TEXT) FROM s"), "1001");
        conn.execute_batch(
            "DELETE FROM sqlite_sequence WHERE name = 's';
             INSERT INTO sqlite_sequence (name, seq) VALUES ('s', 5000);",
        )
        .unwrap();
        assert_eq!(*d.lock().unwrap(), None, "nothing else was refused");
    }

    #[test]
    fn function_arguments_are_capped_while_the_gate_is_closed() {
        let (mut conn, _d, gate) = gated();
        let call = |n: usize| format!("SELECT json_array({})", vec!["1"; n].join(", "));
        conn.query_row(&call(127), [], |r| r.get::<_, String>(0)).unwrap();
        let err = conn.prepare(&call(128)).unwrap_err().to_string();
        assert!(err.contains("too many arguments"), "{err}");
        gate.remove(&mut conn).unwrap();
        conn.query_row(&call(128), [], |r| r.get::<_, String>(0)).expect("the host's own limit is back");
    }

    #[test]
    fn json_patch_is_denied_naming_the_way_around() {
        let (conn, d, _gate) = gated();
        let why = refused(&conn, &d, "SELECT json_patch('{}', '{}')");
        assert!(why.contains("json_patch()") && why.contains("use json_set"), "{why}");
        conn.query_row("SELECT json_set('{}', '$.a', 1)", [], |r| r.get::<_, String>(0)).unwrap();
    }

    #[test]
    fn ledger_names_are_matched_as_bytes() {
        let (conn, d, _gate) = gated();
        // Byte 17 falls inside the 'é': no panic, just an ordinary table.
        conn.execute_batch(
            "CREATE TABLE \"schema_migrationé\" (x); INSERT INTO \"schema_migrationé\" VALUES (1);",
        )
        .unwrap();
        assert!(refused(&conn, &d, "INSERT INTO SCHEMA_MIGRATIONS VALUES (9, 'x', 'y')").contains("ledger"));
    }
}
