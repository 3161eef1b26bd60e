//! Faulty on purpose. Gets its INSERT interrupted (which makes SQLite roll the transaction back), ignores the error and keeps writing: the host must stop it rather than let later statements autocommit.

use wasmig_guest::{Result, exec};

fn up() -> Result<()> {
    exec("CREATE TABLE before_interrupt (x)", &[])?;
    let interrupted = exec(
        "INSERT INTO before_interrupt SELECT x FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c)",
        &[],
    );
    // Deliberately ignored: a careless migration carries on.
    let _ = interrupted;
    exec("CREATE TABLE after_interrupt (x)", &[])?;
    Ok(())
}

wasmig_guest::migration!(up);
