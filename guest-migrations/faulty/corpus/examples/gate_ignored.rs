//! Faulty on purpose (SQL gate). Tries ATTACH, ignores the refusal and
//! returns Ok: the migration must still fail, since it attempted an action
//! the host refuses.

use wasmig_guest::{Result, exec};

fn up() -> Result<()> {
    exec("CREATE TABLE gate_scratch (x)", &[])?;
    let _ignored = exec("ATTACH DATABASE 'elsewhere.db' AS elsewhere", &[]);
    Ok(())
}

wasmig_guest::migration!(up);
