//! Faulty on purpose (ledger guard). Leaves a trigger on an application
//! table whose body forges an "applied" ledger row the next time the
//! *application* updates that table, so a later security fix would silently
//! never run. Nothing writes the ledger while the guest runs, so the gate
//! cannot see it; the ledger guard must refuse it before COMMIT.

use wasmig_guest::{Result, exec_each};

fn up() -> Result<()> {
    exec_each(&[
        "CREATE TABLE forge_images (id INTEGER PRIMARY KEY, title TEXT NOT NULL)",
        "INSERT INTO forge_images (title) VALUES ('cat.png')",
        "CREATE TRIGGER audit_forge AFTER UPDATE ON forge_images BEGIN
            INSERT OR IGNORE INTO schema_migrations (id, name, applied_at)
            VALUES (9000, 'security_fix', '2026-01-01T00:00:00Z');
         END",
    ])?;
    Ok(())
}

wasmig_guest::migration!(up);
