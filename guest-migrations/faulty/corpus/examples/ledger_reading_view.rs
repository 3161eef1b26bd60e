//! Faulty on purpose (ledger guard). Leaves a view over the ledger (a view
//! is where an INSTEAD OF trigger or an application query would meet it).
//! The ledger guard must refuse it before COMMIT.

use wasmig_guest::{Result, exec};

fn up() -> Result<()> {
    exec("CREATE VIEW applied_names AS SELECT id, name FROM schema_migrations", &[])?;
    Ok(())
}

wasmig_guest::migration!(up);
