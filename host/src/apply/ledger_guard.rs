//! The ledger guard: nothing a migration leaves in the schema can reach the
//! ledger, now or later.
//!
//! The SQL gate stops a guest from writing `schema_migrations` while it runs,
//! but schema objects outlive the migration. An index on the ledger whose
//! expression fails for new rows makes every later ledger insert fail (the
//! database can never be migrated again); a trigger on an application table
//! that writes ledger rows forges "applied" entries when the *application*
//! later writes that table, so a security fix silently never runs. So before
//! COMMIT, after the gate is removed, the migrator asks this module whether
//! the schema now holds anything other than the ledger's own tables that
//! refers to a ledger table, and refuses the migration if it does.
//!
//! Every verdict comes from SQLite itself, never from reading SQL text:
//!
//! - **names**: every object named `schema_migrations*` (case-insensitively,
//!   as the gate reads ledger names) other than the ledger's own two tables
//!   is refused, so a table created as, or renamed to, a ledger-like name
//!   cannot pose as part of the ledger;
//! - **indexes**: `sqlite_schema.tbl_name` names the indexed table; an index
//!   on a ledger table is refused unless it is one of SQLite's automatic
//!   indexes of the ledger's own tables (ledger.rs creates no other);
//! - **triggers**: one on a ledger table is refused outright. For one on any
//!   other table or view, the statements that fire it (`INSERT … DEFAULT
//!   VALUES`, an `UPDATE` setting every ordinary column and the rowid, and
//!   `DELETE`) are *prepared, never run*, under a recording authorizer.
//!   Preparing compiles the trigger programs (WHEN clause, body, views and
//!   nested triggers they reach), and SQLite reports each table they read or
//!   write with the trigger or view responsible (`AuthContext::accessor`).
//!   Any access to a ledger table is refused, naming the object;
//! - **views**: `SELECT * FROM view` is prepared the same way;
//! - **tables**: a foreign key from any table to a ledger table, or from a
//!   ledger table to anything, is refused (`pragma_foreign_key_list`). CHECK
//!   constraints, DEFAULT expressions, generated columns and index
//!   expressions cannot contain subqueries, so they cannot reach another
//!   table; only the index's own table matters.
//!
//! A trigger that none of those statements fires is refused as unverified
//! (for instance `UPDATE OF` a column the table does not have): the check
//! cannot vouch for code SQLite did not compile. The same goes for a trigger
//! or view whose compilation fails (a dropped table it uses, a function the
//! connection lacks): it is refused with SQLite's error, since its next use
//! would fail for the application too. Only the `main` schema is inspected:
//! the gate refuses temporary objects, so a migration cannot leave any.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::{Connection, OptionalExtension};

use super::catalog::{Catalog, Object};
use super::table_facts;
use crate::error::{Error, Result};
use crate::ledger;

/// True for a name the gate treats as the ledger's: it starts with
/// `schema_migrations`, compared case-insensitively (SQLite's own rule for
/// identifiers).
pub fn is_ledger_name(name: &str) -> bool {
    let prefix = ledger::TABLE.as_bytes();
    // Compared as bytes: slicing the str could split a multi-byte character.
    name.len() >= prefix.len() && name.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// True for the tables ledger.rs itself creates.
fn is_own_table(name: &str) -> bool {
    name.eq_ignore_ascii_case(ledger::TABLE) || name.eq_ignore_ascii_case(ledger::AUDIT_TABLE)
}

/// What the guard notes just before a migration runs, inside its
/// transaction, to compare once the guest has returned.
#[derive(Debug)]
pub(crate) struct Watch {
    schema_version: i64,
    own_tables: OwnTables,
}

/// The ledger's own tables (by lower-cased name) with their stored SQL.
pub(crate) type OwnTables = BTreeMap<String, Option<String>>;

impl Watch {
    /// Notes the schema version and the ledger's own tables (two small reads,
    /// so a migration that changes no schema costs almost nothing).
    pub(crate) fn start(conn: &Connection) -> Result<Watch> {
        Watch::start_knowing(conn, None)
    }

    /// The same, given the schema cookie and own tables that a committed
    /// step left: while the cookie is still that one, so is the schema
    /// (see the migrator's `SchemaMemo`), and the tables are not read again.
    pub(crate) fn start_knowing(conn: &Connection, known: Option<(i64, &OwnTables)>) -> Result<Watch> {
        let schema_version = ledger::schema_version(conn)?;
        let own_tables = match known {
            Some((cookie, tables)) if cookie == schema_version => tables.clone(),
            _ => own_tables(conn)?,
        };
        Ok(Watch { schema_version, own_tables })
    }

    /// The schema cookie noted at the start.
    pub(crate) fn schema_version(&self) -> i64 {
        self.schema_version
    }

    /// Everything wrong with the schema after the migration, or nothing when
    /// it did not change the schema. When it did, the whole schema is checked
    /// (not only new objects: a new table or view can change what an old
    /// trigger compiles to), and the ledger's own tables must be exactly as
    /// before: one created by the migration (an audit table made before the
    /// host made it, say) or one gone (renamed away) is refused.
    ///
    /// Also returns the schema it read, if it read one, for the checks that
    /// follow (see `catalog`).
    pub(crate) fn finish(self, conn: &mut Connection) -> Result<Finished> {
        let cookie = ledger::schema_version(conn)?;
        if cookie == self.schema_version {
            return Ok(Finished { found: Vec::new(), catalog: None, cookie, own_tables: self.own_tables });
        }
        let mut found = Vec::new();
        let catalog = Catalog::read(conn)?;
        let now = own_tables_in(&catalog);
        for (name, sql) in &now {
            match self.own_tables.get(name) {
                None => found.push(format!(
                    "table {name} was created by the migration (only the host creates ledger tables)"
                )),
                Some(before) if before != sql => found.push(format!(
                    "table {name} was altered by the migration (only the host alters the ledger)"
                )),
                Some(_) => {}
            }
        }
        for name in self.own_tables.keys().filter(|n| !now.contains_key(*n)) {
            found.push(format!("table {name} was renamed or dropped by the migration"));
        }
        found.extend(violations_in(conn, &catalog)?);
        Ok(Finished { found, catalog: Some(catalog), cookie, own_tables: now })
    }
}

/// What [`Watch::finish`] found.
#[derive(Debug)]
pub(crate) struct Finished {
    /// One line per offending object; empty when the schema is fine.
    pub(crate) found: Vec<String>,
    /// The schema after the migration, when it changed.
    pub(crate) catalog: Option<Catalog>,
    /// The schema cookie after the migration.
    pub(crate) cookie: i64,
    /// The ledger's own tables after it.
    pub(crate) own_tables: OwnTables,
}

/// The ledger's own tables (by lower-cased name) with their stored SQL, as
/// `catalog` lists them.
fn own_tables_in(catalog: &Catalog) -> OwnTables {
    catalog
        .objects
        .iter()
        .filter(|o| o.kind == "table" && is_own_table(&o.name))
        .map(|o| (o.name.to_ascii_lowercase(), o.sql.clone()))
        .collect()
}

/// The same read from `conn` (before a migration: a query for two rows).
fn own_tables(conn: &Connection) -> Result<OwnTables> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT name, sql FROM main.sqlite_schema WHERE type = 'table' AND lower(name) IN (?1, ?2)",
        )
        .map_err(Error::sqlite("reading the ledger's tables"))?;
    stmt.query_map([ledger::TABLE, ledger::AUDIT_TABLE], |r| {
        Ok((r.get::<_, String>(0)?.to_ascii_lowercase(), r.get::<_, Option<String>>(1)?))
    })
    .and_then(|rows| rows.collect())
    .map_err(Error::sqlite("reading the ledger's tables"))
}

/// One access to a ledger table that SQLite reported while compiling.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Access {
    verb: &'static str,
    table: String,
    accessor: Option<String>,
}

/// What the recording authorizer saw while one statement was prepared.
#[derive(Debug, Default)]
struct Seen {
    /// Every trigger or view (or CTE) whose code SQLite compiled.
    accessors: BTreeSet<String>,
    /// Accesses to ledger tables.
    ledger: BTreeSet<Access>,
}

/// Every object in the main schema that can reach the ledger, one line each
/// naming it and saying why; empty when there is none. Reads only: it
/// prepares statements but never steps one. The connection's authorizer is
/// cleared afterwards (the migrator calls this after the SQL gate has been
/// removed, when no authorizer is installed).
pub fn violations(conn: &mut Connection) -> Result<Vec<String>> {
    let catalog = Catalog::read(conn)?;
    violations_in(conn, &catalog)
}

/// [`violations`] of the schema `catalog` (just read from `conn`).
fn violations_in(conn: &mut Connection, catalog: &Catalog) -> Result<Vec<String>> {
    let objects = &catalog.objects;
    let mut found = Vec::new();
    // Triggers to verify, grouped by the table or view they are on.
    let mut triggers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut views = Vec::new();
    for o in objects {
        if is_ledger_name(&o.name) && !(o.kind == "table" && is_own_table(&o.name)) {
            found.push(format!(
                "{} {} takes a name reserved for the ledger ({}*)",
                o.kind,
                o.name,
                ledger::TABLE
            ));
            continue;
        }
        match o.kind.as_str() {
            // An automatic index (UNIQUE or PRIMARY KEY) has no SQL; it
            // belongs to the table's own definition.
            "index" if is_ledger_name(&o.table) && !(is_own_table(&o.table) && o.sql.is_none()) => {
                found.push(format!("index {} on {} (only the host indexes the ledger)", o.name, o.table))
            }
            "trigger" if is_ledger_name(&o.table) => {
                found.push(format!("trigger {} on {} (triggers on the ledger are refused)", o.name, o.table))
            }
            "trigger" => triggers.entry(o.table.to_ascii_lowercase()).or_default().push(o.name.clone()),
            "view" => views.push(o.name.clone()),
            _ => {}
        }
    }
    found.extend(foreign_keys(conn, objects)?);
    if triggers.is_empty() && views.is_empty() {
        return Ok(found);
    }
    let view_names: BTreeSet<String> = views.iter().map(|v| v.to_ascii_lowercase()).collect();
    let seen = Arc::new(Mutex::new(Seen::default()));
    install_recorder(conn, seen.clone())?;
    let probed = probe_all(conn, &seen, objects, &triggers, &views, &view_names);
    // Cleared whatever happened: the host's own statements that follow (the
    // ledger row, COMMIT) must run with no authorizer.
    let cleared = conn
        .authorizer(None::<fn(AuthContext<'_>) -> Authorization>)
        .map_err(Error::sqlite("removing the ledger guard's authorizer"));
    found.extend(probed?);
    cleared?;
    Ok(found)
}

/// Foreign keys to a ledger table (deleting or updating ledger rows would
/// then be blocked or cascade), and foreign keys of the ledger's own tables
/// (application deletes would cascade into the ledger). ledger.rs declares
/// none.
fn foreign_keys(conn: &Connection, objects: &[Object]) -> Result<Vec<String>> {
    let mut found = Vec::new();
    for o in objects.iter().filter(|o| o.kind == "table" && !o.is_virtual_table()) {
        // (A virtual table's columns and keys come from its module, and no
        // module declares foreign keys.)
        let Some(sql) = o.sql.as_deref() else { continue };
        for parent in table_facts::parents(conn, &o.name, sql)? {
            let child = &o.name;
            if is_ledger_name(&parent) {
                found.push(format!(
                    "table {child} has a foreign key to {parent} (nothing may reference the ledger)"
                ));
            } else if is_own_table(child) {
                found.push(format!(
                    "table {child} has a foreign key to {parent} (the ledger references nothing)"
                ));
            }
        }
    }
    Ok(found)
}

fn install_recorder(conn: &mut Connection, seen: Arc<Mutex<Seen>>) -> Result<()> {
    conn.authorizer(Some(move |ctx: AuthContext<'_>| {
        if let Ok(mut seen) = seen.lock() {
            if let Some(a) = ctx.accessor {
                seen.accessors.insert(a.to_ascii_lowercase());
            }
            let hit = match ctx.action {
                AuthAction::Read { table_name, .. } => Some(("reads", table_name)),
                AuthAction::Insert { table_name } => Some(("inserts into", table_name)),
                AuthAction::Update { table_name, .. } => Some(("updates", table_name)),
                AuthAction::Delete { table_name } => Some(("deletes from", table_name)),
                _ => None,
            };
            if let Some((verb, table)) = hit
                && is_ledger_name(table)
            {
                seen.ledger.insert(Access {
                    verb,
                    table: table.to_owned(),
                    accessor: ctx.accessor.map(str::to_owned),
                });
            }
        }
        // Recording only: the statements are prepared and dropped unrun.
        Authorization::Allow
    }))
    .map_err(Error::sqlite("installing the ledger guard's authorizer"))
}

/// `name` as an SQL identifier.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Prepares `sql` with an empty record, and returns what SQLite reported
/// (or the error that stopped it compiling).
fn prepare_recorded(conn: &Connection, seen: &Mutex<Seen>, sql: &str) -> std::result::Result<Seen, String> {
    let reset = || seen.lock().map(|mut s| std::mem::take(&mut *s)).unwrap_or_default();
    reset();
    let prepared = conn.prepare(sql).map(drop).map_err(|e| e.to_string());
    let record = reset();
    prepared.map(|()| record)
}

fn probe_all(
    conn: &Connection,
    seen: &Mutex<Seen>,
    objects: &[Object],
    triggers: &BTreeMap<String, Vec<String>>,
    views: &[String],
    view_names: &BTreeSet<String>,
) -> Result<Vec<String>> {
    let mut found = Vec::new();
    // Which trigger (lower-cased name) is on which table, for naming.
    let trigger_table: BTreeMap<String, &str> = objects
        .iter()
        .filter(|o| o.kind == "trigger")
        .map(|o| (o.name.to_ascii_lowercase(), o.table.as_str()))
        .collect();
    for view in views {
        match prepare_recorded(conn, seen, &format!("SELECT * FROM main.{}", quoted(view))) {
            Ok(record) => found.extend(record.ledger.iter().map(|a| {
                // A view reading another view that reads the ledger: say which.
                let through = match &a.accessor {
                    Some(acc) if !acc.eq_ignore_ascii_case(view) => format!(" (through {acc})"),
                    _ => String::new(),
                };
                format!("view {view} {} {}{through}", a.verb, a.table)
            })),
            Err(e) => found.push(format!("view {view} could not be verified: SQLite cannot compile it: {e}")),
        }
    }
    for (table, names) in triggers {
        let Some(target) = objects.iter().find(|o| o.kind != "trigger" && o.name.eq_ignore_ascii_case(table))
        else {
            // SQLite drops a table's triggers with it, so this cannot happen;
            // if it did, nothing fires them.
            continue;
        };
        let is_view = target.kind == "view";
        let mut accessors = BTreeSet::new();
        let mut errors = Vec::new();
        for sql in firing_statements(conn, &target.name, is_view)? {
            match prepare_recorded(conn, seen, &sql) {
                Ok(record) => {
                    for a in &record.ledger {
                        let subject = match &a.accessor {
                            Some(acc) => match trigger_table.get(&acc.to_ascii_lowercase()) {
                                Some(t) => format!("trigger {acc} on {t}"),
                                None if view_names.contains(&acc.to_ascii_lowercase()) => {
                                    format!("view {acc}")
                                }
                                None => format!("a trigger on {} (in {acc})", target.name),
                            },
                            None => format!("statements on {}", target.name),
                        };
                        found.push(format!("{subject} {} {}", a.verb, a.table));
                    }
                    accessors.extend(record.accessors);
                }
                Err(e) => errors.push(format!("{sql}: {e}")),
            }
        }
        for name in names {
            let key = name.to_ascii_lowercase();
            if view_names.contains(&key) {
                // The authorizer names code by trigger or view name only, so
                // the two could not be told apart.
                found.push(format!(
                    "trigger {name} on {} could not be verified: a view has the same name",
                    target.name
                ));
            } else if !accessors.contains(&key) {
                let why = if errors.is_empty() {
                    format!("no INSERT, UPDATE (of every column) or DELETE on {} fires it", target.name)
                } else {
                    format!("SQLite cannot compile the statements that fire it: {}", errors.join("; "))
                };
                found.push(format!("trigger {name} on {} could not be verified: {why}", target.name));
            }
        }
    }
    found.sort();
    found.dedup();
    Ok(found)
}

/// Statements that fire every trigger on `table` (a table or a view): an
/// INSERT, an UPDATE setting every ordinary column (generated columns cannot
/// be set, and `UPDATE OF` one never fires) plus each rowid alias a trigger
/// could name, and a DELETE. A view without an INSTEAD OF trigger for one
/// of them fails to compile it; that only matters when a trigger is left
/// that no statement fired.
fn firing_statements(conn: &Connection, table: &str, is_view: bool) -> Result<Vec<String>> {
    let q = quoted(table);
    let mut columns: Vec<String> = {
        let mut stmt = conn
            .prepare("SELECT name FROM pragma_table_xinfo(?1, 'main') WHERE hidden = 0")
            .map_err(Error::sqlite(format!("reading the columns of {table}")))?;
        stmt.query_map([table], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(Error::sqlite(format!("reading the columns of {table}")))?
    };
    let without_rowid = !is_view
        && conn
            .query_row("SELECT wr FROM pragma_table_list(?1) WHERE schema = 'main'", [table], |r| {
                r.get::<_, bool>(0)
            })
            .optional()
            .map_err(Error::sqlite(format!("reading the table list for {table}")))?
            .unwrap_or(false);
    if !is_view && !without_rowid {
        // `UPDATE OF rowid` (or oid, _rowid_) fires only when that very
        // name is set, and none of them is a column the xinfo lists unless
        // the table declares it.
        for alias in ["rowid", "oid", "_rowid_"] {
            if !columns.iter().any(|c| c.eq_ignore_ascii_case(alias)) {
                columns.push(alias.to_owned());
            }
        }
    }
    let mut out = vec![format!("INSERT INTO main.{q} DEFAULT VALUES")];
    if !columns.is_empty() {
        let set: Vec<String> = columns.iter().map(|c| format!("{0} = {0}", quoted(c))).collect();
        out.push(format!("UPDATE main.{q} SET {}", set.join(", ")));
    }
    out.push(format!("DELETE FROM main.{q}"));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database with the ledger (and its audit table) as ledger.rs makes
    /// them, one recorded row, and an application table.
    fn db() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        ledger::ensure(&conn).unwrap();
        conn.execute_batch(
            "INSERT INTO schema_migrations (id, name, applied_at) VALUES (1, 'baseline', '2026-01-01T00:00:00Z');
             CREATE TABLE images (id INTEGER PRIMARY KEY, title TEXT NOT NULL, size INTEGER);
             INSERT INTO images (title, size) VALUES ('a', 1);",
        )
        .unwrap();
        ledger::accept_change(&conn, 1, None, "ab", "test").unwrap();
        conn
    }

    fn check(conn: &mut Connection, sql: &str) -> Vec<String> {
        conn.execute_batch(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        violations(conn).unwrap()
    }

    /// Asserts `sql` leaves exactly one violation containing every needle.
    fn refused(sql: &str, needles: &[&str]) {
        let mut conn = db();
        let found = check(&mut conn, sql);
        assert_eq!(found.len(), 1, "{sql}: {found:?}");
        for n in needles {
            assert!(found[0].contains(n), "{sql}: expected {n:?} in {found:?}");
        }
    }

    #[test]
    fn ledger_names_match_case_insensitively_and_never_panic() {
        assert!(is_ledger_name("schema_migrations"));
        assert!(is_ledger_name("Schema_Migrations_x"));
        assert!(!is_ledger_name("schema_migration"));
        assert!(!is_ledger_name("app_schema_migrations"));
        // A multi-byte character across the prefix boundary.
        assert!(!is_ledger_name("schema_migrationé"));
        assert!(!is_ledger_name("schema_migratioéé"));
    }

    #[test]
    fn the_ledgers_own_schema_passes() {
        let mut conn = db();
        assert_eq!(violations(&mut conn).unwrap(), Vec::<String>::new());
        // An adopted ledger with a text key has an automatic index: its own.
        let mut conn = Connection::open_in_memory().unwrap();
        let found = check(
            &mut conn,
            "CREATE TABLE schema_migrations (id INTEGER NOT NULL UNIQUE, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
        );
        assert_eq!(found, Vec::<String>::new());
    }

    #[test]
    fn the_index_bomb_is_real_and_refused() {
        // What the attack does without the guard: the next ledger row fails.
        let conn = db();
        conn.execute_batch(
            "CREATE INDEX ledger_bomb ON schema_migrations (CASE WHEN id > 1 THEN json('{') END)",
        )
        .unwrap();
        let row = ledger::LedgerRow {
            id: 2,
            name: "security_fix".into(),
            applied_at: ledger::now_rfc3339(),
            checksum: None,
            duration_ms: None,
            signers: None,
            world: None,
            host_version: None,
            schema_sha256: None,
            release: None,
        };
        let err = ledger::record(&conn, &row, None).unwrap_err().to_string();
        assert!(err.contains("malformed JSON"), "{err}");
        refused(
            "CREATE INDEX ledger_bomb ON schema_migrations (CASE WHEN id > 1 THEN json('{') END)",
            &["index ledger_bomb on schema_migrations", "only the host indexes the ledger"],
        );
    }

    #[test]
    fn partial_and_plain_indexes_on_the_ledger_are_refused() {
        refused(
            "CREATE UNIQUE INDEX one_more ON schema_migrations (applied_at) WHERE id > 0",
            &["index one_more on schema_migrations"],
        );
        refused(
            "CREATE INDEX audit_at ON schema_migrations_audit (at)",
            &["index audit_at on schema_migrations_audit"],
        );
    }

    #[test]
    fn triggers_on_the_ledger_are_refused() {
        refused(
            "CREATE TRIGGER hide AFTER INSERT ON schema_migrations BEGIN DELETE FROM images; END",
            &["trigger hide on schema_migrations", "triggers on the ledger are refused"],
        );
    }

    #[test]
    fn triggers_writing_the_ledger_are_refused_naming_them() {
        refused(
            "CREATE TRIGGER audit_forge AFTER UPDATE ON images BEGIN
                INSERT INTO schema_migrations (id, name, applied_at) VALUES (9000, 'security_fix', 'now');
             END",
            &["trigger audit_forge on images inserts into schema_migrations"],
        );
        refused(
            "CREATE TRIGGER un_apply AFTER DELETE ON images BEGIN DELETE FROM schema_migrations; END",
            &["trigger un_apply on images deletes from schema_migrations"],
        );
        refused(
            "CREATE TRIGGER redigest BEFORE INSERT ON images BEGIN
                UPDATE schema_migrations SET checksum = NULL;
             END",
            &["trigger redigest on images updates schema_migrations"],
        );
        refused(
            "CREATE TRIGGER audit_too AFTER INSERT ON images BEGIN
                INSERT INTO schema_migrations_audit VALUES ('', 1, '', NULL, NULL, '', '');
             END",
            &["trigger audit_too on images inserts into schema_migrations_audit"],
        );
    }

    #[test]
    fn update_of_one_column_or_the_rowid_is_still_fired() {
        refused(
            "CREATE TRIGGER only_size AFTER UPDATE OF size ON images BEGIN
                DELETE FROM schema_migrations;
             END",
            &["trigger only_size on images deletes from schema_migrations"],
        );
        refused(
            "CREATE TRIGGER only_oid AFTER UPDATE OF oid ON images BEGIN DELETE FROM schema_migrations; END",
            &["trigger only_oid on images deletes from schema_migrations"],
        );
    }

    #[test]
    fn reading_the_ledger_in_a_when_clause_is_refused() {
        refused(
            "CREATE TABLE log (x);
             CREATE TRIGGER peek AFTER UPDATE ON images
               WHEN (SELECT count(*) FROM schema_migrations) > 0
             BEGIN INSERT INTO log VALUES (1); END",
            &["trigger peek on images reads schema_migrations"],
        );
    }

    #[test]
    fn a_trigger_reaching_the_ledger_through_a_view_or_another_trigger_is_refused() {
        let mut conn = db();
        let found = check(
            &mut conn,
            "CREATE VIEW applied AS SELECT name FROM schema_migrations;
             CREATE TABLE log (x);
             CREATE TRIGGER copy AFTER INSERT ON images BEGIN INSERT INTO log SELECT name FROM applied; END;
             CREATE TRIGGER chain AFTER UPDATE ON log BEGIN DELETE FROM schema_migrations; END;
             CREATE TRIGGER relay AFTER DELETE ON images BEGIN UPDATE log SET x = 1; END;",
        );
        let all = found.join("\n");
        assert!(all.contains("view applied reads schema_migrations"), "{all}");
        assert!(all.contains("trigger chain on log deletes from schema_migrations"), "{all}");
        assert!(!all.contains("could not be verified"), "{all}");
    }

    #[test]
    fn a_view_reading_the_ledger_is_refused() {
        refused(
            "CREATE VIEW applied AS SELECT name FROM schema_migrations",
            &["view applied reads schema_migrations"],
        );
        // Even when it reads no column of it.
        refused(
            "CREATE VIEW migrated AS SELECT EXISTS (SELECT 1 FROM schema_migrations) AS yes",
            &["view migrated reads schema_migrations"],
        );
        refused(
            "CREATE VIEW n AS SELECT count(*) FROM schema_migrations",
            &["view n reads schema_migrations"],
        );
    }

    #[test]
    fn an_instead_of_trigger_writing_the_ledger_is_refused() {
        refused(
            "CREATE VIEW image_titles AS SELECT id, title FROM images;
             CREATE TRIGGER forge INSTEAD OF UPDATE ON image_titles BEGIN
                INSERT INTO schema_migrations (id, name, applied_at) VALUES (new.id, new.title, 'now');
             END",
            &["trigger forge on image_titles inserts into schema_migrations"],
        );
    }

    #[test]
    fn foreign_keys_to_the_ledger_are_refused() {
        refused(
            "CREATE TABLE pins (m INTEGER REFERENCES schema_migrations (id) ON DELETE CASCADE)",
            &["table pins has a foreign key to schema_migrations"],
        );
    }

    #[test]
    fn ledger_names_are_reserved_created_or_renamed() {
        refused(
            "CREATE TABLE schema_migrations_x (id)",
            &["table schema_migrations_x takes a name reserved"],
        );
        refused(
            "CREATE TABLE shadow (id); ALTER TABLE shadow RENAME TO Schema_Migrations_X",
            &["table Schema_Migrations_X takes a name reserved"],
        );
        refused(
            "CREATE VIEW schema_migrations_v AS SELECT 1",
            &["view schema_migrations_v takes a name reserved"],
        );
    }

    #[test]
    fn a_dormant_or_broken_trigger_is_refused_as_unverified() {
        refused(
            "CREATE TRIGGER dormant AFTER UPDATE OF ghost ON images BEGIN DELETE FROM schema_migrations; END",
            &["trigger dormant on images could not be verified", "fires it"],
        );
        refused(
            "CREATE TABLE gone (x);
             CREATE TRIGGER broken AFTER INSERT ON images BEGIN INSERT INTO gone VALUES (1); END;
             DROP TABLE gone;",
            &["trigger broken on images could not be verified", "no such table"],
        );
    }

    #[test]
    fn ordinary_schemas_pass_and_nothing_runs() {
        let mut conn = db();
        let found = check(
            &mut conn,
            "CREATE TABLE authors (id INTEGER PRIMARY KEY, name TEXT UNIQUE, born TEXT CHECK (born > '1900'));
             CREATE TABLE books (
                id INTEGER PRIMARY KEY,
                author INTEGER REFERENCES authors (id) ON DELETE CASCADE,
                title TEXT NOT NULL,
                slug TEXT GENERATED ALWAYS AS (lower(title)) VIRTUAL
             );
             CREATE TABLE tags (book INTEGER, tag TEXT, PRIMARY KEY (book, tag)) WITHOUT ROWID;
             CREATE TABLE log (at TEXT DEFAULT CURRENT_TIMESTAMP, what TEXT);
             CREATE INDEX books_title ON books (title);
             CREATE INDEX books_lower ON books (lower(title)) WHERE title IS NOT NULL;
             CREATE VIEW catalogue AS
                SELECT b.title, a.name FROM books b JOIN authors a ON a.id = b.author;
             CREATE VIEW counts AS WITH c AS (SELECT author, count(*) n FROM books GROUP BY author) SELECT * FROM c;
             CREATE TRIGGER books_in AFTER INSERT ON books BEGIN INSERT INTO log (what) VALUES ('in ' || new.title); END;
             CREATE TRIGGER books_up AFTER UPDATE OF title ON books WHEN old.title <> new.title
               BEGIN INSERT INTO log (what) SELECT name FROM catalogue LIMIT 1; END;
             CREATE TRIGGER books_rm BEFORE DELETE ON books BEGIN DELETE FROM tags WHERE book = old.id; END;
             CREATE TRIGGER tags_in AFTER INSERT ON tags BEGIN UPDATE books SET title = title WHERE id = new.book; END;
             CREATE TRIGGER cat_in INSTEAD OF INSERT ON catalogue BEGIN INSERT INTO books (title) VALUES (new.title); END;",
        );
        assert_eq!(found, Vec::<String>::new());
        // Thirty more tables, each indexed, viewed and triggered: still clean.
        for i in 0..30 {
            conn.execute_batch(&format!(
                "CREATE TABLE t{i} (id INTEGER PRIMARY KEY, v TEXT, b INTEGER REFERENCES books (id));
                 CREATE INDEX t{i}_v ON t{i} (v);
                 CREATE VIEW v{i} AS SELECT v FROM t{i} WHERE v IS NOT NULL;
                 CREATE TRIGGER t{i}_log AFTER UPDATE ON t{i} BEGIN INSERT INTO log (what) VALUES (new.v); END;"
            ))
            .unwrap();
        }
        assert_eq!(violations(&mut conn).unwrap(), Vec::<String>::new());
        // The firing statements were prepared, never run.
        let log: i64 = conn.query_row("SELECT count(*) FROM log", [], |r| r.get(0)).unwrap();
        assert_eq!(log, 0);
    }

    #[test]
    fn several_offences_are_all_listed() {
        let mut conn = db();
        let found = check(
            &mut conn,
            "CREATE VIEW applied AS SELECT name FROM schema_migrations;
             CREATE INDEX bomb ON schema_migrations (name);
             CREATE TABLE schema_migrations_x (id);",
        );
        assert_eq!(found.len(), 3, "{found:?}");
    }

    #[test]
    fn the_watch_checks_only_after_schema_changes_and_guards_the_ledgers_own_tables() {
        let mut conn = db();
        conn.execute_batch("BEGIN").unwrap();
        // A migration changing only rows costs no check at all.
        let watch = Watch::start(&conn).unwrap();
        conn.execute_batch("UPDATE images SET size = 2").unwrap();
        let finished = watch.finish(&mut conn).unwrap();
        assert_eq!(finished.found, Vec::<String>::new());
        assert!(finished.catalog.is_none(), "the schema was not read");
        conn.execute_batch("ROLLBACK").unwrap();

        // A migration creating the audit table before the host does.
        let mut conn = Connection::open_in_memory().unwrap();
        ledger::ensure(&conn).unwrap();
        let watch = Watch::start(&conn).unwrap();
        conn.execute_batch("CREATE TABLE schema_migrations_audit (at, id, action, reason, host_version)")
            .unwrap();
        let found = watch.finish(&mut conn).unwrap().found;
        assert_eq!(
            found,
            vec![
                "table schema_migrations_audit was created by the migration (only the host creates ledger tables)"
            ]
        );

        // A migration renaming the ledger away (the gate refuses this; the
        // guard would too).
        let mut conn = db();
        let watch = Watch::start(&conn).unwrap();
        conn.execute_batch("ALTER TABLE schema_migrations_audit RENAME TO old_audit").unwrap();
        let found = watch.finish(&mut conn).unwrap().found;
        assert_eq!(found, vec!["table schema_migrations_audit was renamed or dropped by the migration"]);
    }
}
