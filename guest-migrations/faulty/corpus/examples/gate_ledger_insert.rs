//! Faulty on purpose (SQL gate). Forges a ledger row. Must be denied.

use wasmig_guest::{Result, exec};

fn up() -> Result<()> {
    exec("CREATE TABLE gate_scratch (x)", &[])?;
    exec("INSERT INTO gate_scratch (x) VALUES (1)", &[])?;
    exec("INSERT INTO schema_migrations (id, name, applied_at) VALUES (999, 'forged', 'now')", &[])?;
    Ok(())
}

wasmig_guest::migration!(up);
