//! Faulty on purpose. Searches a 16 MB text for a 4 MB needle that almost matches everywhere, again and again: SQLite's own instr() compares the whole needle at every position (hours per call); the host's replacement must let the deadline stop it.

use wasmig_guest::{Result, exec, query};

fn up() -> Result<()> {
    exec("CREATE TABLE instr_scratch (x)", &[])?;
    loop {
        query("SELECT instr(printf('%.*c', 16000000, 'a'), printf('%.*c', 4000000, 'a') || 'b')", &[])?;
    }
}

wasmig_guest::migration!(up);
