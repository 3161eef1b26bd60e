//! Appends one row to `apply_log`: if a migration ever ran twice, the log
//! would show it. Used by the concurrency and crash tests.

use wasmig_guest::{Result, exec};

fn up() -> Result<()> {
    exec("CREATE TABLE IF NOT EXISTS apply_log (n INTEGER)", &[])?;
    exec("INSERT INTO apply_log (n) VALUES (1)", &[])?;
    Ok(())
}

wasmig_guest::migration!(up);
