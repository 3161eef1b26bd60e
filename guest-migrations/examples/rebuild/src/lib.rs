//! Migration 4: a table rebuild, the way SQLite documents for changes ALTER
//! TABLE cannot make (here: a CHECK constraint on `vms.state`).
//!
//! Inside the host's one transaction: create the new table under a temporary
//! name, copy every row, drop the old table, rename the new one into place,
//! recreate its indexes, then verify foreign keys. The host keeps the whole
//! thing atomic; nothing references `vms`, so no child rows are at risk.

use wasmig_guest::{Error, Result, exec, exec_each, query};

fn up() -> Result<()> {
    let before: i64 =
        query("SELECT count(*) FROM vms", &[])?.iter().next().map(|r| r.get(0)).transpose()?.unwrap_or(0);
    exec_each(&[
        "CREATE TABLE vms_new (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            image_id TEXT NOT NULL,
            guest_ip TEXT NOT NULL UNIQUE,
            state TEXT NOT NULL CHECK (state IN ('created', 'running', 'stopped', 'error')),
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            last_touched_at TEXT NOT NULL,
            spec_json TEXT NOT NULL,
            runtime_json TEXT NOT NULL,
            stats_json TEXT NOT NULL DEFAULT '{}',
            FOREIGN KEY(image_id) REFERENCES images(id) ON DELETE RESTRICT
        )",
        "INSERT INTO vms_new (id, name, image_id, guest_ip, state, created_at, updated_at,
                              last_touched_at, spec_json, runtime_json, stats_json)
         SELECT id, name, image_id, guest_ip, state, created_at, updated_at,
                last_touched_at, spec_json, runtime_json, stats_json FROM vms",
        "DROP TABLE vms",
        "ALTER TABLE vms_new RENAME TO vms",
    ])?;
    exec("CREATE INDEX IF NOT EXISTS vms_image_state ON vms (image_id, state)", &[])?;
    let after: i64 =
        query("SELECT count(*) FROM vms", &[])?.iter().next().map(|r| r.get(0)).transpose()?.unwrap_or(0);
    if after != before {
        return Err(Error::new(format!("rebuild lost rows: {before} before, {after} after")));
    }
    let violations = query("SELECT * FROM pragma_foreign_key_check('vms')", &[])?;
    if !violations.is_empty() {
        return Err(Error::new(format!("{} foreign key violations after rebuild", violations.len())));
    }
    Ok(())
}

wasmig_guest::migration!(up);
