//! Faulty on purpose (SQL gate). Edits sqlite_schema directly. Must be denied.

use wasmig_guest::{Result, exec};

fn up() -> Result<()> {
    exec("CREATE TABLE gate_scratch (x)", &[])?;
    exec("INSERT INTO gate_scratch (x) VALUES (1)", &[])?;
    exec("UPDATE sqlite_schema SET sql = 'CREATE TABLE x (y)' WHERE name = 'gate_scratch'", &[])?;
    Ok(())
}

wasmig_guest::migration!(up);
