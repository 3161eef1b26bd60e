//! Faulty on purpose (SQL gate). Plants a temporary trigger that would outlive the migration on the connection. Must be denied.

use wasmig_guest::{Result, exec};

fn up() -> Result<()> {
    exec("CREATE TABLE gate_scratch (x)", &[])?;
    exec("INSERT INTO gate_scratch (x) VALUES (1)", &[])?;
    exec("CREATE TEMP TRIGGER spy AFTER INSERT ON gate_scratch BEGIN SELECT 1; END", &[])?;
    Ok(())
}

wasmig_guest::migration!(up);
