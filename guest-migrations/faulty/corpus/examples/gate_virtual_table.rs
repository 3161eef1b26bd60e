//! Faulty on purpose (SQL gate). Creates a virtual table. Must be denied.

use wasmig_guest::{Result, exec};

fn up() -> Result<()> {
    exec("CREATE TABLE gate_scratch (x)", &[])?;
    exec("INSERT INTO gate_scratch (x) VALUES (1)", &[])?;
    exec("CREATE VIRTUAL TABLE docs USING fts5(body)", &[])?;
    Ok(())
}

wasmig_guest::migration!(up);
