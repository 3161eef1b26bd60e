//! Faulty on purpose. replace() over a 16 MB text with a 4 MB pattern that almost matches everywhere, again and again: quadratic in SQLite's own replace(); the deadline must still hold.

use wasmig_guest::{Result, exec, query};

fn up() -> Result<()> {
    exec("CREATE TABLE replace_scratch (x)", &[])?;
    loop {
        query(
            "SELECT length(replace(printf('%.*c', 16000000, 'a'), printf('%.*c', 4000000, 'a') || 'b', 'x'))",
            &[],
        )?;
    }
}

wasmig_guest::migration!(up);
