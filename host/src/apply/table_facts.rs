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
use std::collections::HashMap;

use rusqlite::Connection;

use crate::error::{Error, Result};

/// Which fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Fact {
    /// Every column `pragma_table_xinfo` lists, in order.
    Columns,
    /// The distinct parent tables of its foreign keys, sorted.
    Parents,
}

/// Bytes of SQL text and answers kept per thread before the memory starts
/// over: a history of thousands of tables fits, and a guest that writes
/// megabyte-long `CREATE TABLE`s cannot make the host hold more than this.
const MAX_BYTES: usize = 4 << 20;

/// The answers, and the bytes they hold.
#[derive(Default)]
struct Known {
    answers: HashMap<(Fact, String), Vec<String>>,
    bytes: usize,
}

thread_local! {
    static KNOWN: RefCell<Known> = RefCell::new(Known::default());
}

/// The columns of ordinary table `name`, whose stored SQL is `sql`.
pub(crate) fn columns(conn: &Connection, name: &str, sql: &str) -> Result<Vec<String>> {
    fact(conn, Fact::Columns, name, sql)
}

/// The tables that table `name` (stored SQL `sql`) has foreign keys to.
pub(crate) fn parents(conn: &Connection, name: &str, sql: &str) -> Result<Vec<String>> {
    fact(conn, Fact::Parents, name, sql)
}

fn fact(conn: &Connection, fact: Fact, name: &str, sql: &str) -> Result<Vec<String>> {
    let key = (fact, sql.to_owned());
    if let Some(known) = KNOWN.with(|k| k.borrow().answers.get(&key).cloned()) {
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
    let mut columns = Vec::new();
    let mut parents = Vec::new();
    for (which, value) in rows {
        if which == 0 { columns.push(value) } else { parents.push(value) }
    }
    parents.sort();
    parents.dedup();
    let wanted = if fact == Fact::Columns { columns.clone() } else { parents.clone() };
    remember((Fact::Columns, sql.to_owned()), columns);
    remember((Fact::Parents, sql.to_owned()), parents);
    Ok(wanted)
}

fn remember(key: (Fact, String), answer: Vec<String>) {
    let bytes = key.1.len() + answer.iter().map(String::len).sum::<usize>();
    if bytes > MAX_BYTES {
        return;
    }
    KNOWN.with(|k| {
        let mut k = k.borrow_mut();
        if k.bytes + bytes > MAX_BYTES {
            *k = Known::default();
        }
        k.bytes += bytes;
        k.answers.insert(key, answer);
    });
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
