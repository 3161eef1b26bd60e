//! Faulty on purpose. LIKE with 20 000 wildcards over a 1 MB text that can never match: SQLite's own matcher backtracks for minutes and recurses once per wildcard; the deadline must still hold and the stack must not overflow.

use wasmig_guest::{Result, exec, query};

fn up() -> Result<()> {
    exec("CREATE TABLE like_scratch (x)", &[])?;
    loop {
        query(
            "SELECT printf('%.*c', 1000000, 'a') LIKE '%' || replace(printf('%.*c', 20000, 'a'), 'a', 'a%') || 'b'",
            &[],
        )?;
    }
}

wasmig_guest::migration!(up);
