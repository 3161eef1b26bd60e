//! Faulty on purpose (SQL gate). Starts a transaction of its own. Must be denied.

use wasmig_guest::{Result, exec};

fn up() -> Result<()> {
    exec("CREATE TABLE gate_scratch (x)", &[])?;
    exec("INSERT INTO gate_scratch (x) VALUES (1)", &[])?;
    exec("BEGIN", &[])?;
    Ok(())
}

wasmig_guest::migration!(up);
