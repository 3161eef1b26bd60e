//! Faulty on purpose (SQL gate). Opens a savepoint of its own. Must be denied.

use wasmig_guest::{Result, exec};

fn up() -> Result<()> {
    exec("CREATE TABLE gate_scratch (x)", &[])?;
    exec("INSERT INTO gate_scratch (x) VALUES (1)", &[])?;
    exec("SAVEPOINT inner_work", &[])?;
    Ok(())
}

wasmig_guest::migration!(up);
