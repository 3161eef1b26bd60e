//! Faulty on purpose (SQL gate). Tries to make sqlite_schema writable. Must be denied.

use wasmig_guest::{Result, exec};

fn up() -> Result<()> {
    exec("CREATE TABLE gate_scratch (x)", &[])?;
    exec("INSERT INTO gate_scratch (x) VALUES (1)", &[])?;
    exec("PRAGMA writable_schema = ON", &[])?;
    Ok(())
}

wasmig_guest::migration!(up);
