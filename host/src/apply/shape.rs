//! The shape of a database (its tables and their columns) and what a
//! migration destroyed between two shapes: a table or column dropped or
//! renamed.
//!
//! This is the apply-time check behind the `destructive` capability, so it
//! must be cheap on any database: one read of `sqlite_schema`, and
//! `pragma_table_xinfo` only for tables not seen before (`table_facts`),
//! no row scans. Only the net effect of a migration
//! counts, because that is what is committed: a table rebuild (create
//! `t_new`, copy, drop `t`, rename `t_new` to `t`) keeps table `t` and, when
//! the new table has every old column, destroys nothing by this measure
//! (rows it loses along the way are the rehearsal's business, see
//! `rehearse`). Names are compared case-insensitively, as SQLite compares
//! identifiers. SQLite's internal tables (`sqlite_*`) and the ledger's
//! (`schema_migrations*`) are left out: the host owns those.

use std::collections::BTreeMap;

use rusqlite::Connection;

use super::catalog::Catalog;
use super::ledger_guard::is_ledger_name;
use super::table_facts;
use crate::error::Result;

/// One table: its name as stored and its columns in order (hidden and
/// generated columns included, as `table_xinfo` lists them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// The table's name.
    pub name: String,
    /// Its columns, in declaration order.
    pub columns: Vec<String>,
}

/// The application tables of a database, keyed by lower-cased name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shape {
    /// Tables by lower-cased name.
    pub tables: BTreeMap<String, Table>,
}

/// Something a migration destroyed: the data under the old name or column
/// is gone (dropped) or no longer where readers of the old schema look
/// (renamed).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Destruction {
    /// A table was dropped.
    DropTable {
        /// Its name.
        table: String,
    },
    /// A table was renamed (a new table has exactly its columns).
    RenameTable {
        /// The old name.
        from: String,
        /// The new name.
        to: String,
    },
    /// A column was dropped from a table that is still there.
    DropColumn {
        /// The table.
        table: String,
        /// The column.
        column: String,
    },
    /// A column was renamed (as many columns appeared as disappeared; they
    /// are paired in order).
    RenameColumn {
        /// The table.
        table: String,
        /// The old column name.
        from: String,
        /// The new column name.
        to: String,
    },
}

impl std::fmt::Display for Destruction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Destruction::DropTable { table } => write!(f, "drops table {table}"),
            Destruction::RenameTable { from, to } => write!(f, "renames table {from} to {to}"),
            Destruction::DropColumn { table, column } => write!(f, "drops column {table}.{column}"),
            Destruction::RenameColumn { table, from, to } => {
                write!(f, "renames column {table}.{from} to {table}.{to}")
            }
        }
    }
}

impl Shape {
    /// Reads the tables and columns of `conn`'s main database. A virtual
    /// table is listed without columns: asking for them would need its
    /// module, which the connection may lack (its shadow tables are
    /// ordinary tables and are listed in full).
    pub fn read(conn: &Connection) -> Result<Shape> {
        Shape::of(conn, &Catalog::read(conn)?)
    }

    /// The same, from `catalog` (just read from `conn`, which is asked only
    /// for the columns of tables not seen before).
    pub(crate) fn of(conn: &Connection, catalog: &Catalog) -> Result<Shape> {
        let mut tables: BTreeMap<String, Table> = BTreeMap::new();
        let listed = catalog
            .objects
            .iter()
            .filter(|o| o.kind == "table" && !o.is_sqlites_own() && !is_ledger_name(&o.name));
        for o in listed {
            // Columns follow from the stored SQL: only new or altered
            // tables are asked about (see `table_facts`).
            let columns = match &o.sql {
                Some(sql) if !o.is_virtual_table() => table_facts::columns(conn, &o.name, sql)?,
                _ => Vec::new(),
            };
            tables.insert(o.name.to_lowercase(), Table { name: o.name.clone(), columns });
        }
        Ok(Shape { tables })
    }

    /// What going from `self` to `after` destroyed, sorted.
    pub fn destroyed(&self, after: &Shape) -> Vec<Destruction> {
        let mut out = Vec::new();
        let lower = |cols: &[String]| cols.iter().map(|c| c.to_lowercase()).collect::<Vec<_>>();
        let mut created: Vec<&Table> =
            after.tables.iter().filter(|(k, _)| !self.tables.contains_key(*k)).map(|(_, t)| t).collect();
        for (key, old) in &self.tables {
            let Some(new) = after.tables.get(key) else {
                // Gone: renamed when a new table has exactly its columns.
                let cols = lower(&old.columns);
                match created.iter().position(|t| lower(&t.columns) == cols) {
                    Some(i) => {
                        let to = created.remove(i).name.clone();
                        out.push(Destruction::RenameTable { from: old.name.clone(), to });
                    }
                    None => out.push(Destruction::DropTable { table: old.name.clone() }),
                }
                continue;
            };
            let (before_cols, after_cols) = (lower(&old.columns), lower(&new.columns));
            let gone: Vec<&String> = old
                .columns
                .iter()
                .zip(&before_cols)
                .filter(|(_, l)| !after_cols.contains(l))
                .map(|(c, _)| c)
                .collect();
            let came: Vec<&String> = new
                .columns
                .iter()
                .zip(&after_cols)
                .filter(|(_, l)| !before_cols.contains(l))
                .map(|(c, _)| c)
                .collect();
            if !gone.is_empty() && gone.len() == came.len() {
                for (from, to) in gone.into_iter().zip(came) {
                    out.push(Destruction::RenameColumn {
                        table: new.name.clone(),
                        from: from.clone(),
                        to: to.clone(),
                    });
                }
            } else {
                for column in gone {
                    out.push(Destruction::DropColumn { table: old.name.clone(), column: column.clone() });
                }
            }
        }
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn destroyed(setup: &str, change: &str) -> Vec<String> {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(setup).unwrap();
        let before = Shape::read(&c).unwrap();
        c.execute_batch(change).unwrap();
        before.destroyed(&Shape::read(&c).unwrap()).iter().map(ToString::to_string).collect()
    }

    const SETUP: &str = "CREATE TABLE images (id INTEGER PRIMARY KEY, name TEXT, build_size INTEGER);
                         CREATE TABLE vms (id INTEGER PRIMARY KEY, image_id INTEGER);
                         CREATE TABLE schema_migrations (id INTEGER PRIMARY KEY, name TEXT, applied_at TEXT);";

    #[test]
    fn names_drops_and_renames() {
        assert_eq!(destroyed(SETUP, "DROP TABLE vms"), ["drops table vms"]);
        assert_eq!(destroyed(SETUP, "ALTER TABLE vms RENAME TO machines"), ["renames table vms to machines"]);
        assert_eq!(
            destroyed(SETUP, "ALTER TABLE images DROP COLUMN build_size"),
            ["drops column images.build_size"]
        );
        assert_eq!(
            destroyed(SETUP, "ALTER TABLE images RENAME COLUMN build_size TO size"),
            ["renames column images.build_size to images.size"]
        );
        // The ledger and SQLite's own tables are the host's business.
        assert!(destroyed(SETUP, "DROP TABLE schema_migrations").is_empty());
    }

    #[test]
    fn a_virtual_table_is_listed_without_columns_and_its_drop_is_seen() {
        let setup = "CREATE VIRTUAL TABLE docs USING fts5(body)";
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(setup).unwrap();
        let shape = Shape::read(&c).unwrap();
        assert_eq!(shape.tables["docs"].columns, Vec::<String>::new());
        assert!(!shape.tables["docs_data"].columns.is_empty(), "shadow tables are ordinary");
        assert!(destroyed(setup, "DROP TABLE docs").contains(&"drops table docs".to_owned()));
    }

    #[test]
    fn additions_and_rebuilds_destroy_nothing() {
        assert!(
            destroyed(
                SETUP,
                "CREATE TABLE t (x); ALTER TABLE images ADD COLUMN extra; CREATE INDEX i ON vms (image_id)"
            )
            .is_empty()
        );
        let rebuild = "CREATE TABLE images_new (id INTEGER PRIMARY KEY, NAME TEXT NOT NULL, build_size INTEGER, added TEXT);
                       INSERT INTO images_new (id, name, build_size) SELECT id, name, build_size FROM images;
                       DROP TABLE images;
                       ALTER TABLE images_new RENAME TO Images;";
        assert!(destroyed(SETUP, rebuild).is_empty());
        // A rebuild that leaves a column behind drops it.
        let lossy = "CREATE TABLE images_new (id INTEGER PRIMARY KEY, name TEXT);
                     DROP TABLE images;
                     ALTER TABLE images_new RENAME TO images;";
        assert_eq!(destroyed(SETUP, lossy), ["drops column images.build_size"]);
    }
}
