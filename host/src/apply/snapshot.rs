//! Comparable pictures of a database: every schema object and every row.
//!
//! Used to prove "nothing changed" after a failed migration, and to describe
//! what a rehearsed migration changed (its schema diff).

use std::collections::BTreeMap;

use rusqlite::Connection;
use rusqlite::types::Value;

use crate::error::{Error, Result};

/// One row of `sqlite_schema`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SchemaObject {
    /// `table`, `index`, `view` or `trigger`.
    pub kind: String,
    /// Object name.
    pub name: String,
    /// The table it belongs to.
    pub table: String,
    /// Its SQL (empty for automatic indexes).
    pub sql: String,
}

/// Schema and data of a database at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Every schema object, sorted.
    pub schema: Vec<SchemaObject>,
    /// Every table's rows, each row's values rendered as text, rows sorted.
    pub rows: BTreeMap<String, Vec<String>>,
}

fn render(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Integer(i) => i.to_string(),
        Value::Real(r) => format!("{r:?}"),
        Value::Text(t) => format!("'{}'", t.replace('\'', "''")),
        Value::Blob(b) => format!("x'{}'", hex::encode(b)),
    }
}

impl Snapshot {
    /// Reads the schema and all rows of `conn`'s main database.
    pub fn take(conn: &Connection) -> Result<Snapshot> {
        let schema = schema(conn)?;
        let mut rows = BTreeMap::new();
        for obj in schema.iter().filter(|o| o.kind == "table") {
            let sql = format!("SELECT * FROM \"{}\"", obj.name.replace('"', "\"\""));
            let mut stmt = conn.prepare(&sql).map_err(Error::sqlite(format!("reading {}", obj.name)))?;
            let n = stmt.column_count();
            let mut table: Vec<String> = stmt
                .query_map([], |r| {
                    let mut line = String::new();
                    for i in 0..n {
                        if i > 0 {
                            line.push_str(" | ");
                        }
                        line.push_str(&render(&r.get::<_, Value>(i)?));
                    }
                    Ok(line)
                })
                .and_then(|it| it.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(Error::sqlite(format!("reading {}", obj.name)))?;
            table.sort();
            rows.insert(obj.name.clone(), table);
        }
        Ok(Snapshot { schema, rows })
    }

    /// Human-readable differences in schema from `self` to `after`:
    /// `+ kind name: sql`, `- kind name`, `~ kind name: sql`.
    pub fn schema_diff(&self, after: &Snapshot) -> Vec<String> {
        diff_schema(&self.schema, &after.schema)
    }

    /// Tables whose rows differ between `self` and `after`, with counts.
    pub fn row_changes(&self, after: &Snapshot) -> Vec<String> {
        let mut out = Vec::new();
        let names: std::collections::BTreeSet<&String> = self.rows.keys().chain(after.rows.keys()).collect();
        for name in names {
            let (a, b) = (self.rows.get(name), after.rows.get(name));
            match (a, b) {
                (Some(a), Some(b)) if a != b => {
                    out.push(format!("{name}: {} rows before, {} after", a.len(), b.len()))
                }
                (None, Some(b)) => out.push(format!("{name}: created, {} rows", b.len())),
                (Some(a), None) => out.push(format!("{name}: dropped, had {} rows", a.len())),
                _ => {}
            }
        }
        out
    }
}

/// The schema objects of `conn`'s main database, sorted.
pub fn schema(conn: &Connection) -> Result<Vec<SchemaObject>> {
    let mut stmt = conn
        .prepare("SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_schema ORDER BY type, name")
        .map_err(Error::sqlite("reading sqlite_schema"))?;
    stmt.query_map([], |r| {
        Ok(SchemaObject { kind: r.get(0)?, name: r.get(1)?, table: r.get(2)?, sql: r.get(3)? })
    })
    .and_then(|it| it.collect())
    .map_err(Error::sqlite("reading sqlite_schema"))
}

/// Differences between two sorted schema lists.
pub fn diff_schema(before: &[SchemaObject], after: &[SchemaObject]) -> Vec<String> {
    let key = |o: &SchemaObject| (o.kind.clone(), o.name.clone());
    // Automatic indexes (no SQL) follow their table; listing them is noise.
    let b: BTreeMap<_, _> = before.iter().filter(|o| !o.sql.is_empty()).map(|o| (key(o), o)).collect();
    let a: BTreeMap<_, _> = after.iter().filter(|o| !o.sql.is_empty()).map(|o| (key(o), o)).collect();
    let mut out = Vec::new();
    for (k, o) in &a {
        match b.get(k) {
            None => out.push(format!("+ {} {}: {}", o.kind, o.name, one_line(&o.sql))),
            Some(old) if old.sql != o.sql => {
                out.push(format!("~ {} {}: {}", o.kind, o.name, one_line(&o.sql)))
            }
            _ => {}
        }
    }
    for (k, o) in &b {
        if !a.contains_key(k) {
            out.push(format!("- {} {}", o.kind, o.name));
        }
    }
    out
}

fn one_line(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_names_added_changed_and_removed_objects() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE a (x); CREATE TABLE b (y); INSERT INTO a VALUES (1);").unwrap();
        let before = Snapshot::take(&c).unwrap();
        c.execute_batch("ALTER TABLE a ADD COLUMN z; DROP TABLE b; CREATE INDEX ai ON a (x); INSERT INTO a VALUES (2, 'q');").unwrap();
        let after = Snapshot::take(&c).unwrap();
        let diff = before.schema_diff(&after);
        assert_eq!(
            diff,
            vec![
                "+ index ai: CREATE INDEX ai ON a (x)".to_owned(),
                "~ table a: CREATE TABLE a (x, z)".to_owned(),
                "- table b".to_owned(),
            ]
        );
        assert_eq!(before.row_changes(&after), vec!["a: 1 rows before, 2 after", "b: dropped, had 0 rows"]);
        assert_eq!(after.rows["a"], vec!["1 | NULL", "2 | 'q'"]);
        assert_ne!(before, after);
        assert_eq!(after, Snapshot::take(&c).unwrap());
    }
}
