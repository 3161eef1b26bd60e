//! Faulty on purpose (SQL gate). Rolls back the host's transaction. Must be denied.

use wasmig_guest::{Result, exec};

fn up() -> Result<()> {
    exec("CREATE TABLE gate_scratch (x)", &[])?;
    exec("INSERT INTO gate_scratch (x) VALUES (1)", &[])?;
    exec("ROLLBACK", &[])?;
    Ok(())
}

wasmig_guest::migration!(up);
