//! What SQLite derives from one table's `CREATE TABLE` text, remembered by
//! that text.
//!
//! The checks that run after every migration that changes the schema (the
//! `destructive` shape, the ledger guard's foreign keys) need each table's
//! columns and foreign keys. Asking SQLite means one `pragma_table_xinfo`
//! or `pragma_foreign_key_list` per table, and each of those prepares a
//! PRAGMA statement: on a long history that is O(tables) statement
//! compilations per migration, most of a step's time, and every one of
//! them takes SQLite's process-wide memory mutex, which fleet applies on
//! several threads then fight over.
//!
//! Both facts are a function of the table's stored SQL alone: SQLite builds
//! its table (name, columns, hidden and generated columns, foreign keys) by
//! parsing the `sql` column of `sqlite_schema`, and every `ALTER TABLE`
//! rewrites that text. So an answer is kept under the exact text and is
//! valid for any table with that text in any database: a migration asks
//! SQLite only about the tables it created or altered, and the next tenant
//! of a fleet asks about none. Virtual tables are never asked about (their
//! columns come from their module, not the text). The memory is per thread
//! (no lock) and bounded.

use std::cell::RefCell;
use std::rc::Rc;

use rusqlite::Connection;

use super::catalog::BySql;
use crate::error::{Error, Result};

/// Both facts of one table.
struct Facts {
    /// Every column `pragma_table_xinfo` lists, in order.
    columns: Vec<String>,
    /// The distinct parent tables of its foreign keys, sorted.
    parents: Vec<String>,
}

thread_local! {
    static KNOWN: RefCell<BySql<Rc<Facts>>> = RefCell::new(BySql::default());
}

/// The columns of ordinary table `name`, whose stored SQL is `sql`.
pub(crate) fn columns(conn: &Connection, name: &str, sql: &str) -> Result<Vec<String>> {
    Ok(facts(conn, name, sql)?.columns.clone())
}

/// The tables that table `name` (stored SQL `sql`) has foreign keys to.
pub(crate) fn parents(conn: &Connection, name: &str, sql: &str) -> Result<Vec<String>> {
    Ok(facts(conn, name, sql)?.parents.clone())
}

fn facts(conn: &Connection, name: &str, sql: &str) -> Result<Rc<Facts>> {
    if let Some(known) = KNOWN.with(|k| k.borrow().get(sql).cloned()) {
        return Ok(known);
    }
    // Both facts in one statement: a table new to this thread is about to
    // be asked for the other one too, and after the migration's DDL every
    // statement is compiled afresh.
    let context = || Error::sqlite(format!("reading the columns and foreign keys of {name}"));
    let mut stmt = conn
        .prepare_cached(
            "SELECT 0, name FROM pragma_table_xinfo(?1, 'main') \
             UNION ALL SELECT 1, \"table\" FROM pragma_foreign_key_list(?1, 'main')",
        )
        .map_err(context())?;
    let rows: Vec<(i64, String)> = stmt
        .query_map([name], |r| Ok((r.get(0)?, r.get(1)?)))
        .and_then(|rows| rows.collect())
        .map_err(context())?;
    let mut facts = Facts { columns: Vec::new(), parents: Vec::new() };
    for (which, value) in rows {
        if which == 0 { facts.columns.push(value) } else { facts.parents.push(value) }
    }
    facts.parents.sort();
    facts.parents.dedup();
    let bytes = facts.columns.iter().chain(&facts.parents).map(String::len).sum();
    let facts = Rc::new(facts);
    KNOWN.with(|k| k.borrow_mut().insert(sql, facts.clone(), bytes));
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_alter_gives_new_text_and_so_a_fresh_answer() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE p (id INTEGER PRIMARY KEY); CREATE TABLE t (a, b REFERENCES p)")
            .unwrap();
        let sql = |c: &Connection| -> String {
            c.query_row("SELECT sql FROM sqlite_schema WHERE name = 't'", [], |r| r.get(0)).unwrap()
        };
        let first = sql(&c);
        assert_eq!(columns(&c, "t", &first).unwrap(), ["a", "b"]);
        assert_eq!(parents(&c, "t", &first).unwrap(), ["p"]);
        for (change, cols) in [
            ("ALTER TABLE t ADD COLUMN c", vec!["a", "b", "c"]),
            ("ALTER TABLE t RENAME COLUMN a TO z", vec!["z", "b", "c"]),
            ("ALTER TABLE t DROP COLUMN c", vec!["z", "b"]),
        ] {
            let before = sql(&c);
            c.execute_batch(change).unwrap();
            let after = sql(&c);
            assert_ne!(before, after, "{change} rewrites the stored SQL");
            assert_eq!(columns(&c, "t", &after).unwrap(), cols, "{change}");
        }
        // The same text in another database: the same table, known already.
        let other = Connection::open_in_memory().unwrap();
        other.execute_batch("CREATE TABLE t (a, b REFERENCES p)").unwrap();
        assert_eq!(sql(&other), first);
        assert_eq!(columns(&other, "t", &first).unwrap(), ["a", "b"]);
        assert_eq!(parents(&other, "t", &first).unwrap(), ["p"]);
    }
}
