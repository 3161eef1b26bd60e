//! Faulty on purpose (SQL gate). Reads a PRAGMA outside the allowlist (it would reveal file paths). Must be denied.

use wasmig_guest::{Result, exec};

fn up() -> Result<()> {
    exec("CREATE TABLE gate_scratch (x)", &[])?;
    exec("INSERT INTO gate_scratch (x) VALUES (1)", &[])?;
    exec("PRAGMA database_list", &[])?;
    Ok(())
}

wasmig_guest::migration!(up);
