//! Faulty on purpose. Asks for more rows than a query may return: stopped by the result row limit.

use wasmig_guest::{Result, exec, query};

fn up() -> Result<()> {
    exec("CREATE TABLE result_scratch (x)", &[])?;
    let rows = query(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 5000000) SELECT x FROM c",
        &[],
    )?;
    Err(format!("got {} rows", rows.len()).into())
}

wasmig_guest::migration!(up);
