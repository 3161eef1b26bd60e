//! Migration 1, "baseline": the schema as it stood when versioned migrations
//! began. Every statement is idempotent, so a database created before the
//! ledger existed passes through with its data and only gains the missing
//! columns and the ledger row.

use wasmig_guest::{Result, add_column_if_missing, exec_each};

fn up() -> Result<()> {
    exec_each(&[
        "CREATE TABLE IF NOT EXISTS images (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            managed INTEGER NOT NULL DEFAULT 0,
            artifact_dir TEXT,
            rootfs_path TEXT NOT NULL,
            work_seed_path TEXT,
            kernel_path TEXT NOT NULL,
            initrd_path TEXT,
            modules_dir TEXT,
            packages_path TEXT,
            build_size TEXT,
            seeded_ssh_public_key_fingerprint TEXT,
            docker INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )",
        "CREATE TABLE IF NOT EXISTS vms (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            image_id TEXT NOT NULL,
            guest_ip TEXT NOT NULL UNIQUE,
            state TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            last_touched_at TEXT NOT NULL,
            spec_json TEXT NOT NULL,
            runtime_json TEXT NOT NULL,
            stats_json TEXT NOT NULL DEFAULT '{}',
            FOREIGN KEY(image_id) REFERENCES images(id) ON DELETE RESTRICT
        )",
    ])?;
    // Columns added to images during the pre-versioning years: databases from
    // before them gain them here; newer ones already have them.
    add_column_if_missing("images", "work_seed_path", "TEXT")?;
    add_column_if_missing("images", "seeded_ssh_public_key_fingerprint", "TEXT")?;
    Ok(())
}

wasmig_guest::migration!(up);
