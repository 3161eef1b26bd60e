//! Faulty on purpose: tries to reach a second database file through ATTACH.
//! The gate must refuse it and no file may be created.

use wasmig_guest::{Result, exec};

fn up() -> Result<()> {
    exec("ATTACH DATABASE 'attached-by-guest.db' AS other", &[])?;
    exec("CREATE TABLE other.stolen (secret TEXT)", &[])?;
    Ok(())
}

wasmig_guest::migration!(up);
