//! The blast radius of one rehearsed migration: what it created, dropped and
//! changed, how many rows each table had before and after (rows that foreign
//! key cascades removed included, since they are counted, not inferred),
//! rows inserted, updated and deleted per table, and a one-line verdict.
//!
//! Only ever used on the rehearsal copy, so it may scan rows: before and
//! after the migration every application table is counted in one pass
//! (`count(*)` and `count(column)` for each column, so a dropped column's
//! non-null values are known). Row events come from SQLite's update hook,
//! which fires for every row of a rowid table that a statement, trigger or
//! foreign key action inserts, updates or deletes, but not for `WITHOUT
//! ROWID` tables, nor for the rows of a `DELETE` without `WHERE` that SQLite
//! truncates in one step, nor for the rows of a dropped table; the counts
//! before and after are exact whatever the hook saw.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use rusqlite::hooks::Action;

use super::ledger_guard::is_ledger_name;
use super::shape::{Destruction, Shape};
use super::snapshot::{self, SchemaObject};
use crate::error::{Error, Result};

/// Rows of one table around a migration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableRows {
    /// The table (its name after the migration, or before if it is gone).
    pub table: String,
    /// Rows before; `null` when the migration created the table.
    pub rows_before: Option<u64>,
    /// Rows after; `null` when the migration dropped (or renamed) it.
    pub rows_after: Option<u64>,
    /// Rows inserted, as the update hook saw them.
    pub inserted: u64,
    /// Rows updated, as the update hook saw them (a backfill's overwrites).
    pub updated: u64,
    /// Rows deleted, as the update hook saw them (cascades included).
    pub deleted: u64,
}

/// What one migration did, as a rehearsal measured it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BlastRadius {
    /// Objects created: `table t`, `column t.c`, `index i`, `trigger g`, `view v`.
    pub created: Vec<String>,
    /// Objects dropped, named the same way.
    pub dropped: Vec<String>,
    /// Objects whose SQL changed (a rebuilt table, a replaced trigger).
    pub changed: Vec<String>,
    /// Every application table before or after, in name order.
    pub tables: Vec<TableRows>,
    /// Tables and columns dropped or renamed (what `destructive` declares).
    pub destroyed: Vec<Destruction>,
    /// Data lost, one line each (`drops column images.build_size (3,214
    /// non-null values)`, `deletes 4 rows of vms`); empty when none.
    pub losses: Vec<String>,
    /// True when `destroyed` or `losses` is not empty.
    pub destructive: bool,
    /// One line: `destructive: …` (the losses, `; `-separated, then any
    /// renames) or `safe: …`.
    pub verdict: String,
}

/// Rows and non-null values of one table at one moment.
#[derive(Debug, Clone)]
struct Counted {
    rows: u64,
    /// Non-null values by lower-cased column name.
    non_null: BTreeMap<String, u64>,
}

/// Everything measured before a migration runs.
pub(crate) struct Before {
    shape: Shape,
    schema: Vec<SchemaObject>,
    counts: BTreeMap<String, Counted>,
    events: Arc<Mutex<BTreeMap<String, [u64; 3]>>>,
}

/// Counts every table of `shape` in one pass each.
fn count(conn: &Connection, shape: &Shape) -> Result<BTreeMap<String, Counted>> {
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let mut out = BTreeMap::new();
    // A virtual table (listed without columns) is not counted: reading it
    // needs its module.
    for (key, t) in shape.tables.iter().filter(|(_, t)| !t.columns.is_empty()) {
        let cols: Vec<String> = t.columns.iter().map(|c| format!("count({})", q(c))).collect();
        let sql = format!("SELECT count(*), {} FROM main.{}", cols.join(", "), q(&t.name));
        let context = format!("counting the rows of {}", t.name);
        let counted = conn
            .query_row(&sql, [], |r| {
                let rows: i64 = r.get(0)?;
                let mut non_null = BTreeMap::new();
                for (i, c) in t.columns.iter().enumerate() {
                    non_null.insert(c.to_lowercase(), r.get::<_, i64>(i + 1)? as u64);
                }
                Ok(Counted { rows: rows as u64, non_null })
            })
            .map_err(Error::sqlite(context))?;
        out.insert(key.clone(), counted);
    }
    Ok(out)
}

impl Before {
    /// Measures `conn` and starts counting row events (the update hook
    /// stays installed until [`Before::finish`]).
    pub(crate) fn take(conn: &mut Connection) -> Result<Before> {
        let shape = Shape::read(conn)?;
        let counts = count(conn, &shape)?;
        let schema = snapshot::schema(conn)?;
        let events: Arc<Mutex<BTreeMap<String, [u64; 3]>>> = Arc::default();
        let sink = Arc::clone(&events);
        conn.update_hook(Some(move |action: Action, db: &str, table: &str, _rowid: i64| {
            let i = match action {
                Action::SQLITE_INSERT => 0,
                Action::SQLITE_UPDATE => 1,
                Action::SQLITE_DELETE => 2,
                _ => return,
            };
            if db == "main"
                && let Ok(mut m) = sink.lock()
            {
                m.entry(table.to_lowercase()).or_default()[i] += 1;
            }
        }))
        .map_err(Error::sqlite("installing the rehearsal's update hook"))?;
        Ok(Before { shape, schema, counts, events })
    }

    /// Removes the update hook and measures `conn` again: the blast radius.
    pub(crate) fn finish(self, conn: &mut Connection) -> Result<BlastRadius> {
        conn.update_hook(None::<fn(Action, &str, &str, i64)>)
            .map_err(Error::sqlite("removing the rehearsal's update hook"))?;
        let shape = Shape::read(conn)?;
        let counts = count(conn, &shape)?;
        let schema = snapshot::schema(conn)?;
        let events = self.events.lock().map(|m| m.clone()).unwrap_or_default();
        let destroyed = self.shape.destroyed(&shape);
        let (mut created, mut dropped, changed) = objects(&self.schema, &schema);
        for (key, new) in &shape.tables {
            let Some(old) = self.shape.tables.get(key) else { continue };
            let lower = |v: &[String]| v.iter().map(|c| c.to_lowercase()).collect::<BTreeSet<_>>();
            let (was, now) = (lower(&old.columns), lower(&new.columns));
            for c in new.columns.iter().filter(|c| !was.contains(&c.to_lowercase())) {
                created.push(format!("column {}.{c}", new.name));
            }
            for c in old.columns.iter().filter(|c| !now.contains(&c.to_lowercase())) {
                dropped.push(format!("column {}.{c}", old.name));
            }
        }
        created.sort();
        dropped.sort();
        let keys: BTreeSet<&String> = self.shape.tables.keys().chain(shape.tables.keys()).collect();
        let tables: Vec<TableRows> = keys
            .into_iter()
            .map(|k| {
                let [inserted, updated, deleted] = events.get(k).copied().unwrap_or_default();
                let name = shape.tables.get(k).or_else(|| self.shape.tables.get(k)).expect("a key of one");
                TableRows {
                    table: name.name.clone(),
                    rows_before: self.counts.get(k).map(|c| c.rows),
                    rows_after: counts.get(k).map(|c| c.rows),
                    inserted,
                    updated,
                    deleted,
                }
            })
            .collect();
        let losses = self.losses(&destroyed, &tables);
        let renames: Vec<String> = destroyed
            .iter()
            .filter(|d| matches!(d, Destruction::RenameTable { .. } | Destruction::RenameColumn { .. }))
            .map(ToString::to_string)
            .collect();
        let destructive = !losses.is_empty() || !renames.is_empty();
        let verdict = if destructive {
            format!("destructive: {}", losses.iter().chain(&renames).cloned().collect::<Vec<_>>().join("; "))
        } else {
            let updated: u64 = tables.iter().map(|t| t.updated).sum();
            format!("safe: drops and deletes nothing ({} rows updated)", thousands(updated))
        };
        Ok(BlastRadius { created, dropped, changed, tables, destroyed, losses, destructive, verdict })
    }

    /// What data is gone: dropped tables and columns with what they held,
    /// and rows missing from tables that are still there.
    fn losses(&self, destroyed: &[Destruction], tables: &[TableRows]) -> Vec<String> {
        let mut out = Vec::new();
        for d in destroyed {
            match d {
                Destruction::DropTable { table } => {
                    let rows = self.counts.get(&table.to_lowercase()).map_or(0, |c| c.rows);
                    out.push(format!("drops table {table} ({} rows)", thousands(rows)));
                }
                Destruction::DropColumn { table, column } => {
                    let values = self
                        .counts
                        .get(&table.to_lowercase())
                        .and_then(|c| c.non_null.get(&column.to_lowercase()))
                        .copied()
                        .unwrap_or(0);
                    out.push(format!(
                        "drops column {table}.{column} ({} non-null values)",
                        thousands(values)
                    ));
                }
                _ => {}
            }
        }
        for t in tables {
            if let (Some(before), Some(after)) = (t.rows_before, t.rows_after)
                && after < before
            {
                out.push(format!("deletes {} rows of {}", thousands(before - after), t.table));
            }
        }
        out
    }
}

/// Non-automatic objects created, dropped and changed between two schemas,
/// as `kind name`, sorted. The ledger's objects are left out.
fn objects(before: &[SchemaObject], after: &[SchemaObject]) -> (Vec<String>, Vec<String>, Vec<String>) {
    let map = |v: &[SchemaObject]| -> BTreeMap<(String, String), String> {
        v.iter()
            .filter(|o| !o.sql.is_empty() && !is_ledger_name(&o.name) && !is_ledger_name(&o.table))
            .map(|o| ((o.kind.clone(), o.name.to_lowercase()), o.sql.clone()))
            .collect()
    };
    let name = |v: &[SchemaObject], k: &(String, String)| {
        v.iter()
            .find(|o| o.kind == k.0 && o.name.to_lowercase() == k.1)
            .map_or(k.1.clone(), |o| o.name.clone())
    };
    let (b, a) = (map(before), map(after));
    let (mut created, mut dropped, mut changed) = (Vec::new(), Vec::new(), Vec::new());
    for (k, sql) in &a {
        match b.get(k) {
            None => created.push(format!("{} {}", k.0, name(after, k))),
            Some(old) if old != sql => changed.push(format!("{} {}", k.0, name(after, k))),
            Some(_) => {}
        }
    }
    for k in b.keys().filter(|k| !a.contains_key(*k)) {
        dropped.push(format!("{} {}", k.0, name(before, k)));
    }
    (created, dropped, changed)
}

/// `3214` as `3,214`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(3214), "3,214");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }

    #[test]
    fn the_update_hook_sees_cascade_deletes_and_the_counts_see_everything() {
        let mut c = Connection::open_in_memory().unwrap();
        c.execute_batch(
            "PRAGMA foreign_keys = ON;
             CREATE TABLE images (id INTEGER PRIMARY KEY, name TEXT, build_size INTEGER);
             CREATE TABLE vms (id INTEGER PRIMARY KEY, image_id INTEGER REFERENCES images(id) ON DELETE CASCADE);
             INSERT INTO images (name, build_size) VALUES ('a', 3214), ('b', NULL);
             INSERT INTO vms (image_id) VALUES (1), (1), (2);",
        )
        .unwrap();
        let before = Before::take(&mut c).unwrap();
        c.execute_batch(
            "DELETE FROM images WHERE id = 1; UPDATE images SET name = 'B';
             ALTER TABLE images DROP COLUMN build_size; CREATE INDEX vi ON vms (image_id);",
        )
        .unwrap();
        let r = before.finish(&mut c).unwrap();
        let vms = r.tables.iter().find(|t| t.table == "vms").unwrap();
        assert_eq!((vms.rows_before, vms.rows_after, vms.deleted), (Some(3), Some(1), 2), "{r:?}");
        let images = r.tables.iter().find(|t| t.table == "images").unwrap();
        assert_eq!((images.deleted, images.updated), (1, 1), "{r:?}");
        assert_eq!(r.created, ["index vi"]);
        assert_eq!(r.dropped, ["column images.build_size"]);
        assert_eq!(r.changed, ["table images"]);
        assert_eq!(
            r.verdict,
            "destructive: drops column images.build_size (1 non-null values); deletes 1 rows of images; \
             deletes 2 rows of vms"
        );
        // The hook is gone: later writes are not counted anywhere.
        c.execute_batch("INSERT INTO vms (image_id) VALUES (2)").unwrap();
    }
}
