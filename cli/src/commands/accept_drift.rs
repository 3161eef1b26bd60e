//! `wasmig accept-drift`: record a known change to an applied migration's file.

use std::path::Path;

use anyhow::Result;
use wasmig::{Migrator, Options, TrustPolicy};

pub fn run(db: &Path, id: i64, reason: &str, dir: &Path, trust: TrustPolicy) -> Result<()> {
    let migrator = Migrator::from_dir_with(dir, Options { trust, ..Options::default() })?;
    let conn = super::open_for_write(db, 30)?;
    let (old, new) = migrator.accept_drift(&conn, id, reason)?;
    println!(
        "accepted change to migration {id}: digest {} -> {new} (recorded in schema_migrations_audit)",
        old.as_deref().unwrap_or("none")
    );
    Ok(())
}
