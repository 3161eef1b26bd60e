//! Migration 3: a data backfill. Adds `images.vm_count` and fills it from the
//! rows already in `vms`, reading with `query` and writing with `exec`, so the
//! column is correct for every existing image the moment it appears.

use wasmig_guest::{Result, add_column_if_missing, exec, params, query};

fn up() -> Result<()> {
    add_column_if_missing("images", "vm_count", "INTEGER NOT NULL DEFAULT 0")?;
    let counts = query(
        "SELECT images.id, count(vms.id) FROM images
         LEFT JOIN vms ON vms.image_id = images.id
         GROUP BY images.id ORDER BY images.id",
        &[],
    )?;
    for row in counts.iter() {
        let id: String = row.get(0)?;
        let n: i64 = row.get(1)?;
        exec("UPDATE images SET vm_count = ?1 WHERE id = ?2", params![n, id])?;
    }
    Ok(())
}

wasmig_guest::migration!(up);
