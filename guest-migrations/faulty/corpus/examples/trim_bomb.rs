//! Faulty on purpose. trim() of a 16 MB text with a character set of a million characters, the one that matches last: SQLite's own trim() scans the whole set at every character.

use wasmig_guest::{Result, exec, query};

fn up() -> Result<()> {
    exec("CREATE TABLE trim_scratch (x)", &[])?;
    loop {
        query(
            "SELECT length(trim(printf('%.*c', 16000000, 'a'), printf('%.*c', 1000000, 'b') || 'a'))",
            &[],
        )?;
    }
}

wasmig_guest::migration!(up);
