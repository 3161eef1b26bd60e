//! Faulty on purpose (SQL gate). Detaches a database. Must be denied.

use wasmig_guest::{Result, exec};

fn up() -> Result<()> {
    exec("CREATE TABLE gate_scratch (x)", &[])?;
    exec("INSERT INTO gate_scratch (x) VALUES (1)", &[])?;
    exec("DETACH DATABASE main", &[])?;
    Ok(())
}

wasmig_guest::migration!(up);
