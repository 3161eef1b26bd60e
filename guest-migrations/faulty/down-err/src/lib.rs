//! Applies cleanly; its `down` drops the table and then fails, so the host
//! must roll the revert back and keep both the table and the ledger row.

use wasmig_guest::{Result, exec};

fn up() -> Result<()> {
    exec("CREATE TABLE kept (x INTEGER)", &[])?;
    exec("INSERT INTO kept (x) VALUES (1)", &[])?;
    Ok(())
}

fn down() -> Result<()> {
    exec("DROP TABLE kept", &[])?;
    Err("down refuses: this migration cannot be reverted".into())
}

wasmig_guest::migration!(up, down);
