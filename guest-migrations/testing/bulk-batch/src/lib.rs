//! The same 100,000 parameterised inserts as `testing-bulk-insert`, sent to
//! the host through a [`Batch`] (1024 runs per `exec-many` call)
//! instead of one `exec` each. Tests check the two end identical; the
//! benchmark compares their cost.

use wasmig_guest::{Batch, Result, exec, row};

/// Rows inserted.
pub const ROWS: i64 = 100_000;

fn up() -> Result<()> {
    exec("CREATE TABLE bulk (id INTEGER PRIMARY KEY, label TEXT NOT NULL)", &[])?;
    let mut batch = Batch::new("INSERT INTO bulk (id, label) VALUES (?1, ?2)");
    for i in 0..ROWS {
        batch.push(row![i, format!("row {i}")])?;
    }
    let inserted = batch.finish()?;
    if inserted != ROWS as u64 {
        return Err(format!("inserted {inserted} rows, expected {ROWS}").into());
    }
    Ok(())
}

wasmig_guest::migration!(up);
