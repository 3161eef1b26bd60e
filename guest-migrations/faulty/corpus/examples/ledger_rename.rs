//! Faulty on purpose (ledger guard). Renames an application table to a
//! ledger-like name, which the gate would then treat as part of the ledger.
//! The ledger guard must refuse it before COMMIT.

use wasmig_guest::{Result, exec_each};

fn up() -> Result<()> {
    exec_each(&[
        "CREATE TABLE app_shadow (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
        "ALTER TABLE app_shadow RENAME TO schema_migrations_x",
    ])?;
    Ok(())
}

wasmig_guest::migration!(up);
