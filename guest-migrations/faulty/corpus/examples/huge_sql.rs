//! Faulty on purpose. Sends 2 MB of SQL text in one call: refused by the SQL length limit.

use wasmig_guest::{Result, exec};

fn up() -> Result<()> {
    exec("CREATE TABLE sql_scratch (x)", &[])?;
    let sql = format!("SELECT 1 /* {} */", "x".repeat(2 * 1024 * 1024));
    exec(&sql, &[])?;
    Ok(())
}

wasmig_guest::migration!(up);
