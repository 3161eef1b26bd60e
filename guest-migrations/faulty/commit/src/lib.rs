//! Faulty on purpose: creates a table, then tries to commit it behind the
//! host's back. The gate must refuse the COMMIT; the `?` then fails the
//! migration and the table is rolled back.

use wasmig_guest::{Result, exec};

fn up() -> Result<()> {
    exec("CREATE TABLE commit_scratch (id INTEGER PRIMARY KEY)", &[])?;
    exec("COMMIT", &[])?;
    exec("INSERT INTO commit_scratch (id) VALUES (1)", &[])?;
    Ok(())
}

wasmig_guest::migration!(up);
