//! Faulty on purpose: rebuilds `owners` but forgets owner 1, whose pets still
//! reference it. The host's foreign_key_check before COMMIT must catch this.

use wasmig_guest::{Result, exec_each};

fn up() -> Result<()> {
    exec_each(&[
        "CREATE TABLE owners_new (id INTEGER PRIMARY KEY, name TEXT NOT NULL)",
        "INSERT INTO owners_new (id, name) SELECT id, name FROM owners WHERE id <> 1",
        "DROP TABLE owners",
        "ALTER TABLE owners_new RENAME TO owners",
    ])?;
    Ok(())
}

wasmig_guest::migration!(up);
