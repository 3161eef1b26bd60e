//! Faulty on purpose (SQL gate). Creates a temporary table that could shadow a real one for the application. Must be denied.

use wasmig_guest::{Result, exec};

fn up() -> Result<()> {
    exec("CREATE TABLE gate_scratch (x)", &[])?;
    exec("INSERT INTO gate_scratch (x) VALUES (1)", &[])?;
    exec("CREATE TEMP TABLE shadow (x)", &[])?;
    Ok(())
}

wasmig_guest::migration!(up);
