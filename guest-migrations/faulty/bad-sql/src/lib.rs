//! Faulty on purpose: creates a table, then runs SQL that does not parse and
//! propagates the host's error with `?`.

use wasmig_guest::{Result, exec};

fn up() -> Result<()> {
    exec("CREATE TABLE bad_sql_scratch (id INTEGER PRIMARY KEY)", &[])?;
    exec("CREATE TABLE oops (id INTEGER PRIMARY KEY,, name TEXT)", &[])?;
    Ok(())
}

wasmig_guest::migration!(up);
