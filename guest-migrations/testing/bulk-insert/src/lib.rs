//! A long migration: 100,000 parameterised inserts through `exec`, so a
//! process killed during apply is likely to die inside it.

use wasmig_guest::{Result, exec, params};

/// Rows inserted.
pub const ROWS: i64 = 100_000;

fn up() -> Result<()> {
    exec("CREATE TABLE bulk (id INTEGER PRIMARY KEY, label TEXT NOT NULL)", &[])?;
    for i in 0..ROWS {
        exec("INSERT INTO bulk (id, label) VALUES (?1, ?2)", params![i, format!("row {i}")])?;
    }
    Ok(())
}

wasmig_guest::migration!(up);
