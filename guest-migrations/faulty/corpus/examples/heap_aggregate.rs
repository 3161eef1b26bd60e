//! Faulty on purpose. Aggregates that each keep a different 60 MB value alive at once: stopped by the bound on SQLite's heap.

use wasmig_guest::{Result, query};

fn up() -> Result<()> {
    query(
        "SELECT length(max(v || '1')), length(max(v || '2')), length(max(v || '3')), length(max(v || '4')),
                length(max(v || '5')), length(max(v || '6')), length(max(v || '7')), length(max(v || '8'))
         FROM (SELECT printf('%.*c', 60000000, 'a') AS v)",
        &[],
    )?;
    Ok(())
}

wasmig_guest::migration!(up);
