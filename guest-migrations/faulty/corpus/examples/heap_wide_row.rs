//! Faulty on purpose. One row of eight 60 MB values, all built by SQLite at once (480 MB of SQLite's heap, none of it in the guest's memory): stopped by the bound on SQLite's heap.

use wasmig_guest::{Result, exec};

fn up() -> Result<()> {
    exec("CREATE TABLE heap_scratch (x)", &[])?;
    exec(
        "SELECT v || '1', v || '2', v || '3', v || '4', v || '5', v || '6', v || '7', v || '8'
         FROM (SELECT printf('%.*c', 60000000, 'a') AS v)",
        &[],
    )?;
    Ok(())
}

wasmig_guest::migration!(up);
