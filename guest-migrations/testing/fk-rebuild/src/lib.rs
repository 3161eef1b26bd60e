//! Rebuilds `owners` (adding a CHECK) the 12-step way. `pets` references it
//! with ON DELETE CASCADE, so with foreign keys on, the DROP TABLE would
//! silently delete every pet: pack this with `--foreign-keys-off`.

use wasmig_guest::{Result, exec_each};

fn up() -> Result<()> {
    exec_each(&[
        "CREATE TABLE owners_new (id INTEGER PRIMARY KEY, name TEXT NOT NULL CHECK (length(name) > 0))",
        "INSERT INTO owners_new (id, name) SELECT id, name FROM owners",
        "DROP TABLE owners",
        "ALTER TABLE owners_new RENAME TO owners",
    ])?;
    Ok(())
}

wasmig_guest::migration!(up);
