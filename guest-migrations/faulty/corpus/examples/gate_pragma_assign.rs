//! Faulty on purpose (SQL gate). Turns foreign keys off with a PRAGMA assignment. Must be denied.

use wasmig_guest::{Result, exec};

fn up() -> Result<()> {
    exec("CREATE TABLE gate_scratch (x)", &[])?;
    exec("INSERT INTO gate_scratch (x) VALUES (1)", &[])?;
    exec("PRAGMA foreign_keys = OFF", &[])?;
    Ok(())
}

wasmig_guest::migration!(up);
