//! Faulty on purpose (SQL gate). Copies the database to another file. Must be denied.

use wasmig_guest::{Result, exec};

fn up() -> Result<()> {
    exec("CREATE TABLE gate_scratch (x)", &[])?;
    exec("INSERT INTO gate_scratch (x) VALUES (1)", &[])?;
    exec("VACUUM INTO 'vacuumed-by-guest.db'", &[])?;
    Ok(())
}

wasmig_guest::migration!(up);
