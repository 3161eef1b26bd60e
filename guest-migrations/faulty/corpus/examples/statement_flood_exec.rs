//! Faulty on purpose. Sends 60 000 `;`-separated statements in one `exec`: refused as more than one statement, in bounded stack (a recursive check would overflow the host's native stack).

use wasmig_guest::{Result, exec};

fn up() -> Result<()> {
    exec("CREATE TABLE flood_scratch (x)", &[])?;
    exec(&"SELECT 1;".repeat(60_000), &[])?;
    Ok(())
}

wasmig_guest::migration!(up);
