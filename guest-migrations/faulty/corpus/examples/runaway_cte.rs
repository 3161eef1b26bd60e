//! Faulty on purpose. Runs a recursive CTE that never ends inside SQLite: stopped by the SQLite work budget or deadline.

use wasmig_guest::{Result, exec};

fn up() -> Result<()> {
    exec("CREATE TABLE cte_scratch (x)", &[])?;
    exec("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c", &[])?;
    Ok(())
}

wasmig_guest::migration!(up);
