//! Faulty on purpose (SQL gate). Erases the ledger. Must be denied.

use wasmig_guest::{Result, exec};

fn up() -> Result<()> {
    exec("CREATE TABLE gate_scratch (x)", &[])?;
    exec("INSERT INTO gate_scratch (x) VALUES (1)", &[])?;
    exec("DELETE FROM schema_migrations", &[])?;
    Ok(())
}

wasmig_guest::migration!(up);
