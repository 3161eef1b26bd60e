//! Faulty on purpose (SQL gate). Calls `rtreenode()`, an R-Tree debugging
//! function that decodes whatever blob it is given as an R-Tree node, on a
//! crafted blob passed as a parameter. Must be denied, naming the function.

use wasmig_guest::{Result, exec, params};

fn up() -> Result<()> {
    exec("CREATE TABLE gate_scratch (x)", &[])?;
    exec("INSERT INTO gate_scratch (x) VALUES (1)", &[])?;
    // A node header claiming 65535 cells in a 4-byte blob.
    exec("SELECT rtreenode(2, ?1)", params![vec![0_u8, 0, 0xff, 0xff]])?;
    Ok(())
}

wasmig_guest::migration!(up);
