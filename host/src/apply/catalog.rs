//! The rows of `main.sqlite_schema`, read once after a migration for every
//! check that needs them.
//!
//! The ledger guard, the `destructive` shape and the schema attestation all
//! look at the whole schema after a migration that changed it. Each reading
//! it on its own meant three more scans per step, and since the migration's
//! DDL expires every prepared statement, three more statement compilations
//! too: on a history of small migrations that was a large part of a step,
//! and in a fleet each compilation contends for SQLite's process-wide
//! memory mutex. One read serves them all.

use std::collections::HashMap;

use rusqlite::Connection;

use crate::error::{Error, Result};

/// One row of `sqlite_schema`.
#[derive(Debug, Clone)]
pub(crate) struct Object {
    /// `table`, `index`, `view` or `trigger`.
    pub(crate) kind: String,
    pub(crate) name: String,
    /// The table an index or trigger is on (its own name for a table).
    pub(crate) table: String,
    /// Its SQL; NULL for automatic indexes.
    pub(crate) sql: Option<String>,
}

impl Object {
    /// One of SQLite's own objects (`sqlite_sequence`, `sqlite_stat1`,
    /// automatic indexes): named `sqlite_*`, compared as SQLite's `LIKE`
    /// does, case-insensitively.
    pub(crate) fn is_sqlites_own(&self) -> bool {
        is_sqlites_own_name(&self.name)
    }

    /// A virtual table, whose columns and keys come from its module rather
    /// than from the stored SQL (`LIKE 'CREATE VIRTUAL%'`, as SQLite stores it).
    pub(crate) fn is_virtual_table(&self) -> bool {
        self.kind == "table"
            && self
                .sql
                .as_deref()
                .and_then(|s| s.get(..14))
                .is_some_and(|head| head.eq_ignore_ascii_case("CREATE VIRTUAL"))
    }
}

/// True for a name SQLite keeps for its own objects (see
/// [`Object::is_sqlites_own`]).
pub(crate) fn is_sqlites_own_name(name: &str) -> bool {
    name.as_bytes().get(..7).is_some_and(|p| p.eq_ignore_ascii_case(b"sqlite_"))
}

/// Bytes a [`BySql`] memory holds before it starts over: a history of
/// thousands of objects fits, and a guest that writes megabyte-long
/// `CREATE` statements cannot make the host hold more than this.
const MAX_REMEMBERED: usize = 4 << 20;

/// What the host derived from objects' stored SQL, kept by that text for
/// the next migration or database (each user is a per-thread memory, so no
/// lock). Bounded by [`MAX_REMEMBERED`]: when full it starts over.
pub(crate) struct BySql<V> {
    entries: HashMap<String, V>,
    bytes: usize,
}

impl<V> Default for BySql<V> {
    fn default() -> Self {
        BySql { entries: HashMap::new(), bytes: 0 }
    }
}

impl<V> BySql<V> {
    /// What was kept for `sql`.
    pub(crate) fn get(&self, sql: &str) -> Option<&V> {
        self.entries.get(sql)
    }

    /// Keeps `value` for `sql`; `bytes` is what it holds besides the text.
    /// A value too large for the whole memory is not kept.
    pub(crate) fn insert(&mut self, sql: &str, value: V, bytes: usize) {
        let bytes = sql.len() + bytes;
        if bytes > MAX_REMEMBERED {
            return;
        }
        if self.bytes + bytes > MAX_REMEMBERED {
            *self = BySql::default();
        }
        self.bytes += bytes;
        self.entries.insert(sql.to_owned(), value);
    }
}

/// The main schema, ordered by type, then name.
#[derive(Debug, Clone)]
pub(crate) struct Catalog {
    pub(crate) objects: Vec<Object>,
}

impl Catalog {
    /// Reads every row of `main.sqlite_schema`.
    pub(crate) fn read(conn: &Connection) -> Result<Catalog> {
        let context = || Error::sqlite("reading sqlite_schema");
        let mut stmt = conn
            .prepare_cached("SELECT type, name, tbl_name, sql FROM main.sqlite_schema")
            .map_err(context())?;
        let mut objects: Vec<Object> = stmt
            .query_map([], |r| {
                Ok(Object { kind: r.get(0)?, name: r.get(1)?, table: r.get(2)?, sql: r.get(3)? })
            })
            .and_then(|rows| rows.collect())
            .map_err(context())?;
        // Sorted here rather than by SQLite (whose BINARY collation is the
        // same byte order): one sorter less in the statement.
        objects.sort_by(|a, b| (&a.kind, &a.name).cmp(&(&b.kind, &b.name)));
        Ok(Catalog { objects })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_in_order_and_virtual_tables_told_apart() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE b (x UNIQUE); CREATE INDEX a_i ON b (x); CREATE VIEW v AS SELECT 1;
             create virtual table r using rtree(id, x0, x1);",
        )
        .unwrap();
        let cat = Catalog::read(&c).unwrap();
        let names: Vec<(&str, &str)> =
            cat.objects.iter().map(|o| (o.kind.as_str(), o.name.as_str())).collect();
        assert_eq!(
            names,
            [
                ("index", "a_i"),
                ("index", "sqlite_autoindex_b_1"),
                ("table", "b"),
                ("table", "r"),
                ("table", "r_node"),
                ("table", "r_parent"),
                ("table", "r_rowid"),
                ("view", "v"),
            ]
        );
        let virtual_tables: Vec<&str> =
            cat.objects.iter().filter(|o| o.is_virtual_table()).map(|o| o.name.as_str()).collect();
        assert_eq!(virtual_tables, ["r"]);
        assert!(cat.objects.iter().any(|o| o.name == "sqlite_autoindex_b_1" && o.sql.is_none()));
        let own: Vec<&str> =
            cat.objects.iter().filter(|o| o.is_sqlites_own()).map(|o| o.name.as_str()).collect();
        assert_eq!(own, ["sqlite_autoindex_b_1"]);
    }

    #[test]
    fn the_memory_is_bounded_and_starts_over_when_full() {
        let mut m: BySql<u32> = BySql::default();
        m.insert("CREATE TABLE a (x)", 1, 0);
        assert_eq!(m.get("CREATE TABLE a (x)"), Some(&1));
        // Larger than the whole memory: not kept, the rest stays.
        m.insert("CREATE TABLE b (x)", 2, MAX_REMEMBERED);
        assert_eq!((m.get("CREATE TABLE b (x)"), m.get("CREATE TABLE a (x)")), (None, Some(&1)));
        // Filling it: the next one starts over, and is kept.
        m.insert("CREATE TABLE c (x)", 3, MAX_REMEMBERED - 64);
        assert_eq!(m.get("CREATE TABLE c (x)"), Some(&3));
        m.insert("CREATE TABLE d (x)", 4, 64);
        assert_eq!((m.get("CREATE TABLE d (x)"), m.get("CREATE TABLE c (x)")), (Some(&4), None));
        assert_eq!(m.get("CREATE TABLE a (x)"), None);
    }
}
