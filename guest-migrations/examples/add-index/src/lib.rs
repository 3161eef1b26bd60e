//! Migration 2: look up a VM by its image and state without a table scan.

use wasmig_guest::{Result, exec};

fn up() -> Result<()> {
    exec("CREATE INDEX IF NOT EXISTS vms_image_state ON vms (image_id, state)", &[])?;
    Ok(())
}

wasmig_guest::migration!(up);
