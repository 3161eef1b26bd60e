//! Faulty on purpose: creates a table, then fails. The host must roll the
//! table back and record nothing.

use wasmig_guest::{Error, Result, exec};

fn up() -> Result<()> {
    exec("CREATE TABLE transient_scratch (id INTEGER PRIMARY KEY)", &[])?;
    exec("INSERT INTO transient_scratch (id) VALUES (1)", &[])?;
    Err(Error::new("deliberate failure after creating transient_scratch"))
}

wasmig_guest::migration!(up);
