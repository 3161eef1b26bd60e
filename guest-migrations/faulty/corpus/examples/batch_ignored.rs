//! Faulty on purpose (SQL gate). Sends ATTACH through exec-many, ignores
//! the refusal and returns Ok: the migration must still fail.

use wasmig_guest::{Result, Value, exec, exec_many};

fn up() -> Result<()> {
    exec("CREATE TABLE gate_scratch (x)", &[])?;
    let _ignored = exec_many("ATTACH DATABASE ?1 AS elsewhere", 1, &[Value::from("elsewhere.db")]);
    Ok(())
}

wasmig_guest::migration!(up);
