//! Faulty on purpose. Sends 60 000 `;`-separated statements in one `query`: refused as more than one statement, in bounded stack.

use wasmig_guest::{Result, exec, query};

fn up() -> Result<()> {
    exec("CREATE TABLE flood_scratch (x)", &[])?;
    query(&"INSERT INTO flood_scratch VALUES (1);".repeat(25_000), &[])?;
    Ok(())
}

wasmig_guest::migration!(up);
