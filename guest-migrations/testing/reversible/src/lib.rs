//! A reversible migration: `up` adds a `notes` table with an index and a few
//! rows (sent as one batch), `down` removes exactly that again. Used by the
//! revert and round-trip tests.

use wasmig_guest::{Batch, Result, exec, row};

fn up() -> Result<()> {
    exec("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)", &[])?;
    exec("CREATE INDEX notes_body ON notes (body)", &[])?;
    let mut batch = Batch::new("INSERT INTO notes (id, body) VALUES (?1, ?2)");
    for id in 1..=3 {
        batch.push(row![id, format!("note {id}")])?;
    }
    batch.finish()?;
    Ok(())
}

fn down() -> Result<()> {
    exec("DROP INDEX notes_body", &[])?;
    exec("DROP TABLE notes", &[])?;
    Ok(())
}

wasmig_guest::migration!(up, down);
