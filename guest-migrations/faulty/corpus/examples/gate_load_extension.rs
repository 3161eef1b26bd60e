//! Faulty on purpose (SQL gate). Loads a native extension. Must be denied.

use wasmig_guest::{Result, exec};

fn up() -> Result<()> {
    exec("CREATE TABLE gate_scratch (x)", &[])?;
    exec("INSERT INTO gate_scratch (x) VALUES (1)", &[])?;
    exec("SELECT load_extension('/tmp/evil.so')", &[])?;
    Ok(())
}

wasmig_guest::migration!(up);
