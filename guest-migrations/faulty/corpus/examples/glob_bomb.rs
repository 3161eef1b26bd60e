//! Faulty on purpose. GLOB with 20 000 stars over a 1 MB text that can never match: the same backtracking as LIKE, case-sensitive.

use wasmig_guest::{Result, exec, query};

fn up() -> Result<()> {
    exec("CREATE TABLE glob_scratch (x)", &[])?;
    loop {
        query(
            "SELECT printf('%.*c', 1000000, 'a') GLOB '*' || replace(printf('%.*c', 20000, 'a'), 'a', 'a*') || 'b'",
            &[],
        )?;
    }
}

wasmig_guest::migration!(up);
